//! # pipe-ingest
//!
//! The HTTP edge where recordings arrive: a resumable streaming protocol over WebSocket
//! (see `PROTOCOL.md`), the browser recorder that speaks it, and the host whitelist.
//!
//! An [`Ingest`] appends what arrives to a [`Spool`] (acknowledging only durable bytes),
//! keeps the [`Catalog`] told (`receiving`, then `recorded` with a `probe` job in the same
//! transaction), and serves the recorder's JavaScript. It knows only `pipe-core`'s traits,
//! so any spool and catalog will do.
//!
//! ```no_run
//! # async fn demo(catalog: std::sync::Arc<dyn pipe_core::Catalog>, spool: std::sync::Arc<dyn pipe_core::Spool>) {
//! use pipe_ingest::{Ingest, IngestConfig};
//!
//! let ingest = Ingest::new(catalog, spool, b"a secret of 32 bytes or more....".to_vec(), IngestConfig::default());
//! let app = axum::Router::new().merge(ingest.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! Routes: `GET /v1/stream` (the WebSocket), `GET /recorder/pipe-recorder.js` (the
//! recorder, an ES module without dependencies) and `GET /recorder/demo.html` (a page that
//! embeds it). The server mounts the demo at `/`.
//!
//! Not here yet: tus 1.0 uploads, privacy switches for client metadata, rate limits.
#![forbid(unsafe_code)]

mod hosts;
pub mod protocol;
pub mod recorder;
mod session;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use hmac::{Hmac, Mac};
use pipe_core::{Catalog, RecordingId, Spool};
use sha2::Sha256;
use tokio::sync::{Notify, watch};

pub use hosts::{HostAllowList, HostListError};

/// Limits and policy of an [`Ingest`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IngestConfig {
    /// Hosts allowed to stream (checked on `Origin`); empty allows all.
    pub allowed_hosts: HostAllowList,
    /// The largest chunk after the 8-byte offset (default 1 MiB).
    pub max_chunk: usize,
    /// The largest text message (default 16 KiB).
    pub max_text: usize,
    /// The largest recording (default 2 GiB).
    pub max_recording_bytes: u64,
    /// Time from connect to `start` or `resume` (default 10 s).
    pub start_timeout: Duration,
    /// Time without a protocol message (pings do not count) after which a connection is
    /// closed (default 60 s).
    pub idle_timeout: Duration,
    /// Time a client has to take each message the server sends (default 10 s): one that
    /// stops reading cannot hold its connection, or a shutdown.
    pub send_timeout: Duration,
    /// Open streaming connections at most (default 1024); more get `503`.
    pub max_connections: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: HostAllowList::any(),
            max_chunk: 1 << 20,
            max_text: 16 << 10,
            max_recording_bytes: 2 << 30,
            start_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

impl IngestConfig {
    /// Allows only `hosts`.
    #[must_use]
    pub fn with_allowed_hosts(mut self, hosts: HostAllowList) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// Accepts chunks of at most `max_chunk` bytes.
    #[must_use]
    pub fn with_max_chunk(mut self, max_chunk: usize) -> Self {
        self.max_chunk = max_chunk;
        self
    }

    /// Closes connections silent (no protocol message) for `idle`, and gives a client
    /// `start` to send its first message.
    #[must_use]
    pub fn with_timeouts(mut self, start: Duration, idle: Duration) -> Self {
        self.start_timeout = start;
        self.idle_timeout = idle;
        self
    }

    /// Accepts at most `max` open streaming connections.
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Accepts recordings of at most `max` bytes.
    #[must_use]
    pub fn with_max_recording_bytes(mut self, max: u64) -> Self {
        self.max_recording_bytes = max;
        self
    }
}

type FinishHook = Arc<dyn Fn(&RecordingId) + Send + Sync>;

/// The ingest edge: cheap to clone, shared by every connection.
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

