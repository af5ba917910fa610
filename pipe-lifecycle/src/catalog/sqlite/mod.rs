//! [`SqliteCatalog`]: the embedded catalog, one SQLite file.

mod audit;
mod change;
mod deliveries;
mod endpoints;
mod environments;
mod error;
mod keys;
mod migrate;
mod recording_keys;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Row, SqliteConnection, SqlitePool};
use tracing::warn;

use pipe_core::{
    Artifact, AuditEntry, Catalog, Change, ClaimOptions, Copy, DeliveryAttempt, DeliveryFilter,
    Error, Job, JobFilter, JobId, JobLease, JobRecord, JobStats, JobStatus, KeyProvider,
    ListOptions, NewJob, NewRecording, Recording, RecordingId, RecordingState, Result, Timestamp,
    Tombstone,
};

use self::error::from_sqlx;
use self::writer::{Tx, Writer};
use crate::catalog::rows;

/// How long a statement waits for another connection's write lock before giving up with
/// a temporary error.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool. SQLite serialises writers anyway; a few connections let
/// readers (in WAL mode) run beside the one writer.
const MAX_CONNECTIONS: u32 = 4;

/// The [`Catalog`] on an SQLite file: the embedded default, for one node. The same file
/// holds the environments ([`EnvironmentStore`](pipe_core::EnvironmentStore)) and the
/// API keys ([`ApiKeyStore`](pipe_core::ApiKeyStore)).
///
/// - **Durable.** The file is in WAL mode with `synchronous = FULL`: the WAL is fsync'd at
///   every commit, so a committed change (and every job it enqueued) survives a power
///   loss, not only a crash of the process. (`NORMAL` would be faster but may lose the
///   last commits on power loss, which would break the catalog's durability promise.)
/// - **Serialised writers, one fsync for many.** The job system's writes
///   ([`Catalog::commit`], claims, retries, leases, the delivery log) go to one writer
///   connection that applies all the writes waiting for it in one `BEGIN IMMEDIATE`
///   transaction, each in a savepoint of its own (a failed one is undone alone), and
///   answers them after the one commit: group commit, so concurrent workers share an
///   fsync instead of taking turns at the disk. A change is one round trip of
///   statements, whose preconditions are conditions of the update itself. Other writes
///   (environments, keys, endpoints) run in `BEGIN IMMEDIATE` transactions of their own;
///   either way the write lock is taken before preconditions are read, so no writer can
///   slip in between a check and its change.
/// - **Pages.** [`Catalog::list_recordings`] pages by keyset (`(created, id)` after the
///   cursor) on indexes in the order of the list, so a page costs the same however deep
///   it is; every filter it offers seeks an index.
/// - **Leases.** A lease is held while its job is `running` with that token. A lease whose
///   time ran out but that nobody claimed again is still accepted: the work it finishes
///   is as good as a second attempt's would be, and refusing it would only redo the work.
/// - **Schema.** Versioned SQL migrations compiled into the binary are applied at
///   [`SqliteCatalog::open`], each in a transaction, and recorded in `_sqlx_migrations`.
///
/// ```no_run
/// # async fn example() -> pipe_core::Result<()> {
/// use pipe_core::{Catalog, NewRecording};
/// use pipe_lifecycle::SqliteCatalog;
///
/// let catalog = SqliteCatalog::open("/var/lib/pipe/catalog.db").await?;
/// let recording = catalog.create_recording(NewRecording::new()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    pub(crate) pool: SqlitePool,
    writer: Writer,
    /// Seal the secrets the catalog keeps (webhook signing secrets), if given.
    keys: Option<Arc<dyn KeyProvider>>,
}

