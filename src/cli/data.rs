//! The CLI verbs of the person's data: the vault, grants and their revocation, who holds
//! what, and moving the whole node (`export`, `import`, offline: the daemon must be
//! stopped for an export, and an import makes a new data directory).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use super::relationship::{print, relationship_id};
use crate::client::Client;

/// `vrm vault ...`
#[derive(Debug, clap::Subcommand)]
pub enum VaultCommand {
    /// Every field of your vault.
    Show,
    /// Set a field (vendors holding it under a live grant get the new value).
    Set {
        /// Field name: a-z, 0-9, - and _ (email, postal-address, shoe-size…).
        name: String,
        /// Its value.
        value: String,
    },
    /// Remove a field (vendors holding it keep it until their grant ends: revoke it).
    Unset {
        /// Field name.
        name: String,
    },
}

/// Where the passphrase of an export's keys comes from.
#[derive(Debug, clap::Args)]
pub struct Passphrase {
    /// A file whose first line is the passphrase (or set VRM_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl Passphrase {
    fn read(&self) -> anyhow::Result<Option<String>> {
        if let Some(file) = &self.passphrase_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            return Ok(Some(text.lines().next().unwrap_or("").to_owned()));
        }
        Ok(std::env::var("VRM_PASSPHRASE").ok())
    }
}

/// `vrm vault`
pub fn vault(dir: &Path, json: bool, command: VaultCommand) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    match command {
        VaultCommand::Show => {
            let vault: Value = client.get("/vault")?;
            print(json, &vault, |v| {
                let fields = v.as_object().cloned().unwrap_or_default();
                if fields.is_empty() {
                    return "the vault is empty: vrm vault set NAME VALUE".into();
                }
                fields
                    .iter()
                    .map(|(k, v)| format!("{k:<20} {}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        VaultCommand::Set { name, value } => {
            let set: Value = client.put(&format!("/vault/{name}"), &json!({ "value": value }))?;
            print(json, &set, |s| {
                format!("{name} set; {} grant(s) renewed with it", s["renewed"])
            });
        }
        VaultCommand::Unset { name } => {
            let removed: Value = client.delete(&format!("/vault/{name}"))?;
            print(json, &removed, |_| format!("{name} removed"));
        }
    }
    Ok(())
}

/// `vrm grant REL --field F… --purpose P --days N`
pub fn grant(
    dir: &Path,
    json: bool,
    rel: &str,
    fields: Vec<String>,
    purpose: &str,
    days: u64,
    terms: Vec<String>,
) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    let id = relationship_id(&client, rel)?;
    let mut body = json!({ "fields": fields, "purpose": purpose, "days": days });
    if !terms.is_empty() {
        body["terms"] = json!(terms);
    }
    let placed: Value = client.post(&format!("/relationships/{id}/grants"), &body)?;
    print(json, &placed, |p| {
        format!("granted (place {}); the vendor's receipt follows", p["seq"])
    });
    Ok(())
}

/// `vrm revoke REL GRANT`
pub fn revoke(dir: &Path, json: bool, rel: &str, grant: &str) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    let id = relationship_id(&client, rel)?;
    let detail: Value = client.get(&format!("/relationships/{id}"))?;
    let grants = detail["grants"].as_array().cloned().unwrap_or_default();
    let matching: Vec<&str> = grants
        .iter()
        .filter_map(|g| g["id"].as_str())
        .filter(|g| g.starts_with(grant))
        .collect();
    let [grant] = matching[..] else {
        anyhow::bail!(
            "{grant:?} names {} grants of this relationship",
            matching.len()
        );
    };
    let placed: Value = client.post_empty(&format!("/relationships/{id}/grants/{grant}/revoke"))?;
    print(json, &placed, |p| {
        format!(
            "revoked (place {}); the vendor's deletion receipt follows",
            p["seq"]
        )
    });
    Ok(())
}

/// `vrm holdings`: who holds what.
pub fn holdings(dir: &Path, json: bool) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    let holdings: Value = client.get("/holdings")?;
    print(json, &holdings, |h| {
        let mut lines = Vec::new();
        for holding in h.as_array().cloned().unwrap_or_default() {
            let vendor = holding["vendor_name"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| holding["vendor"].as_str().unwrap_or("")[..12].to_owned());
            lines.push(format!(
                "{vendor} (relationship {})",
                &holding["relationship"].as_str().unwrap_or("")[..12]
            ));
            for g in holding["grants"].as_array().cloned().unwrap_or_default() {
                let fields: Vec<&str> = g["fields"]
                    .as_array()
                    .map(|f| f.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                lines.push(format!(
                    "  {} {:<9} {:<10} {} until {}",
                    &g["id"].as_str().unwrap_or("")[..12],
                    g["state"].as_str().unwrap_or(""),
                    g["purpose"].as_str().unwrap_or(""),
                    fields.join(","),
                    g["until"]
                ));
            }
        }
        if lines.is_empty() {
            "no vendor holds any of your data".into()
        } else {
            lines.join("\n")
        }
    });
    Ok(())
}

/// `vrm export FILE [--with-keys]`
pub fn export(dir: &Path, file: &Path, with_keys: bool, pass: &Passphrase) -> anyhow::Result<()> {
    let passphrase =
        match with_keys {
            true => Some(pass.read()?.context(
                "--with-keys needs a passphrase: --passphrase-file FILE or VRM_PASSPHRASE",
            )?),
            false => None,
        };
    let contents = crate::export::export(dir, file, passphrase.as_deref())?;
    let records: usize = contents.trees.values().map(Vec::len).sum();
    println!(
        "wrote {} (schema {}, {records} records, {} granted, keys {})",
        file.display(),
        contents.schema,
        contents.granted.len(),
        if with_keys {
            "sealed with the passphrase"
        } else {
            "left out"
        }
    );
    Ok(())
}

/// `vrm import FILE` into the data directory.
pub fn import(dir: &Path, file: &Path, pass: &Passphrase) -> anyhow::Result<()> {
    let contents = crate::export::import(file, dir, pass.read()?.as_deref())?;
    let records: usize = contents.trees.values().map(Vec::len).sum();
    println!(
        "imported {} into {} (schema {}, {records} records, keys {})",
        file.display(),
        dir.display(),
        contents.schema,
        if contents.keys.is_some() {
            "restored"
        } else {
            "new"
        }
    );
    Ok(())
}
