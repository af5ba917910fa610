use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Event, RecordingId, SinkId, Timestamp};

/// A job's id in the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One step on a recording's way. Handlers run at least once, so each is idempotent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobKind {
    /// Probe the original; tell `video_recorded`; enqueue `convert`.
    Probe {
        /// Which recording.
        recording: RecordingId,
    },
    /// Make the MP4 and the snapshot; tell `video_converted`; enqueue a `copy` per sink.
    Convert {
        /// Which recording.
        recording: RecordingId,
    },
    /// Copy every artifact to one sink, verify, tell `video_copied_…`.
    Copy {
        /// Which recording.
        recording: RecordingId,
        /// Which sink.
        sink: SinkId,
    },
    /// Tell one event: one `deliver` job per endpoint subscribed to it (or, with a
    /// notifier that names no endpoints, one delivery to all of them).
    Notify {
        /// The event, with the id it keeps across attempts.
        event: Event,
    },
    /// Deliver one event to one endpoint, so that an endpoint that is down never delays
    /// another. Deliveries of one recording to one endpoint run in the order they were
    /// enqueued ([`JobKind::sequence`]).
    Deliver {
        /// The event, with the id it keeps across attempts.
        event: Event,
        /// The endpoint's id, as the notifier names it.
        endpoint: String,
    },
    /// Remove the spool entry and working files of a recording every sink holds.
    Cleanup {
        /// Which recording.
        recording: RecordingId,
    },
    /// Delete every stored copy of a recording being deleted, then the recording itself.
    Erase {
        /// Which recording.
        recording: RecordingId,
    },
}

impl JobKind {
    /// The kind's name (`probe`, `convert`, `copy`, `notify`, `deliver`, `cleanup`,
    /// `erase`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Probe { .. } => "probe",
            Self::Convert { .. } => "convert",
            Self::Copy { .. } => "copy",
            Self::Notify { .. } => "notify",
            Self::Deliver { .. } => "deliver",
            Self::Cleanup { .. } => "cleanup",
            Self::Erase { .. } => "erase",
        }
    }

    /// The recording the job is about.
    pub fn recording(&self) -> &RecordingId {
        match self {
            Self::Probe { recording }
            | Self::Convert { recording }
            | Self::Copy { recording, .. }
            | Self::Cleanup { recording }
            | Self::Erase { recording } => recording,
            Self::Notify { event } | Self::Deliver { event, .. } => &event.recording,
        }
    }

    /// Jobs with the same sequence run one after another, in the order they were
    /// enqueued: a catalog does not hand out a job while an older job of its sequence is
    /// queued or running (even one waiting for a retry). Events of one recording are told
    /// in order (`notify:<recording>`), and delivered to each endpoint in order
    /// (`deliver:<recording>:<endpoint>`), so `video_recorded` reaches a receiver before
    /// `video_converted` however often it had to be retried. Other kinds have none.
    pub fn sequence(&self) -> Option<String> {
        match self {
            Self::Notify { event } => Some(format!("notify:{}", event.recording)),
            Self::Deliver { event, endpoint } => {
                Some(format!("deliver:{}:{endpoint}", event.recording))
            }
            _ => None,
        }
    }

    /// The lane the job runs in, if any: a catalog does not hand out a job while another
    /// job of its lane is running (under a live lease). Deliveries to one endpoint share
    /// the lane `endpoint:<id>`, so an endpoint that hangs holds at most one worker,
    /// however many of its deliveries wait. Unlike a sequence, a lane orders nothing: a
    /// job waiting for a retry does not hold up the others. Other kinds have none.
    pub fn lane(&self) -> Option<String> {
        match self {
            Self::Deliver { endpoint, .. } => Some(format!("endpoint:{endpoint}")),
            _ => None,
        }
    }

    /// A key that is the same for the same logical step, so enqueueing it twice keeps
    /// one job (`convert:<id>`, `copy:<id>:<sink>`, `notify:<event id>`,
    /// `deliver:<event id>:<endpoint>`, …).
    pub fn dedupe_key(&self) -> String {
        match self {
            Self::Copy { recording, sink } => format!("copy:{recording}:{sink}"),
            Self::Notify { event } => format!("notify:{}", event.id),
            Self::Deliver { event, endpoint } => format!("deliver:{}:{endpoint}", event.id),
            other => format!("{}:{}", other.name(), other.recording()),
        }
    }
}

/// A job to enqueue as part of a [`crate::Change`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewJob {
    /// What to do.
    pub kind: JobKind,
    /// Not before this time; `None` means now.
    pub run_at: Option<Timestamp>,
    /// Attempts already made elsewhere (a delivery tried at once by the job that made
    /// this one): the first claim is attempt `attempts + 1`.
    #[serde(default)]
    pub attempts: u32,
    /// Why the attempts already made failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Enqueued dead: the attempts already made failed for good, and the job is kept
    /// only to be seen (and redelivered by hand).
    #[serde(default)]
    pub dead: bool,
}

impl NewJob {
    /// A job to run as soon as a worker is free.
    pub fn new(kind: JobKind) -> Self {
        Self {
            kind,
            run_at: None,
            attempts: 0,
            last_error: None,
            dead: false,
        }
    }

    /// A job whose first `attempts` attempts were made elsewhere and failed with `error`.
    #[must_use]
    pub fn after_failures(mut self, attempts: u32, error: impl Into<String>) -> Self {
        self.attempts = attempts;
        self.last_error = Some(error.into());
        self
    }

    /// Enqueued dead (see [`NewJob::dead`]).
    #[must_use]
    pub fn into_dead(mut self) -> Self {
        self.dead = true;
        self
    }

    /// Runs no earlier than `at`.
    #[must_use]
    pub fn at(mut self, at: Timestamp) -> Self {
        self.run_at = Some(at);
        self
    }
}

impl From<JobKind> for NewJob {
    fn from(kind: JobKind) -> Self {
        Self::new(kind)
    }
}

/// Proof that a worker holds a job until `expires`. Every call that finishes a job
/// presents it; a lease that expired and was claimed again is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLease {
    /// The job.
    pub job: JobId,
    /// Unique to this claim.
    pub token: String,
    /// When another worker may claim the job again.
    pub expires: Timestamp,
}

/// A claimed job.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// What to do.
    pub kind: JobKind,
    /// How many times it has been claimed, this claim included (1 on the first run).
    pub attempt: u32,
    /// The claim.
    pub lease: JobLease,
}

impl Job {
    /// A claimed job.
    pub fn new(id: JobId, kind: JobKind, attempt: u32, lease: JobLease) -> Self {
        Self {
            id,
            kind,
            attempt,
            lease,
        }
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for `run_at` and a worker.
    Queued,
    /// Claimed; its lease has not been returned.
    Running,
    /// Finished.
    Done,
    /// Given up after its last attempt; `last_error` says why.
    Dead,
}

impl JobStatus {
    /// The status as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "dead" => Self::Dead,
            _ => return None,
        })
    }
}

/// A job as the catalog keeps it, for inspection.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// What to do.
    pub kind: JobKind,
    /// Where it is.
    pub status: JobStatus,
    /// Claims so far.
    pub attempts: u32,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When it may run next.
    pub run_at: Timestamp,
}

impl JobRecord {
    /// A job record.
    pub fn new(
        id: JobId,
        kind: JobKind,
        status: JobStatus,
        attempts: u32,
        last_error: Option<String>,
        run_at: Timestamp,
    ) -> Self {
        Self {
            id,
            kind,
            status,
            attempts,
            last_error,
            run_at,
        }
    }
}
