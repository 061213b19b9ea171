//! The joint log of a relationship and its rules (`proto/README.md`, "Relationships"), as
//! pure code: what may follow what, who signs what, and the checks anyone can run on an
//! exported log with nothing but the file.
//!
//! A [`Chain`] is the state of one log: the facts fixed by its accept (persona, vendor,
//! offer), the order's [`OrderState`], its length and last id. [`Chain::check`] says whether
//! an envelope may be the next entry and [`Chain::push`] adds it; both nodes and
//! [`verify_file`] go through these two, so the rules have one home.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::grants::{self, GrantState};
use super::kinds::{
    Accept, Agreement, EntryAck, Grant, Kind, Message, Offer, Order, OrderUpdate, Receipt,
    ReceiptStatus, RelationshipEnd, ReviewToken, Revoke, Status, link_input,
};
use super::limits::MAX_TEXT_BYTES;
use super::{DecodeError, Envelope, MessageId};

/// Most entries one relationship's log holds; the next is refused with `log-full`.
pub const MAX_ENTRIES: u32 = 1000;
/// The `format` of an exported log file.
pub const LOG_FORMAT: &str = "vrm/2/relationship-log";
/// Largest exported log file read, in bytes.
pub const MAX_LOG_FILE_BYTES: usize = 80 * 1024 * 1024;

/// Which side of a relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// The person, under the relationship persona.
    Person,
    /// The vendor, under its vendor key.
    Vendor,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Person => Side::Vendor,
            Side::Vendor => Side::Person,
        }
    }
}

/// Where the order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// The person accepted; the vendor has not answered.
    Accepted,
    /// The vendor restated the offer as an order; the person has not countersigned.
    Ordered,
    /// Both signed the order.
    Agreed,
    /// The vendor declined.
    Declined,
    /// The person cancelled.
    Cancelled,
}

/// The order's state, as the log so far makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// The stage.
    pub stage: Stage,
    /// The vendor said it shipped.
    pub shipped: bool,
    /// The vendor said it fulfilled the order.
    pub fulfilled: bool,
    /// The person said they received it.
    pub received: bool,
    /// Who ended the relationship, once one side did.
    pub ended_by: Option<Side>,
}

/// Why an entry (or a log) is refused: a stable code and the reason in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code})")]
pub struct RuleError {
    /// Stable code: `bad-entry`, `broken-chain`, `wrong-signer`, `not-now`, `ended`,
    /// `order-mismatch`, `log-full`, `bad-link`, `bad-offer`, `bad-ack`, and for the
    /// person's data `bad-terms`, `bad-grant`, `bad-receipt`.
    pub code: &'static str,
    /// What is wrong.
    pub reason: String,
}

pub(crate) fn rule(code: &'static str, reason: impl Into<String>) -> RuleError {
    RuleError {
        code,
        reason: reason.into(),
    }
}

impl From<DecodeError> for RuleError {
    fn from(e: DecodeError) -> Self {
        rule("bad-entry", e.to_string())
    }
}

/// A decoded log entry after the accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The vendor's order.
    Order(Order),
    /// A status change.
    Update(OrderUpdate, Status),
    /// A message.
    Message(Message),
    /// The end.
    End(RelationshipEnd),
    /// The vendor agrees to the person's terms.
    Agreement(Agreement),
    /// The person grants data.
    Grant(Grant),
    /// The person withdraws a grant.
    Revoke(Revoke),
    /// The vendor's receipt of a grant.
    Receipt(Receipt, ReceiptStatus),
    /// The vendor's token for a review of the fulfilled order.
    ReviewToken(ReviewToken),
}

impl Entry {
    /// Decodes an envelope that should be an entry after the accept.
    pub fn open(envelope: &Envelope) -> Result<Entry, RuleError> {
        Ok(match envelope.kind() {
            Kind::Order => Entry::Order(envelope.open()?),
            Kind::OrderUpdate => {
                let update: OrderUpdate = envelope.open()?;
                let status = Status::from_wire(&update.status).ok_or_else(|| {
                    rule("bad-entry", format!("unknown status {:?}", update.status))
                })?;
                Entry::Update(update, status)
            }
            Kind::Message => Entry::Message(envelope.open()?),
            Kind::RelationshipEnd => Entry::End(envelope.open()?),
            Kind::Agreement => Entry::Agreement(envelope.open()?),
            Kind::Grant => Entry::Grant(envelope.open()?),
            Kind::Revoke => Entry::Revoke(envelope.open()?),
            Kind::Receipt => {
                let receipt: Receipt = envelope.open()?;
                let status = ReceiptStatus::from_wire(&receipt.status).ok_or_else(|| {
                    rule(
                        "bad-entry",
                        format!("unknown receipt status {:?}", receipt.status),
                    )
                })?;
                Entry::Receipt(receipt, status)
            }
            Kind::ReviewToken => Entry::ReviewToken(envelope.open()?),
            other => return Err(rule("bad-entry", format!("a {other} is not a log entry"))),
        })
    }

