//! [`EnvironmentStore`] for [`SqliteCatalog`]: the current version of each environment in
//! `environments`, every version (the current one included) in `environment_versions`.
//!
//! Create, update and delete each run as one write of the catalog's group-commit writer,
//! inside its `BEGIN IMMEDIATE` transaction: the write lock is held before the version (or
//! the recordings) are read, so no other writer can slip in between the check and the
//! change, and the two tables never disagree. (A connection of the pool taking the lock
//! on its own could be starved by the writer: SQLite's busy handler is not fair.)

use async_trait::async_trait;
use sqlx::SqliteConnection;

use pipe_core::{
    Environment, EnvironmentId, EnvironmentSettings, EnvironmentStore, EnvironmentUpdate, Error,
    NewEnvironment, Result, SinkId, Timestamp,
};

use super::SqliteCatalog;
use super::error::from_sqlx;
use crate::catalog::rows;
use crate::catalog::sealed;

/// `SELECT` list of an environment row, as [`rows::environment`] reads it.
const ENVIRONMENT_COLUMNS: &str = "id, name, version, created, updated, settings";

#[async_trait]
impl EnvironmentStore for SqliteCatalog {
    async fn create_environment(&self, new: NewEnvironment) -> Result<Environment> {
        let now = Timestamp::now().as_millis();
        let settings = self.stored_settings(&new.id, &new.settings).await?;
        let created = self
            .writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let connection = tx.connection().await?;
                    let sql = format!(
                        "INSERT INTO environments (id, name, version, created, updated, settings) \
                         VALUES (?1, ?2, 1, ?3, ?3, ?4) RETURNING {ENVIRONMENT_COLUMNS}"
                    );
                    let row = sqlx::query(&sql)
                        .bind(new.id.as_str())
                        .bind(&new.name)
                        .bind(now)
                        .bind(&settings)
                        .fetch_one(&mut *connection)
                        .await
                        .map_err(|e| match from_sqlx(e) {
                            Error::AlreadyExists { .. } => Error::AlreadyExists {
                                what: format!("environment {}", new.id),
                            },
                            other => other,
                        })?;
                    let created = rows::environment(&row)?;
                    insert_version(connection, &created, &settings).await?;
                    Ok(created)
                })
            })
            .await?;
        self.opened(created).await
    }

    async fn environment(&self, id: &EnvironmentId) -> Result<Environment> {
        let sql = format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE id = ?1");
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
        let sql = format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments ORDER BY id");
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
        let new_settings = match &update.settings {
            Some(settings) => Some(self.stored_settings(id, settings).await?),
            None => None,
        };
        // Every write goes through the catalog's one writer (a connection of the pool
        // asking for the write lock on its own can be starved by it). The settings are
        // sealed before and opened after: no key is asked for while the write lock is held.
        let id = id.clone();
        let updated = self
            .writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let connection = tx.connection().await?;
                    let current = current(&mut *connection, &id).await?;
                    if let Some(expected) = update.expect_version
                        && expected != current.version
                    {
                        return Err(Error::precondition(format_args!(
                            "environment {id} is at version {}, expected {expected}",
                            current.version
                        )));
                    }
                    // Never before the version it replaces, even if the clock stepped back.
                    let now = Timestamp::now().max(current.updated).as_millis();
                    // The current settings as stored (their secrets still sealed).
                    let settings = match new_settings {
                        Some(json) => json,
                        None => serde_json::to_string(&current.settings)
                            .map_err(|e| Error::invalid("environment settings", e))?,
                    };
                    let sql = format!(
                        "UPDATE environments SET name = ?2, version = ?3, updated = ?4, \
                         settings = ?5 WHERE id = ?1 RETURNING {ENVIRONMENT_COLUMNS}"
                    );
                    let row = sqlx::query(&sql)
                        .bind(id.as_str())
                        .bind(update.name.as_deref().unwrap_or(&current.name))
                        .bind(current.version + 1)
                        .bind(now)
                        .bind(&settings)
                        .fetch_one(&mut *connection)
                        .await
                        .map_err(from_sqlx)?;
                    let updated = rows::environment(&row)?;
                    insert_version(connection, &updated, &settings).await?;
                    Ok(updated)
                })
            })
            .await?;
        self.opened(updated).await
    }

    async fn delete_environment(&self, id: &EnvironmentId) -> Result<()> {
        let id = id.clone();
        self.writer
            .write(move |mut tx| {
                Box::pin(async move {
                    let connection = tx.connection().await?;
                    current(&mut *connection, &id).await?;
                    // The write lock is held: no recording can be created between this
                    // check and the delete. (Seeks recordings_by_environment.)
                    let recordings: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM recordings WHERE environment = ?1)",
                    )
                    .bind(id.as_str())
                    .fetch_one(&mut *connection)
                    .await
                    .map_err(from_sqlx)?;
                    if recordings {
                        return Err(Error::precondition(format_args!(
                            "environment {id} still has recordings"
                        )));
                    }
                    // The foreign key would cascade too; deleting explicitly does not
                    // depend on `PRAGMA foreign_keys`.
                    for sql in [
                        "DELETE FROM environment_versions WHERE environment = ?1",
                        "DELETE FROM environments WHERE id = ?1",
                    ] {
                        sqlx::query(sql)
                            .bind(id.as_str())
                            .execute(&mut *connection)
                            .await
                            .map_err(from_sqlx)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn environment_history(&self, id: &EnvironmentId) -> Result<Vec<Environment>> {
        // One statement, so the history is read from one snapshot.
        let rows = sqlx::query(
            "SELECT e.id AS id, v.name AS name, v.version AS version, e.created AS created, \
               v.changed AS updated, v.settings AS settings \
             FROM environment_versions v JOIN environments e ON e.id = v.environment \
             WHERE v.environment = ?1 ORDER BY v.version",
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

impl SqliteCatalog {
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

/// The environment as it is inside `tx`, or `NotFound`.
async fn current(tx: &mut SqliteConnection, id: &EnvironmentId) -> Result<Environment> {
    let sql = format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE id = ?1");
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
    tx: &mut SqliteConnection,
    environment: &Environment,
    settings: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO environment_versions (environment, version, name, settings, changed) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
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
