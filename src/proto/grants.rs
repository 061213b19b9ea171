//! The rules of the person's data in a relationship's log (`proto/README.md`, "Data on the
//! person's terms"): who signs an agreement, a grant, a revoke or a receipt, when each may
//! come, and what a receipt must restate. [`Chain::check`] calls [`check`] and
//! [`Chain::push`] calls [`apply`], so the rules have one home, shared by both nodes and the
//! offline verifier.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::kinds::{MAX_GRANT_FIELDS, MAX_GRANT_SECS, ReceiptStatus, is_field_name};
use super::limits::MAX_ITEMS;
use super::relationship::{Chain, Entry, RuleError, Side, rule};
use super::taxonomy::{is_known_purpose, is_known_term};

/// Most grants one log holds; the next is refused with `log-full`.
pub const MAX_GRANTS: usize = 64;

/// A grant of the log and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantState {
    /// The grant's id (its envelope's).
    pub id: [u8; 32],
    /// The granted fields.
    pub fields: Vec<String>,
    /// The purpose.
    pub purpose: String,
    /// When the grant ends.
    pub expires: u64,
    /// The person's terms.
    pub terms: Vec<String>,
    /// When the person made it.
    pub created: u64,
    /// The grant it replaced.
    pub replaces: Option<[u8; 32]>,
    /// The vendor's answer (held or refused), once it came, and when.
    pub answer: Option<(ReceiptStatus, u64)>,
    /// The vendor deletes the data by then (from its `held` receipt).
    pub delete_by: Option<u64>,
    /// When the person revoked it.
    pub revoked: Option<u64>,
    /// The grant that replaced it.
    pub replaced_by: Option<[u8; 32]>,
    /// When the vendor said it deleted the data.
    pub deleted: Option<u64>,
}

impl GrantState {
    /// Whether the vendor holds (or is about to hold) the data under it: not refused,
    /// revoked, replaced or deleted. (Expiry is a matter of the clock, not of the log.)
    pub fn live(&self) -> bool {
        !matches!(self.answer, Some((ReceiptStatus::Refused, _)))
            && self.revoked.is_none()
            && self.replaced_by.is_none()
            && self.deleted.is_none()
    }

    /// Whether the vendor said it holds the data and has not said it deleted it.
    pub fn held(&self) -> bool {
        matches!(self.answer, Some((ReceiptStatus::Held, _))) && self.deleted.is_none()
    }
}

fn find<'a>(chain: &'a Chain, id: &[u8; 32]) -> Result<&'a GrantState, RuleError> {
    chain
        .grants
        .iter()
        .find(|g| g.id == *id)
        .ok_or_else(|| rule("bad-grant", "no such grant in this log"))
}

fn only(side: Side, signer: Side, what: &str) -> Result<(), RuleError> {
    if side == signer {
        Ok(())
    } else {
        Err(rule(
            "wrong-signer",
            format!("only the {signer:?} signs {what}"),
        ))
    }
}

fn check_terms(terms: &[String]) -> Result<(), RuleError> {
    let mut seen = HashSet::new();
    if terms.len() > MAX_ITEMS {
        return Err(rule("bad-terms", format!("more than {MAX_ITEMS} terms")));
    }
    match terms
        .iter()
        .find(|t| !is_known_term(t) || !seen.insert(t.as_str()))
    {
        Some(term) => Err(rule(
            "bad-terms",
            format!("term {term:?} is unknown or named twice"),
        )),
        None => Ok(()),
    }
}

