//! The local HTTP API, the event stream and the person's web page.
//!
//! Bound to loopback only. At each start the daemon writes its address to `<data-dir>/api`
//! and a fresh random token to `<data-dir>/api.cookie` (mode 0600); every `/api/v1/` path
//! but the OpenAPI document needs `Authorization: Bearer <token>`. The CLI reads both files;
//! the web page gets the token from a login link (`vrm open`) in the URL fragment, which
//! browsers never send to any server. Bad input gets a 4xx with a JSON `{error, message}`.

pub mod views;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path as UrlPath, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::OpenApi;
use views::*;

use crate::node::{NodeError, NodeHandle};
use crate::proto::{IntentId, taxonomy};

/// File with the API's base URL.
pub const API_FILE: &str = "api";
/// File with the API token.
pub const COOKIE_FILE: &str = "api.cookie";
/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
struct AppState {
    node: NodeHandle,
    token: String,
}

/// An error the API answers with.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!("API error: {}", self.message);
        }
        let body = ErrorView {
            error: self.code,
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let message = e.to_string();
        match e {
            NodeError::Invalid(v) => ApiError::new(StatusCode::BAD_REQUEST, v.code(), message),
            NodeError::UnknownIntent(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
            }
            NodeError::NotOwn(_) | NodeError::AlreadyWithdrawn(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            NodeError::Catalog(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad-catalog", message)
            }
            NodeError::Stopped => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", message)
            }
            NodeError::Store(_) | NodeError::Network(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
            }
        }
    }
}

/// JSON body extractor whose rejections are [`ApiError`]s with a message that says what is
/// wrong (syntax, types, missing fields, size).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                let status = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(ApiError::new(status, "bad-request", rejection.body_text()))
            }
        }
    }
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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vrm node API",
        description = "The local API of a vrm node. All /api/v1 paths except this document need `Authorization: Bearer <token from <data-dir>/api.cookie>`."
    ),
    paths(
        status,
        peers,
        taxonomy_view,
        cast,
        list_intents,
        show_intent,
        withdraw,
        intent_offers,
        list_offers,
        vendor_intents,
        vendor_offers,
        vendor_reload,
        vendors,
        events
    ),
    components(schemas(
        StatusView,
        PeerView,
        TaxonomyView,
        CategoryView,
        CastBody,
        CastView,
        IntentView,
        OfferView,
        ItemView,
        MoneyView,
        DatesView,
        TermView,
        VendorView,
        ReloadView,
        ErrorView
    ))
)]
struct ApiDoc;

/// The OpenAPI document of this API, generated from the handlers and views.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The router, without the listener.
pub fn router(node: NodeHandle, token: String) -> Router {
    let state = AppState { node, token };
    let api = Router::new()
        .route("/status", get(status))
        .route("/peers", get(peers))
        .route("/taxonomy", get(taxonomy_view))
        .route("/intents", get(list_intents).post(cast))
        .route("/intents/{id}", get(show_intent))
        .route("/intents/{id}/withdraw", post(withdraw))
        .route("/intents/{id}/offers", get(intent_offers))
        .route("/offers", get(list_offers))
        .route("/vendor/intents", get(vendor_intents))
        .route("/vendor/offers", get(vendor_offers))
        .route("/vendor/reload", post(vendor_reload))
        .route("/vendors", get(vendors))
        .route("/events", get(events))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/", get(page))
        .route("/api/v1/openapi.json", get(|| async { Json(openapi()) }))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such path") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = presented.is_some_and(|t| constant_time_eq(t.as_bytes(), state.token.as_bytes()));
    if !ok {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <token from <data-dir>/api.cookie>",
        )
        .into_response();
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Writes the address and a fresh token into `data_dir`, serves until `shutdown` resolves,
/// then removes both files. Returns the bound address through `bound`.
pub async fn serve(
    node: NodeHandle,
    data_dir: PathBuf,
    listen: SocketAddr,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        listen.ip().is_loopback(),
        "the API only listens on loopback, not {listen}"
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen}"))?;
    let addr = listener.local_addr()?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(&data_dir.join(COOKIE_FILE), &token)?;
    std::fs::write(data_dir.join(API_FILE), format!("http://{addr}\n"))?;
    tracing::info!("API on http://{addr}");
    let _ = bound.send(addr);
    let result = axum::serve(listener, router(node, token))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = std::fs::remove_file(data_dir.join(COOKIE_FILE));
    let _ = std::fs::remove_file(data_dir.join(API_FILE));
    Ok(result?)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

fn vendor_names(node: &NodeHandle) -> std::collections::HashMap<String, String> {
    node.profiles()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (hex::encode(p.envelope.signer().as_bytes()), p.profile.name))
        .collect()
}

