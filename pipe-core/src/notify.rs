use std::fmt::{self, Debug};
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Error, Event, EventName, Result};

/// How an endpoint wants its events: which body, which names, which signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireFormat {
    /// Our own documented payload ([`Event::data`]) signed with Standard Webhooks.
    #[default]
    Standard,
    /// Exactly what the hosted Pipe sends ([`Event::pipe`]), signed with
    /// `X-Pipe-Signature`, for receivers written for Pipe.
    Pipe,
}

impl WireFormat {
    /// `standard` or `pipe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Pipe => "pipe",
        }
    }
}

impl fmt::Display for WireFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WireFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "standard" => Ok(Self::Standard),
            "pipe" => Ok(Self::Pipe),
            other => Err(Error::invalid(
                "webhook format",
                format!("{other:?}: expected `standard` or `pipe`"),
            )),
        }
    }
}

/// How the JSON document travels in the request body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyEncoding {
    /// `application/json`: the body is the JSON document.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded` with one field, `payload`, holding the JSON
    /// document: Pipe's second mode, which most Pipe receivers read.
    Form,
}

impl BodyEncoding {
    /// `json` or `form`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Form => "form",
        }
    }

    /// The `content-type` of the request.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Form => "application/x-www-form-urlencoded",
        }
    }
}

impl fmt::Display for BodyEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BodyEncoding {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(Self::Json),
            "form" => Ok(Self::Form),
            other => Err(Error::invalid(
                "webhook content type",
                format!("{other:?}: expected `json` or `form`"),
            )),
        }
    }
}

/// Which events an endpoint is subscribed to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventFilter {
    /// Every event of the endpoint's format: for [`WireFormat::Pipe`], only the events the
    /// hosted Pipe has, so a strict Pipe receiver never sees a name it does not know; for
    /// [`WireFormat::Standard`], all of them.
    #[default]
    All,
    /// Only these, by name (ours or Pipe's: `video_copied_pipe_s3` and
    /// `video_copied_pipe_storage` both name the copy to the server's own storage). Our own
    /// events (`video_failed`, …) reach a Pipe endpoint only this way.
    Only(Vec<EventName>),
}

impl EventFilter {
    /// The filter an operator wrote as a list of names: none, or `all` among them, is
    /// [`EventFilter::All`]; otherwise each must be an event name (1 to 64 characters of
    /// `a-z`, `0-9`, `_`, like `video_converted`).
    ///
    /// # Errors
    ///
    /// `Invalid` (`events`) naming the first entry that is not a name.
    pub fn from_names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Self> {
        let names: Vec<S> = names.into_iter().collect();
        if names.is_empty() || names.iter().any(|n| n.as_ref() == "all") {
            return Ok(Self::All);
        }
        if let Some(bad) = names.iter().map(AsRef::as_ref).find(|n| {
            n.is_empty()
                || n.len() > 64
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }) {
            return Err(Error::invalid(
                "events",
                format!("{bad:?} is not an event name (like `video_converted`), nor `all`"),
            ));
        }
        Ok(Self::Only(
            names.iter().map(|n| EventName::new(n.as_ref())).collect(),
        ))
    }

    /// Whether an endpoint speaking `format` with this filter gets `event`.
    pub fn accepts(&self, event: &Event, format: WireFormat) -> bool {
        match self {
            Self::All => format == WireFormat::Standard || event.pipe.is_some(),
            Self::Only(names) => names
                .iter()
                .any(|name| *name == event.name || *name == *event.name_for(format)),
        }
    }
}

/// One webhook request as a [`Signer`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingWebhook<'a> {
    /// The event id (`webhook-id`), the same on every attempt.
    pub id: &'a str,
    /// Seconds since the epoch at this attempt (`webhook-timestamp`).
    pub timestamp: i64,
    /// The endpoint's URL.
    pub url: &'a str,
    /// The JSON document: the exact body for `application/json`, the value of the
    /// `payload` field for form-encoded requests (what Pipe's signature covers).
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
///
/// A notifier that names its endpoints ([`Notifier::subscribers`]) has each event
/// delivered to each endpoint by its own job ([`crate::JobKind::Deliver`]) through
/// [`Notifier::deliver_to`]: retried, ordered and dead-lettered per endpoint.
#[async_trait]
pub trait Notifier: Send + Sync + Debug + 'static {
    /// Delivers `event` once to every endpoint subscribed to it.
    async fn deliver(&self, event: &Event) -> Result<()>;

    /// The ids of the endpoints subscribed to `event` (those of its environment that are
    /// enabled and want it). The default names none, and events are then delivered with
    /// [`Notifier::deliver`].
    ///
    /// # Errors
    ///
    /// When the endpoints could not be read (a retryable store error): the event is told
    /// later.
    async fn subscribers(&self, event: &Event) -> Result<Vec<String>> {
        let _ = event;
        Ok(Vec::new())
    }

    /// Delivers `event` once to the endpoint `endpoint` (an id from
    /// [`Notifier::subscribers`]).
    ///
    /// # Errors
    ///
    /// As [`Notifier::deliver`]; [`Error::NotFound`] (permanent) if no endpoint has that
    /// id any more. The default is [`Error::NotSupported`].
    async fn deliver_to(&self, event: &Event, endpoint: &str) -> Result<()> {
        let _ = (event, endpoint);
        Err(Error::NotSupported {
            backend: "notifier",
            operation: "delivery to one endpoint",
        })
    }

    /// [`Notifier::deliver_to`], with what the delivery log keeps of it: the endpoint's
    /// status and the start of its answer, and how long it took. The default times
    /// `deliver_to` and has no answer to show; a notifier that speaks HTTP should.
    async fn attempt(&self, event: &Event, endpoint: &str) -> crate::Attempted {
        let started = std::time::Instant::now();
        let outcome = self.deliver_to(event, endpoint).await;
        crate::Attempted::new(outcome, started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::PipeEvent;

    fn copied() -> Event {
        Event::new(
            "video_copied_pipe_storage",
            "r1".parse().unwrap(),
            json!({}),
        )
        .with_pipe(PipeEvent::new("video_copied_pipe_s3", json!({})))
    }

    fn failed() -> Event {
        Event::new("video_failed", "r1".parse().unwrap(), json!({}))
    }

    #[test]
    fn all_means_pipes_events_for_pipe_endpoints_and_every_event_for_standard_ones() {
        let all = EventFilter::All;
        assert!(all.accepts(&copied(), WireFormat::Pipe));
        assert!(!all.accepts(&failed(), WireFormat::Pipe));
        assert!(all.accepts(&failed(), WireFormat::Standard));
    }

    #[test]
    fn a_subscription_by_either_name_matches() {
        for name in ["video_copied_pipe_s3", "video_copied_pipe_storage"] {
            let only = EventFilter::Only(vec![EventName::new(name)]);
            assert!(only.accepts(&copied(), WireFormat::Pipe), "{name}");
            assert!(!only.accepts(&failed(), WireFormat::Pipe), "{name}");
        }
        let failed_only = EventFilter::Only(vec![EventName::new("video_failed")]);
        assert!(failed_only.accepts(&failed(), WireFormat::Pipe));
        assert!(!failed_only.accepts(&copied(), WireFormat::Standard));
    }

    #[test]
    fn formats_and_encodings_parse_their_names_only() {
        assert_eq!("pipe".parse::<WireFormat>().unwrap(), WireFormat::Pipe);
        assert_eq!("form".parse::<BodyEncoding>().unwrap(), BodyEncoding::Form);
        assert!("Pipe".parse::<WireFormat>().is_err());
        assert!("xml".parse::<BodyEncoding>().is_err());
    }
}