    /// Its relationship, place and predecessor.
    pub fn place(&self) -> ([u8; 32], u32, [u8; 32]) {
        let (rel, seq, prev) = match self {
            Entry::Order(e) => (&e.rel, e.seq, &e.prev),
            Entry::Update(e, _) => (&e.rel, e.seq, &e.prev),
            Entry::Message(e) => (&e.rel, e.seq, &e.prev),
            Entry::End(e) => (&e.rel, e.seq, &e.prev),
            Entry::Agreement(e) => (&e.rel, e.seq, &e.prev),
            Entry::Grant(e) => (&e.rel, e.seq, &e.prev),
            Entry::Revoke(e) => (&e.rel, e.seq, &e.prev),
            Entry::Receipt(e, _) => (&e.rel, e.seq, &e.prev),
            Entry::ReviewToken(e) => (&e.rel, e.seq, &e.prev),
        };
        (**rel, seq, **prev)
    }

    /// Its free text.
    pub fn text(&self) -> &str {
        match self {
            Entry::Order(e) => &e.text,
            Entry::Update(e, _) => &e.text,
            Entry::Message(e) => &e.text,
            Entry::End(e) => &e.text,
            Entry::Receipt(e, _) => &e.text,
            Entry::Agreement(_) | Entry::Grant(_) | Entry::Revoke(_) | Entry::ReviewToken(_) => "",
        }
    }

    /// When its signer made it.
    pub fn created(&self) -> u64 {
        match self {
            Entry::Order(e) => e.created,
            Entry::Update(e, _) => e.created,
            Entry::Message(e) => e.created,
            Entry::End(e) => e.created,
            Entry::Agreement(e) => e.created,
            Entry::Grant(e) => e.created,
            Entry::Revoke(e) => e.created,
            Entry::Receipt(e, _) => e.created,
            Entry::ReviewToken(e) => e.created,
        }
    }
}

/// The state of one relationship's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    /// The relationship's id: its accept's.
    pub rel: [u8; 32],
    /// The relationship persona.
    pub persona: [u8; 32],
    /// The vendor's key.
    pub vendor: [u8; 32],
    /// The accepted offer's id.
    pub offer: [u8; 32],
    /// The order's state.
    pub state: OrderState,
    /// Entries so far (the accept included).
    pub len: u32,
    /// The last entry's id.
    pub last: [u8; 32],
    /// The offer's items, CBOR: an order must restate them exactly.
    items: ByteBuf,
    /// The terms the offer accepted: the ones an agreement may name.
    #[serde(default)]
    pub offered_terms: Vec<String>,
    /// The terms the vendor agreed to in the log, once it did.
    #[serde(default)]
    pub agreed_terms: Option<Vec<String>>,
    /// Every grant of the log, in order, with where it stands.
    #[serde(default)]
    pub grants: Vec<GrantState>,
    /// The id of the vendor's order entry, once written.
    #[serde(default)]
    pub order: Option<[u8; 32]>,
    /// The id of the vendor's review token, once written.
    #[serde(default)]
    pub token: Option<[u8; 32]>,
}

impl Chain {
    /// Starts a log with `accept` of `offer` (both envelopes): the accept is signed by the
    /// persona it names, binds this offer by id, and carries the intent persona's link
    /// signature; the offer is signed by the vendor it names and answers that intent.
    pub fn start(accept: &Envelope, offer: &Envelope) -> Result<(Chain, Accept), RuleError> {
        let body: Accept = accept.open()?;
        if body.persona.as_slice() != accept.signer().as_bytes() {
            return Err(rule(
                "wrong-signer",
                "the accept is not signed by its persona",
            ));
        }
        super::validate::check_reply_to(&body.reply_to)
            .map_err(|e| rule("bad-entry", format!("accept reply_to: {e}")))?;
        if offer.id().0 != *body.offer {
            return Err(rule(
                "bad-offer",
                "the offer is not the one the accept names",
            ));
        }
        let terms: Offer = offer
            .open()
            .map_err(|e| rule("bad-offer", format!("the offer does not open: {e}")))?;
        if terms.vendor.as_slice() != offer.signer().as_bytes() {
            return Err(rule("bad-offer", "the offer is not signed by its vendor"));
        }
        if terms.intent != body.intent || terms.persona != body.intent_persona {
            return Err(rule("bad-offer", "the offer answers another intent"));
        }
        let intent_persona = VerifyingKey::from_bytes(&body.intent_persona)
            .map_err(|_| rule("bad-link", "the intent persona is not a key"))?;
        let input = link_input(&body.persona, &terms.vendor, &body.offer);
        intent_persona
            .verify_strict(&input, &Signature::from_bytes(&body.link))
            .map_err(|_| rule("bad-link", "the intent persona did not sign this link"))?;
        let mut items = Vec::new();
        ciborium::into_writer(&terms.items, &mut items).expect("writing to a Vec cannot fail");
        let chain = Chain {
            rel: accept.id().0,
            persona: *body.persona,
            vendor: *terms.vendor,
            offer: offer.id().0,
            state: OrderState {
                stage: Stage::Accepted,
                shipped: false,
                fulfilled: false,
                received: false,
                ended_by: None,
            },
            len: 1,
            last: accept.id().0,
            items: items.into(),
            offered_terms: terms.accepted_terms,
            agreed_terms: None,
            grants: Vec::new(),
            order: None,
            token: None,
        };
        Ok((chain, body))
    }

