//! [`AuditLog`] for [`PostgresCatalog`]: the table `audit`, appended to by every node and
//! removed from only at its start (a trigger refuses anything else, and every update).
//!
//! Appends are serialized across nodes by a transaction-scoped advisory lock
//! ([`AUDIT_LOCK`]): each append takes it, reads the last entry and chains to it, so two
//! appends never read the same head. The lock is held until the appending transaction
//! ends, so an entry is numbered only once the one before it is committed (or undone).

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use pipe_core::{
    AuditEntry, AuditFilter, AuditLog, AuditRecord, EnvironmentId, Error, GENESIS, Result,
    Timestamp,
};

use super::PostgresCatalog;
use super::error::from_sqlx;
use crate::catalog::corrupt;
use crate::catalog::rows::get;

/// `SELECT` list of an entry, as [`record`] reads it.
const COLUMNS: &str =
    "seq, at, actor, role, action, target, outcome, environment, ip, detail, prev, hash";

/// Entries in a page when [`AuditFilter::limit`] is `None`.
const DEFAULT_LIMIT: u32 = 100;

/// The key of the advisory lock (`pg_advisory_xact_lock`) that serializes the writers of
/// the audit log: "pipe-aud" in ASCII, a key of its own in the database's single-key
/// space. (sqlx's migrator derives its key from the database's name.)
const AUDIT_LOCK: i64 = 0x7069_7065_2d61_7564;

/// Takes the audit log's writer lock for the rest of the transaction `conn` is in.
async fn lock(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_LOCK)
        .execute(conn)
        .await
        .map_err(from_sqlx)?;
    Ok(())
}

/// Appends `entry` inside the transaction `conn` is in: numbered one past the last entry
/// and chained to its hash. Also what an erasure uses to be audited in its own
/// transaction.
///
/// `conn` must be in a transaction (a [`sqlx::Transaction`] derefs to one): the writer
/// lock it takes is held until that transaction ends, and outside one it would be let go
/// at once.
pub(super) async fn append(conn: &mut PgConnection, entry: AuditEntry) -> Result<AuditRecord> {
    lock(conn).await?;
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(from_sqlx)?;
    let (seq, prev) = match last {
        Some((seq, hash)) => (
            u64::try_from(seq).map_err(|e| corrupt("audit entry number", e))? + 1,
            hash,
        ),
        None => (1, GENESIS.to_owned()),
    };
    let record = AuditRecord::chained(seq, entry, prev);
    let e = &record.entry;
    sqlx::query(
        "INSERT INTO audit \
           (seq, at, actor, role, action, target, outcome, environment, ip, detail, prev, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(i64::try_from(record.seq).map_err(|e| Error::invalid("audit entry number", e))?)
    .bind(e.at.as_millis())
    .bind(&e.actor)
    .bind(&e.role)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.outcome)
    .bind(e.environment.as_ref().map(EnvironmentId::as_str))
    .bind(&e.ip)
    .bind(&e.detail)
    .bind(&record.prev)
    .bind(&record.hash)
    .execute(&mut *conn)
    .await
    .map_err(from_sqlx)?;
    Ok(record)
}

fn record(row: &PgRow) -> Result<AuditRecord> {
    let seq: i64 = get(row, "seq")?;
    let environment: Option<String> = get(row, "environment")?;
    let mut entry = AuditEntry::new(
        get::<String>(row, "actor")?,
        get::<String>(row, "action")?,
        get::<String>(row, "target")?,
        get::<String>(row, "outcome")?,
    )
    .at(Timestamp::from_millis(get(row, "at")?));
    entry.role = get(row, "role")?;
    entry.environment = environment
        .map(|e| e.parse::<EnvironmentId>())
        .transpose()
        .map_err(|e| corrupt("audit entry's environment", e))?;
    entry.ip = get(row, "ip")?;
    entry.detail = get(row, "detail")?;
    Ok(AuditRecord::stored(
        u64::try_from(seq).map_err(|e| corrupt("audit entry number", e))?,
        entry,
        get(row, "prev")?,
        get(row, "hash")?,
    ))
}

#[async_trait]
impl AuditLog for PostgresCatalog {
    async fn append_audit(&self, entry: AuditEntry) -> Result<AuditRecord> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let record = append(&mut tx, entry).await?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(record)
    }

    async fn audit_entries(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut q: QueryBuilder<'_, Postgres> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1"));
        if let Some(after) = filter.after {
            let after = i64::try_from(after).unwrap_or(i64::MAX);
            q.push(" AND seq > ").push_bind(after);
        }
        if let Some(actor) = filter.actor {
            q.push(" AND actor = ").push_bind(actor);
        }
        if let Some(action) = filter.action {
            q.push(" AND action = ").push_bind(action);
        }
        if let Some(target) = filter.target {
            q.push(" AND target = ").push_bind(target);
        }
        if !filter.environments.is_empty() {
            let environments: Vec<String> = filter
                .environments
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect();
            q.push(" AND environment = ANY(")
                .push_bind(environments)
                .push(")");
        }
        if let Some(from) = filter.from {
            q.push(" AND at >= ").push_bind(from.as_millis());
        }
        if let Some(until) = filter.until {
            q.push(" AND at < ").push_bind(until.as_millis());
        }
        q.push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(filter.limit.unwrap_or(DEFAULT_LIMIT)));
        let rows = q.build().fetch_all(&self.pool).await.map_err(from_sqlx)?;
        rows.iter().map(record).collect()
    }

    async fn audit_head(&self) -> Result<Option<AuditRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM audit ORDER BY seq DESC LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        row.as_ref().map(record).transpose()
    }

    async fn expire_audit(&self, before: Timestamp) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // No append (nor another expiry) until the commit: the head read here stays the
        // head, and the entries counted are the entries removed.
        lock(&mut tx).await?;
        // The oldest entries, up to the last one made before `before`; never the newest
        // of all, the chain's head, which the next entry follows.
        let last: Option<(i64, String)> = sqlx::query_as(
            "SELECT seq, hash FROM audit WHERE seq = ( \
               SELECT MAX(seq) FROM audit \
               WHERE at < $1 AND seq < (SELECT MAX(seq) FROM audit))",
        )
        .bind(before.as_millis())
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let Some((through, hash)) = last else {
            return Ok(0);
        };
        // One statement: the trigger checks, once, that nothing it removed is newer than
        // an entry left.
        let removed = sqlx::query("DELETE FROM audit WHERE seq <= $1")
            .bind(through)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        append(
            &mut tx,
            AuditEntry::new("system", "audit.expired", "audit", "ok").with_detail(format!(
                "{removed} entries made before {} UTC removed, through entry {through} \
                 (hash {hash})",
                before.to_utc_string()
            )),
        )
        .await?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(removed)
    }
}
