//! Reviews and reputation (`proto/README.md`, "Reviews and reputation"): the person writes a
//! review of a relationship whose order the vendor fulfilled, and every node computes each
//! vendor's reputation from the reviews it holds.
//!
//! **What a review proves**: that the vendor's node signed a review token to the reviewing
//! persona for a fulfilled (or received) order. It does not prove that the persona is not
//! the vendor itself: a vendor can sell to itself under as many personas as it likes.
//!
//! **How reviews are weighed** ([`reputations`]), so that self-made orders cannot outweigh
//! real ones:
//! 1. One voice per buyer: a persona's reviews of one vendor count as one (their mean).
//! 2. A buyer is *proven* when its review shows a fulfilled order with another vendor this
//!    node *trusts*. Trusted are the vendors the person had a fulfilled order with
//!    (their own experience), then, step by step, every vendor with at least
//!    [`PROVEN_TO_TRUST`] proven buyers. A vendor's own personas show only orders with
//!    vendors it controls, which nobody trusts unless real buyers vouch for them.
//! 3. Each proven buyer weighs 1. All unproven buyers of a vendor together weigh 1, however
//!    many there are: twenty self-made reviews count as one buyer.
//! 4. The score is the weighted mean pulled towards [`PRIOR_RATING`] by [`PRIOR_WEIGHT`]
//!    voices, so a few reviews do not make a perfect score.
//!
//! Count, mean, distribution and recency are of all reviews held, the same on every node
//! that holds the same reviews; the score depends on whom this node trusts.

use std::collections::{BTreeMap, HashMap, HashSet};

use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::events::NodeEvent;
use super::handle::NodeError;
use super::relationships::{RelationshipError, signing_key};
use crate::identity::Identity;
use crate::proto::relationship::Side;
use crate::proto::reviews::{MAX_HISTORY, Reviewed, check_review, open_token};
use crate::proto::{Envelope, HistoryItem, MessageId, Review, history_input};
use crate::store::reviews::StoredReview;
use crate::store::{Outgoing, Store, StoreError};

/// How long the person's review is retried until a service node takes it.
pub const REVIEW_DELIVERY_SECS: u64 = 7 * 86_400;
/// Proven buyers that make a vendor trusted.
pub const PROVEN_TO_TRUST: usize = 2;
/// The rating a vendor's score starts from.
pub const PRIOR_RATING: f64 = 3.0;
/// How many voices the starting rating weighs.
pub const PRIOR_WEIGHT: f64 = 2.0;
/// Reviews this recent count as recent.
pub const RECENT_SECS: u64 = 90 * 86_400;

/// What the person writes.
#[derive(Debug, Clone)]
pub struct ReviewDraft {
    /// 1 to 5.
    pub rating: u8,
    /// In their words (may be empty).
    pub text: String,
    /// Show fulfilled orders with other vendors (links those relationships to this review).
    pub history: bool,
}

/// Writes the person's review of relationship `rel` at `now`: signed by its persona, with
/// the vendor's token, kept here and queued for the directory. Refused if the vendor has not
/// issued a token (the order is not fulfilled or received).
pub fn write(
    store: &Store,
    identity: &Identity,
    rel: &[u8; 32],
    draft: &ReviewDraft,
    now: u64,
) -> Result<(Outgoing, Reviewed), RelationshipError> {
    let refused = |why: &str| RelationshipError::Refused(why.to_owned());
    let record = store
        .relationship(rel)?
        .ok_or_else(|| refused("no such relationship"))?;
    if record.side != Side::Person {
        return Err(refused("only the person reviews a relationship"));
    }
    let token = token_of(store, &record)?.ok_or_else(|| {
        refused("the vendor has not issued a review token: it comes when the order is fulfilled or received")
    })?;
    let key = signing_key(identity, &record)?;
    let persona = key.verifying_key().to_bytes();
    let history = match draft.history {
        true => history(store, identity, &persona, &record.chain.vendor)?,
        false => Vec::new(),
    };
    // Not before the token, whatever the two clocks say.
    let issued = open_token(&token).map_or(now, |(_, t)| t.created);
    let review = Review {
        token: token.into(),
        rating: draft.rating,
        text: draft.text.clone(),
        history,
        created: now.max(issued),
    };
    let reviewed = check_review(&review, &key.verifying_key(), now)
        .map_err(|e| RelationshipError::Refused(e.to_string()))?;
    let envelope = Envelope::seal(&review, &key);
    let queued = store.publish_review(&envelope, &reviewed, now + REVIEW_DELIVERY_SECS, now)?;
    Ok((queued, reviewed))
}

