//! `notify`: one event to tell, tried at once at every subscribed endpoint, with a
//! `deliver` job left for each endpoint that did not take it; `deliver`: one retry at one
//! endpoint.

use std::collections::BTreeSet;

use futures::future::join_all;
use pipe_core::{
    Attempted, Change, DeliveryAttempt, Event, Job, JobFilter, JobKind, JobStatus, NewJob, Result,
    Timestamp,
};
use tracing::{debug, warn};

use super::Pipeline;

/// First attempts one endpoint may have waiting for an answer at once, in one process;
/// its further events go to its delivery jobs (run one at a time) until some answer. An
/// endpoint that starts to hang so holds this many webhook jobs until its first cut-off,
/// and no more.
pub(super) const MAX_FIRST_ATTEMPTS: usize = 32;

/// One first attempt, counted in [`Pipeline::first_attempts`] until it has its answer (or
/// is given up).
struct InFlight<'a> {
    pipeline: &'a Pipeline,
    endpoint: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut first_attempts = self.pipeline.first_attempts.lock().expect("not poisoned");
        if let Some(count) = first_attempts.get_mut(self.endpoint) {
            *count -= 1;
            if *count == 0 {
                first_attempts.remove(self.endpoint);
            }
        }
    }
}

impl Pipeline {
    /// Tells `event` to every endpoint subscribed to it.
    ///
    /// The first attempt at each endpoint is made here, all at once (each cut off after
    /// the first-attempt budget, so a hanging endpoint delays the recording's next event
    /// by that much at most), and one commit completes the job and enqueues a `deliver`
    /// job for each endpoint that did not take the event: due after the first wait of the
    /// schedule when it may take it later, dead (kept to be seen and redelivered) when it
    /// refused for good. So a healthy endpoint costs the catalog nothing but this job, and
    /// the first attempt follows the event at once.
    ///
    /// Some endpoints are not tried here but get a `deliver` job due at once: one that
    /// still has an earlier event of the recording waiting (the job queues behind that
    /// one, so events reach it in order); one whose last attempt failed (its job runs in
    /// the endpoint's lane, one at a time, so a failing endpoint costs new events
    /// nothing); and one with [`MAX_FIRST_ATTEMPTS`] first attempts already waiting for
    /// an answer (so an endpoint that starts to hang holds that many webhook jobs until
    /// its first cut-off, and no more). If the process dies before the commit, the job
    /// runs again and the endpoints that took the event get it again under the same
    /// `webhook-id`.
    ///
    /// A notifier that names no endpoints gets the event delivered once, here: a
    /// retryable failure is tried again later with the same event (and id), a permanent
    /// one is dead-lettered.
    pub(super) async fn notify(&self, job: &Job, event: &Event) -> Result<()> {
        let notifier = &self.config.notifier;
        let catalog = &self.config.catalog;
        let endpoints = notifier.subscribers(event).await?;
        let mut change = Change::new(event.recording.clone()).complete(job.lease.clone());
        // What goes out carries working links; what is queued again does not.
        let sent = self.linked(event).await?;
        if endpoints.is_empty() {
            notifier.deliver(&sent).await?;
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
        let (behind, now): (Vec<String>, Vec<String>) = {
            let struggling = self.struggling.lock().expect("not poisoned");
            let mut first_attempts = self.first_attempts.lock().expect("not poisoned");
            endpoints.into_iter().partition(|e| {
                if waiting.contains(e) || struggling.contains(e) {
                    return true;
                }
                let in_flight = first_attempts.entry(e.clone()).or_default();
                if *in_flight >= MAX_FIRST_ATTEMPTS {
                    return true;
                }
                *in_flight += 1;
                false
            })
        };
        let budget = self.config.first_attempt;
        let sent = &sent;
        let attempts = now.iter().map(|endpoint| async move {
            let _in_flight = InFlight {
                pipeline: self,
                endpoint,
            };
            let at = Timestamp::now();
            let attempted = tokio::time::timeout(budget, notifier.attempt(sent, endpoint))
                .await
                .unwrap_or_else(|_| {
                    Attempted::new(
                        Err(pipe_core::Error::temporary(
                            "webhook",
                            format!(
                                "no answer within the first attempt's {} ms; retried with the full timeout",
                                budget.as_millis()
                            ),
                        )),
                        budget,
                    )
                });
            (at, attempted)
        });
        let outcomes = join_all(attempts).await;
        let deliver = |endpoint: String| {
            NewJob::new(JobKind::Deliver {
                event: event.clone(),
                endpoint,
            })
        };
        // Behind an earlier event of the recording, or at an endpoint that is failing:
        // its own delivery job, due now (and run one at a time per endpoint).
        for endpoint in behind {
            change = change.enqueue(deliver(endpoint));
        }
        for (endpoint, (at, attempted)) in now.into_iter().zip(outcomes) {
            crate::metrics::webhook_attempt(attempted.outcome.is_ok());
            change = change.log_attempt(DeliveryAttempt::new(event, &endpoint, at, &attempted));
            let Err(error) = attempted.outcome else {
                continue;
            };
            self.struggling(&endpoint, true);
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

    /// `event` as it goes out now: its links ([`pipe_core::EventLinks`]) made into URLs
    /// signed from this moment, by the sink that holds the files (none if the recording's
    /// environment no longer has that sink). The stored event never holds a working link.
    async fn linked<'e>(&self, event: &'e Event) -> Result<std::borrow::Cow<'e, Event>> {
        let Some(links) = &event.links else {
            return Ok(std::borrow::Cow::Borrowed(event));
        };
        let sinks = self.sinks.sinks(&event.environment).await?;
        let mut urls: [Option<String>; 3] = Default::default();
        if let Some(named) = sinks.get(&links.sink) {
            for (url, key) in urls.iter_mut().zip(links.keys()) {
                if let Some(key) = key {
                    *url = named.sink.url(key, self.config.links.clone()).await?;
                }
            }
        }
        Ok(std::borrow::Cow::Owned(event.linked(urls)))
    }

    /// Marks `endpoint` as failing (`true`) or not.
    fn struggling(&self, endpoint: &str, failing: bool) {
        let mut struggling = self.struggling.lock().expect("not poisoned");
        if failing {
            struggling.insert(endpoint.to_owned());
        } else {
            struggling.remove(endpoint);
        }
    }

    /// Delivers `event` to `endpoint` once, and logs the attempt: with the job's
    /// completion when it was accepted, on its own before the job is retried when not.
    pub(super) async fn deliver(&self, job: &Job, event: &Event, endpoint: &str) -> Result<()> {
        let catalog = &self.config.catalog;
        let sent = self.linked(event).await?;
        let at = Timestamp::now();
        let attempted = self.config.notifier.attempt(&sent, endpoint).await;
        let entry = DeliveryAttempt::new(event, endpoint, at, &attempted);
        self.struggling(endpoint, attempted.outcome.is_err());
        if let Err(error) = attempted.outcome {
            if let Err(e) = catalog.log_delivery_attempt(entry).await {
                warn!(%endpoint, error = %e, "the failed delivery attempt could not be logged");
            }
            return Err(error);
        }
        catalog
            .commit(
                Change::new(event.recording.clone())
                    .complete(job.lease.clone())
                    .log_attempt(entry),
            )
            .await?;
        Ok(())
    }
}
