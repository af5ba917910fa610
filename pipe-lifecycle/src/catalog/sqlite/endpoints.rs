//! [`EndpointStore`] for [`SqliteCatalog`]: the table `webhook_endpoints`, one JSON
//! document per endpoint.

use async_trait::async_trait;

use pipe_core::{EndpointStore, EnvironmentId, Error, Result, StoredEndpoint};

use super::SqliteCatalog;
use super::error::from_sqlx;
use crate::catalog::corrupt;
use crate::catalog::sealed;

/// Where each secret of endpoint `id` belongs: what its sealed value is bound to.
fn contexts(id: &str) -> [String; 2] {
    [
        format!("webhook endpoint {id}, secret"),
        format!("webhook endpoint {id}, previous secret"),
    ]
}

impl SqliteCatalog {
    /// The stored document of `endpoint`: its secrets sealed when the catalog has keys.
    async fn stored(&self, endpoint: &StoredEndpoint) -> Result<String> {
        let mut stored = endpoint.clone();
        sealed::with_keys(self.keys.as_ref(), move |keys| {
            if let Some(keys) = keys {
                let [current, previous] = contexts(&stored.id);
                stored.secret = sealed::seal(keys, &stored.secret, &current)?;
                if let Some(old) = &mut stored.previous_secret {
                    old.secret = sealed::seal(keys, &old.secret, &previous)?;
                }
            }
            serde_json::to_string(&stored).map_err(|e| Error::invalid("webhook endpoint", e))
        })
        .await
    }

    /// The endpoints stored documents hold, their secrets opened.
    async fn loaded(&self, documents: Vec<String>) -> Result<Vec<StoredEndpoint>> {
        sealed::with_keys(self.keys.as_ref(), move |keys| {
            documents
                .iter()
                .map(|json| {
                    let mut endpoint: StoredEndpoint =
                        serde_json::from_str(json).map_err(|e| corrupt("webhook endpoint", e))?;
                    let [current, previous] = contexts(&endpoint.id);
                    endpoint.secret = sealed::open(keys, &endpoint.secret, &current)?;
                    if let Some(old) = &mut endpoint.previous_secret {
                        old.secret = sealed::open(keys, &old.secret, &previous)?;
                    }
                    Ok(endpoint)
                })
                .collect()
        })
        .await
    }
}

fn not_found(id: &str) -> Error {
    Error::not_found(format_args!("webhook endpoint {id}"))
}

#[async_trait]
impl EndpointStore for SqliteCatalog {
    async fn create_endpoint(&self, endpoint: StoredEndpoint) -> Result<StoredEndpoint> {
        StoredEndpoint::check_id(&endpoint.id)?;
        let stored = self.stored(&endpoint).await?;
        let (id, environment) = (endpoint.id.clone(), endpoint.environment.clone());
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO webhook_endpoints (id, environment, seq, endpoint) \
                         VALUES (?1, ?2, \
                           (SELECT COALESCE(MAX(seq), 0) + 1 FROM webhook_endpoints), ?3)",
                    )
                    .bind(&id)
                    .bind(environment.as_str())
                    .bind(stored)
                    .execute(tx.connection().await?)
                    .await
                    .map_err(|e| match from_sqlx(e) {
                        Error::AlreadyExists { .. } => Error::AlreadyExists {
                            what: format!("webhook endpoint {id}"),
                        },
                        other => other,
                    })?;
                    Ok(())
                })
            })
            .await?;
        Ok(endpoint)
    }

    async fn endpoint(&self, id: &str) -> Result<StoredEndpoint> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT endpoint FROM webhook_endpoints WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
        let mut loaded = self
            .loaded(vec![json.ok_or_else(|| not_found(id))?])
            .await?;
        Ok(loaded.pop().expect("one in, one out"))
    }

    async fn endpoints(&self, environment: &EnvironmentId) -> Result<Vec<StoredEndpoint>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT endpoint FROM webhook_endpoints WHERE environment = ?1 ORDER BY seq",
        )
        .bind(environment.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        self.loaded(rows).await
    }

    async fn replace_endpoint(&self, mut endpoint: StoredEndpoint) -> Result<StoredEndpoint> {
        // The environment stays the stored one, whatever the caller's copy says.
        let stored = self.stored(&endpoint).await?;
        let id = endpoint.id.clone();
        let environment: Option<String> = self
            .writer
            .write(move |mut tx| {
                Box::pin(async move {
                    sqlx::query_scalar(
                        "UPDATE webhook_endpoints \
                         SET endpoint = json_set(?2, '$.environment', environment) \
                         WHERE id = ?1 RETURNING environment",
                    )
                    .bind(id)
                    .bind(stored)
                    .fetch_optional(tx.connection().await?)
                    .await
                    .map_err(from_sqlx)
                })
            })
            .await?;
        endpoint.environment = environment
            .ok_or_else(|| not_found(&endpoint.id))?
            .parse()?;
        Ok(endpoint)
    }

    async fn delete_endpoint(&self, id: &str) -> Result<()> {
        let owned = id.to_owned();
        let deleted = self
            .writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = ?1")
                        .bind(owned)
                        .execute(tx.connection().await?)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(done.rows_affected())
                })
            })
            .await?;
        if deleted == 1 {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }
}
