//! The sweep: retention, and recordings their clients abandoned.

use std::time::Duration;

use tracing::{debug, info, warn};

use pipe_core::{
    Change, DeletionReason, Environment, JobKind, ListOptions, RecordingCursor, RecordingSource,
    RecordingState, Result, Timestamp,
};

use super::Pipeline;

/// The most recordings one sweep deletes or finishes, all environments together: a
/// backlog (a retention switched on over a year of recordings) goes in bounded steps, one
/// per sweep, so the catalog and the workers keep serving what arrives meanwhile. At one
/// sweep a minute that is 1.4 million a day.
pub const SWEEP_BATCH: usize = 1000;

/// Recordings read from the catalog at a time while looking for ones to delete.
const PAGE: u32 = 500;

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Recordings whose deletion it asked for (retention, or abandoned with no bytes).
    pub deleted: usize,
    /// Abandoned recordings it finished with the bytes that had arrived.
    pub finished: usize,
}

impl Pipeline {
    /// Applies every environment's retention and abandonment settings as of `now`, up to
    /// [`SWEEP_BATCH`] recordings: asks for the deletion of those past their retention
    /// (as a deletion through the API does: an `erase` job takes them out of every sink,
    /// the spool and the catalog), and finishes those still `receiving` past
    /// `abandoned_after_hours` (or deletes them if no byte arrived, or if they are uploads
    /// that did not get all of their declared bytes: tus's expiration). [`Pipeline::run`]
    /// sweeps every [`super::PipelineConfig::with_sweep_interval`]; tests call it with a
    /// time of their own.
    pub async fn sweep(&self, now: Timestamp) -> Result<SweepReport> {
        let Some(store) = &self.config.environments else {
            return Ok(SweepReport::default());
        };
        let mut report = SweepReport::default();
        for environment in store.list_environments().await? {
            let budget = SWEEP_BATCH.saturating_sub(report.deleted + report.finished);
            if budget == 0 {
                break;
            }
            let abandoned = self.sweep_abandoned(&environment, now, budget).await?;
            report.deleted += abandoned.deleted;
            report.finished += abandoned.finished;
            let budget = budget.saturating_sub(abandoned.deleted + abandoned.finished);
            report.deleted += self.sweep_retention(&environment, now, budget).await?;
        }
        if report != SweepReport::default() {
            info!(
                deleted = report.deleted,
                finished = report.finished,
                "swept"
            );
            self.wake();
        }
        Ok(report)
    }

    /// Deletes up to `budget` recordings of `environment` past its retention.
    async fn sweep_retention(
        &self,
        environment: &Environment,
        now: Timestamp,
        budget: usize,
    ) -> Result<usize> {
        let settings = &environment.settings;
        let Some(hours) = settings.retention_hours else {
            return Ok(0);
        };
        let cutoff = now.minus(Duration::from_secs(u64::from(hours) * 3600));
        let mut deleted = 0;
        let mut after = None;
        while deleted < budget {
            let mut options = ListOptions::default()
                .with_environment(environment.id.clone())
                .with_created(None, Some(cutoff))
                .with_deleting(false)
                .with_limit(PAGE);
            if let Some(cursor) = after.take() {
                options = options.with_after(cursor);
            }
            let page = self.config.catalog.list_recordings(options).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(RecordingCursor::after(last));
            for recording in &page {
                let due = match recording.state {
                    // Abandonment decides about these.
                    RecordingState::Receiving => false,
                    RecordingState::Failed => settings.retention_deletes_failed,
                    _ => true,
                };
                if due
                    && deleted < budget
                    && self
                        .ask_deletion(recording, DeletionReason::Retention)
                        .await?
                {
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    /// Finishes or deletes up to `budget` recordings of `environment` still `receiving`
    /// past its abandonment time.
    async fn sweep_abandoned(
        &self,
        environment: &Environment,
        now: Timestamp,
        budget: usize,
    ) -> Result<SweepReport> {
        let hours = environment.settings.abandoned_after_hours.max(1);
        let cutoff = now.minus(Duration::from_secs(u64::from(hours) * 3600));
        let options = ListOptions::default()
            .with_environment(environment.id.clone())
            .with_state(RecordingState::Receiving)
            .with_created(None, Some(cutoff))
            .with_deleting(false)
            .with_limit(u32::try_from(budget).unwrap_or(u32::MAX).min(PAGE));
        let mut report = SweepReport::default();
        for recording in self.config.catalog.list_recordings(options).await? {
            let spool = &self.config.spool;
            let len = match spool.stat(&recording.id).await {
                Ok(entry) => entry.len,
                Err(e) if e.is_not_found() => 0,
                Err(e) => return Err(e),
            };
            // An upload is a file: without all of its declared bytes it is no recording,
            // so it goes like a stream that sent nothing.
            let incomplete_upload =
                recording.source == RecordingSource::Upload && recording.upload_length != Some(len);
            if len == 0 || incomplete_upload {
                if self
                    .ask_deletion(&recording, DeletionReason::Abandoned)
                    .await?
                {
                    report.deleted += 1;
                }
                continue;
            }
            // What the ingest does when a client finishes: the original sealed, then
            // `recorded` and a probe in one commit.
            let sealed = spool.seal(&recording.id).await?;
            let change = Change::new(recording.id.clone())
                .expect_state(RecordingState::Receiving)
                .state(RecordingState::Recorded)
                .length(sealed.len)
                .enqueue(JobKind::Probe {
                    recording: recording.id.clone(),
                });
            match self.config.catalog.commit(change).await {
                Ok(_) => {
                    info!(recording = %recording.id, bytes = sealed.len, "finished an abandoned recording");
                    report.finished += 1;
                }
                // Its client finished it meanwhile.
                Err(e) if e.is_precondition() => {
                    debug!(recording = %recording.id, "finished meanwhile");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Asks for the deletion of `recording` as the API does; `false` if it moved on in
    /// between (deleted already, or back to `receiving`-only states it does not take).
    async fn ask_deletion(
        &self,
        recording: &pipe_core::Recording,
        reason: DeletionReason,
    ) -> Result<bool> {
        let change = Change::new(recording.id.clone())
            .expect_state(recording.state)
            .delete(reason)
            .enqueue(JobKind::Erase {
                recording: recording.id.clone(),
            });
        match self.config.catalog.commit(change).await {
            Ok(_) => {
                debug!(recording = %recording.id, "deletion asked by the sweep");
                Ok(true)
            }
            Err(e) if e.is_precondition() => Ok(false),
            Err(e) => {
                warn!(recording = %recording.id, error = %e, "the sweep could not ask for a deletion");
                Err(e)
            }
        }
    }
}
