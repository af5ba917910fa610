//! [`EnvironmentStore`] for [`PostgresCatalog`]: the current version of each environment
//! in `environments`, every version (the current one included) in
//! `environment_versions`.
//!
//! Create, update and delete each run in one transaction, so the two tables never
//! disagree. An update or a delete locks the environment's row (`SELECT … FOR UPDATE`)
//! before it reads the version it checks, so concurrent writers, on any node, take turns:
//! an expected version is never overtaken and every update makes one version. A delete
//! also holds the table `recordings` in `SHARE` mode while it checks that none belongs
//! to the environment, so no recording can be created between the check and the delete.
//!
//! Sinks' secrets are sealed before a transaction begins and opened after it ends: no
//! key is asked for while a lock is held.

use async_trait::async_trait;
use sqlx::PgConnection;

use pipe_core::{
    Environment, EnvironmentId, EnvironmentSettings, EnvironmentStore, EnvironmentUpdate, Error,
    NewEnvironment, Result, SinkId, Timestamp,
};

use super::PostgresCatalog;
use super::error::from_sqlx;
use crate::catalog::{rows, sealed};

/// `SELECT` list of an environment row, as [`rows::environment`] reads it.
const ENVIRONMENT_COLUMNS: &str = "id, name, version, created, updated, settings";

#[async_trait]
impl EnvironmentStore for PostgresCatalog {
    async fn create_environment(&self, new: NewEnvironment) -> Result<Environment> {
        let now = Timestamp::now().as_millis();
        let settings = self.stored_settings(&new.id, &new.settings).await?;
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let sql = format!(
            "INSERT INTO environments (id, name, version, created, updated, settings) \
             VALUES ($1, $2, 1, $3, $3, $4) RETURNING {ENVIRONMENT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new.id.as_str())
            .bind(&new.name)
            .bind(now)
            .bind(&settings)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match from_sqlx(e) {
                Error::AlreadyExists { .. } => Error::AlreadyExists {
                    what: format!("environment {}", new.id),
                },
                other => other,
            })?;
        let created = rows::environment(&row)?;
        insert_version(&mut tx, &created, &settings).await?;
        tx.commit().await.map_err(from_sqlx)?;
        self.opened(created).await
    }

    async fn environment(&self, id: &EnvironmentId) -> Result<Environment> {
        let sql = format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?;
        match row {
            Some(row) => self.opened(rows::environment(&row)?).await,
            None => Err(not_found(id)),
        }
    }

    async fn list_environments(&self) -> Result<Vec<Environment>> {
        // By id in byte order, as in every catalog, whatever the database's collation.
        let sql =
            format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments ORDER BY id COLLATE \"C\"");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?;
        let environments = rows.iter().map(rows::environment).collect::<Result<_>>()?;
        self.all_opened(environments).await
    }

    async fn update_environment(
        &self,
        id: &EnvironmentId,
        update: EnvironmentUpdate,
    ) -> Result<Environment> {
        // The settings are sealed before and opened after: no key is asked for while the
        // environment's row is locked.
        let new_settings = match &update.settings {
            Some(settings) => Some(self.stored_settings(id, settings).await?),
            None => None,
        };
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // Locked until the commit: concurrent updates wait here, then read the version
        // the one before them made.
        let current = locked(&mut tx, id).await?;
        if let Some(expected) = update.expect_version
            && expected != current.version
        {
            return Err(Error::precondition(format_args!(
                "environment {id} is at version {}, expected {expected}",
                current.version
            )));
        }
        // Never before the version it replaces, even if the clock stepped back (or another
        // node's clock is ahead).
        let now = Timestamp::now().max(current.updated).as_millis();
        // The current settings as stored (their secrets still sealed).
        let settings = match new_settings {
            Some(json) => json,
            None => serde_json::to_string(&current.settings)
                .map_err(|e| Error::invalid("environment settings", e))?,
        };
        let sql = format!(
            "UPDATE environments SET name = $2, version = $3, updated = $4, settings = $5 \
             WHERE id = $1 RETURNING {ENVIRONMENT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .bind(update.name.as_deref().unwrap_or(&current.name))
            .bind(current.version + 1)
            .bind(now)
            .bind(&settings)
            .fetch_one(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        let updated = rows::environment(&row)?;
        insert_version(&mut tx, &updated, &settings).await?;
        tx.commit().await.map_err(from_sqlx)?;
        self.opened(updated).await
    }

    async fn delete_environment(&self, id: &EnvironmentId) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        locked(&mut tx, id).await?;
        // Until the commit no recording can be written (created, or changed), on any
        // node: none can be created in this environment between the check and the
        // delete. (Recordings do not reference environments, so no foreign key would
        // stop one.) Readers and row locks go on; deletes are rare and short.
        sqlx::query("LOCK TABLE recordings IN SHARE MODE")
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        // Seeks recordings_by_environment.
        let recordings: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM recordings WHERE environment = $1)")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        if recordings {
            return Err(Error::precondition(format_args!(
                "environment {id} still has recordings"
            )));
        }
        // The foreign key would cascade too; deleting explicitly says what goes.
        for sql in [
            "DELETE FROM environment_versions WHERE environment = $1",
            "DELETE FROM environments WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)
    }

    async fn environment_history(&self, id: &EnvironmentId) -> Result<Vec<Environment>> {
        // One statement, so the history is read from one snapshot.
        let rows = sqlx::query(
            "SELECT e.id AS id, v.name AS name, v.version AS version, e.created AS created, \
               v.changed AS updated, v.settings AS settings \
             FROM environment_versions v JOIN environments e ON e.id = v.environment \
             WHERE v.environment = $1 ORDER BY v.version",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        if rows.is_empty() {
            return Err(not_found(id));
        }
        let versions = rows.iter().map(rows::environment).collect::<Result<_>>()?;
        self.all_opened(versions).await
    }
}

