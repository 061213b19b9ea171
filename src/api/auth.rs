//! The API token: made fresh at each start, written where only the node's owner can read it,
//! and required as `Authorization: Bearer <token>` on every `/api/v1/` path but the OpenAPI
//! document.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};

/// Makes a fresh random token and writes it to `path`, readable by its owner only.
pub(super) fn issue_token(path: &Path) -> anyhow::Result<String> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(token.as_bytes())?;
    Ok(token)
}

/// Middleware: lets a request through only with the right bearer token, compared in constant
/// time.
pub(super) async fn require_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = presented.is_some_and(|t| t.as_bytes().ct_eq(state.token.as_bytes()).into());
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
