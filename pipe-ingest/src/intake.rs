//! The rules of a recording as it arrives, whatever carries its bytes: admitting a client
//! of an environment from an origin, starting a recording, resuming one with its token,
//! appending at an offset (acknowledging only what is durable), taking what the recorder
//! tells of the person recording, and finishing, idempotently. The WebSocket protocol
//! (`session.rs`) is one thin adapter over it; an upload protocol is another.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pipe_core::{
    Catalog, Change, EnvironmentId, EnvironmentStore, Error, HostAllowList, JobKind, NewRecording,
    PersonalData, PersonalDataSettings, RecordingId, RecordingSource, RecordingState, Spool,
    Timestamp,
};
use pipe_http::TokenSigner;

/// The domain of resume tokens (see [`TokenSigner`]).
const RESUME_DOMAIN: &str = "pipe.stream.v1 resume";

/// The longest `mimeType` a client may declare.
const MAX_MIME_TYPE: usize = 255;
/// The largest operator's payload.
const MAX_PAYLOAD: usize = 8 << 10;
/// The largest field a recorder tells of the person recording.
const MAX_DESCRIBED: usize = 1024;

pub(crate) type FinishHook = Arc<dyn Fn(&RecordingId) + Send + Sync>;

/// Why the intake refused: each transport answers it in its own words (a close code, an
/// HTTP status), and every one of them means the same to the client.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntakeError {
    /// The client broke a rule: `detail` says which.
    #[error("{detail}")]
    Invalid {
        /// The field or header that was wrong, in the client's terms.
        field: &'static str,
        /// What was wrong, for people.
        detail: String,
    },
    /// The environment named does not exist.
    #[error("environment {0} does not exist")]
    UnknownEnvironment(String),
    /// The client's origin is not among the environment's allowed hosts.
    #[error("this origin is not among the allowed hosts of environment {0}")]
    OriginNotAllowed(EnvironmentId),
    /// No such recording (or not one of this environment's).
    #[error("unknown recording")]
    UnknownRecording,
    /// The resume token is not the recording's.
    #[error("bad resume token")]
    BadToken,
    /// Bytes at an offset past what is durable: send from `durable`.
    #[error("gap: expected offset <= {durable}")]
    Gap {
        /// The durable length.
        durable: u64,
    },
    /// Bytes at an offset other than the durable length, where the transport demands it.
    #[error("offset mismatch: durable {durable}")]
    OffsetMismatch {
        /// The durable length.
        durable: u64,
    },
    /// The recording is finished; nothing more can be added.
    #[error("recording already finished")]
    Finished,
    /// The upload was not finished in time: it is no more.
    #[error("the upload expired unfinished")]
    Gone,
    /// `finish` with a length that is not the durable one.
    #[error("length mismatch: durable {durable}")]
    LengthMismatch {
        /// The durable length.
        durable: u64,
    },
    /// The recording would grow past its environment's limit.
    #[error("recording too large")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The catalog or the spool failed; try again (the failure itself is logged).
    #[error("storage unavailable")]
    Unavailable,
    /// The environment's stored settings do not make sense (logged).
    #[error("the environment's settings are broken")]
    Broken,
}

impl IntakeError {
    fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            detail: detail.into(),
        }
    }
}

/// Logs a storage failure of `recording` and says `Unavailable`.
fn storage_failed(recording: Option<&RecordingId>, e: &Error) -> IntakeError {
    tracing::error!(
        recording = recording.map(RecordingId::as_str),
        error = %e,
        "storage failed while a recording arrived"
    );
    IntakeError::Unavailable
}

/// What a client of an environment may do, decided when it arrives.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Admission {
    /// The environment new recordings go to, and resumed ones must belong to.
    pub environment: EnvironmentId,
    /// The largest recording in bytes.
    pub max_recording_bytes: u64,
    /// Whether the recorder may play its recording back.
    pub client_playback: bool,
    /// The longest recording the recorder is told to make, in seconds.
    pub max_recording_secs: Option<u32>,
    /// What the environment collects of the person recording.
    pub collect: PersonalDataSettings,
    /// What the server read of the connection itself (IP address, user agent), already
    /// limited to what the environment collects.
    pub seen: PersonalData,
    /// How long an unfinished recording of the environment lives after it began: then
    /// the sweep finishes a stream with what arrived, and deletes an incomplete upload.
    pub abandoned_after: Duration,
}

