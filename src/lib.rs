//! # vrm — Vendor Relationship Management, the customer's side of CRM
//!
//! A node one person runs on a laptop. It casts the person's signed intentions on a libp2p
//! gossip network; vendor nodes (the same binary in the vendor role) answer with signed
//! offers sent straight back. Every node keeps its own history in its own sled store.
//!
//! ## Layout
//!
//! - [`proto`]: the wire protocol as pure code: the signed [`proto::Envelope`], the message
//!   kinds, limits, the category taxonomy and validation. No I/O. `proto/` at the top of the
//!   repository is the same protocol written down for other implementations (CDDL, test
//!   vectors).
//! - [`identity`]: key files and the personas derived from the person's root secret.
//! - [`store`]: the one owner of sled; typed records, durable writes, replay memory, outbox.
//! - [`config`]: reads `config.toml`.
//! - [`node`]: the running node: the event loop that owns the libp2p swarm, the
//!   [`node::NodeHandle`] everything else talks to, and [`node::ingest`], the rules for
//!   messages from the network as plain functions.
//! - [`vendor`]: the vendor role: the catalog, the vendor's own responder program, and how
//!   an intent is answered.
//! - [`ratelimit`]: token buckets per peer and per persona.
//! - [`api`]: the local HTTP API (axum), its OpenAPI document, the event stream and the
//!   person's web page.
//! - [`cli`]: the `vrm` command line; [`client`] is how its verbs reach the daemon's API;
//!   `src/main.rs` only calls it.
//! - [`clock`]: the unix time every check is made against.

#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod identity;
pub mod node;
pub mod proto;
pub mod ratelimit;
pub mod store;
pub mod vendor_role;
