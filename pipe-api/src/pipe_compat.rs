//! Routes for code written against the hosted Pipe's REST API v1: `GET /video/all`,
//! `GET /video/{id}`, `GET /account`, `GET /environment`, with the key in `X-PIPE-AUTH`
//! and Pipe's envelope `{"status":"OK","message":"Request successful",
//! "request_method":"GET", …}`. A compatibility layer: new code should use `/v1/`.
//!
//! Pipe's video object holds every value as a string. Fields we hold are filled the way
//! Pipe fills them (`length` `"5.00"`, `converted` `"1"`, `datetime` `"2016-03-21
//! 17:39:22"` in UTC); the personal data fields (`ipv4`, `ua`, `http_referer`,
//! `camera_name`, `microphone_name`) hold what the environment collects and are `null`
//! otherwise, as Pipe sends a value it does not have.
//! `id` is the recording's number as a string, as Pipe's video ids are (the `pipe`
//! webhooks carry the same number), and `name` our recording id (Pipe's stream name is
//! also the file stem). `/video/{id}` takes either.
//! Errors are problem documents that carry Pipe's `message` and `status_code` too, so a
//! client that checks `status != "OK"` and reads `message` works unchanged.
//!
//! `DELETE /video/{id}` (an editor's key or more) asks for the recording's erasure from
//! every sink, as `DELETE /v1/recordings/{id}` does, and answers the envelope at once.

use axum::Json;
use axum::extract::{Path, State};
use pipe_core::{Artifact, ArtifactKind, Copy, ListOptions, Recording, RecordingState, Role};
use pipe_http::Problem;
use serde_json::{Value, json};

use crate::{Api, Caller};

/// Pipe's error envelope members on a problem document.
fn pipe_error(problem: Problem) -> Problem {
    let message = problem.detail.clone();
    let code = problem.status.as_u16();
    problem
        .with_extension("message", json!(message))
        .with_extension("status_code", json!(code))
}

fn caller(caller: Result<Caller, Problem>) -> Result<Caller, Problem> {
    let caller = caller.map_err(pipe_error)?;
    caller.require(Role::Viewer).map_err(pipe_error)?;
    Ok(caller)
}

