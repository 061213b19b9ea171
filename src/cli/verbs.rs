//! The CLI verbs that talk to a running daemon: tables for people, `--json` for scripts.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use crate::client::Client;

/// `vrm intent ...`
#[derive(Debug, clap::Subcommand)]
pub enum IntentCommand {
    /// Cast an intent, signed by a fresh persona.
    Cast(Box<CastArgs>),
    /// List your intents.
    List,
    /// Show one intent.
    Show {
        /// Intent id (hex).
        id: String,
    },
    /// Withdraw one of your intents.
    Withdraw {
        /// Intent id (hex).
        id: String,
    },
}

/// What to cast.
#[derive(Debug, clap::Args)]
pub struct CastArgs {
    /// Top-level category id (see `proto/categories.json`).
    #[arg(long)]
    pub category: String,
    /// What you want, in your words.
    #[arg(long)]
    pub text: String,
    /// Subcategory id.
    #[arg(long)]
    pub subcategory: Option<String>,
    /// The most you pay in total, e.g. 150 or 150.00.
    #[arg(long, requires = "currency")]
    pub max_price: Option<String>,
    /// Currency of --max-price (ISO 4217).
    #[arg(long, requires = "max_price")]
    pub currency: Option<String>,
    /// Where.
    #[arg(long)]
    pub place: Option<String>,
    /// How many.
    #[arg(long)]
    pub quantity: Option<u32>,
    /// First day, YYYY-MM-DD.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// How long the intent lives: 90s, 30m, 24h, 7d.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub expires: u64,
    /// A term you proffer (repeatable).
    #[arg(long = "term", value_name = "ID")]
    pub terms: Vec<String>,
    /// A term you require: offers that do not accept it are refused (repeatable).
    #[arg(long = "require", value_name = "ID")]
    pub required: Vec<String>,
}

/// `vrm vendor ...`
#[derive(Debug, clap::Subcommand)]
pub enum VendorCommand {
    /// Intents received, and what this vendor did with each.
    Intents,
    /// Offers sent, and their delivery.
    Offers,
    /// Reload catalog.toml now.
    Reload,
}

/// Parses 90s, 30m, 24h or 7d into seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{text:?}: use a number and s, m, h or d (e.g. 24h)"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?}: use a number and s, m, h or d (e.g. 24h)"))
}

/// `println!` that ends the program quietly when stdout is closed (`vrm offers --watch | head`),
/// as Unix tools do on SIGPIPE, instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        if writeln!(out, $($arg)*).and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    }};
}

fn print_json(value: &Value) {
    say!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Prints a JSON array as JSON, or as a table with one row per element.
fn show_list(list: &Value, json: bool, headers: &[&str], row: impl Fn(&Value) -> Vec<String>) {
    if json {
        print_json(list);
    } else {
        let rows: Vec<Vec<String>> = list.as_array().into_iter().flatten().map(row).collect();
        table(headers, &rows);
    }
}

/// Prints rows under headers, columns padded to their widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        line(row.clone());
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn short(v: &Value) -> String {
    s(v).chars().take(12).collect()
}

fn money(v: &Value) -> String {
    s(&v["display"])
}

/// `vrm status`
pub fn status(dir: &Path, json: bool) -> anyhow::Result<()> {
    let st = Client::from_data_dir(dir)?.get("/status")?;
    if json {
        print_json(&st);
        return Ok(());
    }
    say!("peer id   {}", s(&st["peer_id"]));
    if !st["vendor_key"].is_null() {
        say!(
            "vendor    {} ({})",
            s(&st["vendor_name"]),
            s(&st["vendor_key"])
        );
    }
    say!("peers     {}", st["peers"]);
    say!("intents   {}", st["intents"]);
    say!("offers    {}", st["offers"]);
    say!("outbox    {}", st["outbox"]);
    for addr in st["listen"].as_array().into_iter().flatten() {
        say!("listen    {}", s(addr));
    }
    Ok(())
}

/// `vrm peers`
pub fn peers(dir: &Path, json: bool) -> anyhow::Result<()> {
    let peers = Client::from_data_dir(dir)?.get("/peers")?;
    show_list(&peers, json, &["peer", "score"], |p| {
        vec![
            s(&p["peer"]),
            p["score"]
                .as_f64()
                .map(|x| format!("{x:.1}"))
                .unwrap_or_default(),
        ]
    });
    Ok(())
}

fn intent_rows(intents: &Value) -> Vec<Vec<String>> {
    intents
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            vec![
                s(&i["id"]),
                s(&i["status"]),
                s(&i["category"]),
                i["max_price"].get("display").map(s).unwrap_or_default(),
                s(&i["offers"]),
                s(&i["text"]),
            ]
        })
        .collect()
}

