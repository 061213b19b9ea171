//! What the store shows the rest of the node: decoded, verified records with their state.
//! These are read models; nothing outside the store builds or writes a record.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use serde_bytes::ByteBuf;

use crate::proto::{Envelope, IdBytes, Intent, IntentId, Offer, ReplyTo, VendorProfile};

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

/// The key an intent is stored under (and its offers, and an offer's outbox entry, with
/// it). The person's own intent: its id, which this node chose. A received intent: the first
/// 16 bytes of SHA-256("vrm/2/received-intent" ‖ signer ‖ id), so an intent is its signer's
/// and id's together, and nobody can take the place of another's intent by signing one
/// with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IntentKey(IntentId);

impl IntentKey {
    /// The key of the person's own intent `id`.
    pub fn own(id: &IntentId) -> Self {
        IntentKey(*id)
    }

    /// The key of intent `id` received from the network, signed by `signer`.
    pub fn received(signer: &[u8; 32], id: &IntentId) -> Self {
        let digest = Sha256::new()
            .chain_update(b"vrm/2/received-intent")
            .chain_update(signer)
            .chain_update(**id)
            .finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        IntentKey(key.into())
    }

    /// The received intent `envelope` holds: [`IntentKey::received`] of its signer and id.
    pub fn of_received(envelope: &Envelope, intent: &Intent) -> Self {
        Self::received(&envelope.signer().to_bytes(), &intent.id)
    }

    /// The key as bytes.
    pub fn bytes(&self) -> [u8; 16] {
        *self.0
    }

    /// A key read back from a tree.
    pub(super) fn from_bytes(bytes: [u8; 16]) -> Self {
        IntentKey(bytes.into())
    }
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

impl StoredIntent {
    /// The key it is stored under.
    pub fn key(&self) -> IntentKey {
        match self.origin {
            Origin::Own => IntentKey::own(&self.intent.id),
            Origin::Received => IntentKey::of_received(&self.envelope, &self.intent),
        }
    }
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
        /// The key of the intent it answers (from schema 7; the intent's id before).
        intent: IntentKey,
    },
    /// An entry of a relationship's log, or an acknowledgement of one (schema 8).
    Relationship {
        /// The relationship's id (its accept's message id).
        rel: IdBytes,
    },
    /// The person's review of a vendor (schema 10).
    Review {
        /// The vendor reviewed.
        vendor: IdBytes,
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
    /// Sealed like [`Route::Mailbox`], but handed to the service node `via` (the person's
    /// own mailbox for the relationship), which deposits it in the queue `to` names: the
    /// vendor never sees the person's node (schema 8).
    Forward {
        /// The forwarding service node's peer id, binary.
        via: ByteBuf,
        /// Its address, a binary multiaddr.
        via_addr: ByteBuf,
        /// The queue (and key) the item is for.
        to: Box<ReplyTo>,
    },
}

impl Route {
    /// The service node a mailbox route goes to first (the mailbox, or the forwarder).
    pub fn mailbox(&self) -> Option<&ByteBuf> {
        match self {
            Route::Gossip { .. } => None,
            Route::Mailbox(reply) => Some(&reply.mailbox),
            Route::Forward { via, .. } => Some(via),
        }
    }
}
