//! [`RecordingKeyStore`] for [`SqliteCatalog`]: the table `recording_keys`, one row per
//! recording, deleted with the rest of the recording by `purge_recording`.

use async_trait::async_trait;
use sqlx::Row;

use pipe_core::{Error, RecordingId, RecordingKeyStore, Result, Timestamp};

use super::SqliteCatalog;
use super::error::from_sqlx;

/// Rows of recordings that are neither being deleted nor erased, with a key.
const LIVE: &str = "FROM recording_keys k JOIN recordings r ON r.id = k.recording \
     WHERE k.sealed IS NOT NULL AND r.deleting IS NULL AND r.erased IS NULL";

#[async_trait]
impl RecordingKeyStore for SqliteCatalog {
    async fn recording_key(&self, recording: &RecordingId) -> Result<Option<Vec<u8>>> {
        let sealed: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT sealed FROM recording_keys WHERE recording = ?1")
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
        let id = recording.clone();
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    // The first key stays; a row without one (a restored backup's, waiting
                    // for its key from escrow) takes this one.
                    let kept: Option<Vec<u8>> = sqlx::query_scalar(
                        "INSERT INTO recording_keys (recording, sealed, created) \
                         SELECT ?1, ?2, ?3 WHERE EXISTS \
                           (SELECT 1 FROM recordings WHERE id = ?1 AND erased IS NULL) \
                         ON CONFLICT (recording) DO UPDATE SET sealed = excluded.sealed \
                           WHERE recording_keys.sealed IS NULL; \
                         SELECT k.sealed FROM recording_keys k \
                           JOIN recordings r ON r.id = k.recording \
                         WHERE k.recording = ?1 AND r.erased IS NULL",
                    )
                    .bind(id.as_str())
                    .bind(sealed)
                    .bind(Timestamp::now().as_millis())
                    .fetch_optional(tx.connection().await?)
                    .await
                    .map_err(from_sqlx)?
                    .flatten();
                    kept.ok_or_else(|| Error::not_found(format_args!("recording {id}")))
                })
            })
            .await
    }

    async fn live_recording_keys(
        &self,
        after: Option<&RecordingId>,
        limit: usize,
    ) -> Result<Vec<(RecordingId, Vec<u8>)>> {
        let rows = sqlx::query(&format!(
            "SELECT k.recording, k.sealed {LIVE} AND k.recording > ?1 \
             ORDER BY k.recording LIMIT ?2"
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
        let asked =
            serde_json::to_string(&recordings).map_err(|e| Error::invalid("recording ids", e))?;
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT k.recording {LIVE} AND k.recording IN (SELECT value FROM json_each(?1))"
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
