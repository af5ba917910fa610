//! `/v1/recordings`: list and get.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use pipe_core::{
    Artifact, Change, DeletionReason, EnvironmentId, JobFilter, JobKind, JobRecord, ListOptions,
    Recording, RecordingCursor, RecordingId, RecordingState, Role, SinkId, StorageSink, Timestamp,
    UrlOptions,
};
use pipe_http::{Problem, ProblemType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::extract::QueryParams;
use crate::{Api, Caller};

/// A recording as listed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordingSummary {
    /// Its id.
    id: String,
    /// The environment it belongs to.
    environment: String,
    /// Where it is on its way.
    #[schema(value_type = StateName)]
    state: &'static str,
    /// When it was started (RFC 3339).
    created: String,
    /// When its state last changed (RFC 3339).
    updated: String,
    /// The MIME type the recorder declared.
    mime_type: Option<String>,
    /// The operator's payload string.
    payload: Option<String>,
    /// The original's length in bytes, once recorded.
    length: Option<u64>,
    /// How its bytes arrived: streamed by a recorder, or a file uploaded (tus).
    #[schema(value_type = SourceName)]
    source: &'static str,
    /// For an upload, the length it declared, once declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    upload_length: Option<u64>,
    /// What the probe found, once probed.
    media: Option<MediaView>,
    /// Why it failed, if it did.
    failure: Option<String>,
    /// When its deletion was asked for (RFC 3339), while it is being erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    deleting: Option<String>,
    /// The recorder's IP address: only where the environment collects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<String>,
    /// The browser's user agent: only where the environment collects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    ua: Option<String>,
    /// The page the recorder was on: only where the environment collects it.
    #[serde(rename = "httpReferer", skip_serializing_if = "Option::is_none")]
    http_referer: Option<String>,
    /// The camera's name: only where the environment collects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cam_name: Option<String>,
    /// The microphone's name: only where the environment collects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    mic_name: Option<String>,
    /// When its personal data was erased, the recording being copied (RFC 3339): where
    /// the environment keeps it only until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymized: Option<String>,
}

/// The states of a recording.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // documents the values of `state`; never built
pub(crate) enum StateName {
    Receiving,
    Recorded,
    Converted,
    Copied,
    Failed,
}

/// How a recording's bytes arrived.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // documents the values of `source`; never built
pub(crate) enum SourceName {
    Recorder,
    Upload,
}

/// What the probe found in the original.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MediaView {
    /// The container (`webm`, `mp4`, …).
    container: String,
    /// The duration in seconds.
    duration: f64,
    /// Width in pixels as stored (0 without video).
    width: u32,
    /// Height in pixels as stored (0 without video).
    height: u32,
    /// The video codec, if there is video.
    video_codec: Option<String>,
    /// The audio codec, if there is audio.
    audio_codec: Option<String>,
    /// Frames per second, if known.
    frame_rate: Option<f64>,
    /// Rotation in degrees the player should apply.
    rotation: u16,
}

/// A recording with every step, copy and file.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordingDetail {
    #[serde(flatten)]
    summary: RecordingSummary,
    /// Each step of its way, in the order they were enqueued.
    steps: Vec<StepView>,
    /// The files it became, with download links where a sink can give one.
    artifacts: Vec<ArtifactView>,
    /// The verified copies in each sink.
    copies: Vec<CopyView>,
}

/// One step (a durable job) of a recording's way.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StepView {
    /// `probe`, `convert`, `copy`, `notify`, `deliver`, `cleanup`, …
    step: &'static str,
    /// For `copy`: the sink.
    sink: Option<String>,
    /// For `notify` and `deliver`: the event.
    event: Option<String>,
    /// For `deliver`: the webhook endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    /// `queued`, `running`, `done` or `dead`.
    status: &'static str,
    /// Attempts made so far.
    attempts: u32,
    /// The last attempt's error, if it failed; shown to editor and admin keys only (it
    /// may name storage paths or hosts).
    last_error: Option<String>,
}

