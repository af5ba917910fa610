//! `erase`: a recording being deleted leaves every place it was stored, then the catalog.

use tracing::{info, warn};

use pipe_core::{
    ArtifactKind, DeletionReason, Error, Job, JobFilter, JobKind, JobStatus, ObjectKey,
    RecordingId, Result, Timestamp,
};

use super::Pipeline;
use crate::events;

impl Pipeline {
    /// Waits until no other job of the recording is running (none can start: the
    /// deletion dead-lettered the queued ones, and the catalog refuses every other
    /// change), then deletes every artifact's key in every sink (the keys are
    /// deterministic, so a copy whose commit was refused is found too), the staged and
    /// working files, the spool entry and the recording's escrowed key, and purges the
    /// recording from the catalog, which deletes its key (so no copy of its encrypted
    /// files opens any more, wherever it is), keeps its tombstone and tells
    /// `video_deleted` (in the same transaction).
    /// Every step is idempotent: a run cut off anywhere is finished by the next.
    pub(super) async fn erase(&self, job: &Job, id: &RecordingId) -> Result<()> {
        let catalog = &self.config.catalog;
        let running = catalog
            .jobs(
                JobFilter::default()
                    .recording(id.clone())
                    .status(JobStatus::Running),
            )
            .await?;
        if running.iter().any(|other| other.id != job.id) {
            return Err(Error::temporary(
                "erase",
                "another step of the recording is still running; erasing after it",
            ));
        }
        let recording = catalog.recording(id).await?;
        let original = events::original_extension(recording.mime_type.as_deref());
        let copies = catalog.copies(id).await?;
        let sinks = self.sinks.sinks(&recording.environment).await?;
        for copy in copies.iter().filter(|c| sinks.get(&c.sink).is_none()) {
            warn!(
                sink = %copy.sink,
                key = %copy.key,
                "the environment has no sink by this name any more: its copy stays"
            );
        }
        for named in &sinks.sinks {
            let (sink_id, sink) = (&named.id, &named.sink);
            // The keys the sink's layout gives (a copy cut off before it was recorded may
            // have left files under them), and every key a recorded copy names.
            let layout = named.layout;
            let mut keys = ArtifactKind::ALL
                .iter()
                .map(|kind| layout.key(&ObjectKey::for_artifact(id, *kind, Some(original))))
                .collect::<Result<Vec<ObjectKey>>>()?;
            keys.extend(
                copies
                    .iter()
                    .filter(|c| &c.sink == sink_id)
                    .map(|c| c.key.clone()),
            );
            keys.sort();
            keys.dedup();
            for key in &keys {
                match sink.delete(key).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.discard_outputs(id).await?;
        match self.config.spool.delete(id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        // Before the purge: a backup that escrows keys meanwhile checks afterwards whether
        // the recording is being deleted, and deletes what it put (pipe-server's backups).
        let escrowed = ObjectKey::for_recording_key(id);
        for sink in &self.config.key_escrow {
            match sink.delete(&escrowed).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let requested = recording.deleting.unwrap_or(recording.updated);
        let reason = recording.deletion_reason.unwrap_or(DeletionReason::Request);
        let told = events::video_deleted(&recording, reason, requested, Timestamp::now());
        let tombstone = catalog
            .purge_recording(id, &job.lease, vec![JobKind::Notify { event: told }.into()])
            .await?;
        self.wake();
        info!(
            reason = tombstone.reason.as_str(),
            "recording erased from every sink and the catalog"
        );
        Ok(())
    }
}
