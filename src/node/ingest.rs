//! What a node does with a message from the network, as plain functions of the bytes, the
//! store and the time: no swarm, no sockets. The event loop calls them and acts on the
//! result (reports the gossipsub verdict, answers the request, emits events, makes offers),
//! so the rules are tested without a network (`tests/ingest.rs`).

use crate::proto::batch::verify_all;
use crate::proto::validate::check_offer_for_intent;
use crate::proto::{
    DIRECTORY_TOPIC, DecodeError, Envelope, Intent, IntentId, MessageId, Offer, Payload, Rejection,
    ValidationError, check, decode_and_check, intent_topic, is_shard_topic, limits,
};
use crate::store::{Origin, ReceivedIntent, Store, StoreError};

/// Most gossip messages a node verifies and stores as one batch: large enough that batch
/// verification pays (its gain levels off around here), small enough to keep latency low.
pub const MAX_GOSSIP_BATCH: usize = 64;

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

/// Handles a gossipsub message received on `topic`. `served` are the categories this node
/// answers as a vendor (empty for a person's node, which only relays).
pub fn gossip(
    store: &Store,
    served: &[String],
    topic: &str,
    bytes: &[u8],
    now: u64,
) -> Result<Outcome, StoreError> {
    let mut outcomes = gossip_batch(store, served, &[(topic, bytes)], now);
    outcomes
        .pop()
        .unwrap_or(Ok(Outcome::ignored("empty batch")))
}

/// Handles gossipsub messages queued together, each `(topic, bytes)`: their signatures are
/// verified as one batch and the intents they store reach the disk in one flush, before
/// any verdict is returned. Outcomes are in the order of `messages`.
pub fn gossip_batch(
    store: &Store,
    served: &[String],
    messages: &[(&str, &[u8])],
    now: u64,
) -> Vec<Result<Outcome, StoreError>> {
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
                    gossip_rules(store, served, topic, envelope, message, now, &mut staged)
                }
                Err(rejection) => Ok(Outcome::reject(rejection)),
            }
        })
        .collect();
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
    served: &[String],
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
            if topic != intent_topic(&intent.category) {
                return Ok(wrong_route("intent"));
            }
            if !served.contains(&intent.category) {
                if !store.mark_seen(&envelope.id(), intent.expires)? {
                    return Ok(Outcome::verdict(Verdict::Ignore("replay")));
                }
                return Ok(Outcome::accept(None));
            }
            // For the categories it serves, a vendor's intents are its replay memory: one
            // sled write per intent, not two.
            match store.receive_intent(&envelope, &intent, now)? {
                ReceivedIntent::Stored
                    if store.withdrawn_early(&intent.id, &envelope.signer().to_bytes())? =>
                {
                    store.record_withdrawal(&intent.id, now)?;
                    Ok(Outcome::accept(Some(Effect::IntentWithdrawn {
                        id: intent.id,
                    })))
                }
                ReceivedIntent::Stored => {
                    *staged = true;
                    Ok(Outcome::accept(Some(Effect::IntentToAnswer {
                        envelope: Box::new(envelope),
                        intent: Box::new(intent),
                    })))
                }
                ReceivedIntent::Replay => Ok(Outcome::verdict(Verdict::Ignore("replay"))),
                ReceivedIntent::Conflict => Ok(Outcome::reject(ValidationError::IdConflict)),
            }
        }
        Payload::IntentWithdraw(withdraw) => {
            if !is_shard_topic(topic) {
                return Ok(wrong_route("intent-withdraw"));
            }
            let forget_after = withdraw
                .created
                .saturating_add(limits::MAX_INTENT_LIFETIME_SECS);
            if !store.mark_seen(&envelope.id(), forget_after)? {
                return Ok(Outcome::verdict(Verdict::Ignore("replay")));
            }
            let Some(held) = store.intent(&withdraw.intent)? else {
                // Not ours to judge: relay it for the nodes that hold the intent, and
                // remember it in case the intent comes after it.
                let signer = envelope.signer().to_bytes();
                store.remember_early_withdrawal(&withdraw.intent, &signer, forget_after)?;
                return Ok(Outcome::accept(None));
            };
            if held.envelope.signer() != envelope.signer() {
                return Ok(Outcome::reject(ValidationError::NotTheCaster));
            }
            store.record_withdrawal(&withdraw.intent, now)?;
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
        Payload::Offer(_) => Ok(wrong_route("offer")),
    }
}

/// Handles a message opened from one of the person's mailbox queues (an offer to one of
/// the person's intents). `Ok(Accept)` means stored (or already stored: delivery is
/// idempotent, so an offer deposited twice is taken once).
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
    let held = match store.intent(&offer.intent)? {
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
