//! `/vendor/...` and `/vendors`: what a vendor node received and sent, its catalog reload,
//! and the directory of vendors seen.

use axum::Json;
use axum::extract::State;

use crate::api::views::{ErrorView, IntentView, OfferView, ReloadView, VendorView};
use crate::api::{ApiError, AppState, read};

/// Vendor view: intents received and the decision on each.
#[utoipa::path(get, path = "/api/v1/vendor/intents", responses((status = 200, body = [IntentView])))]
pub(in crate::api) async fn vendor_intents(
    State(s): State<AppState>,
) -> Result<Json<Vec<IntentView>>, ApiError> {
    Ok(Json(read::intents(&s.node, Some(false))?))
}

/// Vendor view: offers sent and their delivery.
#[utoipa::path(get, path = "/api/v1/vendor/offers", responses((status = 200, body = [OfferView])))]
pub(in crate::api) async fn vendor_offers(
    State(s): State<AppState>,
) -> Result<Json<Vec<OfferView>>, ApiError> {
    Ok(Json(read::sent_offers(&s.node)?))
}

/// Reload the vendor's catalog.toml (a bad file is refused; the old catalog stays).
#[utoipa::path(post, path = "/api/v1/vendor/reload", responses((status = 200, body = ReloadView), (status = 422, body = ErrorView)))]
pub(in crate::api) async fn vendor_reload(
    State(s): State<AppState>,
) -> Result<Json<ReloadView>, ApiError> {
    Ok(Json(ReloadView {
        items: s.node.reload_catalog().await?,
    }))
}

/// The vendor directory: the newest profile of every vendor seen.
#[utoipa::path(get, path = "/api/v1/vendors", responses((status = 200, body = [VendorView])))]
pub(in crate::api) async fn vendors(
    State(s): State<AppState>,
) -> Result<Json<Vec<VendorView>>, ApiError> {
    Ok(Json(read::vendors(&s.node)?))
}
