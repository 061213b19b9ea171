//! `vrm group ...`: start, list, join and leave collective intents, each member under a
//! fresh persona.

use std::path::Path;

use super::verbs::{CastArgs, print_json, short, show_list};
use crate::api::views::CastBody;
use crate::client::Client;
use crate::node::groups::GroupView;

/// `vrm group ...`
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Start a group: your member intent is its first (a price ceiling is per member).
    Start {
        /// How many members the group looks for (2 to 1000).
        #[arg(long)]
        size: u32,
        /// What each member wants.
        #[command(flatten)]
        intent: Box<CastArgs>,
    },
    /// Every group this node has seen, with how many joined.
    List,
    /// Join a group under a fresh persona, with its terms.
    Join {
        /// Group id (or a unique prefix).
        group: String,
    },
    /// Leave a group: your member intent is withdrawn.
    Leave {
        /// Group id (or a unique prefix).
        group: String,
    },
}

const HEADERS: &[&str] = &["group", "members", "category", "max price", "you", "text"];

fn row(g: &GroupView) -> Vec<String> {
    vec![
        short(&g.id),
        format!("{}/{}", g.members, g.size),
        g.category.clone(),
        g.max_price.clone().unwrap_or_default(),
        if g.joined.is_some() { "joined" } else { "" }.to_owned(),
        g.text.clone(),
    ]
}

fn group_id(client: &Client, prefix: &str) -> anyhow::Result<String> {
    let groups: Vec<GroupView> = client.get("/groups")?;
    let matching: Vec<&GroupView> = groups.iter().filter(|g| g.id.starts_with(prefix)).collect();
    match matching[..] {
        [one] => Ok(one.id.clone()),
        _ => anyhow::bail!("{} groups start with {prefix:?}", matching.len()),
    }
}

/// `vrm group ...`
pub fn group(dir: &Path, json: bool, command: GroupCommand) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    let joined: serde_json::Value = match command {
        GroupCommand::List => {
            let groups: Vec<GroupView> = client.get("/groups")?;
            show_list(&groups, json, HEADERS, row);
            return Ok(());
        }
        GroupCommand::Start { size, intent } => {
            let body = serde_json::json!({ "size": size, "intent": CastBody::from(*intent) });
            client.post("/groups", &body)?
        }
        GroupCommand::Join { group } => {
            let id = group_id(&client, &group)?;
            client.post_empty(&format!("/groups/{id}/join"))?
        }
        GroupCommand::Leave { group } => {
            let id = group_id(&client, &group)?;
            client.post_empty(&format!("/groups/{id}/leave"))?
        }
    };
    if json {
        print_json(&joined);
    } else if let Some(group) = joined["group"].as_str() {
        println!(
            "member of group {group} with intent {}",
            joined["intent"].as_str().unwrap_or("")
        );
    } else {
        println!(
            "left the group: intent {} withdrawn",
            joined["id"].as_str().unwrap_or("")
        );
    }
    Ok(())
}
