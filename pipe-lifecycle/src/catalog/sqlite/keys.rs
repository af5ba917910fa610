//! [`ApiKeyStore`] for [`SqliteCatalog`]: the table `api_keys`, whose rows are revoked,
//! never deleted.

use async_trait::async_trait;

use pipe_core::{ApiKey, ApiKeyId, ApiKeyStore, Error, Result, Timestamp};

use super::SqliteCatalog;
use super::error::from_sqlx;
use crate::catalog::rows;

/// `SELECT` list of an API key row, as [`rows::api_key`] reads it.
const API_KEY_COLUMNS: &str = "id, label, role, environments, secret_hash, created, revoked";

#[async_trait]
impl ApiKeyStore for SqliteCatalog {
    async fn create_api_key(&self, key: ApiKey) -> Result<ApiKey> {
        let environments =
            serde_json::to_string(&key.environments).map_err(|e| Error::invalid("API key", e))?;
        let sql = format!(
            "INSERT INTO api_keys (id, label, role, environments, secret_hash, created, revoked) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {API_KEY_COLUMNS}"
        );
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let row = sqlx::query(&sql)
                        .bind(key.id.as_str())
                        .bind(&key.label)
                        .bind(key.role.as_str())
                        .bind(environments)
                        .bind(&key.secret_hash)
                        .bind(key.created.as_millis())
                        .bind(key.revoked.map(Timestamp::as_millis))
                        .fetch_one(tx.connection().await?)
                        .await
                        .map_err(|e| match from_sqlx(e) {
                            Error::AlreadyExists { .. } => Error::AlreadyExists {
                                what: format!("API key {}", key.id),
                            },
                            other => other,
                        })?;
                    rows::api_key(&row)
                })
            })
            .await
    }

    async fn api_key(&self, id: &ApiKeyId) -> Result<ApiKey> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        match row {
            Some(row) => rows::api_key(&row),
            None => Err(not_found(id)),
        }
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created, id");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        rows.iter().map(rows::api_key).collect()
    }

    async fn revoke_api_key(&self, id: &ApiKeyId, at: Timestamp) -> Result<ApiKey> {
        // One statement: a second revocation keeps the first time.
        let sql = format!(
            "UPDATE api_keys SET revoked = COALESCE(revoked, ?2) WHERE id = ?1 \
             RETURNING {API_KEY_COLUMNS}"
        );
        let owned = id.clone();
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let row = sqlx::query(&sql)
                        .bind(owned.as_str())
                        .bind(at.as_millis())
                        .fetch_optional(tx.connection().await?)
                        .await
                        .map_err(from_sqlx)?;
                    match row {
                        Some(row) => rows::api_key(&row),
                        None => Err(not_found(&owned)),
                    }
                })
            })
            .await
    }
}

fn not_found(id: &ApiKeyId) -> Error {
    Error::not_found(format_args!("API key {id}"))
}