    /// The side whose key signed `envelope`, if either.
    pub fn side_of(&self, envelope: &Envelope) -> Option<Side> {
        let signer = envelope.signer().as_bytes();
        if *signer == self.persona {
            Some(Side::Person)
        } else if *signer == self.vendor {
            Some(Side::Vendor)
        } else {
            None
        }
    }

    /// The key of `side`.
    pub fn key_of(&self, side: Side) -> [u8; 32] {
        match side {
            Side::Person => self.persona,
            Side::Vendor => self.vendor,
        }
    }

    /// Whether `envelope` may be the next entry: its place, its signer and the rules of
    /// the order. Returns the entry, its side and the state it leads to.
    pub fn check(&self, envelope: &Envelope) -> Result<(Entry, Side, OrderState), RuleError> {
        let entry = Entry::open(envelope)?;
        let (rel, seq, prev) = entry.place();
        if rel != self.rel {
            return Err(rule(
                "broken-chain",
                "the entry belongs to another relationship",
            ));
        }
        if seq != self.len || prev != self.last {
            return Err(rule(
                "broken-chain",
                format!(
                    "the entry says place {seq}; the log has {} entries and another last one",
                    self.len
                ),
            ));
        }
        if self.len >= MAX_ENTRIES {
            return Err(rule(
                "log-full",
                format!("a log holds {MAX_ENTRIES} entries"),
            ));
        }
        if entry.text().len() > MAX_TEXT_BYTES {
            return Err(rule(
                "bad-entry",
                format!("text over {MAX_TEXT_BYTES} bytes"),
            ));
        }
        let side = self
            .side_of(envelope)
            .ok_or_else(|| rule("wrong-signer", "signed by neither side"))?;
        let state = self.next_state(&entry, side)?;
        grants::check(self, &entry, side)?;
        Ok((entry, side, state))
    }

    /// Adds an entry [`Chain::check`] passed, with the state it gave.
    pub fn push(&mut self, envelope: &Envelope, state: OrderState) {
        if let Ok(entry) = Entry::open(envelope) {
            grants::apply(self, &entry, envelope.id().0);
            match entry {
                Entry::Order(_) => self.order = Some(envelope.id().0),
                Entry::ReviewToken(_) => self.token = Some(envelope.id().0),
                _ => {}
            }
        }
        self.state = state;
        self.len += 1;
        self.last = envelope.id().0;
    }

