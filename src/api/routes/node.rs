//! `/status`, `/peers`, `/taxonomy` and `/events`: the node itself, the protocol's categories
//! and terms, and the stream of what happens.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::api::views::{CategoryView, ErrorView, PeerView, StatusView, TaxonomyView};
use crate::api::{ApiError, AppState, read};
use crate::proto::taxonomy;

/// Node status.
#[utoipa::path(get, path = "/api/v1/status", responses((status = 200, body = StatusView), (status = 401, body = ErrorView)))]
pub(in crate::api) async fn status(
    State(s): State<AppState>,
) -> Result<Json<StatusView>, ApiError> {
    Ok(Json(read::status(&s.node).await?))
}

/// Connected peers.
#[utoipa::path(get, path = "/api/v1/peers", responses((status = 200, body = [PeerView])))]
pub(in crate::api) async fn peers(
    State(s): State<AppState>,
) -> Result<Json<Vec<PeerView>>, ApiError> {
    let peers = s.node.peers().await?;
    Ok(Json(
        peers
            .into_iter()
            .map(|p| PeerView {
                peer: p.peer,
                score: p.score,
                service: p.service,
                direction: if p.inbound { "in" } else { "out" }.into(),
                shards: p.shards,
            })
            .collect(),
    ))
}

/// Categories, terms and the purposes data may be granted for.
#[utoipa::path(get, path = "/api/v1/taxonomy", responses((status = 200, body = TaxonomyView)))]
pub(in crate::api) async fn taxonomy_view() -> Json<TaxonomyView> {
    Json(TaxonomyView {
        categories: taxonomy::categories()
            .iter()
            .map(|c| CategoryView {
                id: c.id.clone(),
                name: c.name.clone(),
                subcategories: c
                    .subcategories
                    .iter()
                    .map(|s| (s.id.clone(), s.name.clone()))
                    .collect(),
            })
            .collect(),
        terms: taxonomy::terms()
            .iter()
            .map(|t| (t.id.clone(), t.text.clone()))
            .collect(),
        purposes: taxonomy::purposes()
            .iter()
            .map(|p| (p.id.clone(), p.text.clone()))
            .collect(),
    })
}

/// Server-sent events: one event per thing that happens (offer-received, intent-cast,
/// peer-connected...), its data the event as JSON with a `type` field.
#[utoipa::path(get, path = "/api/v1/events", responses((status = 200, content_type = "text/event-stream", description = "event stream")))]
pub(in crate::api) async fn events(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(s.node.subscribe()).filter_map(|item| async move {
        let event = item.ok()?;
        let json = serde_json::to_value(&event).ok()?;
        let kind = json.get("type")?.as_str()?.to_owned();
        Some(Ok(Event::default().event(kind).data(json.to_string())))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
