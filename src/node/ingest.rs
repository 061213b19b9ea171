//! What a node does with a message from the network, as plain functions of the bytes, the
//! store and the time: no swarm, no sockets. The event loop calls them and acts on the
//! result (reports the gossipsub verdict, answers the request, emits events, makes offers),
//! so the rules are tested without a network (`tests/ingest.rs`).

use crate::proto::batch::verify_all;
use crate::proto::reviews::{REVIEW_LIFETIME_SECS, reviewed};
use crate::proto::validate::check_offer_for_intent;
use crate::proto::{
    DIRECTORY_TOPIC, DecodeError, Envelope, Intent, IntentId, MessageId, Offer, Payload, Rejection,
    ValidationError, catch_up_shard, check, decode_and_check, group_id, is_shard_topic, limits,
    topic_of,
};
use crate::store::groups::Joined;
use crate::store::reviews::ReviewKept;
use crate::store::{IntentKey, Origin, ReceivedIntent, Store, StoreError};

/// How long a vendor profile is kept for catch-up: vendors publish theirs every 10 minutes,
/// so the newest is always among those kept.
pub const PROFILE_KEPT_SECS: u64 = 3600;

/// Most gossip messages a node verifies and stores as one batch: large enough that batch
/// verification pays (its gain levels off around here), small enough to keep latency low.
pub const MAX_GOSSIP_BATCH: usize = 64;

/// Why a message is refused while the replay memory is full ([`crate::store::MAX_SEEN`]).
pub const REPLAY_MEMORY_FULL: &str = "replay memory full";

/// What a node keeps of the shard messages it accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The categories its vendor role answers (empty on a person's node): their intents
    /// are stored as received intents.
    pub served: Vec<String>,
    /// The shards it carries as a service node (none on a light node): every intent and
    /// withdrawal accepted on them is kept for other nodes' catch-up.
    pub carried: Vec<u8>,
}

impl Scope {
    /// A `role` node whose vendor role answers `served`: a service node carries `shards`.
    pub fn of_role(role: crate::config::Role, served: Vec<String>, shards: &[u8]) -> Self {
        let carried = match role {
            crate::config::Role::Service => shards.to_vec(),
            crate::config::Role::Light => Vec::new(),
        };
        Scope { served, carried }
    }

    /// What this node keeps for other nodes' catch-up: the shards it carries and, on a
    /// service node, the directory ([`crate::proto::DIRECTORY_SHARD`]).
    pub fn kept(&self) -> Vec<u8> {
        let mut kept = self.carried.clone();
        if !kept.is_empty() {
            kept.push(crate::proto::DIRECTORY_SHARD);
        }
        kept
    }

    /// What this node catches up on: the shards it wants and the directory, which every
    /// node reads (profiles, reviews, groups).
    pub fn caught_up(&self) -> Vec<u8> {
        let mut shards = self.wanted();
        shards.push(crate::proto::DIRECTORY_SHARD);
        shards
    }

    /// The shards this node catches up on: those it carries, or on a light node those of
    /// the categories its vendor role answers.
    pub fn wanted(&self) -> Vec<u8> {
        if !self.carried.is_empty() {
            return self.carried.clone();
        }
        let mut shards: Vec<u8> = self
            .served
            .iter()
            .map(|c| crate::proto::shard_of(c))
            .collect();
        shards.sort_unstable();
        shards.dedup();
        shards
    }

    /// A node that answers `served` and keeps nothing for others.
    pub fn serving(served: Vec<String>) -> Self {
        Scope {
            served,
            carried: Vec::new(),
        }
    }
}

/// The gossipsub verdict on one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Invalid: drop it and penalise the peer that sent it.
    Reject(Rejection),
    /// Valid but not worth forwarding (a replay, an older profile): drop without penalty.
    Ignore(&'static str),
}

/// What changed in this node because of a message.
#[derive(Debug, Clone)]
pub enum Effect {
    /// A vendor node stored an intent in a category it serves; it may answer it.
    IntentToAnswer {
        /// The intent envelope.
        envelope: Box<Envelope>,
        /// Its body.
        intent: Box<Intent>,
    },
    /// An intent this node holds was withdrawn.
    IntentWithdrawn {
        /// Its id.
        id: IntentId,
    },
    /// A newer vendor profile was stored.
    ProfileStored {
        /// The vendor key.
        vendor: [u8; 32],
        /// The vendor's name.
        name: String,
    },
    /// A new review (or a newer one of the same order) was stored.
    ReviewStored {
        /// The vendor reviewed.
        vendor: [u8; 32],
    },
    /// A collective intent gained or lost a member.
    GroupChanged {
        /// The group id.
        group: [u8; 16],
    },
    /// An offer to one of the person's intents was stored.
    OfferStored {
        /// The intent answered.
        intent: IntentId,
        /// The offer's message id.
        offer: MessageId,
        /// The vendor key.
        vendor: [u8; 32],
    },
}

