//! What a [`super::Pipeline`] is made of.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pipe_core::{
    Catalog, EnvironmentStore, KeyLayout, NamedSink, Notifier, SinkDirectory, SinkId, SinkSet,
    Spool, StaticSinks, StorageSink, TranscodeOptions, Transcoder, UrlOptions,
};

use crate::RetryPolicy;

/// The parts and settings of a [`super::Pipeline`].
///
/// ```no_run
/// # fn parts() -> (std::sync::Arc<dyn pipe_core::Catalog>, std::sync::Arc<dyn pipe_core::Spool>,
/// #   std::sync::Arc<dyn pipe_core::Transcoder>, std::sync::Arc<dyn pipe_core::Notifier>,
/// #   std::sync::Arc<dyn pipe_core::StorageSink>) { unimplemented!() }
/// use std::time::Duration;
/// use pipe_core::SinkId;
/// use pipe_lifecycle::{PipelineConfig, RetryPolicy};
///
/// let (catalog, spool, transcoder, notifier, own_storage) = parts();
/// let config = PipelineConfig::new(catalog, spool, transcoder, notifier, "/var/lib/pipe/work")
///     .with_sink(SinkId::new("own"), own_storage)
///     .with_workers(4)
///     .with_retry_policy(RetryPolicy::default().with_notify_max_attempts(20));
/// ```
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub(super) catalog: Arc<dyn Catalog>,
    pub(super) spool: Arc<dyn Spool>,
    pub(super) transcoder: Arc<dyn Transcoder>,
    pub(super) notifier: Arc<dyn Notifier>,
    pub(super) sinks: SinkSet,
    pub(super) directory: Option<Arc<dyn SinkDirectory>>,
    pub(super) work_dir: PathBuf,
    pub(super) transcode: TranscodeOptions,
    pub(super) retry: RetryPolicy,
    pub(super) workers: usize,
    pub(super) webhook_jobs: usize,
    pub(super) poll_interval: Duration,
    pub(super) first_attempt: Duration,
    pub(super) lease: Duration,
    pub(super) links: UrlOptions,
    pub(super) staging: Option<Arc<dyn StorageSink>>,
    pub(super) environments: Option<Arc<dyn EnvironmentStore>>,
    pub(super) sweep_interval: Duration,
    pub(super) key_escrow: Vec<Arc<dyn StorageSink>>,
}

