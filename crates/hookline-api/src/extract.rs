//! Extractors that answer bad input with the API's error shape instead of axum's plain
//! text: JSON bodies, query strings, and the org behind the bearer key.

use std::collections::HashMap;

use axum::extract::rejection::{BytesRejection, FailedToBufferBody, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hookline_core::ValidationError;
use hookline_core::api_key::hash_api_key;
use hookline_core::ids::OrgId;
use hookline_store::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, PageRequest};

use crate::AppState;
use crate::error::ApiError;

/// A JSON body; malformed JSON is 400, a wrong shape 422, too large 413.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            // The body stopped coming (the server's body-read timeout, or the client
            // went away): the request's fault, said in our words.
            Err(JsonRejection::BytesRejection(BytesRejection::FailedToBufferBody(
                FailedToBufferBody::UnknownBodyError(_),
            ))) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time",
            )),
            Err(rejection) => {
                let status = rejection.status();
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    StatusCode::BAD_REQUEST => "invalid_json",
                    _ => "invalid_body",
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

/// Query parameters, parsed one by one so each bad value names its field.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(map)| Self(map))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
    }
}

impl Params {
    /// Parses `name` if present.
    pub fn get<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, ValidationError>,
    ) -> Result<Option<T>, ApiError> {
        self.0
            .get(name)
            .map(|v| parse(name, v))
            .transpose()
            .map_err(ApiError::from)
    }

    /// `limit` (1–200, default 50) and `cursor`, which must be an id of the listed kind.
    pub fn page(&self, cursor_is_valid: fn(&str) -> bool) -> Result<PageRequest, ApiError> {
        let limit = self
            .get("limit", |field, v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ValidationError::new(
                            field,
                            format!("must be an integer from 1 to {MAX_PAGE_LIMIT}"),
                        )
                    })
            })?
            .unwrap_or(DEFAULT_PAGE_LIMIT);
        let cursor = self.get("cursor", |field, v| {
            if cursor_is_valid(v) {
                Ok(v.to_owned())
            } else {
                Err(ValidationError::new(
                    field,
                    "is not a cursor from this list's next_cursor",
                ))
            }
        })?;
        Ok(PageRequest { limit, cursor })
    }
}

/// The org whose API key authorized the request.
pub struct Authed(pub OrgId);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <api key>"))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be 'Bearer <api key>'")
            })?;
        state
            .store
            .org_for_key(&hash_api_key(key))
            .await?
            .map(Self)
            .ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))
    }
}
