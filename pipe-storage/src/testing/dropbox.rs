//! [`DropboxStandIn`]: a stand-in for Dropbox's HTTP API v2 on loopback.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{DropboxAuth, DropboxConfig};

/// Dropbox's block (of `content_hash`, and of upload-session chunks).
const BLOCK: usize = 4 * 1024 * 1024;

/// The largest body of one upload call.
const MAX_CALL: usize = 150 * 1024 * 1024;

/// The largest body of an RPC or token call.
const MAX_RPC: usize = 1024 * 1024;

/// The times every file's metadata reports (the stand-in keeps no clock of its own).
const MODIFIED: &str = "2025-01-01T00:00:00Z";

/// An answer that ends a call early (boxed: a `Response` is large).
struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

type Reply = Result<Response, Refusal>;

/// A **stand-in for Dropbox** (Dropbox itself cannot be reached from where Pipe's tests
/// run): an HTTP server on two free loopback ports, one for the RPC endpoints
/// (`api.dropboxapi.com`) and one for the content endpoints (`content.dropboxapi.com`),
/// keeping files in memory. It runs on a thread of its own with its own runtime, and
/// stops when dropped.
///
/// It enforces the contract Dropbox documents for the calls Pipe makes, so a sink that
/// passes here makes the calls Dropbox expects:
///
/// - **OAuth.** `POST /oauth2/token` (form-encoded, `grant_type=refresh_token`) issues
///   access tokens for [`Self::REFRESH_TOKEN`] with [`Self::APP_KEY`] and
///   [`Self::APP_SECRET`]; a wrong app key or secret is `400 invalid_client`, a wrong or
///   revoked refresh token `400 invalid_grant` (RFC 6749's errors). Tokens live 4 hours,
///   or [`Self::set_token_lifetime`].
/// - **Bearer tokens.** Every API call needs `Authorization: Bearer`: missing is `400`;
///   unknown or revoked `401 invalid_access_token`, expired `401 expired_access_token`,
///   in Dropbox's JSON.
/// - **Arguments.** RPC calls need `Content-Type: application/json`; content calls take
///   their argument in `Dropbox-API-Arg`, which must be ASCII (non-ASCII escaped as
///   `\uXXXX`); uploads need `Content-Type: application/octet-stream`. Arguments are
///   parsed strictly: a missing or malformed argument, an unknown field or a wrong type is
///   `400`. Paths must start with `/`; a trailing or doubled `/` is `409
///   path/malformed_path`. Paths are case-insensitive, as in Dropbox.
/// - **Uploads.** `files/upload` takes at most 150 MiB (else `409 payload_too_large`),
///   modes `add`, `overwrite` and `update`. Upload sessions: `start`, `append_v2` and
///   `finish`; the offset must be the session's length (else `409 incorrect_offset` with
///   `correct_offset`), and chunks not closing the session must be multiples of 4 MiB
///   (else `400`). A `content_hash` argument must match the call's bytes (else `409
///   content_hash_mismatch`). Committing over a folder, or under a file, is `409
///   path/conflict`.
/// - **Metadata.** Every file has its `content_hash` (Dropbox's algorithm, computed here
///   independently of the sink's) and `rev`; `files/download` answers
///   `Dropbox-API-Result` (ASCII-escaped) and honours `Range` (`206`, clamped at the end;
///   a range starting at or past the end is `416`); `files/get_metadata`,
///   `files/delete_v2` (a folder is deleted with everything in it). A missing path is
///   `409 path/not_found` (`path_lookup/not_found` for deletes).
/// - **Faults on demand.** [`Self::fail_next`] answers the next calls with a status
///   (`429` with `Retry-After` and Dropbox's JSON, `5xx` with text);
///   [`Self::expire_tokens`] and [`Self::revoke`] invalidate tokens;
///   [`Self::corrupt_next_upload`] stores the next committed file with a byte flipped
///   (and the `content_hash` of what it stored).
///
/// Not modelled: `autorename`, concurrent sessions, `parent_rev`, the `arg` and
/// `authorization` URL parameters, file revisions, shared links.
#[derive(Debug)]
pub struct DropboxStandIn {
    shared: Arc<Shared>,
    api_port: u16,
    content_port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DropboxStandIn {
    /// The app key (OAuth `client_id`) it knows.
    pub const APP_KEY: &str = "pipe-test-app-key";
    /// The app's secret.
    pub const APP_SECRET: &str = "pipe-test-app-secret-0123456789";
    /// The refresh token it accepts.
    pub const REFRESH_TOKEN: &str = "pipe-test-refresh-token-abcdefghijklmnop";
    /// The folder [`Self::config`] writes under.
    pub const FOLDER: &str = "/Apps/Pipe/recordings";

    /// Starts the stand-in on two free loopback ports.
    pub fn start() -> Self {
        let bind = || {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
            listener
                .set_nonblocking(true)
                .expect("a non-blocking listener");
            let port = listener
                .local_addr()
                .expect("the listener's address")
                .port();
            (listener, port)
        };
        let (api, api_port) = bind();
        let (content, content_port) = bind();
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dropbox-stand-in".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the stand-in's runtime");
                runtime.block_on(async move {
                    let api = tokio::net::TcpListener::from_std(api).expect("the API listener");
                    let content =
                        tokio::net::TcpListener::from_std(content).expect("the content listener");
                    let api_routes = Router::new()
                        .route("/oauth2/token", post(token))
                        .route("/2/files/get_metadata", post(get_metadata))
                        .route("/2/files/delete_v2", post(delete))
                        .fallback(unknown_route)
                        .with_state(state.clone());
                    let content_routes = Router::new()
                        .route("/2/files/upload", post(upload))
                        .route("/2/files/upload_session/start", post(session_start))
                        .route("/2/files/upload_session/append_v2", post(session_append))
                        .route("/2/files/upload_session/finish", post(session_finish))
                        .route("/2/files/download", post(download))
                        .fallback(unknown_route)
                        .with_state(state);
                    tokio::select! {
                        _ = async { axum::serve(api, api_routes).await } => {}
                        _ = async { axum::serve(content, content_routes).await } => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime ends the connections still open.
            })
            .expect("the stand-in's thread");
        Self {
            shared,
            api_port,
            content_port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The base URL of the RPC endpoints (in place of `https://api.dropboxapi.com`).
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// The base URL of the content endpoints (in place of
    /// `https://content.dropboxapi.com`).
    pub fn content_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.content_port)
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.api_url())
    }

