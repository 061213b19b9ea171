//! The API's handlers, by resource: the person's [`intents`] and the offers they received,
//! the [`relationships`] after an accepted offer, the [`vendor`] side and directory, and the [`node`] itself with its event stream. Each
//! handler's doc comment and `utoipa::path` make its part of the OpenAPI document.

pub(super) mod data;
pub(super) mod groups;
pub(super) mod intents;
pub(super) mod node;
pub(super) mod relationships;
pub(super) mod reviews;
pub(super) mod vendor;
