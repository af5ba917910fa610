//! Extractors whose rejections are problem documents, so malformed input is always a 4xx
//! that says what is wrong.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use pipe_http::{Problem, ProblemType};
use serde::de::DeserializeOwned;

/// A JSON body (`Content-Type: application/json`, at most 64 KiB).
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

/// The largest JSON body the API reads.
pub(crate) const MAX_BODY: usize = 64 << 10;

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            ProblemType::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonDataError(e) => Problem::new(ProblemType::InvalidRequest, e.body_text()),
        JsonRejection::JsonSyntaxError(e) => {
            Problem::new(ProblemType::InvalidRequest, e.body_text())
        }
        other if other.status().as_u16() == 413 => Problem::new(
            ProblemType::TooLarge,
            format!("the body may hold at most {MAX_BODY} bytes"),
        ),
        other => Problem::new(ProblemType::InvalidRequest, other.body_text()),
    }
}

/// Query parameters.
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(Problem::new(ProblemType::InvalidRequest, e.body_text()))
            }
            Err(other) => Err(Problem::new(ProblemType::InvalidRequest, other.body_text())),
        }
    }
}

/// The most items one page of a list may hold.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// A `limit` query parameter: 1 to [`MAX_LIMIT`], `default` when absent.
pub(crate) fn limit(value: Option<&str>, default: u32) -> Result<u32, Problem> {
    match value {
        None => Ok(default),
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| Problem::invalid("limit", "a whole number from 1 to 1000")),
    }
}

/// An RFC 3339 time in the parameter or field `field`.
pub(crate) fn time(field: &'static str, value: &str) -> Result<pipe_core::Timestamp, Problem> {
    pipe_core::Timestamp::parse_rfc3339(value)
        .ok_or_else(|| Problem::invalid(field, "an RFC 3339 date-time, e.g. 2026-12-01T10:00:00Z"))
}