fn offer_views(node: &NodeHandle, id: &IntentId) -> Result<Vec<OfferView>, ApiError> {
    let names = vendor_names(node);
    Ok(node
        .offers_for(id)?
        .iter()
        .map(|stored| {
            let name = names
                .get(&hex::encode(stored.envelope.signer().as_bytes()))
                .cloned();
            OfferView::new(stored, name)
        })
        .collect())
}

fn intent_views(node: &NodeHandle, own: Option<bool>) -> Result<Vec<IntentView>, ApiError> {
    let mut views = Vec::new();
    for stored in node.intents()? {
        let is_own = stored.origin == crate::store::Origin::Own;
        if own.is_some_and(|want| want != is_own) {
            continue;
        }
        let offers = node.offers_for(&stored.intent.id)?.len();
        views.push(IntentView::new(&stored, offers));
    }
    views.sort_by_key(|v| std::cmp::Reverse(v.created));
    Ok(views)
}

/// Node status.
#[utoipa::path(get, path = "/api/v1/status", responses((status = 200, body = StatusView), (status = 401, body = ErrorView)))]
async fn status(State(s): State<AppState>) -> Result<Json<StatusView>, ApiError> {
    let node = &s.node;
    let counts = node.counts();
    Ok(Json(StatusView {
        version: env!("CARGO_PKG_VERSION").into(),
        peer_id: node.peer_id().to_string(),
        vendor_key: node.vendor_key().map(hex::encode),
        vendor_name: node.vendor_name(),
        listen: node.listen_addrs().iter().map(|a| a.to_string()).collect(),
        peers: node.peers().await?.len(),
        intents: counts.intents,
        offers: counts.offers,
        outbox: counts.outbox,
        counters: node.stats().snapshot(),
    }))
}

/// Connected peers.
#[utoipa::path(get, path = "/api/v1/peers", responses((status = 200, body = [PeerView])))]
async fn peers(State(s): State<AppState>) -> Result<Json<Vec<PeerView>>, ApiError> {
    let peers = s.node.peers().await?;
    Ok(Json(
        peers
            .into_iter()
            .map(|p| PeerView {
                peer: p.peer,
                score: p.score,
            })
            .collect(),
    ))
}

/// Categories and terms.
#[utoipa::path(get, path = "/api/v1/taxonomy", responses((status = 200, body = TaxonomyView)))]
async fn taxonomy_view() -> Json<TaxonomyView> {
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
    })
}

/// Cast an intent: signed by a fresh persona, stored, published as soon as a peer is there.
#[utoipa::path(post, path = "/api/v1/intents", request_body = CastBody,
    responses((status = 201, body = CastView), (status = 400, body = ErrorView), (status = 422, body = ErrorView)))]
async fn cast(
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
struct IntentFilter {
    /// "own" or "received"; default all.
    origin: Option<String>,
}

/// Intents: own, and on vendor nodes received ones (`?origin=own|received`).
#[utoipa::path(get, path = "/api/v1/intents", params(("origin" = Option<String>, Query, description = "own or received")),
    responses((status = 200, body = [IntentView])))]
async fn list_intents(
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
    Ok(Json(intent_views(&s.node, own)?))
}

/// One intent.
#[utoipa::path(get, path = "/api/v1/intents/{id}", params(("id" = String, Path, description = "intent id, hex")),
    responses((status = 200, body = IntentView), (status = 404, body = ErrorView)))]
