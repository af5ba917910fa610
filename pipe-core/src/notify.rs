use std::fmt::Debug;

use async_trait::async_trait;

use crate::{Event, Result};

/// One webhook request as a [`Signer`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingWebhook<'a> {
    /// The event id (`webhook-id`), the same on every attempt.
    pub id: &'a str,
    /// Seconds since the epoch at this attempt (`webhook-timestamp`).
    pub timestamp: i64,
    /// The endpoint's URL.
    pub url: &'a str,
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// Makes the signature headers of a webhook request.
///
/// # Contract
///
/// - **Deterministic.** The same request gives the same headers.
/// - **Covers the body.** Any change to the body bytes (or, per scheme, the id, timestamp
///   or URL) changes the signature.
/// - Secrets never appear in headers, logs or errors.
pub trait Signer: Send + Sync + Debug + 'static {
    /// The headers (name, value) to add to the request.
    fn sign(&self, request: &OutgoingWebhook<'_>) -> Vec<(String, String)>;
}

/// Tells the operator's application about an [`Event`].
///
/// # Contract
///
/// - **One attempt per call.** `deliver` tries once; retrying on a schedule is the job
///   system's work. A retry presents the same event (same id).
/// - **Errors say whether to retry.** Network failures, timeouts, 429 and 5xx answers are
///   retryable ([`crate::Error::is_retryable`]); answers that will not change are not.
/// - `Ok` means every configured endpoint accepted the event (a 2xx answer), or that
///   there is no endpoint to tell.
#[async_trait]
pub trait Notifier: Send + Sync + Debug + 'static {
    /// Delivers `event` once.
    async fn deliver(&self, event: &Event) -> Result<()>;
}
