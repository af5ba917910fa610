//! [`DropboxSink`]: a folder of a Dropbox account, through Dropbox's HTTP API v2.
//!
//! **Why reqwest.** The API is plain HTTPS with JSON; reqwest (on hyper and rustls with
//! aws-lc-rs, the TLS stack the rest of Pipe uses) is in the tree already through
//! object_store's S3 and Azure sinks, so this sink adds no HTTP or TLS stack of its own.
//! Dropbox's SDKs for Rust are generated code far larger than the seven endpoints used
//! here.
//!
//! **Endpoints and rules used.**
//!
//! - `POST {api}/oauth2/token` (`grant_type=refresh_token`, form-encoded, with the app's
//!   key and secret): a short-lived access token (`expires_in` seconds, 4 hours at
//!   Dropbox). It is cached until shortly before it expires; a `401` whose error is
//!   `expired_access_token` refreshes it once and repeats the call. `invalid_grant` (a
//!   wrong or revoked refresh token) and `invalid_client` (a wrong app key or secret) are
//!   [`Error::PermissionDenied`], naming what to fix.
//! - `POST {content}/2/files/upload`: a whole file in one call (Dropbox takes at most
//!   150 MiB per call), `mode` `overwrite`, `mute`, no `autorename`.
//! - `POST {content}/2/files/upload_session/start`, `…/append_v2` and `…/finish`: larger
//!   files in chunks. Every chunk but the last is a multiple of 4 MiB (Dropbox's rule);
//!   the last travels with `finish`, which commits the file. A put that fails before
//!   `finish` leaves an unfinished session, invisible, that Dropbox drops after 7 days.
//! - `POST {content}/2/files/download` with `Range: bytes=a-b`; the file's metadata
//!   comes back in the `Dropbox-API-Result` header.
//! - `POST {api}/2/files/get_metadata` and `POST {api}/2/files/delete_v2`.
//!
//! Content endpoints take their argument as JSON in the `Dropbox-API-Arg` header, which
//! must be ASCII: every character from 0x7F up is written as a JSON `\uXXXX` escape.
//! Errors of an endpoint come back as `409` with `{"error_summary": "path/not_found/..",
//! "error": {...}}`, rate limits as `429` with `Retry-After` (seconds).
//!
//! **Verification.** Every file's metadata carries Dropbox's `content_hash`: the SHA-256
//! of the concatenated SHA-256 digests of its 4 MiB blocks. The sink computes it while
//! the bytes stream through (with the plain SHA-256 of the [`PutReceipt`]), sends each
//! call's own hash so Dropbox refuses a chunk damaged in transit, and compares the
//! committed file's hash and size with its own: a mismatch deletes the file and fails
//! with [`Error::Integrity`].

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pipe_core::{
    Error, GetOptions, GetResult, ObjectKey, ObjectMeta, PutBody, PutOptions, PutReceipt, Result,
    SinkKind, SinkLocation, StorageSink,
};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue, RANGE};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::CheckedBody;
use super::http::{CALL_TIMEOUT, CONNECT_TIMEOUT, Service, read_failure, upload_timeout};
use super::range_past_end;

const SERVICE: Service = Service {
    backend: BACKEND,
    name: "Dropbox",
    endpoint: "Dropbox endpoint",
};

const BACKEND: &str = "dropbox";

/// Dropbox's block: `content_hash` hashes files in blocks of this size, and the chunks of
/// an upload session but the last are multiples of it.
const BLOCK: usize = 4 * 1024 * 1024;

/// The most one upload call may carry (Dropbox's limit, 150 MiB).
const MAX_CALL: u64 = 150 * 1024 * 1024;

/// The default of [`DropboxConfig::upload_threshold`] and [`DropboxConfig::chunk_size`].
const DEFAULT_CHUNK: usize = 2 * BLOCK;

/// How a [`DropboxSink`] authenticates.
///
/// Dropbox's access tokens live 4 hours; a server that copies files for longer needs
/// [`DropboxAuth::RefreshToken`] (an app's key and secret, and the refresh token of an
/// authorization with `token_access_type=offline`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropboxAuth {
    /// The refresh-token flow: the sink fetches and renews access tokens itself.
    RefreshToken {
        /// The app key (the OAuth `client_id`).
        app_key: String,
        /// The app secret (the OAuth `client_secret`).
        app_secret: String,
        /// The refresh token of the account's authorization.
        refresh_token: String,
    },
    /// A fixed access token: for short jobs and tests. When it expires, calls fail with
    /// [`Error::PermissionDenied`].
    AccessToken(String),
}

impl DropboxAuth {
    /// The refresh-token flow with an app's key and secret and an account's refresh token.
    pub fn refresh_token(
        app_key: impl Into<String>,
        app_secret: impl Into<String>,
        refresh_token: impl Into<String>,
    ) -> Self {
        Self::RefreshToken {
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            refresh_token: refresh_token.into(),
        }
    }
}

impl fmt::Debug for DropboxAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RefreshToken { app_key, .. } => f
                .debug_struct("RefreshToken")
                .field("app_key", app_key)
                .field("app_secret", &"<redacted>")
                .field("refresh_token", &"<redacted>")
                .finish(),
            Self::AccessToken(_) => f.write_str("AccessToken(<redacted>)"),
        }
    }
}

