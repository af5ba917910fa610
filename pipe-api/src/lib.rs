//! # pipe-api
//!
//! The operator's API of Pipe as an axum [`Router`] that any Rust service can mount over
//! its own catalog and sinks: recordings (list with cursor pagination, get with every
//! step, copy and download link), environments (create, read, update, delete, every
//! version kept), API keys (create, list, revoke), webhook endpoints (create with the
//! secret shown once, change, disable, rotate the secret with an overlap) and webhook
//! deliveries (the log of every attempt, redelivery), all under `/v1/`, JSON in and out,
//! errors as RFC 9457 problem documents, described by an OpenAPI 3.1 document at
//! `/v1/openapi.json` that is generated from the handlers themselves (utoipa), so it
//! cannot drift from them. [`files`] serves stored artifacts behind signed, expiring
//! links with range requests.
//!
//! ```no_run
//! # async fn demo() -> pipe_core::Result<()> {
//! use std::sync::Arc;
//! use pipe_api::Api;
//! use pipe_lifecycle::SqliteCatalog;
//!
//! let catalog = Arc::new(SqliteCatalog::open("catalog.sqlite").await?);
//! let api = Api::builder(catalog.clone(), catalog.clone(), catalog).build();
//! let app = axum::Router::new().merge(api.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # Ok(()) }
//! ```
//!
//! ## Keys and roles
//!
//! Every route but the OpenAPI document needs an API key, sent as `Authorization: Bearer
//! pk_…` or, as Pipe's REST API reads it, `X-PIPE-AUTH: pk_…` ([`auth`]). `viewer` keys
//! read; `editor` keys also manage recordings and redeliver webhooks; `admin` keys do
//! everything. A key may be limited to some environments: it then sees nothing of the
//! others, and a recording or environment it may not see answers 404, exactly as one that
//! does not exist. Keys are managed, and environments created and deleted, only with
//! admin keys limited to no environment; an admin key limited to some environments may
//! change their settings. Each key is rate-limited ([`RateLimit`]).
//!
//! Every request is logged once on the target `pipe_api::access` (key id, role, method,
//! route template, status, duration): never a key, never a query string. With an audit
//! log ([`ApiBuilder::audit_log`]) every request is also an entry of it (actor
//! `key:<id>`, role, action `<METHOD> <route template>`, target such as
//! `recording:<id>`, outcome the status), read at `GET /v1/audit`.
//!
//! [`Api::pipe_compat_router`] adds the routes of the hosted Pipe's REST API v1 for code
//! written against it ([`pipe_compat`]).
//!
//! `GET /metrics` serves Prometheus text to any key when the application gives a
//! renderer ([`ApiBuilder::metrics`]), adding the job queue read from the catalog; the
//! `pipe-*` crates report through the `metrics` facade.
//!
//! Deleting a recording (`DELETE /v1/recordings/{id}`) marks it and enqueues its erasure,
//! a durable job of the pipeline (`pipe-lifecycle`) that deletes every copy in every
//! sink and the spool entry, and leaves of it in the catalog only a tombstone (when and
//! why it was deleted); the recording answers 404 once it is done, saying when and why.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod audit;
pub mod auth;
mod deliveries;
mod environments;
mod extract;
pub mod files;
mod keys;
mod log;
pub mod metrics;
mod openapi;
pub mod pipe_compat;
mod recordings;
mod webhooks;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use pipe_core::{
    ApiKeyStore, AuditLog, Catalog, EndpointStore, EnvironmentStore, Notifier, SinkId, StorageSink,
    UrlGuard,
};
use pipe_http::{Problem, ProblemType};

pub use auth::{Caller, RateLimit, mint_key};
pub use openapi::openapi;

/// The API's state: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

