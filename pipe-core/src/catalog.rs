use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    Artifact, Copy, DeletionReason, DeliveryAttempt, DeliveryFilter, EnvironmentId, Job, JobId,
    JobKind, JobLease, JobRecord, JobStatus, MediaInfo, NewJob, NewRecording, PersonalData,
    Recording, RecordingId, RecordingState, Result, Timestamp, Tombstone,
};

/// Recordings, their states and artifacts, and the durable jobs that move them on.
///
/// # Contract
///
/// - **Atomic changes.** [`Catalog::commit`] applies a whole [`Change`] in one
///   transaction or nothing of it: the state change, the artifacts and copies, the jobs it
///   enqueues and the job it completes. A crash at any instant leaves either all of it or
///   none. A failed precondition (state, version or lease) returns
///   [`crate::Error::Precondition`] and changes nothing.
/// - **Durability.** Once `commit`, `create_recording`, `retry_job` or `dead_letter_job`
///   returns `Ok`, the effect survives a crash of the process.
/// - **Jobs run at least once.** A job enqueued by a committed change is claimed by
///   [`Catalog::claim_job`] until a change completes it or it is dead-lettered. A claim
///   whose lease expired may be claimed again (with `attempt` one higher); the old lease is
///   then refused by every call that presents it. A worker keeps a long job by extending
///   its lease ([`Catalog::extend_lease`]) before it expires, so leases can be short and a
///   crashed worker's job is taken over quickly.
/// - **One job per step.** Enqueueing a job whose [`JobKind::dedupe_key`] is already in
///   the catalog (in any status) keeps the existing job and adds none.
/// - **Order.** Claims take due jobs (`run_at <= now`) oldest `run_at` first; there is no
///   other ordering promise between jobs.
/// - **Versions.** Every successful commit increments the recording's `version` by one.
/// - **Deletion.** A change with [`Change::delete`] marks the recording as being deleted
///   ([`Recording::deleting`]) and dead-letters its queued jobs, in the same transaction
///   as the jobs it enqueues (the erasure). From then on every other commit on the
///   recording is refused with `Precondition`, and no job of it but `erase` is claimed
///   (one re-queued by a retry is dead-lettered instead), so no step can add a copy
///   behind the erasure's back. [`Catalog::purge_recording`] finally removes its
///   artifacts, copies, jobs and delivery log and forgets everything it carried; only its
///   [`Tombstone`] stays. An erased recording is not found ([`Catalog::recording`],
///   [`Catalog::list_recordings`]); its id and number are never given again. The jobs
///   enqueued with the purge (`video_deleted`) run, and the changes that complete them
///   (and enqueue their deliveries and log their attempts, nothing else) are accepted.
#[async_trait]
pub trait Catalog: Send + Sync + Debug + 'static {
    /// Records a new recording in state `receiving`. `AlreadyExists` if the id is taken.
    async fn create_recording(&self, new: NewRecording) -> Result<Recording>;

    /// The recording with `id`, or `NotFound`.
    async fn recording(&self, id: &RecordingId) -> Result<Recording>;

    /// The recording numbered `number` ([`Recording::number`]): how code written for the
    /// hosted Pipe, whose video ids are numbers, names one. `NotFound` if none has it.
    async fn recording_by_number(&self, number: u64) -> Result<Recording>;

    /// Recordings matching `options`, newest first (see [`ListOptions`] for the order).
    async fn list_recordings(&self, options: ListOptions) -> Result<Vec<Recording>>;

    /// Applies `change` atomically and returns the recording as it is afterwards.
    async fn commit(&self, change: Change) -> Result<Recording>;

    /// The artifacts of a recording, in no particular order.
    async fn artifacts(&self, id: &RecordingId) -> Result<Vec<Artifact>>;

    /// The verified copies of a recording's artifacts, in no particular order.
    async fn copies(&self, id: &RecordingId) -> Result<Vec<Copy>>;

    /// Claims the oldest due job, or `None` when nothing is due.
    async fn claim_job(&self, options: ClaimOptions) -> Result<Option<Job>>;

    /// Returns a claimed job to the queue, to run again at `run_at`; records `error`.
    async fn retry_job(&self, lease: &JobLease, error: &str, run_at: Timestamp) -> Result<()>;

    /// Gives up on a claimed job for good; records `error` as the reason.
    async fn dead_letter_job(&self, lease: &JobLease, error: &str) -> Result<()>;

    /// Keeps a claimed job for `by` from now; returns the lease with its new expiry (the
    /// token stays). `Precondition` if the lease is no longer held.
    async fn extend_lease(&self, lease: &JobLease, by: Duration) -> Result<JobLease>;

    /// Jobs matching `filter`, oldest first.
    async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobRecord>>;

    /// Forgets a recording that is being deleted, in one transaction: its artifacts,
    /// copies, delivery log and every job (the one holding `lease` included) go, and of
    /// the recording only its [`Tombstone`] stays; `then` is enqueued (the `video_deleted`
    /// notification). The last step of its erasure, once every stored copy is gone.
    /// `Precondition` if the recording is not being deleted or the lease is not held;
    /// `NotFound` if there is no such recording (or it was erased already).
    async fn purge_recording(
        &self,
        id: &RecordingId,
        lease: &JobLease,
        then: Vec<NewJob>,
    ) -> Result<Tombstone>;

    /// What is kept of the erased recording `id`; `NotFound` if no recording of this id
    /// was erased (it never existed, or it is still there).
    async fn tombstone(&self, id: &RecordingId) -> Result<Tombstone>;

    /// Puts a finished job (done or dead) back in the queue, due at `at`, with its
    /// attempts counted from zero: a delivery an operator asks to make again. A job that
    /// is queued or running already is left as it is.
    ///
    /// # Errors
    ///
    /// `NotFound` if there is no such job.
    async fn requeue_job(&self, id: JobId, at: Timestamp) -> Result<()>;

    /// Adds one entry to the delivery log, on its own (a failed attempt; an accepted one
    /// goes in with the [`Change`] that completes its job, [`Change::log_attempt`]).
    async fn log_delivery_attempt(&self, attempt: DeliveryAttempt) -> Result<()>;

    /// Delivery log entries matching `filter`, oldest first. Purging a recording removes
    /// its entries: an endpoint's answer can hold personal data.
    async fn delivery_attempts(&self, filter: DeliveryFilter) -> Result<Vec<DeliveryAttempt>>;

    /// How many jobs there are of each kind in each status, and the earliest `run_at` of
    /// each group: what a metrics endpoint shows. The default reads every job through
    /// [`Catalog::jobs`]; a catalog that can count in place should.
    async fn job_stats(&self) -> Result<Vec<JobStats>> {
        let mut stats: Vec<JobStats> = Vec::new();
        for job in self.jobs(JobFilter::default()).await? {
            let kind = job.kind.name();
            match stats
                .iter_mut()
                .find(|s| s.kind == kind && s.status == job.status)
            {
                Some(s) => {
                    s.count += 1;
                    s.earliest_run_at = s.earliest_run_at.min(job.run_at);
                }
                None => stats.push(JobStats::new(kind, job.status, 1, job.run_at)),
            }
        }
        Ok(stats)
    }
}