struct Inner {
    config: IngestConfig,
    catalog: Arc<dyn Catalog>,
    spool: Arc<dyn Spool>,
    secret: Vec<u8>,
    on_finish: Option<FinishHook>,
    shutdown: watch::Sender<bool>,
    sessions: AtomicUsize,
    sessions_done: Notify,
}

impl fmt::Debug for Ingest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingest")
            .field("config", &self.inner.config)
            .field("catalog", &self.inner.catalog)
            .field("spool", &self.inner.spool)
            .field("sessions", &self.inner.sessions.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// An ingest over `catalog` and `spool`. `secret` keys the resume tokens: keep it
    /// stable across restarts (or clients cannot resume) and secret (or anyone who knows a
    /// recording's id can append to it).
    pub fn new(
        catalog: Arc<dyn Catalog>,
        spool: Arc<dyn Spool>,
        secret: Vec<u8>,
        config: IngestConfig,
    ) -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                config,
                catalog,
                spool,
                secret,
                on_finish: None,
                shutdown,
                sessions: AtomicUsize::new(0),
                sessions_done: Notify::new(),
            }),
        }
    }

    /// Calls `hook` after each recording is finished and its `probe` job committed, for
    /// example to wake the job workers at once instead of at their next poll.
    ///
    /// # Panics
    /// If the ingest was already cloned.
    #[must_use]
    pub fn on_finish(mut self, hook: impl Fn(&RecordingId) + Send + Sync + 'static) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("set on_finish before cloning the Ingest")
            .on_finish = Some(Arc::new(hook));
        self
    }

    /// The routes: `GET /v1/stream`, `GET /recorder/pipe-recorder.js`,
    /// `GET /recorder/demo.html`.
    pub fn router<S>(&self) -> Router<S> {
        Router::new()
            .route("/v1/stream", get(stream))
            .route("/recorder/pipe-recorder.js", get(recorder::script))
            .route("/recorder/demo.html", get(recorder::demo))
            .with_state(self.clone())
    }

    /// Asks every connection to close with 1001 once the message it is handling is
    /// durable, and waits until they have.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        loop {
            let done = self.inner.sessions_done.notified();
            if self.inner.sessions.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }

    /// The resume token of `id`: base64url(HMAC-SHA256(secret, "pipe.stream.v1 resume " ‖ id)).
    fn resume_token(&self, id: &RecordingId) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.token_mac(id).finalize().into_bytes())
    }

    /// Checks `token` for `id` in constant time.
    fn check_resume_token(&self, id: &RecordingId, token: &str) -> bool {
        let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        self.token_mac(id).verify_slice(&bytes).is_ok()
    }

    fn token_mac(&self, id: &RecordingId) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.inner.secret)
            .expect("HMAC takes keys of any length");
        mac.update(protocol::SUBPROTOCOL.as_bytes());
        mac.update(b" resume ");
        mac.update(id.as_str().as_bytes());
        mac
    }
}

async fn stream(
    State(ingest): State<Ingest>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ingest.inner.config.allowed_hosts.allows_origin(origin) {
        tracing::info!(
            origin,
            "refused a stream from an origin that is not allowed"
        );
        return (
            StatusCode::FORBIDDEN,
            "this origin is not among the allowed hosts\n",
        )
            .into_response();
    }
    if ingest.inner.sessions.load(Ordering::Acquire) >= ingest.inner.config.max_connections {
        tracing::warn!("refused a stream: too many open streams");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many open streams, try again shortly\n",
        )
            .into_response();
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let config = &ingest.inner.config;
    // The library's limits sit above the protocol's so that an oversized message reaches
    // the session, which closes with the documented 1009 and reason.
    let library_limit = 2 * (config.max_chunk + protocol::OFFSET_LEN).max(config.max_text);
    upgrade
        .protocols([protocol::SUBPROTOCOL])
        .max_message_size(library_limit)
        .max_frame_size(library_limit)
        .on_upgrade(move |socket| session::run(ingest, socket))
}
