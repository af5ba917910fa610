//! [`ObjectStoreSink`]: a [`StorageSink`] over any [`ObjectStore`] (the local file system
//! today; S3, GCS and Azure are a feature of `object_store` away).

#[cfg(feature = "sink-azure")]
mod azure;
mod checked;
mod config;
#[cfg(feature = "sink-dropbox")]
mod dropbox;
mod encrypted;
mod error;
#[cfg(feature = "sink-ftps")]
mod ftps;
#[cfg(feature = "sink-gcs")]
mod gcs;
#[cfg(any(feature = "sink-dropbox", feature = "sink-gcs"))]
mod http;
#[cfg(any(feature = "sink-sftp", feature = "sink-ftps"))]
mod leftovers;
#[cfg(feature = "sink-local")]
mod local;
#[cfg(feature = "sink-s3")]
mod s3;
#[cfg(feature = "sink-sftp")]
mod sftp;
#[cfg(any(
    feature = "sink-local",
    feature = "sink-s3",
    feature = "sink-sftp",
    feature = "sink-ftps",
    feature = "sink-azure",
    feature = "sink-dropbox",
    feature = "sink-gcs"
))]
pub mod url;

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, FuturesUnordered, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{
    Attribute, Attributes, GetRange, GetResultPayload, MultipartUpload, ObjectStore,
    ObjectStoreExt, PutPayload, PutPayloadMut,
};
#[cfg(feature = "sink-s3")]
use pipe_core::UrlOptions;
use pipe_core::{
    Error, GetOptions, GetResult, ObjectKey, ObjectMeta, PutBody, PutOptions, PutReceipt, Result,
    SinkKind, SinkLocation, StorageSink,
};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

#[cfg(feature = "sink-azure")]
pub use self::azure::AzureConfig;
pub(crate) use self::checked::CheckedBody;
pub use self::config::ObjectStoreSinkConfig;
#[cfg(feature = "sink-dropbox")]
pub use self::dropbox::{DropboxAuth, DropboxConfig, DropboxSink};
pub use self::encrypted::EncryptedSink;
use self::error::{BACKEND, map_error};
#[cfg(feature = "sink-ftps")]
pub use self::ftps::{FtpsConfig, FtpsSink};
#[cfg(feature = "sink-gcs")]
pub use self::gcs::{GcsAuth, GcsConfig, GcsSink};
#[cfg(feature = "sink-s3")]
pub use self::s3::{S3Config, S3Credentials, S3Encryption};
#[cfg(feature = "sink-sftp")]
pub use self::sftp::{SftpAuth, SftpConfig, SftpSink};
use crate::io::blocking;

/// Read size for objects the store hands back as local files.
const FILE_CHUNK: usize = 256 * 1024;

/// A folder in a bucket, as configs keep it: without the `/`s around it, `None` when
/// empty.
#[cfg_attr(
    not(any(feature = "sink-s3", feature = "sink-azure")),
    allow(dead_code)
)]
fn folder(folder: String) -> Option<String> {
    let folder = folder.trim_matches('/');
    (!folder.is_empty()).then(|| folder.to_owned())
}

/// `store`, its keys under `folder` if there is one.
#[cfg_attr(
    not(any(feature = "sink-s3", feature = "sink-azure")),
    allow(dead_code)
)]
fn under<S: ObjectStore>(store: S, folder: Option<&str>) -> Arc<dyn ObjectStore> {
    match folder {
        Some(folder) => Arc::new(object_store::prefix::PrefixStore::new(store, folder)),
        None => Arc::new(store),
    }
}

/// How often a cloud sink retries one HTTP request itself before its error reaches the
/// caller: a blip (a reset connection, a 503) is absorbed at once, in at most 30 s. A
/// longer outage is the job system's to retry (the copy job backs off and frees its
/// worker), not a worker's to wait out for object_store's default 3 minutes.
#[cfg(any(feature = "sink-s3", feature = "sink-azure"))]
fn request_retries() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig::default(),
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(30),
    }
}

