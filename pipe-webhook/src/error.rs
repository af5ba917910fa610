//! The errors of this crate: why a request did not verify, and why a delivery failed.

use std::fmt;
use std::time::Duration;

/// Why an incoming webhook request was refused by a [`Verifier`](crate::Verifier) or
/// [`PipeSignature::verify`](crate::PipeSignature::verify).
///
/// A receiver answers every variant the same way (`400` or `401`, no details on the
/// wire); the variants exist for its logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A header the scheme needs is absent.
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer number of seconds.
    #[error("`webhook-timestamp` is not a Unix time in seconds")]
    MalformedTimestamp,
    /// The request was signed longer ago than the tolerance: possibly a replay.
    #[error("the timestamp is {age} s old, more than the tolerated {tolerance} s")]
    TooOld {
        /// Seconds between the signature's timestamp and now.
        age: i64,
        /// The tolerance in seconds.
        tolerance: i64,
    },
    /// The request claims to be signed later than now plus the tolerance.
    #[error("the timestamp is {ahead} s in the future, more than the tolerated {tolerance} s")]
    TooNew {
        /// Seconds the timestamp is ahead of now.
        ahead: i64,
        /// The tolerance in seconds.
        tolerance: i64,
    },
    /// No signature in the header matches the body under this secret (or the header
    /// holds no signature of a version this verifier knows).
    #[error("no signature matches")]
    NoMatchingSignature,
    /// A form-encoded request without exactly one `payload` field.
    #[error("the form has no single `payload` field")]
    NoPayloadField,
}

/// Why one endpoint did not accept a webhook.
///
/// It is the `source` of the [`pipe_core::Error::Backend`] that
/// [`WebhookNotifier`](crate::WebhookNotifier) returns (inside a [`DeliveryError`]). It
/// names the endpoint by host (and port), never by full URL, so query-string tokens and
/// secrets stay out of logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The endpoint answered with a status other than 2xx or 3xx.
    #[error("{host} answered {}", status_text(*status))]
    Status {
        /// The endpoint's host and port.
        host: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The endpoint answered with a redirect, which webhooks do not follow: the
    /// endpoint URL needs updating.
    #[error("{host} answered {} (a redirect; webhooks do not follow redirects, update the endpoint URL)", status_text(*status))]
    Redirect {
        /// The endpoint's host and port.
        host: String,
        /// The HTTP status code (3xx).
        status: u16,
    },
    /// No answer arrived within the timeout.
    #[error("{host} did not answer within {timeout:?}")]
    Timeout {
        /// The endpoint's host and port.
        host: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The request could not be sent or its answer not read (DNS, connection refused,
    /// TLS, reset).
    #[error("{host} could not be reached: {detail}")]
    Network {
        /// The endpoint's host and port.
        host: String,
        /// What failed, without the URL.
        detail: String,
    },
    /// The SSRF guard refused the address the endpoint's host name resolved to (or the
    /// name did not resolve at all): nothing was sent. See
    /// [`AddressPolicy`](crate::AddressPolicy).
    #[error("{host} was not contacted: {error}")]
    Refused {
        /// The endpoint's host and port.
        host: String,
        /// What the guard said.
        error: crate::SsrfError,
    },
}

/// `404 Not Found`: the code and, where HTTP defines one, its reason phrase.
fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

impl EndpointError {
    /// Whether a later attempt may succeed: network failures, timeouts, 408, 429 and
    /// 5xx are worth retrying; other answers will not change by themselves.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::Redirect { .. } => false,
            Self::Timeout { .. } | Self::Network { .. } => true,
            // A name that does not resolve may resolve later; one that resolves inside
            // the network is a configuration to change, not a failure to wait out.
            Self::Refused { error, .. } => matches!(error, crate::SsrfError::Resolve { .. }),
        }
    }
}

/// One delivery attempt that some endpoints did not accept.
///
/// Its [`Display`](fmt::Display) lists each failing endpoint; [`Self::failures`] has
/// them one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    failures: Vec<EndpointError>,
    endpoints: usize,
    retry_after: Option<Duration>,
}

impl DeliveryError {
    pub(crate) fn new(failures: Vec<EndpointError>, endpoints: usize) -> Self {
        debug_assert!(!failures.is_empty());
        Self {
            failures,
            endpoints,
            retry_after: None,
        }
    }

    /// The same failure, with the wait the endpoint asked for (`Retry-After`).
    pub(crate) fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// How long the endpoint asked to be left alone (its `Retry-After`, in seconds), if
    /// it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The endpoints that did not accept the event, and why.
    pub fn failures(&self) -> &[EndpointError] {
        &self.failures
    }

    /// Whether a later attempt may succeed: true if any failing endpoint may accept
    /// the event later (those that accepted it already will see the same `webhook-id`
    /// again and can deduplicate).
    pub fn is_retryable(&self) -> bool {
        self.failures.iter().any(EndpointError::is_retryable)
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.failures.as_slice() {
            return write!(f, "{only}");
        }
        write!(
            f,
            "{} of {} endpoints failed: ",
            self.failures.len(),
            self.endpoints
        )?;
        for (i, failure) in self.failures.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DeliveryError {}

impl From<DeliveryError> for pipe_core::Error {
    fn from(e: DeliveryError) -> Self {
        if let (true, Some(after)) = (e.is_retryable(), e.retry_after) {
            pipe_core::Error::temporary_after("webhook", e, after)
        } else if e.is_retryable() {
            pipe_core::Error::temporary("webhook", e)
        } else {
            pipe_core::Error::permanent("webhook", e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> EndpointError {
        EndpointError::Status {
            host: "hooks.example.com".into(),
            status,
        }
    }

    #[test]
    fn retryable_statuses_are_408_429_and_5xx() {
        for code in [408, 429, 500, 502, 503, 504, 599] {
            assert!(status(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 422] {
            assert!(!status(code).is_retryable(), "{code}");
        }
    }

    #[test]
    fn one_retryable_failure_makes_the_delivery_retryable() {
        let mixed = DeliveryError::new(vec![status(400), status(503)], 3);
        assert!(mixed.is_retryable());
        assert_eq!(
            mixed.to_string(),
            "2 of 3 endpoints failed: hooks.example.com answered 400 Bad Request; hooks.example.com answered 503 Service Unavailable"
        );
        let permanent: pipe_core::Error = DeliveryError::new(vec![status(404)], 1).into();
        assert!(!permanent.is_retryable());
        assert_eq!(
            permanent.to_string(),
            "webhook: hooks.example.com answered 404 Not Found"
        );
    }
}
