//! [`PostgresCatalog`]: the catalog on PostgreSQL, for several nodes sharing one.

mod audit;
mod change;
mod claim;
mod endpoints;
mod environments;
mod error;
mod keys;
mod migrate;
mod recording_keys;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

use pipe_core::{
    Artifact, AuditEntry, Catalog, Change, ClaimOptions, Copy, DeliveryAttempt, DeliveryFilter,
    Error, Job, JobFilter, JobId, JobLease, JobRecord, JobStats, JobStatus, KeyProvider,
    ListOptions, NewJob, NewRecording, Recording, RecordingId, RecordingState, Result, Timestamp,
    Tombstone,
};

use self::error::from_sqlx;
use crate::catalog::{JOB_COLUMNS, RECORDING_COLUMNS, TOMBSTONE_COLUMNS, deliveries, list, rows};

/// Connections in the pool of one node.
const MAX_CONNECTIONS: u32 = 16;

/// How long a node waits for a connection of its pool before a temporary error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The [`Catalog`](pipe_core::Catalog) on PostgreSQL: for several `pipe` nodes sharing
/// one catalog. The same database holds the environments, the API keys, the webhook
/// endpoints, the audit log and the recording keys, like [`SqliteCatalog`]'s file, with
/// the same meaning (both pass the same conformance suites).
///
/// - **Concurrency.** Every write is one transaction at PostgreSQL's default isolation
///   (read committed). A change locks its recording's row (`SELECT … FOR UPDATE`) before
///   it checks its preconditions, so two nodes changing one recording take turns and an
///   expected version is never overtaken. Claims take jobs with `FOR UPDATE SKIP
///   LOCKED`, so claimers on many nodes never wait for each other nor take one job
///   twice; a lane's row is locked the same way while one of its jobs is claimed, so a
///   lane never runs two jobs at once.
/// - **Leases.** As in every catalog: a job's lease is renewed while it runs, and a node
///   that dies leaves its jobs to be claimed again once their leases run out. Unlike the
///   embedded server on SQLite, a node never returns all claimed jobs at its start
///   ([`SqliteCatalog::release_claimed_jobs`]): the other nodes' jobs are running.
/// - **Schema.** Versioned SQL migrations compiled into the binary are applied at
///   [`PostgresCatalog::connect`], under sqlx's advisory lock, so nodes starting at once
///   apply each once.
///
/// [`SqliteCatalog`]: crate::SqliteCatalog
/// [`SqliteCatalog::release_claimed_jobs`]: crate::SqliteCatalog::release_claimed_jobs
#[derive(Debug, Clone)]
pub struct PostgresCatalog {
    pool: PgPool,
    /// Seal the secrets the catalog keeps (webhook signing secrets), if given.
    keys: Option<Arc<dyn KeyProvider>>,
}