/// Jobs of one kind in one status; see [`Catalog::job_stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobStats {
    /// The kind's name ([`JobKind::name`]).
    pub kind: String,
    /// The status.
    pub status: JobStatus,
    /// How many.
    pub count: u64,
    /// The earliest `run_at` among them: for queued jobs, how long the oldest has waited.
    pub earliest_run_at: Timestamp,
}

impl JobStats {
    /// A group of `count` jobs.
    pub fn new(
        kind: impl Into<String>,
        status: JobStatus,
        count: u64,
        earliest_run_at: Timestamp,
    ) -> Self {
        Self {
            kind: kind.into(),
            status,
            count,
            earliest_run_at,
        }
    }
}

/// One atomic change to a recording; see [`Catalog::commit`].
///
/// ```
/// use pipe_core::{Change, JobKind, RecordingId, RecordingState};
///
/// let id = RecordingId::generate();
/// let change = Change::new(id.clone())
///     .expect_state(RecordingState::Receiving)
///     .state(RecordingState::Recorded)
///     .length(1234)
///     .enqueue(JobKind::Probe { recording: id });
/// assert_eq!(change.enqueue.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Change {
    /// The recording to change.
    pub recording: RecordingId,
    /// Precondition: the recording is in one of these states (empty: any state).
    pub expect_states: Vec<RecordingState>,
    /// Precondition: the recording's version is this one.
    pub expect_version: Option<i64>,
    /// The new state.
    pub state: Option<RecordingState>,
    /// The original's length in bytes.
    pub length: Option<u64>,
    /// The length an upload declares, where it had not yet (set once: a catalog keeps
    /// the first).
    pub upload_length: Option<u64>,
    /// What the probe found.
    pub media: Option<MediaInfo>,
    /// Why the recording failed.
    pub failure: Option<String>,
    /// Artifacts to record (replacing any of the same kind).
    pub artifacts: Vec<Artifact>,
    /// Verified copies to record (replacing any of the same kind and sink).
    pub copies: Vec<Copy>,
    /// Jobs to enqueue.
    pub enqueue: Vec<NewJob>,
    /// The claimed job this change completes; refused if the lease is no longer held.
    pub complete: Option<JobLease>,
    /// Marks the recording as being deleted, for this reason, and dead-letters its queued
    /// jobs.
    pub delete: Option<DeletionReason>,
    /// Delivery log entries to add.
    pub attempts: Vec<DeliveryAttempt>,
    /// Personal data to record: each field given replaces what is known.
    pub personal: Option<PersonalData>,
    /// Erases the recording's personal data and records when ([`Recording::anonymized`]).
    pub anonymize: bool,
}

