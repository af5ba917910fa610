//! tus 1.0.0 resumable uploads at `/v1/uploads/`: the second thin adapter over the
//! [`Intake`](crate::Intake), beside the streaming protocol. Core, creation, creation-with-upload,
//! creation-defer-length, expiration, termination and checksum (sha1, sha256); see
//! `PROTOCOL.md` for what an operator and a client need to know.
//!
//! - An upload is a recording like any other (`source: upload`): once its declared length
//!   is durable it is finished, probed, converted, copied and told in webhooks.
//! - Its address `/v1/uploads/<recording id>.<resume token>` is a capability: the token
//!   is the recording's HMAC, and the upload's own environment admits each request by
//!   its `Origin`, so the address is good for nothing elsewhere.
//! - `Upload-Offset` is only ever the durable length: a PATCH without a checksum is
//!   written as it arrives, [`PIECE`] bytes at a time, and what was durable when the
//!   connection broke is where the client resumes. A PATCH with an `Upload-Checksum` is
//!   held whole (up to [`MAX_CHECKSUMMED`]) and written only if it matches: a chunk that
//!   fails is discarded whole (460).
//! - It expires unfinished when its environment's abandonment time since it began runs
//!   out (`Upload-Expires`); then it answers 410 and the sweep deletes it.
//! - `Upload-Metadata` keys read: `filetype` (the MIME type), `environment`, `payload` (the
//!   operator's string, as in webhooks). `filename` is accepted and not kept (a file's
//!   name often names a person), so a HEAD gives back only the keys that are kept.
//! - Not supported: `X-HTTP-Method-Override`, concatenation, GET downloads.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{head, post};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use serde::Deserialize;
use sha1::Digest as _;

use crate::{Admission, Ingest, IntakeError, NewUpload, Placement, Upload};

/// The protocol version this server speaks.
pub const TUS_VERSION: &str = "1.0.0";
/// The extensions it offers.
pub const TUS_EXTENSIONS: &str = "creation,creation-with-upload,creation-defer-length,\
                                  expiration,termination,checksum";
/// The checksum algorithms it checks.
pub const TUS_CHECKSUMS: &str = "sha1,sha256";
/// Bytes of a PATCH without a checksum written to the spool at a time (each write is one
/// durable append, so this bounds both a connection's memory and the bytes a broken
/// connection can lose).
pub const PIECE: usize = 4 << 20;
/// The largest PATCH carrying an `Upload-Checksum`, which is held whole until it checks.
pub const MAX_CHECKSUMMED: usize = 64 << 20;
/// The largest `Upload-Metadata` header.
const MAX_METADATA: usize = 16 << 10;

const OFFSET_STREAM: &str = "application/offset+octet-stream";
const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
/// What a browser page may read of the answers (tus-js-client needs these).
const EXPOSED: &str = "Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, \
                       Tus-Max-Size, Tus-Extension, Upload-Metadata, Upload-Defer-Length, \
                       Upload-Concat, Upload-Expires";
/// What a browser page may send.
const ALLOWED: &str = "Origin, X-Requested-With, X-Request-ID, Content-Type, Upload-Length, \
                       Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, \
                       Upload-Concat, Upload-Checksum";

/// 460, tus's "Checksum Mismatch".
fn checksum_mismatch() -> StatusCode {
    StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The routes under `/v1/uploads`, with their CORS and `Tus-Resumable` answer headers.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(ingest: Ingest) -> Router<S> {
    Router::new()
        .route("/v1/uploads", post(create).options(discover))
        .route("/v1/uploads/", post(create).options(discover))
        .route(
            "/v1/uploads/{upload}",
            head(status)
                .patch(append)
                .delete(terminate)
                .options(discover),
        )
        // Bodies are read as they arrive, under this module's own limits.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn(answer_headers))
        .with_state(ingest)
}

/// What every answer carries: the protocol version, and for a browser page the right to
/// read it (the page's origin is checked by admission on every request; an answer to a
/// refused origin says only why).
async fn answer_headers(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED),
        );
    }
    response
}

