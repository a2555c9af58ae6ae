//! The one error shape of the API, `{"error": {"code", "message", "field"?}}`, and the
//! single place where every lower layer's error becomes an HTTP status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hookline_core::ValidationError;
use hookline_core::sealed::SealError;
use hookline_store::StoreError;

use crate::types::{ErrorBody, ErrorDetail};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// Seconds for the `Retry-After` header, on answers that say "try again later".
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: (status == StatusCode::SERVICE_UNAVAILABLE).then_some(1),
        }
    }

    /// Tells the client how many seconds to wait before trying again.
    pub fn retry_after(self, secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..self
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    #[cfg(test)]
    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl From<SealError> for ApiError {
    /// Keys that do not open mean the server runs with another master key than the one
    /// they were sealed with: an operator's problem, not the caller's.
    fn from(e: SealError) -> Self {
        tracing::error!(error = %e, "cannot open a destination's keys");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "keys_unavailable",
            "the destination's keys cannot be opened with this server's master key",
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_field",
            message: format!("{} {}", e.field, e.message),
            field: Some(e.field),
            retry_after: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            StoreError::LimitReached(message) => {
                Self::new(StatusCode::CONFLICT, "limit_reached", message)
            }
            StoreError::Busy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many requests are waiting to be stored; nothing was changed, retry shortly",
            ),
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the store is unavailable; nothing was changed, try again",
                )
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "corrupt row in the store");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
        }
        response
    }
}
