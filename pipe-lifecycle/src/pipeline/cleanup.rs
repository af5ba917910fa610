//! `cleanup`: local copies go once every sink holds a verified copy.

use tracing::info;

use pipe_core::{ArtifactKind, Job, ObjectKey, RecordingId, Result};

use super::{Pipeline, files};

impl Pipeline {
    /// Deletes the recording's work directory, its staged files and its spool entry.
    /// Every deletion is idempotent, so a second run finds nothing and succeeds.
    pub(super) async fn cleanup(&self, job: &Job, id: &RecordingId) -> Result<()> {
        self.discard_outputs(id).await?;
        self.config.spool.delete(id).await?;
        info!("local files removed");
        self.complete_only(job, id).await
    }

    /// Deletes what conversion made of a recording: its work directory (where FFmpeg's
    /// files are plaintext) and its staged files.
    pub(super) async fn discard_outputs(&self, id: &RecordingId) -> Result<()> {
        files::remove_dir(&self.work_dir(id)).await?;
        if let Some(staging) = &self.config.staging {
            for kind in [ArtifactKind::Mp4, ArtifactKind::Snapshot] {
                staging
                    .delete(&ObjectKey::for_artifact(id, kind, None))
                    .await?;
            }
        }
        Ok(())
    }
}
