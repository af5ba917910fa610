//! [`ObjectSpool`]: the [`Spool`] in an object store that every node shares, so that a
//! recording in progress resumes on any node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use pipe_core::{Error, RecordingId, Result, Spool, SpoolEntry};

use super::locks::RecordingLocks;
use crate::crypt::Crypt;

const BACKEND: &str = "object spool";

/// Entries whose chunk list a node keeps between calls; past it the list is forgotten
/// (and read again from the store when next needed).
const KNOWN_ENTRIES: usize = 4096;

/// A [`Spool`] whose entries live in an object store (S3 and the services that speak its
/// API, Azure Blob, GCS, through `object_store`): the store, not a node's disk, holds every
/// acknowledged byte, so when a node dies the client resumes through any other node at the
/// durable offset, and any node can read the original to process it.
///
/// # Layout
///
/// Under `spool/<recording id>/`: `entry` (made by `create`), one object per append,
/// `c-<offset>-<length>` (20 and 10 digits), holding the bytes the append added at that
/// plaintext offset, and `sealed` once sealed. An append is one `PUT`: durable when the
/// store acknowledges it (every S3-compatible service writes it durably first), and only
/// then acknowledged to the client. The durable length is where the chunks, from offset
/// 0, stop being contiguous; a node keeps each entry's chunk list and reads it from the
/// store again when it may be stale (`stat`, a gap, a read past what it knows).
///
/// Chunk names carry their offset and length, so no append ever replaces another: if two
/// nodes ever appended to one recording at once (a client moving between nodes while an
/// append to the first is in flight), both chunks are kept, and every node reads the
/// same bytes from them: at each offset, the chunk that starts earliest, then the longest.
///
/// With [`ObjectSpool::encrypted`], each chunk is one object of `ENCRYPTION.md`'s stream
/// layout, under its recording's key when the crypt keeps recording keys; names and
/// lengths stay plaintext offsets.
///
/// A local directory (`object_store`'s file system) works for tests, but its puts are not
/// fsync'd: on one machine, use [`LocalSpool`](super::LocalSpool).
#[derive(Debug, Clone)]
pub struct ObjectSpool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    crypt: Option<Crypt>,
    locks: RecordingLocks,
    known: Mutex<HashMap<RecordingId, Index>>,
}

/// What a node knows of an entry: its chunks in reading order, its durable length and
/// whether it is sealed.
#[derive(Debug, Clone, Default)]
struct Index {
    chunks: Vec<Chunk>,
    len: u64,
    sealed: bool,
}

#[derive(Debug, Clone)]
struct Chunk {
    offset: u64,
    len: u64,
}

impl Chunk {
    fn end(&self) -> u64 {
        self.offset + self.len
    }
}

impl Index {
    /// The index of the chunks listed (in any order), as every node reads them.
    fn of(mut chunks: Vec<Chunk>, sealed: bool) -> Self {
        chunks.sort_by(|a, b| a.offset.cmp(&b.offset).then(b.len.cmp(&a.len)));
        let mut index = Index {
            sealed,
            ..Index::default()
        };
        for chunk in chunks {
            if chunk.offset > index.len {
                break;
            }
            if chunk.end() > index.len {
                index.len = chunk.end();
                index.chunks.push(chunk);
            }
        }
        index
    }
}

