//! [`LocalSpool`]: the [`Spool`] on a local disk.

mod locks;

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pipe_core::{Error, RecordingId, Result, Spool, SpoolEntry};

use self::locks::RecordingLocks;
use crate::io::{blocking, is_permanent};

/// The name of this backend in [`Error::Backend`].
const BACKEND: &str = "local-spool";
const DATA_EXT: &str = "data";
const SEALED_EXT: &str = "sealed";

/// The [`Spool`] on a local disk: one append-only file per recording, each append
/// `fdatasync`'d before it returns.
///
/// Cheap to clone; clones share the directory and the per-recording locks.
///
/// # Layout
///
/// One flat directory; per recording:
///
/// - `<id>.data`: the bytes, exactly as appended;
/// - `<id>.sealed`: an empty marker that exists once the recording is sealed.
///
/// Other files in the directory are ignored.
///
/// # Durability
///
/// [`Spool::append`] writes the new tail with one `write` and makes it durable with
/// `fdatasync` before it returns the new length; creating a file (the data file or the
/// seal marker) is followed by an `fsync` of the directory, so the name survives a power
/// loss too.
///
/// After a restart, the length of `<id>.data` *is* the durable length. That file may
/// hold more than was ever acknowledged: a tail written but not yet synced when the
/// process died (or the machine lost power with the write already on disk). Keeping it is
/// correct, because every byte in the file was sent by the client at exactly that offset
/// (appends only ever add the part of a chunk past the end): the client, resuming from its
/// last acknowledged offset, re-sends those bytes, and the spool ignores the part below
/// its length. What the protocol needs is that nothing acknowledged is missing, and that
/// is what `fdatasync` before the acknowledgement gives.
///
/// The caveat is a power loss (not a process crash: the kernel still writes what a
/// killed process wrote) on a file system that can persist a larger file size before the
/// data under it: ext4 in its default `data=ordered` mode, btrfs and ZFS write the data
/// first, but XFS may expose the unsynced tail as zeros, which the rule above would then
/// keep. Guarding against that needs a checksum per append or a persisted acknowledged
/// length; neither is done yet.
///
/// Within one process, a failed write or sync truncates the file back to its last
/// durable length where it can, and an append that adds nothing still syncs, so a length
/// it reports is never one whose bytes an earlier failure left unsynced.
///
/// # Concurrency
///
/// Appends, seals, creates and deletes of one recording are serialised by a per-recording
/// async lock; different recordings proceed in parallel. Reads take no lock. All file I/O
/// runs on tokio's blocking pool, and the lock is released only when the blocking work is
/// done, so an append whose caller gave up (a dropped connection) cannot overlap the
/// client's next one. One process owns a spool directory: two processes
/// appending to the same directory are not coordinated.
#[derive(Clone, Debug)]
pub struct LocalSpool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    locks: RecordingLocks,
}

impl LocalSpool {
    /// Opens the spool in directory `root`, creating it (and its parents) if needed.
    ///
    /// Entries already in `root` are the spool's: their durable length is their length
    /// on disk.
    pub async fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let root = blocking(move || {
            fs::create_dir_all(&root)?;
            Ok(root)
        })
        .await
        .map_err(|e| io_error(e, "the spool directory"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                locks: RecordingLocks::default(),
            }),
        })
    }

    /// The directory this spool keeps its files in.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Runs `op` on the blocking pool with the paths of `id`; a `NotFound` from the file
    /// system becomes `NotFound` for the recording.
    async fn with_files<T, F>(&self, id: &RecordingId, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Files) -> io::Result<T> + Send + 'static,
    {
        let files = Files::new(&self.inner.root, id);
        blocking(move || op(files))
            .await
            .map_err(|e| io_error(e, format_args!("recording {id}")))
    }

    /// [`Self::with_files`] holding the lock of `id` until `op` has finished, even if the
    /// caller stops waiting: the blocking write of a cancelled append must not overlap
    /// the next append.
    async fn with_locked_files<T, F>(&self, id: &RecordingId, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Files) -> io::Result<T> + Send + 'static,
    {
        let guard = self.inner.locks.lock(id).await;
        self.with_files(id, move |files| {
            let result = op(files);
            drop(guard);
            result
        })
        .await
    }
}

