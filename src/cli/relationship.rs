//! The CLI verbs of relationships: accept an offer, follow orders, talk, end, and export or
//! verify a relationship's log. All but `verify` talk to the running daemon; `verify`
//! checks a file alone, offline. Ids may be given by a unique prefix, as tables print them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::client::Client;
use crate::proto::relationship::verify_file;

/// `vrm relationship ...`
#[derive(Debug, clap::Subcommand)]
pub enum RelationshipCommand {
    /// One relationship with its log.
    Show {
        /// Relationship id (or a unique prefix).
        id: String,
    },
    /// End the relationship: nothing more is written in it.
    End {
        /// Relationship id (or a unique prefix).
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Mark everything in it read.
    Read {
        /// Relationship id (or a unique prefix).
        id: String,
    },
    /// Write the log as one file (CBOR) anyone can verify.
    Export {
        /// Relationship id (or a unique prefix).
        id: String,
        /// Where to write it.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Check an exported log alone, offline: signatures, chain, who signed what, the
    /// order's rules, acknowledgements.
    Verify {
        /// The file.
        file: PathBuf,
    },
}

/// `vrm order ...` (the person's side).
#[derive(Debug, clap::Subcommand)]
pub enum OrderCommand {
    /// The order and its timeline.
    Show {
        /// Relationship id (or a unique prefix).
        id: String,
    },
    /// Call the order off (until it is shipped).
    Cancel {
        /// Relationship id (or a unique prefix).
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Say you received what you ordered.
    Received {
        /// Relationship id (or a unique prefix).
        id: String,
    },
}

/// The vendor's order verbs (`vrm vendor confirm ...`).
#[derive(Debug, clap::Subcommand)]
pub enum VendorOrderCommand {
    /// Orders: every relationship of this vendor, with its state.
    Orders,
    /// Confirm an accepted offer with an order that restates it.
    Confirm {
        /// Relationship id (or a unique prefix).
        id: String,
    },
    /// Decline an accepted offer (before the person agreed to the order).
    Decline {
        /// Relationship id (or a unique prefix).
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Say the goods are on their way.
    Ship {
        /// Relationship id (or a unique prefix).
        id: String,
        /// Tracking or other details.
        #[arg(long, default_value = "")]
        tracking: String,
    },
    /// Say the order is fulfilled.
    Fulfil {
        /// Relationship id (or a unique prefix).
        id: String,
    },
    /// Send the person a message.
    Message {
        /// Relationship id (or a unique prefix).
        id: String,
        /// What to say.
        text: String,
    },
}

/// Finds the one full id among `list`'s `id` fields that starts with `prefix`.
fn resolve(list: &Value, prefix: &str, what: &str) -> anyhow::Result<String> {
    let found: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["id"].as_str())
        .filter(|id| id.starts_with(prefix))
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!("no {what} {prefix}"),
        _ => bail!(
            "{prefix} names {} {what}s: give more of the id",
            found.len()
        ),
    }
}

pub(super) fn relationship_id(client: &Client, prefix: &str) -> anyhow::Result<String> {
    resolve(&client.get("/relationships")?, prefix, "relationship")
}

pub(super) fn print(json: bool, value: &Value, text: impl FnOnce(&Value) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        println!("{}", text(value));
    }
}

/// A relationship's state in a few words.
fn state(v: &Value) -> String {
    let s = &v["state"];
    let mut words = vec![s["stage"].as_str().unwrap_or("?").to_owned()];
    for flag in ["shipped", "fulfilled", "received"] {
        if s[flag].as_bool() == Some(true) {
            words.push(flag.to_owned());
        }
    }
    if let Some(by) = s["ended_by"].as_str() {
        words.push(format!("ended by {by}"));
    }
    words.join(", ")
}

fn row(v: &Value) -> String {
    let id: String = v["id"].as_str().unwrap_or("").chars().take(12).collect();
    let unread = v["unread"].as_u64().unwrap_or(0);
    let unread = if unread > 0 {
        format!("  {unread} unread")
    } else {
        String::new()
    };
    format!(
        "{id}  {:<6}  {}  {} entries{unread}",
        v["side"].as_str().unwrap_or(""),
        state(v),
        v["entries"].as_u64().unwrap_or(0),
    )
}

fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let all: Value = client.get("/relationships")?;
    print(json, &all, |all| {
        let rows: Vec<String> = all.as_array().into_iter().flatten().map(row).collect();
        if rows.is_empty() {
            "no relationships".to_owned()
        } else {
            rows.join("\n")
        }
    });
    Ok(())
}

fn show(client: &Client, json: bool, prefix: &str) -> anyhow::Result<()> {
    let id = relationship_id(client, prefix)?;
    let detail: Value = client.get(&format!("/relationships/{id}"))?;
    print(json, &detail, |d| {
        let mut out = vec![format!("relationship {id}"), format!("state: {}", state(d))];
        for e in d["log"].as_array().into_iter().flatten() {
            let what = e["status"]
                .as_str()
                .unwrap_or(e["kind"].as_str().unwrap_or(""));
            let mut line = format!(
                "{:>3}  {:<6}  {what:<16}  {}",
                e["seq"],
                e["from"].as_str().unwrap_or(""),
                e["text"].as_str().unwrap_or("")
            );
            if e["pending"].as_bool() == Some(true) {
                line.push_str("  (pending)");
            } else if e["acknowledged"].as_bool() == Some(true) {
                line.push_str("  ✓");
            }
            out.push(line);
        }
        out.join("\n")
    });
    Ok(())
}

