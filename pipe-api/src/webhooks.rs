//! Webhook endpoints of environments: `/v1/environments/{id}/webhooks` (list, create) and
//! `/v1/webhooks/{id}` (read, change, delete, rotate the secret).
//!
//! Secrets are shown once: in the answer that creates the endpoint, and in the one that
//! rotates its secret. A rotation keeps signing with the old secret too for an overlap
//! (24 h unless told), so the receiver can switch at leisure. URLs are checked by the
//! API's [`UrlGuard`] (the SSRF guard) when they are set.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use pipe_core::{
    BodyEncoding, EndpointStore, EventFilter, Role, StoredEndpoint, Timestamp, WireFormat,
};
use pipe_http::{Problem, ProblemType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::JsonBody;
use crate::{Api, Caller};

/// A webhook endpoint, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointView {
    /// Its id: deliveries are queued and logged under it.
    id: String,
    /// The environment whose events it gets.
    environment: String,
    /// Where events are POSTed; shown to editor and admin keys only (it may hold a
    /// token).
    url: Option<String>,
    /// `standard` or `pipe`.
    format: String,
    /// `json` or `form` (`form` only with `pipe`).
    content_type: String,
    /// The event names it gets, or `["all"]`.
    events: Vec<String>,
    /// Whether events are sent to it.
    enabled: bool,
    /// Why not, when it is disabled (by an operator, or because it answered 410).
    disabled_reason: Option<String>,
    /// Since when (RFC 3339) every delivery to it has failed; absent while it accepts
    /// events. After 5 days of that it is disabled.
    failing_since: Option<String>,
    /// Until when (RFC 3339) the previous secret signs as well, during a rotation.
    previous_secret_until: Option<String>,
    /// When it was created (RFC 3339).
    created: String,
    /// When it last changed (RFC 3339).
    updated: String,
}

impl EndpointView {
    fn new(endpoint: &StoredEndpoint, caller: &Caller) -> Self {
        let now = Timestamp::now();
        Self {
            id: endpoint.id.clone(),
            environment: endpoint.environment.to_string(),
            url: Some(endpoint.url.clone()).filter(|_| caller.key.role.includes(Role::Editor)),
            format: endpoint.format.to_string(),
            content_type: endpoint.encoding.to_string(),
            events: match &endpoint.events {
                EventFilter::All => vec!["all".to_owned()],
                EventFilter::Only(names) => names.iter().map(ToString::to_string).collect(),
            },
            enabled: endpoint.is_enabled(),
            disabled_reason: endpoint.disabled.clone(),
            failing_since: endpoint.failing_since.map(Timestamp::to_rfc3339),
            previous_secret_until: endpoint
                .previous_secret
                .as_ref()
                .filter(|p| p.until > now)
                .map(|p| p.until.to_rfc3339()),
            created: endpoint.created.to_rfc3339(),
            updated: endpoint.updated.to_rfc3339(),
        }
    }
}

/// An endpoint and its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointWithSecret {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// The signing secret: `whsec_…` for `standard` (give it to a Standard Webhooks
    /// verifier), Pipe's webhook key for `pipe`. Not shown again.
    secret: String,
}

/// An environment's endpoints, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointList {
    webhooks: Vec<EndpointView>,
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEndpoint {
    /// Its id (1 to 64 of `A-Za-z0-9_.-`); generated (`ep_…`) if absent.
    id: Option<String>,
    /// Where to POST events: `http` or `https`, at a public address unless the server
    /// re-admits it.
    url: String,
    /// `standard` (default) or `pipe`.
    format: Option<String>,
    /// `json` (default) or `form` (only with `pipe`).
    content_type: Option<String>,
    /// The event names it gets; absent or `["all"]` for every event of its format.
    events: Option<Vec<String>>,
    /// For `pipe` only: Pipe's webhook key, so receivers written for Pipe keep their
    /// key. Generated if absent; `standard` secrets are always generated.
    secret: Option<String>,
}

/// A change to an endpoint: only the fields given change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateEndpoint {
    /// A new URL.
    url: Option<String>,
    /// `standard` or `pipe`.
    format: Option<String>,
    /// `json` or `form`.
    content_type: Option<String>,
    /// The event names it gets, or `["all"]`.
    events: Option<Vec<String>>,
    /// `false` stops deliveries to it; `true` resumes them (also after a 410 or days of
    /// failures).
    enabled: Option<bool>,
}