/// A [`StorageSink`] over an [`ObjectStore`].
///
/// - **put** streams the body: bodies up to [`ObjectStoreSinkConfig::part_size`] go up
///   in one request, larger ones as a multipart upload, so memory stays bounded. The
///   bytes are counted and hashed (SHA-256) as they pass; a count that differs from
///   [`PutBody::size`] aborts the upload with [`Error::Integrity`]. An object becomes
///   visible only when complete (object_store's contract for `put` and multipart
///   uploads; on the local file system, a rename of a staged file).
///   A failed multipart upload is aborted; when the store cannot be reached (the failure
///   was an outage), the abort is retried in the background for up to 6 hours, so an
///   outage leaves no orphaned parts behind once the store is back.
/// - **get** reads ranges through the store's ranged reads.
/// - **url** is `None`: the server signs its own download URLs for this sink.
///
/// ```no_run
/// # async fn example() -> pipe_core::Result<()> {
/// use pipe_core::{ObjectKey, PutBody, PutOptions, SinkKind, StorageSink};
/// use pipe_storage::ObjectStoreSink;
///
/// let sink = ObjectStoreSink::local("/var/lib/pipe/objects", SinkKind::PipeStorage)?;
/// let key = ObjectKey::new("abc/abc.jpg")?;
/// let receipt = sink.put(&key, PutBody::from_bytes("jpeg bytes"), PutOptions::default()).await?;
/// assert_eq!(receipt.size, 10);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ObjectStoreSink {
    store: Arc<dyn ObjectStore>,
    config: ObjectStoreSinkConfig,
    /// For a store on the local file system: its root, to fsync completed objects.
    local_root: Option<PathBuf>,
    /// Where the store is, as `video_copied_…` tells it.
    location: SinkLocation,
    /// Signs download links, for stores that can.
    #[cfg(feature = "sink-s3")]
    signer: Option<Signed>,
}

#[cfg(feature = "sink-s3")]
/// What signs links to a sink's objects: the store's [`object_store::signer::Signer`] and
/// the folder its keys are under.
#[derive(Clone, Debug)]
pub(crate) struct Signed {
    pub(crate) signer: Arc<dyn object_store::signer::Signer>,
    pub(crate) folder: Option<String>,
    /// The longest the store lets a link be valid.
    pub(crate) longest: std::time::Duration,
}

impl ObjectStoreSink {
    /// A sink of `kind` over `store`, with the default [`ObjectStoreSinkConfig`].
    pub fn new(store: Arc<dyn ObjectStore>, kind: SinkKind) -> Self {
        Self::with_config(store, ObjectStoreSinkConfig::new(kind))
    }

    /// A sink over `store` with `config`.
    pub fn with_config(store: Arc<dyn ObjectStore>, config: ObjectStoreSinkConfig) -> Self {
        Self {
            store,
            config,
            local_root: None,
            location: SinkLocation::default(),
            #[cfg(feature = "sink-s3")]
            signer: None,
        }
    }

    /// The same sink, giving download links that `signer` signs.
    #[cfg(feature = "sink-s3")]
    pub(crate) fn with_signer(mut self, signer: Signed) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The same sink, telling receivers it writes to `location`.
    #[must_use]
    pub fn with_location(mut self, location: SinkLocation) -> Self {
        self.location = location;
        self
    }

    /// The settings of this sink.
    pub fn config(&self) -> &ObjectStoreSinkConfig {
        &self.config
    }

    fn attributes(&self, options: &PutOptions) -> Attributes {
        let mut attributes = Attributes::new();
        if let Some(content_type) = options
            .content_type
            .as_ref()
            .filter(|_| self.config.content_types)
        {
            attributes.insert(Attribute::ContentType, content_type.clone().into());
        }
        if let Some(class) = &self.config.storage_class {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        attributes
    }

    /// Sends a body of at most `part_size` bytes in one request.
    async fn put_whole(
        &self,
        key: &ObjectKey,
        path: &StorePath,
        body: &mut CheckedBody,
        options: &PutOptions,
    ) -> Result<()> {
        let mut payload = PutPayloadMut::new();
        while let Some(chunk) = body.next().await? {
            payload.push(chunk);
        }
        body.finish()?;
        let options = object_store::PutOptions {
            attributes: self.attributes(options),
            ..Default::default()
        };
        self.store
            .put_opts(path, payload.freeze(), options)
            .await
            .map_err(|e| map_error(e, key, "put"))?;
        Ok(())
    }

    /// Streams a body as a multipart upload in parts of exactly `part_size` bytes (the
    /// last shorter), at most `max_concurrency` in flight. Any failure aborts the upload;
    /// an abort the store cannot take now (it is down: the very failure that stopped the
    /// put) is retried in the background until it takes, so an outage leaves no
    /// orphaned upload (S3 keeps, and bills, the parts of one until it is aborted).
    async fn put_parts(
        &self,
        key: &ObjectKey,
        path: &StorePath,
        body: &mut CheckedBody,
        options: &PutOptions,
    ) -> Result<()> {
        let options = object_store::PutMultipartOptions {
            attributes: self.attributes(options),
            ..Default::default()
        };
        let mut upload = self
            .store
            .put_multipart_opts(path, options)
            .await
            .map_err(|e| map_error(e, key, "put"))?;
        let part_size = self.config.part_size;
        let mut in_flight = FuturesUnordered::new();
        let mut buffered = Parts::default();
        let sent = async {
            while let Some(chunk) = body.next().await? {
                buffered.push(chunk);
                while let Some(part) = buffered.take(part_size) {
                    while in_flight.len() >= self.config.max_concurrency {
                        let done: Option<object_store::Result<()>> = in_flight.next().await;
                        done.transpose().map_err(|e| map_error(e, key, "put"))?;
                    }
                    in_flight.push(upload.put_part(part));
                }
            }
            body.finish()?;
            if let Some(last) = buffered.rest() {
                in_flight.push(upload.put_part(last));
            }
            while let Some(done) = in_flight.next().await {
                done.map_err(|e| map_error(e, key, "put"))?;
            }
            upload
                .complete()
                .await
                .map_err(|e| map_error(e, key, "put"))?;
            Ok(())
        }
        .await;
        if sent.is_err() {
            drop(in_flight);
            abort_soon(upload, key.clone()).await;
        }
        sent
    }

    /// On the local file system, makes a completed object durable.
    async fn sync_local(&self, path: &StorePath) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let file = path
            .parts()
            .fold(root.clone(), |file, part| file.join(part.as_ref()));
        blocking(move || {
            std::fs::File::open(&file)?.sync_all()?;
            let dir = file.parent().expect("an object has a directory");
            std::fs::File::open(dir)?.sync_all()
        })
        .await
        .map_err(|e| Error::temporary(BACKEND, e))
    }