/// The review token in `record`'s log, if the vendor wrote one.
fn token_of(
    store: &Store,
    record: &crate::store::relationships::Relationship,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(token) = record.chain.token else {
        return Ok(None);
    };
    Ok(store
        .relationship_log(record)?
        .into_iter()
        .map(|(entry, _)| entry)
        .find(|entry| MessageId::of(entry).0 == token))
}

/// Tokens of the person's other fulfilled orders, one per vendor other than `vendor`, each
/// with its persona's signature linking it to `persona` for `vendor`.
fn history(
    store: &Store,
    identity: &Identity,
    persona: &[u8; 32],
    vendor: &[u8; 32],
) -> Result<Vec<HistoryItem>, RelationshipError> {
    let link = history_input(persona, vendor);
    let mut vendors = HashSet::from([*vendor]);
    let mut items = Vec::new();
    for other in store.relationships()? {
        if items.len() >= MAX_HISTORY {
            break;
        }
        if other.side != Side::Person || !vendors.insert(other.chain.vendor) {
            continue;
        }
        let Some(token) = token_of(store, &other)? else {
            vendors.remove(&other.chain.vendor);
            continue;
        };
        let key = signing_key(identity, &other)?;
        items.push(HistoryItem {
            token: token.into(),
            sig: key.sign(&link).to_bytes().into(),
        });
    }
    Ok(items)
}

/// The person's own standing with a vendor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Yours {
    /// Relationships the person has with the vendor.
    pub relationships: usize,
    /// Of them, fulfilled or received orders.
    pub fulfilled: usize,
    /// The person's latest rating of the vendor, if they reviewed it.
    pub rating: Option<u8>,
}

/// A vendor's reputation as this node computes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reputation {
    /// The vendor key, hex.
    pub vendor: String,
    /// Reviews held (one per order).
    pub reviews: usize,
    /// Their mean rating.
    pub mean: f64,
    /// How many rated 1, 2, 3, 4 and 5.
    pub distribution: [usize; 5],
    /// When the newest was written (unix seconds).
    pub newest: u64,
    /// Reviews of the last 90 days.
    pub recent: usize,
    /// Distinct buyers (personas).
    pub buyers: usize,
    /// Of them, buyers proven by a history with vendors this node trusts.
    pub proven: usize,
    /// The weighted score, 1 to 5 (see the module's doc).
    pub score: f64,
    /// Whether this node trusts the vendor (own experience, or proven buyers).
    pub trusted: bool,
    /// The person's own relationships with the vendor.
    pub yours: Yours,
}

/// The reputation of every vendor with a review, or the person's own relationships, from
/// what `store` holds at `now`.
pub fn all(store: &Store, now: u64) -> Result<BTreeMap<[u8; 32], Reputation>, StoreError> {
    let mut yours: HashMap<[u8; 32], Yours> = HashMap::new();
    let mut personas = HashSet::new();
    for record in store.relationships()? {
        if record.side != Side::Person {
            continue;
        }
        let mine = yours.entry(record.chain.vendor).or_default();
        mine.relationships += 1;
        let state = record.chain.state;
        if state.fulfilled || state.received {
            mine.fulfilled += 1;
        }
        personas.insert(record.chain.persona);
    }
    let reviews = store.reviews(None)?;
    for review in &reviews {
        if personas.contains(&review.reviewed.persona) {
            let mine = yours.entry(review.reviewed.vendor).or_default();
            mine.rating = Some(review.reviewed.rating);
        }
    }
    let experienced: HashSet<[u8; 32]> = yours
        .iter()
        .filter(|(_, y)| y.fulfilled > 0)
        .map(|(v, _)| *v)
        .collect();
    let mut out = reputations(&reviews, &experienced, now);
    for (vendor, mine) in yours {
        out.entry(vendor)
            .or_insert_with(|| unreviewed(&vendor))
            .yours = mine;
    }
    Ok(out)
}

fn unreviewed(vendor: &[u8; 32]) -> Reputation {
    Reputation {
        vendor: hex::encode(vendor),
        reviews: 0,
        mean: 0.0,
        distribution: [0; 5],
        newest: 0,
        recent: 0,
        buyers: 0,
        proven: 0,
        score: PRIOR_RATING,
        trusted: false,
        yours: Yours::default(),
    }
}

