//! The catalog `pipe` keeps its state in: the SQLite file in the data directory (one
//! node), or a PostgreSQL database every node shares (`PIPE_CATALOG_URL`).

use std::sync::Arc;

use pipe_core::{
    ApiKeyStore, AuditLog, Catalog, EndpointStore, EnvironmentStore, KeyProvider, RecordingKeyStore,
};
use pipe_lifecycle::{PostgresCatalog, SqliteCatalog};

use crate::Config;

/// Every store the server keeps in its catalog, from one backend.
pub trait Stores:
    Catalog + EnvironmentStore + ApiKeyStore + EndpointStore + AuditLog + RecordingKeyStore
{
}

impl<T> Stores for T where
    T: Catalog + EnvironmentStore + ApiKeyStore + EndpointStore + AuditLog + RecordingKeyStore
{
}

/// The catalog of a configuration.
#[derive(Debug, Clone)]
pub enum CatalogBackend {
    /// `<data>/catalog.sqlite`.
    Sqlite(Arc<SqliteCatalog>),
    /// The database `PIPE_CATALOG_URL` names.
    Postgres(Arc<PostgresCatalog>),
}

impl CatalogBackend {
    /// Opens the catalog `config` names, sealing its secrets under `keys` if given.
    pub async fn open(
        config: &Config,
        keys: Option<Arc<dyn KeyProvider>>,
    ) -> pipe_core::Result<Self> {
        Ok(match &config.catalog_url {
            Some(url) => {
                let mut catalog = PostgresCatalog::connect(url).await?;
                if let Some(keys) = keys {
                    catalog = catalog.seal_secrets_with(keys);
                }
                Self::Postgres(Arc::new(catalog))
            }
            None => {
                let mut catalog =
                    SqliteCatalog::open(config.data_dir.join("catalog.sqlite")).await?;
                if let Some(keys) = keys {
                    catalog = catalog.seal_secrets_with(keys);
                }
                Self::Sqlite(Arc::new(catalog))
            }
        })
    }

    /// Every store, as trait objects.
    pub fn stores(&self) -> Arc<dyn Stores> {
        match self {
            Self::Sqlite(catalog) => Arc::clone(catalog) as Arc<dyn Stores>,
            Self::Postgres(catalog) => Arc::clone(catalog) as Arc<dyn Stores>,
        }
    }

    /// The SQLite catalog, if it is one (what backups and the single-node takeover
    /// of claimed jobs need).
    pub fn sqlite(&self) -> Option<&Arc<SqliteCatalog>> {
        match self {
            Self::Sqlite(catalog) => Some(catalog),
            Self::Postgres(_) => None,
        }
    }

    /// Closes its connections.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(catalog) => catalog.close().await,
            Self::Postgres(catalog) => catalog.close().await,
        }
    }
}
