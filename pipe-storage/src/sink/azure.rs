//! [`ObjectStoreSink::azure`]: Azure Blob Storage, through object_store's `azure` store
//! (the same verification, block-blob uploads in parts and conformance suite as every
//! [`ObjectStoreSink`]).

use std::fmt;
use std::sync::Arc;

use object_store::azure::MicrosoftAzureBuilder;
use pipe_core::{Error, Result, SinkKind, SinkLocation};

use super::error::BACKEND;
use super::{ObjectStoreSink, ObjectStoreSinkConfig};

/// Where and how an [`ObjectStoreSink::azure`] writes: a container (and folder in it) of
/// an Azure storage account.
///
/// ```
/// use pipe_storage::AzureConfig;
///
/// let config = AzureConfig::new("pipeaccount", "recordings")
///     .with_access_key("c2VjcmV0")
///     .with_folder("production");
/// assert!(!format!("{config:?}").contains("c2VjcmV0"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AzureConfig {
    /// The storage account.
    pub account: String,
    /// The container.
    pub container: String,
    /// The folder objects go under (no leading or trailing `/`).
    pub folder: Option<String>,
    /// The account's access key (base64); `None` takes Azure's usual variables
    /// (`AZURE_STORAGE_ACCESS_KEY`, a client secret, a managed identity).
    pub access_key: Option<String>,
    /// Another address than `https://<account>.blob.core.windows.net` (an emulator,
    /// `http://127.0.0.1:10000/<account>`); `http` is allowed when it says so.
    pub endpoint: Option<String>,
}

impl AzureConfig {
    /// A container of an account, with the defaults of every other setting.
    pub fn new(account: impl Into<String>, container: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            container: container.into(),
            folder: None,
            access_key: None,
            endpoint: None,
        }
    }

    /// Puts objects under `folder` in the container.
    #[must_use]
    pub fn with_folder(mut self, folder: impl Into<String>) -> Self {
        self.folder = super::folder(folder.into());
        self
    }

    /// Signs with the account's access key.
    #[must_use]
    pub fn with_access_key(mut self, access_key: impl Into<String>) -> Self {
        self.access_key = Some(access_key.into());
        self
    }

    /// Talks to `endpoint` rather than Azure.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    fn store(&self) -> Result<Arc<dyn object_store::ObjectStore>> {
        if self.account.is_empty() || self.container.is_empty() {
            return Err(Error::invalid(
                "Azure container",
                "account and container are needed",
            ));
        }
        let mut builder = MicrosoftAzureBuilder::from_env()
            .with_account(&self.account)
            .with_container_name(&self.container)
            .with_retry(super::request_retries());
        if let Some(key) = &self.access_key {
            builder = builder.with_access_key(key);
        }
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint.clone())
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let container = builder.build().map_err(|e| {
            Error::permanent(BACKEND, format!("Azure container {}: {e}", self.container))
        })?;
        Ok(super::under(container, self.folder.as_deref()))
    }
}

impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureConfig")
            .field("account", &self.account)
            .field("container", &self.container)
            .field("folder", &self.folder)
            .field(
                "access_key",
                &self.access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl ObjectStoreSink {
    /// A sink of `kind` (usually [`SinkKind::Azure`]) in the container `config` names,
    /// with the default [`ObjectStoreSinkConfig`]. Nothing is sent until the first put.
    #[cfg_attr(docsrs, doc(cfg(feature = "sink-azure")))]
    pub fn azure(config: &AzureConfig, kind: SinkKind) -> Result<Self> {
        Self::azure_with_config(config, ObjectStoreSinkConfig::new(kind))
    }

    /// [`ObjectStoreSink::azure`] with `sink` settings.
    #[cfg_attr(docsrs, doc(cfg(feature = "sink-azure")))]
    pub fn azure_with_config(config: &AzureConfig, sink: ObjectStoreSinkConfig) -> Result<Self> {
        let location = SinkLocation::bucket(&config.container).with_folder(config.folder.clone());
        Ok(Self::with_config(config.store()?, sink).with_location(location))
    }
}