    /// A config for the stand-in: the refresh-token flow with its credentials, its
    /// endpoints, and [`Self::FOLDER`].
    pub fn config(&self) -> DropboxConfig {
        DropboxConfig::new(DropboxAuth::refresh_token(
            Self::APP_KEY,
            Self::APP_SECRET,
            Self::REFRESH_TOKEN,
        ))
        .with_endpoints(self.api_url(), self.content_url())
        .with_folder(Self::FOLDER)
    }

    /// Issues an access token, as `/oauth2/token` would (for [`DropboxAuth::AccessToken`]).
    pub fn access_token(&self) -> String {
        self.shared.state().issue_token()
    }

    /// Access tokens issued from now on live `lifetime` (default 4 hours, as Dropbox's;
    /// `expires_in` is whole seconds, at least 1).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.shared.state().token_lifetime = lifetime.max(Duration::from_secs(1));
    }

    /// Every access token issued so far expires now.
    pub fn expire_tokens(&self) {
        self.shared.state().expire_tokens();
    }

    /// Every access token issued so far expires when the next call to `endpoint` (e.g.
    /// `/2/files/upload_session/append_v2`) arrives, before it is looked at.
    pub fn expire_tokens_at(&self, endpoint: &str) {
        self.shared.state().faults.push(Fault {
            endpoint: Some(endpoint.to_owned()),
            remaining: 1,
            kind: FaultKind::ExpireTokens,
        });
    }

    /// The app is unlinked: the refresh token is refused (`invalid_grant`) and every access
    /// token is `invalid_access_token`.
    pub fn revoke(&self) {
        let mut state = self.shared.state();
        state.revoked = true;
        state.tokens.clear();
    }

    /// The next `n` API calls (not token requests) are answered with `status`: `429` as
    /// Dropbox rate-limits (`Retry-After` and `too_many_requests`, or
    /// `too_many_write_operations` for commits), others with a line of text (and
    /// `Retry-After` for `503`).
    pub fn fail_next(&self, n: u32, status: u16) {
        self.shared.state().faults.push(Fault {
            endpoint: None,
            remaining: n,
            kind: FaultKind::Status(status),
        });
    }

    /// The next `n` calls to `endpoint` (e.g. `/2/files/upload_session/finish`) are
    /// answered with `status`, as [`Self::fail_next`].
    pub fn fail_next_at(&self, endpoint: &str, n: u32, status: u16) {
        self.shared.state().faults.push(Fault {
            endpoint: Some(endpoint.to_owned()),
            remaining: n,
            kind: FaultKind::Status(status),
        });
    }

    /// The `Retry-After` of injected `429`s and `503`s (default 7 s; whole seconds).
    pub fn set_retry_after(&self, after: Duration) {
        self.shared.state().retry_after = after.as_secs();
    }

    /// The next file committed (`files/upload` or `upload_session/finish`) is stored
    /// with one byte changed, and reported with the `content_hash` of what was stored.
    pub fn corrupt_next_upload(&self) {
        self.shared.state().corrupt_next = true;
    }

    /// The paths of the files stored (as given, `path_display`), sorted.
    pub fn files(&self) -> Vec<String> {
        let state = self.shared.state();
        let mut paths: Vec<String> = state.files.values().map(|f| f.display.clone()).collect();
        paths.sort();
        paths
    }

    /// The bytes stored at `path` (case-insensitive).
    pub fn file(&self, path: &str) -> Option<Bytes> {
        let state = self.shared.state();
        state
            .files
            .get(&path.to_lowercase())
            .map(|f| f.data.clone())
    }

    /// How many calls reached `endpoint` (`/oauth2/token`, `/2/files/upload`,
    /// `/2/files/upload_session/append_v2`, …), whatever they were answered.
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.shared
            .state()
            .requests
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Upload sessions started and not finished.
    pub fn open_sessions(&self) -> usize {
        self.shared.state().sessions.len()
    }
}

