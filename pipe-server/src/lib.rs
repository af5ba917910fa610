//! # pipe-server
//!
//! The reference server `pipe`: every `pipe-*` crate wired together behind one HTTP
//! listener. It is the only crate that names concrete implementations:
//!
//! | part | implementation | where |
//! |---|---|---|
//! | catalog | SQLite (`pipe-lifecycle`); PostgreSQL for several nodes | `<data>/catalog.sqlite`; `PIPE_CATALOG_URL` |
//! | spool | local disk; an object store for several nodes (`pipe-storage`) | `<data>/spool/`; `spool/` of `PIPE_SHARED_STORAGE` |
//! | own storage | object_store (`pipe-storage`), served by signed links | `<data>/storage/`; `storage/` of `PIPE_SHARED_STORAGE` |
//! | staging (converted files waiting for their copies) | object_store, encrypted | `<data>/staging/`; `staging/` of `PIPE_SHARED_STORAGE` |
//! | transcoder | in-process FFmpeg (`pipe-transcode`) | `<data>/work/`, scratch for outputs |
//! | webhooks | Standard Webhooks or Pipe's format (`pipe-webhook`) | `PIPE_WEBHOOK_URL` |
//!
//! Routes: `/` (the demo recorder page), `/v1/stream` and `/recorder/*` (ingest),
//! `/v1/files/*` (artifacts behind signed, expiring links, with range requests), the
//! operator's API under `/v1/` (`pipe-api`: recordings, environments, keys, and its
//! OpenAPI document at `/v1/openapi.json`), and `/healthz`.
//!
//! Environments live in the catalog. The first start creates `production` from
//! `PIPE_ALLOWED_HOSTS`; from then on the API changes it, without a restart. API keys are
//! made with `pipe keys create --role admin` (the server may be running or not) and
//! through the API.
//!
//! Secrets the server makes on first start, mode 0600 under the data dir:
//! `server.secret` (keys resume tokens and download links; keep it across restarts),
//! `keys/` (the key-encryption keys of encryption at rest, unless `PIPE_ENCRYPTION_KEYS`
//! gives them; **back it up**: without it nothing stored can be read) and, when webhooks
//! are configured without `PIPE_WEBHOOK_SECRET`, `webhook.secret`.
//!
//! Webhook endpoints belong to environments and live in the catalog; the notifier reads
//! them at each delivery, so the API changes them without a restart. `PIPE_WEBHOOK_URL`
//! makes `production`'s endpoint `endpoint-1` when it has none.
//!
//! Webhooks go only to public addresses (`pipe-webhook`'s SSRF guard): a receiver on
//! loopback or the operator's private network is re-admitted with
//! `PIPE_WEBHOOK_ALLOW_ADDRESSES`.
//!
//! Encryption at rest is on by default: the spool and the server's own storage hold only
//! AES-256-GCM ciphertext (`pipe-storage/ENCRYPTION.md`), and the download links decrypt
//! on the fly, range requests included.
#![forbid(unsafe_code)]

pub mod admin;
mod backups;
pub mod config;
mod listen;
mod metrics;
mod secrets;
pub mod sinks;
pub mod stores;
mod tls;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use pipe_api::Api;
use pipe_api::files::{self, LinkSigner, ServedSink};
use pipe_core::{
    ApiKeyStore, AuditLog, Catalog, EndpointStore, EnvironmentId, EnvironmentSettings,
    EnvironmentStore, KeyLayout, NamedSink, NewEnvironment, Notifier, SinkDirectory, SinkId,
    SinkKind, Spool, StorageSink, StoredEndpoint, Timestamp, UrlOptions, WireFormat,
};
use pipe_http::TokenSigner;
use pipe_ingest::{Ingest, IngestConfig};
use pipe_lifecycle::{Pipeline, PipelineConfig};
use pipe_storage::{EncryptedSink, EnvironmentSinks, LocalSpool, ObjectSpool, ObjectStoreSink};
use pipe_transcode::FfmpegTranscoder;
use pipe_webhook::{AddressPolicy, PipeSignature, SsrfError, StandardWebhooks, WebhookNotifier};
use tokio::sync::watch;

