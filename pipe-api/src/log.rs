//! The access log: one line per API request.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use pipe_core::AuditEntry;

use crate::Api;
use crate::auth::LoggedKey;

/// Where the key extractor leaves the key it checked, for the log line.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeySlot(pub(crate) Arc<OnceLock<LoggedKey>>);

/// Logs key id, role, method, route template, status and duration of each request on
/// the target `pipe_api::access`. The route is the template (`/v1/recordings/{id}`), so
/// neither a query string (which may carry a signature) nor a key ever reaches the log.
/// With an audit log, appends the request to it too ([`audit_entry`]).
pub(crate) async fn access(State(api): State<Api>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let (mut parts, body) = request.into_parts();
    let params = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok();
    let mut request = Request::from_parts(parts, body);
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
    if let Some(log) = api.inner.audit.as_ref() {
        let target = params
            .as_ref()
            .map(|p| target(&route, p))
            .unwrap_or_default();
        let entry = audit_entry(key, &method, &route, target, response.status().as_u16());
        if let Err(e) = log.append_audit(entry).await {
            tracing::error!(error = %e, route, "the API call could not be audited");
        }
    }
    response
}

/// The audit entry of an API call: actor `key:<id>` (`anonymous` without a valid key),
/// its role, action `<METHOD> <route template>`, the target, and the status as outcome.
fn audit_entry(
    key: Option<&LoggedKey>,
    method: &axum::http::Method,
    route: &str,
    target: String,
    status: u16,
) -> AuditEntry {
    let actor = key.map_or_else(|| "anonymous".to_owned(), |k| format!("key:{}", k.id));
    let mut entry = AuditEntry::new(
        actor,
        format!("{method} {route}"),
        target,
        status.to_string(),
    );
    if let Some(key) = key {
        entry = entry.with_role(key.role.as_str());
    }
    entry
}

/// What a route acts on: `<kind>:<id>` from its first path parameter, the kind named by
/// the route (`/v1/recordings/{id}` → `recording:<id>`); empty for routes without one.
fn target(route: &str, params: &RawPathParams) -> String {
    let Some((_, value)) = params.iter().next() else {
        return String::new();
    };
    let kind = match route.trim_start_matches("/v1").split('/').nth(1) {
        Some("recordings" | "video") => "recording",
        Some("environments") => "environment",
        Some("webhooks") => "webhook",
        Some("keys") => "key",
        Some(other) => other,
        None => "",
    };
    format!("{kind}:{value}")
}