struct Inner {
    catalog: Arc<dyn Catalog>,
    environments: Arc<dyn EnvironmentStore>,
    keys: Arc<dyn ApiKeyStore>,
    endpoints: Option<Arc<dyn EndpointStore>>,
    url_guard: Option<Arc<dyn UrlGuard>>,
    notifier: Option<Arc<dyn Notifier>>,
    sinks: Vec<(SinkId, Arc<dyn StorageSink>)>,
    directory: Option<Arc<dyn pipe_core::SinkDirectory>>,
    link_ttl: Duration,
    limiter: auth::Limiter,
    metrics: Option<metrics::MetricsRender>,
    audit: Option<Arc<dyn AuditLog>>,
    /// The (kind, status) groups of jobs the metrics have shown.
    job_gauges: std::sync::Mutex<std::collections::BTreeSet<(String, &'static str)>>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("catalog", &self.inner.catalog)
            .field("sinks", &self.inner.sinks)
            .field("link_ttl", &self.inner.link_ttl)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Api`]; see [`Api::builder`].
#[derive(Debug)]
#[must_use]
pub struct ApiBuilder {
    catalog: Arc<dyn Catalog>,
    environments: Arc<dyn EnvironmentStore>,
    keys: Arc<dyn ApiKeyStore>,
    endpoints: Option<Arc<dyn EndpointStore>>,
    url_guard: Option<Arc<dyn UrlGuard>>,
    notifier: Option<Arc<dyn Notifier>>,
    sinks: Vec<(SinkId, Arc<dyn StorageSink>)>,
    directory: Option<Arc<dyn pipe_core::SinkDirectory>>,
    link_ttl: Duration,
    rate_limit: RateLimit,
    metrics: Option<metrics::MetricsRender>,
    audit: Option<Arc<dyn AuditLog>>,
}

impl ApiBuilder {
    /// Links to artifacts come from `sink` (its [`StorageSink::url`]) when it holds a
    /// copy; sinks are asked in the order they were added.
    pub fn sink(mut self, id: SinkId, sink: Arc<dyn StorageSink>) -> Self {
        self.sinks.push((id, sink));
        self
    }

    /// Lets environments have sinks of their own and "do not store", each settings change
    /// checked by `directory` (the one the pipeline copies through) before it is saved;
    /// without it, settings that name sinks are refused with a 400.
    pub fn sink_directory(mut self, directory: Arc<dyn pipe_core::SinkDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Manages the webhook endpoints of environments in `store` (the routes under
    /// `/v1/environments/{id}/webhooks` and `/v1/webhooks/`); without it they answer 404.
    pub fn endpoint_store(mut self, store: Arc<dyn EndpointStore>) -> Self {
        self.endpoints = Some(store);
        self
    }

    /// Checks every webhook URL set through the API with `guard` (the SSRF guard,
    /// `pipe_webhook::AddressPolicy`), refusing one that points inside the network with a
    /// 400. Without it, URLs are checked only to be `http(s)`; deliveries still go
    /// through the notifier's own guard.
    pub fn url_guard(mut self, guard: Arc<dyn UrlGuard>) -> Self {
        self.url_guard = Some(guard);
        self
    }

    /// Sends test events (`POST /v1/webhooks/{id}/test`) through `notifier`, the one the
    /// pipeline delivers with; without it that route answers 404.
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// How long the download links in answers stay valid (default 1 hour).
    pub fn link_ttl(mut self, ttl: Duration) -> Self {
        self.link_ttl = ttl;
        self
    }

    /// The rate limit of each key (default [`RateLimit::default`]).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Serves `GET /metrics` (any key's role) rendered by `render`; see [`metrics`].
    pub fn metrics(mut self, render: metrics::MetricsRender) -> Self {
        self.metrics = Some(render);
        self
    }

    /// Appends every API call to `log` (key id, role, method and route, target, status)
    /// and serves it at `GET /v1/audit` to admin keys for every environment.
    pub fn audit_log(mut self, log: Arc<dyn AuditLog>) -> Self {
        self.audit = Some(log);
        self
    }

    /// The API.
    pub fn build(self) -> Api {
        Api {
            inner: Arc::new(Inner {
                catalog: self.catalog,
                environments: self.environments,
                keys: self.keys,
                endpoints: self.endpoints,
                url_guard: self.url_guard,
                notifier: self.notifier,
                sinks: self.sinks,
                directory: self.directory,
                link_ttl: self.link_ttl,
                limiter: auth::Limiter::new(self.rate_limit),
                metrics: self.metrics,
                audit: self.audit,
                job_gauges: Default::default(),
            }),
        }
    }
}

impl Api {
    /// An API over a catalog of recordings, a store of environments and one of keys
    /// (one catalog, such as `pipe-lifecycle`'s SQLite catalog, usually implements all
    /// three).
    pub fn builder(
        catalog: Arc<dyn Catalog>,
        environments: Arc<dyn EnvironmentStore>,
        keys: Arc<dyn ApiKeyStore>,
    ) -> ApiBuilder {
        ApiBuilder {
            catalog,
            environments,
            keys,
            endpoints: None,
            url_guard: None,
            notifier: None,
            sinks: Vec::new(),
            directory: None,
            link_ttl: Duration::from_secs(3600),
            rate_limit: RateLimit::default(),
            metrics: None,
            audit: None,
        }
    }

    /// `GET /metrics` without a key: for a listener of its own that only the monitoring
    /// network reaches (`PIPE_METRICS_LISTEN` in the reference server).
    pub fn metrics_router<S>(&self) -> Router<S> {
        Router::new()
            .route("/metrics", get(metrics::open))
            .with_state(self.clone())
    }

    /// The routes of Pipe's REST API v1 that code written for the hosted Pipe calls
    /// (`/video/all`, `GET` and `DELETE /video/{id}`, `/account`, `/environment`), answering Pipe's
    /// envelope; see [`pipe_compat`]. With the access log.
    pub fn pipe_compat_router<S>(&self) -> Router<S> {
        Router::new()
            .route("/video/all", get(pipe_compat::all))
            .route(
                "/video/{id}",
                get(pipe_compat::one).delete(pipe_compat::delete),
            )
            .route("/account", get(pipe_compat::account))
            .route("/environment", get(pipe_compat::environment))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                log::access,
            ))
            .with_state(self.clone())
    }

    /// The routes under `/v1/` (see the OpenAPI document for each), with the access log.
    pub fn router<S>(&self) -> Router<S> {
        Router::new()
            .route("/v1/recordings", get(recordings::list))
            .route(
                "/v1/recordings/{id}",
                get(recordings::get).delete(recordings::delete),
            )
            .route(
                "/v1/recordings/{id}/deliveries",
                get(deliveries::of_recording),
            )
            .route("/v1/deliveries", get(deliveries::log))
            .route(
                "/v1/deliveries/redeliver",
                axum::routing::post(deliveries::redeliver),
            )
            .route(
                "/v1/environments",
                get(environments::list).post(environments::create),
            )
            .route(
                "/v1/environments/{id}",
                get(environments::get)
                    .patch(environments::update)
                    .delete(environments::delete),
            )
            .route(
                "/v1/environments/{id}/versions",
                get(environments::versions),
            )
            .route(
                "/v1/environments/{id}/webhooks",
                get(webhooks::list).post(webhooks::create),
            )
            .route(
                "/v1/webhooks/{id}",
                get(webhooks::get)
                    .patch(webhooks::update)
                    .delete(webhooks::delete),
            )
            .route(
                "/v1/webhooks/{id}/rotate-secret",
                axum::routing::post(webhooks::rotate),
            )
            .route(
                "/v1/webhooks/{id}/test",
                axum::routing::post(webhooks::test),
            )
            .route("/v1/keys", get(keys::list).post(keys::create))
            .route("/v1/keys/{id}", axum::routing::delete(keys::revoke))
            .route("/v1/audit", get(audit::list))
            .route("/v1/openapi.json", get(openapi::serve))
            .route("/metrics", get(metrics::with_key))
            .method_not_allowed_fallback(method_not_allowed)
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                log::access,
            ))
            .layer(axum::extract::DefaultBodyLimit::max(extract::MAX_BODY))
            .with_state(self.clone())
    }
}

/// A fallback for an app that mounts the API: 404 as a problem document.
pub async fn not_found() -> Problem {
    Problem::new(ProblemType::NotFound, "no such route")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        ProblemType::MethodNotAllowed,
        "the route exists, but not with this method",
    )
}