impl PostgresCatalog {
    /// The stored document of `settings`: its sinks' secrets sealed when the catalog has
    /// keys, each bound to its environment, sink and name.
    async fn stored_settings(
        &self,
        id: &EnvironmentId,
        settings: &EnvironmentSettings,
    ) -> Result<String> {
        let mut stored = settings.clone();
        let id = id.clone();
        sealed::with_keys(self.keys.as_ref(), move |keys| {
            if let Some(keys) = keys {
                for sink in &mut stored.sinks {
                    for (name, value) in &mut sink.secrets {
                        *value = sealed::seal(keys, value, &secret_context(&id, &sink.id, name))?;
                    }
                }
            }
            serde_json::to_string(&stored).map_err(|e| Error::invalid("environment settings", e))
        })
        .await
    }

    /// `environment` as read, its sinks' secrets opened.
    async fn opened(&self, environment: Environment) -> Result<Environment> {
        let mut opened = self.all_opened(vec![environment]).await?;
        Ok(opened.pop().expect("one in, one out"))
    }

    /// `environments` as read, their sinks' secrets opened.
    async fn all_opened(&self, mut environments: Vec<Environment>) -> Result<Vec<Environment>> {
        let sealed_secrets = environments
            .iter()
            .any(|e| e.settings.sinks.iter().any(|s| !s.secrets.is_empty()));
        if !sealed_secrets {
            return Ok(environments);
        }
        sealed::with_keys(self.keys.as_ref(), move |keys| {
            for environment in &mut environments {
                for sink in &mut environment.settings.sinks {
                    for (name, value) in &mut sink.secrets {
                        let context = secret_context(&environment.id, &sink.id, name);
                        *value = sealed::open(keys, value, &context)?;
                    }
                }
            }
            Ok(environments)
        })
        .await
    }
}

/// Where a sink's secret belongs: what its sealed value is bound to.
fn secret_context(environment: &EnvironmentId, sink: &SinkId, name: &str) -> String {
    format!("environment {environment}, sink {sink}, secret {name}")
}

/// The environment as it is inside `tx`, its row locked until the transaction ends, or
/// `NotFound`.
async fn locked(tx: &mut PgConnection, id: &EnvironmentId) -> Result<Environment> {
    let sql = format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE id = $1 FOR UPDATE");
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .fetch_optional(tx)
        .await
        .map_err(from_sqlx)?;
    match row {
        Some(row) => rows::environment(&row),
        None => Err(not_found(id)),
    }
}

/// Keeps `environment` (with `settings`, its settings as stored) in its history.
async fn insert_version(
    tx: &mut PgConnection,
    environment: &Environment,
    settings: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO environment_versions (environment, version, name, settings, changed) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(environment.id.as_str())
    .bind(environment.version)
    .bind(&environment.name)
    .bind(settings)
    .bind(environment.updated.as_millis())
    .execute(tx)
    .await
    .map_err(from_sqlx)?;
    Ok(())
}

fn not_found(id: &EnvironmentId) -> Error {
    Error::not_found(format_args!("environment {id}"))
}
