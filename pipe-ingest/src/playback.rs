//! `POST /v1/stream/playback`: the recorder that made a recording asks for a short-lived
//! link to its MP4, so the page can play it back right after Stop. The resume token is
//! the capability: only the recorder that holds it can ask, and it asks from an origin the
//! recording's environment allows, while that environment allows client playback.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use pipe_core::{ArtifactKind, RecordingId, RecordingState, Timestamp, UrlOptions};
use pipe_http::{Problem, ProblemType};
use serde::{Deserialize, Serialize};

use crate::{Ingest, IntakeError};

/// What the recorder sends.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Ask {
    recording: String,
    resume_token: String,
}

/// What it gets back. The links are absent until the files are stored.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    recording: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mp4_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_url: Option<String>,
    /// When the links stop working (RFC 3339).
    expires: String,
}

/// `OPTIONS`: a page on another origin may send the JSON `POST`; whether its origin may
/// see the answer is decided by the recording's environment on the `POST` itself.
pub(crate) async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

pub(crate) async fn answer(
    State(ingest): State<Ingest>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = headers.get(header::ORIGIN).cloned();
    let mut response = match links(&ingest, origin.as_ref(), &body).await {
        Ok(answer) => {
            let mut response = axum::Json(answer).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(problem) => problem.into_response(),
    };
    if let Some(origin) = origin {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn links(
    ingest: &Ingest,
    origin: Option<&HeaderValue>,
    body: &[u8],
) -> Result<Answer, Problem> {
    let inner = &ingest.inner;
    let ask: Ask = serde_json::from_slice(body).map_err(|e| {
        Problem::invalid(
            "body",
            format!("send {{\"recording\", \"resumeToken\"}} as JSON: {e}"),
        )
    })?;
    // A wrong token and an unknown recording read the same: the token is the capability.
    let unknown = || Problem::not_found(format_args!("recording {}", ask.recording));
    let id: RecordingId = ask.recording.parse().map_err(|_| unknown())?;
    if !ingest.check_resume_token(&id, &ask.resume_token) {
        return Err(unknown());
    }
    let recording = match inner.intake.catalog().recording(&id).await {
        Ok(r) => r,
        Err(e) if e.is_not_found() => return Err(unknown()),
        Err(e) => return Err(e.into()),
    };
    let origin = origin.and_then(|o| o.to_str().ok()).unwrap_or("");
    let admission = inner
        .intake
        .admit(Some(recording.environment.as_str()), origin)
        .await
        .map_err(|e| match e {
            IntakeError::UnknownEnvironment(_) => unknown(),
            other => crate::problem_for(other),
        })?;
    if !admission.client_playback {
        return Err(Problem::new(
            ProblemType::Forbidden,
            format!(
                "client playback is turned off for environment {}",
                recording.environment
            ),
        ));
    }
    let Some((sink_id, sink)) = &inner.playback else {
        return Err(Problem::new(
            ProblemType::Forbidden,
            "this server does not offer client playback",
        ));
    };
    let ttl: Duration = inner.config.playback_ttl;
    let mut answer = Answer {
        recording: id.to_string(),
        state: recording.state.as_str(),
        mp4_url: None,
        snapshot_url: None,
        expires: Timestamp::now().plus(ttl).to_rfc3339(),
    };
    if matches!(
        recording.state,
        RecordingState::Receiving | RecordingState::Failed
    ) {
        return Ok(answer);
    }
    let copies = inner.intake.catalog().copies(&id).await?;
    for copy in copies.iter().filter(|c| &c.sink == sink_id) {
        let url = sink
            .url(&copy.key, UrlOptions::default().with_expires_in(ttl))
            .await?;
        match copy.kind {
            ArtifactKind::Mp4 => answer.mp4_url = url,
            ArtifactKind::Snapshot => answer.snapshot_url = url,
            _ => {}
        }
    }
    Ok(answer)
}
