//! `GET /metrics`: the Prometheus text the application's recorder renders, with the job
//! queue read from the catalog at each scrape.

use std::fmt;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use pipe_core::{JobStatus, Role, Timestamp};
use pipe_http::{Problem, ProblemType};

use crate::{Api, Caller};

/// Jobs by `kind` and `status` (gauge, read from the catalog at each scrape).
pub const JOBS: &str = "pipe_jobs";
/// Seconds the oldest due queued job of each `kind` has waited (gauge, at each scrape).
pub const OLDEST_QUEUED_SECONDS: &str = "pipe_jobs_oldest_queued_seconds";

/// Renders every metric as Prometheus text: the application's recorder (for example
/// `metrics_exporter_prometheus::PrometheusHandle::render`).
#[derive(Clone)]
pub struct MetricsRender(Arc<dyn Fn() -> String + Send + Sync>);

impl MetricsRender {
    /// Renders with `render`.
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(render))
    }
}

impl fmt::Debug for MetricsRender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsRender")
    }
}

/// Sets the queue gauges from the catalog, then renders.
pub(crate) async fn render(api: &Api) -> Result<Response, Problem> {
    let Some(render) = &api.inner.metrics else {
        return Err(Problem::new(
            ProblemType::NotFound,
            "this server does not export metrics",
        ));
    };
    let now = Timestamp::now();
    let stats = api.inner.catalog.job_stats().await?;
    // A gauge the exporter was once told stays at its last value: groups that emptied
    // since the last scrape are set back to 0, or the queue would look stuck for good.
    {
        let mut seen = api
            .inner
            .job_gauges
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (kind, status) in seen.iter() {
            if !stats
                .iter()
                .any(|s| &s.kind == kind && s.status.as_str() == *status)
            {
                metrics::gauge!(JOBS, "kind" => kind.clone(), "status" => *status).set(0.0);
                if *status == JobStatus::Queued.as_str() {
                    metrics::gauge!(OLDEST_QUEUED_SECONDS, "kind" => kind.clone()).set(0.0);
                }
            }
        }
        seen.extend(stats.iter().map(|s| (s.kind.clone(), s.status.as_str())));
    }
    for stats in stats {
        metrics::gauge!(JOBS, "kind" => stats.kind.clone(), "status" => stats.status.as_str())
            .set(stats.count as f64);
        if stats.status == JobStatus::Queued {
            let waited = (now.as_millis() - stats.earliest_run_at.as_millis()).max(0);
            metrics::gauge!(OLDEST_QUEUED_SECONDS, "kind" => stats.kind)
                .set(waited as f64 / 1000.0);
        }
    }
    let mut response = (render.0)().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// `GET /metrics` with a key of any role.
pub(crate) async fn with_key(State(api): State<Api>, caller: Caller) -> Result<Response, Problem> {
    caller.require(Role::Viewer)?;
    render(&api).await
}

/// `GET /metrics` without a key, for a listener only the monitoring network reaches.
pub(crate) async fn open(State(api): State<Api>) -> Result<Response, Problem> {
    render(&api).await
}
