use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{EnvironmentId, RecordingId, Timestamp};

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
    /// A copy to one sink gave up (ours; Pipe has no such event).
    pub const VIDEO_COPY_FAILED: &'static str = "video_copy_failed";
    /// The recording was erased from every sink and the catalog (ours).
    pub const VIDEO_DELETED: &'static str = "video_deleted";

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
    /// The recording's environment, whose endpoints are told. Events stored before
    /// environments existed belong to the default one, as their recordings do.
    #[serde(default)]
    pub environment: EnvironmentId,
    /// When the event was made; its signature timestamp is the time of each attempt.
    pub created: Timestamp,
    /// The event's `data` object in our own documented form (the `standard` wire format).
    pub data: serde_json::Value,
    /// The event exactly as the hosted Pipe sends it (its name, its fields and their JSON
    /// types), for endpoints in Pipe's wire format; `None` for events Pipe does not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe: Option<PipeEvent>,
    /// The download links the event carries, as the files they point to: made into
    /// signed URLs each time the event is sent ([`EventLinks::FIELDS`]), never stored as
    /// working links with the event (in a job queue, a catalog file, a backup of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<EventLinks>,
}

/// The files an event links to, in one sink: the event's `url`, `snapshotUrl` and
/// `rawRecordingUrl` (in both its forms, where the form has the field) are made from them
/// when it is sent, valid from then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventLinks {
    /// The sink that holds the files.
    pub sink: crate::SinkId,
    /// The MP4's key there (the event's `url`).
    pub mp4: Option<crate::ObjectKey>,
    /// The snapshot's (`snapshotUrl`).
    pub snapshot: Option<crate::ObjectKey>,
    /// The original's (`rawRecordingUrl`).
    pub original: Option<crate::ObjectKey>,
}

impl EventLinks {
    /// The fields links fill, in the order of [`EventLinks::keys`].
    pub const FIELDS: [&'static str; 3] = ["url", "snapshotUrl", "rawRecordingUrl"];

    /// Links to files in `sink`.
    pub fn new(sink: crate::SinkId) -> Self {
        Self {
            sink,
            mp4: None,
            snapshot: None,
            original: None,
        }
    }

    /// The keys, field by field ([`EventLinks::FIELDS`]).
    pub fn keys(&self) -> [Option<&crate::ObjectKey>; 3] {
        [
            self.mp4.as_ref(),
            self.snapshot.as_ref(),
            self.original.as_ref(),
        ]
    }
}

/// An event in the hosted Pipe's own shape: Pipe's event name (`video_copied_pipe_s3`
/// where ours is `video_copied_pipe_storage`) and a `data` object with exactly Pipe's
/// fields, JSON types and casing, so strict receivers written for Pipe accept it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PipeEvent {
    /// Pipe's name of the event.
    pub name: EventName,
    /// Pipe's `data` object.
    pub data: serde_json::Value,
}

impl PipeEvent {
    /// Pipe's form of an event.
    pub fn new(name: impl Into<String>, data: serde_json::Value) -> Self {
        Self {
            name: EventName::new(name),
            data,
        }
    }
}

impl Event {
    /// A new event with a fresh id, made now.
    pub fn new(name: impl Into<String>, recording: RecordingId, data: serde_json::Value) -> Self {
        Self {
            id: EventId::generate(),
            name: EventName::new(name),
            recording,
            environment: EnvironmentId::default(),
            created: Timestamp::now(),
            data,
            pipe: None,
            links: None,
        }
    }

    /// The same event, linking to files that are signed when it is sent.
    #[must_use]
    pub fn with_links(mut self, links: EventLinks) -> Self {
        self.links = Some(links);
        self
    }

    /// The same event with its links made: each field of [`EventLinks::FIELDS`] that the
    /// data (and Pipe's form) has gets the URL `url` gives for its key (`null` in ours,
    /// `""` in Pipe's when there is none). The links themselves are dropped.
    pub fn linked(&self, urls: [Option<String>; 3]) -> Self {
        let mut sent = self.clone();
        sent.links = None;
        for (field, url) in EventLinks::FIELDS.iter().zip(urls) {
            if let Some(slot) = sent.data.get_mut(*field) {
                *slot = url.clone().map_or(serde_json::Value::Null, Into::into);
            }
            if let Some(slot) = sent.pipe.as_mut().and_then(|p| p.data.get_mut(*field)) {
                *slot = url.unwrap_or_default().into();
            }
        }
        sent
    }

    /// The same event, about a recording of `environment` (the default one unless told).
    #[must_use]
    pub fn in_environment(mut self, environment: EnvironmentId) -> Self {
        self.environment = environment;
        self
    }

    /// The same event with its form for Pipe's wire format.
    #[must_use]
    pub fn with_pipe(mut self, pipe: PipeEvent) -> Self {
        self.pipe = Some(pipe);
        self
    }

    /// The body in our own (`standard`) format: the envelope with our name and data.
    pub fn envelope(&self) -> Envelope<'_> {
        Envelope {
            version: "1.0",
            event: self.name.as_str(),
            data: &self.data,
        }
    }

    /// The body in Pipe's format: Pipe's name and data where Pipe has the event, else ours.
    pub fn pipe_envelope(&self) -> Envelope<'_> {
        match &self.pipe {
            Some(pipe) => Envelope {
                version: "1.0",
                event: pipe.name.as_str(),
                data: &pipe.data,
            },
            None => self.envelope(),
        }
    }

    /// The body for an endpoint speaking `format`.
    pub fn envelope_for(&self, format: crate::WireFormat) -> Envelope<'_> {
        match format {
            crate::WireFormat::Standard => self.envelope(),
            crate::WireFormat::Pipe => self.pipe_envelope(),
        }
    }

    /// The event's name in `format`: Pipe's name for Pipe endpoints where Pipe has one.
    pub fn name_for(&self, format: crate::WireFormat) -> &EventName {
        match (format, &self.pipe) {
            (crate::WireFormat::Pipe, Some(pipe)) => &pipe.name,
            _ => &self.name,
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
