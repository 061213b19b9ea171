//! The direct protocol (request-response): answers the offers other nodes send to this one,
//! and remembers which outbox entry each of our own requests carries, so the answer reaches
//! the outbox planner.

use std::collections::HashMap;
use std::hash::Hash;

use libp2p::PeerId;

use super::action::{Action, settle};
use super::events::Stats;
use super::ingest::{self, Verdict};
use super::network::DirectResponse;
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
        let response = match settle(outcome, peer, stats, &mut actions) {
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