/// `vrm intent ...`
pub fn intent(dir: &Path, json: bool, command: IntentCommand) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    match command {
        IntentCommand::Cast(args) => {
            let mut terms: Vec<Value> = args
                .terms
                .iter()
                .map(|t| json!({"id": t, "required": false}))
                .collect();
            terms.extend(
                args.required
                    .iter()
                    .map(|t| json!({"id": t, "required": true})),
            );
            let body = json!({
                "category": args.category,
                "subcategory": args.subcategory,
                "text": args.text,
                "max_price": args.max_price,
                "currency": args.currency,
                "place": args.place,
                "quantity": args.quantity,
                "dates": args.from.map(|from| json!({"from": from, "to": args.to})),
                "terms": terms,
                "expires_in_secs": args.expires,
            });
            let cast = client.post("/intents", &body)?;
            if json {
                print_json(&cast);
            } else {
                say!("cast intent {}", s(&cast["id"]));
            }
        }
        IntentCommand::List => {
            let intents = client.get("/intents?origin=own")?;
            if json {
                print_json(&intents);
            } else {
                table(
                    &["id", "status", "category", "max price", "offers", "text"],
                    &intent_rows(&intents),
                );
            }
        }
        IntentCommand::Show { id } => {
            let intent = client.get(&format!("/intents/{id}"))?;
            let offers = client.get(&format!("/intents/{id}/offers"))?;
            if json {
                print_json(&json!({"intent": intent, "offers": offers}));
            } else {
                table(
                    &["id", "status", "category", "max price", "offers", "text"],
                    &intent_rows(&json!([intent])),
                );
                say!();
                table(&["offer", "vendor", "total", "items"], &offer_rows(&offers));
            }
        }
        IntentCommand::Withdraw { id } => {
            let intent = client.post(&format!("/intents/{id}/withdraw"), &json!({}))?;
            if json {
                print_json(&intent);
            } else {
                say!("withdrew intent {}", s(&intent["id"]));
            }
        }
    }
    Ok(())
}

fn offer_row(o: &Value) -> Vec<String> {
    let items: Vec<String> = o["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            format!(
                "{} x {} @ {}",
                i["quantity"],
                s(&i["title"]),
                money(&i["price"])
            )
        })
        .collect();
    let vendor = if o["vendor_name"].is_null() {
        short(&o["vendor"])
    } else {
        s(&o["vendor_name"])
    };
    vec![
        short(&o["id"]),
        vendor,
        money(&o["total"]),
        items.join("; "),
    ]
}

fn offer_rows(offers: &Value) -> Vec<Vec<String>> {
    offers
        .as_array()
        .into_iter()
        .flatten()
        .map(offer_row)
        .collect()
}

/// `vrm offers [--intent ID] [--watch]`
pub fn offers(dir: &Path, json: bool, intent: Option<String>, watch: bool) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    let path = match &intent {
        Some(id) => format!("/intents/{id}/offers"),
        None => "/offers".to_owned(),
    };
    let offers = client.get(&path)?;
    if json && !watch {
        print_json(&offers);
        return Ok(());
    }
    if json {
        for offer in offers.as_array().into_iter().flatten() {
            say!("{offer}");
        }
    } else {
        table(&["offer", "vendor", "total", "items"], &offer_rows(&offers));
    }
    if !watch {
        return Ok(());
    }
    client.watch(|event| {
        if event["type"] != "offer-received" {
            return Ok(true);
        }
        if intent
            .as_ref()
            .is_some_and(|id| event["intent"] != id.as_str())
        {
            return Ok(true);
        }
        let all = client.get(&format!("/intents/{}/offers", s(&event["intent"])))?;
        let offer = all
            .as_array()
            .into_iter()
            .flatten()
            .find(|o| o["id"] == event["offer"])
            .cloned()
            .context("the offer announced is not in the store")?;
        if json {
            say!("{offer}");
        } else {
            let row = offer_row(&offer);
            say!("{}", row.join("  "));
        }
        Ok(true)
    })
}

/// `vrm vendor ...`
pub fn vendor(dir: &Path, json: bool, command: VendorCommand) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    match command {
        VendorCommand::Intents => show_list(
            &client.get("/vendor/intents")?,
            json,
            &["intent", "status", "decision", "text"],
            |i| {
                vec![
                    short(&i["id"]),
                    s(&i["status"]),
                    s(&i["decision"]),
                    s(&i["text"]),
                ]
            },
        ),
        VendorCommand::Offers => show_list(
            &client.get("/vendor/offers")?,
            json,
            &["offer", "intent", "total", "delivery"],
            |o| {
                vec![
                    short(&o["id"]),
                    short(&o["intent"]),
                    money(&o["total"]),
                    s(&o["delivery"]),
                ]
            },
        ),
        VendorCommand::Reload => {
            let reloaded = client.post("/vendor/reload", &json!({}))?;
            if json {
                print_json(&reloaded);
            } else {
                say!("catalog reloaded: {} items", reloaded["items"]);
            }
        }
    }
    Ok(())
}

/// `vrm open`: prints the web page's login link.
pub fn open(dir: &Path) -> anyhow::Result<()> {
    say!("{}", Client::from_data_dir(dir)?.login_link());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("h").is_err());
    }
}