/// The answer, whether the handler got to its end or refused on the way.
fn either(result: Result<Response, Response>) -> Response {
    result.unwrap_or_else(|refusal| refusal)
}

/// A refusal: its status and, for people, why.
fn refuse(status: StatusCode, why: impl std::fmt::Display) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// How tus answers each refusal of the intake.
fn refusal(e: IntakeError) -> Response {
    let status = match &e {
        IntakeError::Invalid { .. } | IntakeError::UnknownEnvironment(_) => StatusCode::BAD_REQUEST,
        IntakeError::OriginNotAllowed(_) => StatusCode::FORBIDDEN,
        IntakeError::UnknownRecording | IntakeError::BadToken => StatusCode::NOT_FOUND,
        IntakeError::Gone => StatusCode::GONE,
        IntakeError::Gap { .. }
        | IntakeError::OffsetMismatch { .. }
        | IntakeError::LengthMismatch { .. }
        | IntakeError::Finished => StatusCode::CONFLICT,
        IntakeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        IntakeError::Broken => StatusCode::INTERNAL_SERVER_ERROR,
        _ => {
            let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, &e);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    refuse(status, e)
}

/// 412 unless the client speaks 1.0.0.
fn speaks_tus(headers: &HeaderMap) -> Result<(), Response> {
    match headers.get(&TUS_RESUMABLE) {
        Some(v) if v == TUS_VERSION => Ok(()),
        _ => {
            let mut response = refuse(
                StatusCode::PRECONDITION_FAILED,
                "this server speaks tus 1.0.0: send Tus-Resumable: 1.0.0",
            );
            response
                .headers_mut()
                .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
            Err(response)
        }
    }
}

/// A header holding a length or an offset: digits only, as tus says.
fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, Response> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    parse_number(value.as_bytes()).map(Some).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            format_args!("{name} is not a non-negative integer"),
        )
    })
}

