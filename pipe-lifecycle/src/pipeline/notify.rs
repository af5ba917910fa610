//! `notify`: one delivery attempt of one event.

use pipe_core::{Change, Event, Job, Result};

use super::Pipeline;

impl Pipeline {
    /// Delivers `event` once. A failure is settled by the retry policy: a retryable one is
    /// tried again later with the same event (and id), a permanent one is dead-lettered.
    pub(super) async fn notify(&self, job: &Job, event: &Event) -> Result<()> {
        self.config.notifier.deliver(event).await?;
        self.config
            .catalog
            .commit(Change::new(event.recording.clone()).complete(job.lease.clone()))
            .await?;
        Ok(())
    }
}
