//! The CLI's client of a running daemon's HTTP API: finds it through `<data-dir>/api` and
//! `<data-dir>/api.cookie`, and turns API errors into messages for people.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use crate::api::{API_FILE, COOKIE_FILE};

/// A connection to the daemon of one data directory.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// Reads the daemon's address and token from `dir`.
    pub fn from_data_dir(dir: &Path) -> anyhow::Result<Client> {
        let not_running = || {
            anyhow!(
                "the vrm daemon is not running for {} (start it with `vrm daemon`)",
                dir.display()
            )
        };
        let base = std::fs::read_to_string(dir.join(API_FILE)).map_err(|_| not_running())?;
        let token = std::fs::read_to_string(dir.join(COOKIE_FILE)).map_err(|_| not_running())?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Client {
            base: base.trim().to_owned(),
            token: token.trim().to_owned(),
            agent,
        })
    }

    /// The login link for the web page (the token travels in the URL fragment).
    pub fn login_link(&self) -> String {
        format!("{}/#token={}", self.base, self.token)
    }

    fn unreachable(&self, e: ureq::Error) -> anyhow::Error {
        anyhow!(
            "the vrm daemon is not running (cannot reach {}: {e}); start it with `vrm daemon`",
            self.base
        )
    }

    fn finish(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<Value> {
        let mut response = response.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let body: Value = response.body_mut().read_json().with_context(|| {
            format!("the daemon answered {status} with something that is not JSON")
        })?;
        if !status.is_success() {
            let message = body["message"].as_str().unwrap_or("no message");
            bail!(
                "{message} ({})",
                body["error"].as_str().unwrap_or(status.as_str())
            );
        }
        Ok(body)
    }

    /// GET an API path (below `/api/v1`).
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .agent
            .get(format!("{}/api/v1{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.finish(response)
    }

    /// POST JSON to an API path.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .agent
            .post(format!("{}/api/v1{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .send_json(body);
        self.finish(response)
    }

    /// Follows the event stream, calling `each` with every event until it returns false.
    pub fn watch(&self, mut each: impl FnMut(Value) -> anyhow::Result<bool>) -> anyhow::Result<()> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(None)
            .build()
            .into();
        let mut response = agent
            .get(format!("{}/api/v1/events", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            bail!("the daemon refused the event stream: {}", response.status());
        }
        let reader = std::io::BufReader::new(response.body_mut().as_reader());
        for line in reader.lines() {
            let line = line.context("event stream broken")?;
            if let Some(data) = line.strip_prefix("data:") {
                let event: Value = serde_json::from_str(data.trim()).context("bad event")?;
                if !each(event)? {
                    break;
                }
            }
        }
        Ok(())
    }
}
