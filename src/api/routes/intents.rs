//! `/intents` and `/offers`: cast, list, show and withdraw the person's intents, and read the
//! offers they received.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::api::views::{CastBody, CastView, ErrorView, IntentView, OfferView};
use crate::api::{ApiError, ApiJson, AppState, read};
use crate::proto::IntentId;

/// Cast an intent: signed by a fresh persona, stored, published as soon as a peer is there.
#[utoipa::path(post, path = "/api/v1/intents", request_body = CastBody,
    responses((status = 201, body = CastView), (status = 400, body = ErrorView), (status = 422, body = ErrorView), (status = 507, body = ErrorView, description = "the disk is full")))]
pub(in crate::api) async fn cast(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<CastBody>,
) -> Result<(StatusCode, Json<CastView>), ApiError> {
    let request = body.into_request().map_err(ApiError::bad_request)?;
    let id = s.node.cast(request).await?;
    Ok((
        StatusCode::CREATED,
        Json(CastView {
            id: hex::encode(*id),
        }),
    ))
}

#[derive(Deserialize)]
pub(in crate::api) struct IntentFilter {
    /// "own" or "received"; default all.
    origin: Option<String>,
}

/// Intents: own, and on vendor nodes received ones (`?origin=own|received`).
#[utoipa::path(get, path = "/api/v1/intents", params(("origin" = Option<String>, Query, description = "own or received")),
    responses((status = 200, body = [IntentView])))]
pub(in crate::api) async fn list_intents(
    State(s): State<AppState>,
    Query(filter): Query<IntentFilter>,
) -> Result<Json<Vec<IntentView>>, ApiError> {
    let own = match filter.origin.as_deref() {
        None => None,
        Some("own") => Some(true),
        Some("received") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "origin must be own or received, not {other:?}"
            )));
        }
    };
    Ok(Json(read::intents(&s.node, own)?))
}

/// One intent.
#[utoipa::path(get, path = "/api/v1/intents/{id}", params(("id" = String, Path, description = "intent id, hex")),
    responses((status = 200, body = IntentView), (status = 404, body = ErrorView)))]
pub(in crate::api) async fn show_intent(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IntentView>, ApiError> {
    Ok(Json(read::intent(&s.node, &parse_intent_id(&id)?)?))
}

/// Withdraw one of your intents.
#[utoipa::path(post, path = "/api/v1/intents/{id}/withdraw", params(("id" = String, Path, description = "intent id, hex")),
    responses((status = 200, body = IntentView), (status = 404, body = ErrorView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn withdraw(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IntentView>, ApiError> {
    let id = parse_intent_id(&id)?;
    s.node.withdraw(&id).await?;
    Ok(Json(read::intent(&s.node, &id)?))
}

/// Offers for one intent.
#[utoipa::path(get, path = "/api/v1/intents/{id}/offers", params(("id" = String, Path, description = "intent id, hex")),
    responses((status = 200, body = [OfferView]), (status = 404, body = ErrorView)))]
pub(in crate::api) async fn intent_offers(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<OfferView>>, ApiError> {
    Ok(Json(read::offers_for(&s.node, &parse_intent_id(&id)?)?))
}

/// Offers received for all your intents.
#[utoipa::path(get, path = "/api/v1/offers", responses((status = 200, body = [OfferView])))]
pub(in crate::api) async fn list_offers(
    State(s): State<AppState>,
) -> Result<Json<Vec<OfferView>>, ApiError> {
    Ok(Json(read::own_offers(&s.node)?))
}

fn parse_intent_id(id: &str) -> Result<IntentId, ApiError> {
    let bytes: [u8; 16] = hex::decode(id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!("{id:?} is not an intent id (32 hex digits)"))
        })?;
    Ok(bytes.into())
}