impl Change {
    /// A change to `recording` that changes nothing yet.
    pub fn new(recording: RecordingId) -> Self {
        Self {
            recording,
            expect_states: Vec::new(),
            expect_version: None,
            state: None,
            length: None,
            upload_length: None,
            media: None,
            failure: None,
            artifacts: Vec::new(),
            copies: Vec::new(),
            enqueue: Vec::new(),
            complete: None,
            delete: None,
            attempts: Vec::new(),
            personal: None,
            anonymize: false,
        }
    }

    /// Requires the recording to be in `state` (adds to the allowed states).
    #[must_use]
    pub fn expect_state(mut self, state: RecordingState) -> Self {
        self.expect_states.push(state);
        self
    }

    /// Requires the recording's version to be `version`.
    #[must_use]
    pub fn expect_version(mut self, version: i64) -> Self {
        self.expect_version = Some(version);
        self
    }

    /// Moves the recording to `state`.
    #[must_use]
    pub fn state(mut self, state: RecordingState) -> Self {
        self.state = Some(state);
        self
    }

    /// Records the original's length.
    #[must_use]
    pub fn length(mut self, length: u64) -> Self {
        self.length = Some(length);
        self
    }

    /// Records the length an upload declares, if it has none yet.
    #[must_use]
    pub fn upload_length(mut self, length: u64) -> Self {
        self.upload_length = Some(length);
        self
    }

    /// Records what the probe found.
    #[must_use]
    pub fn media(mut self, media: MediaInfo) -> Self {
        self.media = Some(media);
        self
    }

    /// Moves the recording to `failed` with `reason`.
    #[must_use]
    pub fn fail(mut self, reason: impl Into<String>) -> Self {
        self.state = Some(RecordingState::Failed);
        self.failure = Some(reason.into());
        self
    }

    /// Records an artifact.
    #[must_use]
    pub fn artifact(mut self, artifact: Artifact) -> Self {
        self.artifacts.push(artifact);
        self
    }

    /// Records a verified copy.
    #[must_use]
    pub fn copy(mut self, copy: Copy) -> Self {
        self.copies.push(copy);
        self
    }

    /// Enqueues a job.
    #[must_use]
    pub fn enqueue(mut self, job: impl Into<NewJob>) -> Self {
        self.enqueue.push(job.into());
        self
    }

    /// Marks the recording as being deleted because of `reason` (see the contract of
    /// [`Catalog`]); enqueue its erasure in the same change.
    #[must_use]
    pub fn delete(mut self, reason: DeletionReason) -> Self {
        self.delete = Some(reason);
        self
    }

    /// Whether the change only completes a job, enqueues webhook jobs (`notify`,
    /// `deliver`) and logs delivery attempts: the only changes an erased recording takes,
    /// so that its `video_deleted` is told.
    pub fn only_tells(&self) -> bool {
        self.state.is_none()
            && self.length.is_none()
            && self.upload_length.is_none()
            && self.media.is_none()
            && self.failure.is_none()
            && self.artifacts.is_empty()
            && self.copies.is_empty()
            && self.delete.is_none()
            && self.personal.is_none()
            && !self.anonymize
            && self.enqueue.iter().all(|job| {
                matches!(
                    job.kind,
                    crate::JobKind::Notify { .. } | crate::JobKind::Deliver { .. }
                )
            })
    }

