//! `/offers/{id}/accept` and `/relationships/...`: accepting an offer, and everything after
//! it on both sides (order, status changes, messages, the end, the log's export).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::views::ErrorView;
use crate::api::{ApiError, ApiJson, AppState};
use crate::node::relationships::{Draft, RelationshipDetail, RelationshipView};
use crate::proto::{MessageId, Status};

/// How to accept an offer.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct AcceptBody {
    /// `new` (a fresh persona: the vendor cannot tell you from anyone) or `returning`
    /// (the persona you always use with this vendor, so it recognises you). Default `new`.
    #[serde(default, rename = "as")]
    pub as_: Option<String>,
    /// Withdraw the intent once the offer is accepted. Default true.
    #[serde(default)]
    pub withdraw: Option<bool>,
}

/// Text for a message, a status change or the end.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct TextBody {
    /// The text (a message's must not be empty).
    #[serde(default)]
    pub text: String,
}

/// A status change.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct StatusBody {
    /// Person: `cancelled`, `received`. Vendor: `declined`, `shipped`, `fulfilled`.
    pub status: String,
    /// Free text (a tracking number, a reason).
    #[serde(default)]
    pub text: String,
}

/// Where a new entry was placed.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct PlacedView {
    /// Its place in the log (the person's own stay pending until the vendor's node
    /// places them; a crossing entry of the vendor's may move them).
    pub seq: u32,
}

/// A relationship's log as one file.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ExportView {
    /// The relationship.
    pub relationship: String,
    /// The file's bytes (CBOR, `proto/README.md` "Relationships"), hex.
    pub log_hex: String,
}

fn parse_offer(id: &str) -> Result<MessageId, ApiError> {
    hex::decode(id)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(MessageId)
        .ok_or_else(|| ApiError::bad_request(format!("{id:?} is not an offer id (64 hex digits)")))
}

/// Accept an offer: a relationship with its vendor starts.
#[utoipa::path(post, path = "/api/v1/offers/{id}/accept", params(("id" = String, Path, description = "offer id, hex")),
    request_body = AcceptBody,
    responses((status = 200, body = Object), (status = 400, body = ErrorView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn accept_offer(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AcceptBody>,
) -> Result<Json<RelationshipView>, ApiError> {
    let returning = match body.as_.as_deref() {
        None | Some("new") => false,
        Some("returning") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "as must be new or returning, not {other:?}"
            )));
        }
    };
    let offer = parse_offer(&id)?;
    let rel = s
        .node
        .accept(&offer, returning, body.withdraw.unwrap_or(true))
        .await?;
    Ok(Json(s.node.relationship(&rel)?.summary))
}

/// Every relationship (both sides), the most recently active first.
#[utoipa::path(get, path = "/api/v1/relationships", responses((status = 200, body = [Object])))]
pub(in crate::api) async fn list_relationships(
    State(s): State<AppState>,
) -> Result<Json<Vec<RelationshipView>>, ApiError> {
    Ok(Json(s.node.relationships()?))
}

/// One relationship with its log.
#[utoipa::path(get, path = "/api/v1/relationships/{id}", params(("id" = String, Path, description = "relationship id, hex")),
    responses((status = 200, body = Object), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn show_relationship(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RelationshipDetail>, ApiError> {
    Ok(Json(s.node.relationship(&id)?))
}

async fn place(s: &AppState, id: &str, draft: Draft) -> Result<Json<PlacedView>, ApiError> {
    Ok(Json(PlacedView {
        seq: s.node.relationship_write(id, draft).await?,
    }))
}

/// Vendor: confirm an accepted offer with an order that restates it.
#[utoipa::path(post, path = "/api/v1/relationships/{id}/confirm", params(("id" = String, Path, description = "relationship id, hex")),
    responses((status = 200, body = PlacedView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn confirm_order(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PlacedView>, ApiError> {
    place(&s, &id, Draft::Order).await
}

/// Change the order's status (the rules of who may, and when, are in proto/README.md).
#[utoipa::path(post, path = "/api/v1/relationships/{id}/status", params(("id" = String, Path, description = "relationship id, hex")),
    request_body = StatusBody,
    responses((status = 200, body = PlacedView), (status = 400, body = ErrorView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn change_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StatusBody>,
) -> Result<Json<PlacedView>, ApiError> {
    let status = Status::from_wire(&body.status)
        .ok_or_else(|| ApiError::bad_request(format!("no status {:?}", body.status)))?;
    place(&s, &id, Draft::Update(status, body.text)).await
}

/// Send a message (end-to-end encrypted to the other side).
#[utoipa::path(post, path = "/api/v1/relationships/{id}/messages", params(("id" = String, Path, description = "relationship id, hex")),
    request_body = TextBody,
    responses((status = 200, body = PlacedView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn send_message(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TextBody>,
) -> Result<Json<PlacedView>, ApiError> {
    place(&s, &id, Draft::Message(body.text)).await
}

/// End the relationship: nothing more is written in it.
#[utoipa::path(post, path = "/api/v1/relationships/{id}/end", params(("id" = String, Path, description = "relationship id, hex")),
    request_body = TextBody,
    responses((status = 200, body = PlacedView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn end_relationship(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TextBody>,
) -> Result<Json<PlacedView>, ApiError> {
    place(&s, &id, Draft::End(body.text)).await
}

/// How much of a relationship the reader has seen.
#[derive(Deserialize)]
pub(in crate::api) struct ReadThrough {
    /// The number of entries the reader was shown; default all there are now.
    through: Option<u32>,
}

/// Mark the relationship read: its first `?through=N` entries, or all of them. A page passes
/// the count it showed, so an entry that arrives meanwhile stays unread.
#[utoipa::path(post, path = "/api/v1/relationships/{id}/read", params(("id" = String, Path, description = "relationship id, hex"),
    ("through" = Option<u32>, Query, description = "entries seen; default all")),
    responses((status = 200, body = Object), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn read_relationship(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(seen): Query<ReadThrough>,
) -> Result<Json<RelationshipView>, ApiError> {
    s.node.relationship_read(&id, seen.through).await?;
    Ok(Json(s.node.relationship(&id)?.summary))
}

/// The relationship's log as one file anyone can check with `vrm relationship verify`.
#[utoipa::path(get, path = "/api/v1/relationships/{id}/export", params(("id" = String, Path, description = "relationship id, hex")),
    responses((status = 200, body = ExportView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn export_relationship(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExportView>, ApiError> {
    let bytes = s.node.relationship_export(&id)?;
    Ok(Json(ExportView {
        relationship: id,
        log_hex: hex::encode(bytes),
    }))
}