#[async_trait]
impl Spool for LocalSpool {
    async fn create(&self, id: &RecordingId) -> Result<SpoolEntry> {
        let id2 = id.clone();
        self.with_locked_files(id, move |files| {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&files.data)
            {
                Ok(file) => {
                    // A marker left by a delete that crashed halfway must not seal the
                    // new entry.
                    remove_if_exists(&files.sealed)?;
                    file.sync_all()?;
                    sync_dir(&files.root)?;
                    Ok(SpoolEntry::new(id2, 0, false))
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => files.stat(id2),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn append(&self, id: &RecordingId, offset: u64, data: Bytes) -> Result<u64> {
        let outcome = self
            .with_locked_files(id, move |files| {
                let mut file = OpenOptions::new().append(true).open(&files.data)?;
                let len = file.metadata()?.len();
                if offset > len {
                    return Ok(Append::Gap { len });
                }
                // Only the part past the durable end is new.
                let skip = usize::try_from(len - offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let tail = &data[skip..];
                if !tail.is_empty() && files.is_sealed()? {
                    return Ok(Append::Sealed { len });
                }
                // Synced even when `tail` is empty: the bytes below `len` may be those of an
                // earlier append whose sync failed.
                let written = file.write_all(tail).and_then(|()| file.sync_data());
                if let Err(e) = written {
                    // Leave no unsynced bytes behind that a later call could count as
                    // durable; if even that fails, the next append's sync covers them.
                    let _ = file.set_len(len).and_then(|()| file.sync_data());
                    return Err(e);
                }
                Ok(Append::Done {
                    len: len + tail.len() as u64,
                })
            })
            .await?;
        match outcome {
            Append::Done { len } => Ok(len),
            Append::Gap { len } => Err(Error::precondition(format!(
                "append at offset {offset} would leave a gap: the durable length is {len}"
            ))),
            Append::Sealed { len } => Err(Error::precondition(format!(
                "recording {id} is sealed at {len} bytes"
            ))),
        }
    }

    async fn stat(&self, id: &RecordingId) -> Result<SpoolEntry> {
        let id2 = id.clone();
        self.with_files(id, move |files| files.stat(id2)).await
    }

    async fn read_at(&self, id: &RecordingId, offset: u64, len: usize) -> Result<Bytes> {
        self.with_files(id, move |files| {
            let mut file = File::open(&files.data)?;
            let available = file.metadata()?.len().saturating_sub(offset);
            let len = usize::try_from(available).unwrap_or(usize::MAX).min(len);
            if len == 0 {
                return Ok(Bytes::new());
            }
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::with_capacity(len);
            file.take(len as u64).read_to_end(&mut buf)?;
            Ok(buf.into())
        })
        .await
    }

    async fn seal(&self, id: &RecordingId) -> Result<SpoolEntry> {
        let id2 = id.clone();
        self.with_locked_files(id, move |files| {
            let len = fs::metadata(&files.data)?.len();
            if !files.is_sealed()? {
                File::create(&files.sealed)?.sync_all()?;
                sync_dir(&files.root)?;
            }
            Ok(SpoolEntry::new(id2, len, true))
        })
        .await
    }

    async fn list(&self) -> Result<Vec<SpoolEntry>> {
        let root = self.inner.root.clone();
        blocking(move || list(&root))
            .await
            .map_err(|e| io_error(e, "the spool directory"))
    }

    async fn delete(&self, id: &RecordingId) -> Result<()> {
        self.with_locked_files(id, move |files| {
            // Data first: a crash in between leaves a marker without data, which `list`
            // ignores and `create` removes, rather than an unsealed entry that was deleted.
            let data = remove_if_exists(&files.data)?;
            let marker = remove_if_exists(&files.sealed)?;
            if data || marker {
                sync_dir(&files.root)?;
            }
            Ok(())
        })
        .await
    }
}

/// What an append did, decided under the recording's lock.
enum Append {
    /// The entry is now `len` bytes long, all durable.
    Done { len: u64 },
    /// Refused: the offset is past the durable length `len`.
    Gap { len: u64 },
    /// Refused: new bytes for an entry sealed at `len`.
    Sealed { len: u64 },
}

/// The paths of one recording.
struct Files {
    root: PathBuf,
    data: PathBuf,
    sealed: PathBuf,
}

impl Files {
    fn new(root: &Path, id: &RecordingId) -> Self {
        // `RecordingId` is `[A-Za-z0-9_-]{1,64}`: a plain file name, never a path.
        Self {
            root: root.to_path_buf(),
            data: root.join(format!("{id}.{DATA_EXT}")),
            sealed: root.join(format!("{id}.{SEALED_EXT}")),
        }
    }

    fn is_sealed(&self) -> io::Result<bool> {
        self.sealed.try_exists()
    }

    fn stat(&self, id: RecordingId) -> io::Result<SpoolEntry> {
        let len = fs::metadata(&self.data)?.len();
        Ok(SpoolEntry::new(id, len, self.is_sealed()?))
    }
}

fn list(root: &Path) -> io::Result<Vec<SpoolEntry>> {
    let mut data = Vec::new();
    let mut sealed = HashSet::new();
    for dirent in fs::read_dir(root)? {
        let dirent = dirent?;
        let name = dirent.file_name();
        let Some((stem, ext)) = name.to_str().and_then(|n| n.rsplit_once('.')) else {
            continue;
        };
        let Ok(id) = stem.parse::<RecordingId>() else {
            continue;
        };
        match ext {
            DATA_EXT => data.push((id, dirent)),
            SEALED_EXT => {
                sealed.insert(id);
            }
            _ => {}
        }
    }
    let mut entries = Vec::with_capacity(data.len());
    for (id, dirent) in data {
        let len = match dirent.metadata() {
            Ok(meta) => meta.len(),
            // Deleted since the directory was read.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let is_sealed = sealed.contains(&id);
        entries.push(SpoolEntry::new(id, len, is_sealed));
    }
    Ok(entries)
}

/// Removes `path`; whether it existed.
fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes the creation, rename or removal of names in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Maps an I/O error about `what` to a [`pipe_core::Error`] a caller can act on.
fn io_error(e: io::Error, what: impl std::fmt::Display) -> Error {
    match e.kind() {
        ErrorKind::NotFound => Error::not_found(what),
        kind if is_permanent(kind) => Error::permanent(BACKEND, e),
        _ => Error::temporary(BACKEND, e),
    }
}