impl Drop for DropboxStandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<Inner>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
struct Inner {
    /// Files by lowercased path.
    files: BTreeMap<String, StoredFile>,
    sessions: HashMap<String, Session>,
    /// Access tokens and when they expire.
    tokens: HashMap<String, Instant>,
    token_lifetime: Duration,
    revoked: bool,
    retry_after: u64,
    faults: Vec<Fault>,
    corrupt_next: bool,
    requests: BTreeMap<String, u64>,
    /// For ids, revisions, tokens and sessions.
    serial: u64,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            files: BTreeMap::new(),
            sessions: HashMap::new(),
            tokens: HashMap::new(),
            token_lifetime: Duration::from_secs(4 * 3600),
            revoked: false,
            retry_after: 7,
            faults: Vec::new(),
            corrupt_next: false,
            requests: BTreeMap::new(),
            serial: 0,
        }
    }
}

#[derive(Debug)]
struct StoredFile {
    display: String,
    data: Bytes,
    id: String,
    rev: String,
    content_hash: String,
}

#[derive(Debug, Default)]
struct Session {
    data: Vec<u8>,
    closed: bool,
}

#[derive(Debug)]
struct Fault {
    endpoint: Option<String>,
    remaining: u32,
    kind: FaultKind,
}

#[derive(Debug, Clone, Copy)]
enum FaultKind {
    Status(u16),
    ExpireTokens,
}

