//! The catalog's schema, embedded in the binary and applied in order at open.
//!
//! The SQL files live in `pipe-lifecycle/migrations/`; each is applied once, inside a
//! transaction, by sqlx's [`Migrator`], which records it (with a checksum) in
//! `_sqlx_migrations`. A file must never change once released: add a new one instead.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::SqlitePool;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use pipe_core::{Error, Result};

/// Every migration, in order: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "catalog",
    include_str!("../../../migrations/0001_catalog.sql"),
)];

/// The migrations compiled into this binary, as a [`MigrationSource`].
#[derive(Debug, Clone, Copy)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Brings the database behind `pool` to the newest schema.
pub(super) async fn run(pool: &SqlitePool) -> Result<()> {
    let migrator = Migrator::new(Embedded).await.map_err(migrate_error)?;
    migrator.run(pool).await.map_err(migrate_error)
}

fn migrate_error(e: sqlx::migrate::MigrateError) -> Error {
    match e {
        sqlx::migrate::MigrateError::Execute(e) => super::error::from_sqlx(e),
        // A database newer than this binary, or an edited migration: a person must look.
        other => Error::permanent("sqlite", other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(MIGRATIONS[0].0, 1);
    }
}