impl ObjectSpool {
    /// The spool in `store` (give it a bucket, or a folder of one, for the spool alone).
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self::with(store, None)
    }

    /// [`ObjectSpool::new`], encrypting every chunk with `crypt`.
    pub fn encrypted(store: Arc<dyn ObjectStore>, crypt: Crypt) -> Self {
        Self::with(store, Some(crypt))
    }

    /// The spool in the S3 bucket (and folder) `config` names.
    #[cfg(feature = "sink-s3")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sink-s3")))]
    pub fn s3(config: &crate::S3Config, crypt: Option<Crypt>) -> Result<Self> {
        Ok(Self::with(config.object_store()?, crypt))
    }

    fn with(store: Arc<dyn ObjectStore>, crypt: Option<Crypt>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                crypt,
                locks: RecordingLocks::default(),
                known: Mutex::default(),
            }),
        }
    }

    fn dir(id: &RecordingId) -> StorePath {
        StorePath::from(format!("spool/{id}"))
    }

    fn object(id: &RecordingId, name: &str) -> StorePath {
        Self::dir(id).join(name)
    }

    fn chunk_name(offset: u64, len: u64) -> String {
        format!("c-{offset:020}-{len:010}")
    }

    /// Reads the entry's objects from the store: `None` if it has none.
    async fn load(&self, id: &RecordingId) -> Result<Option<Index>> {
        let listed: Vec<object_store::ObjectMeta> = self
            .inner
            .store
            .list(Some(&Self::dir(id)))
            .try_collect()
            .await
            .map_err(store_error)?;
        if listed.is_empty() {
            self.forget(id);
            return Ok(None);
        }
        let mut chunks = Vec::new();
        let mut sealed = false;
        for meta in &listed {
            let name = meta.location.filename().unwrap_or_default();
            if name == "sealed" {
                sealed = true;
            } else if let Some(chunk) = parse_chunk(name) {
                chunks.push(chunk);
            }
        }
        let index = Index::of(chunks, sealed);
        self.remember(id, index.clone());
        Ok(Some(index))
    }

    /// What this node knows of the entry, or what the store says.
    async fn known_or_load(&self, id: &RecordingId) -> Result<Index> {
        if let Some(index) = self.known(id) {
            return Ok(index);
        }
        self.load(id)
            .await?
            .ok_or_else(|| Error::not_found(format_args!("recording {id}")))
    }

    fn known(&self, id: &RecordingId) -> Option<Index> {
        self.inner
            .known
            .lock()
            .expect("not poisoned")
            .get(id)
            .cloned()
    }

    fn remember(&self, id: &RecordingId, index: Index) {
        let mut known = self.inner.known.lock().expect("not poisoned");
        if known.len() >= KNOWN_ENTRIES && !known.contains_key(id) {
            known.clear();
        }
        known.insert(id.clone(), index);
    }

    fn forget(&self, id: &RecordingId) {
        self.inner.known.lock().expect("not poisoned").remove(id);
    }

    async fn put(&self, path: &StorePath, bytes: Bytes) -> Result<()> {
        self.inner
            .store
            .put(path, PutPayload::from_bytes(bytes))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// The stored form of the chunk `data` of `id`.
    async fn seal_chunk(&self, id: &RecordingId, data: Bytes) -> Result<Bytes> {
        let Some(crypt) = &self.inner.crypt else {
            return Ok(data);
        };
        let crypt = crypt.for_recording(id).await?;
        blocking(move || crypt.encrypt(&data).map(Bytes::from)).await
    }

    /// The plaintext of the stored chunk at `offset..end` of `id`, of which `range`.
    async fn read_chunk(
        &self,
        id: &RecordingId,
        chunk: &Chunk,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes> {
        let path = Self::object(id, &Self::chunk_name(chunk.offset, chunk.len));
        let Some(crypt) = self.inner.crypt.clone() else {
            return self
                .inner
                .store
                .get_range(&path, range)
                .await
                .map_err(store_error);
        };
        let stored = self
            .inner
            .store
            .get(&path)
            .await
            .map_err(store_error)?
            .bytes()
            .await
            .map_err(store_error)?;
        let plain = blocking(move || crypt.decrypt(&stored)).await?;
        let (start, end) = (range.start as usize, range.end as usize);
        if end > plain.len() {
            return Err(Error::Integrity {
                detail: format!("a chunk of recording {id} is shorter than its name says"),
            });
        }
        Ok(Bytes::copy_from_slice(&plain[start..end]))
    }
}

#[async_trait]
impl Spool for ObjectSpool {
    async fn create(&self, id: &RecordingId) -> Result<SpoolEntry> {
        let _guard = self.inner.locks.lock(id).await;
        if let Some(index) = self.load(id).await? {
            return Ok(SpoolEntry::new(id.clone(), index.len, index.sealed));
        }
        self.put(&Self::object(id, "entry"), Bytes::new()).await?;
        self.remember(id, Index::default());
        Ok(SpoolEntry::new(id.clone(), 0, false))
    }

    async fn append(&self, id: &RecordingId, offset: u64, data: Bytes) -> Result<u64> {
        let _guard = self.inner.locks.lock(id).await;
        let mut index = self.known_or_load(id).await?;
        if offset > index.len || index.sealed {
            // Another node may have appended since: the store says.
            index = self.load(id).await?.unwrap_or_default();
        }
        if offset > index.len {
            return Err(Error::precondition(format!(
                "append at offset {offset} would leave a gap: the durable length is {}",
                index.len
            )));
        }
        let skip = usize::try_from(index.len - offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let tail = data.slice(skip..);
        if tail.is_empty() {
            return Ok(index.len);
        }
        if index.sealed {
            return Err(Error::precondition(format!(
                "recording {id} is sealed at {} bytes",
                index.len
            )));
        }
        let chunk = Chunk {
            offset: index.len,
            len: tail.len() as u64,
        };
        let stored = self.seal_chunk(id, tail).await?;
        let path = Self::object(id, &Self::chunk_name(chunk.offset, chunk.len));
        self.put(&path, stored).await?;
        index.len = chunk.end();
        index.chunks.push(chunk);
        let len = index.len;
        self.remember(id, index);
        Ok(len)
    }

    async fn stat(&self, id: &RecordingId) -> Result<SpoolEntry> {
        // Under the lock, so an append of this node in flight is in; from the store, so
        // are those of other nodes.
        let _guard = self.inner.locks.lock(id).await;
        let index = self
            .load(id)
            .await?
            .ok_or_else(|| Error::not_found(format_args!("recording {id}")))?;
        Ok(SpoolEntry::new(id.clone(), index.len, index.sealed))
    }

    async fn read_at(&self, id: &RecordingId, offset: u64, len: usize) -> Result<Bytes> {
        let mut index = self.known_or_load(id).await?;
        let want = offset.saturating_add(len as u64);
        if want > index.len && !index.sealed {
            index = self
                .load(id)
                .await?
                .ok_or_else(|| Error::not_found(format_args!("recording {id}")))?;
        }
        let end = want.min(index.len);
        let mut out = BytesMut::new();
        let mut at = offset;
        // Each chunk serves from where the one before it ends.
        let mut covered = 0;
        for chunk in &index.chunks {
            let (from, to) = (covered.max(chunk.offset), chunk.end());
            covered = to;
            if to <= at || at >= end {
                continue;
            }
            let start = at.max(from);
            let stop = end.min(to);
            let piece = self
                .read_chunk(id, chunk, start - chunk.offset..stop - chunk.offset)
                .await?;
            out.extend_from_slice(&piece);
            at = stop;
        }
        Ok(out.freeze())
    }

    async fn seal(&self, id: &RecordingId) -> Result<SpoolEntry> {
        let _guard = self.inner.locks.lock(id).await;
        let mut index = self
            .load(id)
            .await?
            .ok_or_else(|| Error::not_found(format_args!("recording {id}")))?;
        if !index.sealed {
            self.put(
                &Self::object(id, "sealed"),
                Bytes::from(index.len.to_string()),
            )
            .await?;
            index.sealed = true;
            self.remember(id, index.clone());
        }
        Ok(SpoolEntry::new(id.clone(), index.len, true))
    }

    async fn list(&self) -> Result<Vec<SpoolEntry>> {
        let listed = self
            .inner
            .store
            .list_with_delimiter(Some(&StorePath::from("spool")))
            .await
            .map_err(store_error)?;
        let mut entries = Vec::with_capacity(listed.common_prefixes.len());
        for prefix in listed.common_prefixes {
            let Some(id) = prefix
                .filename()
                .and_then(|name| name.parse::<RecordingId>().ok())
            else {
                continue;
            };
            if let Some(index) = self.load(&id).await? {
                entries.push(SpoolEntry::new(id, index.len, index.sealed));
            }
        }
        Ok(entries)
    }

    async fn delete(&self, id: &RecordingId) -> Result<()> {
        let _guard = self.inner.locks.lock(id).await;
        self.forget(id);
        let store = &self.inner.store;
        let listed = store
            .list(Some(&Self::dir(id)))
            .map_ok(|meta| meta.location)
            .boxed();
        store
            .delete_stream(listed)
            .try_for_each(|_| async { Ok(()) })
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(()),
                e => Err(store_error(e)),
            })
    }
}