/// A file a recording became.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArtifactView {
    /// `original`, `mp4` or `snapshot`.
    kind: &'static str,
    /// Its size in bytes.
    size: u64,
    /// Its SHA-256, hex.
    sha256: String,
    /// Its media type.
    content_type: String,
    /// A download link valid for the API's link lifetime, if a sink holding a copy gives
    /// links.
    url: Option<String>,
}

/// A verified copy of a file in a sink.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CopyView {
    /// The sink.
    sink: String,
    /// Which file.
    kind: &'static str,
    /// Its key in the sink.
    key: String,
    /// Its size in bytes.
    size: u64,
}

/// One page of recordings.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordingPage {
    /// Newest first; among recordings of the same millisecond, by id descending.
    recordings: Vec<RecordingSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Filters and paging of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only recordings of this environment.
    environment: Option<String>,
    /// Only recordings in this state.
    #[param(value_type = Option<StateName>)]
    state: Option<String>,
    /// Only recordings created at or after this time (RFC 3339).
    created_from: Option<String>,
    /// Only recordings created before this time (RFC 3339).
    created_until: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Recordings per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

impl From<&Recording> for RecordingSummary {
    fn from(r: &Recording) -> Self {
        Self {
            id: r.id.to_string(),
            environment: r.environment.to_string(),
            state: r.state.as_str(),
            created: r.created.to_rfc3339(),
            updated: r.updated.to_rfc3339(),
            mime_type: r.mime_type.clone(),
            payload: r.payload.clone(),
            length: r.length,
            source: r.source.as_str(),
            upload_length: r.upload_length,
            media: r.media.as_ref().map(|m| MediaView {
                container: m.container.clone(),
                duration: m.duration.as_secs_f64(),
                width: m.width,
                height: m.height,
                video_codec: m.video_codec.clone(),
                audio_codec: m.audio_codec.clone(),
                frame_rate: m.frame_rate,
                rotation: m.rotation,
            }),
            failure: r.failure.clone(),
            deleting: r.deleting.map(Timestamp::to_rfc3339),
            ip: r.personal.ip.clone(),
            ua: r.personal.user_agent.clone(),
            http_referer: r.personal.referer.clone(),
            cam_name: r.personal.camera_name.clone(),
            mic_name: r.personal.microphone_name.clone(),
            anonymized: r.anonymized.map(Timestamp::to_rfc3339),
        }
    }
}

fn encode_cursor(cursor: &RecordingCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", cursor.created.as_millis(), cursor.id))
}

fn decode_cursor(s: &str) -> Option<RecordingCursor> {
    let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (created, id) = text.split_once('.')?;
    Some(RecordingCursor::new(
        Timestamp::from_millis(created.parse().ok()?),
        id.parse().ok()?,
    ))
}

fn time(field: &'static str, value: Option<&str>) -> Result<Option<Timestamp>, Problem> {
    value.map(|v| crate::extract::time(field, v)).transpose()
}

/// List recordings.
#[utoipa::path(
    get,
    path = "/v1/recordings",
    tag = "recordings",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of recordings", body = RecordingPage),
        (status = 400, description = "A parameter is not valid", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "The environment does not exist or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<RecordingPage>, Problem> {
    caller.require(Role::Viewer)?;
    let limit = crate::extract::limit(query.limit.as_deref(), 100)?;
    let mut options = ListOptions::default().with_limit(limit).with_created(
        time("created_from", query.created_from.as_deref())?,
        time("created_until", query.created_until.as_deref())?,
    );
    if let Some(state) = query.state.as_deref() {
        options = options.with_state(RecordingState::parse(state).ok_or_else(|| {
            Problem::invalid(
                "state",
                "one of receiving, recorded, converted, copied, failed",
            )
        })?);
    }
    match query.environment.as_deref() {
        Some(env) => {
            let env: EnvironmentId = env
                .parse()
                .ok()
                .filter(|env| caller.sees(env))
                .ok_or_else(|| Problem::not_found(format_args!("environment {env}")))?;
            match api.inner.environments.environment(&env).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {
                    return Err(Problem::not_found(format_args!("environment {env}")));
                }
                Err(e) => return Err(e.into()),
            }
            options = options.with_environment(env);
        }
        None => {
            for env in &caller.key.environments {
                options = options.with_environment(env.clone());
            }
        }
    }
    if let Some(cursor) = query.cursor.as_deref() {
        let cursor = decode_cursor(cursor).ok_or_else(|| {
            Problem::invalid(
                "cursor",
                "pass the next_cursor of the previous page as it is",
            )
        })?;
        options = options.with_after(cursor);
    }
    let recordings = api.inner.catalog.list_recordings(options).await?;
    let next_cursor = (recordings.len() == limit as usize)
        .then(|| {
            recordings
                .last()
                .map(|r| encode_cursor(&RecordingCursor::after(r)))
        })
        .flatten();
    Ok(Json(RecordingPage {
        recordings: recordings.iter().map(RecordingSummary::from).collect(),
        next_cursor,
    }))
}

