//! What the pipeline reports through the [`metrics`] facade; the application installs a
//! recorder (the reference server renders them for Prometheus at `/metrics`).

use std::time::Duration;

use pipe_core::JobKind;

/// Seconds each job took, by `kind` and `outcome` (`done` or `failed`) (histogram).
pub const JOB_SECONDS: &str = "pipe_job_duration_seconds";
/// Webhook deliveries by `outcome` (`delivered` or `failed`) (counter).
pub const WEBHOOK_DELIVERIES: &str = "pipe_webhook_deliveries_total";
/// Copies to sinks by `sink` and `outcome` (`copied` or `failed`) (counter).
pub const SINK_COPIES: &str = "pipe_sink_copies_total";

/// Suggested buckets for [`JOB_SECONDS`]: from a webhook's milliseconds to a long
/// conversion's minutes.
pub const JOB_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// One attempt to deliver a webhook to one endpoint.
pub(crate) fn webhook_attempt(ok: bool) {
    let outcome = if ok { "delivered" } else { "failed" };
    metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}

pub(crate) fn job_ran(kind: &JobKind, ok: bool, took: Duration) {
    let outcome = if ok { "done" } else { "failed" };
    metrics::histogram!(JOB_SECONDS, "kind" => kind.name(), "outcome" => outcome)
        .record(took.as_secs_f64());
    match kind {
        JobKind::Deliver { .. } => webhook_attempt(ok),
        JobKind::Copy { sink, .. } => {
            let outcome = if ok { "copied" } else { "failed" };
            metrics::counter!(SINK_COPIES, "sink" => sink.to_string(), "outcome" => outcome)
                .increment(1);
        }
        _ => {}
    }
}
