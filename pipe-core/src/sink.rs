use std::fmt::{self, Debug};
use std::io;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use crate::{ObjectKey, Result, SinkKind};

/// A place finished files are copied to: the server's own storage, a bucket, an SFTP
/// server, Dropbox.
///
/// Nothing here assumes a filesystem: keys are [`ObjectKey`]s, bodies are streams.
///
/// # Contract
///
/// - **Whole or nothing.** After `put` returns `Ok`, `head(key)` reports the full size and
///   `get` returns exactly the bytes put; a failed or interrupted put never leaves a
///   partial object visible under `key` (an earlier complete object may remain).
/// - **Idempotent.** Putting the same key again replaces the object; deleting a missing
///   key is `Ok`.
/// - **Verified size.** `put` fails with [`crate::Error::Integrity`] if the stream's length
///   differs from [`PutBody::size`].
/// - **Ranges.** `get` with a range returns exactly those bytes (clamped at the end of the
///   object); a range starting at or past the end is [`crate::Error::Invalid`].
/// - `NotFound` for `get` and `head` of a missing key.
/// - Sinks that cannot read back (a write-only FTP drop) say so in
///   [`StorageSink::capabilities`] and return [`crate::Error::NotSupported`] from `get`
///   and `head`; their copies are verified by what `put` sent and the server confirmed.
#[async_trait]
pub trait StorageSink: Send + Sync + Debug + 'static {
    /// What kind of place this is (decides the `video_copied_…` event).
    fn kind(&self) -> SinkKind;

    /// Stores `body` under `key`.
    async fn put(&self, key: &ObjectKey, body: PutBody, options: PutOptions) -> Result<PutReceipt>;

    /// Reads an object, or a range of it.
    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult>;

    /// An object's metadata.
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta>;

    /// Removes an object.
    async fn delete(&self, key: &ObjectKey) -> Result<()>;

    /// A URL from which the object can be downloaded without credentials, valid at least
    /// for `options.expires_in`, if this sink can make one.
    async fn url(&self, key: &ObjectKey, options: UrlOptions) -> Result<Option<String>> {
        let _ = (key, options);
        Ok(None)
    }

    /// Where this sink writes, as a receiver is told (the bucket, region and ACL of
    /// `video_copied_s3`); empty where the sink has no such thing.
    fn location(&self) -> SinkLocation {
        SinkLocation::default()
    }

    /// What this sink can do besides storing and deleting: every sink can put and
    /// delete; [`SinkCapabilities::read`] says whether `get` and `head` work.
    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities::ALL
    }
}

/// What a [`StorageSink`] can do beyond `put` and `delete`, which every sink does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkCapabilities {
    /// `get` and `head` work (a write-only drop folder's do not).
    pub read: bool,
}

impl SinkCapabilities {
    /// Everything: the default.
    pub const ALL: Self = Self { read: true };
    /// Stores and deletes, never reads back.
    pub const WRITE_ONLY: Self = Self { read: false };
}

/// Where a sink writes, in the terms of the services that have them: what `video_copied_…`
/// tells a receiver so it can fetch the files itself. Never credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkLocation {
    /// The bucket (or container, or host).
    pub bucket: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// The canned ACL new objects get.
    pub acl: Option<String>,
    /// The folder in the bucket that keys are under.
    pub folder: Option<String>,
}

impl SinkLocation {
    /// A location in `bucket`.
    pub fn bucket(bucket: impl Into<String>) -> Self {
        Self {
            bucket: Some(bucket.into()),
            ..Self::default()
        }
    }

    /// In `region`.
    #[must_use]
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Objects get `acl`.
    #[must_use]
    pub fn with_acl(mut self, acl: Option<String>) -> Self {
        self.acl = acl;
        self
    }

    /// Keys are under `folder`.
    #[must_use]
    pub fn with_folder(mut self, folder: Option<String>) -> Self {
        self.folder = folder;
        self
    }
}

/// The bytes of a put: a stream and the size it must have.
pub struct PutBody {
    /// The exact number of bytes `stream` yields.
    pub size: u64,
    /// The bytes.
    pub stream: BoxStream<'static, io::Result<Bytes>>,
}

impl PutBody {
    /// A body from a stream of `size` bytes.
    pub fn new(size: u64, stream: BoxStream<'static, io::Result<Bytes>>) -> Self {
        Self { size, stream }
    }

    /// A body from bytes in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            size: bytes.len() as u64,
            stream: stream::once(async move { Ok(bytes) }).boxed(),
        }
    }
}

impl Debug for PutBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutBody")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Options of [`StorageSink::put`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// The `Content-Type` to store where the sink keeps one.
    pub content_type: Option<String>,
    /// The recording the object belongs to: a sink that encrypts wraps the object's data
    /// key under that recording's key ([`crate::RecordingKeyStore`]), so erasing the
    /// recording makes every copy of the object unreadable.
    pub recording: Option<crate::RecordingId>,
}

impl PutOptions {
    /// Stores `content_type` with the object.
    #[must_use]
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Says that the object belongs to `recording`.
    #[must_use]
    pub fn for_recording(mut self, recording: crate::RecordingId) -> Self {
        self.recording = Some(recording);
        self
    }
}

/// What a successful put stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutReceipt {
    /// Bytes stored.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes as they passed through the sink.
    pub sha256: String,
}

impl PutReceipt {
    /// A receipt.
    pub fn new(size: u64, sha256: impl Into<String>) -> Self {
        Self {
            size,
            sha256: sha256.into(),
        }
    }
}

/// Options of [`StorageSink::get`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetOptions {
    /// Only these bytes.
    pub range: Option<Range<u64>>,
}

impl GetOptions {
    /// Only the bytes in `range`.
    #[must_use]
    pub fn with_range(mut self, range: Range<u64>) -> Self {
        self.range = Some(range);
        self
    }
}

/// An object's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectMeta {
    /// Its key.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
    /// Its `Content-Type`, where the sink keeps one.
    pub content_type: Option<String>,
}

impl ObjectMeta {
    /// Metadata.
    pub fn new(key: ObjectKey, size: u64, content_type: Option<String>) -> Self {
        Self {
            key,
            size,
            content_type,
        }
    }
}

/// What [`StorageSink::get`] returns.
#[non_exhaustive]
pub struct GetResult {
    /// The whole object's metadata.
    pub meta: ObjectMeta,
    /// The range the stream yields.
    pub range: Range<u64>,
    /// The bytes of `range`.
    pub stream: BoxStream<'static, io::Result<Bytes>>,
}

impl GetResult {
    /// A result.
    pub fn new(
        meta: ObjectMeta,
        range: Range<u64>,
        stream: BoxStream<'static, io::Result<Bytes>>,
    ) -> Self {
        Self {
            meta,
            range,
            stream,
        }
    }

    /// Collects the stream into memory.
    pub async fn bytes(self) -> io::Result<Bytes> {
        let mut out = Vec::with_capacity((self.range.end - self.range.start) as usize);
        let mut stream = self.stream;
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.into())
    }
}

impl Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Options of [`StorageSink::url`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UrlOptions {
    /// How long the URL must stay valid (default 7 days).
    pub expires_in: Duration,
}

impl Default for UrlOptions {
    fn default() -> Self {
        Self {
            expires_in: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl UrlOptions {
    /// Valid for `expires_in`.
    #[must_use]
    pub fn with_expires_in(mut self, expires_in: Duration) -> Self {
        self.expires_in = expires_in;
        self
    }
}
