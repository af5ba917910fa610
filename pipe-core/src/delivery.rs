//! The delivery log: every attempt to deliver an event to an endpoint, with the endpoint's
//! answer, kept in the catalog so an operator can see what their receiver said and
//! redeliver what it did not take.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{EnvironmentId, EventId, EventName, RecordingId, Result, Timestamp};

/// What one attempt at one endpoint gave, as a [`Notifier`](crate::Notifier) reports it
/// from [`Notifier::attempt`](crate::Notifier::attempt).
#[derive(Debug)]
#[non_exhaustive]
pub struct Attempted {
    /// `Ok` when the endpoint accepted the event; the error says whether to retry.
    pub outcome: Result<()>,
    /// The endpoint's HTTP status, if it answered at all.
    pub status: Option<u16>,
    /// The start of the endpoint's answer, at most [`DeliveryAttempt::RESPONSE_LIMIT`]
    /// bytes.
    pub response: Vec<u8>,
    /// From sending the request to the end of the answer (or the failure).
    pub duration: Duration,
}

impl Attempted {
    /// An attempt that ended with `outcome`, without an HTTP answer to show.
    pub fn new(outcome: Result<()>, duration: Duration) -> Self {
        Self {
            outcome,
            status: None,
            response: Vec::new(),
            duration,
        }
    }

    /// The endpoint answered `status` with `response` (cut to the limit here).
    #[must_use]
    pub fn with_answer(mut self, status: u16, mut response: Vec<u8>) -> Self {
        response.truncate(DeliveryAttempt::RESPONSE_LIMIT);
        self.status = Some(status);
        self.response = response;
        self
    }
}

/// One attempt to deliver one event to one endpoint, as the delivery log keeps it.
///
/// A plain record (not `non_exhaustive`): a catalog reads it back field by field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// The event (its `webhook-id`).
    pub event: EventId,
    /// The event's name.
    pub event_name: EventName,
    /// The recording it is about.
    pub recording: RecordingId,
    /// The endpoint's id.
    pub endpoint: String,
    /// When the attempt started.
    pub at: Timestamp,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<u16>,
    /// The start of its answer ([`Self::RESPONSE_LIMIT`] bytes at most), as text.
    pub response: String,
    /// Why the attempt failed; `None` when the endpoint accepted the event.
    pub error: Option<String>,
}

impl DeliveryAttempt {
    /// How much of an endpoint's answer is kept.
    pub const RESPONSE_LIMIT: usize = 4096;

    /// The log entry of `attempted`, which started at `at`.
    pub fn new(
        event: &crate::Event,
        endpoint: impl Into<String>,
        at: Timestamp,
        attempted: &Attempted,
    ) -> Self {
        let response = &attempted.response[..attempted.response.len().min(Self::RESPONSE_LIMIT)];
        Self {
            event: event.id.clone(),
            event_name: event.name.clone(),
            recording: event.recording.clone(),
            endpoint: endpoint.into(),
            at,
            duration_ms: u64::try_from(attempted.duration.as_millis()).unwrap_or(u64::MAX),
            status: attempted.status,
            response: String::from_utf8_lossy(response).into_owned(),
            error: attempted.outcome.as_ref().err().map(ToString::to_string),
        }
    }

    /// Whether the endpoint accepted the event.
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
}

/// Options of [`Catalog::delivery_attempts`](crate::Catalog::delivery_attempts): which
/// attempts, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryFilter {
    /// Only attempts about this recording.
    pub recording: Option<RecordingId>,
    /// Only attempts at this endpoint.
    pub endpoint: Option<String>,
    /// Only attempts of this event.
    pub event: Option<EventId>,
    /// Only attempts that were (`true`) or were not (`false`) accepted.
    pub delivered: Option<bool>,
    /// Only attempts at or after this time.
    pub since: Option<Timestamp>,
    /// Only attempts about recordings of these environments (empty: every environment).
    pub environments: Vec<EnvironmentId>,
    /// At most this many (the catalog's own limit applies too).
    pub limit: Option<u32>,
}

impl DeliveryFilter {
    /// Only attempts about `recording`.
    #[must_use]
    pub fn recording(mut self, recording: RecordingId) -> Self {
        self.recording = Some(recording);
        self
    }

    /// Only attempts at `endpoint`.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Only attempts of `event`.
    #[must_use]
    pub fn event(mut self, event: EventId) -> Self {
        self.event = Some(event);
        self
    }

    /// Only accepted (`true`) or refused (`false`) attempts.
    #[must_use]
    pub fn delivered(mut self, delivered: bool) -> Self {
        self.delivered = Some(delivered);
        self
    }

    /// Only attempts at or after `since`.
    #[must_use]
    pub fn since(mut self, since: Timestamp) -> Self {
        self.since = Some(since);
        self
    }

    /// Only attempts about recordings of `environments` (empty: all).
    #[must_use]
    pub fn environments(mut self, environments: Vec<EnvironmentId>) -> Self {
        self.environments = environments;
        self
    }

    /// At most `limit` attempts.
    #[must_use]
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Error, Event};

    #[test]
    fn an_attempt_keeps_the_start_of_the_answer_and_why_it_failed() {
        let event = Event::new("video_recorded", "r1".parse().unwrap(), json!({}));
        let at = Timestamp::from_millis(1_767_225_600_000);
        let long = vec![b'x'; 10_000];
        let refused = Attempted::new(
            Err(Error::temporary("webhook", "hooks.example answered 503")),
            Duration::from_millis(42),
        )
        .with_answer(503, long);
        assert_eq!(refused.response.len(), DeliveryAttempt::RESPONSE_LIMIT);
        let entry = DeliveryAttempt::new(&event, "endpoint-1", at, &refused);
        assert_eq!(entry.status, Some(503));
        assert_eq!(entry.duration_ms, 42);
        assert_eq!(entry.response.len(), DeliveryAttempt::RESPONSE_LIMIT);
        assert!(!entry.delivered());
        assert!(entry.error.unwrap().contains("503"));

        let ok = Attempted::new(Ok(()), Duration::from_millis(3)).with_answer(204, Vec::new());
        let entry = DeliveryAttempt::new(&event, "endpoint-1", at, &ok);
        assert!(entry.delivered());
        assert_eq!((entry.event, entry.recording.as_str()), (event.id, "r1"));
    }
}