/// Digits only (no sign, no spaces), at most `u64`.
pub fn parse_number(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn origin(headers: &HeaderMap) -> &str {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `Upload-Metadata`: comma-separated `key` or `key base64(value)` pairs, keys unique and
/// without spaces or commas.
pub fn parse_metadata(value: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut pairs = BTreeMap::new();
    if value.trim().is_empty() {
        return Ok(pairs);
    }
    let base64 = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    for pair in value.split(',') {
        let pair = pair.trim_matches(' ');
        let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(format!(
                "metadata key {key:?} is empty or not printable ASCII"
            ));
        }
        if encoded.contains(' ') {
            return Err(format!("metadata {key}: one base64 value after the key"));
        }
        let decoded = base64
            .decode(encoded)
            .map_err(|_| format!("metadata {key}: the value is not base64"))?;
        if pairs.insert(key.to_owned(), decoded).is_some() {
            return Err(format!("metadata key {key} is given twice"));
        }
    }
    Ok(pairs)
}

/// What an upload's metadata says, as far as the server reads it.
#[derive(Debug, Default)]
struct Metadata {
    filetype: Option<String>,
    environment: Option<String>,
    payload: Option<String>,
}

fn read_metadata(headers: &HeaderMap) -> Result<Metadata, Response> {
    let bad = |why: String| {
        refuse(
            StatusCode::BAD_REQUEST,
            format_args!("Upload-Metadata: {why}"),
        )
    };
    let Some(value) = headers.get(&UPLOAD_METADATA) else {
        return Ok(Metadata::default());
    };
    if value.len() > MAX_METADATA {
        return Err(bad("at most 16 KiB".into()));
    }
    let value = value.to_str().map_err(|_| bad("not ASCII".into()))?;
    let mut pairs = parse_metadata(value).map_err(bad)?;
    let mut text = |key: &str| -> Result<Option<String>, Response> {
        pairs
            .remove(key)
            .map(|v| String::from_utf8(v).map_err(|_| bad(format!("{key} is not UTF-8"))))
            .transpose()
    };
    Ok(Metadata {
        filetype: text("filetype")?.filter(|t| !t.is_empty()),
        environment: text("environment")?.filter(|e| !e.is_empty()),
        payload: text("payload")?,
    })
}

/// The metadata a HEAD gives back: the keys the server kept.
fn kept_metadata(upload: &Upload, admission: &Admission) -> String {
    let base64 = base64::engine::general_purpose::STANDARD;
    let mut pairs = vec![format!(
        "environment {}",
        base64.encode(admission.environment.as_str())
    )];
    if let Some(filetype) = upload.mime_type() {
        pairs.push(format!("filetype {}", base64.encode(filetype)));
    }
    if let Some(payload) = upload.payload() {
        pairs.push(format!("payload {}", base64.encode(payload)));
    }
    pairs.join(",")
}

/// An `Upload-Checksum`: the algorithm's hasher and the digest the client sent.
enum Checksum {
    Sha1(sha1::Sha1, Vec<u8>),
    Sha256(sha2::Sha256, Vec<u8>),
}

impl Checksum {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha1(h, _) => h.update(data),
            Self::Sha256(h, _) => h.update(data),
        }
    }

    fn matches(self) -> bool {
        match self {
            Self::Sha1(h, want) => h.finalize().as_slice() == want.as_slice(),
            Self::Sha256(h, want) => h.finalize().as_slice() == want.as_slice(),
        }
    }
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
pub fn parse_checksum(value: &[u8]) -> Result<(&'static str, Vec<u8>), String> {
    let value = std::str::from_utf8(value).map_err(|_| "not ASCII".to_owned())?;
    let (algorithm, digest) = value
        .split_once(' ')
        .ok_or_else(|| "<algorithm> <base64 digest>".to_owned())?;
    let (name, len) = match algorithm {
        "sha1" => ("sha1", 20),
        "sha256" => ("sha256", 32),
        other => return Err(format!("{other:?} is not one of {TUS_CHECKSUMS}")),
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(digest.trim())
        .map_err(|_| "the digest is not base64".to_owned())?;
    if digest.len() != len {
        return Err(format!("a {name} digest is {len} bytes"));
    }
    Ok((name, digest))
}

fn checksum(headers: &HeaderMap) -> Result<Option<Checksum>, Response> {
    let Some(value) = headers.get(&UPLOAD_CHECKSUM) else {
        return Ok(None);
    };
    let (algorithm, digest) = parse_checksum(value.as_bytes()).map_err(|why| {
        refuse(
            StatusCode::BAD_REQUEST,
            format_args!("Upload-Checksum: {why}"),
        )
    })?;
    Ok(Some(match algorithm {
        "sha1" => Checksum::Sha1(sha1::Sha1::new(), digest),
        _ => Checksum::Sha256(sha2::Sha256::new(), digest),
    }))
}

/// The headers telling where an upload stands.
fn standing(response: &mut Response, admission: &Admission, upload: &Upload) {
    let headers = response.headers_mut();
    headers.insert(UPLOAD_OFFSET, HeaderValue::from(upload.len()));
    if !upload.is_finished()
        && let Ok(expires) = HeaderValue::from_str(&upload.expires(admission).to_http_date())
    {
        headers.insert(UPLOAD_EXPIRES, expires);
    }
}

/// Adds a request's body to `upload` at `offset` (see the module docs), then finishes the
/// upload if its declared length is durable.
async fn receive(
    ingest: &Ingest,
    admission: &Admission,
    upload: &mut Upload,
    offset: u64,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), Response> {
    let intake = ingest.intake();
    let content_type = headers.get(header::CONTENT_TYPE);
    if content_type.is_none_or(|v| v != OFFSET_STREAM) {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format_args!("the body of a PATCH is Content-Type: {OFFSET_STREAM}"),
        ));
    }
    if offset != upload.len() {
        return Err(refuse(
            StatusCode::CONFLICT,
            format_args!(
                "Upload-Offset is {offset}, the upload is at {}",
                upload.len()
            ),
        ));
    }
    if let Some(length) = number(headers, &UPLOAD_LENGTH)? {
        intake
            .declare_len(admission, upload, length)
            .await
            .map_err(refusal)?;
    }
    let mut sum = checksum(headers)?;
    let mut stream = body.into_data_stream();
    let mut held = BytesMut::new();
    let mut at = offset;
    let limit = if sum.is_some() {
        MAX_CHECKSUMMED
    } else {
        PIECE
    };
    let cut_off = loop {
        match stream.next().await {
            Some(Ok(data)) => {
                if let Some(sum) = &mut sum {
                    if held.len() + data.len() > limit {
                        return Err(refuse(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format_args!(
                                "a PATCH with Upload-Checksum is at most {limit} bytes: \
                                 send smaller chunks"
                            ),
                        ));
                    }
                    sum.update(&data);
                    held.extend_from_slice(&data);
                    continue;
                }
                let mut data: Bytes = data;
                while !data.is_empty() {
                    let take = data.len().min(limit - held.len());
                    held.extend_from_slice(&data.split_to(take));
                    if held.len() == limit {
                        at = write(ingest, admission, upload, at, held.split().freeze()).await?;
                    }
                }
            }
            Some(Err(_)) => break true,
            None => break false,
        }
    };
    // A checksummed chunk that was cut off or does not match is discarded whole.
    if let Some(sum) = sum {
        if cut_off {
            return Err(refuse(StatusCode::BAD_REQUEST, "the body was cut off"));
        }
        if !sum.matches() {
            return Err(refuse(
                checksum_mismatch(),
                "Upload-Checksum does not match the body: the chunk was discarded",
            ));
        }
    }
    if !held.is_empty() {
        // What arrived before a broken connection is kept too: the client resumes there.
        write(ingest, admission, upload, at, held.freeze()).await?;
    }
    if cut_off {
        return Err(refuse(StatusCode::BAD_REQUEST, "the body was cut off"));
    }
    finish_if_complete(ingest, upload).await
}

