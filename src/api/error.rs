//! How the API refuses: an [`ApiError`] is a status and a JSON [`ErrorView`]; node errors map
//! onto statuses here, and [`ApiJson`] turns bad request bodies into such errors.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::views::ErrorView;
use crate::node::NodeError;
use crate::store::StoreError;

/// An error the API answers with.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
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
            NodeError::NotOwn(_) | NodeError::AlreadyWithdrawn(_) | NodeError::Relationship(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            NodeError::Vault(_) => ApiError::new(StatusCode::BAD_REQUEST, "bad-field", message),
            NodeError::Catalog(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad-catalog", message)
            }
            NodeError::Stopped => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", message)
            }
            NodeError::NoMailbox => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no-mailbox", message)
            }
            NodeError::Store(StoreError::DiskFull) => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "disk-full", message)
            }
            NodeError::Store(StoreError::Closed(_)) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store-closed", message)
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
