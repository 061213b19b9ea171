//! What the node tells the rest of the program: [`NodeEvent`]s as they happen, and
//! [`Stats`], counters of what it accepted and refused.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// Something that happened in the node.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[allow(missing_docs)] // fields are named by their variant's doc
pub enum NodeEvent {
    /// The node listens on a new address.
    Listening { addr: String },
    /// A connection to a peer opened.
    PeerConnected { peer: String },
    /// The last connection to a peer closed.
    PeerDisconnected { peer: String },
    /// One of the person's intents reached its expiry.
    IntentExpired { intent: String },
    /// The person cast an intent (stored, queued for publishing).
    IntentCast { intent: String, category: String },
    /// An intent or withdrawal left this node on gossip.
    Published { message: String, topic: String },
    /// A vendor node stored an intent it serves.
    IntentReceived { intent: String, category: String },
    /// An intent was withdrawn (by this person, or seen withdrawn by its caster).
    IntentWithdrawn { intent: String },
    /// An offer to the person's intent arrived and was stored.
    OfferReceived {
        intent: String,
        offer: String,
        vendor: String,
    },
    /// A vendor node made an offer (stored, queued for delivery).
    OfferSent { intent: String, offer: String },
    /// A vendor node decided not to answer an intent.
    OfferNotMade { intent: String, reason: String },
    /// The person's node acknowledged an offer.
    OfferDelivered { offer: String },
    /// The person's node refused an offer.
    OfferRefused { offer: String, code: String },
    /// An outgoing message expired before delivery.
    OutboxExpired { message: String },
    /// A newer vendor profile was stored.
    ProfileStored { vendor: String, name: String },
    /// A review of a vendor was stored (a vendor's reputation changed).
    ReviewStored { vendor: String },
    /// A collective intent gained or lost a member.
    GroupChanged { group: String },
    /// The vendor's catalog was (re)loaded.
    CatalogReloaded { items: usize },
    /// A changed catalog file was refused; the previous catalog stays in force.
    CatalogRejected { error: String },
    /// An entry was placed in a relationship's log (or, the person's own, written and
    /// pending until the vendor's node places it).
    RelationshipEntry {
        relationship: String,
        seq: u32,
        kind: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        from: crate::proto::relationship::Side,
    },
    /// One side acknowledged the other's entry `seq` (on the person's side, this also
    /// places the person's pending entries up to it).
    RelationshipAcknowledged {
        relationship: String,
        seq: u32,
        by: crate::proto::relationship::Side,
    },
    /// One of the person's pending entries no longer stands: a vendor entry took its place
    /// first and the rules do not allow it after that (a cancel after a shipment).
    RelationshipEntryVoid {
        relationship: String,
        reason: String,
    },
    /// A message from the network was refused.
    Rejected {
        peer: String,
        code: String,
        reason: String,
    },
}

/// Counters of what the node accepted and refused, by reason.
#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    /// Adds one to `name`.
    pub fn bump(&self, name: &str) {
        self.add(name, 1);
    }

    /// Adds `n` to `name`.
    pub fn add(&self, name: &str, n: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(name.to_owned()).or_default() += n;
    }

    /// A copy of all counters.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One counter.
    pub fn get(&self, name: &str) -> u64 {
        self.snapshot().get(name).copied().unwrap_or(0)
    }
}