async fn write(
    ingest: &Ingest,
    admission: &Admission,
    upload: &mut Upload,
    at: u64,
    data: Bytes,
) -> Result<u64, Response> {
    ingest
        .intake()
        .append(admission, upload, at, data, Placement::AtDurable)
        .await
        .map_err(refusal)
}

/// Finishes `upload` once its declared length is durable (also when a crash came between
/// its last append and its finish: the next HEAD or PATCH does it).
async fn finish_if_complete(ingest: &Ingest, upload: &mut Upload) -> Result<(), Response> {
    if !upload.is_finished() && upload.declared_len() == Some(upload.len()) {
        let len = upload.len();
        ingest.intake().finish(upload, len).await.map_err(refusal)?;
    }
    Ok(())
}

/// `POST /v1/uploads/`: creation, with the first bytes if the body carries them.
async fn create(
    State(ingest): State<Ingest>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    either(create_upload(&ingest, peer, &headers, body).await)
}

async fn create_upload(
    ingest: &Ingest,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    speaks_tus(headers)?;
    let length = match (
        number(headers, &UPLOAD_LENGTH)?,
        headers.get(&UPLOAD_DEFER_LENGTH),
    ) {
        (Some(length), None) => Some(length),
        (None, Some(v)) if v == "1" => None,
        (None, Some(_)) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "Upload-Defer-Length can only be 1",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "send Upload-Length or Upload-Defer-Length, not both",
            ));
        }
        (None, None) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "an upload needs Upload-Length, or Upload-Defer-Length: 1",
            ));
        }
    };
    let metadata = read_metadata(headers)?;
    let intake = ingest.intake();
    let mut admission = intake
        .admit(metadata.environment.as_deref(), origin(headers))
        .await
        .map_err(refusal)?;
    crate::observe(&mut admission, headers, peer);
    let new = NewUpload {
        mime_type: metadata.filetype,
        payload: metadata.payload,
        upload: Some(length),
    };
    let mut upload = intake.start(&admission, new).await.map_err(refusal)?;
    let location = format!(
        "/v1/uploads/{}.{}",
        upload.id(),
        intake.resume_token(upload.id())
    );
    let with_location = |mut response: Response| {
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        response
    };
    // creation-with-upload: the body is the upload's first bytes only when it says so.
    if headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == OFFSET_STREAM)
    {
        receive(ingest, &admission, &mut upload, 0, headers, body)
            .await
            .map_err(with_location)?;
    } else {
        finish_if_complete(ingest, &mut upload)
            .await
            .map_err(with_location)?;
    }
    let mut response = with_location(StatusCode::CREATED.into_response());
    standing(&mut response, &admission, &upload);
    Ok(response)
}