    /// On the local file system, removes the directories a deleted object leaves empty
    /// (up to the root, never the root): a directory named after a recording is a trace of
    /// it too.
    async fn prune_local(&self, path: &StorePath) -> Result<()> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let file = path
            .parts()
            .fold(root.clone(), |file, part| file.join(part.as_ref()));
        blocking(move || {
            let mut dir = file.parent();
            while let Some(d) = dir.filter(|d| d.starts_with(&root) && *d != root) {
                match std::fs::remove_dir(d) {
                    Ok(()) => dir = d.parent(),
                    // Not empty (another object lives there), or gone already: done.
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::NotFound
                        ) =>
                    {
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::temporary(BACKEND, e))
    }

    /// Makes sense of a failed ranged get: a range past the end is the caller's mistake.
    async fn ranged_get_error(
        &self,
        key: &ObjectKey,
        range: Option<&Range<u64>>,
        e: object_store::Error,
    ) -> Error {
        let e = map_error(e, key, "get");
        let Some(range) = range else { return e };
        if e.is_not_found() {
            return e;
        }
        match self.head(key).await {
            Ok(meta) if range.start >= meta.size => range_past_end(range, meta.size),
            _ => e,
        }
    }
}

#[async_trait]
impl StorageSink for ObjectStoreSink {
    fn kind(&self) -> SinkKind {
        self.config.kind
    }

    fn location(&self) -> SinkLocation {
        self.location.clone()
    }

    #[cfg(feature = "sink-s3")]
    async fn url(&self, key: &ObjectKey, options: UrlOptions) -> Result<Option<String>> {
        let Some(signed) = &self.signer else {
            return Ok(None);
        };
        let path = match &signed.folder {
            Some(folder) => StorePath::from(format!("{folder}/{}", key.as_str())),
            None => store_path(key)?,
        };
        let url = signed
            .signer
            .signed_url(
                object_store::signer::Method::GET,
                &path,
                options.expires_in.min(signed.longest),
            )
            .await
            .map_err(|e| map_error(e, key, "url"))?;
        Ok(Some(url.to_string()))
    }

    async fn put(&self, key: &ObjectKey, body: PutBody, options: PutOptions) -> Result<PutReceipt> {
        let path = store_path(key)?;
        let size = body.size;
        let mut body = CheckedBody::new(body);
        if size <= self.config.part_size as u64 {
            self.put_whole(key, &path, &mut body, &options).await?;
        } else {
            self.put_parts(key, &path, &mut body, &options).await?;
        }
        self.sync_local(&path).await?;
        Ok(body.receipt())
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        let path = store_path(key)?;
        if let Some(range) = &options.range
            && range.start >= range.end
        {
            return Err(Error::invalid("range", format!("{range:?} holds no bytes")));
        }
        let request = object_store::GetOptions {
            range: options.range.clone().map(GetRange::Bounded),
            ..Default::default()
        };
        let result = match self.store.get_opts(&path, request).await {
            Ok(result) => result,
            Err(e) => return Err(self.ranged_get_error(key, options.range.as_ref(), e).await),
        };
        let meta = ObjectMeta::new(
            key.clone(),
            result.meta.size,
            content_type(&result.attributes),
        );
        let range = result.range.clone();
        let stream = match result.payload {
            GetResultPayload::File(file, _) => file_stream(file, range.clone()),
            GetResultPayload::Stream(stream) => stream.map_err(io::Error::from).boxed(),
        };
        Ok(GetResult::new(meta, range, stream))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let path = store_path(key)?;
        let request = object_store::GetOptions {
            head: true,
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&path, request)
            .await
            .map_err(|e| map_error(e, key, "head"))?;
        Ok(ObjectMeta::new(
            key.clone(),
            result.meta.size,
            content_type(&result.attributes),
        ))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let path = store_path(key)?;
        match self
            .store
            .delete(&path)
            .await
            .map_err(|e| map_error(e, key, "delete"))
        {
            Err(e) if !e.is_not_found() => Err(e),
            _ => self.prune_local(&path).await,
        }
    }
}

/// Bytes of a multipart upload waiting to make up a part.
#[derive(Default)]
struct Parts {
    chunks: std::collections::VecDeque<Bytes>,
    len: usize,
}

impl Parts {
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// Exactly `size` bytes, if that many are waiting.
    fn take(&mut self, size: usize) -> Option<PutPayload> {
        if self.len < size {
            return None;
        }
        let mut part = Vec::new();
        let mut wanted = size;
        while let Some(chunk) = self.chunks.front_mut().filter(|_| wanted > 0) {
            if chunk.len() <= wanted {
                wanted -= chunk.len();
                part.extend(self.chunks.pop_front());
            } else {
                part.push(chunk.split_to(wanted));
                wanted = 0;
            }
        }
        self.len -= size;
        Some(part.into_iter().collect())
    }

    /// Whatever is left, if anything.
    fn rest(&mut self) -> Option<PutPayload> {
        (self.len > 0).then(|| {
            self.len = 0;
            std::mem::take(&mut self.chunks).into_iter().collect()
        })
    }
}

/// How long a failed multipart upload's abort is retried in the background: longer than
/// any outage the copy's own retries outlast.
const ABORT_FOR: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Aborts `upload` now, or, if the store cannot take it, in a task that retries with
/// backoff (1 s doubling to 1 min) for up to [`ABORT_FOR`].
async fn abort_soon(mut upload: Box<dyn MultipartUpload>, key: ObjectKey) {
    let first = match upload.abort().await {
        Ok(()) => return,
        Err(e) => e,
    };
    tracing::warn!(%key, error = %first, "aborting a failed multipart upload failed; retrying in the background");
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut wait = std::time::Duration::from_secs(1);
        loop {
            tokio::time::sleep(wait).await;
            match upload.abort().await {
                Ok(()) => {
                    tracing::info!(%key, "aborted the failed multipart upload");
                    return;
                }
                Err(e) if started.elapsed() >= ABORT_FOR => {
                    tracing::error!(%key, error = %e, "gave up aborting a failed multipart upload: its parts stay in the bucket until a lifecycle rule removes them");
                    return;
                }
                Err(_) => wait = (wait * 2).min(std::time::Duration::from_secs(60)),
            }
        }
    });
}

/// The store's path of `key`./// The store's path of `key`. [`ObjectKey`]'s alphabet is a subset of what object_store
/// accepts, so this fails only if the two ever disagree.
fn store_path(key: &ObjectKey) -> Result<StorePath> {
    StorePath::parse(key.as_str()).map_err(|e| Error::invalid("object key", e))
}

fn content_type(attributes: &Attributes) -> Option<String> {
    attributes
        .get(&Attribute::ContentType)
        .map(|value| value.to_string())
}

pub(super) fn range_past_end(range: &Range<u64>, size: u64) -> Error {
    Error::invalid(
        "range",
        format!("{range:?} starts at or past the end of a {size}-byte object"),
    )
}

/// Streams `range` of a file the store opened, in large reads on tokio's blocking pool.
fn file_stream(file: std::fs::File, range: Range<u64>) -> BoxStream<'static, io::Result<Bytes>> {
    stream::once(async move {
        let mut file = tokio::fs::File::from_std(file);
        file.seek(io::SeekFrom::Start(range.start)).await?;
        io::Result::Ok(ReaderStream::with_capacity(
            file.take(range.end - range.start),
            FILE_CHUNK,
        ))
    })
    .try_flatten()
    .boxed()
}
