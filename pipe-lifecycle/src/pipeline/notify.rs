//! `notify`: one event to tell, fanned out into one `deliver` job per subscribed
//! endpoint; `deliver`: one attempt at one endpoint.

use pipe_core::{Change, Event, Job, JobKind, Result};

use super::Pipeline;

impl Pipeline {
    /// Fans `event` out into one `deliver` job per endpoint subscribed to it, in one commit
    /// (the dedupe keys make a repeated fan-out add nothing). A notifier that names no
    /// endpoints gets the event delivered once, here: a retryable failure is tried again
    /// later with the same event (and id), a permanent one is dead-lettered.
    pub(super) async fn notify(&self, job: &Job, event: &Event) -> Result<()> {
        let notifier = &self.config.notifier;
        let endpoints = notifier.subscribers(event);
        let mut change = Change::new(event.recording.clone()).complete(job.lease.clone());
        if endpoints.is_empty() {
            notifier.deliver(event).await?;
        }
        for endpoint in endpoints {
            change = change.enqueue(JobKind::Deliver {
                event: event.clone(),
                endpoint,
            });
        }
        self.config.catalog.commit(change).await?;
        self.wake();
        Ok(())
    }

    /// Delivers `event` to `endpoint` once.
    pub(super) async fn deliver(&self, job: &Job, event: &Event, endpoint: &str) -> Result<()> {
        self.config.notifier.deliver_to(event, endpoint).await?;
        self.config
            .catalog
            .commit(Change::new(event.recording.clone()).complete(job.lease.clone()))
            .await?;
        Ok(())
    }
}
