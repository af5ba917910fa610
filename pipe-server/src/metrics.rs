//! The process's metrics recorder: every `pipe-*` crate reports through the `metrics`
//! facade, and this renders it as Prometheus text for `/metrics`.
//!
//! `metrics-exporter-prometheus` without its HTTP listener: the API serves the text on
//! our own router (behind a key, or on `PIPE_METRICS_LISTEN`), so no second HTTP stack
//! is compiled in. The facade keeps the libraries free of any exporter.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use pipe_api::metrics::MetricsRender;

use crate::ServeError;

/// The process-wide recorder, installed once (a process may serve more than once, as
/// the tests do).
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder on first use and returns its renderer.
pub(crate) fn render() -> Result<MetricsRender, ServeError> {
    let handle = match HANDLE.get() {
        Some(handle) => handle.clone(),
        None => {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(pipe_ingest::metrics::ACK_SECONDS.into()),
                    pipe_ingest::metrics::ACK_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(pipe_lifecycle::metrics::JOB_SECONDS.into()),
                        pipe_lifecycle::metrics::JOB_BUCKETS,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| ServeError::Part {
                    part: "metrics",
                    source: pipe_core::Error::Backend {
                        backend: "metrics",
                        retryable: false,
                        source: Box::new(e),
                    },
                })?;
            HANDLE.get_or_init(|| handle).clone()
        }
    };
    Ok(MetricsRender::new(move || {
        handle.run_upkeep();
        handle.render()
    }))
}