/// The outcome of one message.
#[derive(Debug)]
pub struct Outcome {
    /// Accept, reject or ignore.
    pub verdict: Verdict,
    /// What changed, if anything.
    pub effect: Option<Effect>,
}

impl Outcome {
    /// Ignored for `reason`, nothing changed.
    pub fn ignored(reason: &'static str) -> Self {
        Self::verdict(Verdict::Ignore(reason))
    }

    fn verdict(verdict: Verdict) -> Self {
        Outcome {
            verdict,
            effect: None,
        }
    }

    fn reject(e: impl Into<Rejection>) -> Self {
        Self::verdict(Verdict::Reject(e.into()))
    }

    fn accept(effect: Option<Effect>) -> Self {
        Outcome {
            verdict: Verdict::Accept,
            effect,
        }
    }
}

/// Handles a gossipsub message received on `topic`, keeping what `scope` says.
pub fn gossip(
    store: &Store,
    scope: &Scope,
    topic: &str,
    bytes: &[u8],
    now: u64,
) -> Result<Outcome, StoreError> {
    let mut outcomes = gossip_batch(store, scope, &[(topic, bytes)], now);
    outcomes
        .pop()
        .unwrap_or(Ok(Outcome::ignored("empty batch")))
}

/// Handles gossipsub messages queued together, each `(topic, bytes)`: their signatures are
/// verified as one batch and the intents they store reach the disk in one flush, before
/// any outcome is returned. Outcomes are in the order of `messages`.
pub fn gossip_batch(
    store: &Store,
    scope: &Scope,
    messages: &[(&str, &[u8])],
    now: u64,
) -> Vec<Result<Outcome, StoreError>> {
    let (outcomes, staged) = gossip_batch_unflushed(store, scope, messages, now);
    if staged && let Err(e) = store.flush() {
        // Nothing staged may be acknowledged; the store error is reported for each.
        let reason = e.to_string();
        return outcomes
            .into_iter()
            .map(|_| Err(StoreError::Unflushed(std::io::Error::other(reason.clone()))))
            .collect();
    }
    outcomes
}

/// [`gossip_batch`] without its flush, for a relay: the verdicts may go out at once, and
/// the effects only after a [`Store::flush`], which `true` says is needed (intents this
/// node's vendor role serves were stored).
pub fn gossip_batch_unflushed(
    store: &Store,
    scope: &Scope,
    messages: &[(&str, &[u8])],
    now: u64,
) -> (Vec<Result<Outcome, StoreError>>, bool) {
    let mut parse_failures = Vec::with_capacity(messages.len());
    let mut parsed = Vec::with_capacity(messages.len());
    for (_, bytes) in messages {
        match Envelope::parse(bytes) {
            Ok(unverified) => {
                parsed.push(unverified);
                parse_failures.push(None);
            }
            Err(e) => parse_failures.push(Some(e)),
        }
    }
    let mut verified = verify_all(parsed).into_iter();
    let mut staged = false;
    let outcomes: Vec<_> = parse_failures
        .into_iter()
        .zip(messages)
        .map(|(failure, (topic, _))| {
            let verified = match failure {
                Some(e) => Err(e),
                None => verified.next().unwrap_or(Err(DecodeError::BadSignature)),
            };
            let envelope = match verified {
                Ok(envelope) => envelope,
                Err(e) => return Ok(decode_failure(e)),
            };
            match check(envelope, now) {
                Ok((envelope, message)) => {
                    gossip_rules(store, scope, topic, envelope, message, now, &mut staged)
                }
                Err(rejection) => Ok(Outcome::reject(rejection)),
            }
        })
        .collect();
    (outcomes, staged)
}

/// A message that failed decoding or its signature check. A signature that only a batch
/// verifier might have accepted is dropped without blaming the peer that forwarded it.
fn decode_failure(e: DecodeError) -> Outcome {
    match e {
        DecodeError::AmbiguousSignature => Outcome::ignored("signature ambiguous under batching"),
        e => Outcome::reject(e),
    }
}

