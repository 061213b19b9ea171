//! The protocols a service node serves to others (`proto/README.md`, "Service protocols"):
//! light push, for nodes that publish without joining a mesh, and mailboxes, where vendors
//! leave sealed offers in one-time queues that only the queue's owner can fetch. Each is
//! request-response with CBOR messages; the types here are their wire form.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

/// Request-response protocol of light push.
pub const LIGHT_PUSH_PROTOCOL: &str = "/vrm/2/light-push";
/// Request-response protocol of mailboxes (deposit and fetch).
pub const MAILBOX_PROTOCOL: &str = "/vrm/2/mailbox";
/// Request-response protocol a mailbox pushes new items to a connected owner with.
pub const MAILBOX_PUSH_PROTOCOL: &str = "/vrm/2/mailbox-push";
/// Request-response protocol a light vendor subscribes to intent topics with.
pub const FILTER_PROTOCOL: &str = "/vrm/2/filter";
/// Request-response protocol a service node pushes its subscribers' messages with.
pub const FILTER_PUSH_PROTOCOL: &str = "/vrm/2/filter-push";
/// Request-response protocol a node catches up on the open intents of a shard with.
pub const CATCH_UP_PROTOCOL: &str = "/vrm/2/catch-up";
/// Request-response protocol a light node asks a service node for other service nodes with.
pub const PEERS_PROTOCOL: &str = "/vrm/2/peers";

/// Length of a queue id, in bytes.
pub const QUEUE_BYTES: usize = 16;
/// Length of a queue's fetch token, in bytes.
pub const TOKEN_BYTES: usize = 32;
/// Length of an item id (SHA-256 of the sealed bytes), in bytes.
pub const ITEM_ID_BYTES: usize = 32;
/// Most claims in one fetch, and most acknowledgements in one claim.
pub const MAX_CLAIMS: usize = 64;
/// Most items in one fetch answer (fetch again while `more` is true).
pub const MAX_ITEMS_PER_FETCH: usize = 16;
/// Most topics in one filter subscription (more than there are categories).
pub const MAX_FILTER_TOPICS: usize = 64;
/// Length of a catch-up cursor: arrival time (8, big-endian) ‖ message id (32).
pub const CURSOR_BYTES: usize = 40;
/// Most entries in one catch-up list (list again from the last while `more` is true).
pub const MAX_LISTED: usize = 1024;
/// Most messages asked for in one catch-up fetch.
pub const MAX_FETCHED: usize = 32;
/// Most service nodes in one peer-exchange answer.
pub const MAX_EXCHANGED: usize = 8;
/// Most bytes of a peer id or an address in a peer-exchange answer.
pub const MAX_RECORD_FIELD_BYTES: usize = 128;

/// The queue id a fetch token opens: the first 16 bytes of SHA-256("vrm/2/queue" || token).
/// Depositors know the queue (it is in the intent), only the owner knows the token.
pub fn queue_of(token: &[u8]) -> [u8; QUEUE_BYTES] {
    let digest = Sha256::new()
        .chain_update(b"vrm/2/queue")
        .chain_update(token)
        .finalize();
    let mut queue = [0u8; QUEUE_BYTES];
    queue.copy_from_slice(&digest[..QUEUE_BYTES]);
    queue
}

/// The id of a deposited item: SHA-256 of its sealed bytes.
pub fn item_id(sealed: &[u8]) -> [u8; ITEM_ID_BYTES] {
    Sha256::digest(sealed).into()
}

/// The refusal of a node that could not store or handle a request just now (its store
/// failed): the sender keeps the message and tries again.
pub const UNAVAILABLE: &str = "unavailable";
/// The refusal of a light push that reached no peer (the sender tries another node).
pub const NO_PEERS: &str = "no-peers";
/// The refusal of a request over the sender's rate limit.
pub const RATE_LIMITED: &str = "rate-limited";
/// The refusal of a request that breaks the protocol's shape or bounds.
pub const BAD_REQUEST: &str = "bad-request";
/// The refusal of a filter subscription by a service node that has its fill of subscribers.
pub const TOO_MANY_SUBSCRIBERS: &str = "too-many-subscribers";
/// The refusal of a catch-up request for a shard the service node does not carry.
pub const NOT_CARRIED: &str = "not-carried";

/// The refusal of a forward whose target mailbox did not answer.
pub const UNREACHABLE: &str = "unreachable";
/// The refusal of a relationship entry that names a place after the log's end: one before
/// it is still on its way.
pub const OUT_OF_ORDER: &str = "out-of-order";

/// Whether a refusal `code` from a mailbox means "not now" (the depositor tries again after
/// its backoff) rather than "never". A queue may be opened a moment after its intent went
/// out, and a full queue or mailbox may drain.
pub fn retry_later(code: &str) -> bool {
    matches!(
        code,
        UNAVAILABLE
            | RATE_LIMITED
            | UNREACHABLE
            | OUT_OF_ORDER
            | "unknown-queue"
            | "queue-full"
            | "mailbox-full"
    )
}

/// A signed envelope handed to a service node to publish on a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LightPushRequest {
    /// The gossipsub topic (an intent topic).
    pub topic: String,
    /// The envelope bytes.
    pub envelope: ByteBuf,
}

/// The answer to a light push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LightPushResponse {
    /// Published (or already known): `peers` peers of the topic got it from this node.
    Published {
        /// Peers the message was sent to.
        peers: u32,
    },
    /// Not published, with the reason (a rejection code, or a service refusal).
    Refused {
        /// Why.
        code: String,
    },
}

