//! [`RecordingKeyStore`] for [`PostgresCatalog`]: the table `recording_keys`, one row per
//! recording, deleted with the rest of the recording by `purge_recording`.

use async_trait::async_trait;
use sqlx::Row;

use pipe_core::{Error, RecordingId, RecordingKeyStore, Result, Timestamp};

use super::PostgresCatalog;
use super::error::from_sqlx;

/// Rows of recordings that are neither being deleted nor erased, with a key.
const LIVE: &str = "FROM recording_keys k JOIN recordings r ON r.id = k.recording \
     WHERE k.sealed IS NOT NULL AND r.deleting IS NULL AND r.erased IS NULL";

#[async_trait]
impl RecordingKeyStore for PostgresCatalog {
    async fn recording_key(&self, recording: &RecordingId) -> Result<Option<Vec<u8>>> {
        let sealed: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT sealed FROM recording_keys WHERE recording = $1")
                .bind(recording.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
        Ok(sealed.flatten())
    }

    async fn keep_recording_key(
        &self,
        recording: &RecordingId,
        sealed: Vec<u8>,
    ) -> Result<Vec<u8>> {
        let not_found = || Error::not_found(format_args!("recording {recording}"));
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // The first key stays; a row without one (a restored backup's, waiting for its
        // key from escrow) takes this one. The recording's row is locked (`FOR SHARE`)
        // until the commit, so it cannot be erased meanwhile: a purge that committed
        // first leaves no recording to insert for (its row is read again, erased, after
        // the wait), and one that comes later waits, then deletes the key with the rest.
        let kept: Option<Option<Vec<u8>>> = sqlx::query_scalar(
            "INSERT INTO recording_keys (recording, sealed, created) \
             SELECT id, $2, $3 FROM recordings WHERE id = $1 AND erased IS NULL FOR SHARE \
             ON CONFLICT (recording) DO UPDATE SET sealed = excluded.sealed \
               WHERE recording_keys.sealed IS NULL \
             RETURNING sealed",
        )
        .bind(recording.as_str())
        .bind(sealed)
        .bind(Timestamp::now().as_millis())
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let kept = match kept {
            Some(kept) => kept,
            // Nothing written: the recording already has a key (read in a statement of
            // its own, which sees a key another node committed while this one waited),
            // or it is unknown or erased.
            None => sqlx::query_scalar(
                "SELECT k.sealed FROM recording_keys k JOIN recordings r ON r.id = k.recording \
                 WHERE k.recording = $1 AND r.erased IS NULL",
            )
            .bind(recording.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(from_sqlx)?
            .flatten(),
        };
        let kept = kept.ok_or_else(not_found)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(kept)
    }

    async fn live_recording_keys(
        &self,
        after: Option<&RecordingId>,
        limit: usize,
    ) -> Result<Vec<(RecordingId, Vec<u8>)>> {
        // Pages by keyset on the primary key, in the database's collation (its order for
        // `>` and for `ORDER BY` alike), so a page costs the same however deep it is.
        let rows = sqlx::query(&format!(
            "SELECT k.recording, k.sealed {LIVE} AND k.recording > $1 \
             ORDER BY k.recording LIMIT $2"
        ))
        .bind(after.map_or("", RecordingId::as_str))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("recording").map_err(from_sqlx)?;
                Ok((id.parse()?, row.try_get("sealed").map_err(from_sqlx)?))
            })
            .collect()
    }

    async fn still_live(&self, recordings: &[RecordingId]) -> Result<Vec<RecordingId>> {
        let asked: Vec<&str> = recordings.iter().map(RecordingId::as_str).collect();
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT k.recording {LIVE} AND k.recording = ANY($1)"
        ))
        .bind(asked)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        ids.into_iter().map(|id| id.parse()).collect()
    }

    async fn recordings_without_keys(&self) -> Result<Vec<RecordingId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT k.recording FROM recording_keys k JOIN recordings r ON r.id = k.recording \
             WHERE k.sealed IS NULL AND r.erased IS NULL ORDER BY k.recording",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        ids.into_iter().map(|id| id.parse()).collect()
    }
}
