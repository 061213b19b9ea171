//! Rules for a vendor profile.

use super::{
    check_category, check_created, check_len, check_node_address, check_term_ids, check_text,
};
use crate::proto::error::ValidationError as E;
use crate::proto::kinds::VendorProfile;
use crate::proto::limits::*;

/// Rules for a vendor profile.
pub fn check_profile(profile: &VendorProfile, now: u64) -> Result<(), E> {
    check_created(profile.created, now)?;
    check_text("name", &profile.name, MAX_SHORT_BYTES)?;
    if profile.categories.is_empty() {
        return Err(E::EmptyField("categories"));
    }
    for category in &profile.categories {
        check_category(category, None)?;
    }
    check_len("contact", &profile.contact, MAX_TEXT_BYTES)?;
    check_term_ids(profile.accepted_terms.iter().map(String::as_str))?;
    match &profile.reply_to {
        Some(node) => check_node_address(node),
        None => Ok(()),
    }
}