/// What a client starts a recording with.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct NewUpload {
    /// The MIME type the client says its bytes are (at most 255 printable ASCII
    /// characters; never trusted for serving: the pipeline maps it).
    pub mime_type: Option<String>,
    /// The operator's string, echoed in every webhook (at most 8 KiB).
    pub payload: Option<String>,
    /// Whether it is an upload of a file, with the length the client declared if it knew
    /// it (`Some(None)`: told later), rather than a recording streamed as it is made.
    pub upload: Option<Option<u64>>,
}

impl NewUpload {
    /// A recording of `mime_type`.
    #[must_use]
    pub fn with_mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// With the operator's `payload`.
    #[must_use]
    pub fn with_payload(mut self, payload: impl Into<String>) -> Self {
        self.payload = Some(payload.into());
        self
    }

    /// An upload of a file of `length` bytes (`None`: the client tells it later).
    #[must_use]
    pub fn upload_of(mut self, length: Option<u64>) -> Self {
        self.upload = Some(length);
        self
    }
}

/// A recording a client is adding to, as the intake last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    id: RecordingId,
    len: u64,
    finished: bool,
    source: RecordingSource,
    declared: Option<u64>,
    created: Timestamp,
    mime_type: Option<String>,
    payload: Option<String>,
}

impl Upload {
    /// The recording.
    pub fn id(&self) -> &RecordingId {
        &self.id
    }

    /// Its durable length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing of it is durable yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it is finished.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether it is an upload of a file rather than a recording streamed as it is made.
    pub fn is_upload(&self) -> bool {
        self.source == RecordingSource::Upload
    }

    /// The length an upload declared, once it did.
    pub fn declared_len(&self) -> Option<u64> {
        self.declared
    }

    /// When it began.
    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// The MIME type its client declared.
    pub fn mime_type(&self) -> Option<&str> {
        self.mime_type.as_deref()
    }

    /// The operator's payload.
    pub fn payload(&self) -> Option<&str> {
        self.payload.as_deref()
    }

    /// When it expires unfinished, under `admission`'s environment (see
    /// [`Admission::abandoned_after`]).
    pub fn expires(&self, admission: &Admission) -> Timestamp {
        self.created.plus(admission.abandoned_after)
    }

    fn of(record: &pipe_core::Recording, len: u64, finished: bool) -> Self {
        Self {
            id: record.id.clone(),
            len,
            finished,
            source: record.source,
            declared: record.upload_length,
            created: record.created,
            mime_type: record.mime_type.clone(),
            payload: record.payload.clone(),
        }
    }
}

/// Where an append must land.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// Anywhere up to the durable length: bytes already durable are skipped (a client
    /// that resends what it could not see acknowledged), bytes past it are a gap. The
    /// streaming protocol's rule.
    UpToDurable,
    /// Exactly at the durable length (tus's rule: 409 otherwise).
    AtDurable,
}

/// The rules of a recording as it arrives (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Arc<dyn Catalog>,
    spool: Arc<dyn Spool>,
    environments: Option<Arc<dyn EnvironmentStore>>,
    tokens: TokenSigner,
    allowed_hosts: HostAllowList,
    max_recording_bytes: u64,
    on_finish: Option<FinishHook>,
}

impl fmt::Debug for Intake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake")
            .field("catalog", &self.inner.catalog)
            .field("spool", &self.inner.spool)
            .field("allowed_hosts", &self.inner.allowed_hosts)
            .field("max_recording_bytes", &self.inner.max_recording_bytes)
            .finish_non_exhaustive()
    }
}