fn envelope(members: Value) -> Json<Value> {
    let mut body = json!({
        "status": "OK",
        "message": "Request successful",
        "request_method": "GET",
    });
    if let (Some(body), Some(members)) = (body.as_object_mut(), members.as_object()) {
        body.extend(members.clone());
    }
    Json(body)
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

/// One recording as Pipe's REST API shows a video.
async fn video(api: &Api, recording: &Recording) -> Result<Value, Problem> {
    let catalog = &api.inner.catalog;
    let (artifacts, copies) = tokio::try_join!(
        catalog.artifacts(&recording.id),
        catalog.copies(&recording.id)
    )?;
    let of = |kind| artifacts.iter().find(|a: &&Artifact| a.kind == kind);
    let media = recording.media.as_ref();
    let (width, height) = media.map_or((0, 0), |m| m.display_size());
    let container = media.map(|m| m.container.to_ascii_lowercase()).or_else(|| {
        recording
            .mime_type
            .as_deref()
            .and_then(|m| m.split(['/', ';']).nth(1))
            .map(str::to_owned)
    });
    let mp4 = of(ArtifactKind::Mp4);
    let link = match mp4 {
        Some(mp4) => crate::recordings::link(api, &recording.environment, mp4, &copies).await,
        None => None,
    };
    let stored = |kind: ArtifactKind| copies.iter().any(|c: &Copy| c.kind == kind);
    let created = recording.created.to_utc_string();
    let mut video = json!({
        "id": recording.number.to_string(),
        "name": recording.id.as_str(),
        "original_container": container,
        "length": media.map(|m| format!("{:.2}", m.duration.as_secs_f64())),
        "datetime": created,
        "datetimeAdjusted": created,
        "ipv4": recording.personal.ip,
        "ua": recording.personal.user_agent,
        "http_referer": recording.personal.referer,
        "camera_name": recording.personal.camera_name,
        "microphone_name": recording.personal.microphone_name,
        "orig_width": media.map(|m| m.width.to_string()),
        "orig_height": media.map(|m| m.height.to_string()),
        "mrt": null,
        "converted": flag(mp4.is_some()),
        "transcoded": flag(mp4.is_some()),
        "size": mp4.map(|a| a.size).or(recording.length).map(|s| s.to_string()),
        "width": width.to_string(),
        "height": height.to_string(),
        "hasAudio": flag(media.is_some_and(|m| m.has_audio())),
        "audio_only": flag(media.is_some_and(|m| !m.has_video())),
        "rotation": media.map_or(0, |m| m.rotation).to_string(),
        "source": "DESK",
        "payload": recording.payload.clone(),
    });
    // Two halves: one `json!` of forty members exceeds the macro's recursion limit.
    let storage = json!({
        "ftped": "0",
        "s3ed": "0",
        "sftped": "0",
        "dboxed": "0",
        "ytubed": "0",
        "not_stored": flag(!stored(ArtifactKind::Mp4) && recording.state == RecordingState::Copied),
        "retry_interval": "-1",
        "has_original": flag(of(ArtifactKind::Original).is_some()),
        "has_mp4": flag(mp4.is_some()),
        "has_snapshot": flag(of(ArtifactKind::Snapshot).is_some()),
        "has_filmstrip": "0",
        "anonymized": "0",
        "date_anonymized": null,
        "recovered": "0",
        "env_id": recording.environment.as_str(),
        "region": null,
        "checksum_md5": null,
        "checksum_sha1": null,
        "pipeS3Link": link,
    });
    if let (Some(video), Some(storage)) = (video.as_object_mut(), storage.as_object()) {
        video.extend(storage.clone());
    }
    Ok(video)
}

/// `GET /video/all`: every video the key may see, newest first (at most 1000).
pub(crate) async fn all(
    State(api): State<Api>,
    who: Result<Caller, Problem>,
) -> Result<Json<Value>, Problem> {
    let who = caller(who)?;
    let mut options = ListOptions::default().with_limit(1000);
    for env in &who.key.environments {
        options = options.with_environment(env.clone());
    }
    let recordings = api
        .inner
        .catalog
        .list_recordings(options)
        .await
        .map_err(|e| pipe_error(e.into()))?;
    let mut videos = Vec::with_capacity(recordings.len());
    for recording in &recordings {
        videos.push(video(&api, recording).await.map_err(pipe_error)?);
    }
    Ok(envelope(
        json!({"total_videos": videos.len(), "videos": videos}),
    ))
}

/// The recording a Pipe client names: by its number (Pipe's video ids are numbers, and
/// the `pipe` webhooks carry it) or by our id; 404 if the key may not see it.
async fn named(api: &Api, who: &Caller, id: &str) -> Result<Recording, Problem> {
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return crate::recordings::visible(api, who, id).await;
    }
    let not_found = || Problem::not_found(format_args!("video {id}"));
    let number: u64 = id.parse().map_err(|_| not_found())?;
    match api.inner.catalog.recording_by_number(number).await {
        Ok(recording) if who.sees(&recording.environment) => Ok(recording),
        Ok(_) => Err(not_found()),
        Err(e) if e.is_not_found() => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /video/{id}`.
pub(crate) async fn one(
    State(api): State<Api>,
    who: Result<Caller, Problem>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let who = caller(who)?;
    let recording = named(&api, &who, &id).await.map_err(pipe_error)?;
    let video = video(&api, &recording).await.map_err(pipe_error)?;
    Ok(envelope(json!({"total_videos": 1, "videos": [video]})))
}

/// `DELETE /video/{id}`: erases the recording from every sink.
pub(crate) async fn delete(
    State(api): State<Api>,
    who: Result<Caller, Problem>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let who = caller(who)?;
    let recording = named(&api, &who, &id).await.map_err(pipe_error)?;
    who.require(Role::Editor).map_err(pipe_error)?;
    crate::recordings::request_deletion(&api, &who, recording.id.as_str())
        .await
        .map_err(pipe_error)?;
    let mut body = envelope(json!({}));
    body.0["request_method"] = json!("DELETE");
    Ok(body)
}

/// `GET /account`: what this key is.
pub(crate) async fn account(who: Result<Caller, Problem>) -> Result<Json<Value>, Problem> {
    let who = caller(who)?;
    Ok(envelope(json!({"account_details": {
        "api_key_id": who.key.id.as_str(),
        "role": who.key.role.as_str(),
        "environments": who.key.environments.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
    }})))
}

/// `GET /environment`: the environments this key may see.
pub(crate) async fn environment(
    State(api): State<Api>,
    who: Result<Caller, Problem>,
) -> Result<Json<Value>, Problem> {
    let who = caller(who)?;
    let all = api
        .inner
        .environments
        .list_environments()
        .await
        .map_err(|e| pipe_error(e.into()))?;
    let details: Vec<Value> = all
        .iter()
        .filter(|e| who.sees(&e.id))
        .map(|e| {
            json!({
                "env_id": e.id.as_str(),
                "name": e.name,
                "whitelisted_hosts": e.settings.allowed_hosts,
            })
        })
        .collect();
    Ok(envelope(json!({"environment_details": details})))
}
