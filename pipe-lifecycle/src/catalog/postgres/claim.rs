//! [`Catalog::claim_job`](pipe_core::Catalog::claim_job) on PostgreSQL, for claimers on
//! many nodes at once.
//!
//! Three candidates, as on SQLite, of which the oldest is taken: the first due job
//! outside lanes whose sequence lets it run; the first due job of a lane that is not busy;
//! the first job whose lease ran out. Each is selected `FOR UPDATE SKIP LOCKED`, so
//! claimers never wait for each other and never take one job twice: a job another claimer
//! holds is passed over, and the next one considered.
//!
//! Lanes need more than row locks: a lane is busy while one of its jobs runs under a live
//! lease, and a claimer that saw it idle in its snapshot may find, once it has the lane's
//! lock, that another claimer started a job of the lane and committed meanwhile. So a
//! claimer locks the lane's row first (`job_lanes`, skipping lanes another claimer
//! holds), and only then, in a new statement (read committed takes a new snapshot for
//! each), reads whether the lane is busy and which job heads it: every change that makes
//! a lane busy is a claim made under that lock, so what the second statement reads is
//! current.

use pipe_core::{Job, JobId, JobKind, JobLease, Result, Timestamp};
use sqlx::{PgConnection, PgPool};
use tracing::warn;

use super::error::from_sqlx;
use crate::catalog::rows;

/// The most jobs of recordings being deleted one claim dead-letters before it gives up
/// for this time (the next claim goes on).
const DOOMED_PER_CLAIM: usize = 64;

/// Whether a queued job `j` may run as far as its sequence goes: no older job of its
/// sequence is queued or running.
const SEQUENCE_ALLOWS: &str = "(j.sequence IS NULL OR NOT EXISTS ( \
       SELECT 1 FROM jobs AS older \
       WHERE older.sequence = j.sequence AND older.id < j.id \
         AND older.status IN ('queued', 'running')))";

/// Claims the next due job as of `now`, leased until `expires` under `token`.
pub(super) async fn claim(
    pool: &PgPool,
    now: Timestamp,
    expires: Timestamp,
    token: String,
) -> Result<Option<Job>> {
    for _ in 0..DOOMED_PER_CLAIM {
        let mut tx = pool.begin().await.map_err(from_sqlx)?;
        let Some((id, _)) = oldest_candidate(&mut tx, now).await? else {
            return Ok(None);
        };
        let claimed: (String, i64, bool) = sqlx::query_as(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, \
               lease_token = $2, lease_expires = $3, updated = $4 \
             WHERE id = $1 \
             RETURNING payload, attempts, EXISTS ( \
               SELECT 1 FROM recordings AS r WHERE r.id = jobs.recording \
                 AND r.deleting IS NOT NULL AND r.erased IS NULL) AS doomed",
        )
        .bind(id)
        .bind(&token)
        .bind(expires.as_millis())
        .bind(now.as_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let (payload, attempts, doomed) = claimed;
        let id = JobId(id);
        let kind = match rows::job_kind(payload) {
            Ok(kind) => kind,
            Err(e) => {
                // A job this binary cannot read would head the queue forever: it is put
                // aside, with the reason, for a person to look at.
                warn!(job = %id, error = %e, "an unreadable job is dead-lettered");
                dead_letter(&mut tx, id, &e.to_string(), now).await?;
                tx.commit().await.map_err(from_sqlx)?;
                return Ok(None);
            }
        };
        if doomed && !matches!(kind, JobKind::Erase { .. }) {
            dead_letter(&mut tx, id, "the recording was deleted", now).await?;
            tx.commit().await.map_err(from_sqlx)?;
            continue;
        }
        tx.commit().await.map_err(from_sqlx)?;
        let attempt = u32::try_from(attempts).unwrap_or(u32::MAX);
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

/// The oldest of the three candidates, each locked by this transaction: `(id, run_at)`.
async fn oldest_candidate(tx: &mut PgConnection, now: Timestamp) -> Result<Option<(i64, i64)>> {
    let now = now.as_millis();
    let outside: Option<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT id, run_at FROM jobs AS j \
         WHERE status = 'queued' AND lane IS NULL AND run_at <= $1 AND {SEQUENCE_ALLOWS} \
         ORDER BY run_at, id LIMIT 1 \
         FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(from_sqlx)?;
    let expired: Option<(i64, i64)> = sqlx::query_as(
        "SELECT id, run_at FROM jobs WHERE status = 'running' AND lease_expires <= $1 \
         ORDER BY run_at, id LIMIT 1 \
         FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(from_sqlx)?;
    let in_lane = lane_candidate(tx, now).await?;
    Ok([outside, expired, in_lane]
        .into_iter()
        .flatten()
        .min_by_key(|&(id, run_at)| (run_at, id)))
}

/// The head of the lane whose head is oldest among the lanes that look idle and that no
/// other claimer holds; its lane locked, and checked again once locked.
async fn lane_candidate(tx: &mut PgConnection, now: i64) -> Result<Option<(i64, i64)>> {
    let lane: Option<String> = sqlx::query_scalar(&format!(
        "SELECT l.lane FROM job_lanes AS l \
         CROSS JOIN LATERAL ( \
           SELECT j.id, j.run_at FROM jobs AS j \
           WHERE j.lane = l.lane AND j.status = 'queued' AND j.run_at <= $1 \
             AND {SEQUENCE_ALLOWS} \
           ORDER BY j.run_at, j.id LIMIT 1) AS head \
         WHERE NOT EXISTS ( \
           SELECT 1 FROM jobs AS busy \
           WHERE busy.lane = l.lane AND busy.status = 'running' AND busy.lease_expires > $1) \
         ORDER BY head.run_at, head.id LIMIT 1 \
         FOR UPDATE OF l SKIP LOCKED"
    ))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(from_sqlx)?;
    let Some(lane) = lane else {
        return Ok(None);
    };
    // A new snapshot, taken with the lane's lock held.
    sqlx::query_as(&format!(
        "SELECT j.id, j.run_at FROM jobs AS j \
         WHERE j.lane = $2 AND j.status = 'queued' AND j.run_at <= $1 AND {SEQUENCE_ALLOWS} \
           AND NOT EXISTS ( \
             SELECT 1 FROM jobs AS busy \
             WHERE busy.lane = $2 AND busy.status = 'running' AND busy.lease_expires > $1) \
         ORDER BY j.run_at, j.id LIMIT 1 \
         FOR UPDATE OF j SKIP LOCKED"
    ))
    .bind(now)
    .bind(lane)
    .fetch_optional(&mut *tx)
    .await
    .map_err(from_sqlx)
}

/// Gives up on the job `id`, just claimed, for `why`.
pub(super) async fn dead_letter(
    tx: &mut PgConnection,
    id: JobId,
    why: &str,
    now: Timestamp,
) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = 'dead', last_error = $2, lease_token = NULL, \
           lease_expires = NULL, updated = $3 WHERE id = $1",
    )
    .bind(id.0)
    .bind(why)
    .bind(now.as_millis())
    .execute(&mut *tx)
    .await
    .map_err(from_sqlx)?;
    Ok(())
}