impl Intake {
    pub(crate) fn new(
        catalog: Arc<dyn Catalog>,
        spool: Arc<dyn Spool>,
        environments: Option<Arc<dyn EnvironmentStore>>,
        tokens: TokenSigner,
        (allowed_hosts, max_recording_bytes): (HostAllowList, u64),
        on_finish: Option<FinishHook>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                catalog,
                spool,
                environments,
                tokens,
                allowed_hosts,
                max_recording_bytes,
                on_finish,
            }),
        }
    }

    pub(crate) fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.inner.catalog
    }

    /// The resume token of `id`: base64url(HMAC-SHA256(secret, "pipe.stream.v1 resume " ‖
    /// id)), a [`TokenSigner`] token. It is the capability of the recorder that made the
    /// recording: to resume it, and to ask for its playback.
    pub fn resume_token(&self, id: &RecordingId) -> String {
        self.inner.tokens.sign(RESUME_DOMAIN, &[id.as_str()])
    }

    /// Checks `token` for `id` in constant time.
    pub fn check_resume_token(&self, id: &RecordingId, token: &str) -> bool {
        self.inner
            .tokens
            .verify(RESUME_DOMAIN, &[id.as_str()], token)
    }

    /// Decides whether a client naming `environment` (the default one if `None`) from
    /// `origin` may record, and under which limits, as the environment is now.
    pub async fn admit(
        &self,
        environment: Option<&str>,
        origin: &str,
    ) -> Result<Admission, IntakeError> {
        let inner = &self.inner;
        let environment = match environment {
            None => EnvironmentId::default(),
            Some(id) => id.parse().map_err(|_| {
                IntakeError::invalid(
                    "environment",
                    "an environment id: 1 to 64 characters of a-z, 0-9, '_' and '-'",
                )
            })?,
        };
        let unknown = || IntakeError::UnknownEnvironment(environment.to_string());
        let mut admission = Admission {
            environment: environment.clone(),
            max_recording_bytes: inner.max_recording_bytes,
            client_playback: true,
            max_recording_secs: None,
            collect: PersonalDataSettings::default(),
            seen: PersonalData::default(),
            abandoned_after: hours(pipe_core::EnvironmentSettings::default().abandoned_after_hours),
        };
        let hosts = match &inner.environments {
            None if environment.as_str() == EnvironmentId::DEFAULT => inner.allowed_hosts.clone(),
            None => return Err(unknown()),
            Some(store) => {
                let env = match store.environment(&environment).await {
                    Ok(env) => env,
                    Err(e) if e.is_not_found() => return Err(unknown()),
                    Err(e) => return Err(storage_failed(None, &e)),
                };
                let settings = env.settings;
                if let Some(max) = settings.max_recording_bytes {
                    admission.max_recording_bytes = max.min(inner.max_recording_bytes);
                }
                admission.client_playback = settings.client_playback;
                admission.max_recording_secs = settings.max_recording_secs;
                admission.collect = settings.personal_data;
                admission.abandoned_after = hours(settings.abandoned_after_hours);
                settings.host_allow_list().map_err(|e| {
                    tracing::error!(%environment, error = %e, "stored allowed hosts do not parse");
                    IntakeError::Broken
                })?
            }
        };
        if !hosts.allows_origin(origin) {
            tracing::info!(
                ?origin,
                %environment,
                "refused a recording from an origin that is not allowed"
            );
            return Err(IntakeError::OriginNotAllowed(environment));
        }
        Ok(admission)
    }

    /// Starts a recording in `admission`'s environment, with the personal data the
    /// server saw where the environment collects it.
    pub async fn start(
        &self,
        admission: &Admission,
        upload: NewUpload,
    ) -> Result<Upload, IntakeError> {
        let inner = &self.inner;
        let mut new = NewRecording::new()
            .with_environment(admission.environment.clone())
            .with_personal(admission.seen.clone());
        if let Some(mime) = upload.mime_type {
            if mime.len() > MAX_MIME_TYPE || !mime.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(IntakeError::invalid(
                    "mimeType",
                    "mimeType is at most 255 printable ASCII characters",
                ));
            }
            new = new.with_mime_type(mime);
        }
        if let Some(payload) = upload.payload {
            if payload.len() > MAX_PAYLOAD {
                return Err(IntakeError::invalid("payload", "payload is at most 8 KiB"));
            }
            new = new.with_payload(payload);
        }
        if let Some(length) = upload.upload {
            if length.is_some_and(|l| l > admission.max_recording_bytes) {
                return Err(IntakeError::TooLarge {
                    limit: admission.max_recording_bytes,
                });
            }
            new = new.with_upload(length);
        }
        let recording = inner
            .catalog
            .create_recording(new)
            .await
            .map_err(|e| storage_failed(None, &e))?;
        let id = &recording.id;
        inner
            .spool
            .create(id)
            .await
            .map_err(|e| storage_failed(Some(id), &e))?;
        tracing::info!(recording = %id, upload = upload.upload.is_some(), "recording started");
        Ok(Upload::of(&recording, 0, false))
    }

    /// Takes up `recording` again, if `token` is its resume token and it is one of
    /// `admission`'s environment: at its durable length, or finished.
    pub async fn resume(
        &self,
        admission: &Admission,
        recording: &str,
        token: &str,
    ) -> Result<Upload, IntakeError> {
        let inner = &self.inner;
        let id: RecordingId = recording
            .parse()
            .map_err(|_| IntakeError::UnknownRecording)?;
        if !self.check_resume_token(&id, token) {
            return Err(IntakeError::BadToken);
        }
        let record = match inner.catalog.recording(&id).await {
            Ok(record) => record,
            Err(e) if e.is_not_found() => return Err(IntakeError::UnknownRecording),
            Err(e) => return Err(storage_failed(Some(&id), &e)),
        };
        // Not this environment's recording, or an upload (which only its own protocol
        // adds to): as unknown as one that does not exist.
        if record.environment != admission.environment || record.source != RecordingSource::Recorder
        {
            return Err(IntakeError::UnknownRecording);
        }
        let upload = self.take_up(&record).await?;
        tracing::info!(
            recording = %id,
            offset = upload.len,
            finished = upload.finished,
            "recording resumed"
        );
        Ok(upload)
    }

    /// Opens the upload `recording` for a client holding its `token` (its resume token),
    /// from `origin`: admitted by the upload's own environment, so an upload's address
    /// works only where it was made. `UnknownRecording` once it is being deleted, `Gone`
    /// once it expired unfinished (see [`Upload::expires`]).
    pub async fn reopen(
        &self,
        recording: &str,
        token: &str,
        origin: &str,
    ) -> Result<(Admission, Upload), IntakeError> {
        let id: RecordingId = recording
            .parse()
            .map_err(|_| IntakeError::UnknownRecording)?;
        if !self.check_resume_token(&id, token) {
            return Err(IntakeError::BadToken);
        }
        let record = match self.inner.catalog.recording(&id).await {
            Ok(record) => record,
            Err(e) if e.is_not_found() => return Err(IntakeError::UnknownRecording),
            Err(e) => return Err(storage_failed(Some(&id), &e)),
        };
        if record.source != RecordingSource::Upload {
            return Err(IntakeError::UnknownRecording);
        }
        let admission = self
            .admit(Some(record.environment.as_str()), origin)
            .await?;
        let upload = self.take_up(&record).await?;
        if !upload.finished && Timestamp::now() > upload.expires(&admission) {
            return Err(IntakeError::Gone);
        }
        Ok((admission, upload))
    }

    /// `record` as a client takes it up: at its durable length, or finished.
    async fn take_up(&self, record: &pipe_core::Recording) -> Result<Upload, IntakeError> {
        let id = &record.id;
        // Being deleted (terminated, say): as unknown as one that is no more.
        if record.deleting.is_some() {
            return Err(IntakeError::UnknownRecording);
        }
        if record.state != RecordingState::Receiving {
            return Ok(Upload::of(record, record.length.unwrap_or(0), true));
        }
        match self.inner.spool.stat(id).await {
            Ok(entry) => Ok(Upload::of(record, entry.len, false)),
            Err(e) if e.is_not_found() => Err(IntakeError::UnknownRecording),
            Err(e) => Err(storage_failed(Some(id), &e)),
        }
    }

    /// Records the length an upload declared after it began (tus's deferred length):
    /// at least what is durable, at most the environment's limit, and never another one
    /// than it declared before.
    pub async fn declare_len(
        &self,
        admission: &Admission,
        upload: &mut Upload,
        length: u64,
    ) -> Result<(), IntakeError> {
        let fixed = |declared: u64| {
            IntakeError::invalid(
                "Upload-Length",
                format!("the upload's length is {declared}; it cannot change"),
            )
        };
        match upload.declared {
            Some(declared) if declared == length => return Ok(()),
            Some(declared) => return Err(fixed(declared)),
            None => {}
        }
        if length < upload.len {
            return Err(IntakeError::invalid(
                "Upload-Length",
                format!("{} bytes of the upload have arrived already", upload.len),
            ));
        }
        if length > admission.max_recording_bytes {
            return Err(IntakeError::TooLarge {
                limit: admission.max_recording_bytes,
            });
        }
        let change = Change::new(upload.id.clone())
            .expect_state(RecordingState::Receiving)
            .upload_length(length);
        let record = match self.inner.catalog.commit(change).await {
            Ok(record) => record,
            Err(e) if e.is_precondition() => return Err(IntakeError::Finished),
            Err(e) => return Err(storage_failed(Some(&upload.id), &e)),
        };
        // Another request of this client may have declared first: its length stays.
        upload.declared = record.upload_length;
        match upload.declared {
            Some(declared) if declared != length => Err(fixed(declared)),
            _ => Ok(()),
        }
    }

    /// Appends `data`, which starts at `offset` of the recording, where `placement`
    /// allows; returns the durable length once the bytes are durable. Bytes already
    /// durable are skipped, not written again.
    pub async fn append(
        &self,
        admission: &Admission,
        upload: &mut Upload,
        offset: u64,
        data: Bytes,
        placement: Placement,
    ) -> Result<u64, IntakeError> {
        let inner = &self.inner;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| IntakeError::invalid("offset", "offset overflows"))?;
        match placement {
            Placement::AtDurable if offset != upload.len => {
                return Err(IntakeError::OffsetMismatch {
                    durable: upload.len,
                });
            }
            _ if offset > upload.len => {
                return Err(IntakeError::Gap {
                    durable: upload.len,
                });
            }
            _ => {}
        }
        if end <= upload.len {
            return Ok(upload.len);
        }
        if upload.finished {
            return Err(IntakeError::Finished);
        }
        if end > admission.max_recording_bytes {
            return Err(IntakeError::TooLarge {
                limit: admission.max_recording_bytes,
            });
        }
        if let Some(declared) = upload.declared
            && end > declared
        {
            return Err(IntakeError::invalid(
                "Upload-Length",
                format!("the upload's length is {declared}: these bytes go past it"),
            ));
        }
        let started = std::time::Instant::now();
        let before = upload.len;
        upload.len = match inner.spool.append(&upload.id, offset, data).await {
            Ok(len) => len,
            // Sealed, or shorter than this client believed (another connection's append
            // failed after this one resumed): say which.
            Err(Error::Precondition { .. }) => {
                return Err(match inner.spool.stat(&upload.id).await {
                    Ok(entry) if entry.sealed => IntakeError::Finished,
                    Ok(entry) => IntakeError::Gap { durable: entry.len },
                    Err(e) => storage_failed(Some(&upload.id), &e),
                });
            }
            Err(e) => return Err(storage_failed(Some(&upload.id), &e)),
        };
        crate::metrics::chunk_durable(upload.len.saturating_sub(before), started.elapsed());
        Ok(upload.len)
    }

    /// Keeps what the recorder tells of the person recording, as far as the environment
    /// collects it (a field it does not collect is dropped unread). Each field is at most
    /// 1 KiB without control characters.
    pub async fn describe(
        &self,
        admission: &Admission,
        upload: &Upload,
        told: PersonalData,
    ) -> Result<(), IntakeError> {
        for (value, name) in [
            (&told.camera_name, "cameraName"),
            (&told.microphone_name, "microphoneName"),
            (&told.referer, "page"),
        ] {
            if let Some(v) = value
                && (v.len() > MAX_DESCRIBED || v.chars().any(char::is_control))
            {
                return Err(IntakeError::invalid(
                    name,
                    format!("{name} is at most 1 KiB, without control characters"),
                ));
            }
        }
        let told = told.allowed_by(&admission.collect);
        if told.is_empty() {
            return Ok(());
        }
        let change = Change::new(upload.id.clone())
            .expect_state(RecordingState::Receiving)
            .personal(told);
        match self.inner.catalog.commit(change).await {
            Ok(_) => Ok(()),
            // Finished meanwhile (or deleted): what it says is of no use any more.
            Err(e) if e.is_precondition() => Ok(()),
            Err(e) => Err(storage_failed(Some(&upload.id), &e)),
        }
    }

    /// Deletes an unfinished upload at its client's request (tus's termination): its
    /// erasure is the API's, a durable job. `Finished` once it is finished: then it is
    /// the operator's recording, deleted through the API.
    pub async fn terminate(&self, upload: &Upload) -> Result<(), IntakeError> {
        if upload.finished {
            return Err(IntakeError::Finished);
        }
        let id = upload.id.clone();
        let change = Change::new(id.clone())
            .expect_state(RecordingState::Receiving)
            .delete(pipe_core::DeletionReason::Request)
            .enqueue(JobKind::Erase {
                recording: id.clone(),
            });
        match self.inner.catalog.commit(change).await {
            Ok(_) => {
                tracing::info!(recording = %id, "upload terminated by its client");
                Ok(())
            }
            Err(e) if e.is_precondition() => match self.inner.catalog.recording(&id).await {
                Ok(r) if r.deleting.is_some() => Ok(()),
                Ok(_) => Err(IntakeError::Finished),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(storage_failed(Some(&id), &e)),
            },
            Err(e) => Err(storage_failed(Some(&id), &e)),
        }
    }

    /// Finishes the recording at `length`, which must be its durable length: seals it
    /// and, in one transaction, makes it `recorded` with its `probe` job. Finishing a
    /// finished recording at its length again succeeds.
    pub async fn finish(&self, upload: &mut Upload, length: u64) -> Result<(), IntakeError> {
        let inner = &self.inner;
        if upload.finished {
            return match length == upload.len {
                true => Ok(()),
                false => Err(IntakeError::Finished),
            };
        }
        if length != upload.len {
            return Err(IntakeError::LengthMismatch {
                durable: upload.len,
            });
        }
        let id = upload.id.clone();
        inner
            .spool
            .seal(&id)
            .await
            .map_err(|e| storage_failed(Some(&id), &e))?;
        let change = Change::new(id.clone())
            .expect_state(RecordingState::Receiving)
            .state(RecordingState::Recorded)
            .length(length)
            .enqueue(JobKind::Probe {
                recording: id.clone(),
            });
        match inner.catalog.commit(change).await {
            Ok(_) => {
                tracing::info!(recording = %id, length, "recording finished");
                if let Some(hook) = &inner.on_finish {
                    hook(&id);
                }
            }
            // Finished before, by this client on an earlier connection: say so again.
            Err(e) if e.is_precondition() => match inner.catalog.recording(&id).await {
                Ok(r) if r.length == Some(length) => {}
                Ok(_) => return Err(IntakeError::Finished),
                Err(e) => return Err(storage_failed(Some(&id), &e)),
            },
            Err(e) => return Err(storage_failed(Some(&id), &e)),
        }
        upload.finished = true;
        Ok(())
    }
}

fn hours(hours: u32) -> Duration {
    Duration::from_secs(u64::from(hours) * 3600)
}