/// The recording `id` if the caller may see it; 404 as if it did not exist otherwise.
pub(crate) async fn visible(api: &Api, caller: &Caller, id: &str) -> Result<Recording, Problem> {
    let not_found = || Problem::not_found(format_args!("recording {id}"));
    let id: RecordingId = id.parse().map_err(|_| not_found())?;
    match api.inner.catalog.recording(&id).await {
        Ok(r) if caller.sees(&r.environment) => Ok(r),
        Ok(_) => Err(not_found()),
        // Erased: still 404, saying when and why to a caller who could see it.
        Err(e) if e.is_not_found() => match api.inner.catalog.tombstone(&id).await {
            Ok(t) if caller.sees(&t.environment) => Err(Problem::new(
                ProblemType::NotFound,
                format!(
                    "recording {id} not found: it was erased at {} UTC (deletion reason: {})",
                    t.erased.to_utc_string(),
                    t.reason.as_str()
                ),
            )),
            _ => Err(not_found()),
        },
        Err(e) => Err(e.into()),
    }
}

/// Get a recording with every step, copy and file.
#[utoipa::path(
    get,
    path = "/v1/recordings/{id}",
    tag = "recordings",
    params(("id" = String, Path, description = "The recording's id")),
    responses(
        (status = 200, description = "The recording", body = RecordingDetail),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such recording, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RecordingDetail>, Problem> {
    caller.require(Role::Viewer)?;
    let recording = visible(&api, &caller, &id).await?;
    let catalog = &api.inner.catalog;
    let (artifacts, copies, jobs) = tokio::try_join!(
        catalog.artifacts(&recording.id),
        catalog.copies(&recording.id),
        catalog.jobs(JobFilter::default().recording(recording.id.clone())),
    )?;
    let mut artifact_views = Vec::with_capacity(artifacts.len());
    for artifact in sorted(artifacts) {
        artifact_views.push(ArtifactView {
            kind: artifact.kind.as_str(),
            size: artifact.size,
            url: link(&api, &recording.environment, &artifact, &copies).await,
            sha256: artifact.sha256,
            content_type: artifact.content_type,
        });
    }
    Ok(Json(RecordingDetail {
        summary: RecordingSummary::from(&recording),
        steps: jobs
            .iter()
            .map(|job| step(job, caller.key.role.includes(Role::Editor)))
            .collect(),
        artifacts: artifact_views,
        copies: copies
            .iter()
            .map(|c| CopyView {
                sink: c.sink.to_string(),
                kind: c.kind.as_str(),
                key: c.key.to_string(),
                size: c.size,
            })
            .collect(),
    }))
}

/// Asks for the erasure of a recording the caller may see: from every sink, the spool
/// and the catalog, by a durable job. Idempotent.
pub(crate) async fn request_deletion(
    api: &Api,
    caller: &Caller,
    id: &str,
) -> Result<Recording, Problem> {
    let recording = visible(api, caller, id).await?;
    if recording.deleting.is_some() {
        return Ok(recording);
    }
    if recording.state == RecordingState::Receiving {
        return Err(Problem::new(
            ProblemType::Conflict,
            "the recording is still being received; delete it once it is recorded",
        ));
    }
    // Any state but `receiving`: a step that commits meanwhile does not make the
    // deletion fail, it only moves the recording on.
    let change = Change::new(recording.id.clone())
        .expect_state(RecordingState::Recorded)
        .expect_state(RecordingState::Converted)
        .expect_state(RecordingState::Copied)
        .expect_state(RecordingState::Failed)
        .delete(DeletionReason::Request)
        .enqueue(JobKind::Erase {
            recording: recording.id.clone(),
        });
    match api.inner.catalog.commit(change).await {
        Ok(recording) => {
            tracing::info!(recording = %recording.id, "deletion requested");
            Ok(recording)
        }
        // Another deletion won meanwhile: that one is under way.
        Err(pipe_core::Error::Precondition { .. }) => {
            let again = visible(api, caller, id).await?;
            if again.deleting.is_some() {
                Ok(again)
            } else {
                Err(Problem::new(
                    ProblemType::Conflict,
                    "the recording is still being received; delete it once it is recorded",
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Delete a recording from every place it is stored.
#[utoipa::path(
    delete,
    path = "/v1/recordings/{id}",
    tag = "recordings",
    params(("id" = String, Path, description = "The recording's id")),
    responses(
        (status = 202, description = "Its erasure is under way; it answers 404 once it is done", body = RecordingSummary),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The key may not delete recordings", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such recording, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "It is still being received", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RecordingSummary>), Problem> {
    caller.require(Role::Viewer)?;
    visible(&api, &caller, &id).await?;
    caller.require(Role::Editor)?;
    let recording = request_deletion(&api, &caller, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RecordingSummary::from(&recording)),
    ))
}

fn sorted(mut artifacts: Vec<Artifact>) -> Vec<Artifact> {
    artifacts.sort_by_key(|a| a.kind);
    artifacts
}

/// A link to `artifact` from the first sink that holds a copy of it and gives links: the
/// API's own sinks in their order, then the sinks of the recording's environment (the
/// operator's storages: an S3 bucket's presigned link, for one).
pub(crate) async fn link(
    api: &Api,
    environment: &EnvironmentId,
    artifact: &Artifact,
    copies: &[pipe_core::Copy],
) -> Option<String> {
    let mut sinks: Vec<(SinkId, Arc<dyn StorageSink>)> = api.inner.sinks.clone();
    if let Some(directory) = &api.inner.directory {
        match directory.sinks(environment).await {
            Ok(set) => sinks.extend(
                set.sinks
                    .iter()
                    .map(|named| (named.id.clone(), Arc::clone(&named.sink))),
            ),
            Err(e) => {
                tracing::warn!(%environment, error = %e, "could not read the environment's sinks")
            }
        }
    }
    for (id, sink) in &sinks {
        let Some(copy) = copies
            .iter()
            .find(|c| &c.sink == id && c.kind == artifact.kind)
        else {
            continue;
        };
        let options = UrlOptions::default().with_expires_in(api.inner.link_ttl);
        match sink.url(&copy.key, options).await {
            Ok(Some(url)) => return Some(url),
            Ok(None) => {}
            Err(e) => tracing::warn!(sink = %id, error = %e, "could not make a download link"),
        }
    }
    None
}

fn step(job: &JobRecord, with_errors: bool) -> StepView {
    let (sink, event, endpoint) = match &job.kind {
        JobKind::Copy { sink, .. } => (Some(sink.to_string()), None, None),
        JobKind::Notify { event } => (None, Some(event.name.to_string()), None),
        JobKind::Deliver { event, endpoint } => {
            (None, Some(event.name.to_string()), Some(endpoint.clone()))
        }
        _ => (None, None, None),
    };
    StepView {
        step: job.kind.name(),
        sink,
        event,
        endpoint,
        status: job.status.as_str(),
        attempts: job.attempts,
        last_error: job.last_error.clone().filter(|_| with_errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let cursor = RecordingCursor::new(
            Timestamp::from_millis(1_700_000_000_123),
            RecordingId::generate(),
        );
        assert_eq!(decode_cursor(&encode_cursor(&cursor)), Some(cursor));
        for bad in [
            "",
            "!!",
            "bm90IGEgY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("12.a/b"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