/// An upload's address: its recording's id and resume token.
async fn reopen(
    ingest: &Ingest,
    address: &str,
    headers: &HeaderMap,
) -> Result<(Admission, Upload), Response> {
    let (id, token) = address
        .split_once('.')
        .ok_or_else(|| refusal(IntakeError::UnknownRecording))?;
    ingest
        .intake()
        .reopen(id, token, origin(headers))
        .await
        .map_err(refusal)
}

/// `HEAD /v1/uploads/<upload>`: where it stands.
async fn status(
    State(ingest): State<Ingest>,
    Path(address): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        speaks_tus(&headers)?;
        let (admission, mut upload) = reopen(&ingest, &address, &headers).await?;
        finish_if_complete(&ingest, &mut upload).await?;
        let mut response = StatusCode::OK.into_response();
        standing(&mut response, &admission, &upload);
        let answer = response.headers_mut();
        match upload.declared_len() {
            Some(length) => answer.insert(UPLOAD_LENGTH, HeaderValue::from(length)),
            None => answer.insert(UPLOAD_DEFER_LENGTH, HeaderValue::from_static("1")),
        };
        if let Ok(metadata) = HeaderValue::from_str(&kept_metadata(&upload, &admission)) {
            answer.insert(UPLOAD_METADATA, metadata);
        }
        Ok::<_, Response>(response)
    };
    either(result.await)
}

/// `PATCH /v1/uploads/<upload>`: bytes at its offset.
async fn append(
    State(ingest): State<Ingest>,
    Path(address): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        speaks_tus(&headers)?;
        let offset = number(&headers, &UPLOAD_OFFSET)?
            .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "a PATCH needs Upload-Offset"))?;
        let (admission, mut upload) = reopen(&ingest, &address, &headers).await?;
        let outcome = receive(&ingest, &admission, &mut upload, offset, &headers, body).await;
        let mut response = match outcome {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(response) => response,
        };
        standing(&mut response, &admission, &upload);
        Ok::<_, Response>(response)
    };
    either(result.await)
}

/// `DELETE /v1/uploads/<upload>`: termination of an unfinished upload (a finished one is
/// the operator's recording, deleted through the API).
async fn terminate(
    State(ingest): State<Ingest>,
    Path(address): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        speaks_tus(&headers)?;
        let (_, upload) = reopen(&ingest, &address, &headers).await?;
        match ingest.intake().terminate(&upload).await {
            Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
            Err(IntakeError::Finished) => Err(refuse(
                StatusCode::FORBIDDEN,
                "the upload is finished: it is the operator's recording now",
            )),
            Err(e) => Err(refusal(e)),
        }
    };
    either(result.await)
}

#[derive(Debug, Deserialize)]
struct DiscoverQuery {
    environment: Option<String>,
}

