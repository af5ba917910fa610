//! The workers that take a recording from `recorded` to copied and told.

mod cleanup;
mod config;
mod convert;
mod copy;
mod erase;
mod files;
mod notify;
mod probe;
mod sweep;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use pipe_core::{
    Catalog, Change, ClaimOptions, Error, Job, JobKind, JobLease, NamedSink, RecordingId, Result,
    SinkDirectory, SinkId, SinkSet, Timestamp,
};

pub use self::config::PipelineConfig;
pub use self::sweep::{SWEEP_BATCH, SweepReport};
use crate::events;
pub use pipe_core::KeyLayout;

/// Runs the jobs in a [`Catalog`]: probe, convert, copy, notify, cleanup, erase.
///
/// Workers claim due jobs with a lease, run the handler of the job's kind and finish with
/// one [`Catalog::commit`] that records the step's result, enqueues the next steps and
/// completes the job, all at once. A failed job is retried with backoff by its
/// [`crate::RetryPolicy`]; see the crate docs for what happens when it gives up.
///
/// The pipeline speaks only the traits of `pipe-core`: any catalog, spool, transcoder,
/// sink and notifier will do.
#[derive(Debug)]
pub struct Pipeline {
    config: PipelineConfig,
    /// Which sinks each environment's recordings go to.
    sinks: Arc<dyn SinkDirectory>,
    wake: Notify,
    /// Endpoints whose last attempt failed, in this process: their next events skip the
    /// notify job's first attempt and go straight to their delivery jobs (one at a time
    /// per endpoint), so a failing endpoint costs each new event nothing. A delivery they
    /// accept takes them off.
    struggling: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// First attempts in flight per endpoint, in this process: an endpoint with
    /// [`notify::MAX_FIRST_ATTEMPTS`] of them waiting for an answer gets its next events
    /// through its delivery jobs, so that an endpoint that starts to hang cannot take up
    /// every webhook job before its first cut-off.
    first_attempts: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    /// Webhook jobs that may run now, beside the workers.
    webhook_jobs: Arc<Semaphore>,
}

impl Pipeline {
    /// A pipeline made of `config`; nothing runs until [`Pipeline::run`] or
    /// [`Pipeline::run_once`].
    pub fn new(config: PipelineConfig) -> Self {
        Self {
            webhook_jobs: Arc::new(Semaphore::new(config.webhook_jobs)),
            sinks: config.sink_directory(),
            config,
            wake: Notify::new(),
            struggling: Default::default(),
            first_attempts: Default::default(),
        }
    }