impl Inner {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn issue_token(&mut self) -> String {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).expect("random bytes");
        let token = format!("sl.{}{}", self.next_serial(), hex::encode(random));
        self.tokens
            .insert(token.clone(), Instant::now() + self.token_lifetime);
        token
    }

    fn expire_tokens(&mut self) {
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        for expiry in self.tokens.values_mut() {
            *expiry = past;
        }
    }

    /// Counts a call to `endpoint`, applies the faults due, and checks its token.
    fn admit(&mut self, endpoint: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        *self.requests.entry(endpoint.to_owned()).or_default() += 1;
        let due = self
            .faults
            .iter_mut()
            .position(|f| f.remaining > 0 && f.endpoint.as_deref().is_none_or(|e| e == endpoint));
        if let Some(index) = due {
            let fault = &mut self.faults[index];
            fault.remaining -= 1;
            let kind = fault.kind;
            if fault.remaining == 0 {
                self.faults.remove(index);
            }
            match kind {
                FaultKind::ExpireTokens => self.expire_tokens(),
                FaultKind::Status(status) => return Err(self.fault(endpoint, status)),
            }
        }
        let function = endpoint.trim_start_matches("/2/");
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(bad_request(
                function,
                "Must provide HTTP header \"Authorization\" or URL parameter \"authorization\".",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(token) = token else {
            return Err(bad_request(
                function,
                "Invalid authorization value in HTTP header \"Authorization\": expected \"Bearer <oauth2-access-token>\".",
            ));
        };
        match self.tokens.get(token) {
            None => Err(auth_error("invalid_access_token")),
            Some(expiry) if Instant::now() >= *expiry => Err(auth_error("expired_access_token")),
            Some(_) => Ok(()),
        }
    }

    /// The answer of an injected fault.
    fn fault(&self, endpoint: &str, status: u16) -> Refusal {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = HeaderValue::from(self.retry_after);
        if status == StatusCode::TOO_MANY_REQUESTS {
            let reason = if endpoint.ends_with("/upload") || endpoint.ends_with("/finish") {
                "too_many_write_operations"
            } else {
                "too_many_requests"
            };
            let body = json!({
                "error_summary": format!("{reason}/.."),
                "error": { "reason": { ".tag": reason }, "retry_after": self.retry_after },
            });
            return (
                status,
                [(header::RETRY_AFTER, retry_after)],
                json_response(&body),
            )
                .into_response()
                .into();
        }
        let text = format!("stand-in fault: {status}");
        let response = if status == StatusCode::SERVICE_UNAVAILABLE {
            (status, [(header::RETRY_AFTER, retry_after)], text).into_response()
        } else {
            (status, text).into_response()
        };
        response.into()
    }

    /// Whether a file lies under `lower` (which is then a folder).
    fn is_folder(&self, lower: &str) -> bool {
        let prefix = format!("{lower}/");
        self.files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(path, _)| path.starts_with(&prefix))
    }

    /// Stores `data` at `path` as `commit` says, returning the file's metadata.
    fn commit(&mut self, commit: &Commit, data: Vec<u8>, function: &str) -> Reply {
        let path = check_path(&commit.path, function)?;
        let lower = path.to_lowercase();
        let mode = WriteMode::parse(&commit.mode, function)?;
        if commit.autorename {
            return Err(bad_request(
                function,
                "the stand-in does not model autorename",
            ));
        }
        // A file where a folder must be, or a folder where the file must be.
        let mut ancestor = lower.as_str();
        while let Some((parent, _)) = ancestor.rsplit_once('/') {
            if self.files.contains_key(parent) {
                return Err(path_error("path", "conflict", Some("file")));
            }
            ancestor = parent;
        }
        if self.is_folder(&lower) {
            return Err(path_error("path", "conflict", Some("folder")));
        }
        match (&mode, self.files.get(&lower)) {
            (WriteMode::Add, Some(_)) => {
                return Err(path_error("path", "conflict", Some("file")));
            }
            (WriteMode::Update(rev), Some(file)) if file.rev != *rev => {
                return Err(path_error("path", "conflict", Some("file")));
            }
            (WriteMode::Update(_), None) => {
                return Err(path_error("path", "conflict", Some("file")));
            }
            _ => {}
        }
        let mut data = data;
        if std::mem::take(&mut self.corrupt_next) {
            match data.first_mut() {
                Some(byte) => *byte ^= 0x55,
                None => data.push(0x55),
            }
        }
        let serial = self.next_serial();
        let id = match self.files.get(&lower) {
            Some(file) => file.id.clone(),
            None => format!("id:pipe-stand-in-{serial}"),
        };
        let file = StoredFile {
            display: path.to_owned(),
            content_hash: content_hash(&data),
            data: data.into(),
            id,
            rev: format!("{serial:015x}"),
        };
        let metadata = file_metadata(&file, false);
        self.files.insert(lower, file);
        Ok(json_response(&metadata))
    }
}

/// A strict parse of the JSON argument of `function`.
fn parse_arg<T: DeserializeOwned>(json: &[u8], function: &str) -> Result<T, Refusal> {
    serde_json::from_slice(json).map_err(|e| {
        bad_request(
            function,
            &format!("request body: could not decode input as JSON: {e}"),
        )
    })
}

/// The `Dropbox-API-Arg` of a content call, parsed strictly.
fn header_arg<T: DeserializeOwned>(headers: &HeaderMap, function: &str) -> Result<T, Refusal> {
    let Some(value) = headers.get("Dropbox-API-Arg") else {
        return Err(bad_request(
            function,
            "Must provide HTTP header \"Dropbox-API-Arg\" or URL parameter \"arg\".",
        ));
    };
    let Ok(text) = value.to_str() else {
        return Err(bad_request(
            function,
            "HTTP header \"Dropbox-API-Arg\": must be ASCII, with 0x7F and non-ASCII \
             characters escaped as \\uXXXX",
        ));
    };
    serde_json::from_str(text).map_err(|e| {
        bad_request(
            function,
            &format!("HTTP header \"Dropbox-API-Arg\": could not decode input as JSON: {e}"),
        )
    })
}

