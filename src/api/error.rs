//! Every API error and its HTTP status, mapped in one place, always as
//! GitLab's JSON error shape `{"message": ...}`.

use hyper::StatusCode;
use serde_json::{json, Value};
use thiserror::Error;

use crate::store::StoreError;

/// An error a handler returns; [`ApiError::status`] and [`ApiError::body`] render it.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("401 Unauthorized")]
    Unauthorized,
    #[error("403 Forbidden")]
    Forbidden,
    /// `what` is GitLab's resource name: "Project", "Issue", "File".
    #[error("404 {0} Not Found")]
    NotFound(&'static str),
    #[error("404 Not Found")]
    NoRoute,
    #[error("405 Method Not Allowed")]
    MethodNotAllowed,
    /// A parameter is missing or malformed (GitLab: 400 Bad request).
    #[error("400 Bad request - {0}")]
    BadRequest(String),
    /// Model validation failed: GitLab answers `{"message": {"field": ["reason"]}}`.
    #[error("validation failed on {field}: {reason}")]
    Validation { field: &'static str, reason: String },
    /// The change conflicts with existing data (GitLab: 409).
    #[error("{0}")]
    Conflict(String),
    #[error("413 Request Entity Too Large")]
    TooLarge,
    #[error("415 Unsupported Media Type")]
    UnsupportedMediaType,
    #[error("500 Internal Server Error")]
    Internal(String),
    #[error("503 Service Unavailable")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) | ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn body(&self) -> Value {
        match self {
            ApiError::Validation { field, reason } => json!({ "message": { *field: [reason] } }),
            // Internal details go to the log, not to the client.
            ApiError::Internal(_) => json!({ "message": "500 Internal Server Error" }),
            ApiError::Unavailable(_) => json!({ "message": "503 Service Unavailable" }),
            other => json!({ "message": other.to_string() }),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::PathTaken(_) => ApiError::Validation {
                field: "path",
                reason: "has already been taken".into(),
            },
            StoreError::PathReserved(_) => ApiError::Validation {
                field: "path",
                reason: "is reserved".into(),
            },
            StoreError::Closed => ApiError::Unavailable(error.to_string()),
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
