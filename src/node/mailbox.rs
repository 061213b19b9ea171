//! The mailbox a service node keeps for others (`proto/README.md`, "Service protocols"):
//! vendors deposit sealed offers in one-time queues; the queue's owner opens it by fetching
//! with its token, gets what waits, and acknowledges what it stored. A deposit for a queue
//! whose owner fetched during its current connection is pushed to it at once. Everything it
//! holds is bounded by the store's [`MailboxLimits`]; deposits are rate limited per
//! depositor.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;
use tracing::{debug, info, warn};

use super::action::Action;
use super::events::Stats;
use crate::config::MailboxConfig;
use crate::proto::service::{
    BAD_REQUEST, ITEM_ID_BYTES, MAX_CLAIMS, MAX_ITEMS_PER_FETCH, MailboxItem, MailboxRequest,
    MailboxResponse, QUEUE_BYTES, RATE_LIMITED, TOKEN_BYTES, UNAVAILABLE, queue_of,
};
use crate::ratelimit::RateLimiter;
use crate::store::mailbox::{MailboxLimits, QueueClaim, QueueId};
use crate::store::{Store, StoreError};

/// Most owners remembered for pushing (queues fetched by a connected peer).
const MAX_OWNERS: usize = 10_000;

/// The service side of mailboxes.
#[derive(Debug)]
pub struct MailboxService {
    limits: MailboxLimits,
    depositors: RateLimiter<PeerId>,
    /// The connected peer that last fetched each queue: new items go to it at once.
    owners: HashMap<QueueId, PeerId>,
}

/// A refusal with `code`.
fn refused(code: &str) -> MailboxResponse {
    MailboxResponse::Refused { code: code.into() }
}

impl MailboxService {
    /// A mailbox with the bounds of `config`.
    pub fn new(config: &MailboxConfig) -> Self {
        MailboxService {
            limits: config.limits(),
            depositors: RateLimiter::new(config.deposits_per_sec, config.deposit_burst),
            owners: HashMap::new(),
        }
    }

    /// Whether `peer` may make one more deposit (or forward) now, under its rate.
    pub fn admit(&mut self, peer: &PeerId, instant: Instant) -> bool {
        self.depositors.allow(peer, instant)
    }

    /// Handles a request from `peer`: the answer, and a push to a connected owner when a
    /// deposit has one.
    pub fn request(
        &mut self,
        store: &Store,
        stats: &Stats,
        peer: &PeerId,
        request: MailboxRequest,
        now: u64,
        instant: Instant,
    ) -> (MailboxResponse, Option<Action>) {
        let result = match request {
            MailboxRequest::Deposit { queue, sealed } => {
                if !self.depositors.allow(peer, instant) {
                    stats.bump("mailbox-refused:rate-limited");
                    return (refused(RATE_LIMITED), None);
                }
                let Ok(queue) = QueueId::try_from(queue.as_slice()) else {
                    return (refused(BAD_REQUEST), None);
                };
                self.deposit(store, stats, queue, sealed.into_vec(), now)
            }
            MailboxRequest::Fetch { claims } => self
                .fetch(store, peer, &claims, now)
                .map(|response| (response, None)),
            // The event loop sends forwards on; one reaching here has no target.
            MailboxRequest::Forward { .. } => return (refused(BAD_REQUEST), None),
        };
        result.unwrap_or_else(|e| {
            warn!("mailbox: {e}");
            stats.bump("store-error");
            (refused(UNAVAILABLE), None)
        })
    }

    fn deposit(
        &mut self,
        store: &Store,
        stats: &Stats,
        queue: QueueId,
        sealed: Vec<u8>,
        now: u64,
    ) -> Result<(MailboxResponse, Option<Action>), StoreError> {
        match store.mailbox_deposit(&queue, &sealed, now, &self.limits)? {
            Ok(id) => {
                stats.bump("mailbox-deposited");
                let push = self.owners.get(&queue).map(|owner| Action::Push {
                    peer: *owner,
                    item: MailboxItem {
                        queue: queue.to_vec().into(),
                        id: id.to_vec().into(),
                        sealed: sealed.into(),
                    },
                });
                Ok((MailboxResponse::Deposited, push))
            }
            Err(refusal) => {
                debug!("mailbox refused a deposit: {}", refusal.code());
                stats.bump(&format!("mailbox-refused:{}", refusal.code()));
                Ok((refused(refusal.code()), None))
            }
        }
    }

