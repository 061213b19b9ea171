//! `/relationships/{id}/review`, `/reputation` and `/vendors/{key}/reviews`: the person's
//! review of a fulfilled order, and every vendor's reputation as this node computes it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::views::ErrorView;
use crate::api::{ApiError, ApiJson, AppState};
use crate::node::reviews::{Reputation, ReviewDraft, ReviewView};

/// A review of the relationship's vendor.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// 1 (bad) to 5 (excellent).
    pub rating: u8,
    /// In your words.
    #[serde(default)]
    pub text: String,
    /// Show your fulfilled orders with other vendors, so your review counts as a proven
    /// buyer's (links those relationships to this review).
    #[serde(default)]
    pub history: bool,
}

/// Review the vendor of a relationship whose order was fulfilled (or received): signed by
/// the relationship's persona, published on the directory; a later review replaces it.
#[utoipa::path(post, path = "/api/v1/relationships/{id}/review", params(("id" = String, Path, description = "relationship id, hex")),
    request_body = ReviewBody,
    responses((status = 201, body = ReviewView), (status = 409, body = ErrorView), (status = 422, body = ErrorView)))]
pub(in crate::api) async fn review(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<(StatusCode, Json<ReviewView>), ApiError> {
    let draft = ReviewDraft {
        rating: body.rating,
        text: body.text,
        history: body.history,
    };
    Ok((StatusCode::CREATED, Json(s.node.review(&id, draft).await?)))
}

/// Every vendor's reputation: reviews, mean, distribution, recency, proven buyers, the
/// weighted score, and the person's own relationships with it.
#[utoipa::path(get, path = "/api/v1/reputation", responses((status = 200, body = [Reputation])))]
pub(in crate::api) async fn reputation(
    State(s): State<AppState>,
) -> Result<Json<Vec<Reputation>>, ApiError> {
    Ok(Json(s.node.reputations()?))
}

/// The reviews this node holds of one vendor, newest first.
#[utoipa::path(get, path = "/api/v1/vendors/{key}/reviews", params(("key" = String, Path, description = "vendor key, hex")),
    responses((status = 200, body = [ReviewView]), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn vendor_reviews(
    State(s): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Vec<ReviewView>>, ApiError> {
    Ok(Json(s.node.reviews(&key)?))
}