/// The request's `Content-Type` is one of `allowed`: exactly, or by its media type with
/// other parameters (`application/json; charset=utf-8`).
fn require_content_type(
    headers: &HeaderMap,
    function: &str,
    allowed: &[&str],
) -> Result<(), Refusal> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = given.split(';').next().unwrap_or("").trim();
    let fits = |a: &&str| {
        given.eq_ignore_ascii_case(a) || (!a.contains(';') && media_type.eq_ignore_ascii_case(a))
    };
    if allowed.iter().any(fits) {
        Ok(())
    } else {
        Err(bad_request(
            function,
            &format!("Bad HTTP \"Content-Type\" header: {given:?}. Expecting one of {allowed:?}."),
        ))
    }
}

/// Reads a whole body of at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Refusal> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        endpoint_error(
            "payload_too_large/..",
            json!({ ".tag": "payload_too_large" }),
        )
    })
}

/// A path as Dropbox requires: `/`-rooted, no empty, `.` or `..` component.
fn check_path<'a>(path: &'a str, function: &str) -> Result<&'a str, Refusal> {
    if !path.starts_with('/') {
        return Err(bad_request(
            function,
            &format!(
                "path: {path:?} did not match pattern '(/(.|[\\r\\n])*)|(ns:[0-9]+(/.*)?)|(id:.*)' (ns: and id: paths are not modelled)"
            ),
        ));
    }
    let malformed = path.len() == 1
        || path[1..]
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if malformed {
        return Err(path_error("path", "malformed_path", None));
    }
    Ok(path)
}

/// `overwrite`, `add`, or `update` to a revision, as a string or a tagged object.
enum WriteMode {
    Add,
    Overwrite,
    Update(String),
}

impl WriteMode {
    fn parse(mode: &Option<Value>, function: &str) -> Result<Self, Refusal> {
        let Some(mode) = mode else {
            return Ok(Self::Add);
        };
        let tag = match mode {
            Value::String(tag) => tag.as_str(),
            Value::Object(fields) => fields.get(".tag").and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        match (tag, mode) {
            ("add", _) => Ok(Self::Add),
            ("overwrite", _) => Ok(Self::Overwrite),
            ("update", Value::Object(fields)) => match fields.get("update").and_then(Value::as_str)
            {
                Some(rev) => Ok(Self::Update(rev.to_owned())),
                None => Err(bad_request(function, "mode: update needs a rev")),
            },
            _ => Err(bad_request(
                function,
                &format!("mode: unknown or malformed write mode {mode}"),
            )),
        }
    }
}

/// Dropbox's `content_hash` of `data`: SHA-256 over the SHA-256 digests of its 4 MiB
/// blocks.
fn content_hash(data: &[u8]) -> String {
    let mut all = Sha256::new();
    for block in data.chunks(BLOCK) {
        all.update(Sha256::digest(block));
    }
    hex::encode(all.finalize())
}

fn file_metadata(file: &StoredFile, tagged: bool) -> Value {
    let name = file.display.rsplit('/').next().unwrap_or_default();
    let mut metadata = json!({
        "name": name,
        "id": file.id,
        "client_modified": MODIFIED,
        "server_modified": MODIFIED,
        "rev": file.rev,
        "size": file.data.len(),
        "path_lower": file.display.to_lowercase(),
        "path_display": file.display,
        "is_downloadable": true,
        "content_hash": file.content_hash,
    });
    if tagged {
        metadata[".tag"] = json!("file");
    }
    metadata
}

fn json_response(value: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A `400` as Dropbox words them: text naming the function.
fn bad_request(function: &str, detail: &str) -> Refusal {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Error in call to API function \"{function}\": {detail}"),
    )
        .into_response()
        .into()
}

fn auth_error(tag: &str) -> Refusal {
    let body = json!({ "error_summary": format!("{tag}/.."), "error": { ".tag": tag } });
    (StatusCode::UNAUTHORIZED, json_response(&body))
        .into_response()
        .into()
}

/// A `409` with the endpoint's error.
fn endpoint_error(summary: &str, error: Value) -> Refusal {
    let body = json!({ "error_summary": summary, "error": error });
    (StatusCode::CONFLICT, json_response(&body))
        .into_response()
        .into()
}