/// A rotation of the secret.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateSecret {
    /// Seconds the old secret still signs as well (default 86400; 0 ends it at once; at
    /// most 30 days).
    overlap_secs: Option<u64>,
    /// For `pipe` only: the new key (generated if absent).
    secret: Option<String>,
}

const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);

fn store(api: &Api) -> Result<&Arc<dyn EndpointStore>, Problem> {
    api.inner.endpoints.as_ref().ok_or_else(|| {
        Problem::not_found("webhook endpoints: this API was built without an endpoint store")
    })
}

/// The endpoint `id` if the caller may see its environment; 404 otherwise.
async fn visible(api: &Api, caller: &Caller, id: &str) -> Result<StoredEndpoint, Problem> {
    let not_found = || Problem::not_found(format_args!("webhook endpoint {id}"));
    StoredEndpoint::check_id(id).map_err(|_| not_found())?;
    match store(api)?.endpoint(id).await {
        Ok(endpoint) if caller.sees(&endpoint.environment) => Ok(endpoint),
        Ok(_) => Err(not_found()),
        Err(e) if e.is_not_found() => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

fn format(value: &str) -> Result<WireFormat, Problem> {
    value
        .parse()
        .map_err(|_| Problem::invalid("format", "`standard` or `pipe`"))
}

fn encoding(value: &str) -> Result<BodyEncoding, Problem> {
    value
        .parse()
        .map_err(|_| Problem::invalid("content_type", "`json` or `form`"))
}

fn events(names: Vec<String>) -> Result<EventFilter, Problem> {
    EventFilter::from_names(names).map_err(|e| match e {
        pipe_core::Error::Invalid { detail, .. } => Problem::invalid("events", detail),
        other => other.into(),
    })
}

/// Checks the URL with the guard, if the API has one.
async fn check_url(api: &Api, url: &str) -> Result<(), Problem> {
    if url.len() > 2048 || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Problem::invalid(
            "url",
            "an http:// or https:// URL of at most 2048 characters",
        ));
    }
    match &api.inner.url_guard {
        Some(guard) => guard.check_url(url).await.map_err(|e| match e {
            pipe_core::Error::Invalid { detail, .. } => Problem::invalid("url", detail),
            other => other.into(),
        }),
        None => Ok(()),
    }
}

fn consistent(endpoint: &StoredEndpoint) -> Result<(), Problem> {
    if endpoint.format == WireFormat::Standard && endpoint.encoding == BodyEncoding::Form {
        return Err(Problem::invalid(
            "content_type",
            "`form` is Pipe's encoding: use it with the `pipe` format",
        ));
    }
    Ok(())
}

/// A new secret for `format`: a `whsec_` secret of 256 random bits for `standard`; for
/// `pipe`, the key given or 256 random bits in URL-safe base64.
fn new_secret(format: WireFormat, given: Option<String>) -> Result<String, Problem> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Problem::new(ProblemType::Internal, e.to_string()))?;
    match (format, given) {
        (WireFormat::Standard, None) => Ok(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )),
        (WireFormat::Standard, Some(_)) => Err(Problem::invalid(
            "secret",
            "`standard` secrets are generated; give a secret only for the `pipe` format",
        )),
        (WireFormat::Pipe, Some(given)) if (8..=256).contains(&given.len()) => Ok(given),
        (WireFormat::Pipe, Some(_)) => Err(Problem::invalid(
            "secret",
            "Pipe's webhook key: 8 to 256 characters",
        )),
        (WireFormat::Pipe, None) => {
            Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key))
        }
    }
}

const PROBLEM: &str = "application/problem+json";

/// List an environment's webhook endpoints.
#[utoipa::path(
    get,
    path = "/v1/environments/{id}/webhooks",
    tag = "webhooks",
    params(("id" = String, Path, description = "The environment's id")),
    responses(
        (status = 200, description = "Its endpoints, oldest first", body = EndpointList),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 404, description = "No such environment, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 429, description = "Too many requests", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointList>, Problem> {
    caller.require(Role::Viewer)?;
    let environment = crate::environments::visible(&api, &caller, &id).await?.id;
    let endpoints = store(&api)?.endpoints(&environment).await?;
    Ok(Json(EndpointList {
        webhooks: endpoints
            .iter()
            .map(|e| EndpointView::new(e, &caller))
            .collect(),
    }))
}

