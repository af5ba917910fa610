//! [`ObjectStoreSink::s3`]: Amazon S3 and the services that speak its API, through
//! object_store's `aws` store.
//!
//! Why object_store: it signs (SigV4), retries with backoff, uploads in parts and aborts
//! failed uploads, and speaks S3, GCS and Azure behind one trait, so the verification,
//! the multipart logic and the conformance suite of [`ObjectStoreSink`] serve all three.
//! Its `aws` store rides on reqwest and rustls with aws-lc-rs, the TLS stack the rest of
//! Pipe already has.

use std::fmt;
use std::sync::Arc;

use object_store::ClientOptions;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use pipe_core::{Error, Result, SinkKind, SinkLocation};

use super::error::BACKEND;
use super::{ObjectStoreSink, ObjectStoreSinkConfig, Signed};

/// The longest a SigV4 presigned link may be valid (S3 refuses more).
const MAX_PRESIGNED: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Where and how an [`ObjectStoreSink::s3`] writes: a bucket (and folder in it) of S3 or of
/// a service that speaks its API.
///
/// ```
/// use pipe_storage::{S3Config, S3Encryption};
///
/// let config = S3Config::new("recordings", "eu-west-1")
///     .with_folder("pipe/production")
///     .with_credentials("AKIAEXAMPLE", "secret")
///     .with_storage_class("STANDARD_IA")
///     .with_encryption(S3Encryption::Aes256);
/// // Credentials never show in Debug output.
/// assert!(!format!("{config:?}").contains("secret\""));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Its region (`us-east-1` for most S3-compatible services).
    pub region: String,
    /// The service's URL, for anything but AWS (`http://127.0.0.1:9000`); `http` is
    /// allowed only when the URL says so.
    pub endpoint: Option<String>,
    /// Path-style requests (`<endpoint>/<bucket>/<key>`) rather than virtual-hosted ones
    /// (`<bucket>.<endpoint>/<key>`). Default: path style with a custom endpoint (what
    /// most compatible services expect), virtual-hosted on AWS.
    pub path_style: Option<bool>,
    /// The folder objects go under in the bucket (no leading or trailing `/`).
    pub folder: Option<String>,
    /// Access key id, secret and session token; `None` takes AWS's standard variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or the instance's
    /// role.
    pub credentials: Option<S3Credentials>,
    /// A canned ACL for new objects (`private`, `bucket-owner-full-control`, …); `None`
    /// leaves the bucket's default.
    pub acl: Option<String>,
    /// The storage class of new objects (`STANDARD_IA`, `GLACIER_IR`, …); `None` leaves
    /// the bucket's default.
    pub storage_class: Option<String>,
    /// Server-side encryption of new objects.
    pub encryption: S3Encryption,
    /// Whether the service checks each upload against its SHA-256
    /// (`x-amz-checksum-sha256`, sent with every request that carries bytes). Default on;
    /// turn it off only for a service that refuses the header.
    pub checksum: bool,
}

/// Credentials of an S3 sink; `Debug` shows the key id only.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
}

/// Server-side encryption an S3 sink asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum S3Encryption {
    /// Whatever the bucket does by default.
    #[default]
    BucketDefault,
    /// SSE-S3 (`AES256`), keys managed by the service.
    Aes256,
    /// SSE-KMS under this key id (or the account's default key when empty).
    Kms(String),
}