async fn show_intent(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<IntentView>, ApiError> {
    let id = parse_intent_id(&id)?;
    let stored = s
        .node
        .intent(&id)?
        .ok_or_else(|| ApiError::from(NodeError::UnknownIntent(hex::encode(*id))))?;
    let offers = s.node.offers_for(&id)?.len();
    Ok(Json(IntentView::new(&stored, offers)))
}

/// Withdraw one of your intents.
#[utoipa::path(post, path = "/api/v1/intents/{id}/withdraw", params(("id" = String, Path, description = "intent id, hex")),
    responses((status = 200, body = IntentView), (status = 404, body = ErrorView), (status = 409, body = ErrorView)))]
async fn withdraw(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<IntentView>, ApiError> {
    let intent_id = parse_intent_id(&id)?;
    s.node.withdraw(&intent_id).await?;
    show_intent(State(s), UrlPath(id)).await
}

/// Offers for one intent.
#[utoipa::path(get, path = "/api/v1/intents/{id}/offers", params(("id" = String, Path, description = "intent id, hex")),
    responses((status = 200, body = [OfferView]), (status = 404, body = ErrorView)))]
async fn intent_offers(
    State(s): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Vec<OfferView>>, ApiError> {
    let id = parse_intent_id(&id)?;
    if s.node.intent(&id)?.is_none() {
        return Err(NodeError::UnknownIntent(hex::encode(*id)).into());
    }
    Ok(Json(offer_views(&s.node, &id)?))
}

/// Offers received for all your intents.
#[utoipa::path(get, path = "/api/v1/offers", responses((status = 200, body = [OfferView])))]
async fn list_offers(State(s): State<AppState>) -> Result<Json<Vec<OfferView>>, ApiError> {
    let mut all = Vec::new();
    for view in intent_views(&s.node, Some(true))? {
        all.extend(offer_views(&s.node, &parse_intent_id(&view.id)?)?);
    }
    Ok(Json(all))
}

/// Vendor view: intents received and the decision on each.
#[utoipa::path(get, path = "/api/v1/vendor/intents", responses((status = 200, body = [IntentView])))]
async fn vendor_intents(State(s): State<AppState>) -> Result<Json<Vec<IntentView>>, ApiError> {
    Ok(Json(intent_views(&s.node, Some(false))?))
}

/// Vendor view: offers sent and their delivery.
#[utoipa::path(get, path = "/api/v1/vendor/offers", responses((status = 200, body = [OfferView])))]
async fn vendor_offers(State(s): State<AppState>) -> Result<Json<Vec<OfferView>>, ApiError> {
    let name = s.node.vendor_name();
    let offers = s.node.vendor_offers()?;
    Ok(Json(
        offers
            .iter()
            .map(|stored| OfferView::new(stored, name.clone()))
            .collect(),
    ))
}

/// Reload the vendor's catalog.toml (a bad file is refused; the old catalog stays).
#[utoipa::path(post, path = "/api/v1/vendor/reload", responses((status = 200, body = ReloadView), (status = 422, body = ErrorView)))]
async fn vendor_reload(State(s): State<AppState>) -> Result<Json<ReloadView>, ApiError> {
    Ok(Json(ReloadView {
        items: s.node.reload_catalog().await?,
    }))
}

/// The vendor directory: the newest profile of every vendor seen.
#[utoipa::path(get, path = "/api/v1/vendors", responses((status = 200, body = [VendorView])))]
async fn vendors(State(s): State<AppState>) -> Result<Json<Vec<VendorView>>, ApiError> {
    let mut out = Vec::new();
    for stored in s.node.profiles()? {
        let (env, p) = (stored.envelope, stored.profile);
        out.push(VendorView {
            key: hex::encode(env.signer().as_bytes()),
            name: p.name,
            categories: p.categories,
            contact: p.contact,
            accepted_terms: p.accepted_terms,
            updated: p.created,
        });
    }
    Ok(Json(out))
}

/// Server-sent events: one event per thing that happens (offer-received, intent-cast,
/// peer-connected...), its data the event as JSON with a `type` field.
#[utoipa::path(get, path = "/api/v1/events", responses((status = 200, content_type = "text/event-stream", description = "event stream")))]
async fn events(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(s.node.subscribe()).filter_map(|item| async move {
        let event = item.ok()?;
        let json = serde_json::to_value(&event).ok()?;
        let kind = json.get("type")?.as_str()?.to_owned();
        Some(Ok(Event::default().event(kind).data(json.to_string())))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