    fn fetch(
        &mut self,
        store: &Store,
        peer: &PeerId,
        claims: &[crate::proto::service::Claim],
        now: u64,
    ) -> Result<MailboxResponse, StoreError> {
        let Some(claims) = decode_claims(claims) else {
            return Ok(refused(BAD_REQUEST));
        };
        match store.mailbox_fetch(&claims, now, &self.limits, MAX_ITEMS_PER_FETCH)? {
            Ok((items, more)) => {
                if self.owners.len() + claims.len() > MAX_OWNERS {
                    info!("mailbox: forgetting who fetched which queue (more than {MAX_OWNERS})");
                    self.owners.clear();
                }
                for claim in &claims {
                    self.owners.insert(claim.queue, *peer);
                }
                Ok(MailboxResponse::Items { items, more })
            }
            Err(refusal) => Ok(refused(refusal.code())),
        }
    }

    /// The owner stored a pushed item: it leaves the mailbox.
    pub fn pushed(&self, store: &Store, queue: &QueueId, id: &[u8; ITEM_ID_BYTES]) {
        if let Err(e) = store.mailbox_remove(queue, id) {
            warn!("mailbox: {e}");
        }
    }

    /// `peer` left: nothing more is pushed to it.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.owners.retain(|_, owner| owner != peer);
    }
}

/// The claims of a fetch, if well formed: at most [`MAX_CLAIMS`], tokens of 32 bytes, at
/// most [`MAX_CLAIMS`] acknowledgements of 32 bytes each.
fn decode_claims(claims: &[crate::proto::service::Claim]) -> Option<Vec<QueueClaim>> {
    if claims.is_empty() || claims.len() > MAX_CLAIMS {
        return None;
    }
    claims
        .iter()
        .map(|claim| {
            if claim.token.len() != TOKEN_BYTES || claim.ack.len() > MAX_CLAIMS {
                return None;
            }
            let ack = claim
                .ack
                .iter()
                .map(|id| <[u8; ITEM_ID_BYTES]>::try_from(id.as_slice()).ok())
                .collect::<Option<Vec<_>>>()?;
            let queue: [u8; QUEUE_BYTES] = queue_of(&claim.token);
            Some(QueueClaim {
                queue,
                expires: claim.expires,
                ack,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::service::Claim;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_depositor_over_its_rate_is_refused_while_others_deposit_and_the_owner_fetches() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let stats = Stats::default();
        let config = MailboxConfig {
            deposits_per_sec: 1.0,
            deposit_burst: 2,
            ..MailboxConfig::default()
        };
        let mut mailbox = MailboxService::new(&config);
        let (owner, flooder, vendor) = (PeerId::random(), PeerId::random(), PeerId::random());
        let token = [5u8; TOKEN_BYTES];
        let queue = queue_of(&token);
        let instant = Instant::now();
        let fetch = |ack: Vec<[u8; ITEM_ID_BYTES]>| MailboxRequest::Fetch {
            claims: vec![Claim {
                token: token.to_vec().into(),
                expires: NOW + 600,
                ack: ack.into_iter().map(|id| id.to_vec().into()).collect(),
            }],
        };
        let (opened, _) = mailbox.request(&store, &stats, &owner, fetch(vec![]), NOW, instant);
        assert_eq!(
            opened,
            MailboxResponse::Items {
                items: vec![],
                more: false
            }
        );
        let deposit = |n: u8| MailboxRequest::Deposit {
            queue: queue.to_vec().into(),
            sealed: vec![n; 60].into(),
        };
        let mut answers = Vec::new();
        for n in 0..3 {
            answers.push(mailbox.request(&store, &stats, &flooder, deposit(n), NOW, instant));
        }
        assert_eq!(answers[0].0, MailboxResponse::Deposited);
        assert!(
            matches!(&answers[0].1, Some(Action::Push { peer, .. }) if *peer == owner),
            "pushed to the owner who fetched it"
        );
        assert_eq!(answers[1].0, MailboxResponse::Deposited);
        assert_eq!(answers[2].0, refused(RATE_LIMITED));
        let (answer, _) = mailbox.request(&store, &stats, &vendor, deposit(9), NOW, instant);
        assert_eq!(
            answer,
            MailboxResponse::Deposited,
            "another depositor is not held back"
        );
        let (items, _) = mailbox.request(&store, &stats, &owner, fetch(vec![]), NOW, instant);
        let MailboxResponse::Items { items, .. } = items else {
            panic!("items")
        };
        assert_eq!(items.len(), 3);
        let acked = items
            .iter()
            .map(|item| <[u8; ITEM_ID_BYTES]>::try_from(item.id.as_slice()).unwrap())
            .collect();
        let (rest, _) = mailbox.request(&store, &stats, &owner, fetch(acked), NOW, instant);
        assert_eq!(
            rest,
            MailboxResponse::Items {
                items: vec![],
                more: false
            }
        );
        let bad = MailboxRequest::Fetch {
            claims: vec![Claim {
                token: vec![1; 31].into(),
                expires: NOW + 600,
                ack: vec![],
            }],
        };
        let (answer, _) = mailbox.request(&store, &stats, &owner, bad, NOW, instant);
        assert_eq!(answer, refused(BAD_REQUEST));
    }
}
