//! The direct protocol (request-response): answers the offers other nodes send to this one,
//! and remembers which outbox entry each of our own requests carries, so the answer reaches
//! the outbox planner.

use std::collections::HashMap;
use std::hash::Hash;

use libp2p::{PeerId, request_response};
use tracing::debug;

use super::action::{Action, settle};
use super::events::Stats;
use super::ingest::{self, Verdict};
use super::network::{DirectRequest, DirectResponse, UNAVAILABLE};
use crate::proto::MessageId;
use crate::store::Store;

/// Direct requests: inbound answered, outbound tracked. `R` is the request id type
/// (libp2p's `OutboundRequestId` in the node, any key in tests).
pub struct Direct<R> {
    in_flight: HashMap<R, MessageId>,
}

impl<R: Hash + Eq> Default for Direct<R> {
    fn default() -> Self {
        Direct {
            in_flight: HashMap::new(),
        }
    }
}

impl<R: Hash + Eq> Direct<R> {
    /// Handles a request from `peer`: the answer to send back, and what it changed.
    pub fn request(
        &self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        bytes: &[u8],
        now: u64,
    ) -> (DirectResponse, Vec<Action>) {
        let mut actions = Vec::new();
        let outcome = ingest::direct(store, bytes, now);
        let stored_or_refused = outcome.is_ok();
        let response = match settle(outcome, peer, stats, &mut actions) {
            // Our store failed: the sender keeps the message and tries again.
            _ if !stored_or_refused => DirectResponse {
                ok: false,
                error: Some(UNAVAILABLE.to_owned()),
            },
            Verdict::Accept | Verdict::Ignore(_) => DirectResponse {
                ok: true,
                error: None,
            },
            Verdict::Reject(rejection) => DirectResponse {
                ok: false,
                error: Some(rejection.code().to_owned()),
            },
        };
        (response, actions)
    }

    /// Our request `request` carries outbox entry `outgoing`.
    pub fn sent(&mut self, request: R, outgoing: MessageId) {
        self.in_flight.insert(request, outgoing);
    }

    /// The outbox entry a request carried, once it was answered or failed.
    pub fn finished(&mut self, request: &R) -> Option<MessageId> {
        self.in_flight.remove(request)
    }
}

impl Direct<request_response::OutboundRequestId> {
    /// What an event of the request-response behaviour means: an answer to send back, or
    /// the end of one of our requests, for the outbox.
    pub fn event(
        &mut self,
        event: request_response::Event<DirectRequest, DirectResponse>,
        store: &Store,
        stats: &Stats,
        now: u64,
    ) -> Vec<Action> {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let (response, mut actions) = self.request(store, stats, &peer, &request.0, now);
                actions.insert(0, Action::Respond { channel, response });
                actions
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => self
                .finished(&request_id)
                .map(|outgoing| Action::Answered { outgoing, response })
                .into_iter()
                .collect(),
            Event::OutboundFailure {
                request_id, error, ..
            } => self
                .finished(&request_id)
                .map(|outgoing| {
                    debug!("delivering {outgoing} failed: {error}; will retry");
                    Action::Unanswered(outgoing)
                })
                .into_iter()
                .collect(),
            Event::InboundFailure { peer, error, .. } => {
                debug!("inbound direct message from {peer} failed: {error}");
                Vec::new()
            }
            Event::ResponseSent { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::events::NodeEvent;

    #[test]
    fn an_answer_finds_its_outbox_entry_once() {
        let mut direct = Direct::<u64>::default();
        direct.sent(7, MessageId([7; 32]));
        direct.sent(8, MessageId([8; 32]));
        assert_eq!(direct.finished(&7), Some(MessageId([7; 32])));
        assert_eq!(direct.finished(&7), None, "answered once");
        assert_eq!(direct.finished(&9), None, "unknown request");
        assert_eq!(direct.finished(&8), Some(MessageId([8; 32])));
    }

    #[test]
    fn garbage_is_refused_with_its_code_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let stats = Stats::default();
        let direct = Direct::<u64>::default();
        let garbage = b"\xa1\x61v";
        let expected = crate::proto::decode_and_check(garbage, 1_800_000_000)
            .unwrap_err()
            .code()
            .to_owned();
        let (response, actions) =
            direct.request(&store, &stats, &PeerId::random(), garbage, 1_800_000_000);
        assert!(!response.ok);
        assert_eq!(response.error.as_ref(), Some(&expected));
        assert_eq!(stats.get(&format!("rejected:{expected}")), 1);
        assert!(matches!(
            actions.as_slice(),
            [Action::Emit(NodeEvent::Rejected { code, .. })] if *code == expected
        ));
    }
}