    /// Records personal data: each field given replaces what is known.
    #[must_use]
    pub fn personal(mut self, personal: PersonalData) -> Self {
        self.personal = Some(personal);
        self
    }

    /// Erases the recording's personal data, and records when.
    #[must_use]
    pub fn anonymize(mut self) -> Self {
        self.anonymize = true;
        self
    }

    /// Completes the claimed job holding `lease`.
    #[must_use]
    pub fn complete(mut self, lease: JobLease) -> Self {
        self.complete = Some(lease);
        self
    }

    /// Adds an entry to the delivery log with this change.
    #[must_use]
    pub fn log_attempt(mut self, attempt: DeliveryAttempt) -> Self {
        self.attempts.push(attempt);
        self
    }
}

/// Options of [`Catalog::list_recordings`]. The order is stable: newest `created` first,
/// and by id (descending) among recordings created in the same millisecond, so a
/// [`RecordingCursor`] taken from the last recording of a page continues exactly after it.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ListOptions {
    /// Only recordings in this state.
    pub state: Option<RecordingState>,
    /// Only recordings of these environments (empty: every environment).
    pub environments: Vec<EnvironmentId>,
    /// Only recordings created at or after this time.
    pub created_from: Option<Timestamp>,
    /// Only recordings created before this time.
    pub created_until: Option<Timestamp>,
    /// Only recordings after this one in the order (the next page).
    pub after: Option<RecordingCursor>,
    /// At most this many (default 100).
    pub limit: Option<u32>,
    /// Only recordings being deleted (`true`) or not (`false`).
    pub deleting: Option<bool>,
}

/// A place in the order of [`Catalog::list_recordings`]: the `created` time and id of the
/// last recording seen.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordingCursor {
    /// The last recording's creation time.
    pub created: Timestamp,
    /// The last recording's id.
    pub id: RecordingId,
}

impl RecordingCursor {
    /// The cursor just after `recording`.
    pub fn after(recording: &Recording) -> Self {
        Self {
            created: recording.created,
            id: recording.id.clone(),
        }
    }

    /// A cursor at `created` and `id`.
    pub fn new(created: Timestamp, id: RecordingId) -> Self {
        Self { created, id }
    }
}

impl ListOptions {
    /// Only recordings of `environment` (adds to the environments listed).
    #[must_use]
    pub fn with_environment(mut self, environment: EnvironmentId) -> Self {
        self.environments.push(environment);
        self
    }

    /// Only recordings created in `from..until` (either end open when `None`).
    #[must_use]
    pub fn with_created(mut self, from: Option<Timestamp>, until: Option<Timestamp>) -> Self {
        self.created_from = from;
        self.created_until = until;
        self
    }

    /// Continues after `cursor`.
    #[must_use]
    pub fn with_after(mut self, cursor: RecordingCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Only recordings in `state`.
    #[must_use]
    pub fn with_state(mut self, state: RecordingState) -> Self {
        self.state = Some(state);
        self
    }

    /// At most `limit` recordings.
    #[must_use]
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Only recordings being deleted (`true`), or only the others (`false`).
    #[must_use]
    pub fn with_deleting(mut self, deleting: bool) -> Self {
        self.deleting = Some(deleting);
        self
    }
}

/// Options of [`Catalog::claim_job`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClaimOptions {
    /// How long the claim holds before another worker may take the job.
    pub lease: Duration,
    /// The time to claim at (jobs with `run_at` after it are not due). Defaults to now.
    pub now: Option<Timestamp>,
}

impl Default for ClaimOptions {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(300),
            now: None,
        }
    }
}

impl ClaimOptions {
    /// Holds the claim for `lease`.
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Claims as if the time were `now`.
    #[must_use]
    pub fn at(mut self, now: Timestamp) -> Self {
        self.now = Some(now);
        self
    }
}

/// Options of [`Catalog::jobs`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct JobFilter {
    /// Only jobs about this recording.
    pub recording: Option<RecordingId>,
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
}

impl JobFilter {
    /// Only jobs about `recording`.
    #[must_use]
    pub fn recording(mut self, recording: RecordingId) -> Self {
        self.recording = Some(recording);
        self
    }

    /// Only jobs in `status`.
    #[must_use]
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Whether `kind` with `status` passes the filter.
    pub fn matches(&self, kind: &JobKind, status: JobStatus) -> bool {
        self.recording
            .as_ref()
            .is_none_or(|r| r == kind.recording())
            && self.status.is_none_or(|s| s == status)
    }
}
