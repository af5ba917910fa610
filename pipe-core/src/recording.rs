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

/// How a recording's bytes arrive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecordingSource {
    /// Streamed by a recorder while it was recorded.
    #[default]
    Recorder,
    /// An existing file uploaded (tus): complete only once its declared length arrived.
    Upload,
}

impl RecordingSource {
    /// The source's name as stored and shown (`recorder`, `upload`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recorder => "recorder",
            Self::Upload => "upload",
        }
    }

    /// Parses a name produced by [`RecordingSource::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "recorder" => Self::Recorder,
            "upload" => Self::Upload,
            _ => return None,
        })
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
    /// What is known of the person recording, as far as the environment collects it.
    #[serde(default)]
    pub personal: PersonalData,
    /// How its bytes arrive.
    #[serde(default)]
    pub source: RecordingSource,
    /// The length an upload declares it will have, if it knows it yet.
    #[serde(default)]
    pub upload_length: Option<u64>,
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

    /// With what is known of the person recording (only what the environment collects).
    #[must_use]
    pub fn with_personal(mut self, personal: PersonalData) -> Self {
        self.personal = personal;
        self
    }

    /// Puts it in `environment`.
    #[must_use]
    pub fn with_environment(mut self, environment: EnvironmentId) -> Self {
        self.environment = environment;
        self
    }

    /// An upload of a file of `length` bytes (`None`: told later).
    #[must_use]
    pub fn with_upload(mut self, length: Option<u64>) -> Self {
        self.source = RecordingSource::Upload;
        self.upload_length = length;
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
    /// it, and once every copy is gone only its [`Tombstone`] stays in the catalog.
    pub deleting: Option<Timestamp>,
    /// Why it is being deleted, with [`Recording::deleting`].
    pub deletion_reason: Option<DeletionReason>,
    /// What is known of the person who recorded it, as far as its environment collects
    /// it ([`crate::PersonalDataSettings`]); empty once anonymized.
    pub personal: PersonalData,
    /// When its personal data was erased because the environment keeps it only until
    /// the recording is copied ([`crate::PersonalDataSettings::forget_after_copy`]).
    pub anonymized: Option<Timestamp>,
    /// Its number: unique in the catalog and never given again, counting from 1, for the
    /// clients of the hosted Pipe whose video ids are numbers. 0 where a catalog has none.
    pub number: u64,
    /// How its bytes arrived.
    #[serde(default)]
    pub source: RecordingSource,
    /// For an upload, the length it declared (tus's `Upload-Length`), once declared.
    #[serde(default)]
    pub upload_length: Option<u64>,
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
            deletion_reason: None,
            personal: PersonalData::default(),
            anonymized: None,
            number: 0,
            source: RecordingSource::Recorder,
            upload_length: None,
        }
    }
}

/// Why a recording is deleted: kept in its [`Tombstone`], told in `video_deleted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeletionReason {
    /// Someone asked for it: a call of the API, a person on the dashboard.
    Request,
    /// Its environment's retention period ran out.
    Retention,
    /// Its client went away before sending a byte, and it was left `receiving` past the
    /// environment's abandonment time.
    Abandoned,
}

impl DeletionReason {
    /// The reason's name as stored and shown (`request`, `retention`, `abandoned`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Retention => "retention",
            Self::Abandoned => "abandoned",
        }
    }

    /// Parses a name produced by [`DeletionReason::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "request" => Self::Request,
            "retention" => Self::Retention,
            "abandoned" => Self::Abandoned,
            _ => return None,
        })
    }
}

/// What the catalog keeps of an erased recording, so that webhooks and audits about it
/// stay explainable: who it was (id, number, environment, when it began) and when and why
/// it was erased. Nothing the recording carried (payload, media, failure, files) stays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tombstone {
    /// The erased recording's id; never given to another recording.
    pub id: RecordingId,
    /// Its number ([`Recording::number`]); never given again either.
    pub number: u64,
    /// The environment it belonged to.
    pub environment: EnvironmentId,
    /// When it began ([`Recording::created`]).
    pub created: Timestamp,
    /// When its deletion was asked for.
    pub deletion_requested: Timestamp,
    /// When its erasure finished: every copy was gone and the catalog forgot the rest.
    pub erased: Timestamp,
    /// Why.
    pub reason: DeletionReason,
}

impl Tombstone {
    /// A tombstone with every field given (for catalogs and tests).
    pub fn new(
        id: RecordingId,
        environment: EnvironmentId,
        created: Timestamp,
        deletion_requested: Timestamp,
        erased: Timestamp,
        reason: DeletionReason,
    ) -> Self {
        Self {
            id,
            number: 0,
            environment,
            created,
            deletion_requested,
            erased,
            reason,
        }
    }

    /// Sets its number.
    #[must_use]
    pub fn with_number(mut self, number: u64) -> Self {
        self.number = number;
        self
    }
}

/// What is known of the person who recorded: each field only where the environment's
/// settings collect it ([`crate::PersonalDataSettings`]); `None` otherwise. Pipe's
/// webhook fields are `ip`, `ua`, `httpReferer`, `cam_name` and `mic_name`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PersonalData {
    /// The recorder's IP address, as the server saw the connection.
    pub ip: Option<String>,
    /// The browser's `User-Agent`.
    pub user_agent: Option<String>,
    /// The page the recorder was on (Pipe's `httpReferer`), as the recorder tells it.
    pub referer: Option<String>,
    /// The camera's name, as the browser tells the recorder.
    pub camera_name: Option<String>,
    /// The microphone's name, as the browser tells the recorder.
    pub microphone_name: Option<String>,
}

impl PersonalData {
    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Only what `settings` collect; the rest is dropped.
    #[must_use]
    pub fn allowed_by(self, settings: &crate::PersonalDataSettings) -> Self {
        let keep = |on: bool, value: Option<String>| value.filter(|_| on);
        Self {
            ip: keep(settings.ip, self.ip),
            user_agent: keep(settings.user_agent, self.user_agent),
            referer: keep(settings.referer, self.referer),
            camera_name: keep(settings.camera_name, self.camera_name),
            microphone_name: keep(settings.microphone_name, self.microphone_name),
        }
    }

    /// With the IP address.
    #[must_use]
    pub fn with_ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    /// With the user agent.
    #[must_use]
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// With the page the recorder was on.
    #[must_use]
    pub fn with_referer(mut self, referer: impl Into<String>) -> Self {
        self.referer = Some(referer.into());
        self
    }

    /// With the camera's name.
    #[must_use]
    pub fn with_camera_name(mut self, name: impl Into<String>) -> Self {
        self.camera_name = Some(name.into());
        self
    }

    /// With the microphone's name.
    #[must_use]
    pub fn with_microphone_name(mut self, name: impl Into<String>) -> Self {
        self.microphone_name = Some(name.into());
        self
    }
}
