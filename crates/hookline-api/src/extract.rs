//! Extractors that answer bad input with the API's error shape instead of axum's plain
//! text: JSON bodies, query strings, and the org behind the bearer key.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hookline_core::ValidationError;
use hookline_core::api_key::hash_api_key;
use hookline_core::ids::OrgId;

use crate::AppState;
use crate::error::ApiError;

/// A JSON body, in our words: malformed JSON is 400, a body of the wrong shape 422
/// naming the field (unknown, missing or mistyped), too large 413, not JSON 415. An
/// empty body is `{}`, so a request whose fields are all optional needs none.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let says_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        if bytes.is_empty() {
            return parse(b"{}").map(Self);
        }
        if !says_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON, with content-type: application/json",
            ));
        }
        parse(&bytes).map(Self)
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    match rejection {
        // The body stopped coming (the server's body-read timeout, or the client went
        // away): the request's fault.
        BytesRejection::FailedToBufferBody(FailedToBufferBody::UnknownBodyError(_)) => {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time",
            )
        }
        rejection if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
        ),
        rejection => ApiError::new(rejection.status(), "invalid_body", rejection.body_text()),
    }
}

/// Parses a JSON body, saying what is wrong with it in a sentence of our own.
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every request body is an object (serde would take an array as a struct's fields).
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON ({e})"),
            ));
        }
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "the body must be a JSON object of this request's fields",
        ));
    }
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let error = match serde_path_to_error::deserialize(&mut json) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let inner = error.inner();
    if inner.is_syntax() || inner.is_eof() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON ({inner})"),
        ));
    }
    let path = error.path().to_string();
    let detail = without_position(&inner.to_string());
    Err(shape_error(&path, &detail, "field"))
}

/// serde's sentence without the " at line 1 column 9" it ends with.
fn without_position(detail: &str) -> String {
    match detail.rfind(" at line ") {
        Some(at) => detail[..at].to_owned(),
        None => detail.to_owned(),
    }
}

/// A body or query of the wrong shape: the `noun` (field or parameter) it concerns, and
/// what is wrong, in our words.
fn shape_error(path: &str, detail: &str, noun: &str) -> ApiError {
    let named = |prefix: &str| {
        detail
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    let within = |field: &str| match path {
        "." | "" => field.to_owned(),
        parent => format!("{parent}.{field}"),
    };
    if let Some(field) = named("unknown field `") {
        let expected = detail
            .split_once(", expected ")
            .map(|(_, list)| {
                let list = list.strip_prefix("one of ").unwrap_or(list);
                format!("; the {noun}s are {}", list.replace('`', ""))
            })
            .unwrap_or_default();
        // The path already ends at the unknown field.
        let field = match path {
            "." | "" => field,
            path => path.to_owned(),
        };
        return ValidationError::new(field, format!("is not a {noun} of this request{expected}"))
            .into();
    }
    if let Some(field) = named("missing field `") {
        return ValidationError::new(within(&field), "is required").into();
    }
    match path {
        "." | "" => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the body does not fit this request: {detail}"),
        ),
        field => ValidationError::new(field, value_error(detail)).into(),
    }
}

/// What is wrong with one value, in our words.
fn value_error(detail: &str) -> String {
    let plain = |expected: &str| match expected {
        "i64" | "u32" | "u64" | "i32" => "an integer".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "an object".to_owned(),
        other => other.to_owned(),
    };
    if let Some((found, expected)) = detail
        .strip_prefix("invalid type: ")
        .or_else(|| detail.strip_prefix("invalid value: "))
        .and_then(|rest| rest.split_once(", expected "))
    {
        return format!("must be {}, not {found}", plain(expected));
    }
    if let Some((found, expected)) = detail
        .strip_prefix("unknown variant ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        let expected = match expected.strip_prefix("one of ") {
            Some(list) => format!("one of {list}"),
            None => expected.to_owned(),
        };
        return format!("must be {}, not {found}", expected.replace('`', ""));
    }
    if detail.contains("invalid digit") || detail.contains("parse integer") {
        return "must be an integer".to_owned();
    }
    if detail.contains("provided string was not `true` or `false`") {
        return "must be true or false".to_owned();
    }
    format!("is not valid: {detail}")
}

/// Query parameters as the typed struct `T`, in our words: an unknown parameter is a 422
/// naming it (so a misspelt filter is an error rather than a list of everything), and a
/// value of the wrong type names its parameter.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs)
            .map(Self)
            .map_err(|error| {
                let detail = without_position(&error.inner().to_string());
                shape_error(&error.path().to_string(), &detail, "parameter")
            })
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    proptest! {
        /// Whatever bytes arrive, the body parser answers: a value, or a 400 or 422 in
        /// the API's shape, and never in the framework's words.
        #[test]
        fn any_body_parses_or_is_refused_in_our_words(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                "[{}\\[\\]\":,a-z0-9 .-]{0,48}".prop_map(String::into_bytes),
            ]
        ) {
            if let Err(e) = parse::<Map<String, Value>>(&bytes) {
                prop_assert!(
                    e.status() == StatusCode::BAD_REQUEST
                        || e.status() == StatusCode::UNPROCESSABLE_ENTITY
                );
            }
        }
    }

    #[test]
    fn shape_errors_name_the_field_in_our_words() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Request {
            name: String,
            count: Option<u32>,
        }
        for (body, status) in [
            (
                &br#"{"name": "a", "colour": 1}"#[..],
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (br#"{"count": 1}"#, StatusCode::UNPROCESSABLE_ENTITY),
            (br#"{"name": 5}"#, StatusCode::UNPROCESSABLE_ENTITY),
            (br#"[1]"#, StatusCode::UNPROCESSABLE_ENTITY),
            (br#"{"name": "#, StatusCode::BAD_REQUEST),
        ] {
            let error = parse::<Request>(body).unwrap_err();
            assert_eq!(error.status(), status, "{}", String::from_utf8_lossy(body));
        }
        assert!(parse::<Request>(br#"{"name": "a"}"#).is_ok());
    }
}
