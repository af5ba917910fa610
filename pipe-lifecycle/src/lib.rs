//! # pipe-lifecycle
//!
//! The life of a recording in Pipe: the catalog that remembers every recording, its
//! artifacts, copies and jobs ([`SqliteCatalog`] for one node, `PostgresCatalog` for
//! several), and the [`Pipeline`] whose workers run
//! those jobs until the recording is converted, copied to every sink and told to the
//! operator's application.
//!
//! The same SQLite file keeps what the server around the recordings needs: the
//! environments recordings belong to, with every version of their settings
//! ([`EnvironmentStore`](pipe_core::EnvironmentStore)), and the API keys, by the hash of
//! their secret ([`ApiKeyStore`](pipe_core::ApiKeyStore)). Recordings are listed by
//! environment, state and creation time in keyset pages
//! ([`Catalog::list_recordings`](pipe_core::Catalog::list_recordings)). It keeps the
//! audit log too ([`AuditLog`](pipe_core::AuditLog)): appended through the same
//! group-commit writer, chained by SHA-256, append-only (triggers refuse to change an entry
//! or remove any but the oldest), and every erasure is an entry of it written in the
//! erasure's own transaction.
//!
//! ## The way of a job
//!
//! ```text
//! ingest finish ── commit: state recorded + job probe ──▶ catalog
//!
//! probe    ── Transcoder::probe(original in the spool)
//!          ── commit: media info + notify(video_recorded) + convert
//! convert  ── Transcoder::transcode → <work>/<id>/<id>.mp4, <id>.jpg
//!             (moved into the staging sink at once, if one is configured)
//!          ── commit: artifacts (mp4, snapshot, original) + state converted
//!                     + notify(video_converted) + copy(sink) for every sink
//! copy     ── StorageSink::put every artifact, check size + SHA-256, head
//!          ── commit: copies + notify(video_copied_…)
//!                     [+ state copied + cleanup, by the copy that completes the last sink]
//! cleanup  ── delete <work>/<id>/, the staged files and the spool entry
//!             (with no sink configured there is no cleanup: those are the only copies)
//! notify   ── Notifier::attempt at every endpoint Notifier::subscribers names, at once,
//!             each cut off after the first-attempt budget (1 s); an endpoint with an
//!             earlier event still waiting, or whose last attempt failed, is not tried
//!          ── commit: the attempts in the delivery log + deliver(event, endpoint) for
//!             every endpoint that did not take it (a notifier naming none:
//!             Notifier::deliver here, once per attempt)
//! deliver  ── Notifier::attempt, once per attempt, same event id every attempt, logged;
//!             after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (svix's schedule) it is
//!             dead. One recording's deliveries to one endpoint run in order (job
//!             sequences), so a receiver gets video_recorded before video_converted,
//!             however long it was down; one endpoint's deliveries run one at a time
//!             (job lanes), so an endpoint that hangs holds one worker and no other
//!             endpoint waits for it
//!
//! deletion ── commit: deleting + queued jobs dead + erase   (e.g. DELETE /v1/recordings/{id})
//! erase    ── wait for the recording's running jobs; delete every artifact key in every
//!             sink, the staged and working files, the spool entry, its escrowed key
//!             at every backup destination (with_key_escrow)
//!          ── Catalog::purge_recording: its artifacts, copies, jobs, delivery log and
//!             key (every encrypted copy anywhere is unreadable from then on), and all
//!             it carried; a tombstone stays + notify(video_deleted)
//!
//! sweep (every minute, Pipeline::sweep) ── per environment, in bounded batches:
//!             deletion of recordings past retention_hours (failed ones only if
//!             retention_deletes_failed); recordings left receiving past
//!             abandoned_after_hours are finished (bytes in the spool) or deleted (none)
//!
//! probe or convert on media that cannot be read ── commit: state failed + notify(video_failed)
//!                                                 (converted files removed, original kept)
//! ```
//!
//! Workers claim jobs with short leases (30 s) that they extend while a job runs; a
//! worker that loses its lease abandons the job, so no job runs twice at once, and a
//! crashed worker's job is taken over within one lease.
//!
//! Every step ends in one [`Catalog::commit`](pipe_core::Catalog::commit) that records its
//! result, enqueues the next steps and completes its job, atomically; so a crash at any
//! instant either loses the step (it runs again: every handler is idempotent) or keeps
//! all of it. Jobs that fail are retried by a [`RetryPolicy`] (exponential backoff with
//! jitter); when a job gives up:
//!
//! - `probe` and `convert` fail the recording (`video_failed` tells the operator why);
//! - `copy`, `notify`, `deliver` and `cleanup` are dead-lettered with the reason (`erase`
//!   never gives up), visible through
//!   [`Catalog::jobs`](pipe_core::Catalog::jobs).
//!
//! The pipeline knows its parts only by their `pipe-core` traits; it never names a
//! concrete catalog, spool, sink, transcoder or notifier.
//!
//! ## Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use pipe_core::{Notifier, SinkId, Spool, StorageSink, Transcoder};
//! use pipe_lifecycle::{Pipeline, PipelineConfig, SqliteCatalog};
//!
//! # async fn example(
//! #     spool: Arc<dyn Spool>,
//! #     transcoder: Arc<dyn Transcoder>,
//! #     sink: Arc<dyn StorageSink>,
//! #     notifier: Arc<dyn Notifier>,
//! # ) -> pipe_core::Result<()> {
//! let catalog = Arc::new(SqliteCatalog::open("/var/lib/pipe/catalog.db").await?);
//! let config = PipelineConfig::new(catalog, spool, transcoder, notifier, "/var/lib/pipe/work")
//!     .with_sink(SinkId::new("own"), sink);
//! let pipeline = Arc::new(Pipeline::new(config));
//! pipeline.run(async { tokio::signal::ctrl_c().await.ok(); }).await;
//! # Ok(()) }
//! ```
//!
//! The pipeline reports job durations, webhook deliveries and copies through the
//! [`metrics`] facade.
//!
//! ## Features
//!
//! - `catalog-sqlite` (default): [`SqliteCatalog`], the embedded catalog, environment
//!   store and API key store on one SQLite file (sqlx; WAL, `synchronous = FULL`,
//!   versioned migrations compiled in).
//! - `catalog-postgres`: `PostgresCatalog`, the same stores on PostgreSQL, for several
//!   nodes sharing one catalog (sqlx; claims with `FOR UPDATE SKIP LOCKED`, lanes locked
//!   by row, its own migrations compiled in). Both pass the same conformance suites,
//!   the contention suite (claimers and writers on several handles at once) included.
//!
//! ## Not yet
//!
//! - A filmstrip artifact.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod catalog;
pub mod events;
pub mod metrics;
mod pipeline;
mod retry;

#[cfg(feature = "catalog-postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "catalog-postgres")))]
pub use catalog::PostgresCatalog;
#[cfg(feature = "catalog-sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "catalog-sqlite")))]
pub use catalog::SqliteCatalog;
pub use pipeline::{KeyLayout, Pipeline, PipelineConfig, SWEEP_BATCH, SweepReport};
pub use retry::{DELIVERY_SCHEDULE, RetryPolicy};