fn parse_chunk(name: &str) -> Option<Chunk> {
    let (offset, len) = name.strip_prefix("c-")?.split_once('-')?;
    Some(Chunk {
        offset: offset.parse().ok()?,
        len: len.parse().ok()?,
    })
}

fn store_error(e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { path, .. } => Error::not_found(path),
        object_store::Error::Precondition { path, source }
        | object_store::Error::AlreadyExists { path, source } => {
            Error::precondition(format!("{path}: {source}"))
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. }
        | object_store::Error::InvalidPath { .. } => Error::permanent(BACKEND, e),
        e => Error::temporary(BACKEND, e),
    }
}

async fn blocking<T: Send + 'static>(op: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(op)
        .await
        .map_err(|e| Error::temporary("key provider", e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: u64, len: u64) -> Chunk {
        Chunk { offset, len }
    }

    /// Every node reads the same bytes from the same chunks, listed in any order: the
    /// earliest chunk, then the longest, serves each offset; nothing past a gap counts.
    #[test]
    fn the_index_is_the_same_whatever_the_listing_order() {
        let listed = vec![
            chunk(10, 5),
            chunk(0, 10),
            chunk(10, 20),
            chunk(25, 1),
            chunk(40, 3),
        ];
        let mut reversed = listed.clone();
        reversed.reverse();
        for chunks in [listed, reversed] {
            let index = Index::of(chunks, false);
            let got: Vec<(u64, u64)> = index.chunks.iter().map(|c| (c.offset, c.len)).collect();
            assert_eq!(got, vec![(0, 10), (10, 20)]);
            assert_eq!(index.len, 30);
        }
        assert_eq!(
            parse_chunk("c-00000000000000000042-0000000007").map(|c| (c.offset, c.len)),
            Some((42, 7))
        );
        assert!(parse_chunk("entry").is_none());
    }
}
