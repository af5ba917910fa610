//! `pipe keys …`: API keys made and revoked from the command line, with the server
//! running or not (the catalog is an SQLite file in WAL mode, which takes a second
//! writer). This is how the first key comes to be.

use std::path::Path;

use pipe_api::auth::{MintedKey, mint_key};
use pipe_core::{ApiKey, ApiKeyId, ApiKeyStore, EnvironmentId, EnvironmentStore, Role, Timestamp};
use pipe_lifecycle::SqliteCatalog;

async fn open(data_dir: &Path) -> pipe_core::Result<SqliteCatalog> {
    crate::owner_only(data_dir).map_err(|e| pipe_core::Error::Backend {
        backend: "data directory",
        retryable: false,
        source: Box::new(e),
    })?;
    SqliteCatalog::open(data_dir.join("catalog.sqlite")).await
}

/// Makes a key with `role` (limited to `environments`, each of which must exist, unless
/// it is the default one, which the server makes on its first start) and stores its hash.
pub async fn create_key(
    data_dir: &Path,
    role: Role,
    label: &str,
    environments: Vec<EnvironmentId>,
) -> pipe_core::Result<MintedKey> {
    let catalog = open(data_dir).await?;
    for env in &environments {
        match catalog.environment(env).await {
            Ok(_) => {}
            // It is there; its sinks' secrets are sealed under the server's keys, which
            // making a key does not need.
            Err(pipe_core::Error::Integrity { .. }) => {}
            Err(e) if e.is_not_found() && env.as_str() == EnvironmentId::DEFAULT => {}
            Err(e) => return Err(e),
        }
    }
    let minted = mint_key(label, role, environments);
    catalog.create_api_key(minted.record.clone()).await?;
    catalog.close().await;
    Ok(minted)
}

/// Every key, oldest first.
pub async fn list_keys(data_dir: &Path) -> pipe_core::Result<Vec<ApiKey>> {
    let catalog = open(data_dir).await?;
    let keys = catalog.list_api_keys().await;
    catalog.close().await;
    keys
}

/// Revokes the key `id`.
pub async fn revoke_key(data_dir: &Path, id: &ApiKeyId) -> pipe_core::Result<ApiKey> {
    let catalog = open(data_dir).await?;
    let key = catalog.revoke_api_key(id, Timestamp::now()).await;
    catalog.close().await;
    key
}
