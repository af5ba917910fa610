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
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "catalog",
        include_str!("../../../migrations/0001_catalog.sql"),
    ),
    (
        2,
        "environments",
        include_str!("../../../migrations/0002_environments.sql"),
    ),
    (
        3,
        "deletion",
        include_str!("../../../migrations/0003_deletion.sql"),
    ),
    (
        4,
        "numbers",
        include_str!("../../../migrations/0004_numbers.sql"),
    ),
    (
        5,
        "job sequences",
        include_str!("../../../migrations/0005_job_sequences.sql"),
    ),
    (
        6,
        "delivery attempts",
        include_str!("../../../migrations/0006_delivery_attempts.sql"),
    ),
    (
        7,
        "webhook endpoints",
        include_str!("../../../migrations/0007_webhook_endpoints.sql"),
    ),
    (
        8,
        "job lanes",
        include_str!("../../../migrations/0008_job_lanes.sql"),
    ),
    (
        9,
        "lane heads",
        include_str!("../../../migrations/0009_lane_heads.sql"),
    ),
    (
        10,
        "kept recordings",
        include_str!("../../../migrations/0010_kept_recordings.sql"),
    ),
    (
        11,
        "tombstones",
        include_str!("../../../migrations/0011_tombstones.sql"),
    ),
    (
        12,
        "audit log",
        include_str!("../../../migrations/0012_audit.sql"),
    ),
    (
        13,
        "personal data",
        include_str!("../../../migrations/0013_personal_data.sql"),
    ),
    (
        14,
        "recording keys",
        include_str!("../../../migrations/0014_recording_keys.sql"),
    ),
    (
        15,
        "uploads",
        include_str!("../../../migrations/0015_uploads.sql"),
    ),
];

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

    /// Every file in `migrations/` is embedded, under the version its name starts with,
    /// and nothing else is: a file written and never listed here would never be applied.
    #[test]
    fn every_migration_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
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
        assert_eq!(files, embedded, "migrations/ and MIGRATIONS differ");
    }

    #[tokio::test]
    async fn recordings_of_a_version_1_catalog_belong_to_production() {
        use pipe_core::{Catalog, EnvironmentId, ListOptions, RecordingId};
        use sqlx::sqlite::SqliteConnectOptions;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let pool = SqlitePool::connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        let mut first = Migrator::new(Embedded).await.unwrap();
        first.migrations = first
            .migrations
            .iter()
            .filter(|m| m.version == 1)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        first.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO recordings (id, state, version, created, updated) \
             VALUES ('old', 'copied', 3, 1000, 2000)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;

        let catalog = super::super::SqliteCatalog::open(&path).await.unwrap();
        let id: RecordingId = "old".parse().unwrap();
        let old = catalog.recording(&id).await.unwrap();
        assert_eq!(old.environment, EnvironmentId::default_environment());
        assert_eq!(old.version, 3, "the migration changed the recording");
        let listed = catalog
            .list_recordings(
                ListOptions::default().with_environment(EnvironmentId::default_environment()),
            )
            .await
            .unwrap();
        assert_eq!(listed, vec![old]);
    }
}
