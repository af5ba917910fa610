//! `cleanup`: local copies go once every sink holds a verified copy.

use tracing::info;

use pipe_core::{Job, RecordingId, Result};

use super::{Pipeline, files};

impl Pipeline {
    /// Deletes the recording's work directory and its spool entry. Both deletions are
    /// idempotent, so a second run finds nothing and succeeds.
    pub(super) async fn cleanup(&self, job: &Job, id: &RecordingId) -> Result<()> {
        files::remove_dir(&self.work_dir(id)).await?;
        self.config.spool.delete(id).await?;
        info!("local files removed");
        self.complete_only(job, id).await
    }
}
