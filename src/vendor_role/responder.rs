//! The vendor's own program as responder (`proto/responder.md` has the JSON shapes).
//!
//! For each intent the node runs the configured command with the intent as JSON on stdin and
//! reads an offer, or `{"offer": null}`, as JSON from stdout. Each run has a timeout and at
//! most `max_concurrent` run at once; output beyond 64 KiB, a non-zero exit, a hang or
//! garbage is an error with its reason, and the child is killed. Nothing else is affected:
//! the event loop only waits for the answer on a channel.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::proto::json::body_to_json;
use crate::proto::{Envelope, Intent};

const MAX_OUTPUT: u64 = 64 * 1024;

/// Why a responder run gave no usable answer.
#[derive(Debug, Error)]
pub enum ResponderError {
    /// The program could not be started.
    #[error("cannot start {0}: {1}")]
    Spawn(String, std::io::Error),
    /// No answer within the timeout (the program was killed).
    #[error("no answer within {0} s (killed)")]
    Timeout(u64),
    /// The program exited with an error.
    #[error("exited with {status}: {stderr}")]
    Failed {
        /// Exit status.
        status: String,
        /// The end of what it wrote to stderr.
        stderr: String,
    },
    /// The output is not the JSON the protocol describes.
    #[error("unreadable answer: {0}")]
    Garbage(String),
    /// Reading or writing the pipes failed.
    #[error("pipe error: {0}")]
    Io(#[from] std::io::Error),
}

/// One offer line as the program writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponderItem {
    /// What is offered.
    pub title: String,
    /// Unit price, decimal string ("12.50").
    pub price: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Units; default: the intent's quantity, or 1.
    #[serde(default)]
    pub quantity: Option<u32>,
    /// The vendor's reference.
    #[serde(default)]
    pub sku: Option<String>,
}

/// An offer as the program writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponderOffer {
    /// Offer lines.
    pub items: Vec<ResponderItem>,
    /// Free text.
    #[serde(default)]
    pub text: String,
    /// Unix time until which the offer holds; default: a day, at most the intent's expiry.
    #[serde(default)]
    pub valid_until: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    offer: Option<ResponderOffer>,
}

/// Runs the vendor's program.
#[derive(Debug)]
pub struct Responder {
    command: Vec<String>,
    timeout: Duration,
    permits: Arc<Semaphore>,
}

impl Responder {
    /// A responder running `command` (program and arguments).
    pub fn new(command: Vec<String>, timeout: Duration, max_concurrent: usize) -> Self {
        Responder {
            command,
            timeout,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// The JSON the program reads: the intent body (byte strings as hex), its persona key
    /// and the node's clock.
    pub fn input(envelope: &Envelope, intent: &Intent, now: u64) -> serde_json::Value {
        serde_json::json!({
            "intent": body_to_json(envelope.body_bytes()),
            "intent_id": hex::encode(*intent.id),
            "persona": hex::encode(envelope.signer().as_bytes()),
            "now": now,
        })
    }

    /// Runs the program once; `Ok(None)` when it chose not to offer.
    pub async fn ask(
        &self,
        input: &serde_json::Value,
    ) -> Result<Option<ResponderOffer>, ResponderError> {
        let secs = self.timeout.as_secs();
        let _permit = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| ResponderError::Timeout(secs))?
            .map_err(|_| ResponderError::Timeout(secs))?;
        let run = self.run(input.to_string().into_bytes());
        let (status, stdout, stderr) = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| ResponderError::Timeout(secs))??;
        if !status.success() {
            let stderr = String::from_utf8_lossy(&stderr);
            return Err(ResponderError::Failed {
                status: status.to_string(),
                stderr: stderr
                    .trim()
                    .chars()
                    .rev()
                    .take(300)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect(),
            });
        }
        if stdout.len() as u64 > MAX_OUTPUT {
            return Err(ResponderError::Garbage("more than 64 KiB of output".into()));
        }
        let reply: Reply =
            serde_json::from_slice(&stdout).map_err(|e| ResponderError::Garbage(e.to_string()))?;
        Ok(reply.offer)
    }

    async fn run(
        &self,
        input: Vec<u8>,
    ) -> Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>), ResponderError> {
        let (program, args) = self.command.split_first().ok_or_else(|| {
            ResponderError::Spawn(String::new(), std::io::ErrorKind::InvalidInput.into())
        })?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ResponderError::Spawn(program.clone(), e))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        let write = async move {
            // A program that does not read its input is its own business.
            let _ = stdin.write_all(&input).await;
        };
        let read_out = async move {
            let mut out = Vec::new();
            stdout
                .take(MAX_OUTPUT + 1)
                .read_to_end(&mut out)
                .await
                .map(|_| out)
        };
        let read_err = async move {
            let mut err = Vec::new();
            stderr.take(4096).read_to_end(&mut err).await.map(|_| err)
        };
        let ((), out, err) = tokio::join!(write, read_out, read_err);
        let status = child.wait().await?;
        Ok((status, out?, err?))
    }
}