/// The per-kind rules of the gossip topics, for a verified and checked message.
fn gossip_rules(
    store: &Store,
    scope: &Scope,
    topic: &str,
    envelope: Envelope,
    message: Payload,
    now: u64,
    staged: &mut bool,
) -> Result<Outcome, StoreError> {
    let wrong_route = |kind| {
        Outcome::reject(ValidationError::WrongRoute {
            kind,
            route: topic.to_owned(),
        })
    };
    match message {
        Payload::Intent(intent) => {
            if topic != topic_of(&intent) {
                return Ok(wrong_route("intent"));
            }
            if store.replay_memory_full()? {
                return Ok(Outcome::verdict(Verdict::Ignore(REPLAY_MEMORY_FULL)));
            }
            if !store.mark_seen(&envelope.id(), intent.expires)? {
                return Ok(Outcome::verdict(Verdict::Ignore("replay")));
            }
            let joined = match group_id(&intent) {
                Some(group) => (store.join_group(&group, &envelope, &intent)? == Joined::Counted)
                    .then_some(Effect::GroupChanged { group }),
                None => None,
            };
            if !scope.served.contains(&intent.category) {
                keep(store, scope, topic, &envelope, intent.expires, now)?;
                return Ok(Outcome::accept(joined));
            }
            match store.receive_intent(&envelope, &intent, now)? {
                ReceivedIntent::Stored => {
                    keep(store, scope, topic, &envelope, intent.expires, now)?;
                    if store.withdrawn_early(&intent.id, &envelope.signer().to_bytes())? {
                        store
                            .record_withdrawal(&IntentKey::of_received(&envelope, &intent), now)?;
                        return Ok(Outcome::accept(Some(Effect::IntentWithdrawn {
                            id: intent.id,
                        })));
                    }
                    *staged = true;
                    Ok(Outcome::accept(Some(Effect::IntentToAnswer {
                        envelope: Box::new(envelope),
                        intent: Box::new(intent),
                    })))
                }
                ReceivedIntent::Replay => Ok(Outcome::verdict(Verdict::Ignore("replay"))),
                // Relayed for the others, neither stored nor answered here (the store logs
                // it).
                ReceivedIntent::Full => {
                    keep(store, scope, topic, &envelope, intent.expires, now)?;
                    Ok(Outcome::accept(None))
                }
                // Its own signer signed another intent under this id: not forwarded, and
                // nobody who forwarded it is blamed (each saw one of the two first).
                ReceivedIntent::Conflict => Ok(Outcome::verdict(Verdict::Ignore(
                    "another intent of its signer under this id",
                ))),
            }
        }
        Payload::IntentWithdraw(withdraw) => {
            if !is_shard_topic(topic) && topic != DIRECTORY_TOPIC {
                return Ok(wrong_route("intent-withdraw"));
            }
            let forget_after = withdraw
                .created
                .saturating_add(limits::MAX_INTENT_LIFETIME_SECS);
            if store.replay_memory_full()? {
                return Ok(Outcome::verdict(Verdict::Ignore(REPLAY_MEMORY_FULL)));
            }
            if !store.mark_seen(&envelope.id(), forget_after)? {
                return Ok(Outcome::verdict(Verdict::Ignore("replay")));
            }
            // A withdrawal names an intent of its own signer: another signer's intent with
            // the same id is not it.
            let signer = envelope.signer().to_bytes();
            let key = IntentKey::received(&signer, &withdraw.intent);
            keep(store, scope, topic, &envelope, forget_after, now)?;
            let left = store.leave_group(&signer, &withdraw.intent)?;
            if !store.record_withdrawal(&key, now)? {
                if let Some(group) = left {
                    return Ok(Outcome::accept(Some(Effect::GroupChanged { group })));
                }
                // Not held: relay it for the nodes that hold the intent, and remember it in
                // case the intent comes after it.
                store.remember_early_withdrawal(&withdraw.intent, &signer, forget_after)?;
                return Ok(Outcome::accept(None));
            }
            Ok(Outcome::accept(Some(Effect::IntentWithdrawn {
                id: withdraw.intent,
            })))
        }
        Payload::VendorProfile(profile) => {
            if topic != DIRECTORY_TOPIC {
                return Ok(wrong_route("vendor-profile"));
            }
            let vendor = envelope.signer().to_bytes();
            if store.upsert_profile(&envelope, &profile, now)? {
                let forget_after = profile.created.saturating_add(PROFILE_KEPT_SECS);
                keep(store, scope, topic, &envelope, forget_after, now)?;
                Ok(Outcome::accept(Some(Effect::ProfileStored {
                    vendor,
                    name: profile.name,
                })))
            } else {
                Ok(Outcome::verdict(Verdict::Ignore(
                    "not newer than the stored profile",
                )))
            }
        }
        Payload::Review(review) => {
            if topic != DIRECTORY_TOPIC {
                return Ok(wrong_route("review"));
            }
            // `check` passed it: the signatures inside are not verified a second time.
            let Some(reviewed) = reviewed(&review, envelope.signer()) else {
                return Ok(Outcome::ignored("a review whose token does not parse"));
            };
            let forget_after = review.created.saturating_add(REVIEW_LIFETIME_SECS);
            if forget_after <= now {
                return Ok(Outcome::ignored("older than a review's lifetime"));
            }
            if store.replay_memory_full()? {
                return Ok(Outcome::verdict(Verdict::Ignore(REPLAY_MEMORY_FULL)));
            }
            if !store.mark_seen(&envelope.id(), forget_after)? {
                return Ok(Outcome::verdict(Verdict::Ignore("replay")));
            }
            match store.keep_review(&envelope, &reviewed, now)? {
                ReviewKept::Stored => {
                    keep(store, scope, topic, &envelope, forget_after, now)?;
                    Ok(Outcome::accept(Some(Effect::ReviewStored {
                        vendor: reviewed.vendor,
                    })))
                }
                ReviewKept::NotNewer => Ok(Outcome::ignored(
                    "a review of this order at least as new is held",
                )),
                // Relayed for the others, not counted here (the store logs it).
                ReviewKept::Full => Ok(Outcome::accept(None)),
            }
        }
        Payload::Offer(_) => Ok(wrong_route("offer")),
    }
}

