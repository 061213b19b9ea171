//! Our own requests in flight: which request carries what, so its answer (or its failure)
//! reaches the handler that sent it. One map per request-response behaviour, since each
//! behaviour numbers its requests on its own.

use std::collections::HashMap;
use std::hash::Hash;

use libp2p::request_response::OutboundRequestId;

use crate::proto::MessageId;
use crate::proto::service::ITEM_ID_BYTES;
use crate::store::Outgoing;
use crate::store::mailbox::QueueId;

/// What a request to a mailbox was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxCall {
    /// A deposit of this outbox entry.
    Deposit(MessageId),
    /// A fetch of our own queues; once it is answered (or failed), this publication goes
    /// out (a new intent's queue is open before anyone can answer it).
    Fetch(Option<Box<Outgoing>>),
}

/// Requests in flight, `R` the request id (libp2p's in the node, any key in tests) and `T`
/// what each carries.
#[derive(Debug)]
pub struct InFlight<R, T> {
    requests: HashMap<R, T>,
}

impl<R, T> Default for InFlight<R, T> {
    fn default() -> Self {
        InFlight {
            requests: HashMap::new(),
        }
    }
}

impl<R: Hash + Eq, T> InFlight<R, T> {
    /// Request `request` carries `what`.
    pub fn sent(&mut self, request: R, what: T) {
        self.requests.insert(request, what);
    }

    /// What a request carried, once it was answered or failed (once).
    pub fn finished(&mut self, request: &R) -> Option<T> {
        self.requests.remove(request)
    }

    /// How many are in flight.
    pub fn count(&self) -> usize {
        self.requests.len()
    }

    /// What every request still in flight carried (their swarm is gone).
    pub fn into_values(self) -> impl Iterator<Item = T> {
        self.requests.into_values()
    }
}

/// The node's requests in flight, per behaviour.
#[derive(Debug, Default)]
pub struct Requests {
    /// Light pushes, each carrying an outbox entry.
    pub light_push: InFlight<OutboundRequestId, MessageId>,
    /// Deposits and fetches.
    pub mailbox: InFlight<OutboundRequestId, MailboxCall>,
    /// Deposits made for others (forwards), each with the channel their answer goes to
    /// (numbered by the mailbox behaviour, like `mailbox`).
    pub forwards: InFlight<
        OutboundRequestId,
        libp2p::request_response::ResponseChannel<crate::proto::service::MailboxResponse>,
    >,
    /// Items pushed to their owners (service nodes).
    pub pushes: InFlight<OutboundRequestId, (QueueId, [u8; ITEM_ID_BYTES])>,
    /// Catch-up requests, each about one shard.
    pub catch_up: InFlight<OutboundRequestId, u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_finds_what_its_request_carried_once() {
        let mut requests = InFlight::<u64, MessageId>::default();
        requests.sent(7, MessageId([7; 32]));
        requests.sent(8, MessageId([8; 32]));
        assert_eq!(requests.finished(&7), Some(MessageId([7; 32])));
        assert_eq!(requests.finished(&7), None, "answered once");
        assert_eq!(requests.finished(&9), None, "unknown request");
        assert_eq!(requests.finished(&8), Some(MessageId([8; 32])));
    }
}