    /// The catalog the pipeline works on.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.config.catalog
    }

    /// Runs the configured number of workers until `shutdown` completes, then stops them.
    ///
    /// A worker that is in the middle of a job when `shutdown` completes abandons it: its
    /// lease expires and another worker (or the next start) runs the job again. Handlers
    /// are idempotent, so nothing but time is lost.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let mut workers = JoinSet::new();
        for n in 0..self.config.workers {
            let worker = Arc::clone(&self).worker(stopped.clone());
            workers.spawn(worker.instrument(info_span!("worker", n)));
        }
        if self.config.environments.is_some() {
            let sweeper = Arc::clone(&self).sweeper(stopped.clone());
            workers.spawn(sweeper.instrument(info_span!("sweep")));
        }
        info!(workers = self.config.workers, "pipeline running");
        shutdown.await;
        let _ = stop.send(true);
        while workers.join_next().await.is_some() {}
        // Webhook jobs handed over by the workers stop at the same signal; they are gone
        // when every permit is back.
        let all = u32::try_from(self.config.webhook_jobs).unwrap_or(u32::MAX);
        let _ = self.webhook_jobs.acquire_many(all).await;
        info!("pipeline stopped");
    }

    /// Sweeps every `sweep_interval` until `stopped`; a failed sweep is logged and tried
    /// again at the next tick.
    async fn sweeper(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.config.sweep_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            if let Err(e) = self.sweep(Timestamp::now()).await {
                warn!(error = %e, "the sweep failed; trying again at the next");
            }
        }
    }

    /// Tells idle workers to look for due jobs now rather than at their next poll (call it
    /// after committing a change that enqueued jobs).
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Claims one due job and runs it; `false` when nothing was due.
    ///
    /// A failing job does not make this fail: the job is retried, failed or dead-lettered
    /// in the catalog. Only a catalog that cannot be asked for a job is an error.
    pub async fn run_once(&self) -> Result<bool> {
        let Some(job) = self.claim().await? else {
            return Ok(false);
        };
        self.run_job(job).await;
        Ok(true)
    }

    async fn claim(&self) -> Result<Option<Job>> {
        let options = ClaimOptions::default().with_lease(self.config.lease);
        self.config.catalog.claim_job(options).await
    }

    /// Runs `job` to its end (done, retried or given up) in its own span.
    async fn run_job(&self, job: Job) {
        let span = info_span!(
            "job",
            id = %job.id,
            kind = job.kind.name(),
            recording = %job.kind.recording(),
            attempt = job.attempt,
        );
        self.process(job).instrument(span).await;
    }

    /// Runs due jobs until none is due; returns how many ran. Jobs retried for later are
    /// left for later.
    pub async fn drain(&self) -> Result<usize> {
        let mut ran = 0;
        while self.run_once().await? {
            ran += 1;
        }
        Ok(ran)
    }

    async fn worker(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let claimed = tokio::select! {
                biased;
                _ = stop.changed() => return,
                claimed = self.claim() => claimed,
            };
            match claimed {
                Ok(Some(job)) if is_webhook(&job.kind) => {
                    let permit = tokio::select! {
                        biased;
                        // The job's lease expires and the job runs again after a start.
                        _ = stop.changed() => return,
                        permit = Arc::clone(&self.webhook_jobs).acquire_owned() => {
                            permit.expect("the semaphore is never closed")
                        }
                    };
                    let pipeline = Arc::clone(&self);
                    let mut stop = stop.clone();
                    tokio::spawn(
                        async move {
                            tokio::select! {
                                biased;
                                _ = stop.wait_for(|stop| *stop) => {}
                                () = pipeline.run_job(job) => {}
                            }
                            drop(permit);
                        }
                        .in_current_span(),
                    );
                    continue;
                }
                Ok(Some(job)) => {
                    tokio::select! {
                        biased;
                        _ = stop.changed() => return,
                        () = self.run_job(job) => {}
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => warn!(error = %e, "cannot claim a job"),
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    async fn process(&self, job: Job) {
        debug!("running");
        let started = std::time::Instant::now();
        let work = async {
            match &job.kind {
                JobKind::Probe { recording } => self.probe(&job, recording).await,
                JobKind::Convert { recording } => self.convert(&job, recording).await,
                JobKind::Copy { recording, sink } => self.copy(&job, recording, sink).await,
                JobKind::Notify { event } => self.notify(&job, event).await,
                JobKind::Deliver { event, endpoint } => self.deliver(&job, event, endpoint).await,
                JobKind::Cleanup { recording } => self.cleanup(&job, recording).await,
                JobKind::Erase { recording } => self.erase(&job, recording).await,
                other => Err(Error::invalid(
                    "job",
                    format!("this pipeline cannot run `{}` jobs", other.name()),
                )),
            }
        };
        let result = tokio::select! {
            result = work => result,
            () = self.keep_lease(&job.lease) => {
                warn!("lost the job's lease to another worker; abandoning it to that worker");
                return;
            }
        };
        crate::metrics::job_ran(&job.kind, result.is_ok(), started.elapsed());
        match result {
            Ok(()) => debug!("done"),
            Err(error) => {
                if let Err(e) = self.settle(&job, &error).await {
                    // The lease was lost or the catalog is down: the lease expires and the
                    // job runs again.
                    warn!(error = %error, settle_error = %e, "job failed and could not be settled");
                }
            }
        }
    }

    /// Extends `lease` every third of its length for as long as the job runs, so a long
    /// conversion keeps its job while a crashed worker's job is taken over within one
    /// lease. Returns only when the lease was lost to another worker: the job is then
    /// abandoned (dropped at its next await) rather than run twice at once.
    async fn keep_lease(&self, lease: &JobLease) {
        let every = self.config.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match self
                .config
                .catalog
                .extend_lease(lease, self.config.lease)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_precondition() => return,
                Err(e) => warn!(error = %e, "cannot extend the job's lease; trying again"),
            }
        }
    }

    /// Decides what becomes of a job that failed with `error`: retried later, the
    /// recording failed (probe and convert), or dead-lettered.
    async fn settle(&self, job: &Job, error: &Error) -> Result<()> {
        let catalog = &self.config.catalog;
        let retry = &self.config.retry;
        if retry.should_retry(&job.kind, error, job.attempt) {
            let delay = retry.wait(&job.kind, job.attempt, error.retry_after());
            info!(error = %error, retry_in = ?delay, "job failed; will retry");
            return catalog
                .retry_job(&job.lease, &error.to_string(), Timestamp::now().plus(delay))
                .await;
        }
        match &job.kind {
            // A probe or conversion that cannot succeed fails its recording, so that the
            // operator hears of it (`video_failed`). A failed precondition is not the
            // recording's fault: it is dead-lettered like any other job.
            JobKind::Probe { recording } | JobKind::Convert { recording }
                if !error.is_precondition() =>
            {
                warn!(error = %error, "giving up; the recording fails");
                self.fail_recording(job, recording, &error.to_string())
                    .await
            }
            JobKind::Copy { recording, sink } => {
                warn!(error = %error, sink = %sink, "giving up the copy; the operator is told");
                self.give_up_copy(job, recording, sink, &error.to_string())
                    .await
            }
            _ => {
                warn!(error = %error, "giving up; the job is dead-lettered");
                catalog
                    .dead_letter_job(&job.lease, &error.to_string())
                    .await
            }
        }
    }

    /// Moves `recording` to `failed` with `reason`, tells `video_failed`, and completes
    /// `job`; only completes it if the recording already is in a final state.
    async fn fail_recording(&self, job: &Job, recording: &RecordingId, reason: &str) -> Result<()> {
        let catalog = &self.config.catalog;
        // What conversion left is of no use, and FFmpeg's files are plaintext. The original
        // stays in the spool for a person to look at.
        if let Err(e) = self.discard_outputs(recording).await {
            warn!(error = %e, "could not remove the outputs of a failed recording");
        }
        let rec = catalog.recording(recording).await?;
        let mut change = Change::new(recording.clone()).complete(job.lease.clone());
        if !rec.state.is_final() {
            change = change
                .expect_state(rec.state)
                .fail(reason)
                .enqueue(JobKind::Notify {
                    event: events::video_failed(&rec, reason),
                });
        }
        catalog.commit(change).await?;
        self.wake();
        Ok(())
    }

    /// Tells `video_copy_failed` and dead-letters the copy `job` (visible, and redeliverable
    /// through the API). The event goes first, under an id made from the job's: if the
    /// process dies in between, the job runs again, fails again, and the same event is
    /// not enqueued twice. A recording being deleted gets no event.
    async fn give_up_copy(
        &self,
        job: &Job,
        recording: &RecordingId,
        sink: &SinkId,
        reason: &str,
    ) -> Result<()> {
        let catalog = &self.config.catalog;
        let rec = catalog.recording(recording).await?;
        let kind = match self.sinks_of(recording).await {
            Ok(set) => set.get(sink).map(|s| s.sink.kind()),
            Err(_) => None,
        }
        .unwrap_or(pipe_core::SinkKind::Local);
        let event = events::video_copy_failed(&rec, sink, kind, reason, job.id);
        match catalog
            .commit(Change::new(recording.clone()).enqueue(JobKind::Notify { event }))
            .await
        {
            Ok(_) => self.wake(),
            Err(e) if e.is_precondition() => {}
            Err(e) => return Err(e),
        }
        catalog.dead_letter_job(&job.lease, reason).await
    }

    /// Completes `job` without changing anything else: the step it asked for is moot.
    async fn complete_only(&self, job: &Job, recording: &RecordingId) -> Result<()> {
        self.config
            .catalog
            .commit(Change::new(recording.clone()).complete(job.lease.clone()))
            .await?;
        Ok(())
    }

    /// The directory of a recording's transcoder outputs.
    fn work_dir(&self, id: &RecordingId) -> PathBuf {
        self.config.work_dir.join(id.as_str())
    }

    /// The sinks of the environment `recording` belongs to.
    async fn sinks_of(&self, recording: &RecordingId) -> Result<Arc<SinkSet>> {
        let rec = self.config.catalog.recording(recording).await?;
        self.sinks.sinks(&rec.environment).await
    }

    /// Sink `id` of `set`, or `Invalid` naming it: a copy job for a sink the environment
    /// no longer has (its settings changed since the job was queued).
    fn sink<'a>(set: &'a SinkSet, id: &SinkId) -> Result<&'a NamedSink> {
        set.get(id).ok_or_else(|| {
            Error::invalid(
                "sink",
                format!("`{id}` is not one of the recording's environment's sinks (any more)"),
            )
        })
    }
}

/// Whether `kind` is a webhook job: one that waits for a receiver rather than works, run
/// beside the workers (see [`PipelineConfig::with_webhook_jobs`]).
fn is_webhook(kind: &JobKind) -> bool {
    matches!(kind, JobKind::Notify { .. } | JobKind::Deliver { .. })
}
