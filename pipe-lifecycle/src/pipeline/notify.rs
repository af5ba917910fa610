//! `notify`: one event to tell, tried at once at every subscribed endpoint, with a
//! `deliver` job left for each endpoint that did not take it; `deliver`: one retry at one
//! endpoint.

use std::collections::BTreeSet;

use futures::future::join_all;
use pipe_core::{Change, Event, Job, JobFilter, JobKind, JobStatus, NewJob, Result, Timestamp};
use tracing::debug;

use super::Pipeline;

impl Pipeline {
    /// Tells `event` to every endpoint subscribed to it.
    ///
    /// The first attempt at each endpoint is made here, all at once, and one commit
    /// completes the job and enqueues a `deliver` job for each endpoint that did not take
    /// the event: due after the first wait of the schedule when it may take it later,
    /// dead (kept to be seen and redelivered) when it refused for good. So a healthy
    /// endpoint costs the catalog nothing but this job, and the first attempt follows the
    /// event at once. An endpoint that still has an earlier event of the recording
    /// waiting is not tried here: its `deliver` job queues behind that one, so events reach
    /// it in order. If the process dies before the commit, the job runs again and the
    /// endpoints that took the event get it again under the same `webhook-id`.
    ///
    /// A notifier that names no endpoints gets the event delivered once, here: a
    /// retryable failure is tried again later with the same event (and id), a permanent
    /// one is dead-lettered.
    pub(super) async fn notify(&self, job: &Job, event: &Event) -> Result<()> {
        let notifier = &self.config.notifier;
        let catalog = &self.config.catalog;
        let endpoints = notifier.subscribers(event);
        let mut change = Change::new(event.recording.clone()).complete(job.lease.clone());
        if endpoints.is_empty() {
            notifier.deliver(event).await?;
            catalog.commit(change).await?;
            return Ok(());
        }
        let waiting: BTreeSet<String> = catalog
            .jobs(JobFilter::default().recording(event.recording.clone()))
            .await?
            .into_iter()
            .filter(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running))
            .filter_map(|j| match j.kind {
                JobKind::Deliver { endpoint, .. } => Some(endpoint),
                _ => None,
            })
            .collect();
        let (behind, now): (Vec<String>, Vec<String>) =
            endpoints.into_iter().partition(|e| waiting.contains(e));
        let attempts = now
            .iter()
            .map(|endpoint| notifier.deliver_to(event, endpoint));
        let outcomes = join_all(attempts).await;
        let deliver = |endpoint: String| {
            NewJob::new(JobKind::Deliver {
                event: event.clone(),
                endpoint,
            })
        };
        for endpoint in behind {
            change = change.enqueue(deliver(endpoint));
        }
        for (endpoint, outcome) in now.into_iter().zip(outcomes) {
            crate::metrics::webhook_attempt(outcome.is_ok());
            let Err(error) = outcome else { continue };
            debug!(%endpoint, error = %error, "first delivery attempt failed");
            let job = deliver(endpoint).after_failures(1, error.to_string());
            let retry = &self.config.retry;
            change = change.enqueue(if retry.should_retry(&job.kind, &error, 1) {
                let wait = retry.wait(&job.kind, 1, error.retry_after());
                job.at(Timestamp::now().plus(wait))
            } else {
                job.into_dead()
            });
        }
        catalog.commit(change).await?;
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
