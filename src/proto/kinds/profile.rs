//! The directory family: a vendor's public [`VendorProfile`], gossiped on the directory
//! topic.

use serde::{Deserialize, Serialize};

use super::{Body, Kind, NodeAddress};

/// A vendor's public profile, gossiped on the directory topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorProfile {
    /// Display name.
    pub name: String,
    /// Top-level categories served.
    pub categories: Vec<String>,
    /// How to reach the vendor outside vrm (web, mail, phone).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub contact: String,
    /// Term ids the vendor accepts in general.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_terms: Vec<String>,
    /// Unix time, seconds; the newest profile per vendor key wins.
    pub created: u64,
    /// Where the vendor node can be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<NodeAddress>,
}

impl Body for VendorProfile {
    const KIND: Kind = Kind::VendorProfile;
}
