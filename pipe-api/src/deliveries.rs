//! The webhook delivery log and redelivery: `GET /v1/deliveries`,
//! `GET /v1/recordings/{id}/deliveries` and `POST /v1/deliveries/redeliver`.
//!
//! A *delivery* is one event on its way to one endpoint; each try is an *attempt*, logged
//! with the endpoint's status, the start of its answer and the time it took. Redelivery
//! sends the same event again (same `webhook-id`, so receivers deduplicate; a fresh
//! timestamp and signature) through the job system, retried on the delivery schedule.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pipe_core::{
    DeliveryAttempt, DeliveryFilter, EventId, JobFilter, JobKind, JobRecord, JobStatus, NewJob,
    RecordingId, Role, Timestamp,
};
use pipe_http::{Problem, ProblemType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::extract::{JsonBody, MAX_LIMIT, QueryParams, limit, time};
use crate::recordings::visible;
use crate::{Api, Caller};

/// One attempt to deliver an event to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptView {
    /// The event's id, sent as `webhook-id`.
    event: String,
    /// The event's name.
    event_name: String,
    /// The recording it is about.
    recording: String,
    /// The endpoint's id.
    endpoint: String,
    /// When the attempt started (RFC 3339).
    at: String,
    /// How long it took, in milliseconds.
    duration_ms: u64,
    /// The endpoint's HTTP status, if it answered.
    status: Option<u16>,
    /// Whether the endpoint accepted the event.
    delivered: bool,
    /// The first 4 KiB of the endpoint's answer; shown to editor and admin keys only.
    response: Option<String>,
    /// Why the attempt failed; shown to editor and admin keys only (it may name hosts).
    error: Option<String>,
}

impl AttemptView {
    fn new(attempt: DeliveryAttempt, with_details: bool) -> Self {
        let delivered = attempt.delivered();
        Self {
            event: attempt.event.to_string(),
            event_name: attempt.event_name.to_string(),
            recording: attempt.recording.to_string(),
            endpoint: attempt.endpoint,
            at: attempt.at.to_rfc3339(),
            duration_ms: attempt.duration_ms,
            status: attempt.status,
            delivered,
            response: Some(attempt.response).filter(|_| with_details),
            error: attempt.error.filter(|_| with_details),
        }
    }
}

/// Attempts, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptList {
    attempts: Vec<AttemptView>,
}

/// Where a delivery is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // documents the values of `state`; never built
pub(crate) enum DeliveryState {
    /// The endpoint accepted the event.
    Delivered,
    /// An attempt is due or under way.
    Pending,
    /// Given up: the endpoint refused for good, or the schedule ran out. Redeliver it.
    Failed,
}

/// One event on its way to one endpoint, with every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    /// The event's id, sent as `webhook-id`.
    event: String,
    /// The event's name.
    event_name: String,
    /// The endpoint's id.
    endpoint: String,
    /// Where the delivery is.
    #[schema(value_type = DeliveryState)]
    state: &'static str,
    /// Its attempts, oldest first.
    attempts: Vec<AttemptView>,
}

/// A recording's deliveries, in the order they began.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryList {
    deliveries: Vec<DeliveryView>,
}

/// Filters of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogQuery {
    /// Only attempts about this recording.
    recording: Option<String>,
    /// Only attempts at this endpoint.
    endpoint: Option<String>,
    /// Only attempts of this event (its `webhook-id`).
    event: Option<String>,
    /// `delivered` or `failed`.
    outcome: Option<String>,
    /// Only attempts at or after this time (RFC 3339).
    since: Option<String>,
    /// At most this many, 1 to 1000 (default 100). For the next page, pass the last
    /// attempt's `at` as `since`.
    limit: Option<String>,
}

/// What to deliver again: one delivery (`event` and `endpoint`), or every delivery that
/// failed for good since a time (`failed_since`, and optionally `endpoint`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Redeliver {
    /// The event's id (`webhook-id`) of the one delivery to make again.
    event: Option<String>,
    /// The endpoint: with `event`, the delivery's; with `failed_since`, only its
    /// deliveries.
    endpoint: Option<String>,
    /// Every failed delivery with an attempt at or after this time (RFC 3339).
    failed_since: Option<String>,
}

/// How many deliveries were queued again.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Redelivered {
    redelivered: usize,
}

/// An event or endpoint id as given: 1 to 128 visible ASCII characters.
fn id(field: &'static str, value: String) -> Result<String, Problem> {
    if (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value)
    } else {
        Err(Problem::invalid(
            field,
            "1 to 128 visible ASCII characters (an id as the log shows it)",
        ))
    }
}