/// The reputations `reviews` make for a node that trusts the vendors in `experienced` from
/// its own orders, at `now` (the weighing in the module's doc).
pub fn reputations(
    reviews: &[StoredReview],
    experienced: &HashSet<[u8; 32]>,
    now: u64,
) -> BTreeMap<[u8; 32], Reputation> {
    // Per vendor, per buyer: their ratings, and the vendors their history names.
    type Buyers = HashMap<[u8; 32], (Vec<u8>, HashSet<[u8; 32]>)>;
    let mut by_vendor: HashMap<[u8; 32], Buyers> = HashMap::new();
    for review in reviews {
        let r = &review.reviewed;
        let buyer = by_vendor
            .entry(r.vendor)
            .or_default()
            .entry(r.persona)
            .or_default();
        buyer.0.push(r.rating);
        buyer.1.extend(r.history.iter().copied());
    }
    let proven = |vendor: &[u8; 32], history: &HashSet<[u8; 32]>, trusted: &HashSet<[u8; 32]>| {
        history.iter().any(|v| v != vendor && trusted.contains(v))
    };
    let mut trusted = experienced.clone();
    loop {
        let newly: Vec<[u8; 32]> = by_vendor
            .iter()
            .filter(|(vendor, _)| !trusted.contains(*vendor))
            .filter(|(vendor, buyers)| {
                buyers
                    .values()
                    .filter(|(_, history)| proven(vendor, history, &trusted))
                    .count()
                    >= PROVEN_TO_TRUST
            })
            .map(|(vendor, _)| *vendor)
            .collect();
        if newly.is_empty() {
            break;
        }
        trusted.extend(newly);
    }
    let mut out = BTreeMap::new();
    for review in reviews {
        let r = &review.reviewed;
        let rep = out.entry(r.vendor).or_insert_with(|| unreviewed(&r.vendor));
        rep.reviews += 1;
        rep.mean += f64::from(r.rating);
        rep.distribution[usize::from(r.rating.clamp(1, 5) - 1)] += 1;
        rep.newest = rep.newest.max(r.created);
        if r.created + RECENT_SECS > now {
            rep.recent += 1;
        }
    }
    for (vendor, rep) in out.iter_mut() {
        rep.mean /= rep.reviews as f64;
        rep.trusted = trusted.contains(vendor);
        let buyers = &by_vendor[vendor];
        rep.buyers = buyers.len();
        let voice = |ratings: &Vec<u8>| {
            ratings.iter().map(|r| f64::from(*r)).sum::<f64>() / ratings.len() as f64
        };
        let (mut sum, mut weight) = (PRIOR_RATING * PRIOR_WEIGHT, PRIOR_WEIGHT);
        let mut unproven = Vec::new();
        for (ratings, history) in buyers.values() {
            if proven(vendor, history, &trusted) {
                rep.proven += 1;
                sum += voice(ratings);
                weight += 1.0;
            } else {
                unproven.push(voice(ratings));
            }
        }
        if !unproven.is_empty() {
            sum += unproven.iter().sum::<f64>() / unproven.len() as f64;
            weight += 1.0;
        }
        rep.score = sum / weight;
    }
    out
}

/// One review as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    /// The order reviewed (the vendor's order entry id), hex.
    pub order: String,
    /// The reviewing persona, hex.
    pub persona: String,
    /// 1 to 5.
    pub rating: u8,
    /// The person's words.
    pub text: String,
    /// When it was written (unix seconds).
    pub created: u64,
    /// Other vendors the reviewer showed a fulfilled order with.
    pub history: usize,
}

impl super::handle::NodeHandle {
    /// The person reviews relationship `rel` (hex): signed by its persona with the vendor's
    /// token, published on the directory (retried until a service node takes it).
    pub async fn review(&self, rel: &str, draft: ReviewDraft) -> Result<ReviewView, NodeError> {
        if self.commands.is_closed() {
            return Err(NodeError::Stopped);
        }
        let rel = super::handle::parse_rel(rel)?;
        let identity = self.identity.clone();
        let written = super::durably(&self.store, move |store| {
            Ok(write(
                store,
                &identity,
                &rel,
                &draft,
                crate::clock::unix_now(),
            ))
        })
        .await?;
        let (queued, reviewed) = written.map_err(NodeError::from)?;
        let event = NodeEvent::ReviewStored {
            vendor: hex::encode(reviewed.vendor),
        };
        self.tell(vec![queued], vec![event]).await;
        let view = self
            .reviews(&hex::encode(reviewed.vendor))?
            .into_iter()
            .find(|r| r.order == hex::encode(reviewed.order));
        view.ok_or_else(|| NodeError::Relationship("the review was not kept".into()))
    }

    /// Every vendor's reputation, as this node computes it.
    pub fn reputations(&self) -> Result<Vec<Reputation>, NodeError> {
        Ok(all(&self.store, crate::clock::unix_now())?
            .into_values()
            .collect())
    }

    /// The reviews held of `vendor` (hex), newest first.
    pub fn reviews(&self, vendor: &str) -> Result<Vec<ReviewView>, NodeError> {
        let key = parse_vendor(vendor)?;
        let mut views = Vec::new();
        for stored in self.store.reviews(Some(&key))? {
            let r = &stored.reviewed;
            let text = match self.store.review(&r.vendor, &r.order)? {
                Some((_, review)) => review.text,
                None => continue,
            };
            views.push(ReviewView {
                order: hex::encode(r.order),
                persona: hex::encode(r.persona),
                rating: r.rating,
                text,
                created: r.created,
                history: r.history.len(),
            });
        }
        views.sort_by_key(|r| std::cmp::Reverse(r.created));
        Ok(views)
    }
}