    fn next_state(&self, entry: &Entry, side: Side) -> Result<OrderState, RuleError> {
        let mut state = self.state;
        let deletion = matches!(entry, Entry::Receipt(_, ReceiptStatus::Deleted));
        if let Some(by) = state.ended_by.filter(|_| !deletion) {
            return Err(rule(
                "ended",
                format!("the {by:?} side ended the relationship"),
            ));
        }
        let not_now = |what: &str| {
            Err(rule(
                "not-now",
                format!("{what} is not allowed when the order is {:?}", self.state),
            ))
        };
        match entry {
            Entry::Agreement(_) | Entry::Grant(_) | Entry::Revoke(_) | Entry::Receipt(..) => {}
            Entry::Message(message) => {
                if message.text.trim().is_empty() {
                    return Err(rule("bad-entry", "an empty message"));
                }
            }
            Entry::End(_) => state.ended_by = Some(side),
            Entry::ReviewToken(token) => self.check_token(token, side)?,
            Entry::Order(order) => {
                if side != Side::Vendor {
                    return Err(rule("wrong-signer", "only the vendor signs the order"));
                }
                if state.stage != Stage::Accepted {
                    return not_now("an order");
                }
                let mut items = Vec::new();
                ciborium::into_writer(&order.items, &mut items)
                    .expect("writing to a Vec cannot fail");
                if items != *self.items {
                    return Err(rule(
                        "order-mismatch",
                        "the order does not restate the offer's items exactly",
                    ));
                }
                state.stage = Stage::Ordered;
            }
            Entry::Update(_, status) => {
                let signer_ok = match side {
                    Side::Vendor => status.by_vendor(),
                    Side::Person => !status.by_vendor(),
                };
                if !signer_ok {
                    return Err(rule(
                        "wrong-signer",
                        format!("{} is not the {side:?}'s to sign", status.as_str()),
                    ));
                }
                let delivered = state.shipped || state.fulfilled || state.received;
                let agreed = state.stage == Stage::Agreed;
                let allowed = match status {
                    Status::Agreed => state.stage == Stage::Ordered,
                    Status::Declined => matches!(state.stage, Stage::Accepted | Stage::Ordered),
                    Status::Cancelled => {
                        matches!(
                            state.stage,
                            Stage::Accepted | Stage::Ordered | Stage::Agreed
                        ) && !delivered
                    }
                    Status::Shipped => agreed && !state.fulfilled && !state.received,
                    Status::Fulfilled => agreed && !state.fulfilled,
                    Status::Received => agreed && !state.received,
                };
                if !allowed {
                    return not_now(status.as_str());
                }
                match status {
                    Status::Agreed => state.stage = Stage::Agreed,
                    Status::Declined => state.stage = Stage::Declined,
                    Status::Cancelled => state.stage = Stage::Cancelled,
                    Status::Shipped => state.shipped = true,
                    Status::Fulfilled => state.fulfilled = true,
                    Status::Received => state.received = true,
                }
            }
        }
        Ok(state)
    }

    /// A review token: the vendor's, once, for an agreed order fulfilled or received, naming
    /// the relationship persona and the order entry.
    fn check_token(&self, token: &ReviewToken, side: Side) -> Result<(), RuleError> {
        if side != Side::Vendor {
            return Err(rule("wrong-signer", "only the vendor signs a review token"));
        }
        let state = self.state;
        if state.stage != Stage::Agreed || !(state.fulfilled || state.received) {
            return Err(rule(
                "not-now",
                "a review token follows a fulfilled or received order only",
            ));
        }
        if self.token.is_some() {
            return Err(rule("not-now", "the log holds a review token already"));
        }
        if *token.persona != self.persona || Some(*token.order) != self.order {
            return Err(rule(
                "bad-token",
                "the token names another persona or another order",
            ));
        }
        Ok(())
    }

    /// Whether `ack` is the other side's acknowledgement of `entry`, signed by `signer`
    /// at place `seq`.
    pub fn check_ack(&self, ack: &Envelope, seq: u32, entry: &MessageId) -> Result<(), RuleError> {
        let body: EntryAck = ack.open()?;
        if *body.rel != self.rel || body.seq != seq || *body.entry != entry.0 {
            return Err(rule(
                "bad-ack",
                format!("not an acknowledgement of entry {seq}"),
            ));
        }
        Ok(())
    }
}

/// One entry of an exported log, with the other side's acknowledgement once it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The entry's envelope.
    pub entry: ByteBuf,
    /// The other side's [`EntryAck`] of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<ByteBuf>,
}

/// An exported log: the offer it started from and every entry in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFile {
    /// [`LOG_FORMAT`].
    pub format: String,
    /// The accepted offer's envelope.
    pub offer: ByteBuf,
    /// The entries, the accept first.
    pub entries: Vec<LogRecord>,
}

impl LogFile {
    /// Reads a log file: bounded in size, in its one canonical encoding, of this format.
    pub fn decode(bytes: &[u8]) -> Result<LogFile, LogError> {
        if bytes.len() > MAX_LOG_FILE_BYTES {
            return Err(LogError::NotALog(format!(
                "{} bytes, more than a log may hold",
                bytes.len()
            )));
        }
        let file: LogFile =
            ciborium::from_reader(bytes).map_err(|e| LogError::NotALog(e.to_string()))?;
        if file.to_bytes() != bytes {
            return Err(LogError::NotALog("not in its canonical encoding".into()));
        }
        if file.format != LOG_FORMAT {
            return Err(LogError::NotALog(format!("format {:?}", file.format)));
        }
        Ok(file)
    }

    /// The file's bytes (CBOR).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("writing to a Vec cannot fail");
        out
    }
}

/// What a verified log shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The relationship's chain after the last entry.
    pub chain: Chain,
    /// Entries whose acknowledgement is in the file.
    pub acknowledged: u32,
}