/// Keeps an accepted intent or withdrawal for catch-up when its shard is one `scope`
/// carries. A full catch-up memory keeps nothing more and the message is still relayed
/// (the store logs it).
fn keep(
    store: &Store,
    scope: &Scope,
    topic: &str,
    envelope: &Envelope,
    forget_after: u64,
    now: u64,
) -> Result<(), StoreError> {
    if let Some(shard) = catch_up_shard(topic).filter(|s| scope.kept().contains(s)) {
        store.carry(
            shard,
            &envelope.id(),
            envelope.as_bytes(),
            forget_after,
            now,
        )?;
    }
    Ok(())
}

/// Handles a message opened from one of the person's mailbox queues (an offer to one of
/// the person's intents). `Ok(Accept)` means stored (or already stored: delivery is
/// idempotent, so an offer deposited twice is taken once), staged: the caller flushes the
/// store before it acknowledges the delivery.
pub fn reply(store: &Store, bytes: &[u8], now: u64) -> Result<Outcome, StoreError> {
    let (envelope, message) = match decode_and_check(bytes, now) {
        Ok(decoded) => decoded,
        Err(rejection) => return Ok(Outcome::reject(rejection)),
    };
    let Payload::Offer(offer) = message else {
        return Ok(Outcome::reject(ValidationError::WrongRoute {
            kind: envelope.kind().as_str(),
            route: crate::proto::service::MAILBOX_PROTOCOL.to_owned(),
        }));
    };
    let held = match store.intent(&IntentKey::own(&offer.intent))? {
        Some(held) if held.origin == Origin::Own => held,
        _ => return Ok(Outcome::reject(ValidationError::UnknownIntent)),
    };
    if let Err(e) = check_offer_for_intent(
        &offer,
        &held.intent,
        held.envelope.signer(),
        held.withdrawn_at.is_some(),
        now,
    ) {
        return Ok(Outcome::reject(e));
    }
    let fresh = store.record_offer_received(&envelope, &offer, now)?;
    Ok(Outcome::accept(
        fresh.then(|| offer_effect(&envelope, &offer)),
    ))
}

fn offer_effect(envelope: &Envelope, offer: &Offer) -> Effect {
    Effect::OfferStored {
        intent: offer.intent,
        offer: envelope.id(),
        vendor: envelope.signer().to_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::intent_topic;
    use crate::store::fixtures::{NOW, intent, pretend_held};

    /// At the replay memory's bound new gossip is refused (not relayed, no one blamed); at
    /// the bound of stored intents a vendor relays its categories' intents without storing
    /// or answering them.
    #[test]
    fn full_memories_refuse_or_relay_without_storing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let vendor = Scope::serving(vec!["books".to_owned()]);
        let topic = intent_topic("books");
        let (envelope, _) = intent(1);
        pretend_held(&store, crate::store::MAX_SEEN, 0);
        let refused = gossip(&store, &vendor, &topic, envelope.as_bytes(), NOW).unwrap();
        assert_eq!(refused.verdict, Verdict::Ignore(REPLAY_MEMORY_FULL));
        assert!(store.intents().unwrap().is_empty());
        pretend_held(&store, 0, crate::store::MAX_STORED_INTENTS);
        let relayed = gossip(&store, &vendor, &topic, envelope.as_bytes(), NOW).unwrap();
        assert_eq!(relayed.verdict, Verdict::Accept);
        assert!(relayed.effect.is_none(), "not handed to the vendor role");
        assert!(store.intents().unwrap().is_empty());
        pretend_held(&store, 1, 0);
        let (other, _) = intent(2);
        let stored = gossip(&store, &vendor, &topic, other.as_bytes(), NOW).unwrap();
        assert!(matches!(stored.effect, Some(Effect::IntentToAnswer { .. })));
    }
}