/// A `409` about the path: `{".tag": outer, outer: {".tag": reason, reason: {".tag": sub}}}`.
fn path_error(outer: &str, reason: &str, sub: Option<&str>) -> Refusal {
    let mut inner = json!({ ".tag": reason });
    let mut summary = format!("{outer}/{reason}/");
    if let Some(sub) = sub {
        inner[reason] = json!({ ".tag": sub });
        summary.push_str(sub);
        summary.push('/');
    }
    summary.push_str("..");
    endpoint_error(&summary, json!({ ".tag": outer, outer: inner }))
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Refusal {
    let body = json!({ "error": error, "error_description": description });
    (status, json_response(&body)).into_response().into()
}

/// `application/x-www-form-urlencoded`, decoded.
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let byte = bytes
                        .get(i + 1..i + 3)
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                    match byte {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

async fn unknown_route(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("Unknown API function: {}", uri.path()),
    )
        .into_response()
}

/// `POST /oauth2/token`: the refresh-token grant.
async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Reply {
    let body = read_body(body, MAX_RPC).await?;
    let mut state = shared.state();
    *state
        .requests
        .entry("/oauth2/token".to_owned())
        .or_default() += 1;
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form = parse_form(&body);
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("refresh_token") {
        return Err(token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "the stand-in grants refresh_token only",
        ));
    }
    if field("client_id") != Some(DropboxStandIn::APP_KEY)
        || field("client_secret") != Some(DropboxStandIn::APP_SECRET)
    {
        return Err(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Invalid client_id or client_secret",
        ));
    }
    if state.revoked || field("refresh_token") != Some(DropboxStandIn::REFRESH_TOKEN) {
        return Err(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token is invalid or revoked",
        ));
    }
    let access_token = state.issue_token();
    let expires_in = state.token_lifetime.as_secs();
    Ok(json_response(&json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": expires_in,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathArg {
    path: String,
    #[serde(default)]
    include_media_info: bool,
    #[serde(default)]
    include_deleted: bool,
    #[serde(default)]
    include_has_explicit_shared_members: bool,
}

/// `POST /2/files/get_metadata`.
async fn get_metadata(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Reply {
    const FUNCTION: &str = "files/get_metadata";
    let body = read_body(body, MAX_RPC).await?;
    let mut state = shared.state();
    state.admit("/2/files/get_metadata", &headers)?;
    require_content_type(&headers, FUNCTION, &["application/json"])?;
    let arg: PathArg = parse_arg(&body, FUNCTION)?;
    let _ = (
        arg.include_media_info,
        arg.include_deleted,
        arg.include_has_explicit_shared_members,
    );
    let path = check_path(&arg.path, FUNCTION)?;
    let lower = path.to_lowercase();
    if let Some(file) = state.files.get(&lower) {
        return Ok(json_response(&file_metadata(file, true)));
    }
    if state.is_folder(&lower) {
        let name = path.rsplit('/').next().unwrap_or_default();
        return Ok(json_response(&json!({
            ".tag": "folder",
            "name": name,
            "path_lower": lower,
            "path_display": path,
            "id": format!("id:folder-{lower}"),
        })));
    }
    Err(path_error("path", "not_found", None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteArg {
    path: String,
}

/// `POST /2/files/delete_v2`: a file, or a folder and everything in it.
async fn delete(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Reply {
    const FUNCTION: &str = "files/delete_v2";
    let body = read_body(body, MAX_RPC).await?;
    let mut state = shared.state();
    state.admit("/2/files/delete_v2", &headers)?;
    require_content_type(&headers, FUNCTION, &["application/json"])?;
    let arg: DeleteArg = parse_arg(&body, FUNCTION)?;
    let path = check_path(&arg.path, FUNCTION)?;
    let lower = path.to_lowercase();
    if let Some(file) = state.files.remove(&lower) {
        return Ok(json_response(
            &json!({ "metadata": file_metadata(&file, true) }),
        ));
    }
    if state.is_folder(&lower) {
        let prefix = format!("{lower}/");
        state.files.retain(|p, _| !p.starts_with(&prefix));
        let name = path.rsplit('/').next().unwrap_or_default();
        return Ok(json_response(&json!({ "metadata": {
            ".tag": "folder", "name": name, "path_lower": lower, "path_display": path,
            "id": format!("id:folder-{lower}"),
        }})));
    }
    Err(path_error("path_lookup", "not_found", None))
}

/// The commit of an upload (`CommitInfo`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Commit {
    path: String,
    #[serde(default)]
    mode: Option<Value>,
    #[serde(default)]
    autorename: bool,
    #[serde(default)]
    client_modified: Option<String>,
    #[serde(default)]
    mute: bool,
    #[serde(default)]
    property_groups: Option<Vec<Value>>,
    #[serde(default)]
    strict_conflict: bool,
}

/// `files/upload`'s argument: a commit and the content's hash.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadArg {
    path: String,
    #[serde(default)]
    mode: Option<Value>,
    #[serde(default)]
    autorename: bool,
    #[serde(default)]
    client_modified: Option<String>,
    #[serde(default)]
    mute: bool,
    #[serde(default)]
    property_groups: Option<Vec<Value>>,
    #[serde(default)]
    strict_conflict: bool,
    #[serde(default)]
    content_hash: Option<String>,
}

const UPLOAD_TYPES: &[&str] = &[
    "application/octet-stream",
    "text/plain; charset=dropbox-cors-hack",
];

/// A `content_hash` argument that does not match the call's bytes.
fn check_hash(given: &Option<String>, data: &[u8], wrap: Option<&str>) -> Result<(), Refusal> {
    match given {
        Some(hash) if *hash != content_hash(data) => Err(match wrap {
            None => endpoint_error(
                "content_hash_mismatch/..",
                json!({ ".tag": "content_hash_mismatch" }),
            ),
            Some(outer) => endpoint_error(
                &format!("{outer}/content_hash_mismatch/.."),
                json!({ ".tag": outer, outer: { ".tag": "content_hash_mismatch" } }),
            ),
        }),
        _ => Ok(()),
    }
}

/// `POST /2/files/upload`.
async fn upload(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Reply {
    const FUNCTION: &str = "files/upload";
    let body = read_body(body, MAX_CALL).await?;
    let mut state = shared.state();
    state.admit("/2/files/upload", &headers)?;
    require_content_type(&headers, FUNCTION, UPLOAD_TYPES)?;
    let arg: UploadArg = header_arg(&headers, FUNCTION)?;
    check_hash(&arg.content_hash, &body, None)?;
    let commit = Commit {
        path: arg.path,
        mode: arg.mode,
        autorename: arg.autorename,
        client_modified: arg.client_modified,
        mute: arg.mute,
        property_groups: arg.property_groups,
        strict_conflict: arg.strict_conflict,
    };
    let _ = (
        &commit.client_modified,
        commit.mute,
        &commit.property_groups,
        commit.strict_conflict,
    );
    state.commit(&commit, body.to_vec(), FUNCTION)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartArg {
    #[serde(default)]
    close: bool,
    #[serde(default)]
    session_type: Option<Value>,
    #[serde(default)]
    content_hash: Option<String>,
}

/// Chunks that do not close their session must be multiples of 4 MiB.
fn check_chunk(len: usize, close: bool, function: &str) -> Result<(), Refusal> {
    if close || len.is_multiple_of(BLOCK) {
        Ok(())
    } else {
        Err(bad_request(
            function,
            &format!(
                "the data of a call that does not close the session must be a multiple of \
                 {BLOCK} bytes; got {len}"
            ),
        ))
    }
}

/// `POST /2/files/upload_session/start`.
async fn session_start(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Reply {
    const FUNCTION: &str = "files/upload_session/start";
    let body = read_body(body, MAX_CALL).await?;
    let mut state = shared.state();
    state.admit("/2/files/upload_session/start", &headers)?;
    require_content_type(&headers, FUNCTION, UPLOAD_TYPES)?;
    let arg: StartArg = header_arg(&headers, FUNCTION)?;
    match arg.session_type.as_ref().map(|t| {
        t.as_str()
            .or_else(|| t.get(".tag").and_then(Value::as_str))
            .unwrap_or("")
    }) {
        None | Some("sequential") => {}
        Some(other) => {
            return Err(bad_request(
                FUNCTION,
                &format!("session_type {other:?} is not modelled"),
            ));
        }
    }
    check_chunk(body.len(), arg.close, FUNCTION)?;
    check_hash(&arg.content_hash, &body, None)?;
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).expect("random bytes");
    let id = format!(
        "pid_upload_session:{}{}",
        state.next_serial(),
        hex::encode(random)
    );
    state.sessions.insert(
        id.clone(),
        Session {
            data: body.to_vec(),
            closed: arg.close,
        },
    );
    Ok(json_response(&json!({ "session_id": id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    session_id: String,
    offset: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendArg {
    cursor: Cursor,
    #[serde(default)]
    close: bool,
    #[serde(default)]
    content_hash: Option<String>,
}

/// The session of `cursor`, if the offset is its length; `wrap` nests the error as
/// `finish` does (`lookup_failed`).
fn session_at<'a>(
    sessions: &'a mut HashMap<String, Session>,
    cursor: &Cursor,
    has_data: bool,
    wrap: Option<&str>,
) -> Result<&'a mut Session, Refusal> {
    let error = |inner: Value, tag: &str| match wrap {
        None => endpoint_error(&format!("{tag}/.."), inner),
        Some(outer) => endpoint_error(
            &format!("{outer}/{tag}/.."),
            json!({ ".tag": outer, outer: inner }),
        ),
    };
    let Some(session) = sessions.get_mut(&cursor.session_id) else {
        return Err(error(json!({ ".tag": "not_found" }), "not_found"));
    };
    if session.closed && has_data {
        return Err(error(json!({ ".tag": "closed" }), "closed"));
    }
    let correct = session.data.len() as u64;
    if cursor.offset != correct {
        return Err(error(
            json!({ ".tag": "incorrect_offset", "correct_offset": correct }),
            "incorrect_offset",
        ));
    }
    Ok(session)
}

/// `POST /2/files/upload_session/append_v2`.
async fn session_append(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    const FUNCTION: &str = "files/upload_session/append_v2";
    let body = read_body(body, MAX_CALL).await?;
    let mut state = shared.state();
    state.admit("/2/files/upload_session/append_v2", &headers)?;
    require_content_type(&headers, FUNCTION, UPLOAD_TYPES)?;
    let arg: AppendArg = header_arg(&headers, FUNCTION)?;
    let session = session_at(&mut state.sessions, &arg.cursor, !body.is_empty(), None)?;
    check_chunk(body.len(), arg.close, FUNCTION)?;
    check_hash(&arg.content_hash, &body, None)?;
    session.data.extend_from_slice(&body);
    session.closed |= arg.close;
    Ok(json_response(&Value::Null))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FinishArg {
    cursor: Cursor,
    commit: Commit,
    #[serde(default)]
    content_hash: Option<String>,
}

/// `POST /2/files/upload_session/finish`: the last bytes, and the commit.
async fn session_finish(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    const FUNCTION: &str = "files/upload_session/finish";
    let body = read_body(body, MAX_CALL).await?;
    let mut state = shared.state();
    state.admit("/2/files/upload_session/finish", &headers)?;
    require_content_type(&headers, FUNCTION, UPLOAD_TYPES)?;
    let arg: FinishArg = header_arg(&headers, FUNCTION)?;
    session_at(
        &mut state.sessions,
        &arg.cursor,
        !body.is_empty(),
        Some("lookup_failed"),
    )?;
    check_hash(&arg.content_hash, &body, None)?;
    let mut data = state
        .sessions
        .get(&arg.cursor.session_id)
        .map(|s| s.data.clone())
        .unwrap_or_default();
    data.extend_from_slice(&body);
    let committed = state.commit(&arg.commit, data, FUNCTION)?;
    state.sessions.remove(&arg.cursor.session_id);
    Ok(committed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadArg {
    path: String,
    #[serde(default)]
    rev: Option<String>,
}

/// A single `Range: bytes=…` of a `size`-byte file: `Ok(None)` for none (or one the
/// stand-in ignores, as HTTP allows), `Err` for one past the end.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = if first.is_empty() {
        // The last `n` bytes.
        let Ok(n) = last.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size)
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return Ok(None);
        };
        let end = if last.is_empty() {
            size
        } else {
            match last.parse::<u64>() {
                Ok(last) if last >= start => last.saturating_add(1).min(size),
                _ => return Ok(None),
            }
        };
        (start, end)
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `POST /2/files/download`, with `Range`.
async fn download(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Reply {
    const FUNCTION: &str = "files/download";
    let _ = read_body(body, MAX_RPC).await?;
    let mut state = shared.state();
    state.admit("/2/files/download", &headers)?;
    let arg: DownloadArg = header_arg(&headers, FUNCTION)?;
    let path = check_path(&arg.path, FUNCTION)?;
    let lower = path.to_lowercase();
    let Some(file) = state.files.get(&lower) else {
        if state.is_folder(&lower) {
            return Err(path_error("path", "not_file", None));
        }
        return Err(path_error("path", "not_found", None));
    };
    if arg.rev.as_ref().is_some_and(|rev| *rev != file.rev) {
        return Err(path_error("path", "not_found", None));
    }
    let result = file_metadata(file, false).to_string();
    let result = HeaderValue::from_str(&ascii_json(&result)).expect("ASCII JSON");
    let size = file.data.len() as u64;
    let mut response = match parse_range(&headers, size) {
        Err(()) => {
            return Err((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{size}"))],
                "range not satisfiable",
            )
                .into_response()
                .into());
        }
        Ok(None) => (StatusCode::OK, file.data.clone()).into_response(),
        Ok(Some((start, end))) => (
            StatusCode::PARTIAL_CONTENT,
            [(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{size}", end - 1),
            )],
            file.data.slice(start as usize..end as usize),
        )
            .into_response(),
    };
    let headers = response.headers_mut();
    headers.insert("Dropbox-API-Result", result);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    Ok(response)
}

/// JSON made header-safe: 0x7F and every non-ASCII character as `\uXXXX`.
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (c as u32) < 0x7f {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}
