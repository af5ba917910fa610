use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The kinds of problem Pipe's HTTP edges answer with. Each has a stable `type` URI
/// (`urn:pipe:problem:<slug>`) that clients match on; the text of `title` and `detail`
/// may change, the slug never does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemType {
    /// 400: the request is malformed; `field` names what to fix.
    InvalidRequest,
    /// 401: no API key, or one that is not valid.
    Unauthenticated,
    /// 403: the key is valid but its role does not allow this.
    Forbidden,
    /// 403: the page's origin is not among the environment's allowed hosts.
    OriginNotAllowed,
    /// 403: a signed link whose signature does not match.
    BadSignature,
    /// 404: nothing there, or nothing this key may see.
    NotFound,
    /// 405: the route exists without this method.
    MethodNotAllowed,
    /// 409: the thing exists already, or its state forbids the change.
    Conflict,
    /// 410: a signed link past its expiry.
    Expired,
    /// 412: the version given is not the current one.
    PreconditionFailed,
    /// 413: the body is too large.
    TooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 416: the range starts past the end of the file.
    RangeNotSatisfiable,
    /// 429: too many requests for this key; see `Retry-After`.
    RateLimited,
    /// 500: a fault of the server.
    Internal,
    /// 503: a part of the server is unavailable for now; try again.
    Unavailable,
}

impl ProblemType {
    /// The stable slug, the last part of the `type` URI.
    pub fn slug(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid-request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::OriginNotAllowed => "origin-not-allowed",
            Self::BadSignature => "bad-signature",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::Expired => "expired",
            Self::PreconditionFailed => "precondition-failed",
            Self::TooLarge => "too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::RangeNotSatisfiable => "range-not-satisfiable",
            Self::RateLimited => "rate-limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::OriginNotAllowed | Self::BadSignature => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Expired => StatusCode::GONE,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short summary for people; the same for every problem of the type.
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "The request is not valid",
            Self::Unauthenticated => "An API key is needed",
            Self::Forbidden => "This key may not do that",
            Self::OriginNotAllowed => "This origin may not record here",
            Self::BadSignature => "The link's signature is not valid",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict",
            Self::Expired => "The link has expired",
            Self::PreconditionFailed => "The version is not the current one",
            Self::TooLarge => "The body is too large",
            Self::UnsupportedMediaType => "The body must be JSON",
            Self::RangeNotSatisfiable => "The range is outside the file",
            Self::RateLimited => "Too many requests",
            Self::Internal => "Internal error",
            Self::Unavailable => "Unavailable for now",
        }
    }

    /// `urn:pipe:problem:<slug>`.
    pub fn uri(self) -> String {
        format!("urn:pipe:problem:{}", self.slug())
    }
}

/// An HTTP error as an RFC 9457 problem document:
/// `{"type", "title", "status", "detail", "field"?}` with `Content-Type:
/// application/problem+json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemType,
    /// The status answered (the kind's, unless changed).
    pub status: StatusCode,
    /// What happened in this case, and what to do about it.
    pub detail: String,
    /// For bad input: the request field (query parameter, JSON member or header) at fault.
    pub field: Option<String>,
    /// Seconds to wait, sent as `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
    /// Extension members (RFC 9457 §3.2), after the standard ones: for example the
    /// `message` and `status_code` a client of Pipe's REST API reads.
    pub extensions: Vec<(String, serde_json::Value)>,
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(flatten)]
    extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem of `kind` with `detail`.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status: kind.status(),
            detail: detail.into(),
            field: None,
            retry_after: None,
            extensions: Vec::new(),
        }
    }

    /// 400 for `field`.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ProblemType::InvalidRequest, detail).with_field(field)
    }

    /// 404 for `what`.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(ProblemType::NotFound, format!("{what} not found"))
    }

    /// Names the request field at fault.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Asks the client to wait `secs` before trying again.
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds the extension member `name` (ignored if it is one of the standard members).
    #[must_use]
    pub fn with_extension(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        let name = name.into();
        if !["type", "title", "status", "detail", "field"].contains(&name.as_str()) {
            self.extensions.push((name, value));
        }
        self
    }

    /// The problem document as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&Document {
            kind: self.kind.uri(),
            title: self.kind.title(),
            status: self.status.as_u16(),
            detail: &self.detail,
            field: self.field.as_deref(),
            extensions: self.extensions.iter().cloned().collect(),
        })
        .expect("a problem document serialises")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.kind.slug(), self.status, self.detail)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.to_json()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Maps Pipe's errors to problems. Backend faults do not leak their text: they are
/// logged by the caller and answered with a generic detail.
impl From<pipe_core::Error> for Problem {
    fn from(e: pipe_core::Error) -> Self {
        use pipe_core::Error as E;
        match &e {
            E::NotFound { what } => Self::not_found(what),
            E::AlreadyExists { .. } => Self::new(ProblemType::Conflict, e.to_string()),
            E::Precondition { detail } => Self::new(ProblemType::Conflict, detail.clone()),
            E::Invalid { what, detail } => Self::invalid(*what, detail.clone()),
            E::RateLimited { retry_after, .. } => Self::new(
                ProblemType::Unavailable,
                "a part of the server is being rate limited, try again",
            )
            .with_retry_after(retry_after.map_or(1, |d| d.as_secs().max(1))),
            E::Backend {
                retryable: true, ..
            } => Self::new(
                ProblemType::Unavailable,
                "a part of the server is busy, try again",
            )
            .with_retry_after(1),
            _ => Self::new(
                ProblemType::Internal,
                "the server could not do this; it is logged",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_an_rfc_9457_document() {
        let p = Problem::invalid("limit", "must be between 1 and 1000");
        let doc: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(doc["type"], "urn:pipe:problem:invalid-request");
        assert_eq!(doc["status"], 400);
        assert_eq!(doc["field"], "limit");
        assert_eq!(doc["detail"], "must be between 1 and 1000");
        let response = p.into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn extensions_follow_the_standard_members_and_cannot_replace_them() {
        let p = Problem::not_found("video 7")
            .with_extension("message", serde_json::json!("no such video"))
            .with_extension("status", serde_json::json!("OK"));
        let doc: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(doc["message"], "no such video");
        assert_eq!(doc["status"], 404);
    }

    #[test]
    fn backend_faults_do_not_leak() {
        let e = pipe_core::Error::Backend {
            backend: "sqlite",
            retryable: false,
            source: "disk I/O error at /secret/path".into(),
        };
        let p = Problem::from(e);
        assert_eq!(p.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!p.to_json().contains("/secret/path"));
    }
}