/// A request to a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailboxRequest {
    /// Leave a sealed message in a queue.
    Deposit {
        /// The queue id, from the intent's reply path.
        queue: ByteBuf,
        /// The sealed message.
        sealed: ByteBuf,
    },
    /// The owner's fetch: opens each claimed queue (if new), drops the items it
    /// acknowledges, and returns what still waits.
    Fetch {
        /// One claim per queue.
        claims: Vec<Claim>,
    },
    /// Deposit a sealed message in a queue at another mailbox, for the sender: the answer
    /// is that mailbox's (a person's entry to a vendor's inbox, without the person's node
    /// meeting the vendor's).
    Forward {
        /// The target mailbox's peer id, binary.
        mailbox: ByteBuf,
        /// Its address, a binary multiaddr.
        addr: ByteBuf,
        /// The queue id there.
        queue: ByteBuf,
        /// The sealed message.
        sealed: ByteBuf,
    },
}

/// The owner's claim on one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The fetch token; the queue is [`queue_of`] it.
    pub token: ByteBuf,
    /// When the queue and what it holds may be dropped (unix seconds; the intent's expiry).
    pub expires: u64,
    /// Items received and stored by the owner: the mailbox drops them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ack: Vec<ByteBuf>,
}

/// One item waiting in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxItem {
    /// The queue it waits in.
    pub queue: ByteBuf,
    /// Its id ([`item_id`]).
    pub id: ByteBuf,
    /// The sealed message.
    pub sealed: ByteBuf,
}

/// A mailbox's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailboxResponse {
    /// The deposit is on the mailbox's disk.
    Deposited,
    /// What waits in the claimed queues.
    Items {
        /// At most [`MAX_ITEMS_PER_FETCH`] items.
        items: Vec<MailboxItem>,
        /// More items wait: fetch again.
        more: bool,
    },
    /// Refused, with a code from `proto/README.md` ("unknown-queue", "mailbox-full", …).
    Refused {
        /// Why.
        code: String,
    },
}

/// The owner's answer to a pushed item: `true` once it is stored (the mailbox drops it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAnswer {
    /// Stored by the owner.
    pub stored: bool,
}

/// A filter subscription: the intent topics whose messages the subscriber wants pushed.
/// It replaces the subscriber's earlier one and lasts as long as its connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRequest {
    /// Intent topics, 1 to [`MAX_FILTER_TOPICS`].
    pub topics: Vec<String>,
}

/// The answer to a filter subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterResponse {
    /// Subscribed: what the service node accepts on those topics from now on is pushed.
    Subscribed,
    /// Refused ("bad-request", "too-many-subscribers").
    Refused {
        /// Why.
        code: String,
    },
}

/// A message pushed to a filter subscriber: the same `{topic, envelope}` as a light push.
/// The subscriber answers with a [`PushAnswer`] (`stored`: taken, or refused for good).
pub type FilterPush = LightPushRequest;

/// A request for the messages a service node keeps on one shard it carries: the open
/// intents and the withdrawals it accepted there (`proto/README.md`, "Catch-up").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatchUpRequest {
    /// The cursors of what arrived at the service node after `after` (a cursor it
    /// listed before, or empty for everything), in arrival order.
    List {
        /// The shard.
        shard: u8,
        /// Empty, or [`CURSOR_BYTES`] bytes.
        after: ByteBuf,
    },
    /// The envelopes of these messages (1 to [`MAX_FETCHED`] message ids).
    Fetch {
        /// The shard they were listed on.
        shard: u8,
        /// Message ids, 32 bytes each.
        ids: Vec<ByteBuf>,
    },
}

impl CatchUpRequest {
    /// The shard asked about.
    pub fn shard(&self) -> u8 {
        match self {
            CatchUpRequest::List { shard, .. } | CatchUpRequest::Fetch { shard, .. } => *shard,
        }
    }
}

/// A service node's answer to a catch-up request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatchUpResponse {
    /// At most [`MAX_LISTED`] cursors (arrival time ‖ message id), in arrival order.
    Listed {
        /// The cursors.
        cursors: Vec<ByteBuf>,
        /// More follow the last one: list again from it.
        more: bool,
    },
    /// The envelopes still kept of those asked for, in the order asked.
    Messages {
        /// Envelope bytes.
        envelopes: Vec<ByteBuf>,
    },
    /// Refused, with a code ("not-carried", "bad-request", "rate-limited", "unavailable").
    Refused {
        /// Why.
        code: String,
    },
}

/// A light node asks a service node for other service nodes it could connect to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersRequest {
    /// How many it would like, 1 to [`MAX_EXCHANGED`].
    pub want: u8,
}

/// A service node as peer exchange names it: its peer id and the address the answering
/// node knows it by, each in its binary form (at most [`MAX_RECORD_FIELD_BYTES`] bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// The peer id's bytes.
    pub peer: ByteBuf,
    /// The multiaddr's bytes, without a `/p2p/` part.
    pub addr: ByteBuf,
}

/// A service node's answer to a peer exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeersResponse {
    /// Up to `want` (and [`MAX_EXCHANGED`]) of the service nodes it is connected to, the
    /// asker not among them; never a light node.
    Peers {
        /// The service nodes.
        peers: Vec<ServiceRecord>,
    },
    /// Refused ("bad-request", "rate-limited").
    Refused {
        /// Why.
        code: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_id_follows_from_its_token_and_only_one_way() {
        let token = [3u8; TOKEN_BYTES];
        assert_eq!(queue_of(&token), queue_of(&token));
        assert_ne!(queue_of(&token), queue_of(&[4u8; TOKEN_BYTES]));
        assert_ne!(&queue_of(&token)[..], &token[..QUEUE_BYTES]);
    }
}
