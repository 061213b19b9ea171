//! `/groups`: collective intents, started, joined and left under fresh personas, with the
//! running count of members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::views::{CastBody, CastView, ErrorView};
use crate::api::{ApiError, ApiJson, AppState};
use crate::node::groups::GroupView;

/// A collective intent to start.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    /// How many members the group looks for (2 to 1000).
    pub size: u32,
    /// What each member wants (a price ceiling is per member).
    pub intent: CastBody,
}

/// A collective intent started or joined.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct JoinedView {
    /// The group id (hex).
    pub group: String,
    /// This node's member intent (hex).
    pub intent: String,
}

/// Every collective intent this node has seen, with how many joined.
#[utoipa::path(get, path = "/api/v1/groups", responses((status = 200, body = [GroupView])))]
pub(in crate::api) async fn list_groups(
    State(s): State<AppState>,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    Ok(Json(s.node.groups()?))
}

/// Start a collective intent: your own member intent is its first.
#[utoipa::path(post, path = "/api/v1/groups", request_body = GroupBody,
    responses((status = 201, body = JoinedView), (status = 400, body = ErrorView), (status = 422, body = ErrorView)))]
pub(in crate::api) async fn start_group(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<GroupBody>,
) -> Result<(StatusCode, Json<JoinedView>), ApiError> {
    let request = body.intent.into_request().map_err(ApiError::bad_request)?;
    let (intent, group) = s.node.start_group(request, body.size).await?;
    Ok((
        StatusCode::CREATED,
        Json(JoinedView {
            group: hex::encode(group),
            intent: hex::encode(*intent),
        }),
    ))
}

/// Join a collective intent under a fresh persona, with its terms.
#[utoipa::path(post, path = "/api/v1/groups/{id}/join", params(("id" = String, Path, description = "group id, hex")),
    responses((status = 201, body = JoinedView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn join_group(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JoinedView>), ApiError> {
    let intent = s.node.join_group(&id).await?;
    Ok((
        StatusCode::CREATED,
        Json(JoinedView {
            group: id,
            intent: hex::encode(*intent),
        }),
    ))
}

/// Leave a collective intent: your member intent is withdrawn.
#[utoipa::path(post, path = "/api/v1/groups/{id}/leave", params(("id" = String, Path, description = "group id, hex")),
    responses((status = 200, body = CastView), (status = 409, body = ErrorView)))]
pub(in crate::api) async fn leave_group(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CastView>, ApiError> {
    let intent = s.node.leave_group(&id).await?;
    Ok(Json(CastView {
        id: hex::encode(*intent),
    }))
}
