//! The CLI verbs that talk to a running daemon: tables for people, `--json` for scripts. They
//! read the API's typed [views](crate::api::views).

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::api::views::{
    CastBody, CastView, DatesView, IntentView, MoneyView, OfferView, PeerView, ReloadView,
    StatusView, TermView,
};
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
    /// Orders and conversations with persons.
    #[command(flatten)]
    Order(super::relationship::VendorOrderCommand),
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

/// `value` as JSON, pretty or on one line, its keys sorted as `--json` has always printed
/// them (the order of a `serde_json::Value`).
fn json_text(value: &impl Serialize, pretty: bool) -> String {
    let value = serde_json::to_value(value).unwrap_or_default();
    if pretty {
        serde_json::to_string_pretty(&value).unwrap_or_default()
    } else {
        value.to_string()
    }
}

pub(super) fn print_json(value: &impl Serialize) {
    say!("{}", json_text(value, true));
}

/// Prints a list as JSON, or as a table with one row per element.
pub(super) fn show_list<T: Serialize>(
    list: &[T],
    json: bool,
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) {
    if json {
        print_json(&list);
    } else {
        table(headers, list, row);
    }
}

/// Prints one row per element under headers, columns padded to their widest cell.
pub(super) fn table<T>(headers: &[&str], list: &[T], row: impl Fn(&T) -> Vec<String>) {
    let rows: Vec<Vec<String>> = list.iter().map(row).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(&headers.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>());
    for row in &rows {
        line(row);
    }
}

/// The first 12 characters of an id or key.
pub(super) fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// An amount for people, or nothing.
fn money(amount: Option<&MoneyView>) -> String {
    amount.map(|m| m.display.clone()).unwrap_or_default()
}

/// `vrm status`
pub fn status(dir: &Path, json: bool) -> anyhow::Result<()> {
    let st: StatusView = Client::from_data_dir(dir)?.get("/status")?;
    if json {
        print_json(&st);
        return Ok(());
    }
    say!("peer id   {}", st.peer_id);
    if let Some(key) = &st.vendor_key {
        say!(
            "vendor    {} ({key})",
            st.vendor_name.as_deref().unwrap_or_default()
        );
    }
    say!("role      {}", st.role);
    say!("peers     {}", st.peers);
    for peer in &st.service_nodes {
        say!("service   {peer}");
    }
    if st.role == "service" {
        let shards: Vec<String> = st.shards.iter().map(u8::to_string).collect();
        say!("shards    {}", shards.join(", "));
        say!(
            "mailbox   {} queues, {} items, {} bytes",
            st.mailbox.queues,
            st.mailbox.items,
            st.mailbox.bytes
        );
    }
    say!("intents   {}", st.intents);
    say!("offers    {}", st.offers);
    say!("outbox    {}", st.outbox);
    for addr in &st.listen {
        say!("listen    {addr}");
    }
    Ok(())
}

/// `vrm peers`
pub fn peers(dir: &Path, json: bool) -> anyhow::Result<()> {
    let peers: Vec<PeerView> = Client::from_data_dir(dir)?.get("/peers")?;
    let headers = &["peer", "role", "direction", "shards", "score"];
    show_list(&peers, json, headers, |p| {
        let shards: Vec<String> = p.shards.iter().map(u8::to_string).collect();
        vec![
            p.peer.clone(),
            if p.service { "service" } else { "light" }.into(),
            p.direction.clone(),
            shards.join(","),
            p.score.map(|x| format!("{x:.1}")).unwrap_or_default(),
        ]
    });
    Ok(())
}

const INTENT_HEADERS: &[&str] = &["id", "status", "category", "max price", "offers", "text"];

fn intent_row(i: &IntentView) -> Vec<String> {
    vec![
        i.id.clone(),
        i.status.clone(),
        i.category.clone(),
        money(i.max_price.as_ref()),
        i.offers.to_string(),
        i.text.clone(),
    ]
}

impl From<CastArgs> for CastBody {
    fn from(args: CastArgs) -> Self {
        let proffered = args.terms.into_iter().map(|id| TermView {
            id,
            required: false,
        });
        let required = args
            .required
            .into_iter()
            .map(|id| TermView { id, required: true });
        CastBody {
            category: args.category,
            subcategory: args.subcategory,
            text: args.text,
            max_price: args.max_price,
            currency: args.currency,
            place: args.place,
            dates: args
                .from
                .zip(args.to)
                .map(|(from, to)| DatesView { from, to }),
            quantity: args.quantity,
            terms: proffered.chain(required).collect(),
            expires_in_secs: Some(args.expires),
        }
    }
}

/// What `vrm intent show --json` prints.
#[derive(Serialize)]
struct IntentWithOffers {
    intent: IntentView,
    offers: Vec<OfferView>,
}

