//! [`Catalog::commit`](pipe_core::Catalog::commit) on SQLite: a [`Change`] as one
//! round trip.
//!
//! Each call to sqlx's SQLite connection is a round trip to the connection's own thread
//! (some 70 µs here, whatever the statement), and the group-commit writer runs the
//! changes of every task one after another; so a change is sent as one string of
//! statements with numbered parameters shared among them, and its checks are made on
//! what comes back: the recording's row (none when a precondition failed) and whether the
//! job's lease was held. A failed check undoes the whole change (the writer rolls back to
//! the change's savepoint).

use pipe_core::{Change, DeletionReason, Error, NewJob, RecordingState, Result, Timestamp};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Encode, Sqlite, Type};

use super::error::from_sqlx;
use super::writer::Tx;
use super::{RECORDING_COLUMNS, lease_not_held};
use crate::catalog::rows;

/// Statements sent as one, with numbered parameters (`$1`, `$2`, …) shared among them.
#[derive(Default)]
pub(super) struct Statements {
    sql: String,
    args: SqliteArguments<'static>,
    count: usize,
}

impl Statements {
    /// Adds `value` as the next parameter and returns its placeholder.
    pub(super) fn arg<T>(&mut self, value: T) -> Result<String>
    where
        T: Encode<'static, Sqlite> + Type<Sqlite> + 'static,
    {
        self.args
            .add(value)
            .map_err(|e| Error::invalid("catalog value", e))?;
        self.count += 1;
        // `$N`, not `?N`: SQLite numbers the parameters of each statement up to the
        // largest `?N` it uses, and sqlx binds the numbers a statement does not use as
        // if they were unnumbered `?`s, running past the arguments; `$N` is a name, so
        // each statement counts only the parameters it uses (sqlx reads the number in it).
        Ok(format!("${}", self.count))
    }

    /// Adds one statement (without its `;`).
    pub(super) fn push(&mut self, statement: &str) {
        self.sql.push_str(statement);
        self.sql.push_str(";\n");
    }

    /// Runs every statement in one call and returns every row they return, in order.
    pub(super) async fn run(self, tx: &mut Tx<'_>) -> Result<Vec<SqliteRow>> {
        let sql = format!("{}{}", tx.first_statements(), self.sql);
        sqlx::query_with(&sql, self.args)
            .fetch_all(tx.raw())
            .await
            .map_err(from_sqlx)
    }
}