/// Where and how a [`DropboxSink`] writes.
///
/// ```
/// use pipe_storage::{DropboxAuth, DropboxConfig};
///
/// let config = DropboxConfig::new(DropboxAuth::refresh_token(
///     "app-key",
///     "app-secret",
///     "refresh-token",
/// ))
/// .with_folder("/Apps/Pipe/recordings")
/// .with_chunk_size(16 * 1024 * 1024);
/// assert_eq!(config.folder, "/Apps/Pipe/recordings");
/// assert!(!format!("{config:?}").contains("app-secret"));
/// assert!(!format!("{config:?}").contains("refresh-token"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DropboxConfig {
    /// How the sink authenticates.
    pub auth: DropboxAuth,
    /// The Dropbox folder keys go under, `/`-separated from the root of what the app
    /// sees (for an app with an "App folder", its folder), e.g. `/recordings`; empty for
    /// that root (the default).
    pub folder: String,
    /// The RPC endpoints' base URL (default `https://api.dropboxapi.com`).
    pub api_url: String,
    /// The content endpoints' base URL (default `https://content.dropboxapi.com`).
    pub content_url: String,
    /// The OAuth token endpoint (default `https://api.dropboxapi.com/oauth2/token`).
    pub token_url: String,
    /// Files of up to this many bytes go up in one call; larger ones in an upload session
    /// (default 8 MiB, at most 150 MiB). A put holds up to this many bytes in memory.
    pub upload_threshold: u64,
    /// The size of an upload session's chunks: a multiple of 4 MiB, at most 148 MiB
    /// (default 8 MiB). A put holds up to one chunk in memory.
    pub chunk_size: usize,
}

impl DropboxConfig {
    /// A config for Dropbox itself, writing at the root of what the app sees.
    pub fn new(auth: DropboxAuth) -> Self {
        Self {
            auth,
            folder: String::new(),
            api_url: "https://api.dropboxapi.com".to_owned(),
            content_url: "https://content.dropboxapi.com".to_owned(),
            token_url: "https://api.dropboxapi.com/oauth2/token".to_owned(),
            upload_threshold: DEFAULT_CHUNK as u64,
            chunk_size: DEFAULT_CHUNK,
        }
    }

    /// Puts objects under `folder` (`/a/b`, `a/b/` and `/a/b/` are the same folder; `/` is
    /// the root).
    #[must_use]
    pub fn with_folder(mut self, folder: impl Into<String>) -> Self {
        let folder: String = folder.into();
        let folder = folder.trim_matches('/');
        self.folder = if folder.is_empty() {
            String::new()
        } else {
            format!("/{folder}")
        };
        self
    }

    /// Talks to other base URLs for the RPC (`api`) and content endpoints: a proxy, or a
    /// stand-in in tests. The token endpoint becomes `{api}/oauth2/token`.
    #[must_use]
    pub fn with_endpoints(mut self, api: impl Into<String>, content: impl Into<String>) -> Self {
        self.api_url = api.into().trim_end_matches('/').to_owned();
        self.content_url = content.into().trim_end_matches('/').to_owned();
        self.token_url = format!("{}/oauth2/token", self.api_url);
        self
    }

    /// Fetches access tokens from `url`.
    #[must_use]
    pub fn with_token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = url.into();
        self
    }

    /// Uploads files of up to `bytes` in one call.
    #[must_use]
    pub fn with_upload_threshold(mut self, bytes: u64) -> Self {
        self.upload_threshold = bytes;
        self
    }

    /// Uploads larger files in chunks of `bytes` (a multiple of 4 MiB).
    #[must_use]
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }
}

/// A [`StorageSink`] on a Dropbox folder.
///
/// - **Whole or nothing.** Dropbox commits a file only when its upload (or its session's
///   `finish`) succeeds. The body is checked against [`PutBody::size`] before that call:
///   a short or long body fails with [`Error::Integrity`] and commits nothing (an
///   unfinished session is never finished). After the commit, the file's size and
///   `content_hash` are compared with what was sent; a mismatch deletes the file and
///   fails with [`Error::Integrity`].
/// - **Memory.** A put holds one chunk at a time: at most
///   `max(upload_threshold, chunk_size)` bytes, plus one item of the body's stream.
/// - **Retries.** None of its own but one: a call refused because the access token
///   expired is repeated once with a fresh token. A `429` is [`Error::RateLimited`] with
///   Dropbox's `Retry-After`; `5xx`, timeouts and lost connections are temporary
///   ([`Error::is_retryable`]); the pipeline's jobs retry them. A failed put starts from
///   the first byte when retried.
/// - **Deletes** look the key up first and delete only a file: `delete_v2` on a folder
///   would delete everything in it.
/// - Dropbox paths are case-insensitive: keys that differ only in case are one file.
///   Dropbox keeps no content type; [`ObjectMeta::content_type`] is `None`.
#[derive(Clone)]
pub struct DropboxSink {
    inner: Arc<Inner>,
    kind: SinkKind,
}

struct Inner {
    config: DropboxConfig,
    http: reqwest::Client,
    /// The cached access token of the refresh-token flow.
    token: tokio::sync::Mutex<Option<Token>>,
}

impl fmt::Debug for DropboxSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropboxSink")
            .field("config", &self.inner.config)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// An access token and when to stop using it.
struct Token {
    value: String,
    renew_at: Instant,
}

