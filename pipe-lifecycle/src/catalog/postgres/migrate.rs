//! The PostgreSQL catalog's schema, embedded in the binary and applied in order at open
//! (the files live in `pipe-lifecycle/migrations-postgres/`; a released file never
//! changes). sqlx's [`Migrator`] applies each in a transaction and records it in
//! `_sqlx_migrations`; it holds an advisory lock while it runs, so nodes starting at once
//! apply each migration once.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

use pipe_core::{Error, Result};

/// Every migration, in order: (version, description, SQL).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "catalog",
        include_str!("../../../migrations-postgres/0001_catalog.sql"),
    ),
    (
        2,
        "uploads",
        include_str!("../../../migrations-postgres/0002_uploads.sql"),
    ),
];

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
pub(super) async fn run(pool: &PgPool) -> Result<()> {
    let migrator = Migrator::new(Embedded).await.map_err(migrate_error)?;
    migrator.run(pool).await.map_err(migrate_error)
}

fn migrate_error(e: sqlx::migrate::MigrateError) -> Error {
    match e {
        sqlx::migrate::MigrateError::Execute(e) => super::error::from_sqlx(e),
        other => Error::permanent("postgres", other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in `migrations-postgres/` is embedded, under the version its name
    /// starts with, and nothing else is.
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations-postgres");
        let mut files: Vec<(i64, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let version = name.split('_').next().unwrap().parse().unwrap();
                (version, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        files.sort();
        let embedded: Vec<(i64, String)> = MIGRATIONS
            .iter()
            .map(|&(version, _, sql)| (version, sql.to_owned()))
            .collect();
        assert_eq!(
            files, embedded,
            "migrations-postgres/ and MIGRATIONS differ"
        );
    }
}