/// Add a webhook endpoint to an environment; its secret is in this answer only.
#[utoipa::path(
    post,
    path = "/v1/environments/{id}/webhooks",
    tag = "webhooks",
    params(("id" = String, Path, description = "The environment's id")),
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Created; the secret is not shown again", body = EndpointWithSecret),
        (status = 400, description = "The body is not valid, or the URL points where webhooks may not go", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 403, description = "The key may not manage webhooks", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 404, description = "No such environment, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 409, description = "The id is taken", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 415, description = "The body is not JSON", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreateEndpoint>,
) -> Result<(StatusCode, Json<EndpointWithSecret>), Problem> {
    caller.require(Role::Viewer)?;
    let environment = crate::environments::visible(&api, &caller, &id).await?.id;
    caller.require(Role::Editor)?;
    let endpoint_id = match body.id {
        Some(id) => {
            StoredEndpoint::check_id(&id).map_err(|e| Problem::invalid("id", e.to_string()))?;
            id
        }
        None => StoredEndpoint::generate_id(),
    };
    let format = body
        .format
        .as_deref()
        .map(format)
        .transpose()?
        .unwrap_or_default();
    check_url(&api, &body.url).await?;
    let secret = new_secret(format, body.secret)?;
    let mut endpoint = StoredEndpoint::new(endpoint_id, environment, body.url, secret);
    endpoint.format = format;
    if let Some(content_type) = body.content_type.as_deref() {
        endpoint.encoding = encoding(content_type)?;
    }
    if let Some(names) = body.events {
        endpoint.events = events(names)?;
    }
    consistent(&endpoint)?;
    let created = store(&api)?
        .create_endpoint(endpoint)
        .await
        .map_err(|e| match e {
            pipe_core::Error::AlreadyExists { what } => {
                Problem::new(ProblemType::Conflict, format!("{what} exists already"))
            }
            other => other.into(),
        })?;
    tracing::info!(endpoint = %created.id, environment = %created.environment, "webhook endpoint created");
    Ok((
        StatusCode::CREATED,
        Json(EndpointWithSecret {
            endpoint: EndpointView::new(&created, &caller),
            secret: created.secret,
        }),
    ))
}

/// Get a webhook endpoint (without its secret).
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 404, description = "No such endpoint, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 429, description = "Too many requests", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, Problem> {
    caller.require(Role::Viewer)?;
    let endpoint = visible(&api, &caller, &id).await?;
    Ok(Json(EndpointView::new(&endpoint, &caller)))
}

/// Change a webhook endpoint: its URL, format, events, or whether it is enabled.
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "Changed; the next event sees it", body = EndpointView),
        (status = 400, description = "The body is not valid, or the URL points where webhooks may not go", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 403, description = "The key may not manage webhooks", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 404, description = "No such endpoint, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 415, description = "The body is not JSON", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn update(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateEndpoint>,
) -> Result<Json<EndpointView>, Problem> {
    caller.require(Role::Viewer)?;
    let mut endpoint = visible(&api, &caller, &id).await?;
    caller.require(Role::Editor)?;
    if let Some(url) = body.url {
        check_url(&api, &url).await?;
        endpoint.url = url;
    }
    if let Some(value) = body.format.as_deref() {
        let changed = format(value)?;
        if changed != endpoint.format {
            return Err(Problem::invalid(
                "format",
                "the format of an endpoint does not change (its secret is of its format): \
                 add an endpoint in the new format",
            ));
        }
    }
    if let Some(value) = body.content_type.as_deref() {
        endpoint.encoding = encoding(value)?;
    }
    if let Some(names) = body.events {
        endpoint.events = events(names)?;
    }
    match body.enabled {
        Some(true) => {
            endpoint.disabled = None;
            endpoint.failing_since = None;
        }
        Some(false) if endpoint.disabled.is_none() => {
            endpoint.disabled = Some(format!("disabled through the API by key {}", caller.key.id));
        }
        _ => {}
    }
    consistent(&endpoint)?;
    endpoint.updated = Timestamp::now();
    let changed = store(&api)?.replace_endpoint(endpoint).await?;
    tracing::info!(endpoint = %changed.id, "webhook endpoint changed");
    Ok(Json(EndpointView::new(&changed, &caller)))
}