impl SqliteCatalog {
    /// Opens (creating it if missing) the catalog at `path` and brings its schema up to
    /// date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted rows (an erased recording's personal data and key) are overwritten,
            // not left in free pages.
            .pragma("secure_delete", "ON")
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options.clone())
            .await
            .map_err(from_sqlx)?;
        migrate::run(&pool).await?;
        let writer = Writer::start(options.connect().await.map_err(from_sqlx)?);
        Ok(Self {
            pool,
            writer,
            keys: None,
        })
    }

    /// Seals the secrets this catalog keeps (the signing secrets of webhook endpoints)
    /// under `keys`, the server's key-encryption keys: each is wrapped under the current
    /// key and bound to its endpoint, so the catalog file alone (a copy, a backup) cannot
    /// sign a webhook. Secrets stored before are still read, and sealed when next
    /// written. Without it secrets are stored as they are; a sealed secret then cannot be
    /// read (an [`Error::Integrity`] that says so).
    #[must_use]
    pub fn seal_secrets_with(mut self, keys: Arc<dyn KeyProvider>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Returns every claimed job to the queue at once, as if its lease had expired: for
    /// a process that owns this catalog alone (the embedded server, which locks its data
    /// directory) and starts after a crash, so jobs the dead process held need not wait out
    /// their leases. Their attempt counts stay. Returns how many were released.
    ///
    /// Never call it while another process may be working on the same catalog: its jobs
    /// would run twice at once.
    pub async fn release_claimed_jobs(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', lease_token = NULL, lease_expires = NULL, \
               updated = ?1 \
             WHERE status = 'running'",
        )
        .bind(Timestamp::now().as_millis())
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    /// Writes a consistent copy of the whole catalog to `to` (which must not exist), while
    /// the catalog is in use: SQLite's `VACUUM INTO` reads it in one transaction. For
    /// backups, so it holds no recording key: the copy's key rows say which recordings had
    /// one, with the key itself removed and its bytes overwritten (`secure_delete`, then a
    /// `VACUUM` that rewrites the file), since a backup cannot be reached by the erasures
    /// made after it. Backups keep the keys apart (see `pipe-storage/ENCRYPTION.md`).
    pub async fn snapshot(&self, to: &Path) -> Result<()> {
        use sqlx::Connection as _;
        let path = to
            .to_str()
            .ok_or_else(|| Error::invalid("snapshot", format!("{} is not UTF-8", to.display())))?;
        sqlx::query("VACUUM INTO ?1")
            .bind(path)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        let mut copy = SqliteConnectOptions::new()
            .filename(to)
            .pragma("secure_delete", "ON")
            .connect()
            .await
            .map_err(from_sqlx)?;
        for statement in ["UPDATE recording_keys SET sealed = NULL", "VACUUM"] {
            sqlx::query(statement)
                .execute(&mut copy)
                .await
                .map_err(from_sqlx)?;
        }
        copy.close().await.map_err(from_sqlx)?;
        Ok(())
    }

    /// Closes every connection; later calls fail. Dropping the catalog also closes them,
    /// but without waiting.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

use crate::catalog::{JOB_COLUMNS, RECORDING_COLUMNS, TOMBSTONE_COLUMNS};

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn create_recording(&self, new: NewRecording) -> Result<Recording> {
        let id = new.id.unwrap_or_else(RecordingId::generate);
        let upload_length = new
            .upload_length
            .map(|l| i64::try_from(l).map_err(|_| Error::invalid("upload_length", l)))
            .transpose()?;
        let now = Timestamp::now().as_millis();
        let sql = format!(
            "INSERT INTO recordings \
               (id, environment, state, version, created, updated, mime_type, payload, number, \
                ip, user_agent, referer, camera_name, microphone_name, source, upload_length) \
             VALUES (?1, ?2, ?3, 0, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             RETURNING {RECORDING_COLUMNS}"
        );
        // The number comes from a counter, not from the recordings, so that the number of a
        // deleted recording is never given again; both writes are one transaction. They go
        // through the group-commit writer like every other write: a connection of the pool
        // asking for the write lock on its own was starved (SQLite's busy handler is not
        // fair) while the writer committed back to back, and a recording could not begin.
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let connection = tx.connection().await?;
                    let number: i64 = sqlx::query_scalar(
                        "UPDATE counters SET value = value + 1 WHERE name = 'recording' \
                         RETURNING value",
                    )
                    .fetch_one(&mut *connection)
                    .await
                    .map_err(from_sqlx)?;
                    let row = sqlx::query(&sql)
                        .bind(id.as_str())
                        .bind(new.environment.as_str())
                        .bind(RecordingState::Receiving.as_str())
                        .bind(now)
                        .bind(new.mime_type)
                        .bind(new.payload)
                        .bind(number)
                        .bind(new.personal.ip)
                        .bind(new.personal.user_agent)
                        .bind(new.personal.referer)
                        .bind(new.personal.camera_name)
                        .bind(new.personal.microphone_name)
                        .bind(new.source.as_str())
                        .bind(upload_length)
                        .fetch_one(&mut *connection)
                        .await
                        .map_err(|e| match from_sqlx(e) {
                            Error::AlreadyExists { .. } => Error::AlreadyExists {
                                what: format!("recording {id}"),
                            },
                            other => other,
                        })?;
                    rows::recording(&row)
                })
            })
            .await
    }

    async fn recording(&self, id: &RecordingId) -> Result<Recording> {
        let sql =
            format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = ?1 AND erased IS NULL");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        match row {
            Some(row) => rows::recording(&row),
            None => Err(Error::not_found(format_args!("recording {id}"))),
        }
    }

    async fn recording_by_number(&self, number: u64) -> Result<Recording> {
        let not_found = || Error::not_found(format_args!("recording number {number}"));
        let number = i64::try_from(number).map_err(|_| not_found())?;
        let sql = format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE number = ?1 AND erased IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(number)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        match row {
            Some(row) => rows::recording(&row),
            None => Err(not_found()),
        }
    }

    async fn list_recordings(&self, options: ListOptions) -> Result<Vec<Recording>> {
        let rows = crate::catalog::list::query::<sqlx::Sqlite>("", &options)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(rows::recording).collect()
    }

    async fn commit(&self, change: Change) -> Result<Recording> {
        self.writer
            .write(move |mut tx| Box::pin(async move { change::apply(&mut tx, &change).await }))
            .await
    }

    async fn artifacts(&self, id: &RecordingId) -> Result<Vec<Artifact>> {
        let rows = sqlx::query(
            "SELECT recording, kind, key, size, sha256, content_type FROM artifacts WHERE recording = ?1 ORDER BY kind",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter().map(rows::artifact).collect()
    }

    async fn copies(&self, id: &RecordingId) -> Result<Vec<Copy>> {
        let rows = sqlx::query(
            "SELECT recording, kind, sink, key, size FROM copies WHERE recording = ?1 ORDER BY sink, kind",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter().map(rows::copy).collect()
    }

    async fn claim_job(&self, options: ClaimOptions) -> Result<Option<Job>> {
        let now = options.now.unwrap_or_else(Timestamp::now);
        let expires = now.plus(options.lease);
        let token = RecordingId::generate().to_string();
        self.writer
            .write(move |tx| Box::pin(claim(tx, now, expires, token)))
            .await
    }

    async fn retry_job(&self, lease: &JobLease, error: &str, run_at: Timestamp) -> Result<()> {
        let (lease, error) = (lease.clone(), error.to_owned());
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let mut s = change::Statements::default();
                    let (run_at, error) = (s.arg(run_at.as_millis())?, s.arg(error)?);
                    let now = s.arg(Timestamp::now().as_millis())?;
                    let held_by = lease_held(&mut s, &lease)?;
                    s.push(&format!(
                        "UPDATE jobs SET status = 'queued', run_at = {run_at}, \
                           last_error = {error}, lease_token = NULL, lease_expires = NULL, \
                           updated = {now} \
                         WHERE {held_by}",
                    ));
                    held(s.run(&mut tx).await?.len(), &lease)
                })
            })
            .await
    }

    async fn extend_lease(&self, lease: &JobLease, by: Duration) -> Result<JobLease> {
        let lease = lease.clone();
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let expires = Timestamp::now().plus(by);
                    let mut s = change::Statements::default();
                    let until = s.arg(expires.as_millis())?;
                    let held_by = lease_held(&mut s, &lease)?;
                    s.push(&format!(
                        "UPDATE jobs SET lease_expires = {until} WHERE {held_by}",
                    ));
                    held(s.run(&mut tx).await?.len(), &lease)?;
                    Ok(JobLease { expires, ..lease })
                })
            })
            .await
    }

    async fn dead_letter_job(&self, lease: &JobLease, error: &str) -> Result<()> {
        let (lease, error) = (lease.clone(), error.to_owned());
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let mut s = change::Statements::default();
                    let error = s.arg(error)?;
                    let now = s.arg(Timestamp::now().as_millis())?;
                    let held_by = lease_held(&mut s, &lease)?;
                    s.push(&format!(
                        "UPDATE jobs SET status = 'dead', last_error = {error}, \
                           lease_token = NULL, lease_expires = NULL, updated = {now} \
                         WHERE {held_by}",
                    ));
                    held(s.run(&mut tx).await?.len(), &lease)
                })
            })
            .await
    }

    async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobRecord>> {
        // One statement per filter, so that a recording's jobs are found through
        // jobs_by_recording rather than by scanning every job ever run.
        let mut query =
            sqlx::QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
        if let Some(recording) = &filter.recording {
            query
                .push(" AND recording = ")
                .push_bind(recording.as_str());
        }
        if let Some(status) = filter.status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        query.push(" ORDER BY id");
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(rows::job_record).collect()
    }

    async fn requeue_job(&self, id: JobId, at: Timestamp) -> Result<()> {
        let requeued = self
            .writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE jobs SET \
                           status = CASE WHEN status IN ('done', 'dead') THEN 'queued' \
                             ELSE status END, \
                           attempts = CASE WHEN status IN ('done', 'dead') THEN 0 \
                             ELSE attempts END, \
                           run_at = CASE WHEN status IN ('done', 'dead') THEN ?2 \
                             ELSE run_at END, \
                           updated = ?3 \
                         WHERE id = ?1",
                    )
                    .bind(id.0)
                    .bind(at.as_millis())
                    .bind(Timestamp::now().as_millis())
                    .execute(tx.connection().await?)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(done.rows_affected())
                })
            })
            .await?;
        if requeued == 1 {
            Ok(())
        } else {
            Err(Error::not_found(format_args!("job {}", id.0)))
        }
    }

    async fn log_delivery_attempt(&self, attempt: DeliveryAttempt) -> Result<()> {
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let mut s = change::Statements::default();
                    deliveries::push_insert(&mut s, &attempt)?;
                    s.run(&mut tx).await.map(drop)
                })
            })
            .await
    }

    async fn delivery_attempts(&self, filter: DeliveryFilter) -> Result<Vec<DeliveryAttempt>> {
        self.select_attempts(filter).await
    }

    async fn purge_recording(
        &self,
        id: &RecordingId,
        lease: &JobLease,
        then: Vec<NewJob>,
    ) -> Result<Tombstone> {
        let (id, lease) = (id.clone(), lease.clone());
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let now = Timestamp::now().as_millis();
                    let mut s = change::Statements::default();
                    let (id_arg, now_arg) = (s.arg(id.as_str().to_owned())?, s.arg(now)?);
                    let (job, token) = (s.arg(lease.job.0)?, s.arg(lease.token.clone())?);
                    s.push(&format!(
                        "SELECT 1 AS lease_held FROM jobs \
                         WHERE id = {job} AND status = 'running' AND lease_token = {token}"
                    ));
                    // Everything the recording carried goes: its rows in other tables,
                    // and every column of its own but the tombstone's. A purge refused
                    // (no row comes back) is rolled back whole by the writer.
                    s.push(&format!(
                        "UPDATE recordings SET erased = {now_arg}, version = version + 1, \
                           updated = {now_arg}, mime_type = NULL, payload = NULL, \
                           length = NULL, media = NULL, failure = NULL, ip = NULL, \
                           user_agent = NULL, referer = NULL, camera_name = NULL, \
                           microphone_name = NULL \
                         WHERE id = {id_arg} AND deleting IS NOT NULL AND erased IS NULL \
                           AND EXISTS (SELECT 1 FROM jobs WHERE id = {job} \
                             AND status = 'running' AND lease_token = {token}) \
                         RETURNING {TOMBSTONE_COLUMNS}"
                    ));
                    // The recording's key goes too: every copy of its encrypted files,
                    // wherever it is, is unreadable from this commit on.
                    for table in [
                        "artifacts",
                        "copies",
                        "delivery_attempts",
                        "jobs",
                        "recording_keys",
                    ] {
                        s.push(&format!("DELETE FROM {table} WHERE recording = {id_arg}"));
                    }
                    for job in &then {
                        change::enqueue(&mut s, job, now)?;
                    }
                    let rows = s.run(&mut tx).await?;
                    let held = rows
                        .first()
                        .is_some_and(|row| row.try_get::<i64, _>("lease_held").is_ok());
                    let tombstone = rows
                        .iter()
                        .find(|row| row.try_get::<Option<i64>, _>("erased").is_ok());
                    match (held, tombstone) {
                        (true, Some(row)) => {
                            let tombstone = rows::tombstone(row)?;
                            // Every erasure is audited, in its own transaction.
                            audit::append(
                                &mut tx,
                                AuditEntry::new(
                                    "system",
                                    "recording.erased",
                                    format!("recording:{id}"),
                                    "ok",
                                )
                                .at(tombstone.erased)
                                .in_environment(tombstone.environment.clone())
                                .with_detail(format!(
                                    "deletion reason: {}",
                                    tombstone.reason.as_str()
                                )),
                            )
                            .await?;
                            Ok(tombstone)
                        }
                        (false, _) => Err(lease_not_held(&lease)),
                        (true, None) => {
                            let state: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
                                "SELECT deleting, erased FROM recordings WHERE id = ?1",
                            )
                            .bind(id.as_str())
                            .fetch_optional(tx.connection().await?)
                            .await
                            .map_err(from_sqlx)?;
                            Err(match state {
                                None | Some((_, Some(_))) => {
                                    Error::not_found(format_args!("recording {id}"))
                                }
                                Some((None, None)) => Error::precondition(format_args!(
                                    "recording {id} is not being deleted"
                                )),
                                Some((Some(_), None)) => Error::temporary(
                                    "sqlite",
                                    format!("recording {id} changed under the purge"),
                                ),
                            })
                        }
                    }
                })
            })
            .await
    }

    async fn tombstone(&self, id: &RecordingId) -> Result<Tombstone> {
        let sql = format!(
            "SELECT {TOMBSTONE_COLUMNS} FROM recordings WHERE id = ?1 AND erased IS NOT NULL"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        match row {
            Some(row) => rows::tombstone(&row),
            None => Err(Error::not_found(format_args!("erased recording {id}"))),
        }
    }

    async fn job_stats(&self) -> Result<Vec<JobStats>> {
        let rows = sqlx::query(
            "SELECT kind, status, COUNT(*) AS count, MIN(run_at) AS earliest \
             FROM jobs GROUP BY kind, status ORDER BY kind, status",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter()
            .map(|row| {
                let status: String = rows::get(row, "status")?;
                let status = JobStatus::parse(&status)
                    .ok_or_else(|| crate::catalog::corrupt("job status", status))?;
                let count: i64 = rows::get(row, "count")?;
                Ok(JobStats::new(
                    rows::get::<String>(row, "kind")?,
                    status,
                    u64::try_from(count).unwrap_or(0),
                    Timestamp::from_millis(rows::get(row, "earliest")?),
                ))
            })
            .collect()
    }
}

/// The condition (and `RETURNING`) of a statement on the job `lease` holds: it returns
/// the job's id if the lease is held.
fn lease_held(s: &mut change::Statements, lease: &JobLease) -> Result<String> {
    let (job, token) = (s.arg(lease.job.0)?, s.arg(lease.token.clone())?);
    Ok(format!(
        "id = {job} AND status = 'running' AND lease_token = {token} RETURNING id"
    ))
}

/// `Ok` when the statement that asked for `lease` returned its job's row, else the error
/// that says the lease is no longer held.
fn held(rows: usize, lease: &JobLease) -> Result<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(lease_not_held(lease))
    }
}