impl S3Config {
    /// A bucket in a region, with the defaults of every other setting.
    pub fn new(bucket: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            region: region.into(),
            endpoint: None,
            path_style: None,
            folder: None,
            credentials: None,
            acl: None,
            storage_class: None,
            encryption: S3Encryption::default(),
            checksum: true,
        }
    }

    /// Talks to the service at `endpoint` rather than AWS.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Path-style (`true`) or virtual-hosted (`false`) requests.
    #[must_use]
    pub fn with_path_style(mut self, path_style: bool) -> Self {
        self.path_style = Some(path_style);
        self
    }

    /// Puts objects under `folder` in the bucket.
    #[must_use]
    pub fn with_folder(mut self, folder: impl Into<String>) -> Self {
        self.folder = super::folder(folder.into());
        self
    }

    /// Signs with this access key.
    #[must_use]
    pub fn with_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some(S3Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        });
        self
    }

    /// Gives new objects this canned ACL.
    #[must_use]
    pub fn with_acl(mut self, acl: impl Into<String>) -> Self {
        self.acl = Some(acl.into());
        self
    }

    /// Gives new objects this storage class.
    #[must_use]
    pub fn with_storage_class(mut self, storage_class: impl Into<String>) -> Self {
        self.storage_class = Some(storage_class.into());
        self
    }

    /// Asks for this server-side encryption.
    #[must_use]
    pub fn with_encryption(mut self, encryption: S3Encryption) -> Self {
        self.encryption = encryption;
        self
    }

    /// Sends `x-amz-checksum-sha256` (default) or not.
    #[must_use]
    pub fn with_checksum(mut self, checksum: bool) -> Self {
        self.checksum = checksum;
        self
    }

    /// The bucket (under the folder, if any) as an `object_store` store, for other uses of
    /// the same settings, such as [`ObjectSpool::s3`](crate::ObjectSpool::s3).
    pub fn object_store(&self) -> Result<Arc<dyn object_store::ObjectStore>> {
        Ok(self.store()?.0)
    }

    /// The store (under the folder, if any) and the bucket itself, which signs links.
    fn store(&self) -> Result<(Arc<dyn object_store::ObjectStore>, AmazonS3)> {
        let invalid = |what: &'static str, e: &dyn fmt::Display| Error::invalid(what, e);
        if self.bucket.is_empty() {
            return Err(Error::invalid("S3 bucket", "empty"));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_retry(super::request_retries());
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let path_style = self.path_style.unwrap_or(self.endpoint.is_some());
        builder = builder.with_virtual_hosted_style_request(!path_style);
        if let Some(credentials) = &self.credentials {
            builder = builder
                .with_access_key_id(&credentials.access_key_id)
                .with_secret_access_key(&credentials.secret_access_key);
            if let Some(token) = &credentials.session_token {
                builder = builder.with_token(token);
            }
        }
        if self.checksum {
            builder = builder.with_checksum_algorithm(Checksum::SHA256);
        }
        match &self.encryption {
            S3Encryption::BucketDefault => {}
            S3Encryption::Aes256 => {
                let key: AmazonS3ConfigKey = "aws_server_side_encryption"
                    .parse()
                    .map_err(|e| invalid("S3 encryption", &e))?;
                builder = builder.with_config(key, "AES256");
            }
            S3Encryption::Kms(key_id) => builder = builder.with_sse_kms_encryption(key_id),
        }
        if let Some(acl) = &self.acl {
            let mut headers = http::HeaderMap::new();
            let value = http::HeaderValue::from_str(acl).map_err(|e| invalid("S3 ACL", &e))?;
            headers.insert("x-amz-acl", value);
            builder =
                builder.with_client_options(ClientOptions::new().with_default_headers(headers));
        }
        let bucket = builder
            .build()
            .map_err(|e| Error::permanent(BACKEND, format!("S3 bucket {}: {e}", self.bucket)))?;
        Ok((super::under(bucket.clone(), self.folder.as_deref()), bucket))
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field("folder", &self.folder)
            .field("credentials", &self.credentials)
            .field("acl", &self.acl)
            .field("storage_class", &self.storage_class)
            .field("encryption", &self.encryption)
            .field("checksum", &self.checksum)
            .finish()
    }
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ObjectStoreSink {
    /// A sink of `kind` (usually [`SinkKind::S3`]) in the bucket `config` names, with the
    /// default [`ObjectStoreSinkConfig`] (8 MiB parts; S3 needs at least 5 MiB).
    ///
    /// Nothing is sent until the first put: a wrong bucket or key shows there, as a
    /// permanent error that says so. [`StorageSink::url`](pipe_core::StorageSink::url)
    /// gives presigned GET links (SigV4, valid for the time asked, at most the 7 days S3
    /// allows), so a receiver can fetch a file from a private bucket.
    #[cfg_attr(docsrs, doc(cfg(feature = "sink-s3")))]
    pub fn s3(config: &S3Config, kind: SinkKind) -> Result<Self> {
        Self::s3_with_config(config, ObjectStoreSinkConfig::new(kind))
    }

    /// [`ObjectStoreSink::s3`] with `sink` settings; the storage class comes from
    /// `config`.
    #[cfg_attr(docsrs, doc(cfg(feature = "sink-s3")))]
    pub fn s3_with_config(config: &S3Config, sink: ObjectStoreSinkConfig) -> Result<Self> {
        let mut sink = sink;
        if let Some(class) = &config.storage_class {
            sink = sink.with_storage_class(class.clone());
        }
        let location = SinkLocation::bucket(&config.bucket)
            .with_region(&config.region)
            .with_acl(config.acl.clone())
            .with_folder(config.folder.clone());
        let (store, bucket) = config.store()?;
        let signer = Signed {
            signer: Arc::new(bucket),
            folder: config.folder.clone(),
            longest: MAX_PRESIGNED,
        };
        Ok(Self::with_config(store, sink)
            .with_location(location)
            .with_signer(signer))
    }
}
