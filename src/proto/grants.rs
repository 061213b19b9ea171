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

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::proto::relationship::test_support::{Parties, accept, parties};
    use crate::proto::{Agreement, Envelope, Grant, Message, Receipt, RelationshipEnd, Revoke};

    fn started() -> (Parties, Chain) {
        let p = parties();
        let (chain, _) = Chain::start(&accept(&p), &p.offer).unwrap();
        (p, chain)
    }

    fn push(chain: &mut Chain, envelope: &Envelope) -> Result<(), RuleError> {
        let (_, _, state) = chain.check(envelope)?;
        chain.push(envelope, state);
        Ok(())
    }

    fn code(chain: &mut Chain, envelope: &Envelope) -> &'static str {
        push(chain, envelope).map_or_else(|e| e.code, |()| "ok")
    }

    struct G<'a> {
        fields: &'a [&'a str],
        purpose: &'a str,
        created: u64,
        expires: u64,
        terms: &'a [&'a str],
        replaces: Option<[u8; 32]>,
    }

    const DELIVERY: G = G {
        fields: &["email", "postal-address"],
        purpose: "delivery",
        created: 1_000,
        expires: 2_000,
        terms: &["no-tracking"],
        replaces: None,
    };

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn grant(chain: &Chain, g: &G, key: &SigningKey) -> Envelope {
        let body = Grant {
            rel: chain.rel.into(),
            seq: chain.len,
            prev: chain.last.into(),
            fields: strings(g.fields),
            purpose: g.purpose.into(),
            expires: g.expires,
            terms: strings(g.terms),
            replaces: g.replaces.map(Into::into),
            created: g.created,
        };
        Envelope::seal(&body, key)
    }

    /// A receipt of `of` restating it, changed by `edit`.
    fn receipt(
        chain: &Chain,
        of: [u8; 32],
        status: ReceiptStatus,
        key: &SigningKey,
        edit: impl FnOnce(&mut Receipt),
    ) -> Envelope {
        let grant = chain.grants.iter().find(|g| g.id == of);
        let mut body = Receipt {
            rel: chain.rel.into(),
            seq: chain.len,
            prev: chain.last.into(),
            of: of.into(),
            status: status.as_str().into(),
            fields: grant.map(|g| g.fields.clone()).unwrap_or_default(),
            purpose: grant.map(|g| g.purpose.clone()).unwrap_or_default(),
            expires: grant.map_or(0, |g| g.expires),
            delete_by: grant.map_or(0, |g| g.expires),
            terms: grant.map(|g| g.terms.clone()).unwrap_or_default(),
            text: String::new(),
            created: 1_100,
        };
        edit(&mut body);
        Envelope::seal(&body, key)
    }

    fn revoke(chain: &Chain, of: [u8; 32], key: &SigningKey) -> Envelope {
        let body = Revoke {
            rel: chain.rel.into(),
            seq: chain.len,
            prev: chain.last.into(),
            grant: of.into(),
            created: 1_200,
        };
        Envelope::seal(&body, key)
    }

    fn agreement(chain: &Chain, terms: &[&str], key: &SigningKey) -> Envelope {
        let body = Agreement {
            rel: chain.rel.into(),
            seq: chain.len,
            prev: chain.last.into(),
            terms: strings(terms),
            created: 1_050,
        };
        Envelope::seal(&body, key)
    }

    /// A chain holding DELIVERY, held by the vendor; the grant's id.
    fn held() -> (Parties, Chain, [u8; 32]) {
        let (p, mut chain) = started();
        let g = grant(&chain, &DELIVERY, &p.persona);
        push(&mut chain, &g).unwrap();
        let r = receipt(&chain, g.id().0, ReceiptStatus::Held, &p.vendor, |_| {});
        push(&mut chain, &r).unwrap();
        (p, chain, g.id().0)
    }

    #[test]
    fn a_grant_is_the_persons_answered_once_by_the_vendor_and_deleted_once() {
        let (p, mut chain) = started();
        let by_vendor = grant(&chain, &DELIVERY, &p.vendor);
        assert_eq!(code(&mut chain, &by_vendor), "wrong-signer");
        let g = grant(&chain, &DELIVERY, &p.persona);
        assert_eq!(code(&mut chain, &g), "ok");
        let id = g.id().0;
        assert!(chain.grants[0].live() && !chain.grants[0].held());
        let by_person = receipt(&chain, id, ReceiptStatus::Held, &p.persona, |_| {});
        assert_eq!(code(&mut chain, &by_person), "wrong-signer");
        let r = receipt(&chain, id, ReceiptStatus::Held, &p.vendor, |_| {});
        assert_eq!(code(&mut chain, &r), "ok");
        assert!(chain.grants[0].held());
        assert_eq!(chain.grants[0].answer, Some((ReceiptStatus::Held, 1_100)));
        assert_eq!(chain.grants[0].delete_by, Some(2_000));
        let again = receipt(&chain, id, ReceiptStatus::Refused, &p.vendor, |_| {});
        assert_eq!(code(&mut chain, &again), "not-now");
        let gone = receipt(&chain, id, ReceiptStatus::Deleted, &p.vendor, |_| {});
        assert_eq!(code(&mut chain, &gone), "ok");
        assert_eq!(chain.grants[0].deleted, Some(1_100));
        assert!(!chain.grants[0].held() && !chain.grants[0].live());
        let twice = receipt(&chain, id, ReceiptStatus::Deleted, &p.vendor, |_| {});
        assert_eq!(code(&mut chain, &twice), "not-now");
        let late = revoke(&chain, id, &p.persona);
        assert_eq!(code(&mut chain, &late), "not-now");
    }

    #[test]
    fn a_grant_names_distinct_fields_a_known_purpose_and_an_expiry_within_a_year() {
        let (p, chain) = started();
        let many: Vec<String> = (0..=MAX_GRANT_FIELDS).map(|n| format!("f{n}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let year = 1_000 + MAX_GRANT_SECS;
        let cases: [(G, &str); 9] = [
            (
                G {
                    fields: &[],
                    ..DELIVERY
                },
                "bad-entry",
            ),
            (
                G {
                    fields: &["email", "email"],
                    ..DELIVERY
                },
                "bad-entry",
            ),
            (
                G {
                    fields: &["Email"],
                    ..DELIVERY
                },
                "bad-entry",
            ),
            (
                G {
                    fields: &many,
                    ..DELIVERY
                },
                "bad-entry",
            ),
            (
                G {
                    fields: &many[..MAX_GRANT_FIELDS],
                    ..DELIVERY
                },
                "ok",
            ),
            (
                G {
                    purpose: "resale",
                    ..DELIVERY
                },
                "bad-entry",
            ),
            (
                G {
                    expires: 1_000,
                    ..DELIVERY
                },
                "bad-entry",
            ),
            (
                G {
                    expires: year + 1,
                    ..DELIVERY
                },
                "bad-entry",
            ),
            (
                G {
                    expires: year,
                    terms: &["sell-my-soul"],
                    ..DELIVERY
                },
                "bad-terms",
            ),
        ];
        for (g, expected) in cases {
            let mut chain = chain.clone();
            let envelope = grant(&chain, &g, &p.persona);
            assert_eq!(
                code(&mut chain, &envelope),
                expected,
                "{:?}",
                g.fields.len()
            );
        }
        let mut chain = chain.clone();
        let envelope = grant(
            &chain,
            &G {
                expires: year,
                ..DELIVERY
            },
            &p.persona,
        );
        assert_eq!(code(&mut chain, &envelope), "ok", "a year to the second");
    }

    #[test]
    fn a_receipt_restates_the_grant_exactly_and_held_takes_every_term() {
        let (p, mut chain) = started();
        let g = grant(&chain, &DELIVERY, &p.persona);
        push(&mut chain, &g).unwrap();
        let id = g.id().0;
        type Edit = fn(&mut Receipt);
        let cases: [(Edit, &str); 7] = [
            (|r| drop(r.fields.pop()), "bad-receipt"),
            (|r| r.purpose = "billing".into(), "bad-receipt"),
            (|r| r.expires += 1, "bad-receipt"),
            (|r| r.delete_by = r.expires + 1, "bad-receipt"),
            (|r| r.terms.clear(), "bad-terms"),
            (|r| r.of = [7; 32].into(), "bad-grant"),
            (|r| r.delete_by = r.expires - 1, "ok"),
        ];
        for (edit, expected) in cases {
            let mut chain = chain.clone();
            let r = receipt(&chain, id, ReceiptStatus::Held, &p.vendor, edit);
            assert_eq!(code(&mut chain, &r), expected);
        }
        let refused = receipt(&chain, id, ReceiptStatus::Refused, &p.vendor, |r| {
            r.terms.clear();
        });
        assert_eq!(code(&mut chain, &refused), "ok", "a refusal takes no terms");
        assert!(!chain.grants[0].live());
        let no_data = receipt(&chain, id, ReceiptStatus::Deleted, &p.vendor, |_| {});
        assert_eq!(
            code(&mut chain, &no_data),
            "not-now",
            "nothing held to delete"
        );
        let revoked = revoke(&chain, id, &p.persona);
        assert_eq!(code(&mut chain, &revoked), "not-now");
    }

    #[test]
    fn the_vendor_agrees_once_to_terms_its_offer_accepted() {
        let (p, mut chain) = started();
        chain.offered_terms = strings(&["no-tracking", "no-resale"]);
        let by_person = agreement(&chain, &["no-tracking"], &p.persona);
        assert_eq!(code(&mut chain, &by_person), "wrong-signer");
        for terms in [
            &[][..],
            &["delete-on-revoke"],
            &["no-tracking", "no-tracking"],
        ] {
            let envelope = agreement(&chain, terms, &p.vendor);
            assert_eq!(code(&mut chain, &envelope), "bad-terms", "{terms:?}");
        }
        let agreed = agreement(&chain, &["no-resale", "no-tracking"], &p.vendor);
        assert_eq!(code(&mut chain, &agreed), "ok");
        assert_eq!(
            chain.agreed_terms,
            Some(strings(&["no-resale", "no-tracking"]))
        );
        let again = agreement(&chain, &["no-tracking"], &p.vendor);
        assert_eq!(code(&mut chain, &again), "not-now");
    }

    #[test]
    fn a_new_value_replaces_a_held_grant_of_the_same_purpose_which_is_then_deleted() {
        let (p, mut chain, old) = held();
        let billing = G {
            purpose: "billing",
            replaces: Some(old),
            ..DELIVERY
        };
        let wrong = grant(&chain, &billing, &p.persona);
        assert_eq!(code(&mut chain, &wrong), "bad-grant");
        let unknown = G {
            replaces: Some([7; 32]),
            ..DELIVERY
        };
        let wrong = grant(&chain, &unknown, &p.persona);
        assert_eq!(code(&mut chain, &wrong), "bad-grant");
        let new = grant(
            &chain,
            &G {
                replaces: Some(old),
                ..DELIVERY
            },
            &p.persona,
        );
        assert_eq!(code(&mut chain, &new), "ok");
        assert_eq!(chain.grants[0].replaced_by, Some(new.id().0));
        assert_eq!(chain.grants[1].replaces, Some(old));
        assert!(!chain.grants[0].live() && chain.grants[0].held());
        let again = grant(
            &chain,
            &G {
                replaces: Some(old),
                ..DELIVERY
            },
            &p.persona,
        );
        assert_eq!(code(&mut chain, &again), "bad-grant", "replaced already");
        let revoked = revoke(&chain, old, &p.persona);
        assert_eq!(code(&mut chain, &revoked), "not-now");
        let gone = receipt(&chain, old, ReceiptStatus::Deleted, &p.vendor, |_| {});
        assert_eq!(code(&mut chain, &gone), "ok");
        let pending = grant(
            &chain,
            &G {
                replaces: Some(new.id().0),
                ..DELIVERY
            },
            &p.persona,
        );
        assert_eq!(
            code(&mut chain, &pending),
            "bad-grant",
            "a grant not yet held cannot be replaced"
        );
    }

    #[test]
    fn after_the_end_only_the_vendors_deletions_follow() {
        let (p, mut chain, id) = held();
        let end = Envelope::seal(
            &RelationshipEnd {
                rel: chain.rel.into(),
                seq: chain.len,
                prev: chain.last.into(),
                text: String::new(),
                created: 1_300,
            },
            &p.persona,
        );
        push(&mut chain, &end).unwrap();
        let message = Envelope::seal(
            &Message {
                rel: chain.rel.into(),
                seq: chain.len,
                prev: chain.last.into(),
                text: "one more thing".into(),
                created: 1_400,
            },
            &p.vendor,
        );
        assert_eq!(code(&mut chain, &message), "ended");
        let revoked = revoke(&chain, id, &p.persona);
        assert_eq!(code(&mut chain, &revoked), "ended");
        let g = grant(&chain, &DELIVERY, &p.persona);
        assert_eq!(code(&mut chain, &g), "ended");
        let gone = receipt(&chain, id, ReceiptStatus::Deleted, &p.vendor, |_| {});
        assert_eq!(code(&mut chain, &gone), "ok");
    }

    #[test]
    fn a_revoked_grant_is_revoked_once_and_then_deleted() {
        let (p, mut chain, id) = held();
        let by_vendor = revoke(&chain, id, &p.vendor);
        assert_eq!(code(&mut chain, &by_vendor), "wrong-signer");
        let unknown = revoke(&chain, [7; 32], &p.persona);
        assert_eq!(code(&mut chain, &unknown), "bad-grant");
        let revoked = revoke(&chain, id, &p.persona);
        assert_eq!(code(&mut chain, &revoked), "ok");
        assert_eq!(chain.grants[0].revoked, Some(1_200));
        assert!(!chain.grants[0].live() && chain.grants[0].held());
        let again = revoke(&chain, id, &p.persona);
        assert_eq!(code(&mut chain, &again), "not-now");
        let gone = receipt(&chain, id, ReceiptStatus::Deleted, &p.vendor, |_| {});
        assert_eq!(code(&mut chain, &gone), "ok");
    }

    #[test]
    fn a_terms_list_is_short_known_and_without_repeats() {
        let many = vec!["no-tracking".to_owned(); MAX_ITEMS + 1];
        assert!(check_terms(&many).unwrap_err().reason.contains("more than"));
        let at_most = vec!["no-tracking".to_owned(); MAX_ITEMS];
        assert!(check_terms(&at_most).unwrap_err().reason.contains("twice"));
        assert!(check_terms(&strings(&["no-tracking", "no-resale"])).is_ok());
        assert!(check_terms(&strings(&["no-spying"])).is_err());
    }

    #[test]
    fn a_log_holds_at_most_so_many_grants() {
        let (p, mut chain) = started();
        for _ in 0..MAX_GRANTS {
            let g = grant(&chain, &DELIVERY, &p.persona);
            push(&mut chain, &g).unwrap();
        }
        let one_more = grant(&chain, &DELIVERY, &p.persona);
        assert_eq!(code(&mut chain, &one_more), "log-full");
        assert_eq!(MAX_GRANTS, 64);
    }
}
