//! [`EndpointStore`] for [`PostgresCatalog`]: the table `webhook_endpoints`, one JSON
//! document per endpoint, listed in the order they were created (`seq`, an identity
//! column PostgreSQL numbers).

use async_trait::async_trait;

use pipe_core::{EndpointStore, EnvironmentId, Error, Result, StoredEndpoint};

use super::PostgresCatalog;
use super::error::from_sqlx;
use crate::catalog::{corrupt, sealed};

/// Where each secret of endpoint `id` belongs: what its sealed value is bound to.
fn contexts(id: &str) -> [String; 2] {
    [
        format!("webhook endpoint {id}, secret"),
        format!("webhook endpoint {id}, previous secret"),
    ]
}

impl PostgresCatalog {
    /// `endpoint` as it is stored: its secrets sealed when the catalog has keys.
    async fn sealed_endpoint(&self, endpoint: &StoredEndpoint) -> Result<StoredEndpoint> {
        let mut stored = endpoint.clone();
        sealed::with_keys(self.keys.as_ref(), move |keys| {
            if let Some(keys) = keys {
                let [current, previous] = contexts(&stored.id);
                stored.secret = sealed::seal(keys, &stored.secret, &current)?;
                if let Some(old) = &mut stored.previous_secret {
                    old.secret = sealed::seal(keys, &old.secret, &previous)?;
                }
            }
            Ok(stored)
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

/// The stored document of `endpoint` (its secrets already sealed).
fn document(endpoint: &StoredEndpoint) -> Result<String> {
    serde_json::to_string(endpoint).map_err(|e| Error::invalid("webhook endpoint", e))
}

fn not_found(id: &str) -> Error {
    Error::not_found(format_args!("webhook endpoint {id}"))
}

#[async_trait]
impl EndpointStore for PostgresCatalog {
    async fn create_endpoint(&self, endpoint: StoredEndpoint) -> Result<StoredEndpoint> {
        StoredEndpoint::check_id(&endpoint.id)?;
        let stored = document(&self.sealed_endpoint(&endpoint).await?)?;
        // `seq` is numbered by PostgreSQL: creation order across nodes.
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, environment, endpoint) VALUES ($1, $2, $3)",
        )
        .bind(&endpoint.id)
        .bind(endpoint.environment.as_str())
        .bind(stored)
        .execute(&self.pool)
        .await
        .map_err(|e| match from_sqlx(e) {
            Error::AlreadyExists { .. } => Error::AlreadyExists {
                what: format!("webhook endpoint {}", endpoint.id),
            },
            other => other,
        })?;
        Ok(endpoint)
    }

    async fn endpoint(&self, id: &str) -> Result<StoredEndpoint> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT endpoint FROM webhook_endpoints WHERE id = $1")
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
            "SELECT endpoint FROM webhook_endpoints WHERE environment = $1 ORDER BY seq",
        )
        .bind(environment.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        self.loaded(rows).await
    }

    async fn replace_endpoint(&self, mut endpoint: StoredEndpoint) -> Result<StoredEndpoint> {
        // The environment stays the stored one, whatever the caller's copy says. The
        // secrets are sealed before the row is locked: no key is asked for meanwhile.
        let mut stored = self.sealed_endpoint(&endpoint).await?;
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let environment: Option<String> = sqlx::query_scalar(
            "SELECT environment FROM webhook_endpoints WHERE id = $1 FOR UPDATE",
        )
        .bind(&endpoint.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let environment: EnvironmentId = environment
            .ok_or_else(|| not_found(&endpoint.id))?
            .parse()
            .map_err(|e| corrupt("webhook endpoint's environment", e))?;
        stored.environment = environment.clone();
        sqlx::query("UPDATE webhook_endpoints SET endpoint = $2 WHERE id = $1")
            .bind(&endpoint.id)
            .bind(document(&stored)?)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        endpoint.environment = environment;
        Ok(endpoint)
    }

    async fn delete_endpoint(&self, id: &str) -> Result<()> {
        let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        if deleted == 1 {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }
}
