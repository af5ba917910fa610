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
//! let ingest = Ingest::builder(catalog, spool, b"a secret of 32 bytes or more....".to_vec())
//!     .config(IngestConfig::default())
//!     .on_finish(|id| println!("{id} is recorded"))
//!     .build();
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
//! With an [`EnvironmentStore`] ([`IngestBuilder::environments`]) each connection names its
//! environment (`/v1/stream?environment=<id>`, default `production`), whose allowed hosts
//! and limits apply as they are when it connects. Refusals before the upgrade are RFC 9457
//! problem documents ([`pipe_http::Problem`]).
//!
//! The rules of a recording as it arrives (admission, start, resume with a token,
//! append at an offset, describe, idempotent finish) are the [`Intake`]'s, written once
//! for every transport; the WebSocket protocol is a thin adapter over it, and another
//! transport mounts beside it through [`Ingest::intake`]. The streaming connection cap is
//! a permit each connection holds from before its upgrade until it closes.
//!
//! tus 1.0 uploads are the second adapter ([`tus`]): `/v1/uploads/`, with creation,
//! creation-with-upload, creation-defer-length, expiration, termination and checksums.
//!
//! Not here yet: rate limits.
#![forbid(unsafe_code)]

mod intake;
pub mod metrics;
mod playback;
pub mod protocol;
pub mod recorder;
mod session;
pub mod tus;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pipe_core::{Catalog, EnvironmentStore, RecordingId, SinkId, Spool, StorageSink};
use pipe_http::{Problem, ProblemType, TokenSigner};
use serde::Deserialize;
use tokio::sync::{Notify, Semaphore, watch};

use intake::FinishHook;

pub use intake::{Admission, Intake, IntakeError, NewUpload, Placement, Upload};
pub use pipe_core::{HostAllowList, HostListError};

/// Limits and policy of an [`Ingest`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IngestConfig {
    /// Hosts allowed to stream (checked on `Origin`) when the ingest has no
    /// [`EnvironmentStore`]; empty allows all. With one, each environment's list applies.
    pub allowed_hosts: HostAllowList,
    /// The largest chunk after the 8-byte offset (default 1 MiB).
    pub max_chunk: usize,
    /// The largest text message (default 16 KiB).
    pub max_text: usize,
    /// The largest recording (default 2 GiB); an environment may set a lower limit.
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
    /// How long the playback links handed to a recorder stay valid (default 10 min).
    pub playback_ttl: Duration,
    /// How long past its environment's maximum recording time a stream may still add
    /// bytes (default 30 s, for what was in flight and a reconnection): then the server
    /// finishes it. The conversion keeps only the maximum recording time in any case.
    pub max_duration_grace: Duration,
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
            playback_ttl: Duration::from_secs(600),
            max_duration_grace: Duration::from_secs(30),
        }
    }
}

