use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{RecordingId, Timestamp};

/// The id of one event, sent as `webhook-id`. It is made once, when the event is
/// enqueued, and kept across every delivery attempt so receivers can deduplicate.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// A new random id, `msg_` followed by 26 base32 characters.
    pub fn generate() -> Self {
        Self(format!("msg_{}", crate::id::random_base32()))
    }

    /// Wraps an id received from elsewhere.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

/// An event's name on the wire: Pipe's names (`video_recorded`, `video_converted`,
/// `video_copied_s3`, …) and our own (`video_failed`, `video_copied_pipe_storage`, …).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventName(String);

impl EventName {
    /// The original reached the server completely.
    pub const VIDEO_RECORDED: &'static str = "video_recorded";
    /// The MP4 and snapshot were made.
    pub const VIDEO_CONVERTED: &'static str = "video_converted";
    /// Processing gave up on the recording.
    pub const VIDEO_FAILED: &'static str = "video_failed";

    /// An event name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventName({})", self.0)
    }
}

/// Something that happened to a recording, to be told to the operator's application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// Stable across delivery attempts.
    pub id: EventId,
    /// What happened.
    pub name: EventName,
    /// To which recording.
    pub recording: RecordingId,
    /// When the event was made; its signature timestamp is the time of each attempt.
    pub created: Timestamp,
    /// The event's `data` object, in Pipe's field names.
    pub data: serde_json::Value,
}

impl Event {
    /// A new event with a fresh id, made now.
    pub fn new(name: impl Into<String>, recording: RecordingId, data: serde_json::Value) -> Self {
        Self {
            id: EventId::generate(),
            name: EventName::new(name),
            recording,
            created: Timestamp::now(),
            data,
        }
    }

    /// The body sent on the wire: Pipe's envelope.
    pub fn envelope(&self) -> Envelope<'_> {
        Envelope {
            version: "1.0",
            event: self.name.as_str(),
            data: &self.data,
        }
    }
}

/// Pipe's webhook body: `{"version":"1.0","event":"…","data":{…}}`.
#[derive(Clone, Debug, Serialize)]
pub struct Envelope<'a> {
    /// Always `1.0`.
    pub version: &'static str,
    /// The event name.
    pub event: &'a str,
    /// The event's data.
    pub data: &'a serde_json::Value,
}

impl Envelope<'_> {
    /// The JSON bytes of the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a JSON value always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_pipes() {
        let ev = Event::new(
            "video_recorded",
            "r1".parse().unwrap(),
            serde_json::json!({"id": "r1"}),
        );
        let body = String::from_utf8(ev.envelope().to_bytes()).unwrap();
        assert_eq!(
            body,
            r#"{"version":"1.0","event":"video_recorded","data":{"id":"r1"}}"#
        );
        assert!(ev.id.as_str().starts_with("msg_"));
    }
}
