//! # vrm — Vendor Relationship Management, the customer's side of CRM
//!
//! A node one person runs on a laptop. It casts the person's signed intentions on a libp2p
//! gossip network; vendor nodes (the same binary in the vendor role) answer with signed
//! offers, sealed to a one-time key and left in a mailbox the intent names, so no vendor
//! learns who the person is. Every node keeps its own history in its own sled store.
//!
//! ## Layout
//!
//! - [`proto`]: the wire protocol as pure code: the signed [`proto::Envelope`], the kinds by
//!   family (`kinds/{intent,offer,profile,relationship,data,review}.rs`) with their rules beside
//!   them (`validate/`, for a relationship's log `relationship.rs` and `grants.rs`, for reviews
//!   `reviews.rs`), limits, the category taxonomy, batch verification, sealing (HPKE) and
//!   the service protocols' messages. No I/O. `proto/` at
//!   the top of the repository is the same protocol written down for other implementations
//!   (CDDL, test vectors).
//! - [`identity`]: key files and the personas derived from the person's root secret.
//! - [`store`]: the one owner of sled. The rest of the node calls its typed operations
//!   (`cast`, `withdraw_own`, `receive_intent`, `record_offer_made`, …) and reads its read
//!   models ([`store::StoredIntent`], …); records and trees stay inside. One file per
//!   concern: intents, offers, profiles, outbox, replay memory, early withdrawals,
//!   mailboxes, relationships, the person's vault, the data granted to a vendor (in
//!   files of their own, so deleting it deletes it from the disk), reviews and the members
//!   of collective intents.
//! - [`config`]: reads `config.toml`. [`atomic_file`]: files written whole or not at all.
//! - [`node`]: the running node. [`node::event_loop`] owns the libp2p swarm and only
//!   dispatches; each protocol has its handler, which owns its state and returns
//!   [`node::action::Action`]s: [`node::gossip`] (intake, batches, verdicts),
//!   [`node::light_push`], [`node::mailbox`] and [`node::filter`] (what service nodes
//!   serve; [`node::filter`] also holds a light vendor's subscriptions),
//!   [`node::ip_limit`] (inbound connections per IP address),
//!   [`node::replies`] (the person's mailbox queues), [`node::outbox`] (delivery plan,
//!   backoff, expiry), [`node::expiry`], [`node::peers`], [`node::profile`]. The vendor role runs in
//!   its own task, [`node::answering`]. Relationships: [`node::relationships`] (both
//!   sides of the joint log), [`node::data`] (grants: the vendor's answers and expiry
//!   sweep, who holds what), [`node::crm`]. Reviews and reputation: [`node::reviews`];
//!   collective intents: [`node::groups`] (the person's side) and [`node::group_orders`]
//!   (the vendor's threshold). [`node::ingest`] holds the rules for messages from
//!   the network as plain functions; [`node::NodeHandle`] is what everything else talks to.
//! - [`vendor_role`]: the vendor's rules as plain code: the catalog and its matching, the
//!   vendor's own responder program, how an offer is built and checked. (Not `vendor/`:
//!   common tools take any `vendor/` folder for vendored third-party code.)
//! - [`export`]: a whole node in one file, and back. [`data_dir`]: the data directory is
//!   its owner's alone.
//! - [`ratelimit`]: rate limits per peer and per persona (governor).
//! - [`api`]: the local HTTP API (axum), its OpenAPI document, the event stream and the
//!   person's web page.
//! - [`cli`]: the `vrm` command line; [`client`] is how its verbs reach the daemon's API
//!   (typed, with the API's own views); `src/main.rs` only calls it.
//! - [`clock`]: the unix time every check is made against, and calendar days (jiff).

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod atomic_file;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod data_dir;
pub mod export;
pub mod identity;
pub mod node;
pub mod proto;
pub mod ratelimit;
pub mod store;
pub mod vendor_role;
