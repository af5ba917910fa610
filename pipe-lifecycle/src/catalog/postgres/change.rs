//! [`Catalog::commit`](pipe_core::Catalog::commit) on PostgreSQL: a [`Change`] in one
//! transaction.
//!
//! The recording's `UPDATE` carries the change's preconditions in its `WHERE`: it locks
//! the row, and at read committed a concurrent change that committed first makes
//! PostgreSQL evaluate the conditions again on the new row, so an expected version or
//! state is never overtaken (no lost update). What else the change asks for (artifacts,
//! copies, jobs, delivery attempts, the completion of its job) goes in the same
//! transaction, which a failed check rolls back whole.

use pipe_core::{
    Change, DeletionReason, DeliveryAttempt, Error, NewJob, Recording, RecordingState, Result,
    Timestamp,
};
use sqlx::PgConnection;

use super::error::from_sqlx;
use super::lease_not_held;
use crate::catalog::{RECORDING_COLUMNS, rows};

/// The fields of an event that anonymizing removes from the events already told, as
/// paths in the job's JSON.
const PERSONAL_PATHS: &[&str] = &[
    "{event,data,httpReferer}",
    "{event,data,cam_name}",
    "{event,data,mic_name}",
    "{event,data,ip}",
    "{event,data,ua}",
    "{event,pipe,data,httpReferer}",
    "{event,pipe,data,cam_name}",
    "{event,pipe,data,mic_name}",
    "{event,pipe,data,ip}",
    "{event,pipe,data,ua}",
];

/// Applies `change` inside the open transaction `tx`.
pub(super) async fn apply(tx: &mut PgConnection, change: &Change) -> Result<Recording> {
    let now = Timestamp::now().as_millis();
    let id = change.recording.as_str();

    let lease_held = match &change.complete {
        Some(lease) => Some(
            sqlx::query(
                "UPDATE jobs SET status = 'done', lease_token = NULL, lease_expires = NULL, \
                   updated = $1 \
                 WHERE id = $2 AND status = 'running' AND lease_token = $3",
            )
            .bind(now)
            .bind(lease.job.0)
            .bind(&lease.token)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?
            .rows_affected()
                == 1,
        ),
        None => None,
    };

    let media = change
        .media
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::invalid("media", e))?;
    let length = change
        .length
        .map(|l| i64::try_from(l).map_err(|_| Error::invalid("length", l)))
        .transpose()?;
    let upload_length = change
        .upload_length
        .map(|l| i64::try_from(l).map_err(|_| Error::invalid("upload_length", l)))
        .transpose()?;
    let expect_states = (!change.expect_states.is_empty()).then(|| {
        change
            .expect_states
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect::<Vec<_>>()
    });
    let personal = change.personal.clone().unwrap_or_default();
    let updated = sqlx::query(&format!(
        "UPDATE recordings SET \
           version = version + 1, \
           state = COALESCE($3, state), \
           updated = CASE WHEN $3::text IS NULL THEN updated ELSE $1 END, \
           length = COALESCE($4, length), \
           upload_length = COALESCE(upload_length, $17), \
           media = COALESCE($5, media), \
           failure = COALESCE($6, failure), \
           deleting = CASE WHEN $7::text IS NULL THEN deleting ELSE $1 END, \
           deletion_reason = COALESCE($7, deletion_reason), \
           ip = CASE WHEN $11 THEN NULL ELSE COALESCE($12, ip) END, \
           user_agent = CASE WHEN $11 THEN NULL ELSE COALESCE($13, user_agent) END, \
           referer = CASE WHEN $11 THEN NULL ELSE COALESCE($14, referer) END, \
           camera_name = CASE WHEN $11 THEN NULL ELSE COALESCE($15, camera_name) END, \
           microphone_name = CASE WHEN $11 THEN NULL ELSE COALESCE($16, microphone_name) END, \
           anonymized = CASE WHEN $11 THEN COALESCE(anonymized, $1) ELSE anonymized END \
         WHERE id = $2 \
           AND (deleting IS NULL OR ($8 AND erased IS NOT NULL)) \
           AND ($9::text[] IS NULL OR state = ANY($9)) \
           AND ($10::bigint IS NULL OR version = $10) \
         RETURNING {RECORDING_COLUMNS}"
    ))
    .bind(now)
    .bind(id)
    .bind(change.state.map(RecordingState::as_str))
    .bind(length)
    .bind(media)
    .bind(change.failure.clone())
    .bind(change.delete.map(DeletionReason::as_str))
    // An erased recording takes only the changes that tell its `video_deleted`.
    .bind(change.only_tells())
    .bind(expect_states)
    .bind(change.expect_version)
    .bind(change.anonymize)
    .bind(personal.ip)
    .bind(personal.user_agent)
    .bind(personal.referer)
    .bind(personal.camera_name)
    .bind(personal.microphone_name)
    .bind(upload_length)
    .fetch_optional(&mut *tx)
    .await
    .map_err(from_sqlx)?;
    // The recording's preconditions speak first, as they say more.
    let Some(row) = updated else {
        return Err(unmet_precondition(tx, change).await);
    };
    if let (Some(lease), Some(false)) = (&change.complete, lease_held) {
        return Err(lease_not_held(lease));
    }
    let recording = rows::recording(&row)?;

    for a in &change.artifacts {
        sqlx::query(
            "INSERT INTO artifacts (recording, kind, key, size, sha256, content_type) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (recording, kind) DO UPDATE SET key = excluded.key, \
               size = excluded.size, sha256 = excluded.sha256, \
               content_type = excluded.content_type",
        )
        .bind(id)
        .bind(a.kind.as_str())
        .bind(a.key.as_str())
        .bind(rows::size_to_sql(a.size)?)
        .bind(&a.sha256)
        .bind(&a.content_type)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    }
    for c in &change.copies {
        sqlx::query(
            "INSERT INTO copies (recording, kind, sink, key, size) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (recording, kind, sink) DO UPDATE SET key = excluded.key, \
               size = excluded.size",
        )
        .bind(id)
        .bind(c.kind.as_str())
        .bind(c.sink.as_str())
        .bind(c.key.as_str())
        .bind(rows::size_to_sql(c.size)?)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    }
    if change.anonymize {
        // The events already told keep no personal data either (an event still waiting
        // for its delivery keeps it until it is delivered).
        let removed = PERSONAL_PATHS
            .iter()
            .map(|path| format!(" #- '{path}'"))
            .collect::<String>();
        sqlx::query(&format!(
            "UPDATE jobs SET payload = (payload::jsonb{removed})::text \
             WHERE recording = $1 AND kind IN ('notify', 'deliver') \
               AND status IN ('done', 'dead')"
        ))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    }
    if change.delete.is_some() {
        // The jobs enqueued below (the erasure) come after this, and stay queued.
        sqlx::query(
            "UPDATE jobs SET status = 'dead', last_error = 'the recording was deleted', \
               updated = $2 \
             WHERE recording = $1 AND status = 'queued'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
    }
    for job in &change.enqueue {
        enqueue(tx, job, now).await?;
    }
    for attempt in &change.attempts {
        insert_attempt(tx, attempt).await?;
    }
    Ok(recording)
}