/// Whether a data entry may come next: its signer, its fields and the grants it names.
/// Other entries pass.
pub fn check(chain: &Chain, entry: &Entry, side: Side) -> Result<(), RuleError> {
    match entry {
        Entry::Agreement(agreement) => {
            only(side, Side::Vendor, "an agreement")?;
            if chain.agreed_terms.is_some() {
                return Err(rule("not-now", "the vendor agreed to the terms already"));
            }
            check_terms(&agreement.terms)?;
            if agreement.terms.is_empty()
                || agreement
                    .terms
                    .iter()
                    .any(|t| !chain.offered_terms.contains(t))
            {
                return Err(rule(
                    "bad-terms",
                    "an agreement names terms the offer accepted, and at least one",
                ));
            }
        }
        Entry::Grant(grant) => {
            only(side, Side::Person, "a grant")?;
            if chain.grants.len() >= MAX_GRANTS {
                return Err(rule("log-full", format!("a log holds {MAX_GRANTS} grants")));
            }
            let mut seen = HashSet::new();
            if grant.fields.is_empty()
                || grant.fields.len() > MAX_GRANT_FIELDS
                || grant
                    .fields
                    .iter()
                    .any(|f| !is_field_name(f) || !seen.insert(f.as_str()))
            {
                return Err(rule(
                    "bad-entry",
                    format!("a grant names 1 to {MAX_GRANT_FIELDS} distinct field names"),
                ));
            }
            if !is_known_purpose(&grant.purpose) {
                return Err(rule(
                    "bad-entry",
                    format!("unknown purpose {:?}", grant.purpose),
                ));
            }
            if grant.expires <= grant.created || grant.expires - grant.created > MAX_GRANT_SECS {
                return Err(rule(
                    "bad-entry",
                    "a grant expires after it is made, within a year",
                ));
            }
            check_terms(&grant.terms)?;
            if let Some(old) = &grant.replaces {
                let old = find(chain, old)?;
                if !old.held() || !old.live() || old.purpose != grant.purpose {
                    return Err(rule(
                        "bad-grant",
                        "a grant replaces a held grant of the same purpose",
                    ));
                }
            }
        }
        Entry::Revoke(revoke) => {
            only(side, Side::Person, "a revoke")?;
            if !find(chain, &revoke.grant)?.live() {
                return Err(rule(
                    "not-now",
                    "the grant is refused, revoked, replaced or deleted already",
                ));
            }
        }
        Entry::Receipt(receipt, status) => {
            only(side, Side::Vendor, "a receipt")?;
            let grant = find(chain, &receipt.of)?;
            if receipt.fields != grant.fields
                || receipt.purpose != grant.purpose
                || receipt.expires != grant.expires
                || receipt.delete_by > grant.expires
            {
                return Err(rule(
                    "bad-receipt",
                    "a receipt restates the grant's fields, purpose and expiry, and deletes by then",
                ));
            }
            check_terms(&receipt.terms)?;
            match status {
                ReceiptStatus::Held | ReceiptStatus::Refused => {
                    if grant.answer.is_some() {
                        return Err(rule("not-now", "the grant is answered already"));
                    }
                }
                ReceiptStatus::Deleted => {
                    if !grant.held() {
                        return Err(rule("not-now", "only data the vendor holds can be deleted"));
                    }
                }
            }
            if *status == ReceiptStatus::Held
                && grant.terms.iter().any(|t| !receipt.terms.contains(t))
            {
                return Err(rule(
                    "bad-terms",
                    "a held receipt accepts every term of the grant",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Records a data entry that [`check`] passed (`id`: its envelope's id).
pub fn apply(chain: &mut Chain, entry: &Entry, id: [u8; 32]) {
    match entry {
        Entry::Agreement(agreement) => chain.agreed_terms = Some(agreement.terms.clone()),
        Entry::Grant(grant) => {
            let replaces = grant.replaces.as_ref().map(|r| **r);
            if let Some(old) = replaces
                && let Some(old) = chain.grants.iter_mut().find(|g| g.id == old)
            {
                old.replaced_by = Some(id);
            }
            chain.grants.push(GrantState {
                id,
                fields: grant.fields.clone(),
                purpose: grant.purpose.clone(),
                expires: grant.expires,
                terms: grant.terms.clone(),
                created: grant.created,
                replaces,
                answer: None,
                delete_by: None,
                revoked: None,
                replaced_by: None,
                deleted: None,
            });
        }
        Entry::Revoke(revoke) => {
            if let Some(g) = chain.grants.iter_mut().find(|g| g.id == *revoke.grant) {
                g.revoked = Some(revoke.created);
            }
        }
        Entry::Receipt(receipt, status) => {
            if let Some(g) = chain.grants.iter_mut().find(|g| g.id == *receipt.of) {
                match status {
                    ReceiptStatus::Deleted => g.deleted = Some(receipt.created),
                    ReceiptStatus::Held => {
                        g.answer = Some((*status, receipt.created));
                        g.delete_by = Some(receipt.delete_by);
                    }
                    ReceiptStatus::Refused => g.answer = Some((*status, receipt.created)),
                }
            }
        }
        _ => {}
    }
}
