use serde::{Deserialize, Serialize};

use crate::{EnvironmentId, MediaInfo, RecordingId, Timestamp};

/// Where a recording is on its way.
///
/// ```text
/// receiving ──finish──▶ recorded ──process──▶ converted ──copy (every sink)──▶ copied
///      └───────────────────┴────────────────────┴──────────────────────────────▶ failed
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Bytes are arriving; the spool holds what is durable so far.
    Receiving,
    /// The client finished; the original is complete in the spool.
    Recorded,
    /// The MP4 and the snapshot exist.
    Converted,
    /// Every configured sink has a verified copy of every artifact.
    Copied,
    /// Processing gave up; [`Recording::failure`] says why.
    Failed,
}

impl RecordingState {
    /// The state's name as stored and shown (`receiving`, `recorded`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receiving => "receiving",
            Self::Recorded => "recorded",
            Self::Converted => "converted",
            Self::Copied => "copied",
            Self::Failed => "failed",
        }
    }

    /// Parses a name produced by [`RecordingState::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "receiving" => Self::Receiving,
            "recorded" => Self::Recorded,
            "converted" => Self::Converted,
            "copied" => Self::Copied,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// Whether nothing more will happen to the recording by itself.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Copied | Self::Failed)
    }
}

/// What a client says about a recording when it starts one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewRecording {
    /// The id; generate with [`RecordingId::generate`].
    pub id: Option<RecordingId>,
    /// The environment it belongs to (default `production`).
    #[serde(default)]
    pub environment: EnvironmentId,
    /// The MIME type the recorder declared (`video/webm;codecs=vp8,opus`).
    pub mime_type: Option<String>,
    /// The operator's own string, echoed in every webhook (Pipe's `payload`).
    pub payload: Option<String>,
}

impl NewRecording {
    /// A new recording with a freshly generated id.
    pub fn new() -> Self {
        Self {
            id: Some(RecordingId::generate()),
            ..Self::default()
        }
    }

    /// Sets the declared MIME type.
    #[must_use]
    pub fn with_mime_type(mut self, mime: impl Into<String>) -> Self {
        self.mime_type = Some(mime.into());
        self
    }

    /// Sets the operator's payload string.
    #[must_use]
    pub fn with_payload(mut self, payload: impl Into<String>) -> Self {
        self.payload = Some(payload.into());
        self
    }

    /// Puts it in `environment`.
    #[must_use]
    pub fn with_environment(mut self, environment: EnvironmentId) -> Self {
        self.environment = environment;
        self
    }

    /// Uses `id` instead of a generated one.
    #[must_use]
    pub fn with_id(mut self, id: RecordingId) -> Self {
        self.id = Some(id);
        self
    }
}

/// A recording as the catalog knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Recording {
    /// Its id.
    pub id: RecordingId,
    /// The environment it belongs to.
    pub environment: EnvironmentId,
    /// Where it is on its way.
    pub state: RecordingState,
    /// Incremented by every change; [`crate::Change::expect_version`] uses it for
    /// optimistic concurrency.
    pub version: i64,
    /// When the first byte was announced.
    pub created: Timestamp,
    /// When the state last changed.
    pub updated: Timestamp,
    /// The MIME type the recorder declared.
    pub mime_type: Option<String>,
    /// The operator's payload string.
    pub payload: Option<String>,
    /// The length of the original in bytes, once recorded.
    pub length: Option<u64>,
    /// What the probe found in the original, once processed.
    pub media: Option<MediaInfo>,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// When its deletion was asked for: from then on nothing but its erasure happens to
    /// it, and once every copy is gone it leaves the catalog.
    pub deleting: Option<Timestamp>,
    /// Its number: unique in the catalog and never given again, counting from 1, for the
    /// clients of the hosted Pipe whose video ids are numbers. 0 where a catalog has none.
    pub number: u64,
}

impl Recording {
    /// A recording as a catalog stores it, with nothing known yet beyond its state, in
    /// the default environment; the other fields are public to fill in.
    pub fn new(
        id: RecordingId,
        state: RecordingState,
        version: i64,
        created: Timestamp,
        updated: Timestamp,
    ) -> Self {
        Self {
            id,
            environment: EnvironmentId::default(),
            state,
            version,
            created,
            updated,
            mime_type: None,
            payload: None,
            length: None,
            media: None,
            failure: None,
            deleting: None,
            number: 0,
        }
    }
}