pub use config::{Config, ConfigError};
use stores::CatalogBackend;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A directory or secret under the data dir could not be made or read.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A part failed to open (catalog, spool, storage, webhooks).
    #[error("{part}: {source}")]
    Part {
        /// Which part.
        part: &'static str,
        /// Why.
        source: pipe_core::Error,
    },
    /// Serving HTTP failed.
    #[error("serving: {0}")]
    Serve(io::Error),
    /// The TLS certificate or key could not be read or do not match.
    #[error("TLS certificate {path}: {source}")]
    Tls {
        /// The certificate file.
        path: std::path::PathBuf,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The name of the server's own storage among the sinks.
pub const OWN_STORAGE: &str = "pipe";

/// Runs the server until `shutdown` completes, then stops gracefully: streams close with
/// 1001 once their in-flight chunk is durable, HTTP requests finish, job workers stop.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let data = &config.data_dir;
    owner_only(data)?;
    let dir = |name: &str| {
        let path = data.join(name);
        std::fs::create_dir_all(&path).map_err(|source| ServeError::DataDir {
            path: path.clone(),
            source,
        })?;
        Ok::<_, ServeError>(path)
    };
    let _data_lock = lock_data_dir(data)?;
    let work_dir = dir("work")?;
    let secret = match &config.server_secret {
        Some(hex) => secrets::parse_server_secret(hex, "PIPE_SERVER_SECRET")?,
        None => secrets::server_secret(data)?,
    };

    let part = |part| move |source| ServeError::Part { part, source };
    let crypt = if config.encryption {
        Some(secrets::encryption(data).map_err(part("encryption keys"))?)
    } else {
        tracing::warn!(
            "PIPE_ENCRYPTION=off: recordings and webhook secrets are stored in plaintext"
        );
        None
    };
    let backend = CatalogBackend::open(
        &config,
        crypt.as_ref().map(|c| Arc::clone(c.key_provider())),
    )
    .await
    .map_err(part("catalog"))?;
    if let Some(sqlite) = backend.sqlite() {
        // This process holds the data directory alone: jobs still claimed were claimed
        // by a process that died, and run again now rather than when their leases run
        // out. (On PostgreSQL other nodes' jobs are running: they return after their
        // leases.)
        let released = sqlite
            .release_claimed_jobs()
            .await
            .map_err(part("catalog"))?;
        if released > 0 {
            tracing::info!(jobs = released, "taking over jobs cut off by the last stop");
        }
    }
    let stores = backend.stores();
    // Each recording's files are encrypted under a key of its own, kept in the catalog
    // and escrowed at the backup destinations: erasing the recording deletes both, and no
    // copy of its files opens any more.
    let crypt = crypt.map(|crypt| crypt.with_recording_keys(stores.clone()));
    let escrow = match &config.backups {
        Some(backups) => {
            admin::open_destinations(&backups.destinations).map_err(part("backups"))?
        }
        None => Vec::new(),
    };
    // A catalog restored from a backup takes its recordings' keys back from escrow.
    match admin::recover_recording_keys(stores.as_ref(), &escrow).await {
        Ok(done) if done.waiting > 0 => tracing::warn!(
            recordings = done.waiting,
            "recordings wait for their keys, which backups escrow at their destinations: \
             set PIPE_BACKUP_DESTINATIONS to where this catalog's backups were made; until \
             then their files cannot be read"
        ),
        Ok(done) if done.recovered > 0 || !done.erased.is_empty() => tracing::info!(
            recovered = done.recovered,
            erased_since = done.erased.len(),
            "recording keys taken back from the backup destinations"
        ),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "recording keys could not be taken back from escrow"),
    }
    let catalog: Arc<dyn Catalog> = stores.clone();
    let environments: Arc<dyn EnvironmentStore> = stores.clone();
    let endpoints: Arc<dyn EndpointStore> = stores.clone();
    let audit: Arc<dyn AuditLog> = stores.clone();
    let keys: Arc<dyn ApiKeyStore> = stores;
    if keys
        .list_api_keys()
        .await
        .map_err(part("API keys"))?
        .is_empty()
    {
        tracing::info!(
            "the API has no key yet: make the first with `pipe keys create --role admin`"
        );
    }
    // Where the bytes are: in the object store every node shares, or in the data
    // directory of this one.
    let shared = config.shared_storage.as_ref();
    let shared_part = |folder: &str, kind| -> Result<Arc<dyn StorageSink>, ServeError> {
        let url = shared.expect("only with shared storage");
        url.within(folder)
            .and_then(|url| url.open_as(kind, None))
            .map_err(|source| ServeError::Part {
                part: "shared storage",
                source,
            })
    };
    // Recordings in progress.
    let spool: Arc<dyn Spool> = match shared {
        Some(url) => {
            let store = url.object_store().map_err(part("spool"))?;
            Arc::new(match &crypt {
                Some(crypt) => ObjectSpool::encrypted(store, crypt.clone()),
                None => ObjectSpool::new(store),
            })
        }
        None => {
            let spool_dir = dir("spool")?;
            Arc::new(
                match &crypt {
                    Some(crypt) => LocalSpool::open_encrypted(&spool_dir, crypt.clone()).await,
                    None => LocalSpool::open(&spool_dir).await,
                }
                .map_err(part("spool"))?,
            )
        }
    };
    let links = LinkSigner::new(TokenSigner::new(secret.clone()), config.public_url.clone());
    // The server's own storage, served through signed links by every node.
    let mut disk: Arc<dyn StorageSink> = match shared {
        Some(_) => shared_part("storage", SinkKind::PipeStorage)?,
        None => Arc::new(
            ObjectStoreSink::local(dir("storage")?, SinkKind::PipeStorage)
                .map_err(part("storage"))?,
        ),
    };
    // Converted files wait for their copies in a staging area: shared, so that any node
    // copies what another converted, and encrypted, rather than as plaintext in the work
    // directory. Without either need they wait in the work directory.
    let mut staging = match shared {
        Some(_) => Some(shared_part("staging", SinkKind::Local)?),
        None if crypt.is_some() => Some(Arc::new(
            ObjectStoreSink::local(dir("staging")?, SinkKind::Local).map_err(part("staging"))?,
        ) as Arc<dyn StorageSink>),
        None => None,
    };
    if let Some(crypt) = crypt.clone() {
        disk = Arc::new(EncryptedSink::new(disk, crypt.clone()));
        staging = staging.map(|staged| Arc::new(EncryptedSink::new(staged, crypt)) as _);
    }
    if staging.is_some() {
        // The work directory is scratch: what a conversion cut off by the last stop left
        // there is made again by whichever node converts it now.
        clear_dir(&work_dir)?;
    }
    let own: Arc<dyn StorageSink> = Arc::new(ServedSink::new(Arc::clone(&disk), links.clone()));
    // Each environment's sinks (ours unless it says "do not store", then its own), made
    // from its settings and made again when they change.
    let mut sinks =
        EnvironmentSinks::new(Arc::clone(&environments)).with_own_storage(NamedSink::new(
            SinkId::new(OWN_STORAGE),
            Arc::clone(&own),
            KeyLayout::ByRecording,
        ));
    if let Some(crypt) = crypt {
        sinks = sinks.with_crypt(crypt);
    }
    let sinks: Arc<dyn SinkDirectory> = Arc::new(sinks);
    seed_default_environment(environments.as_ref(), sinks.as_ref(), &config)
        .await
        .map_err(part("environments"))?;
    if let Some(url) = &config.webhook_url {
        check_webhook_url(&config.webhook_addresses, url).await?;
        seed_webhook_endpoint(endpoints.as_ref(), &config, url, data).await?;
    }
    // Every endpoint is an environment's, kept in the catalog and read at each delivery.
    let notifier = WebhookNotifier::builder()
        .address_policy(config.webhook_addresses.clone())
        .endpoint_store(Arc::clone(&endpoints))
        .build()
        .map_err(part("webhooks"))?;
    let notifier: Arc<dyn Notifier> = Arc::new(notifier);
    let api = Api::builder(
        Arc::clone(&catalog),
        Arc::clone(&environments),
        Arc::clone(&keys),
    )
    .sink(SinkId::new(OWN_STORAGE), Arc::clone(&own))
    .sink_directory(Arc::clone(&sinks))
    .endpoint_store(endpoints)
    .url_guard(Arc::new(config.webhook_addresses.clone()))
    .notifier(Arc::clone(&notifier))
    .metrics(metrics::render()?)
    .audit_log(Arc::clone(&audit))
    .build();

    let mut pipeline = PipelineConfig::new(
        Arc::clone(&catalog),
        Arc::clone(&spool),
        Arc::new(FfmpegTranscoder::new()),
        notifier,
        work_dir,
    )
    .with_sink_directory(sinks)
    .with_environments(Arc::clone(&environments))
    .with_workers(config.workers)
    .with_link_options(UrlOptions::default().with_expires_in(config.link_ttl));
    if let Some(staging) = staging {
        pipeline = pipeline.with_staging(staging);
    }
    pipeline = pipeline.with_key_escrow(escrow.iter().map(|(_, sink)| Arc::clone(sink)).collect());
    let pipeline = Arc::new(Pipeline::new(pipeline));
    let ingest_config = IngestConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_max_recording_bytes(config.max_recording_bytes);
    let ingest_streams = ingest_config.max_connections;
    let ingest = Ingest::builder(catalog, spool, secret)
        .config(ingest_config)
        .environments(environments)
        .playback(SinkId::new(OWN_STORAGE), own)
        .on_finish({
            let pipeline = Arc::clone(&pipeline);
            move |_| pipeline.wake()
        })
        .build();

    let app = Router::new()
        .route(
            "/",
            get(|| async { Html(pipe_ingest::recorder::DEMO_HTML) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(ingest.router())
        .merge(files::audited_router(disk, links, Arc::clone(&audit)))
        .merge(api.router())
        .merge(api.pipe_compat_router())
        .fallback(pipe_api::not_found);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(ServeError::Serve)?;
    let certificates = match &config.tls {
        Some((cert, key)) => {
            Some(
                tls::Certificates::load(cert, key).map_err(|source| ServeError::Tls {
                    path: cert.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    let scheme = if certificates.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(url = %format!("{scheme}://{local}/"), data_dir = %data.display(), "pipe is serving");
    if certificates.is_none() && !local.ip().is_loopback() {
        tracing::warn!(
            "serving plain HTTP on a non-loopback address: recordings and API keys cross \
             the network unencrypted; set PIPE_TLS_CERT and PIPE_TLS_KEY, or put a TLS \
             proxy in front"
        );
    }

    if let Some(addr) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen { addr, source })?;
        tracing::info!(url = %format!("http://{addr}/metrics"), "metrics are served without a key");
        let app = api.metrics_router().fallback(pipe_api::not_found);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }

    let (stop, stopped) = watch::channel(false);
    let workers = tokio::spawn(Arc::clone(&pipeline).run(wait_for(stopped.clone())));
    tokio::spawn(audit_keeper(audit, config.audit_retention, stopped.clone()));
    // The configuration refuses backups of a PostgreSQL catalog.
    if let (Some(backups), Some(backed_up)) = (&config.backups, backend.sqlite().cloned()) {
        let destinations = escrow;
        tracing::info!(
            destinations = ?backups.destinations.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            every_secs = backups.every.as_secs(),
            "backups are scheduled"
        );
        let schedule = backups::Schedule {
            destinations,
            passphrase: backups.passphrase.clone(),
            every: backups.every,
        };
        tokio::spawn(backups::keeper(
            backed_up,
            data.to_path_buf(),
            schedule,
            stopped,
        ));
    }
    let graceful = {
        let ingest = ingest.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: letting in-flight chunks become durable");
            ingest.shutdown().await;
        }
    };
    let limits = listen::Limits {
        max_connections: config.max_connections,
        header_read: config.header_timeout,
    }
    .fitted(ingest_streams);
    match certificates {
        None => listen::serve(listener, app, limits, graceful).await,
        Some(certificates) => {
            let server_config = certificates
                .server_config()
                .map_err(|source| ServeError::Tls {
                    path: certificates_path(&config),
                    source,
                })?;
            tls::reload_on_sighup(certificates).map_err(ServeError::Serve)?;
            // Browsers that reached us over HTTPS keep to it for a year.
            let app = app.layer(axum::middleware::map_response(
                |mut response: axum::response::Response| async {
                    response.headers_mut().insert(
                        axum::http::header::STRICT_TRANSPORT_SECURITY,
                        axum::http::HeaderValue::from_static("max-age=31536000"),
                    );
                    response
                },
            ));
            let listener =
                tls::TlsListener::new(listener, server_config).map_err(ServeError::Serve)?;
            listen::serve(listener, app, limits, graceful).await;
        }
    }
    stop.send_replace(true);
    let _ = workers.await;
    tracing::info!("pipe stopped");
    Ok(())
}

/// Creates the default environment, `production`, on the first start, from the
/// variables that configured a server before environments existed. Later starts leave it
/// to the API, and say so when the variables no longer match it.
/// Refuses to start with a webhook URL whose host is, or resolves to, an address the SSRF
/// guard refuses, and says how to re-admit it. A name that does not resolve now only
/// warns: DNS may be down for a moment, and each delivery resolves it again.
async fn check_webhook_url(policy: &AddressPolicy, url: &str) -> Result<(), ServeError> {
    let refuse = |detail: String| ServeError::Part {
        part: "PIPE_WEBHOOK_URL",
        source: pipe_core::Error::invalid("webhook endpoint URL", detail),
    };
    let url = pipe_webhook::Url::parse(url).map_err(|e| refuse(e.to_string()))?;
    match policy.check_url_resolving(&url).await {
        Ok(()) => Ok(()),
        Err(e @ (SsrfError::Resolve { .. } | SsrfError::NoAddress { .. })) => {
            tracing::warn!(error = %e, "the webhook URL does not resolve now; deliveries will try again");
            Ok(())
        }
        Err(e @ SsrfError::Forbidden { addr, .. }) => Err(refuse(format!(
            "{e}; to send webhooks there anyway, set PIPE_WEBHOOK_ALLOW_ADDRESSES={addr}"
        ))),
        Err(e) => Err(refuse(e.to_string())),
    }
}

/// The id of the endpoint made from `PIPE_WEBHOOK_URL`.
const CONFIGURED_ENDPOINT: &str = "endpoint-1";

/// Makes the default environment's endpoint from `PIPE_WEBHOOK_URL` and its companions
/// when that environment has no endpoint yet (the first start, or after every endpoint
/// was deleted while the variable stayed set). After that the API changes it; a variable
/// that differs from the stored endpoint is only warned about.
async fn seed_webhook_endpoint(
    store: &dyn EndpointStore,
    config: &Config,
    url: &str,
    data: &std::path::Path,
) -> Result<(), ServeError> {
    let part = |part| move |source| ServeError::Part { part, source };
    let environment = EnvironmentId::default();
    let existing = store
        .endpoints(&environment)
        .await
        .map_err(part("webhook endpoints"))?;
    if let Some(stored) = existing.iter().find(|e| e.id == CONFIGURED_ENDPOINT) {
        if stored.url != url || stored.format != config.webhook_format {
            tracing::warn!(
                endpoint = CONFIGURED_ENDPOINT,
                "PIPE_WEBHOOK_URL or PIPE_WEBHOOK_FORMAT differs from the stored endpoint, \
                 which applies; change it through the API (PATCH /v1/webhooks/endpoint-1)"
            );
        }
        return Ok(());
    }
    if !existing.is_empty() {
        return Ok(());
    }
    let secret = match (config.webhook_format, &config.webhook_key) {
        (WireFormat::Pipe, Some(key)) => key.clone(),
        _ => match &config.webhook_secret {
            Some(secret) => secret.clone(),
            None => secrets::webhook_secret(data)?,
        },
    };
    // Refused here rather than at the first delivery.
    match config.webhook_format {
        WireFormat::Standard => {
            drop(StandardWebhooks::new(&secret).map_err(part("PIPE_WEBHOOK_SECRET"))?)
        }
        WireFormat::Pipe => drop(PipeSignature::new(&secret).map_err(part("PIPE_WEBHOOK_KEY"))?),
    }
    let mut endpoint = StoredEndpoint::new(CONFIGURED_ENDPOINT, environment, url, secret);
    endpoint.format = config.webhook_format;
    endpoint.encoding = config.webhook_encoding;
    endpoint.events = config.webhook_events.clone();
    match store.create_endpoint(endpoint).await {
        Ok(created) => {
            tracing::info!(endpoint = %created.id, environment = %created.environment, "made the webhook endpoint of PIPE_WEBHOOK_URL");
            Ok(())
        }
        Err(pipe_core::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(part("webhook endpoints")(e)),
    }
}

async fn seed_default_environment(
    store: &dyn EnvironmentStore,
    sinks: &dyn SinkDirectory,
    config: &Config,
) -> pipe_core::Result<()> {
    let id = EnvironmentId::default();
    let hosts = config.allowed_hosts.entries();
    match store.environment(&id).await {
        Ok(env) => {
            if env.settings.allowed_hosts != hosts && !hosts.is_empty() {
                tracing::warn!(
                    environment = %id,
                    "PIPE_ALLOWED_HOSTS differs from the environment's allowed hosts, which \
                     apply; change them through the API (PATCH /v1/environments/production)"
                );
            }
            let named = |sinks: &[pipe_core::SinkSettings]| {
                sinks
                    .iter()
                    .map(|s| (s.id.clone(), s.url.clone()))
                    .collect::<Vec<_>>()
            };
            if !config.sinks.is_empty() && named(&config.sinks) != named(&env.settings.sinks) {
                tracing::warn!(
                    environment = %id,
                    "PIPE_SINKS differs from the environment's sinks, which apply; change \
                     them through the API (PATCH /v1/environments/production)"
                );
            }
            Ok(())
        }
        Err(e) if e.is_not_found() => {
            let settings = EnvironmentSettings::default()
                .with_allowed_hosts(hosts)
                .with_sinks(config.sinks.clone());
            sinks.check(&settings)?;
            for sink in &settings.sinks {
                tracing::info!(environment = %id, sink = %sink.id, "copying the environment's recordings to this sink too");
            }
            let new = NewEnvironment::new(id)
                .with_name("Production")
                .with_settings(settings);
            match store.create_environment(new).await {
                Ok(env) => {
                    tracing::info!(environment = %env.id, "created the default environment");
                    Ok(())
                }
                // Made meanwhile by `pipe keys` or another process: fine.
                Err(pipe_core::Error::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

fn certificates_path(config: &Config) -> std::path::PathBuf {
    config
        .tls
        .as_ref()
        .map(|(cert, _)| cert.clone())
        .unwrap_or_default()
}

/// Makes the data directory, and whatever this process creates from now on, its owner's
/// alone: the catalog, the spool, the keys and the secrets are no other local user's to
/// read (the directory was 0755 and the files 0644 under the usual umask). Files made by
/// an older version are made owner-only too.
pub fn owner_only(data: &std::path::Path) -> Result<(), ServeError> {
    use std::os::unix::fs::PermissionsExt;

    rustix::process::umask(rustix::fs::Mode::RWXG | rustix::fs::Mode::RWXO);
    let fail = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| ServeError::DataDir { path, source }
    };
    std::fs::create_dir_all(data).map_err(fail(data))?;
    let mut dirs = vec![data.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(fail(&dir))?;
        for entry in std::fs::read_dir(&dir).map_err(fail(&dir))? {
            let entry = entry.map_err(fail(&dir))?;
            let kind = entry.file_type().map_err(fail(&entry.path()))?;
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                let mode = entry
                    .metadata()
                    .map_err(fail(&entry.path()))?
                    .permissions()
                    .mode();
                if mode & 0o077 != 0 {
                    std::fs::set_permissions(
                        entry.path(),
                        std::fs::Permissions::from_mode(mode & 0o700),
                    )
                    .map_err(fail(&entry.path()))?;
                }
            }
        }
    }
    Ok(())
}

/// Empties `dir`, keeping it.
fn clear_dir(dir: &std::path::Path) -> Result<(), ServeError> {
    let fail = |path: std::path::PathBuf| move |source| ServeError::DataDir { path, source };
    for entry in std::fs::read_dir(dir).map_err(fail(dir.into()))? {
        let path = entry.map_err(fail(dir.into()))?.path();
        match path.is_dir() {
            true => std::fs::remove_dir_all(&path),
            false => std::fs::remove_file(&path),
        }
        .map_err(fail(path))?;
    }
    Ok(())
}

/// Locks `<data>/pipe.lock` for as long as the returned file is open: one server per data
/// directory, or their spools, catalogs and job leases would collide.
fn lock_data_dir(data: &std::path::Path) -> Result<std::fs::File, ServeError> {
    let path = data.join("pipe.lock");
    let fail = |source| ServeError::DataDir {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(data).map_err(fail)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(fail)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(fail(io::Error::new(
            io::ErrorKind::ResourceBusy,
            "another `pipe serve` is using this data directory",
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(fail(e)),
    }
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// How often the audit log's head goes to the log output, and its old entries expire.
const AUDIT_HEAD_EVERY: Duration = Duration::from_secs(300);

/// Writes the audit log's head (its last entry's number and hash) to the log output at
/// start and every [`AUDIT_HEAD_EVERY`], so that a log cut off after a head was written
/// is caught (`pipe audit verify --head <seq>:<hash>`), and removes entries older than
/// `retention` (an `audit.expired` entry says so).
async fn audit_keeper(
    audit: Arc<dyn AuditLog>,
    retention: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(AUDIT_HEAD_EVERY);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = every.tick() => {}
        }
        match audit.expire_audit(Timestamp::now().minus(retention)).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "audit entries past their retention removed"),
            Err(e) => tracing::warn!(error = %e, "could not expire old audit entries"),
        }
        match audit.audit_head().await {
            Ok(Some(head)) => {
                tracing::info!(target: "pipe::audit", seq = head.seq, hash = head.hash, "audit log head");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the audit log's head"),
        }
    }
}
