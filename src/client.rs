//! The CLI's client of a running daemon's HTTP API: finds it through `<data-dir>/api` and
//! `<data-dir>/api.cookie`, sends and reads the API's own [views](crate::api::views), and
//! turns API errors into messages for people.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::RequestBuilder;
use ureq::http::header::AUTHORIZATION;
use ureq::typestate::{WithBody, WithoutBody};

use crate::api::views::ErrorView;
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

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A GET of an API path through `agent`, with the token.
    fn get_through(&self, agent: &ureq::Agent, path: &str) -> RequestBuilder<WithoutBody> {
        agent
            .get(self.url(path))
            .header(AUTHORIZATION, self.bearer())
    }

    /// A POST to an API path, with the token.
    fn post_to(&self, path: &str) -> RequestBuilder<WithBody> {
        self.agent
            .post(self.url(path))
            .header(AUTHORIZATION, self.bearer())
    }

    fn finish<T: DeserializeOwned>(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<T> {
        let mut response = response.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let not_understood =
            || format!("the daemon answered {status} with something that is not the JSON expected");
        if !status.is_success() {
            let refusal: ErrorView = response
                .body_mut()
                .read_json()
                .with_context(not_understood)?;
            bail!("{} ({})", refusal.message, refusal.error);
        }
        response.body_mut().read_json().with_context(not_understood)
    }

    /// GET an API path (below `/api/v1`) and read the answer as `T`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.finish(self.get_through(&self.agent, path).call())
    }

    /// POST `body` as JSON to an API path and read the answer as `T`.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.finish(self.post_to(path).send_json(body))
    }

    /// PUT `body` as JSON to an API path and read the answer as `T`.
    pub fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let request = self.agent.put(self.url(path));
        self.finish(request.header(AUTHORIZATION, self.bearer()).send_json(body))
    }

    /// DELETE an API path and read the answer as `T`.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let request = self.agent.delete(self.url(path));
        self.finish(request.header(AUTHORIZATION, self.bearer()).call())
    }

    /// POST with no body to an API path (an action such as a withdrawal) and read the answer
    /// as `T`.
    pub fn post_empty<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.finish(self.post_to(path).send_empty())
    }

    /// Follows the event stream, calling `each` with every event, read as `E`, until it
    /// returns false.
    pub fn watch<E: DeserializeOwned>(
        &self,
        mut each: impl FnMut(E) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(None)
            .build()
            .into();
        let mut response = self
            .get_through(&agent, "/events")
            .call()
            .map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            bail!("the daemon refused the event stream: {}", response.status());
        }
        let reader = std::io::BufReader::new(response.body_mut().as_reader());
        for line in reader.lines() {
            let line = line.context("event stream broken")?;
            if let Some(data) = line.strip_prefix("data:") {
                let event = serde_json::from_str(data.trim()).context("bad event")?;
                if !each(event)? {
                    break;
                }
            }
        }
        Ok(())
    }
}