impl DropboxSink {
    /// A sink of `kind` (usually [`SinkKind::Dropbox`]) on the folder `config` names.
    /// Nothing is sent until the first call.
    pub fn new(config: DropboxConfig, kind: SinkKind) -> Result<Self> {
        if config.chunk_size == 0
            || !config.chunk_size.is_multiple_of(BLOCK)
            || config.chunk_size as u64 > MAX_CALL
        {
            return Err(Error::invalid(
                "Dropbox chunk size",
                format!(
                    "{} bytes: a multiple of 4 MiB ({BLOCK} bytes), at most 148 MiB",
                    config.chunk_size
                ),
            ));
        }
        if config.upload_threshold > MAX_CALL {
            return Err(Error::invalid(
                "Dropbox upload threshold",
                format!(
                    "{} bytes: Dropbox takes at most 150 MiB ({MAX_CALL} bytes) in one call",
                    config.upload_threshold
                ),
            ));
        }
        for (what, url) in [
            ("Dropbox API URL", &config.api_url),
            ("Dropbox content URL", &config.content_url),
            ("Dropbox token URL", &config.token_url),
        ] {
            let parsed = reqwest::Url::parse(url).map_err(|e| Error::invalid(what, e))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(Error::invalid(what, format!("{url}: not an HTTP(S) URL")));
            }
        }
        let empty = match &config.auth {
            DropboxAuth::RefreshToken {
                app_key,
                app_secret,
                refresh_token,
            } => app_key.is_empty() || app_secret.is_empty() || refresh_token.is_empty(),
            DropboxAuth::AccessToken(token) => token.is_empty(),
        };
        if empty {
            return Err(Error::invalid(
                "Dropbox credentials",
                "the app key, app secret and refresh token (or the access token) must not be empty",
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("pipe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::permanent(BACKEND, format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                token: tokio::sync::Mutex::new(None),
            }),
            kind,
        })
    }

    fn config(&self) -> &DropboxConfig {
        &self.inner.config
    }

    /// The Dropbox path of `key`.
    fn path(&self, key: &ObjectKey) -> String {
        format!("{}/{}", self.config().folder, key.as_str())
    }

    fn api(&self, route: &str) -> String {
        format!("{}/2/{route}", self.config().api_url)
    }

    fn content(&self, route: &str) -> String {
        format!("{}/2/{route}", self.config().content_url)
    }

    /// An access token: the fixed one, or the cached one, refreshed when it is about to
    /// expire.
    async fn token(&self) -> Result<String> {
        let (app_key, app_secret, refresh_token) = match &self.config().auth {
            DropboxAuth::AccessToken(token) => return Ok(token.clone()),
            DropboxAuth::RefreshToken {
                app_key,
                app_secret,
                refresh_token,
            } => (app_key, app_secret, refresh_token),
        };
        // Held while refreshing, so concurrent calls wait for one refresh.
        let mut cached = self.inner.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        let token = self.refresh(app_key, app_secret, refresh_token).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Drops `token` from the cache, unless another call replaced it already.
    async fn forget(&self, token: &str) {
        let mut cached = self.inner.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == token) {
            *cached = None;
        }
    }

    /// `POST /oauth2/token` with the refresh token.
    async fn refresh(&self, app_key: &str, app_secret: &str, refresh_token: &str) -> Result<Token> {
        tracing::debug!(url = %self.config().token_url, "refreshing the Dropbox access token");
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", app_key),
            ("client_secret", app_secret),
        ]);
        let request = self
            .inner
            .http
            .post(&self.config().token_url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send();
        let op = "oauth2/token";
        let response = match tokio::time::timeout(CALL_TIMEOUT, request).await {
            Err(_) => return Err(SERVICE.no_answer(op, "the access token", CALL_TIMEOUT)),
            Ok(Err(e)) => return Err(SERVICE.transport_error(op, "the access token", &e)),
            Ok(Ok(response)) => response,
        };
        if !response.status().is_success() {
            return Err(Failure::read(response).await.token_error(app_key));
        }
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            expires_in: Option<u64>,
            token_type: Option<String>,
        }
        let answer: Answer = SERVICE.json_body(response, op, "the access token").await?;
        if let Some(kind) = &answer.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(Error::permanent(
                BACKEND,
                format!("{op}: a token of type {kind:?}, not a bearer token"),
            ));
        }
        // Dropbox's tokens live 4 hours; renew 5 minutes before, or halfway for short ones.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(4 * 3600));
        let margin = (lifetime / 2).min(Duration::from_secs(300));
        Ok(Token {
            value: answer.access_token,
            renew_at: Instant::now() + (lifetime - margin),
        })
    }

    /// Sends the request `build` makes with an access token; a `401 expired_access_token`
    /// is repeated once with a fresh token. Statuses but 2xx become errors.
    async fn call<F>(
        &self,
        op: &'static str,
        what: &str,
        timeout: Duration,
        build: F,
    ) -> Result<reqwest::Response>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            let sent = build(&self.inner.http).bearer_auth(&token).send();
            let response = match tokio::time::timeout(timeout, sent).await {
                Err(_) => return Err(SERVICE.no_answer(op, what, timeout)),
                Ok(Err(e)) => return Err(SERVICE.transport_error(op, what, &e)),
                Ok(Ok(response)) => response,
            };
            if response.status().is_success() {
                return Ok(response);
            }
            let failure = Failure::read(response).await;
            let refreshable = matches!(self.config().auth, DropboxAuth::RefreshToken { .. });
            if failure.status == StatusCode::UNAUTHORIZED
                && failure.tag() == Some("expired_access_token")
                && refreshable
                && !refreshed
            {
                tracing::debug!(op, "the Dropbox access token expired; refreshing it");
                self.forget(&token).await;
                refreshed = true;
                continue;
            }
            return Err(failure.into_error(op, what, refreshable));
        }
    }

    /// A content-upload call: `arg` in `Dropbox-API-Arg`, `data` as the body; the answer's
    /// JSON.
    async fn upload_call<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        what: &str,
        arg: &Value,
        data: Bytes,
    ) -> Result<T> {
        let url = self.content(op);
        let arg = header_arg(arg)?;
        let timeout = upload_timeout(data.len());
        let response = self
            .call(op, what, timeout, |http| {
                http.post(&url)
                    .header("Dropbox-API-Arg", arg.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(data.clone())
            })
            .await?;
        SERVICE.json_body(response, op, what).await
    }

    /// An RPC call: `arg` as the JSON body; the answer's JSON.
    async fn rpc<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        what: &str,
        arg: &Value,
    ) -> Result<T> {
        let url = self.api(op);
        let response = self
            .call(op, what, CALL_TIMEOUT, |http| http.post(&url).json(arg))
            .await?;
        SERVICE.json_body(response, op, what).await
    }

    /// `files/upload`: the whole file in one call.
    async fn upload(&self, path: &str, what: &str, chunk: Chunk) -> Result<FileMetadata> {
        let mut arg = commit_info(path);
        arg["content_hash"] = json!(chunk.content_hash);
        self.upload_call("files/upload", what, &arg, chunk.bytes)
            .await
            .map_err(|e| not_found_is_temporary(e, what))
    }

    /// An upload session from `first` to the end of `source`, committed by `finish` with
    /// the last chunk only once the body proved to be of its declared size.
    async fn upload_session(
        &self,
        path: &str,
        what: &str,
        first: Chunk,
        source: &mut Source,
    ) -> Result<FileMetadata> {
        #[derive(Deserialize)]
        struct Started {
            session_id: String,
        }
        let mut offset = first.bytes.len() as u64;
        let started: Started = self
            .upload_call(
                "files/upload_session/start",
                what,
                &json!({ "close": false, "content_hash": first.content_hash }),
                first.bytes,
            )
            .await
            .map_err(|e| not_found_is_temporary(e, what))?;
        let session = started.session_id;
        loop {
            let chunk = source.next_chunk(self.config().chunk_size).await?;
            let cursor = json!({ "session_id": session, "offset": offset });
            if chunk.last {
                let arg = json!({
                    "cursor": cursor,
                    "commit": commit_info(path),
                    "content_hash": chunk.content_hash,
                });
                return self
                    .upload_call("files/upload_session/finish", what, &arg, chunk.bytes)
                    .await
                    .map_err(|e| not_found_is_temporary(e, what));
            }
            let len = chunk.bytes.len() as u64;
            let arg = json!({
                "cursor": cursor,
                "close": false,
                "content_hash": chunk.content_hash,
            });
            let _: Value = self
                .upload_call("files/upload_session/append_v2", what, &arg, chunk.bytes)
                .await
                .map_err(|e| not_found_is_temporary(e, what))?;
            offset += len;
        }
    }

    /// `files/delete_v2` of `path`; a missing file is no error.
    async fn remove(&self, path: &str, what: &str) -> Result<()> {
        match self
            .rpc::<Value>("files/delete_v2", what, &json!({ "path": path }))
            .await
        {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// `files/get_metadata` of `path`: `NotFound` unless it is a file.
    async fn metadata(&self, path: &str, what: &str) -> Result<FileMetadata> {
        let meta: FileMetadata = self
            .rpc("files/get_metadata", what, &json!({ "path": path }))
            .await?;
        match meta.tag.as_deref() {
            Some("file") | None => Ok(meta),
            Some(tag) => Err(Error::not_found(format_args!(
                "{what} (Dropbox has a {tag}, not a file, at {path})"
            ))),
        }
    }
}

#[async_trait]
impl StorageSink for DropboxSink {
    fn kind(&self) -> SinkKind {
        self.kind
    }

    fn location(&self) -> SinkLocation {
        let folder = &self.config().folder;
        SinkLocation::default().with_folder((!folder.is_empty()).then(|| folder.clone()))
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: PutBody,
        _options: PutOptions,
    ) -> Result<PutReceipt> {
        let path = self.path(key);
        let what = format!("object {key}");
        let mut source = Source::new(body);
        let first_max = if source.declared() <= self.config().upload_threshold {
            // At most 150 MiB (checked in `new`).
            source.declared() as usize
        } else {
            self.config().chunk_size
        };
        let first = source.next_chunk(first_max).await?;
        let meta = if first.last {
            self.upload(&path, &what, first).await?
        } else {
            self.upload_session(&path, &what, first, &mut source)
                .await?
        };
        let (receipt, content_hash) = source.finish();
        let size_matches = meta.size == Some(receipt.size);
        let hash_matches = match &meta.content_hash {
            Some(theirs) => *theirs == content_hash,
            None => {
                tracing::warn!(%key, "Dropbox's metadata has no content_hash; only the size was checked");
                true
            }
        };
        if !(size_matches && hash_matches) {
            if let Err(e) = self.remove(&path, &what).await {
                tracing::warn!(%key, error = %e, "deleting a file that failed verification failed");
            }
            return Err(Error::Integrity {
                detail: format!(
                    "{key}: Dropbox committed {} bytes with content_hash {}, but {} bytes with \
                     content_hash {content_hash} were sent; the file was deleted",
                    meta.size.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                    meta.content_hash.as_deref().unwrap_or("?"),
                    receipt.size,
                ),
            });
        }
        Ok(receipt)
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        if let Some(range) = &options.range
            && range.start >= range.end
        {
            return Err(Error::invalid("range", format!("{range:?} holds no bytes")));
        }
        let path = self.path(key);
        let what = format!("object {key}");
        let url = self.content("files/download");
        let arg = header_arg(&json!({ "path": path }))?;
        let range_header = options
            .range
            .as_ref()
            .map(|r| format!("bytes={}-{}", r.start, r.end - 1));
        let response = self
            .call("files/download", &what, CALL_TIMEOUT, |http| {
                let request = http.post(&url).header("Dropbox-API-Arg", arg.clone());
                match &range_header {
                    Some(range) => request.header(RANGE, range),
                    None => request,
                }
            })
            .await?;
        let meta: FileMetadata = response
            .headers()
            .get("Dropbox-API-Result")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| serde_json::from_str(v).ok())
            .ok_or_else(|| {
                Error::temporary(
                    BACKEND,
                    format!("files/download ({what}): no readable Dropbox-API-Result header"),
                )
            })?;
        let size = meta.size.ok_or_else(|| {
            Error::temporary(
                BACKEND,
                format!("files/download ({what}): the metadata has no size"),
            )
        })?;
        let (range, skip) = match &options.range {
            None => (0..size, 0),
            Some(asked) if asked.start >= size => return Err(range_past_end(asked, size)),
            Some(asked) => {
                let clamped = asked.start..asked.end.min(size);
                if response.status() == StatusCode::PARTIAL_CONTENT {
                    let sent = content_range(response.headers());
                    if sent.as_ref().is_some_and(|sent| *sent != clamped) {
                        return Err(Error::temporary(
                            BACKEND,
                            format!(
                                "files/download ({what}): asked for {clamped:?}, Dropbox sent {sent:?}"
                            ),
                        ));
                    }
                    (clamped, 0)
                } else {
                    // The whole file came back: skip to the range.
                    (clamped.clone(), clamped.start)
                }
            }
        };
        let len = range.end - range.start;
        Ok(GetResult::new(
            ObjectMeta::new(key.clone(), size, None),
            range,
            SERVICE.body_stream(response, skip, len),
        ))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let what = format!("object {key}");
        let meta = self.metadata(&self.path(key), &what).await?;
        let size = meta.size.ok_or_else(|| {
            Error::temporary(
                BACKEND,
                format!("files/get_metadata ({what}): the metadata has no size"),
            )
        })?;
        Ok(ObjectMeta::new(key.clone(), size, None))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let path = self.path(key);
        let what = format!("object {key}");
        match self.metadata(&path, &what).await {
            Ok(_) => self.remove(&path, &what).await,
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The metadata of a file (`FileMetadata`), or of anything (`Metadata`, tagged).
#[derive(Debug, Deserialize)]
struct FileMetadata {
    #[serde(rename = ".tag", default)]
    tag: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    content_hash: Option<String>,
}

/// The `CommitInfo` of every upload: replace what is there, quietly.
fn commit_info(path: &str) -> Value {
    json!({
        "path": path,
        "mode": "overwrite",
        "autorename": false,
        "mute": true,
        "strict_conflict": false,
    })
}

/// A put's body, read in chunks of a chosen size: counted, hashed and held to its
/// declared size by a [`CheckedBody`], and hashed as Dropbox's `content_hash` too.
struct Source {
    body: CheckedBody,
    /// What was read from the body but not handed out yet.
    pending: Option<Bytes>,
    /// The bytes handed out in chunks so far.
    handed: u64,
    content_hash: ContentHash,
}

/// A chunk of a put's body.
struct Chunk {
    bytes: Bytes,
    /// Whether the body ends with it (and then has its declared size).
    last: bool,
    /// The `content_hash` of this chunk alone.
    content_hash: String,
}

impl Source {
    fn new(body: PutBody) -> Self {
        Self {
            body: CheckedBody::new(body),
            pending: None,
            handed: 0,
            content_hash: ContentHash::default(),
        }
    }

    /// The size the body was declared with.
    fn declared(&self) -> u64 {
        self.body.declared()
    }

    /// The next `max` bytes, fewer only at the end of the body. `Integrity` if the body
    /// turns out longer or shorter than declared.
    async fn next_chunk(&mut self, max: usize) -> Result<Chunk> {
        let left = usize::try_from(self.declared() - self.handed).unwrap_or(usize::MAX);
        let mut buf = BytesMut::with_capacity(max.min(left));
        while buf.len() < max {
            let Some(item) = self.pull().await? else {
                break;
            };
            let take = item.len().min(max - buf.len());
            buf.extend_from_slice(&item[..take]);
            if take < item.len() {
                self.pending = Some(item.slice(take..));
            }
        }
        // Reading one piece ahead: the body says there and then if it runs past its size.
        let last = self.at_end().await?;
        if last {
            self.body.finish()?;
        }
        self.handed += buf.len() as u64;
        let content_hash = self.content_hash.add(&buf);
        Ok(Chunk {
            bytes: buf.freeze(),
            last,
            content_hash,
        })
    }

    /// The next piece of the body, if any.
    async fn pull(&mut self) -> Result<Option<Bytes>> {
        match self.pending.take() {
            Some(pending) => Ok(Some(pending)),
            None => self.body.next().await,
        }
    }

    /// Whether the body has no more bytes.
    async fn at_end(&mut self) -> Result<bool> {
        match self.pull().await? {
            None => Ok(true),
            Some(item) => {
                self.pending = Some(item);
                Ok(false)
            }
        }
    }

    /// The receipt, and the whole body's `content_hash`.
    fn finish(self) -> (PutReceipt, String) {
        (self.body.receipt(), self.content_hash.finish())
    }
}

/// Dropbox's `content_hash`, fed chunk by chunk: the SHA-256 of the concatenated SHA-256
/// digests of the 4 MiB blocks (the last one shorter); of no bytes, the SHA-256 of
/// nothing.
///
/// Every chunk but the last must be a multiple of 4 MiB, so chunks start on block
/// boundaries: each block's digest then serves both the whole file's hash and the
/// chunk's own (which an upload call carries).
#[derive(Default)]
struct ContentHash {
    digests: Sha256,
    /// Whether a chunk that was not a multiple of 4 MiB was added (it must be the last).
    ragged: bool,
}

impl ContentHash {
    /// Adds `chunk`, returning its own `content_hash`.
    fn add(&mut self, chunk: &[u8]) -> String {
        debug_assert!(!self.ragged, "only the last chunk may end inside a block");
        self.ragged = !chunk.len().is_multiple_of(BLOCK);
        let mut own = Sha256::new();
        for block in chunk.chunks(BLOCK) {
            let digest = Sha256::digest(block);
            own.update(digest);
            self.digests.update(digest);
        }
        hex::encode(own.finalize())
    }

    /// The whole content's hash, in lowercase hex.
    fn finish(self) -> String {
        hex::encode(self.digests.finalize())
    }
}

/// The range a `206`'s `Content-Range: bytes a-b/size` names.
fn content_range(headers: &HeaderMap) -> Option<Range<u64>> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let (first, last) = value
        .strip_prefix("bytes ")?
        .split_once('/')?
        .0
        .split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first <= last).then(|| first..last + 1)
}

/// `arg` as a `Dropbox-API-Arg` header: JSON with every character from 0x7F up escaped as
/// `\uXXXX` (UTF-16 units), so the header is ASCII.
fn header_arg(arg: &Value) -> Result<HeaderValue> {
    let json = ascii_json(&arg.to_string());
    HeaderValue::from_str(&json).map_err(|e| Error::invalid("Dropbox-API-Arg", e))
}

/// `json` with every character from 0x7F up written as `\uXXXX`. Such characters occur
/// only inside JSON strings, where the escape means the same character.
fn ascii_json(json: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (c as u32) < 0x7f {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        form_encode(name, &mut out);
        out.push('=');
        form_encode(value, &mut out);
    }
    out
}

fn form_encode(s: &str, out: &mut String) {
    use std::fmt::Write as _;
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// A `NotFound` from an upload call is about its session (expired, or lost), not the
/// object: a retry starts a new one.
fn not_found_is_temporary(e: Error, what: &str) -> Error {
    if e.is_not_found() {
        Error::temporary(
            BACKEND,
            format!("uploading {what}: Dropbox lost the upload ({e})"),
        )
    } else {
        e
    }
}

/// An answer other than 2xx.
struct Failure {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: String,
    json: Option<Value>,
}

impl Failure {
    async fn read(response: reqwest::Response) -> Self {
        let (status, retry_after, body) = read_failure(response).await;
        let json = serde_json::from_slice::<Value>(&body).ok();
        let retry_after = retry_after.or_else(|| {
            json.as_ref()?
                .pointer("/error/retry_after")?
                .as_u64()
                .map(Duration::from_secs)
        });
        Self {
            status,
            retry_after,
            body: String::from_utf8_lossy(&body).trim().to_owned(),
            json,
        }
    }

    /// The error's `.tag` (`expired_access_token`, `path`, …).
    fn tag(&self) -> Option<&str> {
        self.json.as_ref()?.pointer("/error/.tag")?.as_str()
    }

    /// The `error_summary`'s parts (`path/not_found/..` is `["path", "not_found"]`), or
    /// the error's tags.
    fn summary(&self) -> Vec<String> {
        if let Some(summary) = self
            .json
            .as_ref()
            .and_then(|j| j.get("error_summary"))
            .and_then(Value::as_str)
        {
            return summary
                .split('/')
                .map(str::trim)
                .filter(|part| !part.is_empty() && !part.chars().all(|c| c == '.'))
                .map(str::to_owned)
                .collect();
        }
        // No summary: follow the tags (`{".tag": "path", "path": {".tag": "not_found"}}`).
        let mut parts = Vec::new();
        let mut node = self.json.as_ref().and_then(|j| j.get("error"));
        while let Some(tag) = node.and_then(|n| n.get(".tag")).and_then(Value::as_str) {
            parts.push(tag.to_owned());
            node = node.and_then(|n| n.get(tag));
        }
        parts
    }

    /// What Dropbox said, for a message: the summary, else the body (shortened).
    fn said(&self) -> String {
        let summary = self.summary();
        if !summary.is_empty() {
            return summary.join("/");
        }
        let mut body: String = self.body.chars().take(300).collect();
        if body.is_empty() {
            body = "(no body)".to_owned();
        }
        body
    }

    fn into_error(self, op: &str, what: &str, refreshable: bool) -> Error {
        let status = self.status.as_u16();
        let said = self.said();
        match status {
            401 => {
                let fix = match self.tag() {
                    Some("expired_access_token") if refreshable => {
                        "the access token expired again right after a refresh"
                    }
                    Some("expired_access_token") => {
                        "the access token expired (Dropbox's last 4 hours): configure the \
                         refresh-token flow (app key, app secret and refresh token) instead"
                    }
                    Some("invalid_access_token") => {
                        "the access token is invalid or was revoked (the app may have been \
                         unlinked from the account): authorize the app again"
                    }
                    Some("missing_scope") => {
                        "the app lacks a permission: enable files.metadata.read, \
                         files.content.read and files.content.write in the App Console, \
                         then authorize the app again"
                    }
                    Some("user_suspended") => "the Dropbox account is suspended",
                    _ => "Dropbox refused the credentials",
                };
                let scope = self
                    .json
                    .as_ref()
                    .and_then(|j| j.pointer("/error/required_scope"))
                    .and_then(Value::as_str)
                    .map(|s| format!(" (needs {s})"))
                    .unwrap_or_default();
                Error::permission_denied(BACKEND, format!("{op} ({what}): {said}{scope}: {fix}"))
            }
            403 => Error::permission_denied(
                BACKEND,
                format!("{op} ({what}): Dropbox refused access: {said}"),
            ),
            409 => self.endpoint_error(op, what),
            416 => Error::invalid(
                "range",
                format!("{what}: the range starts at or past the end of the object"),
            ),
            429 => {
                let reason = self
                    .json
                    .as_ref()
                    .and_then(|j| j.pointer("/error/reason/.tag"))
                    .and_then(Value::as_str)
                    .unwrap_or("too_many_requests");
                Error::rate_limited(
                    BACKEND,
                    format!("{op} ({what}): {reason}"),
                    self.retry_after,
                )
            }
            400 => Error::permanent(
                BACKEND,
                format!("{op} ({what}): Dropbox rejected the request as malformed (400): {said}"),
            ),
            404 | 405 => Error::permanent(
                BACKEND,
                format!(
                    "{op}: no such endpoint ({status}): check the Dropbox API and content URLs"
                ),
            ),
            500.. => {
                let detail = format!("{op} ({what}): Dropbox answered {status}: {said}");
                match self.retry_after {
                    Some(after) => Error::temporary_after(BACKEND, detail, after),
                    None => Error::temporary(BACKEND, detail),
                }
            }
            _ => Error::temporary(
                BACKEND,
                format!("{op} ({what}): Dropbox answered {status}: {said}"),
            ),
        }
    }

    /// A `409`: the endpoint's own error, by its summary (`path/not_found/..`).
    fn endpoint_error(&self, op: &str, what: &str) -> Error {
        let parts = self.summary();
        let detail = format!("{op} ({what}): {}", parts.join("/"));
        let first = parts.first().map(String::as_str).unwrap_or("");
        let reason = match first {
            // A lookup or a write at the path: what happened is the next part.
            "path" | "path_lookup" | "path_write" => parts.get(1).map(String::as_str),
            _ => Some(first),
        };
        match reason.unwrap_or("") {
            "not_found" if first != "not_found" => Error::not_found(what),
            "not_file" | "not_folder" => {
                Error::not_found(format_args!("{what} (Dropbox has a folder at its path)"))
            }
            "malformed_path" | "disallowed_name" => Error::invalid("Dropbox path", detail),
            "no_write_permission" | "team_folder" => Error::permission_denied(BACKEND, detail),
            "insufficient_space" => {
                Error::permanent(BACKEND, format!("{detail}: the Dropbox account is full"))
            }
            "conflict" => Error::precondition(format_args!(
                "{detail}: something else (a folder?) is at the path in Dropbox"
            )),
            "too_many_write_operations" => Error::rate_limited(BACKEND, detail, self.retry_after),
            "content_hash_mismatch" => Error::Integrity {
                detail: format!("{detail}: Dropbox received other bytes than were sent"),
            },
            "payload_too_large" | "too_large" | "restricted_content" => {
                Error::permanent(BACKEND, detail)
            }
            // The session's own troubles (`lookup_failed`, `incorrect_offset`, a session
            // not found): a retry of the put starts a new session.
            _ => Error::temporary(BACKEND, detail),
        }
    }

    /// An error of the token endpoint (RFC 6749's `{"error": "invalid_grant", …}`).
    fn token_error(self, app_key: &str) -> Error {
        let op = "oauth2/token";
        let field = |name: &str| {
            self.json
                .as_ref()
                .and_then(|j| j.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let error = field("error").unwrap_or_default();
        let said = match field("error_description") {
            Some(description) => format!("{error}: {description}"),
            None if error.is_empty() => self.said(),
            None => error.clone(),
        };
        let status = self.status.as_u16();
        if error == "invalid_grant" {
            Error::permission_denied(
                BACKEND,
                format!(
                    "{op}: Dropbox refused the refresh token ({said}): it is wrong, or the app \
                     was unlinked from the account; authorize the app again and configure \
                     the new refresh token"
                ),
            )
        } else if error.starts_with("invalid_client")
            || error == "unauthorized_client"
            || status == 401
        {
            Error::permission_denied(
                BACKEND,
                format!(
                    "{op}: Dropbox refused the app key {app_key:?} or its app secret \
                     ({said}): check both in the App Console (Settings)"
                ),
            )
        } else if status == 429 {
            Error::rate_limited(BACKEND, format!("{op}: {said}"), self.retry_after)
        } else if status >= 500 {
            Error::temporary(BACKEND, format!("{op}: Dropbox answered {status}: {said}"))
        } else {
            Error::permanent(
                BACKEND,
                format!("{op}: Dropbox refused the token request ({status}): {said}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of no bytes.
    const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// Dropbox's published example (developers/reference/content-hash): the digests of
    /// the three blocks of a 9,711,423-byte image, and the file's `content_hash`.
    #[test]
    fn content_hash_combines_block_digests_as_dropbox_publishes() {
        let blocks = [
            "2a846fa617c3361fc117e1c5c1e1838c336b6a5cef982c1a2d9bdf68f2f1992a",
            "c68469027410ea393eba6551b9fa1e26db775f00eae70a0c3c129a0011a39cf9",
            "7376192de020925ce6c5ef5a8a0405e931b0a9a8c75517aacd9ca24a8a56818b",
        ];
        let mut hash = ContentHash::default();
        for block in blocks {
            hash.digests.update(hex::decode(block).unwrap());
        }
        assert_eq!(
            hash.finish(),
            "485291fa0ee50c016982abbfa943957bcd231aae0492ccbaa22c58e3997b35e0"
        );
    }

    /// Vectors computed with Python's hashlib: `(i * 31 + 7) % 251` for 8 MiB + 1000
    /// bytes, and 4 MiB of `0..=255` repeated; the empty file hashes to SHA-256 of nothing.
    #[test]
    fn content_hash_of_known_contents_in_any_block_aligned_chunking() {
        let len = 2 * BLOCK + 1000;
        let data: Vec<u8> = (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect();
        let expected = "0c1f4ea74d77c8950946bde6236647c86c262484a4296224896806ce3bbb7f13";
        for chunk in [BLOCK, 2 * BLOCK, len] {
            let mut hash = ContentHash::default();
            for piece in data.chunks(chunk) {
                hash.add(piece);
            }
            assert_eq!(hash.finish(), expected, "in chunks of {chunk}");
        }
        let mut whole = ContentHash::default();
        assert_eq!(whole.add(&data), expected, "a chunk's own hash");

        let exact: Vec<u8> = (0..BLOCK).map(|i| i as u8).collect();
        let mut hash = ContentHash::default();
        hash.add(&exact);
        assert_eq!(
            hash.finish(),
            "894bbb52d1212d6bcbe9967f1a2169138c4d4af0c8dfbaeae86cd1d3f0c03faf"
        );

        let mut empty = ContentHash::default();
        assert_eq!(empty.add(&[]), SHA256_EMPTY);
        assert_eq!(empty.finish(), SHA256_EMPTY);
        assert_eq!(ContentHash::default().finish(), SHA256_EMPTY);
    }

    /// Dropbox's own example of HTTP-header-safe JSON (developers/reference/json-encoding).
    #[test]
    fn header_json_escapes_everything_past_ascii() {
        let arg = json!({ "field": "some_üñîcødé_and_\u{7f}" });
        assert_eq!(
            header_arg(&arg).unwrap().to_str().unwrap(),
            r#"{"field":"some_\u00fc\u00f1\u00eec\u00f8d\u00e9_and_\u007f"}"#
        );
        // Past the BMP: a surrogate pair, which parses back to the character.
        let escaped = ascii_json(&json!({ "path": "/🎥/a.mp4" }).to_string());
        assert_eq!(escaped, r#"{"path":"/\ud83c\udfa5/a.mp4"}"#);
        let back: Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back["path"], "/🎥/a.mp4");
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form(&[("grant_type", "refresh_token"), ("x", "a b&c=d/é")]),
            "grant_type=refresh_token&x=a+b%26c%3Dd%2F%C3%A9"
        );
    }

    #[test]
    fn config_normalises_the_folder_and_checks_chunks() {
        let auth = DropboxAuth::AccessToken("t".into());
        for (given, kept) in [
            ("", ""),
            ("/", ""),
            ("recordings", "/recordings"),
            ("/Apps/Pipe/", "/Apps/Pipe"),
        ] {
            assert_eq!(
                DropboxConfig::new(auth.clone()).with_folder(given).folder,
                kept
            );
        }
        let config = DropboxConfig::new(auth.clone()).with_endpoints("http://a/", "http://c");
        assert_eq!(config.token_url, "http://a/oauth2/token");
        assert_eq!(config.content_url, "http://c");
        for chunk in [0, BLOCK + 1, 38 * BLOCK] {
            let config = DropboxConfig::new(auth.clone()).with_chunk_size(chunk);
            assert!(
                matches!(
                    DropboxSink::new(config, SinkKind::Dropbox),
                    Err(Error::Invalid { .. })
                ),
                "{chunk}"
            );
        }
        let config = DropboxConfig::new(auth.clone()).with_upload_threshold(MAX_CALL + 1);
        assert!(DropboxSink::new(config, SinkKind::Dropbox).is_err());
        let config = DropboxConfig::new(auth).with_chunk_size(37 * BLOCK);
        assert!(DropboxSink::new(config, SinkKind::Dropbox).is_ok());
    }
}
