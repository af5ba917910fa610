//! SqliteCatalog as an ApiKeyStore: the conformance suite and restarts, on real files.

use pipe_core::conformance::api_keys;
use pipe_core::{ApiKey, ApiKeyId, ApiKeyStore, EnvironmentId, Role, Timestamp};
use pipe_lifecycle::SqliteCatalog;

use crate::util::catalog_in;

#[tokio::test]
async fn sqlite_api_keys_conform() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    api_keys::run_all(catalog.as_ref()).await;
}

#[tokio::test]
async fn two_suites_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = catalog_in(dir.path()).await;
    let b = catalog_in(dir.path()).await;
    tokio::join!(api_keys::run_all(a.as_ref()), api_keys::run_all(b.as_ref()));
}

#[tokio::test]
async fn keys_and_revocations_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    let kept = ApiKey::new(
        ApiKeyId::generate(),
        "ci",
        Role::Viewer,
        vec!["staging".parse::<EnvironmentId>().unwrap()],
        "hash-1",
        Timestamp::from_millis(1_000),
    );
    let gone = ApiKey::new(
        ApiKeyId::generate(),
        "old admin",
        Role::Admin,
        vec![],
        "hash-2",
        Timestamp::from_millis(2_000),
    );
    catalog.create_api_key(kept.clone()).await.unwrap();
    catalog.create_api_key(gone.clone()).await.unwrap();
    let revoked = catalog
        .revoke_api_key(&gone.id, Timestamp::from_millis(3_000))
        .await
        .unwrap();
    assert_eq!(revoked.revoked, Some(Timestamp::from_millis(3_000)));
    catalog.close().await;
    drop(catalog);

    let reopened = SqliteCatalog::open(&path).await.unwrap();
    assert_eq!(reopened.list_api_keys().await.unwrap(), vec![kept, revoked]);
}