fn parse_vendor(vendor: &str) -> Result<[u8; 32], NodeError> {
    hex::decode(vendor)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            NodeError::Relationship(format!("{vendor:?} is not a vendor key (64 hex digits)"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn review(vendor: u8, persona: u8, rating: u8, history: &[u8], created: u64) -> StoredReview {
        StoredReview {
            reviewed: Reviewed {
                vendor: [vendor; 32],
                order: [persona; 32],
                persona: [persona; 32],
                rating,
                created,
                history: history.iter().map(|v| [*v; 32]).collect(),
            },
            id: MessageId([persona; 32]),
            stored_at: created,
        }
    }

    #[test]
    fn counts_mean_distribution_and_recency_are_of_every_review() {
        let old = NOW - RECENT_SECS;
        let reviews = [
            review(1, 10, 5, &[], NOW),
            review(1, 11, 4, &[], old),
            review(1, 12, 1, &[], old + 1),
            review(2, 13, 3, &[], NOW),
        ];
        let reps = reputations(&reviews, &HashSet::new(), NOW);
        let one = &reps[&[1; 32]];
        assert_eq!((one.reviews, one.buyers, one.proven), (3, 3, 0));
        assert_eq!(one.mean, 10.0 / 3.0);
        assert_eq!(one.distribution, [1, 0, 0, 1, 1]);
        assert_eq!(
            (one.newest, one.recent),
            (NOW, 2),
            "the one 90 days old is not recent"
        );
        assert_eq!(one.vendor, hex::encode([1; 32]));
        assert_eq!(reps[&[2; 32]].reviews, 1);
    }

    #[test]
    fn unproven_buyers_weigh_one_together_and_proven_ones_one_each() {
        let unproven: Vec<StoredReview> = (0..20).map(|n| review(1, 10 + n, 5, &[], NOW)).collect();
        let reps = reputations(&unproven, &HashSet::new(), NOW);
        assert_eq!(reps[&[1; 32]].score, (2.0 * 3.0 + 5.0) / 3.0);
        let trusted = HashSet::from([[9; 32]]);
        let proven: Vec<StoredReview> = (0..4).map(|n| review(1, 40 + n, 4, &[9], NOW)).collect();
        let reps = reputations(&proven, &trusted, NOW);
        let one = &reps[&[1; 32]];
        assert_eq!((one.proven, one.trusted), (4, true));
        assert_eq!(one.score, (2.0 * 3.0 + 4.0 * 4.0) / 6.0);
        let mixed: Vec<StoredReview> = proven.iter().cloned().chain(unproven).collect();
        let reps = reputations(&mixed, &trusted, NOW);
        assert_eq!(reps[&[1; 32]].score, (6.0 + 16.0 + 5.0) / 7.0);
    }

    #[test]
    fn one_buyer_is_one_voice_and_trust_spreads_only_through_proven_buyers() {
        // One persona reviewing two orders of vendor 1: one voice, the mean of its two.
        let twice = [review(1, 10, 5, &[], NOW), {
            let mut r = review(1, 10, 1, &[], NOW);
            r.reviewed.order = [99; 32];
            r
        }];
        let reps = reputations(&twice, &HashSet::new(), NOW);
        assert_eq!((reps[&[1; 32]].reviews, reps[&[1; 32]].buyers), (2, 1));
        assert_eq!(reps[&[1; 32]].score, (6.0 + 3.0) / 3.0);
        // Vendor 9 is trusted (own experience); two buyers proven by it make vendor 2
        // trusted, whose own two proven buyers then make vendor 3 trusted. One proven buyer
        // is not enough (vendor 4); history naming the reviewed vendor itself proves nothing.
        let chain = [
            review(2, 20, 4, &[9], NOW),
            review(2, 21, 4, &[9], NOW),
            review(3, 30, 4, &[2], NOW),
            review(3, 31, 4, &[2], NOW),
            review(4, 40, 4, &[9], NOW),
            review(5, 50, 4, &[5], NOW),
            review(5, 51, 4, &[5], NOW),
        ];
        let reps = reputations(&chain, &HashSet::from([[9; 32], [5; 32]]), NOW);
        let trusted = |v: u8| reps[&[v; 32]].trusted;
        assert!(trusted(2) && trusted(3));
        assert!(!trusted(4), "one proven buyer");
        assert_eq!(reps[&[4; 32]].proven, 1);
        assert_eq!(
            reps[&[5; 32]].proven, 0,
            "its own tokens prove nothing about it"
        );
    }
}