/// The delivery log.
#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "webhooks",
    params(LogQuery),
    responses(
        (status = 200, description = "Attempts, oldest first", body = AttemptList),
        (status = 400, description = "A parameter is not valid", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such recording, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn log(
    State(api): State<Api>,
    caller: Caller,
    QueryParams(query): QueryParams<LogQuery>,
) -> Result<Json<AttemptList>, Problem> {
    caller.require(Role::Viewer)?;
    let limit = limit(query.limit.as_deref(), 100)?;
    let mut filter = DeliveryFilter::default()
        .environments(caller.key.environments.clone())
        .limit(limit);
    if let Some(id) = query.recording.as_deref() {
        filter = filter.recording(visible(&api, &caller, id).await?.id);
    }
    if let Some(endpoint) = query.endpoint {
        filter = filter.endpoint(id("endpoint", endpoint)?);
    }
    if let Some(event) = query.event {
        filter = filter.event(EventId::new(id("event", event)?));
    }
    match query.outcome.as_deref() {
        None => {}
        Some("delivered") => filter = filter.delivered(true),
        Some("failed") => filter = filter.delivered(false),
        Some(_) => return Err(Problem::invalid("outcome", "`delivered` or `failed`")),
    }
    if let Some(since) = query.since.as_deref() {
        filter = filter.since(time("since", since)?);
    }
    let details = caller.key.role.includes(Role::Editor);
    let attempts = api.inner.catalog.delivery_attempts(filter).await?;
    Ok(Json(AttemptList {
        attempts: attempts
            .into_iter()
            .map(|a| AttemptView::new(a, details))
            .collect(),
    }))
}

/// A recording's webhook deliveries: each event to each endpoint, with its state and
/// attempts.
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}/deliveries",
    tag = "webhooks",
    params(("id" = String, Path, description = "The recording's id")),
    responses(
        (status = 200, description = "Its deliveries", body = DeliveryList),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such recording, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn of_recording(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryList>, Problem> {
    caller.require(Role::Viewer)?;
    let recording = visible(&api, &caller, &id).await?;
    let catalog = &api.inner.catalog;
    let (attempts, jobs) = tokio::try_join!(
        catalog.delivery_attempts(
            DeliveryFilter::default()
                .recording(recording.id.clone())
                .limit(MAX_LIMIT)
        ),
        catalog.jobs(JobFilter::default().recording(recording.id.clone())),
    )?;
    let details = caller.key.role.includes(Role::Editor);

    // Each (event, endpoint) in the order it began: its first attempt, or its job.
    let mut deliveries = Deliveries::default();
    for attempt in attempts {
        let view = deliveries.of(
            &attempt.event,
            attempt.event_name.as_str(),
            &attempt.endpoint,
        );
        view.state = if attempt.delivered() {
            "delivered"
        } else {
            "failed"
        };
        view.attempts.push(AttemptView::new(attempt, details));
    }
    for job in &jobs {
        if let JobKind::Deliver { event, endpoint } = &job.kind {
            let view = deliveries.of(&event.id, event.name.as_str(), endpoint);
            view.state = match job.status {
                JobStatus::Queued | JobStatus::Running => "pending",
                JobStatus::Dead => "failed",
                JobStatus::Done => view.state,
            };
        }
    }
    Ok(Json(DeliveryList {
        deliveries: deliveries.views,
    }))
}

/// Deliveries in the order they began, found by (event, endpoint).
#[derive(Default)]
struct Deliveries {
    views: Vec<DeliveryView>,
    index: BTreeMap<(String, String), usize>,
}

impl Deliveries {
    /// The delivery of `event` to `endpoint`, begun now if it was not yet.
    fn of(&mut self, event: &EventId, name: &str, endpoint: &str) -> &mut DeliveryView {
        let key = (event.to_string(), endpoint.to_owned());
        let next = self.views.len();
        let i = *self.index.entry(key).or_insert(next);
        if i == next {
            self.views.push(DeliveryView {
                event: event.to_string(),
                event_name: name.to_owned(),
                endpoint: endpoint.to_owned(),
                state: "delivered",
                attempts: Vec::new(),
            });
        }
        &mut self.views[i]
    }
}

/// Deliver again: one delivery, or every delivery that failed since a time.
#[utoipa::path(
    post,
    path = "/v1/deliveries/redeliver",
    tag = "webhooks",
    request_body = Redeliver,
    responses(
        (status = 202, description = "Queued again: the same event (same `webhook-id`) with a fresh timestamp and signature", body = Redelivered),
        (status = 400, description = "The body is not valid", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The key may not redeliver", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The recording is being deleted", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn redeliver(
    State(api): State<Api>,
    caller: Caller,
    JsonBody(body): JsonBody<Redeliver>,
) -> Result<(StatusCode, Json<Redelivered>), Problem> {
    caller.require(Role::Editor)?;
    let endpoint = body.endpoint.map(|e| id("endpoint", e)).transpose()?;
    let redelivered = match (body.event, body.failed_since) {
        (Some(event), None) => {
            let endpoint = endpoint
                .ok_or_else(|| Problem::invalid("endpoint", "the endpoint of the delivery"))?;
            redeliver_one(&api, &caller, EventId::new(id("event", event)?), endpoint).await?;
            1
        }
        (None, Some(since)) => {
            redeliver_failed(&api, &caller, time("failed_since", &since)?, endpoint).await?
        }
        _ => {
            return Err(Problem::invalid(
                "event",
                "give either `event` and `endpoint`, or `failed_since`",
            ));
        }
    };
    Ok((StatusCode::ACCEPTED, Json(Redelivered { redelivered })))
}

/// Queues the delivery of `event` to `endpoint` again.
async fn redeliver_one(
    api: &Api,
    caller: &Caller,
    event: EventId,
    endpoint: String,
) -> Result<(), Problem> {
    let not_found = || {
        Problem::not_found(format_args!(
            "delivery of event {event} to endpoint {endpoint:?}"
        ))
    };
    let logged = api
        .inner
        .catalog
        .delivery_attempts(
            DeliveryFilter::default()
                .event(event.clone())
                .endpoint(endpoint.clone())
                .environments(caller.key.environments.clone())
                .limit(1),
        )
        .await?;
    let Some(first) = logged.into_iter().next() else {
        return Err(not_found());
    };
    let recording = visible(api, caller, first.recording.as_str()).await?;
    if recording.deleting.is_some() {
        return Err(deleting(&recording.id));
    }
    let jobs = jobs_of(api, &recording.id).await?;
    if let Some(job) = deliver_job(&jobs, &event, &endpoint) {
        api.inner
            .catalog
            .requeue_job(job.id, Timestamp::now())
            .await?;
        return Ok(());
    }
    // Accepted at the first attempt: no delivery job yet. The notification holds the
    // event as it was first sent.
    let event = jobs
        .iter()
        .find_map(|job| match &job.kind {
            JobKind::Notify { event: e } | JobKind::Deliver { event: e, .. } if e.id == event => {
                Some(e.clone())
            }
            _ => None,
        })
        .ok_or_else(not_found)?;
    api.inner
        .catalog
        .commit(
            pipe_core::Change::new(recording.id.clone())
                .enqueue(NewJob::new(JobKind::Deliver { event, endpoint })),
        )
        .await?;
    Ok(())
}

/// Queues again every delivery that was given up and has a failed attempt at or after
/// `since` (at `endpoint`, if given), in the caller's environments; how many.
async fn redeliver_failed(
    api: &Api,
    caller: &Caller,
    mut since: Timestamp,
    endpoint: Option<String>,
) -> Result<usize, Problem> {
    let catalog = &api.inner.catalog;
    let mut failed: BTreeMap<RecordingId, BTreeSet<(String, String)>> = BTreeMap::new();
    loop {
        let mut filter = DeliveryFilter::default()
            .delivered(false)
            .since(since)
            .environments(caller.key.environments.clone())
            .limit(MAX_LIMIT);
        if let Some(endpoint) = &endpoint {
            filter = filter.endpoint(endpoint.clone());
        }
        let page = catalog.delivery_attempts(filter).await?;
        let full = page.len() == MAX_LIMIT as usize;
        let last = page.last().map(|a| a.at);
        for attempt in page {
            failed
                .entry(attempt.recording)
                .or_default()
                .insert((attempt.event.to_string(), attempt.endpoint));
        }
        match last {
            // Attempts of the last millisecond are read again: the set keeps each once.
            Some(at) if full && at > since => since = at,
            _ => break,
        }
    }
    let mut redelivered = 0;
    for (recording, deliveries) in failed {
        // A recording being deleted sends nothing again.
        match catalog.recording(&recording).await {
            Ok(r) if r.deleting.is_none() => {}
            Ok(_) => continue,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        }
        let jobs = jobs_of(api, &recording).await?;
        for job in &jobs {
            if let (JobKind::Deliver { event, endpoint }, JobStatus::Dead) = (&job.kind, job.status)
                && deliveries.contains(&(event.id.to_string(), endpoint.clone()))
            {
                catalog.requeue_job(job.id, Timestamp::now()).await?;
                redelivered += 1;
            }
        }
    }
    Ok(redelivered)
}

async fn jobs_of(api: &Api, recording: &RecordingId) -> Result<Vec<JobRecord>, Problem> {
    Ok(api
        .inner
        .catalog
        .jobs(JobFilter::default().recording(recording.clone()))
        .await?)
}

fn deliver_job<'j>(
    jobs: &'j [JobRecord],
    event: &EventId,
    endpoint: &str,
) -> Option<&'j JobRecord> {
    jobs.iter().find(|job| {
        matches!(&job.kind, JobKind::Deliver { event: e, endpoint: p } if &e.id == event && p == endpoint)
    })
}

fn deleting(id: &RecordingId) -> Problem {
    Problem::new(
        ProblemType::Conflict,
        format!("recording {id} is being deleted: its events are not sent again"),
    )
}
