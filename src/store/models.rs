//! What the store shows the rest of the node: decoded, verified records with their state.
//! These are read models; nothing outside the store builds or writes a record.

use serde::{Deserialize, Serialize};

use crate::proto::{Envelope, Intent, IntentId, Offer, ReplyTo, VendorProfile};

/// Who an intent or offer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Made by this node: the person's intent, or this vendor's offer.
    Own,
    /// Received from the network.
    Received,
}

/// A vendor node's answer to an intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "answer")]
pub enum Decision {
    /// An offer was made.
    Offered {
        /// Its message id (hex).
        offer: String,
    },
    /// No offer, and why.
    Declined {
        /// The reason, for the vendor to read.
        reason: String,
    },
}

/// Where an offer this vendor sent stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Delivery {
    /// In the outbox.
    #[default]
    Pending,
    /// Acknowledged by the person's node (received offers are stored in this state).
    Delivered {
        /// When (unix seconds).
        at: u64,
    },
    /// Refused by the person's node.
    Refused {
        /// The rejection code it gave.
        code: String,
    },
    /// Gave up: the intent or the offer expired first.
    Expired,
}

/// An intent in the store.
#[derive(Debug, Clone)]
pub struct StoredIntent {
    /// The signed envelope.
    pub envelope: Envelope,
    /// Its body.
    pub intent: Intent,
    /// Cast here, or received.
    pub origin: Origin,
    /// When it was stored (unix seconds).
    pub stored_at: u64,
    /// When it was withdrawn, if it was.
    pub withdrawn_at: Option<u64>,
    /// Vendor side: whether and how this node answered it.
    pub decision: Option<Decision>,
}

/// An offer in the store.
#[derive(Debug, Clone)]
pub struct StoredOffer {
    /// The signed envelope.
    pub envelope: Envelope,
    /// Its body.
    pub offer: Offer,
    /// Sent by this vendor node, or received by the person's.
    pub origin: Origin,
    /// When it was stored (unix seconds).
    pub stored_at: u64,
    /// Delivery state (offers this vendor sent).
    pub delivery: Delivery,
}

/// The newest profile of one vendor.
#[derive(Debug, Clone)]
pub struct StoredProfile {
    /// The signed envelope.
    pub envelope: Envelope,
    /// Its body.
    pub profile: VendorProfile,
    /// When it was stored (unix seconds).
    pub stored_at: u64,
}

/// How many records the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Intents, own and received.
    pub intents: usize,
    /// Offers, sent and received.
    pub offers: usize,
    /// Vendor profiles.
    pub profiles: usize,
    /// Messages waiting to be delivered.
    pub outbox: usize,
    /// Message ids in the replay memory.
    pub seen: usize,
}

/// What an outgoing message is about. Its subject decides its retention and whether it is
/// still worth sending (an offer to a withdrawn intent is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "about")]
pub enum Subject {
    /// The person's intent: its publication or its withdrawal.
    Intent {
        /// The intent.
        intent: IntentId,
    },
    /// A vendor's offer to an intent.
    Offer {
        /// The intent it answers.
        intent: IntentId,
    },
}

/// How an outgoing message travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// Published on a gossipsub topic.
    Gossip {
        /// The topic.
        topic: String,
    },
    /// Sealed to a one-time key and left in a mailbox queue (an intent's reply path).
    Mailbox(ReplyTo),
}
