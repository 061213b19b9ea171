//! The local HTTP API, the event stream and the person's web page.
//!
//! Bound to loopback only. At each start the daemon writes its address to `<data-dir>/api`
//! and a fresh random token to `<data-dir>/api.cookie` (mode 0600); every `/api/v1/` path
//! but the OpenAPI document needs `Authorization: Bearer <token>`. The CLI reads both files;
//! the web page gets the token from a login link (`vrm open`) in the URL fragment, which
//! browsers never send to any server. Bad input gets a 4xx with a JSON `{error, message}`.
//!
//! Here: the router, the OpenAPI document and the listener. The handlers are in `routes`
//! (by resource) and read the node through `read`; [`views`] are the JSON they answer with;
//! `auth` checks the token; [`ApiError`] is how they refuse.

mod auth;
mod error;
mod read;
mod routes;
pub mod views;

pub use error::{ApiError, ApiJson};

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;
// The handlers by their bare names: utoipa tags an operation named by a module path after
// that module, which would change the document.
use routes::{data::*, groups::*, intents::*, node::*, relationships::*, reviews::*, vendor::*};
use views::*;

use crate::node::NodeHandle;

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
        events,
        accept_offer,
        list_relationships,
        show_relationship,
        confirm_order,
        change_status,
        send_message,
        end_relationship,
        read_relationship,
        export_relationship,
        show_vault,
        set_vault_field,
        remove_vault_field,
        grant,
        revoke,
        holdings,
        review,
        reputation,
        vendor_reviews,
        list_groups,
        start_group,
        join_group,
        leave_group
    ),
    components(schemas(
        StatusView,
        MailboxView,
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
        ErrorView,
        AcceptBody,
        TextBody,
        StatusBody,
        PlacedView,
        ExportView,
        ValueBody,
        VaultChangedView,
        GrantBody,
        ReviewBody,
        crate::node::reviews::ReviewView,
        crate::node::reviews::Reputation,
        crate::node::reviews::Yours,
        GroupBody,
        JoinedView,
        GroupOfferView,
        crate::node::groups::GroupView
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
        .route("/offers/{id}/accept", post(accept_offer))
        .route("/relationships", get(list_relationships))
        .route("/relationships/{id}", get(show_relationship))
        .route("/relationships/{id}/confirm", post(confirm_order))
        .route("/relationships/{id}/status", post(change_status))
        .route("/relationships/{id}/messages", post(send_message))
        .route("/relationships/{id}/end", post(end_relationship))
        .route("/relationships/{id}/read", post(read_relationship))
        .route("/relationships/{id}/export", get(export_relationship))
        .route("/relationships/{id}/grants", post(grant))
        .route("/relationships/{id}/grants/{grant}/revoke", post(revoke))
        .route("/vault", get(show_vault))
        .route(
            "/vault/{field}",
            axum::routing::put(set_vault_field).delete(remove_vault_field),
        )
        .route("/holdings", get(holdings))
        .route("/relationships/{id}/review", post(review))
        .route("/reputation", get(reputation))
        .route("/vendors/{key}/reviews", get(vendor_reviews))
        .route("/groups", get(list_groups).post(start_group))
        .route("/groups/{id}/join", post(join_group))
        .route("/groups/{id}/leave", post(leave_group))
        .route("/vendor/intents", get(vendor_intents))
        .route("/vendor/offers", get(vendor_offers))
        .route("/vendor/reload", post(vendor_reload))
        .route("/vendors", get(vendors))
        .route("/events", get(events))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/", get(page))
        .route("/api/v1/openapi.json", get(|| async { Json(openapi()) }))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such path") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
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
    let token = auth::issue_token(&data_dir.join(COOKIE_FILE))?;
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

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}