impl PipelineConfig {
    /// A pipeline over these parts, with no sinks, writing the transcoder's outputs under
    /// `work_dir` (`<work_dir>/<id>/<id>.mp4` and `.jpg`).
    ///
    /// Defaults: 2 workers (and up to 256 webhook jobs beside them), a 200 ms poll interval, 30-second leases (renewed while a job runs), the default
    /// [`RetryPolicy`] and [`TranscodeOptions`].
    pub fn new(
        catalog: Arc<dyn Catalog>,
        spool: Arc<dyn Spool>,
        transcoder: Arc<dyn Transcoder>,
        notifier: Arc<dyn Notifier>,
        work_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            catalog,
            spool,
            transcoder,
            notifier,
            sinks: SinkSet::default(),
            directory: None,
            work_dir: work_dir.into(),
            transcode: TranscodeOptions::default(),
            retry: RetryPolicy::default(),
            workers: 2,
            webhook_jobs: 256,
            poll_interval: Duration::from_millis(200),
            first_attempt: Duration::from_secs(1),
            lease: Duration::from_secs(30),
            links: UrlOptions::default(),
            staging: None,
            environments: None,
            sweep_interval: Duration::from_secs(60),
            key_escrow: Vec::new(),
        }
    }

    /// Copies every recording to `sink` too, under the name `id` (which must be unique:
    /// copies are recorded per sink id), its files named [`KeyLayout::ByRecording`].
    /// Ignored once [`PipelineConfig::with_sink_directory`] decides the sinks.
    #[must_use]
    pub fn with_sink(mut self, id: SinkId, sink: Arc<dyn StorageSink>) -> Self {
        let layout = self.sinks.get(&id).map(|s| s.layout).unwrap_or_default();
        self.sinks.insert(NamedSink::new(id, sink, layout));
        self
    }

    /// Names the files of each recording in sink `id` (added by
    /// [`PipelineConfig::with_sink`]) by `layout`.
    #[must_use]
    pub fn with_key_layout(mut self, id: SinkId, layout: KeyLayout) -> Self {
        if let Some(sink) = self.sinks.sinks.iter_mut().find(|s| s.id == id) {
            sink.layout = layout;
        }
        self
    }

    /// Lets `directory` decide, per environment, which sinks a recording is copied to
    /// (the environment's own sinks, "do not store"), instead of the sinks given to
    /// [`PipelineConfig::with_sink`].
    #[must_use]
    pub fn with_sink_directory(mut self, directory: Arc<dyn SinkDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// What decides the sinks: the directory given, or the sinks given.
    pub(super) fn sink_directory(&self) -> Arc<dyn SinkDirectory> {
        match &self.directory {
            Some(directory) => Arc::clone(directory),
            None => Arc::new(StaticSinks::new(self.sinks.clone())),
        }
    }

    /// Converts with `options`.
    #[must_use]
    pub fn with_transcode_options(mut self, options: TranscodeOptions) -> Self {
        self.transcode = options;
        self
    }

    /// Retries failed jobs by `policy`.
    #[must_use]
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Runs `workers` jobs at a time (at least 1).
    #[must_use]
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Runs up to `jobs` webhook jobs (`notify` and `deliver`) at a time (at least 1),
    /// beside the workers (default 256).
    ///
    /// A webhook job spends its time waiting for a receiver, not working: a worker that
    /// claims one hands it over and claims the next job, so receivers that are slow or
    /// down never hold up conversions, copies, or the other endpoints' deliveries. When
    /// this many are running, workers that claim another wait for one to end.
    #[must_use]
    pub fn with_webhook_jobs(mut self, jobs: usize) -> Self {
        self.webhook_jobs = jobs.max(1);
        self
    }

    /// Looks for due jobs this often when idle (and at once when woken).
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// How long the notify job waits for the first attempts at an event's endpoints
    /// (default 1 s). An endpoint that has not answered by then is cut off and left to its
    /// own delivery job, which retries it on the schedule with the notifier's full
    /// timeout: so an endpoint that hangs holds up the recording's next event by this much
    /// at most, and only until its first cut-off (its later events go straight to its
    /// delivery jobs). The healthy endpoints' attempts are made at the same moment, so they
    /// wait for nothing. (The receiver may have taken the cut-off request: it gets the
    /// event again under the same `webhook-id`.)
    #[must_use]
    pub fn with_first_attempt_budget(mut self, budget: Duration) -> Self {
        self.first_attempt = budget;
        self
    }

    /// Claims jobs for `lease`, extended every third of it while the job runs. A worker
    /// that dies mid-job holds its job up for at most this long before another worker (or
    /// the next start) takes it over; handlers are idempotent, so that costs only time.
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Asks sinks for download links (in `video_copied_…`) valid for `options.expires_in`
    /// (default 7 days).
    #[must_use]
    pub fn with_link_options(mut self, options: UrlOptions) -> Self {
        self.links = options;
        self
    }

    /// Applies the retention and abandonment settings of the environments in `store`:
    /// [`super::Pipeline::run`] sweeps every minute (see [`super::Pipeline::sweep`]).
    /// Without it, recordings are kept until deleted and `receiving` ones wait forever.
    #[must_use]
    pub fn with_environments(mut self, store: Arc<dyn EnvironmentStore>) -> Self {
        self.environments = Some(store);
        self
    }

    /// Sweeps this often (default 1 minute).
    #[must_use]
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Keeps the MP4 and the snapshot in `staging` from the end of their conversion until
    /// every sink has them, instead of in the work directory: the transcoder's files are
    /// removed as soon as they are staged. Give an encrypting sink here, and converted
    /// files rest on disk in plaintext only while FFmpeg writes them.
    #[must_use]
    pub fn with_staging(mut self, staging: Arc<dyn StorageSink>) -> Self {
        self.staging = Some(staging);
        self
    }

    /// Sinks that hold escrowed recording keys (backup destinations, under
    /// [`ObjectKey::for_recording_key`](pipe_core::ObjectKey::for_recording_key)): an
    /// erasure deletes the recording's key from each of them, so a backup restored later
    /// cannot open the recording's files.
    #[must_use]
    pub fn with_key_escrow(mut self, sinks: Vec<Arc<dyn StorageSink>>) -> Self {
        self.key_escrow = sinks;
        self
    }
}