/// `vrm intent ...`
pub fn intent(dir: &Path, json: bool, command: IntentCommand) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    match command {
        IntentCommand::Cast(args) => {
            let cast: CastView = client.post("/intents", &CastBody::from(*args))?;
            if json {
                print_json(&cast);
            } else {
                say!("cast intent {}", cast.id);
            }
        }
        IntentCommand::List => {
            let intents: Vec<IntentView> = client.get("/intents?origin=own")?;
            show_list(&intents, json, INTENT_HEADERS, intent_row);
        }
        IntentCommand::Show { id } => {
            let shown = IntentWithOffers {
                intent: client.get(&format!("/intents/{id}"))?,
                offers: client.get(&format!("/intents/{id}/offers"))?,
            };
            if json {
                print_json(&shown);
            } else {
                table(
                    INTENT_HEADERS,
                    std::slice::from_ref(&shown.intent),
                    intent_row,
                );
                say!();
                table(OFFER_HEADERS, &shown.offers, offer_row);
            }
        }
        IntentCommand::Withdraw { id } => {
            let intent: IntentView = client.post_empty(&format!("/intents/{id}/withdraw"))?;
            if json {
                print_json(&intent);
            } else {
                say!("withdrew intent {}", intent.id);
            }
        }
    }
    Ok(())
}

const OFFER_HEADERS: &[&str] = &["offer", "vendor", "rating", "total", "items"];

fn offer_row(o: &OfferView) -> Vec<String> {
    let items: Vec<String> = o
        .items
        .iter()
        .map(|i| format!("{} x {} @ {}", i.quantity, i.title, i.price.display))
        .collect();
    vec![
        short(&o.id),
        o.vendor_name.clone().unwrap_or_else(|| short(&o.vendor)),
        o.reputation
            .as_ref()
            .map(super::reviews::rating)
            .unwrap_or_default(),
        money(o.total.as_ref()),
        items.join("; "),
    ]
}

/// The one event of the daemon's stream that `vrm offers --watch` acts on; the others (see
/// [`crate::node::NodeEvent`]) are skipped.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum WatchedEvent {
    /// An offer to one of the person's intents arrived.
    OfferReceived { intent: String, offer: String },
    /// Any other event.
    #[serde(other)]
    Other,
}

/// `vrm offers [--intent ID] [--watch]`
pub fn offers(dir: &Path, json: bool, intent: Option<String>, watch: bool) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    let path = match &intent {
        Some(id) => format!("/intents/{id}/offers"),
        None => "/offers".to_owned(),
    };
    let offers: Vec<OfferView> = client.get(&path)?;
    if !watch {
        show_list(&offers, json, OFFER_HEADERS, offer_row);
        return Ok(());
    }
    // Followed, each offer is one line: JSON, or a table row.
    let line = |offer: &OfferView| {
        if json {
            say!("{}", json_text(offer, false));
        } else {
            say!("{}", offer_row(offer).join("  "));
        }
    };
    if json {
        offers.iter().for_each(line);
    } else {
        table(OFFER_HEADERS, &offers, offer_row);
    }
    client.watch(|event: WatchedEvent| {
        let WatchedEvent::OfferReceived {
            intent: for_intent,
            offer,
        } = event
        else {
            return Ok(true);
        };
        if intent.as_ref().is_some_and(|id| *id != for_intent) {
            return Ok(true);
        }
        let all: Vec<OfferView> = client.get(&format!("/intents/{for_intent}/offers"))?;
        let offer = all
            .into_iter()
            .find(|o| o.id == offer)
            .context("the offer announced is not in the store")?;
        line(&offer);
        Ok(true)
    })
}

const RECEIVED_INTENT_HEADERS: &[&str] = &["intent", "status", "decision", "text"];

fn received_intent_row(i: &IntentView) -> Vec<String> {
    vec![
        short(&i.id),
        i.status.clone(),
        i.decision.clone().unwrap_or_default(),
        i.text.clone(),
    ]
}

const SENT_OFFER_HEADERS: &[&str] = &["offer", "intent", "total", "delivery"];

fn sent_offer_row(o: &OfferView) -> Vec<String> {
    vec![
        short(&o.id),
        short(&o.intent),
        money(o.total.as_ref()),
        o.delivery.clone(),
    ]
}

/// `vrm vendor ...`
pub fn vendor(dir: &Path, json: bool, command: VendorCommand) -> anyhow::Result<()> {
    let client = Client::from_data_dir(dir)?;
    match command {
        VendorCommand::Intents => {
            let intents: Vec<IntentView> = client.get("/vendor/intents")?;
            show_list(&intents, json, RECEIVED_INTENT_HEADERS, received_intent_row);
        }
        VendorCommand::Offers => {
            let offers: Vec<OfferView> = client.get("/vendor/offers")?;
            show_list(&offers, json, SENT_OFFER_HEADERS, sent_offer_row);
        }
        VendorCommand::Reload => {
            let reloaded: ReloadView = client.post_empty("/vendor/reload")?;
            if json {
                print_json(&reloaded);
            } else {
                say!("catalog reloaded: {} items", reloaded.items);
            }
        }
        VendorCommand::Order(command) => {
            return super::relationship::vendor_order(dir, json, command);
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
    use crate::node::NodeEvent;

    #[test]
    fn the_watch_reads_offer_events_and_skips_the_others() {
        let event = |e: &NodeEvent| {
            serde_json::from_value::<WatchedEvent>(serde_json::to_value(e).unwrap()).unwrap()
        };
        let received = NodeEvent::OfferReceived {
            intent: "aa".into(),
            offer: "bb".into(),
            vendor: "cc".into(),
        };
        assert_eq!(
            event(&received),
            WatchedEvent::OfferReceived {
                intent: "aa".into(),
                offer: "bb".into()
            }
        );
        let other = NodeEvent::PeerConnected { peer: "p".into() };
        assert_eq!(event(&other), WatchedEvent::Other);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("h").is_err());
    }
}