impl PostgresCatalog {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`,
    /// with libpq's parameters such as `sslmode`) and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(from_sqlx)?;
        migrate::run(&pool).await?;
        Ok(Self { pool, keys: None })
    }

    /// Seals the secrets this catalog keeps under `keys`, the server's key-encryption
    /// keys (as [`SqliteCatalog::seal_secrets_with`](crate::SqliteCatalog::seal_secrets_with)).
    #[must_use]
    pub fn seal_secrets_with(mut self, keys: Arc<dyn KeyProvider>) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Catalog for PostgresCatalog {
    async fn create_recording(&self, new: NewRecording) -> Result<Recording> {
        let id = new.id.unwrap_or_else(RecordingId::generate);
        let now = Timestamp::now().as_millis();
        let upload_length = new
            .upload_length
            .map(|l| i64::try_from(l).map_err(|_| Error::invalid("upload_length", l)))
            .transpose()?;
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // The number comes from a counter, not from the recordings, so that the number of
        // a deleted recording is never given again; its row lock orders creations.
        let number: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = 'recording' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let row = sqlx::query(&format!(
            "INSERT INTO recordings \
               (id, environment, state, version, created, updated, mime_type, payload, number, \
                ip, user_agent, referer, camera_name, microphone_name, source, upload_length) \
             VALUES ($1, $2, $3, 0, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             RETURNING {RECORDING_COLUMNS}"
        ))
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
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match from_sqlx(e) {
            Error::AlreadyExists { .. } => Error::AlreadyExists {
                what: format!("recording {id}"),
            },
            other => other,
        })?;
        let recording = rows::recording(&row)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(recording)
    }

    async fn recording(&self, id: &RecordingId) -> Result<Recording> {
        let row = sqlx::query(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = $1 AND erased IS NULL"
        ))
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
        let row = sqlx::query(&format!(
            "SELECT {RECORDING_COLUMNS} FROM recordings WHERE number = $1 AND erased IS NULL"
        ))
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
        let rows = list::query::<Postgres>("", &options)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(rows::recording).collect()
    }

    async fn commit(&self, change: Change) -> Result<Recording> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let recording = change::apply(&mut tx, &change).await?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(recording)
    }

    async fn artifacts(&self, id: &RecordingId) -> Result<Vec<Artifact>> {
        let rows = sqlx::query(
            "SELECT recording, kind, key, size, sha256, content_type FROM artifacts \
             WHERE recording = $1 ORDER BY kind",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter().map(rows::artifact).collect()
    }

    async fn copies(&self, id: &RecordingId) -> Result<Vec<Copy>> {
        let rows = sqlx::query(
            "SELECT recording, kind, sink, key, size FROM copies WHERE recording = $1 \
             ORDER BY sink, kind",
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
        claim::claim(&self.pool, now, expires, token).await
    }

    async fn retry_job(&self, lease: &JobLease, error: &str, run_at: Timestamp) -> Result<()> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', run_at = $3, last_error = $4, \
               lease_token = NULL, lease_expires = NULL, updated = $5 \
             WHERE id = $1 AND status = 'running' AND lease_token = $2",
        )
        .bind(lease.job.0)
        .bind(&lease.token)
        .bind(run_at.as_millis())
        .bind(error)
        .bind(Timestamp::now().as_millis())
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        held(done.rows_affected(), lease)
    }

    async fn dead_letter_job(&self, lease: &JobLease, error: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'dead', last_error = $3, lease_token = NULL, \
               lease_expires = NULL, updated = $4 \
             WHERE id = $1 AND status = 'running' AND lease_token = $2",
        )
        .bind(lease.job.0)
        .bind(&lease.token)
        .bind(error)
        .bind(Timestamp::now().as_millis())
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        held(done.rows_affected(), lease)
    }

    async fn extend_lease(&self, lease: &JobLease, by: Duration) -> Result<JobLease> {
        let expires = Timestamp::now().plus(by);
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires = $3 \
             WHERE id = $1 AND status = 'running' AND lease_token = $2",
        )
        .bind(lease.job.0)
        .bind(&lease.token)
        .bind(expires.as_millis())
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        held(done.rows_affected(), lease)?;
        Ok(JobLease {
            expires,
            ..lease.clone()
        })
    }

    async fn jobs(&self, filter: JobFilter) -> Result<Vec<JobRecord>> {
        let mut query = sqlx::QueryBuilder::<Postgres>::new(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"
        ));
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

    async fn purge_recording(
        &self,
        id: &RecordingId,
        lease: &JobLease,
        then: Vec<NewJob>,
    ) -> Result<Tombstone> {
        let now = Timestamp::now().as_millis();
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let held_now: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE id = $1 AND status = 'running' AND lease_token = $2 \
             FOR UPDATE",
        )
        .bind(lease.job.0)
        .bind(&lease.token)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        if held_now.is_none() {
            return Err(lease_not_held(lease));
        }
        // Everything the recording carried goes: its rows in other tables, and every
        // column of its own but the tombstone's.
        let row = sqlx::query(&format!(
            "UPDATE recordings SET erased = $2, version = version + 1, updated = $2, \
               mime_type = NULL, payload = NULL, length = NULL, media = NULL, failure = NULL, \
               ip = NULL, user_agent = NULL, referer = NULL, camera_name = NULL, \
               microphone_name = NULL \
             WHERE id = $1 AND deleting IS NOT NULL AND erased IS NULL \
             RETURNING {TOMBSTONE_COLUMNS}"
        ))
        .bind(id.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let Some(row) = row else {
            let state: Option<(Option<i64>, Option<i64>)> =
                sqlx::query_as("SELECT deleting, erased FROM recordings WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
            return Err(match state {
                None | Some((_, Some(_))) => Error::not_found(format_args!("recording {id}")),
                Some((None, None)) => {
                    Error::precondition(format_args!("recording {id} is not being deleted"))
                }
                Some((Some(_), None)) => Error::temporary(
                    "postgres",
                    format!("recording {id} changed under the purge"),
                ),
            });
        };
        let tombstone = rows::tombstone(&row)?;
        // The recording's key goes too: every copy of its encrypted files, wherever it
        // is, is unreadable from this commit on.
        for table in [
            "artifacts",
            "copies",
            "delivery_attempts",
            "jobs",
            "recording_keys",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE recording = $1"))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        for job in &then {
            change::enqueue(&mut tx, job, now).await?;
        }
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
            .with_detail(format!("deletion reason: {}", tombstone.reason.as_str())),
        )
        .await?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(tombstone)
    }

    async fn tombstone(&self, id: &RecordingId) -> Result<Tombstone> {
        let row = sqlx::query(&format!(
            "SELECT {TOMBSTONE_COLUMNS} FROM recordings WHERE id = $1 AND erased IS NOT NULL"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        match row {
            Some(row) => rows::tombstone(&row),
            None => Err(Error::not_found(format_args!("erased recording {id}"))),
        }
    }

    async fn requeue_job(&self, id: JobId, at: Timestamp) -> Result<()> {
        let done = sqlx::query(
            "UPDATE jobs SET \
               status = CASE WHEN status IN ('done', 'dead') THEN 'queued' ELSE status END, \
               attempts = CASE WHEN status IN ('done', 'dead') THEN 0 ELSE attempts END, \
               run_at = CASE WHEN status IN ('done', 'dead') THEN $2 ELSE run_at END, \
               updated = $3 \
             WHERE id = $1",
        )
        .bind(id.0)
        .bind(at.as_millis())
        .bind(Timestamp::now().as_millis())
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(Error::not_found(format_args!("job {}", id.0)))
        }
    }

    async fn log_delivery_attempt(&self, attempt: DeliveryAttempt) -> Result<()> {
        let mut connection = self.pool.acquire().await.map_err(from_sqlx)?;
        change::insert_attempt(&mut connection, &attempt).await
    }

    async fn delivery_attempts(&self, filter: DeliveryFilter) -> Result<Vec<DeliveryAttempt>> {
        let rows = deliveries::select::<Postgres>(&filter)
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(deliveries::attempt).collect()
    }

    async fn job_stats(&self) -> Result<Vec<JobStats>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT kind, status, COUNT(*) AS count, MIN(run_at) AS earliest \
             FROM jobs GROUP BY kind, status ORDER BY kind, status",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.into_iter()
            .map(|(kind, status, count, earliest)| {
                let status = JobStatus::parse(&status)
                    .ok_or_else(|| crate::catalog::corrupt("job status", status))?;
                Ok(JobStats::new(
                    kind,
                    status,
                    u64::try_from(count).unwrap_or(0),
                    Timestamp::from_millis(earliest),
                ))
            })
            .collect()
    }
}

/// `Ok` when the statement that asked for `lease` changed its job's row, else the error
/// that says the lease is no longer held.
fn held(rows: u64, lease: &JobLease) -> Result<()> {
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