/// `OPTIONS`: what the server offers, and a browser's CORS preflight.
async fn discover(
    State(ingest): State<Ingest>,
    query: Result<Query<DiscoverQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    // The limit of the environment asked for, if this origin may use it; the server's
    // own otherwise (creation answers 413 past the environment's).
    let environment = query.ok().and_then(|Query(q)| q.environment);
    let max = match ingest
        .intake()
        .admit(environment.as_deref(), origin(&headers))
        .await
    {
        Ok(admission) => admission.max_recording_bytes,
        Err(_) => ingest.inner.config.max_recording_bytes,
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let answer = response.headers_mut();
    answer.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    answer.insert("tus-extension", HeaderValue::from_static(TUS_EXTENSIONS));
    answer.insert("tus-max-size", HeaderValue::from(max));
    answer.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static(TUS_CHECKSUMS),
    );
    if headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        answer.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, HEAD, PATCH, DELETE, OPTIONS"),
        );
        answer.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOWED),
        );
        answer.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_reads_pairs_and_bare_keys() {
        let pairs = parse_metadata(
            "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential, filetype dmlkZW8vbXA0",
        )
        .unwrap();
        assert_eq!(pairs["filename"], b"world_domination_plan.pdf");
        assert_eq!(pairs["is_confidential"], b"");
        assert_eq!(pairs["filetype"], b"video/mp4");
        assert!(parse_metadata("").unwrap().is_empty());
    }

    #[test]
    fn metadata_refuses_what_tus_forbids() {
        for bad in ["a b c", "a !!!", "a YQ==,a YQ==", ",", "\u{e9} YQ=="] {
            assert!(parse_metadata(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn checksums_name_a_known_algorithm_and_a_digest_of_its_size() {
        let sha1 = base64::engine::general_purpose::STANDARD.encode([0u8; 20]);
        assert_eq!(
            parse_checksum(format!("sha1 {sha1}").as_bytes()).unwrap(),
            ("sha1", vec![0; 20])
        );
        assert!(parse_checksum(format!("sha256 {sha1}").as_bytes()).is_err());
        assert!(parse_checksum(b"md5 AAAA").is_err());
        assert!(parse_checksum(b"sha1").is_err());
    }

    #[test]
    fn numbers_are_digits_only() {
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b" 1",
            b"1e3",
            b"18446744073709551616",
        ] {
            assert_eq!(parse_number(bad), None, "{bad:?}");
        }
    }
}

#[cfg(test)]
mod properties {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use proptest::prelude::*;

    use super::*;
    use crate::HostAllowList;

    fn key() -> impl Strategy<Value = String> {
        "[!-+--~]{1,12}"
    }

    proptest! {
        #[test]
        fn metadata_as_clients_encode_it_reads_back(
            pairs in proptest::collection::btree_map(key(), proptest::collection::vec(any::<u8>(), 0..40), 0..8)
        ) {
            let header = pairs
                .iter()
                .map(|(k, v)| match v.is_empty() {
                    true => k.clone(),
                    false => format!("{k} {}", base64::engine::general_purpose::STANDARD.encode(v)),
                })
                .collect::<Vec<_>>()
                .join(",");
            prop_assert_eq!(parse_metadata(&header).unwrap(), pairs);
        }

        #[test]
        fn metadata_parsing_never_panics(header in ".{0,300}") {
            if let Ok(pairs) = parse_metadata(&header) {
                let pairs: BTreeMap<String, Vec<u8>> = pairs;
                prop_assert!(pairs.keys().all(|k| !k.is_empty() && !k.contains([' ', ','])));
            }
        }

        #[test]
        fn checksum_parsing_never_panics(value in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok((algorithm, digest)) = parse_checksum(&value) {
                prop_assert!(matches!((algorithm, digest.len()), ("sha1", 20) | ("sha256", 32)));
            }
        }

        #[test]
        fn numbers_read_back_and_junk_is_refused(n in any::<u64>(), junk in proptest::collection::vec(any::<u8>(), 0..24)) {
            prop_assert_eq!(parse_number(n.to_string().as_bytes()), Some(n));
            if let Some(parsed) = parse_number(&junk) {
                let (read, sent) = (parsed.to_string(), String::from_utf8(junk).unwrap());
                prop_assert_eq!(read.trim_start_matches('0'), sent.trim_start_matches('0'));
            }
        }

        #[test]
        fn origin_checks_never_panic_and_a_listed_host_is_allowed(
            origin in ".{0,120}",
            host in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}",
            sub in "[a-z0-9]{1,10}",
        ) {
            let list: HostAllowList = format!("{host}, *.{host}").parse().unwrap();
            let _ = list.allows_origin(&origin);
            let (apex, one, two) = (
                format!("https://{host}"),
                format!("https://{sub}.{host}:8443"),
                format!("https://{sub}.{sub}.{host}"),
            );
            prop_assert!(list.allows_origin(&apex));
            prop_assert!(list.allows_origin(&one));
            prop_assert!(!list.allows_origin(&two));
        }
    }
}