/// Enqueues `job` (nothing if its dedupe key exists).
pub(super) async fn enqueue(tx: &mut PgConnection, job: &NewJob, now: i64) -> Result<()> {
    let payload = serde_json::to_string(&job.kind).map_err(|e| Error::invalid("job", e))?;
    let lane = job.kind.lane();
    if let Some(lane) = &lane {
        sqlx::query("INSERT INTO job_lanes (lane) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(lane)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
    }
    sqlx::query(
        "INSERT INTO jobs (kind, recording, payload, dedupe_key, status, attempts, run_at, \
           created, sequence, last_error, updated, lane) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $8, $11) \
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(job.kind.name())
    .bind(job.kind.recording().as_str())
    .bind(payload)
    .bind(job.kind.dedupe_key())
    .bind(if job.dead { "dead" } else { "queued" })
    .bind(i64::from(job.attempts))
    .bind(job.run_at.map_or(now, Timestamp::as_millis))
    .bind(now)
    .bind(job.kind.sequence())
    .bind(job.last_error.clone())
    .bind(lane)
    .execute(&mut *tx)
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

/// Logs a delivery attempt.
pub(super) async fn insert_attempt(tx: &mut PgConnection, attempt: &DeliveryAttempt) -> Result<()> {
    sqlx::query(
        "INSERT INTO delivery_attempts \
           (recording, event, event_name, endpoint, at, duration_ms, status, response, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(attempt.recording.as_str())
    .bind(attempt.event.as_str())
    .bind(attempt.event_name.as_str())
    .bind(&attempt.endpoint)
    .bind(attempt.at.as_millis())
    .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
    .bind(attempt.status.map(i64::from))
    .bind(&attempt.response)
    .bind(&attempt.error)
    .execute(&mut *tx)
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

/// Why `change` matched no row: the recording is missing, being deleted, or not in the
/// state or at the version the change expects.
async fn unmet_precondition(tx: &mut PgConnection, change: &Change) -> Error {
    let id = change.recording.as_str();
    let current: Option<(String, i64, Option<i64>)> = match sqlx::query_as(
        "SELECT state, version, deleting FROM recordings WHERE id = $1 AND erased IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    {
        Ok(current) => current,
        Err(e) => return from_sqlx(e),
    };
    let Some((state, version, deleting)) = current else {
        return Error::not_found(format_args!("recording {id}"));
    };
    if deleting.is_some() {
        return Error::precondition(format_args!("recording {id} is being deleted"));
    }
    let state = match rows::state(state) {
        Ok(state) => state,
        Err(e) => return e,
    };
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
        None => Error::temporary(
            "postgres",
            format!("recording {id} changed under the write"),
        ),
    }
}
