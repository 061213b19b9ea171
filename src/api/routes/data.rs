//! `/vault`, `/relationships/{id}/grants` and `/holdings`: the person's own records, what
//! they grant to a vendor and withdraw, and who holds what.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::relationships::PlacedView;
use crate::api::views::ErrorView;
use crate::api::{ApiError, ApiJson, AppState};
use crate::clock::unix_now;
use crate::node::data::Holding;
use crate::node::relationships::{Draft, GrantDraft};

/// A vault value.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ValueBody {
    /// The value (1 to 2000 bytes).
    pub value: String,
}

/// What a change of the vault did.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct VaultChangedView {
    /// Grants renewed with the new value (one per vendor holding the field).
    pub renewed: usize,
}

/// A grant of vault fields to the vendor of a relationship.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct GrantBody {
    /// Vault field names.
    pub fields: Vec<String>,
    /// A purpose from proto/purposes.json (delivery, billing, support, …).
    pub purpose: String,
    /// How many days it runs (1 to 366).
    pub days: u64,
    /// The person's terms it is shared under; default the node's standing terms.
    #[serde(default)]
    pub terms: Option<Vec<String>>,
}

fn bad_id(what: &str, id: &str) -> ApiError {
    ApiError::bad_request(format!("{id:?} is not a {what} id (64 hex digits)"))
}

/// The vault: every field of the person's own records.
#[utoipa::path(get, path = "/api/v1/vault", responses((status = 200, body = Object)))]
pub(in crate::api) async fn show_vault(
    State(s): State<AppState>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    Ok(Json(s.node.vault()?))
}

/// Set a vault field; vendors holding it under a live grant get the new value.
#[utoipa::path(put, path = "/api/v1/vault/{field}", params(("field" = String, Path, description = "field name")),
    request_body = ValueBody,
    responses((status = 200, body = VaultChangedView), (status = 400, body = ErrorView)))]
pub(in crate::api) async fn set_vault_field(
    State(s): State<AppState>,
    Path(field): Path<String>,
    ApiJson(body): ApiJson<ValueBody>,
) -> Result<Json<VaultChangedView>, ApiError> {
    let renewed = s.node.vault_set(&field, &body.value).await?;
    Ok(Json(VaultChangedView { renewed }))
}

/// Remove a vault field (vendors holding it keep it until their grant ends or is revoked).
#[utoipa::path(delete, path = "/api/v1/vault/{field}", params(("field" = String, Path, description = "field name")),
    responses((status = 200, body = Object), (status = 404, body = ErrorView)))]
pub(in crate::api) async fn remove_vault_field(
    State(s): State<AppState>,
    Path(field): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !s.node.vault_remove(&field)? {
        return Err(ApiError::not_found(format!("no vault field {field:?}")));
    }
    Ok(Json(serde_json::json!({ "removed": field })))
}

/// Grant vault fields to the relationship's vendor for a purpose and a period.
#[utoipa::path(post, path = "/api/v1/relationships/{id}/grants", params(("id" = String, Path, description = "relationship id, hex")),
    request_body = GrantBody,
    responses((status = 200, body = PlacedView), (status = 400, body = ErrorView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn grant(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<Json<PlacedView>, ApiError> {
    if !(1..=366).contains(&body.days) {
        return Err(ApiError::bad_request("days must be 1 to 366"));
    }
    let draft = Draft::Grant(GrantDraft {
        fields: body.fields,
        purpose: body.purpose,
        expires: unix_now() + body.days * 24 * 3600,
        terms: body
            .terms
            .unwrap_or_else(|| s.node.standing_terms().to_vec()),
        replaces: None,
    });
    Ok(Json(PlacedView {
        seq: s.node.relationship_write(&id, draft).await?,
    }))
}

/// Revoke a grant: the vendor deletes the data and returns a signed deletion receipt.
#[utoipa::path(post, path = "/api/v1/relationships/{id}/grants/{grant}/revoke",
    params(("id" = String, Path, description = "relationship id, hex"), ("grant" = String, Path, description = "grant id, hex")),
    responses((status = 200, body = PlacedView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn revoke(
    State(s): State<AppState>,
    Path((id, grant)): Path<(String, String)>,
) -> Result<Json<PlacedView>, ApiError> {
    let grant: [u8; 32] = hex::decode(&grant)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad_id("grant", &grant))?;
    Ok(Json(PlacedView {
        seq: s.node.relationship_write(&id, Draft::Revoke(grant)).await?,
    }))
}

/// Who holds what: every vendor the person granted data to, each grant and where it stands.
#[utoipa::path(get, path = "/api/v1/holdings", responses((status = 200, body = [Object])))]
pub(in crate::api) async fn holdings(
    State(s): State<AppState>,
) -> Result<Json<Vec<Holding>>, ApiError> {
    Ok(Json(s.node.holdings()?))
}