/// Why a log file is refused: where, and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The file is not a log file.
    #[error("not a relationship log: {0}")]
    NotALog(String),
    /// An entry (or its acknowledgement) breaks a rule.
    #[error("entry {at}: {error}")]
    Entry {
        /// The entry's place.
        at: usize,
        /// The rule.
        error: RuleError,
    },
}

/// Checks an exported log alone: the offer, the accept, every entry's signature, place,
/// predecessor and signer, the order's rules, and every acknowledgement present.
pub fn verify_file(bytes: &[u8]) -> Result<Verified, LogError> {
    let file = LogFile::decode(bytes)?;
    let at = |at: usize| move |error: RuleError| LogError::Entry { at, error };
    let offer =
        Envelope::decode(&file.offer).map_err(|e| LogError::NotALog(format!("the offer: {e}")))?;
    let first = file
        .entries
        .first()
        .ok_or_else(|| LogError::NotALog("no entries".into()))?;
    let accept = Envelope::decode(&first.entry).map_err(|e| at(0)(e.into()))?;
    let (mut chain, _) = Chain::start(&accept, &offer).map_err(at(0))?;
    let mut acknowledged = 0;
    let mut envelopes = vec![(accept, Side::Person)];
    for (n, record) in file.entries.iter().enumerate().skip(1) {
        let envelope = Envelope::decode(&record.entry).map_err(|e| at(n)(e.into()))?;
        let (_, side, state) = chain.check(&envelope).map_err(at(n))?;
        chain.push(&envelope, state);
        envelopes.push((envelope, side));
    }
    for (n, (record, (envelope, side))) in file.entries.iter().zip(&envelopes).enumerate() {
        let Some(ack) = &record.ack else { continue };
        let ack = Envelope::decode(ack).map_err(|e| at(n)(e.into()))?;
        if *ack.signer().as_bytes() != chain.key_of(side.other()) {
            return Err(at(n)(rule(
                "bad-ack",
                "the acknowledgement is not the other side's",
            )));
        }
        let seq = u32::try_from(n).expect("at most MAX_ENTRIES entries");
        chain.check_ack(&ack, seq, &envelope.id()).map_err(at(n))?;
        acknowledged += 1;
    }
    Ok(Verified {
        chain,
        acknowledged,
    })
}

#[cfg(test)]
/// A vendor's offer and a person's accept of it, for the tests of the log and the store.
pub(crate) mod test_support {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;
    use crate::proto::{OfferItem, Price, ReplyTo};

    pub(crate) struct Parties {
        pub(crate) intent_persona: SigningKey,
        pub(crate) persona: SigningKey,
        pub(crate) vendor: SigningKey,
        pub(crate) offer: Envelope,
    }

    pub(crate) fn parties() -> Parties {
        let intent_persona = SigningKey::from_bytes(&[1; 32]);
        let vendor = SigningKey::from_bytes(&[3; 32]);
        let offer = Offer {
            intent: [9; 16].into(),
            persona: intent_persona.verifying_key().to_bytes().into(),
            vendor: vendor.verifying_key().to_bytes().into(),
            items: vec![OfferItem {
                title: "A used ThinkPad".into(),
                price: Price {
                    amount: 35_000,
                    currency: "EUR".into(),
                },
                quantity: 1,
                sku: None,
            }],
            text: String::new(),
            created: 100,
            valid_until: 200,
            accepted_terms: vec![],
            inbox: None,
            group: None,
        };
        Parties {
            offer: Envelope::seal(&offer, &vendor),
            intent_persona,
            persona: SigningKey::from_bytes(&[2; 32]),
            vendor,
        }
    }

