//! SqliteCatalog as an EnvironmentStore: the conformance suite and restarts, on real files.

use pipe_core::conformance::environments;
use pipe_core::{
    Catalog, EnvironmentId, EnvironmentSettings, EnvironmentStore, EnvironmentUpdate, ListOptions,
    NewEnvironment, NewRecording,
};
use pipe_lifecycle::SqliteCatalog;

use crate::util::catalog_in;

#[tokio::test]
async fn sqlite_environments_conform() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    environments::run_all(catalog.as_ref()).await;
    environments::delete_refused_while_recordings_belong(catalog.as_ref(), catalog.as_ref()).await;
}

#[tokio::test]
async fn two_handles_on_one_file_run_the_suite_at_once() {
    // Two handles, as two processes would have: BEGIN IMMEDIATE and busy_timeout
    // serialise their writers, and each suite keeps to its own environments.
    let dir = tempfile::tempdir().unwrap();
    let a = catalog_in(dir.path()).await;
    let b = catalog_in(dir.path()).await;
    tokio::join!(
        environments::run_all(a.as_ref()),
        environments::run_all(b.as_ref()),
    );
    environments::delete_refused_while_recordings_belong(a.as_ref(), b.as_ref()).await;
}

#[tokio::test]
async fn environments_and_their_history_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    let id: EnvironmentId = "acme".parse().unwrap();
    catalog
        .create_environment(NewEnvironment::new(id.clone()).with_name("Acme"))
        .await
        .unwrap();
    let current = catalog
        .update_environment(
            &id,
            EnvironmentUpdate::default().with_settings(
                EnvironmentSettings::default()
                    .with_allowed_hosts(["acme.example"])
                    .with_client_playback(false),
            ),
        )
        .await
        .unwrap();
    let history = catalog.environment_history(&id).await.unwrap();
    let recording = catalog
        .create_recording(NewRecording::new().with_environment(id.clone()))
        .await
        .unwrap();
    catalog.close().await;
    drop(catalog);

    let reopened = SqliteCatalog::open(&path).await.unwrap();
    assert_eq!(reopened.environment(&id).await.unwrap(), current);
    assert_eq!(reopened.environment_history(&id).await.unwrap(), history);
    assert_eq!(history.len(), 2);
    assert_eq!(
        reopened
            .list_recordings(ListOptions::default().with_environment(id.clone()))
            .await
            .unwrap(),
        vec![recording]
    );
    assert!(
        reopened
            .delete_environment(&id)
            .await
            .unwrap_err()
            .is_precondition(),
        "an environment with a recording was deleted after reopening"
    );
}

/// The credentials of an environment's sinks are sealed at rest, in the environment and
/// in its history, under the server's keys; read back whole; refused without the keys.
#[tokio::test]
async fn sink_secrets_are_sealed_at_rest() {
    use pipe_core::{SinkId, SinkSettings};
    use std::sync::Arc;

    use crate::endpoints::{on_disk, open_sealing, sqlx_vacuum};

    let dir = tempfile::tempdir().unwrap();
    let keys_dir = tempfile::tempdir().unwrap();
    let keys: Arc<dyn pipe_core::KeyProvider> =
        Arc::new(pipe_storage::crypt::LocalKeyProvider::open_or_create(keys_dir.path()).unwrap());
    let path = dir.path().join("catalog.db");
    let (first, second) = (
        "a-bucket-secret-never-on-disk",
        "a-rotated-secret-never-on-disk",
    );
    let settings = |secret: &str| {
        EnvironmentSettings::default().with_sinks([SinkSettings::new(
            SinkId::new("archive"),
            "s3://bucket?access_key_id=AKIA&secret_key_from=key",
        )
        .with_secret("key", secret)])
    };
    let id: EnvironmentId = "sealed".parse().unwrap();
    let catalog = open_sealing(&path, &keys).await;
    let created = catalog
        .create_environment(NewEnvironment::new(id.clone()).with_settings(settings(first)))
        .await
        .unwrap();
    assert_eq!(created.settings, settings(first));
    catalog
        .update_environment(
            &id,
            EnvironmentUpdate::default().with_settings(settings(second)),
        )
        .await
        .unwrap();
    let history = catalog.environment_history(&id).await.unwrap();
    assert_eq!(history[0].settings, settings(first));
    assert_eq!(history[1].settings, settings(second));
    catalog.close().await;
    sqlx_vacuum(&path).await;
    for secret in [first, second] {
        assert!(
            !on_disk(dir.path(), secret),
            "a sink's secret is in the catalog's files in plaintext"
        );
    }
    let keyless = SqliteCatalog::open(&path).await.unwrap();
    let refused = keyless.environment(&id).await.unwrap_err();
    assert!(
        matches!(&refused, pipe_core::Error::Integrity { detail } if detail.contains("without the server's keys")),
        "{refused:?}"
    );
}
