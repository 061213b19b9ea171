//! What tests read from a node's store, in one place: when the node's read API changes, this
//! file changes and the tests do not.

use vrm::proto::{Envelope, IntentId, Offer, VendorProfile};
use vrm::store::{Decision, Delivery, IntentKey, Origin};

use super::TestNode;
use vrm::node::relationships::RelationshipDetail;

/// Ids of all intents `node` holds (its own and, on a vendor node, the ones it received).
pub fn intent_ids(node: &TestNode) -> Vec<IntentId> {
    node.handle
        .intents()
        .unwrap()
        .into_iter()
        .map(|stored| stored.intent.id)
        .collect()
}

/// Ids of the intents a node holds that it did not cast.
pub fn received_intents(node: &TestNode) -> Vec<IntentId> {
    node.handle
        .intents()
        .unwrap()
        .into_iter()
        .filter(|stored| stored.origin == Origin::Received)
        .map(|stored| stored.intent.id)
        .collect()
}

/// The signed envelope of intent `id` as `node` holds it.
pub fn intent_envelope(node: &TestNode, id: &IntentId) -> Envelope {
    node.handle
        .intent(id)
        .unwrap()
        .map(|stored| stored.envelope)
        .unwrap_or_else(|| panic!("{} holds intent {}", node.name, hex::encode(**id)))
}

/// Whether `node` holds intent `id` as withdrawn.
pub fn intent_withdrawn(node: &TestNode, id: &IntentId) -> bool {
    node.handle
        .intent(id)
        .unwrap()
        .is_some_and(|stored| stored.withdrawn_at.is_some())
}

/// Vendor view: each received intent with the decision taken on it, if any yet.
pub fn decisions(node: &TestNode) -> Vec<(IntentId, Option<Decision>)> {
    node.handle
        .vendor_intents()
        .unwrap()
        .into_iter()
        .map(|stored| (stored.intent.id, stored.decision))
        .collect()
}

/// Vendor view: the decision taken on intent `id`, if any yet.
pub fn decision(node: &TestNode, id: &IntentId) -> Option<Decision> {
    decisions(node)
        .into_iter()
        .find(|(held, _)| held == id)
        .and_then(|(_, decision)| decision)
}

/// The offers `node` holds for its own intent `id`, each with its envelope decoded (and
/// verified) again from the stored bytes.
pub fn offers(node: &TestNode, id: &IntentId) -> Vec<(Envelope, Offer)> {
    node.handle
        .offers_for(&IntentKey::own(id))
        .unwrap()
        .into_iter()
        .map(|stored| (stored.envelope, stored.offer))
        .collect()
}

/// Number of offers `node` holds for its own intent `id`.
pub fn offer_count(node: &TestNode, id: &IntentId) -> usize {
    node.handle.offers_for(&IntentKey::own(id)).unwrap().len()
}

/// Vendor view: where each offer this node made stands.
pub fn deliveries(node: &TestNode) -> Vec<Delivery> {
    node.handle
        .vendor_offers()
        .unwrap()
        .into_iter()
        .map(|stored| stored.delivery)
        .collect()
}

/// Messages waiting in `node`'s outbox.
pub fn outbox_len(node: &TestNode) -> usize {
    node.handle.counts().outbox
}

/// The vendor profiles `node` keeps: each vendor's key and its newest profile.
pub fn profiles(node: &TestNode) -> Vec<([u8; 32], VendorProfile)> {
    node.handle
        .profiles()
        .unwrap()
        .into_iter()
        .map(|stored| (stored.envelope.signer().to_bytes(), stored.profile))
        .collect()
}

/// One relationship as `node` sees it.
pub fn detail(node: &TestNode, rel: &str) -> Option<RelationshipDetail> {
    node.handle.relationship(rel).ok()
}

/// Waits until both sides hold the same `entries` entries, every one acknowledged and none
/// pending, and returns the person's (`p`) view.
pub async fn settled(p: &TestNode, v: &TestNode, rel: &str, entries: u32) -> RelationshipDetail {
    super::eventually(
        &format!("both sides hold {entries} acknowledged entries"),
        || async {
            let (dp, dv) = (detail(p, rel)?, detail(v, rel)?);
            let done = |d: &RelationshipDetail| {
                d.summary.entries == entries && d.log.iter().all(|e| e.acknowledged && !e.pending)
            };
            (done(&dp) && done(&dv)).then_some(dp)
        },
    )
    .await
}

/// Whether any file under `dir` (a data directory) holds `needle`, byte for byte.
pub fn on_disk(dir: &std::path::Path, needle: &str) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                return true;
            }
        }
    }
    false
}