    pub(crate) fn accept(p: &Parties) -> Envelope {
        let persona = p.persona.verifying_key().to_bytes();
        let vendor = p.vendor.verifying_key().to_bytes();
        let link = p
            .intent_persona
            .sign(&link_input(&persona, &vendor, &p.offer.id().0));
        let body = Accept {
            offer: p.offer.id().0.into(),
            intent: [9; 16].into(),
            intent_persona: p.intent_persona.verifying_key().to_bytes().into(),
            persona: persona.into(),
            link: link.to_bytes().into(),
            reply_to: ReplyTo::nowhere(),
            created: 110,
        };
        Envelope::seal(&body, &p.persona)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::test_support::{Parties, accept, parties};
    use super::*;
    use crate::proto::OfferItem;

    fn update(chain: &Chain, status: Status, key: &SigningKey) -> Envelope {
        let body = OrderUpdate {
            rel: chain.rel.into(),
            seq: chain.len,
            prev: chain.last.into(),
            status: status.as_str().into(),
            text: String::new(),
            created: 120,
        };
        Envelope::seal(&body, key)
    }

    fn order(chain: &Chain, p: &Parties, items: Vec<OfferItem>) -> Envelope {
        let body = Order {
            rel: chain.rel.into(),
            seq: chain.len,
            prev: chain.last.into(),
            items,
            text: String::new(),
            created: 115,
        };
        Envelope::seal(&body, &p.vendor)
    }

    fn ack_of(chain: &Chain, seq: u32, entry: &Envelope, key: &SigningKey) -> Envelope {
        let body = EntryAck {
            rel: chain.rel.into(),
            seq,
            entry: entry.id().0.into(),
            created: 130,
        };
        Envelope::seal(&body, key)
    }

    /// accept, order, agreed, shipped: each acknowledged by the other side.
    fn valid_log(p: &Parties) -> (Vec<Envelope>, Vec<Envelope>) {
        let accept = accept(p);
        let (mut chain, _) = Chain::start(&accept, &p.offer).unwrap();
        let mut entries = vec![accept];
        for make in [0, 1, 2] {
            let envelope = match make {
                0 => order(&chain, p, p.offer.open::<Offer>().unwrap().items),
                1 => update(&chain, Status::Agreed, &p.persona),
                _ => update(&chain, Status::Shipped, &p.vendor),
            };
            let (_, _, state) = chain.check(&envelope).unwrap();
            chain.push(&envelope, state);
            entries.push(envelope);
        }
        let acks = entries
            .iter()
            .enumerate()
            .map(|(n, e)| {
                let other = if *e.signer().as_bytes() == chain.persona {
                    &p.vendor
                } else {
                    &p.persona
                };
                ack_of(&chain, n as u32, e, other)
            })
            .collect();
        (entries, acks)
    }

    fn file(p: &Parties, entries: &[Envelope], acks: &[Envelope]) -> Vec<u8> {
        LogFile {
            format: LOG_FORMAT.into(),
            offer: p.offer.as_bytes().to_vec().into(),
            entries: entries
                .iter()
                .zip(acks.iter().map(Some).chain(std::iter::repeat(None)))
                .map(|(e, a)| LogRecord {
                    entry: e.as_bytes().to_vec().into(),
                    ack: a.map(|a| a.as_bytes().to_vec().into()),
                })
                .collect(),
        }
        .to_bytes()
    }

    fn refused_at(bytes: &[u8]) -> (usize, &'static str) {
        match verify_file(bytes) {
            Err(LogError::Entry { at, error }) => (at, error.code),
            other => panic!("expected an entry refused, got {other:?}"),
        }
    }

    #[test]
    fn a_whole_log_verifies_and_says_where_it_stands() {
        let p = parties();
        let (entries, acks) = valid_log(&p);
        let verified = verify_file(&file(&p, &entries, &acks)).unwrap();
        assert_eq!(verified.chain.len, 4);
        assert_eq!(verified.acknowledged, 4);
        assert_eq!(verified.chain.state.stage, Stage::Agreed);
        assert!(verified.chain.state.shipped);
        // Acknowledgements may be missing (the last ones still on their way).
        let verified = verify_file(&file(&p, &entries, &acks[..2])).unwrap();
        assert_eq!(verified.acknowledged, 2);
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let p = parties();
        let (entries, acks) = valid_log(&p);
        let good = file(&p, &entries, &acks);
        for at in (0..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            assert!(
                verify_file(&bad).is_err(),
                "byte {at} changed and still valid"
            );
        }
    }

    #[test]
    fn a_removed_entry_breaks_the_chain_where_it_was() {
        let p = parties();
        let (mut entries, _) = valid_log(&p);
        entries.remove(2);
        assert_eq!(refused_at(&file(&p, &entries, &[])), (2, "broken-chain"));
    }

    #[test]
    fn an_update_signed_by_the_wrong_side_is_refused() {
        let p = parties();
        let (mut entries, _) = valid_log(&p);
        let (mut chain, _) = Chain::start(&entries[0], &p.offer).unwrap();
        for e in &entries[1..3] {
            let (_, _, state) = chain.check(e).unwrap();
            chain.push(e, state);
        }
        entries[3] = update(&chain, Status::Shipped, &p.persona);
        assert_eq!(refused_at(&file(&p, &entries, &[])), (3, "wrong-signer"));
        entries[3] = update(&chain, Status::Received, &p.vendor);
        assert_eq!(refused_at(&file(&p, &entries, &[])), (3, "wrong-signer"));
        let stranger = SigningKey::from_bytes(&[7; 32]);
        entries[3] = update(&chain, Status::Shipped, &stranger);
        assert_eq!(refused_at(&file(&p, &entries, &[])), (3, "wrong-signer"));
    }

    #[test]
    fn the_rules_of_the_order_hold_at_each_place() {
        let p = parties();
        let (entries, _) = valid_log(&p);
        let (mut chain, _) = Chain::start(&entries[0], &p.offer).unwrap();
        let code = |chain: &Chain, e: &Envelope| chain.check(e).unwrap_err().code;
        // Before the order: no agreement, no shipment; an order must restate the offer.
        assert_eq!(
            code(&chain, &update(&chain, Status::Agreed, &p.persona)),
            "not-now"
        );
        assert_eq!(
            code(&chain, &update(&chain, Status::Shipped, &p.vendor)),
            "not-now"
        );
        let mut items = p.offer.open::<Offer>().unwrap().items;
        items[0].price.amount += 1;
        assert_eq!(code(&chain, &order(&chain, &p, items)), "order-mismatch");
        for e in &entries[1..] {
            let (_, _, state) = chain.check(e).unwrap();
            chain.push(e, state);
        }
        // Shipped: the person can no longer cancel, the vendor no longer decline.
        assert_eq!(
            code(&chain, &update(&chain, Status::Cancelled, &p.persona)),
            "not-now"
        );
        assert_eq!(
            code(&chain, &update(&chain, Status::Declined, &p.vendor)),
            "not-now"
        );
        let end = Envelope::seal(
            &RelationshipEnd {
                rel: chain.rel.into(),
                seq: chain.len,
                prev: chain.last.into(),
                text: String::new(),
                created: 140,
            },
            &p.persona,
        );
        let (_, _, state) = chain.check(&end).unwrap();
        chain.push(&end, state);
        assert_eq!(
            code(&chain, &update(&chain, Status::Received, &p.persona)),
            "ended"
        );
    }

    #[test]
    fn an_acknowledgement_counts_only_from_the_other_side_for_that_entry() {
        let p = parties();
        let (entries, mut acks) = valid_log(&p);
        let (chain, _) = Chain::start(&entries[0], &p.offer).unwrap();
        // The person acknowledging its own accept.
        acks[0] = ack_of(&chain, 0, &entries[0], &p.persona);
        assert_eq!(refused_at(&file(&p, &entries, &acks)), (0, "bad-ack"));
        // The vendor's acknowledgement of another entry, put under the accept.
        acks[0] = ack_of(&chain, 0, &entries[2], &p.vendor);
        assert_eq!(refused_at(&file(&p, &entries, &acks)), (0, "bad-ack"));
    }

    #[test]
    fn an_accept_must_link_to_the_intent_persona_for_this_vendor_and_offer() {
        let p = parties();
        let good = accept(&p);
        let mut body: Accept = good.open().unwrap();
        let other_vendor = [8; 32];
        let persona = p.persona.verifying_key().to_bytes();
        body.link = p
            .intent_persona
            .sign(&link_input(&persona, &other_vendor, &p.offer.id().0))
            .to_bytes()
            .into();
        let replayed = Envelope::seal(&body, &p.persona);
        assert_eq!(
            Chain::start(&replayed, &p.offer).unwrap_err().code,
            "bad-link"
        );
        let by_other = Envelope::seal(&good.open::<Accept>().unwrap(), &p.vendor);
        assert_eq!(
            Chain::start(&by_other, &p.offer).unwrap_err().code,
            "wrong-signer"
        );
    }

    fn message(chain: &Chain, seq: u32, prev: [u8; 32], text: &str, key: &SigningKey) -> Envelope {
        let body = Message {
            rel: chain.rel.into(),
            seq,
            prev: prev.into(),
            text: text.into(),
            created: 125,
        };
        Envelope::seal(&body, key)
    }

    #[test]
    fn an_entry_must_name_both_its_place_and_the_entry_before_it() {
        let p = parties();
        let (chain, _) = Chain::start(&accept(&p), &p.offer).unwrap();
        let code = |e: &Envelope| chain.check(e).unwrap_err().code;
        assert_eq!(
            code(&message(&chain, 1, [7; 32], "hi", &p.persona)),
            "broken-chain"
        );
        assert_eq!(
            code(&message(&chain, 2, chain.last, "hi", &p.persona)),
            "broken-chain"
        );
        let good = message(&chain, 1, chain.last, "hi", &p.persona);
        let (entry, side, _) = chain.check(&good).unwrap();
        assert_eq!(
            (side, entry.text(), entry.created()),
            (Side::Person, "hi", 125)
        );
    }

    #[test]
    fn a_text_may_be_as_long_as_the_limit_and_no_longer() {
        let p = parties();
        let (chain, _) = Chain::start(&accept(&p), &p.offer).unwrap();
        let longest = "x".repeat(MAX_TEXT_BYTES);
        let at_limit = message(&chain, 1, chain.last, &longest, &p.vendor);
        assert!(chain.check(&at_limit).is_ok());
        let over = message(&chain, 1, chain.last, &(longest + "x"), &p.vendor);
        assert_eq!(chain.check(&over).unwrap_err().code, "bad-entry");
    }

    #[test]
    fn an_accept_must_name_the_intent_and_the_persona_the_offer_answers() {
        let p = parties();
        for (intent, intent_persona) in [([8; 16], true), ([9; 16], false)] {
            let mut body: Accept = accept(&p).open().unwrap();
            body.intent = intent.into();
            if !intent_persona {
                body.intent_persona = [5; 32].into();
            }
            let accept = Envelope::seal(&body, &p.persona);
            assert_eq!(
                Chain::start(&accept, &p.offer).unwrap_err().code,
                "bad-offer"
            );
        }
    }

    #[test]
    fn a_log_file_is_refused_for_its_size_only_past_the_limit() {
        // 1,000 entries of the largest kind (an order of 64 items) with their acks stay
        // well under 64 MiB: a file that large is read, not refused for its size.
        for len in [64 * 1024 * 1024, MAX_LOG_FILE_BYTES] {
            let Err(LogError::NotALog(why)) = verify_file(&vec![0u8; len]) else {
                panic!("zeros are no log");
            };
            assert!(!why.contains("more than"), "{len}: {why}");
        }
        let Err(LogError::NotALog(why)) = verify_file(&vec![0u8; MAX_LOG_FILE_BYTES + 1]) else {
            panic!("too large is no log");
        };
        assert!(why.contains("more than a log may hold"), "{why}");
    }

    /// Each status after a history of updates: allowed, or `not-now`.
    #[test]
    fn each_status_is_allowed_only_at_its_stage() {
        use Status::*;
        let p = parties();
        let by = |status: Status| {
            if status.by_vendor() {
                &p.vendor
            } else {
                &p.persona
            }
        };
        let cases: &[(&[Status], Status, bool)] = &[
            (&[], Fulfilled, false),
            (&[], Received, false),
            (&[Agreed], Fulfilled, true),
            (&[Agreed, Fulfilled], Fulfilled, false),
            (&[Agreed], Received, true),
            (&[Agreed, Received], Received, false),
            (&[Agreed, Fulfilled], Cancelled, false),
            (&[Agreed, Received], Cancelled, false),
            (&[Agreed], Cancelled, true),
            (&[Agreed, Fulfilled], Shipped, false),
            (&[Agreed, Received], Shipped, false),
            (&[Agreed, Shipped], Shipped, true),
            (&[Agreed], Declined, false),
            (&[], Declined, true),
        ];
        for (history, next, allowed) in cases {
            let accept = accept(&p);
            let (mut chain, _) = Chain::start(&accept, &p.offer).unwrap();
            let items = p.offer.open::<Offer>().unwrap().items;
            let ordered = order(&chain, &p, items);
            let (_, _, state) = chain.check(&ordered).unwrap();
            chain.push(&ordered, state);
            for status in *history {
                let e = update(&chain, *status, by(*status));
                let (_, _, state) = chain.check(&e).unwrap();
                chain.push(&e, state);
            }
            let result = chain.check(&update(&chain, *next, by(*next)));
            match allowed {
                true => assert!(result.is_ok(), "{next:?} after {history:?}: {result:?}"),
                false => assert_eq!(
                    result.unwrap_err().code,
                    "not-now",
                    "{next:?} after {history:?}"
                ),
            }
        }
    }

    #[test]
    fn an_acknowledgement_names_the_relationship_the_place_and_the_entry() {
        let p = parties();
        let accept = accept(&p);
        let (chain, _) = Chain::start(&accept, &p.offer).unwrap();
        let id = accept.id();
        assert!(
            chain
                .check_ack(&ack_of(&chain, 0, &accept, &p.vendor), 0, &id)
                .is_ok()
        );
        let other_place = ack_of(&chain, 1, &accept, &p.vendor);
        assert_eq!(
            chain.check_ack(&other_place, 0, &id).unwrap_err().code,
            "bad-ack"
        );
        let other_entry = ack_of(&chain, 0, &p.offer, &p.vendor);
        assert_eq!(
            chain.check_ack(&other_entry, 0, &id).unwrap_err().code,
            "bad-ack"
        );
        let mut elsewhere = chain.clone();
        elsewhere.rel = [4; 32];
        let other_rel = ack_of(&elsewhere, 0, &accept, &p.vendor);
        assert_eq!(
            chain.check_ack(&other_rel, 0, &id).unwrap_err().code,
            "bad-ack"
        );
    }
}