fn write(client: &Client, json: bool, prefix: &str, path: &str, body: Value) -> anyhow::Result<()> {
    let id = relationship_id(client, prefix)?;
    let placed: Value = client.post(&format!("/relationships/{id}/{path}"), &body)?;
    print(json, &placed, |p| format!("written at place {}", p["seq"]));
    Ok(())
}

fn status(client: &Client, json: bool, id: &str, status: &str, text: &str) -> anyhow::Result<()> {
    write(
        client,
        json,
        id,
        "status",
        json!({"status": status, "text": text}),
    )
}

/// `vrm accept OFFER`
pub fn accept(
    dir: &Path,
    json: bool,
    offer: &str,
    returning: bool,
    keep_intent: bool,
) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    let offer = resolve(&client.get("/offers")?, offer, "offer")?;
    let body = json!({
        "as": if returning { "returning" } else { "new" },
        "withdraw": !keep_intent,
    });
    let rel: Value = client.post(&format!("/offers/{offer}/accept"), &body)?;
    print(json, &rel, |r| {
        format!(
            "accepted offer {}: relationship {}",
            &offer[..12],
            r["id"].as_str().unwrap_or("")
        )
    });
    Ok(())
}

/// `vrm relationships` and `vrm orders`
pub fn relationships(dir: &Path, json: bool) -> anyhow::Result<()> {
    list(&Client::from_data_dir(dir)?, json)
}

/// `vrm message REL TEXT`
pub fn message(dir: &Path, json: bool, id: &str, text: &str) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    write(&client, json, id, "messages", json!({ "text": text }))
}

/// `vrm relationship ...`
pub fn relationship(dir: &Path, json: bool, command: RelationshipCommand) -> anyhow::Result<()> {
    if let RelationshipCommand::Verify { file } = &command {
        return verify(file, json);
    }
    let client = Client::from_data_dir(dir)?;
    match command {
        RelationshipCommand::Show { id } => show(&client, json, &id),
        RelationshipCommand::End { id, reason } => {
            write(&client, json, &id, "end", json!({ "text": reason }))
        }
        RelationshipCommand::Read { id } => {
            let id = relationship_id(&client, &id)?;
            let read: Value = client.post_empty(&format!("/relationships/{id}/read"))?;
            print(json, &read, row);
            Ok(())
        }
        RelationshipCommand::Export { id, output } => {
            let id = relationship_id(&client, &id)?;
            let export: Value = client.get(&format!("/relationships/{id}/export"))?;
            let bytes = hex::decode(export["log_hex"].as_str().unwrap_or(""))
                .context("the daemon's export is not hex")?;
            std::fs::write(&output, &bytes)
                .with_context(|| format!("writing {}", output.display()))?;
            println!("wrote {} ({} bytes)", output.display(), bytes.len());
            Ok(())
        }
        RelationshipCommand::Verify { .. } => unreachable!("verified above"),
    }
}

fn verify(file: &Path, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let verified = verify_file(&bytes).with_context(|| format!("{} is refused", file.display()))?;
    let chain = &verified.chain;
    let value = json!({
        "relationship": hex::encode(chain.rel),
        "persona": hex::encode(chain.persona),
        "vendor": hex::encode(chain.vendor),
        "entries": chain.len,
        "acknowledged": verified.acknowledged,
        "state": chain.state,
    });
    print(json, &value, |v| {
        format!(
            "valid: relationship {}, {} entries ({} acknowledged by the other side), {}",
            v["relationship"].as_str().unwrap_or(""),
            v["entries"],
            v["acknowledged"],
            state(v)
        )
    });
    Ok(())
}

/// `vrm order ...`
pub fn order(dir: &Path, json: bool, command: OrderCommand) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    match command {
        OrderCommand::Show { id } => show(&client, json, &id),
        OrderCommand::Cancel { id, reason } => status(&client, json, &id, "cancelled", &reason),
        OrderCommand::Received { id } => status(&client, json, &id, "received", ""),
    }
}

/// `vrm vendor orders|confirm|decline|ship|fulfil|message`
pub fn vendor_order(dir: &Path, json: bool, command: VendorOrderCommand) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    match command {
        VendorOrderCommand::Orders => list(&client, json),
        VendorOrderCommand::Confirm { id } => write(&client, json, &id, "confirm", json!({})),
        VendorOrderCommand::Decline { id, reason } => {
            status(&client, json, &id, "declined", &reason)
        }
        VendorOrderCommand::Ship { id, tracking } => {
            status(&client, json, &id, "shipped", &tracking)
        }
        VendorOrderCommand::Fulfil { id } => status(&client, json, &id, "fulfilled", ""),
        VendorOrderCommand::Message { id, text } => {
            write(&client, json, &id, "messages", json!({ "text": text }))
        }
    }
}
