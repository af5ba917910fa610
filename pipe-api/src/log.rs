//! The access log: one line per API request.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::LoggedKey;

/// Where the key extractor leaves the key it checked, for the log line.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeySlot(pub(crate) Arc<OnceLock<LoggedKey>>);

/// Logs key id, role, method, route template, status and duration of each request on
/// the target `pipe_api::access`. The route is the template (`/v1/recordings/{id}`), so
/// neither a query string (which may carry a signature) nor a key ever reaches the log.
pub(crate) async fn access(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let slot = KeySlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let key = slot.0.get();
    tracing::info!(
        target: "pipe_api::access",
        key = key.map(|k| k.id.as_str()).unwrap_or("-"),
        role = key.map(|k| k.role.as_str()).unwrap_or("-"),
        method = %method,
        route,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "api request"
    );
    response
}
