//! How an [`ObjectStoreSink`](super::ObjectStoreSink) writes.

use pipe_core::SinkKind;

/// The settings of an [`ObjectStoreSink`](super::ObjectStoreSink).
///
/// ```
/// use pipe_core::SinkKind;
/// use pipe_storage::ObjectStoreSinkConfig;
///
/// let config = ObjectStoreSinkConfig::new(SinkKind::S3)
///     .with_part_size(16 * 1024 * 1024)
///     .with_max_concurrency(2);
/// assert_eq!(config.part_size, 16 * 1024 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectStoreSinkConfig {
    /// What kind of place the store is (decides the `video_copied_…` event).
    pub kind: SinkKind,
    /// Bodies up to this size are sent in one request; larger ones as a multipart upload
    /// in parts of this size. Default 8 MiB. S3 needs at least 5 MiB.
    pub part_size: usize,
    /// Parts in flight at once in a multipart upload (default 4); a put buffers at most
    /// `part_size * (max_concurrency + 1)` bytes.
    pub max_concurrency: usize,
    /// Whether to store [`PutOptions::content_type`](pipe_core::PutOptions::content_type)
    /// with the object (default `true`; the local file system cannot, so
    /// [`ObjectStoreSink::local`](super::ObjectStoreSink::local) turns it off; over a
    /// store that cannot keep attributes, a put with a content type fails with
    /// `NotSupported` unless this is off).
    pub content_types: bool,
    /// The storage class new objects get, where the store has classes (S3's
    /// `STANDARD_IA`, GCS's `NEARLINE`, …); `None` leaves the store's default.
    pub storage_class: Option<String>,
}

impl ObjectStoreSinkConfig {
    /// The default settings for a store of `kind`.
    pub fn new(kind: SinkKind) -> Self {
        Self {
            kind,
            part_size: 8 * 1024 * 1024,
            max_concurrency: 4,
            content_types: true,
            storage_class: None,
        }
    }

    /// Sends bodies larger than `part_size` bytes in parts of that size (at least 1).
    #[must_use]
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size.max(1);
        self
    }

    /// Keeps at most `max_concurrency` parts in flight (at least 1).
    #[must_use]
    pub fn with_max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency.max(1);
        self
    }

    /// Gives new objects the storage class `class`.
    #[must_use]
    pub fn with_storage_class(mut self, class: impl Into<String>) -> Self {
        self.storage_class = Some(class.into());
        self
    }

    /// Stores content types with objects, or not.
    #[must_use]
    pub fn with_content_types(mut self, content_types: bool) -> Self {
        self.content_types = content_types;
        self
    }
}
