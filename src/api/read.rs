//! What the handlers read from the node, as views. Each view is built from the node's read
//! models here and only here, so the handlers only parse, act and answer.

use std::collections::HashMap;

use super::ApiError;
use super::views::{IntentView, MailboxView, OfferView, StatusView, VendorView};
use crate::node::reviews::Reputation;
use crate::node::{NodeError, NodeHandle};
use crate::proto::IntentId;
use crate::store::{Origin, StoredIntent};

/// The node at a glance.
pub(super) async fn status(node: &NodeHandle) -> Result<StatusView, ApiError> {
    let counts = node.counts();
    Ok(StatusView {
        version: env!("CARGO_PKG_VERSION").into(),
        peer_id: node.peer_id().to_string(),
        vendor_key: node.vendor_key().map(hex::encode),
        vendor_name: node.vendor_name(),
        listen: node.listen_addrs().iter().map(|a| a.to_string()).collect(),
        peers: node.peers().await?.len(),
        intents: counts.intents,
        offers: counts.offers,
        outbox: counts.outbox,
        role: node.role().to_string(),
        service_nodes: node
            .service_nodes()
            .iter()
            .map(|peer| peer.to_string())
            .collect(),
        shards: node.shards(),
        mailbox: {
            let held = node.mailbox_counts();
            MailboxView {
                queues: held.queues,
                items: held.items,
                bytes: held.bytes,
            }
        },
        counters: node.stats().snapshot(),
    })
}

/// Stored intents, newest first: only own ones (`Some(true)`), only received ones
/// (`Some(false)`) or all.
pub(super) fn intents(node: &NodeHandle, own: Option<bool>) -> Result<Vec<IntentView>, ApiError> {
    stored_intents(node, own)?
        .iter()
        .map(|stored| intent_view(node, stored))
        .collect()
}

fn stored_intents(node: &NodeHandle, own: Option<bool>) -> Result<Vec<StoredIntent>, ApiError> {
    let mut all = node.intents()?;
    all.retain(|stored| own.is_none_or(|want| want == (stored.origin == Origin::Own)));
    all.sort_by_key(|stored| std::cmp::Reverse(stored.intent.created));
    Ok(all)
}

/// One stored intent; not-found if there is none with this id.
pub(super) fn intent(node: &NodeHandle, id: &IntentId) -> Result<IntentView, ApiError> {
    let stored = node
        .intent(id)?
        .ok_or_else(|| NodeError::UnknownIntent(hex::encode(**id)))?;
    intent_view(node, &stored)
}

fn intent_view(node: &NodeHandle, stored: &StoredIntent) -> Result<IntentView, ApiError> {
    let offers = node.offers_for(&stored.key())?.len();
    Ok(IntentView::new(stored, offers))
}

/// The offers received for one intent; not-found if there is no such intent.
pub(super) fn offers_for(node: &NodeHandle, id: &IntentId) -> Result<Vec<OfferView>, ApiError> {
    let stored = node
        .intent(id)?
        .ok_or_else(|| NodeError::UnknownIntent(hex::encode(**id)))?;
    received_offers(node, &stored, &Vendors::of(node))
}

/// The offers received for all own intents, newest intent first.
pub(super) fn own_offers(node: &NodeHandle) -> Result<Vec<OfferView>, ApiError> {
    let vendors = Vendors::of(node);
    let mut all = Vec::new();
    for stored in stored_intents(node, Some(true))? {
        all.extend(received_offers(node, &stored, &vendors)?);
    }
    Ok(all)
}

fn received_offers(
    node: &NodeHandle,
    stored: &StoredIntent,
    vendors: &Vendors,
) -> Result<Vec<OfferView>, ApiError> {
    Ok(node
        .offers_for(&stored.key())?
        .iter()
        .map(|stored| {
            let vendor = hex::encode(stored.envelope.signer().as_bytes());
            let name = vendors.names.get(&vendor).cloned();
            OfferView::new(stored, name, vendors.reputations.get(&vendor).cloned())
        })
        .collect())
}

/// The offers this vendor node sent.
pub(super) fn sent_offers(node: &NodeHandle) -> Result<Vec<OfferView>, ApiError> {
    let name = node.vendor_name();
    Ok(node
        .vendor_offers()?
        .iter()
        .map(|stored| OfferView::new(stored, name.clone(), None))
        .collect())
}

/// The vendor directory: the newest profile of every vendor seen.
pub(super) fn vendors(node: &NodeHandle) -> Result<Vec<VendorView>, ApiError> {
    Ok(node
        .profiles()?
        .into_iter()
        .map(|stored| VendorView {
            key: hex::encode(stored.envelope.signer().as_bytes()),
            name: stored.profile.name,
            categories: stored.profile.categories,
            contact: stored.profile.contact,
            accepted_terms: stored.profile.accepted_terms,
            updated: stored.profile.created,
        })
        .collect())
}

/// Vendor names by key (hex), for offers; without the directory, offers only lack names.
/// What offers received show of their vendors: names from the directory, reputations as
/// this node computes them, by vendor key (hex).
struct Vendors {
    names: HashMap<String, String>,
    reputations: HashMap<String, Reputation>,
}

impl Vendors {
    fn of(node: &NodeHandle) -> Vendors {
        Vendors {
            names: node
                .profiles()
                .unwrap_or_default()
                .into_iter()
                .map(|p| (hex::encode(p.envelope.signer().as_bytes()), p.profile.name))
                .collect(),
            reputations: node
                .reputations()
                .unwrap_or_default()
                .into_iter()
                .map(|r| (r.vendor.clone(), r))
                .collect(),
        }
    }
}