fn lease_not_held(lease: &JobLease) -> Error {
    Error::precondition(format_args!(
        "the lease on job {} is not held (expired and claimed again, or finished)",
        lease.job
    ))
}

/// Why `change` matched no row: the recording is missing, being deleted, or not in the
/// state or at the version the change expects.
async fn unmet_precondition(conn: &mut SqliteConnection, change: &Change) -> Error {
    let id = change.recording.as_str();
    let current = match sqlx::query(
        "SELECT state, version, deleting FROM recordings WHERE id = ?1 AND erased IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return Error::not_found(format_args!("recording {id}")),
        Err(e) => return from_sqlx(e),
    };
    let read = || -> Result<(RecordingState, i64, Option<i64>)> {
        Ok((
            rows::state(rows::get(&current, "state")?)?,
            rows::get(&current, "version")?,
            rows::get(&current, "deleting")?,
        ))
    };
    let (state, version, deleting) = match read() {
        Ok(read) => read,
        Err(e) => return e,
    };
    if deleting.is_some() {
        return Error::precondition(format_args!("recording {id} is being deleted"));
    }
    if !change.expect_states.is_empty() && !change.expect_states.contains(&state) {
        return Error::precondition(format_args!(
            "recording {id} is {}, expected one of {:?}",
            state.as_str(),
            change
                .expect_states
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
        ));
    }
    match change.expect_version {
        Some(expected) => Error::precondition(format_args!(
            "recording {id} is at version {version}, expected {expected}"
        )),
        None => Error::temporary("sqlite", format!("recording {id} changed under the write")),
    }
}

