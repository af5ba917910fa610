use std::fmt::Debug;
use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{RecordingId, Spool};

/// Bytes a transcoder reads by offset: the original in a spool, a file, an object.
///
/// A transcoder never opens a path or URL of its own; it reads through this.
// `len` is async and fallible, so an `is_empty` beside it would add nothing but a second
// round trip; emptiness is `len().await? == 0`.
#[allow(clippy::len_without_is_empty)]
#[async_trait]
pub trait MediaSource: Send + Sync + Debug + 'static {
    /// The total length in bytes.
    async fn len(&self) -> io::Result<u64>;

    /// Up to `len` bytes from `offset`; fewer only at the end, none past it.
    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes>;
}

/// A recording's original in a [`Spool`], as a [`MediaSource`].
#[derive(Debug, Clone)]
pub struct SpoolSource {
    spool: Arc<dyn Spool>,
    id: RecordingId,
}

impl SpoolSource {
    /// Reads recording `id` from `spool`.
    pub fn new(spool: Arc<dyn Spool>, id: RecordingId) -> Self {
        Self { spool, id }
    }
}

#[async_trait]
impl MediaSource for SpoolSource {
    async fn len(&self) -> io::Result<u64> {
        self.spool
            .stat(&self.id)
            .await
            .map(|e| e.len)
            .map_err(io::Error::other)
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        self.spool
            .read_at(&self.id, offset, len)
            .await
            .map_err(io::Error::other)
    }
}

#[async_trait]
impl MediaSource for Bytes {
    async fn len(&self) -> io::Result<u64> {
        Ok(Bytes::len(self) as u64)
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(Bytes::len(self));
        let end = start.saturating_add(len).min(Bytes::len(self));
        Ok(self.slice(start..end))
    }
}
