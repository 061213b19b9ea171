//! Rules for the intent family: an intent on its own, and a withdrawal.

use super::{
    check_category, check_count, check_created, check_price, check_reply_to, check_term_ids,
    check_text,
};
use crate::proto::error::ValidationError as E;
use crate::proto::kinds::{Intent, IntentWithdraw};
use crate::proto::limits::*;

/// Rules for an intent.
pub fn check_intent(intent: &Intent, now: u64) -> Result<(), E> {
    check_created(intent.created, now)?;
    if intent.expires <= intent.created {
        return Err(E::ExpiresBeforeCreated {
            created: intent.created,
            expires: intent.expires,
        });
    }
    let lifetime = intent.expires - intent.created;
    if lifetime > MAX_INTENT_LIFETIME_SECS {
        return Err(E::LifetimeTooLong {
            secs: lifetime,
            max: MAX_INTENT_LIFETIME_SECS,
        });
    }
    if intent.expires <= now {
        return Err(E::Expired {
            expires: intent.expires,
            now,
        });
    }
    check_category(&intent.category, intent.subcategory.as_deref())?;
    check_text("text", &intent.text, MAX_TEXT_BYTES)?;
    if let Some(group) = &intent.group
        && !(2..=MAX_GROUP_SIZE).contains(&group.size)
    {
        return Err(E::InvalidField {
            field: "group.size",
            reason: "not from 2 to 1000 members",
        });
    }
    let c = &intent.constraints;
    if let Some(price) = &c.max_price {
        check_price(price)?;
    }
    if let Some(place) = &c.place {
        check_text("constraints.place", place, MAX_SHORT_BYTES)?;
    }
    if let Some(dates) = &c.dates {
        let from = crate::clock::day_number(&dates.from).ok_or(E::InvalidField {
            field: "constraints.dates.from",
            reason: "not a YYYY-MM-DD date",
        })?;
        let to = crate::clock::day_number(&dates.to).ok_or(E::InvalidField {
            field: "constraints.dates.to",
            reason: "not a YYYY-MM-DD date",
        })?;
        if to < from {
            return Err(E::InvalidField {
                field: "constraints.dates",
                reason: "ends before it starts",
            });
        }
    }
    if c.quantity == Some(0) {
        return Err(E::InvalidField {
            field: "constraints.quantity",
            reason: "must be at least 1",
        });
    }
    check_count("terms", intent.terms.len())?;
    check_term_ids(intent.terms.iter().map(|t| t.id.as_str()))?;
    check_reply_to(&intent.reply_to)
}

/// Rules for a withdrawal (that its signer is the caster is checked against the stored intent).
pub fn check_withdraw(withdraw: &IntentWithdraw, now: u64) -> Result<(), E> {
    check_created(withdraw.created, now)
}