/// Applies `change` inside the writer's transaction: the preconditions are conditions of
/// the recording's update (the transaction holds the write lock, so nothing changes
/// between check and change), and everything else the change asks for goes with it.
pub(super) async fn apply(tx: &mut Tx<'_>, change: &Change) -> Result<pipe_core::Recording> {
    let now = Timestamp::now().as_millis();
    let id = change.recording.as_str();
    let mut s = Statements::default();
    let now_arg = s.arg(now)?;
    let id_arg = s.arg(id.to_owned())?;

    if let Some(lease) = &change.complete {
        let (job, token) = (s.arg(lease.job.0)?, s.arg(lease.token.clone())?);
        s.push(&format!(
            "UPDATE jobs SET status = 'done', lease_token = NULL, lease_expires = NULL, \
               updated = {now_arg} \
             WHERE id = {job} AND status = 'running' AND lease_token = {token}"
        ));
        s.push("SELECT changes() AS lease_held");
    }

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
        serde_json::Value::from(
            change
                .expect_states
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
        )
        .to_string()
    });
    let state = s.arg(change.state.map(RecordingState::as_str))?;
    let (length, media) = (s.arg(length)?, s.arg(media)?);
    let upload_length = s.arg(upload_length)?;
    let failure = s.arg(change.failure.clone())?;
    let delete = s.arg(change.delete.map(DeletionReason::as_str))?;
    // An erased recording takes only the changes that tell its `video_deleted`.
    let tells = s.arg(change.only_tells())?;
    let (states, version) = (s.arg(expect_states)?, s.arg(change.expect_version)?);
    let personal = change.personal.clone().unwrap_or_default();
    let anonymize = s.arg(change.anonymize)?;
    let personal_sets = [
        ("ip", personal.ip),
        ("user_agent", personal.user_agent),
        ("referer", personal.referer),
        ("camera_name", personal.camera_name),
        ("microphone_name", personal.microphone_name),
    ]
    .into_iter()
    .map(|(column, value)| {
        Ok(format!(
            "{column} = CASE WHEN {anonymize} THEN NULL ELSE COALESCE({}, {column}) END, ",
            s.arg(value)?
        ))
    })
    .collect::<Result<String>>()?;
    s.push(&format!(
        "UPDATE recordings SET \
           version = version + 1, \
           state = COALESCE({state}, state), \
           updated = CASE WHEN {state} IS NULL THEN updated ELSE {now_arg} END, \
           length = COALESCE({length}, length), \
           upload_length = COALESCE(upload_length, {upload_length}), \
           media = COALESCE({media}, media), \
           failure = COALESCE({failure}, failure), \
           deleting = CASE WHEN {delete} IS NULL THEN deleting ELSE {now_arg} END, \
           deletion_reason = COALESCE({delete}, deletion_reason), \
           {personal_sets}\
           anonymized = CASE WHEN {anonymize} THEN COALESCE(anonymized, {now_arg}) \
             ELSE anonymized END \
         WHERE id = {id_arg} \
           AND (deleting IS NULL OR ({tells} AND erased IS NOT NULL)) \
           AND ({states} IS NULL OR state IN (SELECT value FROM json_each({states}))) \
           AND ({version} IS NULL OR version = {version}) \
         RETURNING {RECORDING_COLUMNS}"
    ));

    for a in &change.artifacts {
        let values = [
            s.arg(a.kind.as_str())?,
            s.arg(a.key.as_str().to_owned())?,
            s.arg(rows::size_to_sql(a.size)?)?,
            s.arg(a.sha256.clone())?,
            s.arg(a.content_type.clone())?,
        ]
        .join(", ");
        s.push(&format!(
            "INSERT INTO artifacts (recording, kind, key, size, sha256, content_type) \
             VALUES ({id_arg}, {values}) \
             ON CONFLICT (recording, kind) DO UPDATE SET key = excluded.key, \
               size = excluded.size, sha256 = excluded.sha256, \
               content_type = excluded.content_type"
        ));
    }
    for c in &change.copies {
        let values = [
            s.arg(c.kind.as_str())?,
            s.arg(c.sink.as_str().to_owned())?,
            s.arg(c.key.as_str().to_owned())?,
            s.arg(rows::size_to_sql(c.size)?)?,
        ]
        .join(", ");
        s.push(&format!(
            "INSERT INTO copies (recording, kind, sink, key, size) VALUES ({id_arg}, {values}) \
             ON CONFLICT (recording, kind, sink) DO UPDATE SET key = excluded.key, \
               size = excluded.size"
        ));
    }
    if change.anonymize {
        // The events already told keep no personal data either (an event still waiting
        // for its delivery keeps it until it is delivered).
        let paths = ["httpReferer", "cam_name", "mic_name", "ip", "ua"]
            .iter()
            .flat_map(|f| {
                [
                    format!("'$.event.data.{f}'"),
                    format!("'$.event.pipe.data.{f}'"),
                ]
            })
            .collect::<Vec<_>>()
            .join(", ");
        s.push(&format!(
            "UPDATE jobs SET payload = json_remove(payload, {paths}) \
             WHERE recording = {id_arg} AND kind IN ('notify', 'deliver') \
               AND status IN ('done', 'dead')"
        ));
    }
    if change.delete.is_some() {
        // The jobs enqueued below (the erasure) come after this, and stay queued.
        s.push(&format!(
            "UPDATE jobs SET status = 'dead', last_error = 'the recording was deleted', \
               updated = {now_arg} \
             WHERE recording = {id_arg} AND status = 'queued'"
        ));
    }
    for job in &change.enqueue {
        enqueue(&mut s, job, now)?;
    }
    for attempt in &change.attempts {
        super::deliveries::push_insert(&mut s, attempt)?;
    }

    let rows = s.run(tx).await?;
    let mut rows = rows.iter();
    if let Some(lease) = &change.complete {
        let held: i64 = rows
            .next()
            .map(|row| rows::get(row, "lease_held"))
            .transpose()?
            .unwrap_or(0);
        // The recording's preconditions speak first, as they say more.
        let recording = rows.next();
        if recording.is_none() {
            return Err(super::unmet_precondition(tx.connection().await?, change).await);
        }
        if held != 1 {
            return Err(lease_not_held(lease));
        }
        return recording.map(rows::recording).expect("checked above");
    }
    match rows.next() {
        Some(row) => rows::recording(row),
        None => Err(super::unmet_precondition(tx.connection().await?, change).await),
    }
}

/// Adds the statements that enqueue `job` (none if its dedupe key exists).
pub(super) fn enqueue(s: &mut Statements, job: &NewJob, now: i64) -> Result<()> {
    let payload = serde_json::to_string(&job.kind).map_err(|e| Error::invalid("job", e))?;
    let lane = job.kind.lane();
    let lane_arg = s.arg(lane.clone())?;
    if lane.is_some() {
        s.push(&format!(
            "INSERT INTO job_lanes (lane) VALUES ({lane_arg}) ON CONFLICT DO NOTHING"
        ));
    }
    let values = [
        s.arg(job.kind.name())?,
        s.arg(job.kind.recording().as_str().to_owned())?,
        s.arg(payload)?,
        s.arg(job.kind.dedupe_key())?,
        s.arg(if job.dead { "dead" } else { "queued" })?,
        s.arg(i64::from(job.attempts))?,
        s.arg(job.run_at.map_or(now, Timestamp::as_millis))?,
        s.arg(now)?,
        s.arg(job.kind.sequence())?,
        s.arg(job.last_error.clone())?,
    ]
    .join(", ");
    let updated = s.arg(now)?;
    s.push(&format!(
        "INSERT INTO jobs (kind, recording, payload, dedupe_key, status, attempts, run_at, \
           created, sequence, last_error, updated, lane) \
         VALUES ({values}, {updated}, {lane_arg}) \
         ON CONFLICT (dedupe_key) DO NOTHING"
    ));
    Ok(())
}
