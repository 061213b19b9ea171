//! The vendor's own CRM program as the vendor side of its relationships
//! (`proto/responder.md`, "Relationships"): a long-running child the node writes every
//! relationship event to, as JSON lines on its stdin, and whose commands (confirm, decline,
//! ship, fulfil, message, end) it reads as JSON lines from its stdout and answers, one line
//! each, on its stdin.
//!
//! When the program starts it first gets every relationship of the vendor's as it stands,
//! so nothing happened while it was down is missed (and if it falls behind the event stream,
//! it gets them all again); it decides from the state, so a repeat does no harm. A program
//! that exits or writes a line longer than [`MAX_LINE`] is restarted after a backoff (1 s
//! doubling to 30 s). Commands are carried out one at a time, in order.

use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use super::events::NodeEvent;
use super::handle::NodeHandle;
use super::relationships::Draft;
use crate::proto::Status;
use crate::proto::relationship::Side;

/// Longest line the program may write.
pub const MAX_LINE: u64 = 64 * 1024;
/// Longest wait before the program is started again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One command of the program's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmCommand {
    /// `confirm`, `decline`, `ship`, `fulfil`, `message` or `end`.
    #[serde(rename = "do")]
    pub action: String,
    /// The relationship (hex id).
    pub relationship: String,
    /// Text: the message, the tracking, the reason.
    #[serde(default)]
    pub text: String,
}

impl CrmCommand {
    /// What it writes into the log.
    fn draft(&self) -> Result<Draft, String> {
        let text = self.text.clone();
        Ok(match self.action.as_str() {
            "confirm" => Draft::Order,
            "decline" => Draft::Update(Status::Declined, text),
            "ship" => Draft::Update(Status::Shipped, text),
            "fulfil" => Draft::Update(Status::Fulfilled, text),
            "message" => Draft::Message(text),
            "end" => Draft::End(text),
            other => return Err(format!("no command {other:?}")),
        })
    }
}

/// Runs the program `command` for the vendor node `node` until the node stops.
pub async fn run(node: NodeHandle, command: Vec<String>) {
    let mut backoff = Duration::from_secs(1);
    let mut done = node.done.clone();
    loop {
        let outcome = tokio::select! {
            outcome = serve_once(&node, &command) => outcome,
            _ = done.wait_for(|d| *d) => return,
        };
        match outcome {
            Ok(()) => info!("the CRM program ended; starting it again in {backoff:?}"),
            Err(e) => warn!("the CRM program failed: {e}; starting it again in {backoff:?}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = done.wait_for(|d| *d) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One run of the program: until it exits or breaks the protocol.
async fn serve_once(node: &NodeHandle, command: &[String]) -> Result<(), String> {
    let (program, args) = command.split_first().ok_or("the crm command is empty")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    // Lines are read by a task of their own: a read cut short by an event would lose what
    // it had read of a line.
    let (line_tx, mut lines) = tokio::sync::mpsc::channel(16);
    let reader = tokio::spawn(async move {
        let mut stdout = stdout;
        loop {
            let line = read_line(&mut stdout).await;
            let last = !matches!(line, Ok(Some(_)));
            if line_tx.send(line).await.is_err() || last {
                return;
            }
        }
    });
    let _stop_reading = AbortOnDrop(reader);
    let mut events = node.subscribe();
    snapshot(node, &mut stdin).await?;
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line.transpose()?.flatten() else { return Ok(()) };
                let answer = carry_out(node, &line).await;
                write_line(&mut stdin, &answer).await?;
            }
            event = events.recv() => match event {
                Ok(NodeEvent::RelationshipEntry { relationship, seq, .. }) => {
                    entry(node, &mut stdin, &relationship, seq).await?;
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    info!("the CRM program fell {missed} events behind: sending every relationship again");
                    snapshot(node, &mut stdin).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every relationship of the vendor's, as it stands.
async fn snapshot(node: &NodeHandle, stdin: &mut ChildStdin) -> Result<(), String> {
    let list = node.relationships().map_err(|e| e.to_string())?;
    for summary in list.into_iter().filter(|r| r.side == Side::Vendor) {
        if let Ok(detail) = node.relationship(&summary.id) {
            write_line(
                stdin,
                &json!({"event": "relationship", "relationship": detail}),
            )
            .await?;
        }
    }
    Ok(())
}

/// One new entry of a vendor relationship, with the state it led to.
async fn entry(
    node: &NodeHandle,
    stdin: &mut ChildStdin,
    rel: &str,
    seq: u32,
) -> Result<(), String> {
    let Ok(detail) = node.relationship(rel) else {
        return Ok(());
    };
    if detail.summary.side != Side::Vendor {
        return Ok(());
    }
    let Some(entry) = detail.log.iter().find(|e| e.seq == seq) else {
        return Ok(());
    };
    let line = json!({
        "event": "entry",
        "relationship": rel,
        "entry": entry,
        "state": detail.summary.state,
        "items": detail.summary.items,
        "persona": detail.summary.persona,
        "grants": detail.grants,
    });
    write_line(stdin, &line).await
}

/// Carries out one command line; the answer line.
async fn carry_out(node: &NodeHandle, line: &[u8]) -> Value {
    let command: CrmCommand = match serde_json::from_slice(line) {
        Ok(command) => command,
        Err(e) => return json!({"refused": null, "error": format!("not a command: {e}")}),
    };
    let draft = match command.draft() {
        Ok(draft) => draft,
        Err(e) => return json!({"refused": command.action, "error": e}),
    };
    match node.relationship_write(&command.relationship, draft).await {
        Ok(seq) => {
            json!({"done": command.action, "relationship": command.relationship, "seq": seq})
        }
        Err(e) => json!({
            "refused": command.action,
            "relationship": command.relationship,
            "error": e.to_string(),
        }),
    }
}

/// The next line the program wrote (without its newline); `None` at its end.
async fn read_line(stdout: &mut BufReader<ChildStdout>) -> Result<Option<Vec<u8>>, String> {
    let mut line = Vec::new();
    let read = (&mut *stdout)
        .take(MAX_LINE + 1)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| e.to_string())?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') && read as u64 > MAX_LINE {
        return Err(format!("a line longer than {MAX_LINE} bytes"));
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

async fn write_line(stdin: &mut ChildStdin, value: &Value) -> Result<(), String> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    stdin
        .write_all(&bytes)
        .await
        .map_err(|e| format!("writing to the program: {e}"))
}
