use std::fmt::Debug;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{RecordingId, Result};

/// The bytes of recordings that are still arriving, kept durably so that an upload
/// can resume after a dropped connection or a crash.
///
/// # Contract
///
/// - **Durable on return.** When [`Spool::append`] returns `Ok(len)`, the first `len`
///   bytes survive a crash of the process or the machine (they were fsync'd or equivalent).
///   Only then may a server acknowledge them to a client.
/// - **Append-only at the durable end.** `append(id, offset, data)` with
///   `offset > len` is refused with [`crate::Error::Precondition`] (a gap); the part of
///   `data` below `len` is ignored, so re-sending an acknowledged range is harmless; only
///   the part past `len` is added.
/// - **Durable lengths only.** [`Spool::stat`] reports a length whose bytes are all
///   durable, also while an append to the entry is in flight (it waits for that append)
///   and after a restart, so a client can resume at it and forget what lies below.
///   [`Spool::list`] reports the durable length of every entry after a restart.
/// - **Sealed is final.** After [`Spool::seal`], appends past the end are refused with
///   `Precondition`; `seal` itself is idempotent.
/// - **Idempotent create and delete.** `create` on an existing entry returns its state;
///   `delete` of a missing entry is `Ok`.
/// - No ordering is promised between different recordings.
#[async_trait]
pub trait Spool: Send + Sync + Debug + 'static {
    /// Creates an empty entry for `id`, or returns the existing one.
    async fn create(&self, id: &RecordingId) -> Result<SpoolEntry>;

    /// Adds the part of `data` (which starts at `offset`) past the durable end; returns the
    /// new durable length.
    async fn append(&self, id: &RecordingId, offset: u64, data: Bytes) -> Result<u64>;

    /// The entry's durable length and whether it is sealed; `NotFound` if absent.
    async fn stat(&self, id: &RecordingId) -> Result<SpoolEntry>;

    /// Up to `len` bytes from `offset`; fewer only at the end.
    async fn read_at(&self, id: &RecordingId, offset: u64, len: usize) -> Result<Bytes>;

    /// Refuses further appends; returns the final entry.
    async fn seal(&self, id: &RecordingId) -> Result<SpoolEntry>;

    /// Every entry, in no particular order.
    async fn list(&self) -> Result<Vec<SpoolEntry>>;

    /// Removes the entry and its bytes.
    async fn delete(&self, id: &RecordingId) -> Result<()>;
}

/// A spool entry's state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolEntry {
    /// The recording.
    pub id: RecordingId,
    /// Bytes that are durable.
    pub len: u64,
    /// Whether appends are refused.
    pub sealed: bool,
}

impl SpoolEntry {
    /// An entry's state.
    pub fn new(id: RecordingId, len: u64, sealed: bool) -> Self {
        Self { id, len, sealed }
    }
}