impl IngestConfig {
    /// Lets a stream add bytes for `grace` past its maximum recording time.
    #[must_use]
    pub fn with_max_duration_grace(mut self, grace: Duration) -> Self {
        self.max_duration_grace = grace;
        self
    }

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

/// The ingest edge: cheap to clone, shared by every connection. Made by
/// [`Ingest::builder`] (or [`Ingest::new`] with nothing else to set).
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

struct Inner {
    config: IngestConfig,
    intake: Intake,
    playback: Option<(SinkId, Arc<dyn StorageSink>)>,
    shutdown: watch::Sender<bool>,
    /// A permit per open streaming connection, taken before its upgrade.
    connections: Arc<Semaphore>,
    sessions: AtomicUsize,
    sessions_done: Notify,
}

impl fmt::Debug for Ingest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingest")
            .field("config", &self.inner.config)
            .field("intake", &self.inner.intake)
            .field("sessions", &self.inner.sessions.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Builds an [`Ingest`]: the parts it needs, then what it may also have.
#[must_use]
pub struct IngestBuilder {
    catalog: Arc<dyn Catalog>,
    spool: Arc<dyn Spool>,
    secret: Vec<u8>,
    config: IngestConfig,
    environments: Option<Arc<dyn EnvironmentStore>>,
    playback: Option<(SinkId, Arc<dyn StorageSink>)>,
    on_finish: Option<FinishHook>,
}

impl fmt::Debug for IngestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IngestBuilder {
    /// Its limits and policy.
    pub fn config(mut self, config: IngestConfig) -> Self {
        self.config = config;
        self
    }

    /// Reads each connection's environment from `store` (its allowed hosts, its limits)
    /// as it is when the connection arrives, so a change applies to the next connection.
    /// Without a store, every recording goes to the default environment under
    /// [`IngestConfig::allowed_hosts`].
    pub fn environments(mut self, store: Arc<dyn EnvironmentStore>) -> Self {
        self.environments = Some(store);
        self
    }

    /// Offers client playback (`POST /v1/stream/playback`): the recorder that made a
    /// recording gets links to its MP4 and snapshot from `sink` (which must give links
    /// through [`StorageSink::url`]) once their copies there exist, valid for
    /// [`IngestConfig::playback_ttl`]. Each environment may turn it off.
    pub fn playback(mut self, sink_id: SinkId, sink: Arc<dyn StorageSink>) -> Self {
        self.playback = Some((sink_id, sink));
        self
    }

    /// Calls `hook` after each recording is finished and its `probe` job committed, for
    /// example to wake the job workers at once instead of at their next poll.
    pub fn on_finish(mut self, hook: impl Fn(&RecordingId) + Send + Sync + 'static) -> Self {
        self.on_finish = Some(Arc::new(hook));
        self
    }

    /// The ingest.
    pub fn build(self) -> Ingest {
        let (shutdown, _) = watch::channel(false);
        let intake = Intake::new(
            self.catalog,
            self.spool,
            self.environments,
            TokenSigner::new(self.secret),
            (
                self.config.allowed_hosts.clone(),
                self.config.max_recording_bytes,
            ),
            self.on_finish,
        );
        Ingest {
            inner: Arc::new(Inner {
                connections: Arc::new(Semaphore::new(self.config.max_connections)),
                config: self.config,
                intake,
                playback: self.playback,
                shutdown,
                sessions: AtomicUsize::new(0),
                sessions_done: Notify::new(),
            }),
        }
    }
}

impl Ingest {
    /// Starts building an ingest over `catalog` and `spool`. `secret` keys the resume
    /// tokens: keep it stable across restarts (or clients cannot resume) and secret (or
    /// anyone who knows a recording's id can append to it).
    pub fn builder(
        catalog: Arc<dyn Catalog>,
        spool: Arc<dyn Spool>,
        secret: Vec<u8>,
    ) -> IngestBuilder {
        IngestBuilder {
            catalog,
            spool,
            secret,
            config: IngestConfig::default(),
            environments: None,
            playback: None,
            on_finish: None,
        }
    }

    /// An ingest with `config` and nothing else: [`Ingest::builder`] for environments,
    /// playback and a finish hook.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        spool: Arc<dyn Spool>,
        secret: Vec<u8>,
        config: IngestConfig,
    ) -> Self {
        Self::builder(catalog, spool, secret).config(config).build()
    }

    /// The rules every transport shares, for another transport to mount beside the
    /// streaming protocol.
    pub fn intake(&self) -> &Intake {
        &self.inner.intake
    }

    /// The routes: `GET /v1/stream`, `POST /v1/stream/playback`, tus uploads under
    /// `/v1/uploads/` ([`tus`]), `GET /recorder/pipe-recorder.js`, `GET /recorder/demo.html`.
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route("/v1/stream", get(stream))
            .route(
                "/v1/stream/playback",
                axum::routing::post(playback::answer).options(playback::preflight),
            )
            .route("/recorder/pipe-recorder.js", get(recorder::script))
            .route("/recorder/demo.html", get(recorder::demo))
            .with_state(self.clone())
            .merge(tus::router(self.clone()))
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

    /// The resume token of `id` (see [`Intake::resume_token`]).
    pub fn resume_token(&self, id: &RecordingId) -> String {
        self.inner.intake.resume_token(id)
    }

    /// Checks `token` for `id` in constant time.
    pub fn check_resume_token(&self, id: &RecordingId, token: &str) -> bool {
        self.inner.intake.check_resume_token(id, token)
    }
}

/// The answer before an upgrade to a refusal of admission.
fn problem_for(e: IntakeError) -> Problem {
    match e {
        IntakeError::Invalid { field, detail } => Problem::invalid(field, detail),
        IntakeError::UnknownEnvironment(id) => Problem::not_found(format_args!("environment {id}")),
        IntakeError::OriginNotAllowed(_) => {
            Problem::new(ProblemType::OriginNotAllowed, e.to_string())
        }
        IntakeError::Broken => Problem::new(ProblemType::Internal, e.to_string()),
        _ => Problem::new(ProblemType::Unavailable, "storage unavailable, try again")
            .with_retry_after(1),
    }
}

/// What the server sees of the person recording, read only where the environment
/// collects it: nothing else of the connection is kept or logged.
fn observe(
    admission: &mut Admission,
    headers: &HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) {
    let collect = admission.collect;
    if collect.ip
        && let Some(Extension(ConnectInfo(peer))) = peer
    {
        admission.seen.ip = Some(peer.ip().to_string());
    }
    if collect.user_agent {
        admission.seen.user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(1024).collect());
    }
}

#[derive(Debug, Deserialize)]
struct StreamQuery {
    environment: Option<String>,
}

async fn stream(
    State(ingest): State<Ingest>,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return Problem::invalid("environment", "the query string does not parse").into_response();
    };
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let intake = &ingest.inner.intake;
    let mut admission = match intake.admit(query.environment.as_deref(), origin).await {
        Ok(admission) => admission,
        Err(e) => return problem_for(e).into_response(),
    };
    observe(&mut admission, &headers, peer);
    // The permit is this connection's from now until it closes, so upgrades arriving
    // at once cannot overshoot the cap.
    let Ok(permit) = Arc::clone(&ingest.inner.connections).try_acquire_owned() else {
        tracing::warn!("refused a stream: too many open streams");
        return Problem::new(
            ProblemType::Unavailable,
            "too many open streams, try again shortly",
        )
        .with_retry_after(1)
        .into_response();
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let mut problem = Problem::new(ProblemType::InvalidRequest, rejection.body_text());
            problem.status = rejection.status();
            return problem.into_response();
        }
    };
    let config = &ingest.inner.config;
    // The library enforces the protocol's limits as it reads, so a connection never holds
    // more than one largest message; the session answers its error with the documented
    // 1009.
    let limit = (config.max_chunk + protocol::OFFSET_LEN).max(config.max_text);
    upgrade
        .protocols([protocol::SUBPROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| session::run(ingest, admission, permit, socket))
}