/// Delete a webhook endpoint. Its attempts stay in the delivery log; deliveries still
/// queued for it fail.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 403, description = "The key may not manage webhooks", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 404, description = "No such endpoint, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Viewer)?;
    let endpoint = visible(&api, &caller, &id).await?;
    caller.require(Role::Editor)?;
    store(&api)?.delete_endpoint(&endpoint.id).await?;
    tracing::info!(endpoint = %endpoint.id, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate an endpoint's secret: the new one is in this answer only; the old one keeps
/// signing as well for the overlap.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    request_body = RotateSecret,
    responses(
        (status = 200, description = "Rotated; the new secret is not shown again", body = EndpointWithSecret),
        (status = 400, description = "The body is not valid", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 403, description = "The key may not manage webhooks", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 404, description = "No such endpoint, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 415, description = "The body is not JSON", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn rotate(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RotateSecret>,
) -> Result<Json<EndpointWithSecret>, Problem> {
    caller.require(Role::Viewer)?;
    let endpoint = visible(&api, &caller, &id).await?;
    caller.require(Role::Editor)?;
    let overlap = body
        .overlap_secs
        .map_or(StoredEndpoint::ROTATION_OVERLAP, Duration::from_secs);
    if overlap > MAX_OVERLAP {
        return Err(Problem::invalid(
            "overlap_secs",
            "at most 2592000 (30 days)",
        ));
    }
    let secret = new_secret(endpoint.format, body.secret)?;
    let rotated = store(&api)?
        .replace_endpoint(endpoint.rotated(secret, overlap))
        .await?;
    tracing::info!(endpoint = %rotated.id, "webhook endpoint secret rotated");
    Ok(Json(EndpointWithSecret {
        endpoint: EndpointView::new(&rotated, &caller),
        secret: rotated.secret,
    }))
}

/// What a test event gave.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TestResult {
    /// Whether the endpoint accepted it (a 2xx answer).
    delivered: bool,
    /// The endpoint's HTTP status, if it answered.
    status: Option<u16>,
    /// How long it took, in milliseconds.
    duration_ms: u64,
    /// The first 4 KiB of the endpoint's answer.
    response: String,
    /// Why it failed, if it did.
    error: Option<String>,
}

/// Send a test event (`webhook_test`, about no recording) to an endpoint now, signed as
/// its events are, and answer what it said. Not retried, not in the delivery log.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/test",
    tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "Sent; whether the endpoint accepted it is in the answer", body = TestResult),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 403, description = "The key may not manage webhooks", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
        (status = 404, description = "No such endpoint, the key may not see it, or this API sends no webhooks", body = crate::openapi::ProblemDoc, content_type = PROBLEM),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn test(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TestResult>, Problem> {
    caller.require(Role::Viewer)?;
    let endpoint = visible(&api, &caller, &id).await?;
    caller.require(Role::Editor)?;
    let notifier = api.inner.notifier.as_ref().ok_or_else(|| {
        Problem::not_found("webhook tests: this API was built without a notifier")
    })?;
    let event = pipe_core::Event::new(
        "webhook_test",
        pipe_core::RecordingId::generate(),
        serde_json::json!({
            "message": "A test event from Pipe: no recording is behind it.",
            "endpoint": endpoint.id,
        }),
    )
    .in_environment(endpoint.environment.clone());
    let attempted = notifier.attempt(&event, &endpoint.id).await;
    tracing::info!(endpoint = %endpoint.id, delivered = attempted.outcome.is_ok(), "webhook test event sent");
    Ok(Json(TestResult {
        delivered: attempted.outcome.is_ok(),
        status: attempted.status,
        duration_ms: u64::try_from(attempted.duration.as_millis()).unwrap_or(u64::MAX),
        response: String::from_utf8_lossy(&attempted.response).into_owned(),
        error: attempted.outcome.err().map(|e| e.to_string()),
    }))
}