/// The most jobs of recordings being deleted one claim dead-letters before it gives up
/// for this time (the next claim goes on).
const DOOMED_PER_CLAIM: usize = 64;

/// Claims the next due job (see [`Catalog::claim_job`]) inside the writer's transaction.
///
/// No step but the erasure runs for a recording being deleted: a job of one that comes up
/// (re-queued by a retry or a restart, or left by a dead worker) is dead-lettered instead,
/// and the next one is claimed. This is checked on the job claimed, never by looking at
/// every recording being deleted: with 100,000 of them waiting for their erasure, that
/// look cost 0.2 s per claim.
async fn claim(
    mut tx: Tx<'_>,
    now: Timestamp,
    expires: Timestamp,
    token: String,
) -> Result<Option<Job>> {
    for _ in 0..DOOMED_PER_CLAIM {
        let mut s = change::Statements::default();
        s.arg(token.clone())?;
        s.arg(expires.as_millis())?;
        s.arg(now.as_millis())?;
        // In one statement, the choice and the claim (one atomic write). A queued job
        // waits while an older job of its sequence is queued or running, and while a job
        // of its lane runs under a live lease. Three candidates, the oldest of which is
        // taken: the first job outside lanes (walking `jobs_queued_outside_lanes` in
        // order, to the first that may run); the first due job of each lane that is not
        // busy (found through the lane, so a busy lane's backlog is never walked); the
        // first job whose lease ran out. Each side takes its own first job, so none sorts
        // more than its candidates.
        s.push(
            "\
         UPDATE jobs SET status = 'running', attempts = attempts + 1, \
           lease_token = $1, lease_expires = $2, updated = $3 \
         WHERE id = ( \
           SELECT id FROM ( \
             SELECT * FROM ( \
               SELECT id, run_at FROM jobs AS j \
               WHERE status = 'queued' AND lane IS NULL AND run_at <= $3 \
                 AND (sequence IS NULL OR NOT EXISTS ( \
                   SELECT 1 FROM jobs AS older \
                   WHERE older.sequence = j.sequence AND older.id < j.id \
                     AND older.status IN ('queued', 'running'))) \
               ORDER BY run_at, id LIMIT 1) \
             UNION ALL \
             SELECT * FROM ( \
               SELECT head.id, head.run_at FROM job_lanes AS l \
               JOIN jobs AS head ON head.id = ( \
                 SELECT j.id FROM jobs AS j \
                 WHERE j.lane = l.lane AND j.status = 'queued' AND j.run_at <= $3 \
                   AND (j.sequence IS NULL OR NOT EXISTS ( \
                     SELECT 1 FROM jobs AS older \
                     WHERE older.sequence = j.sequence AND older.id < j.id \
                       AND older.status IN ('queued', 'running'))) \
                 ORDER BY j.run_at, j.id LIMIT 1) \
               WHERE NOT EXISTS ( \
                 SELECT 1 FROM jobs AS busy \
                 WHERE busy.lane = l.lane AND busy.status = 'running' \
                   AND busy.lease_expires > $3) \
               ORDER BY head.run_at, head.id LIMIT 1) \
             UNION ALL \
             SELECT * FROM ( \
               SELECT id, run_at FROM jobs WHERE status = 'running' AND lease_expires <= $3 \
               ORDER BY run_at, id LIMIT 1) \
           ) ORDER BY run_at, id LIMIT 1) \
         RETURNING id, payload, attempts, \
           (SELECT 1 FROM recordings AS r WHERE r.id = jobs.recording \
              AND r.deleting IS NOT NULL AND r.erased IS NULL) AS doomed",
        );
        let rows = s.run(&mut tx).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let id = JobId(rows::get(row, "id")?);
        let kind = match rows::job_kind(rows::get(row, "payload")?) {
            Ok(kind) => kind,
            Err(e) => {
                // A job this binary cannot read would head the queue forever: it is put
                // aside, with the reason, for a person to look at.
                warn!(job = %id, error = %e, "an unreadable job is dead-lettered");
                dead_letter(&mut tx, id, &e.to_string(), now).await?;
                return Ok(None);
            }
        };
        let doomed = rows::get::<Option<i64>>(row, "doomed")?.is_some();
        if doomed && !matches!(kind, pipe_core::JobKind::Erase { .. }) {
            dead_letter(&mut tx, id, "the recording was deleted", now).await?;
            continue;
        }
        let attempt = u32::try_from(rows::get::<i64>(row, "attempts")?).unwrap_or(u32::MAX);
        return Ok(Some(Job::new(
            id,
            kind,
            attempt,
            JobLease {
                job: id,
                token,
                expires,
            },
        )));
    }
    Ok(None)
}

/// Gives up on the job `id`, just claimed, for `why`.
async fn dead_letter(tx: &mut Tx<'_>, id: JobId, why: &str, now: Timestamp) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = 'dead', last_error = ?2, lease_token = NULL, \
           lease_expires = NULL, updated = ?3 WHERE id = ?1",
    )
    .bind(id.0)
    .bind(why)
    .bind(now.as_millis())
    .execute(tx.connection().await?)
    .await
    .map_err(from_sqlx)?;
    Ok(())
}
