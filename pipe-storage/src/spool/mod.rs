//! [`LocalSpool`]: the [`Spool`] on a local disk.

mod locks;
mod object;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use pipe_core::{Error, RecordingId, Result, Spool, SpoolEntry};

use self::locks::RecordingLocks;
pub use self::object::ObjectSpool;
use crate::crypt::{AppendReader, AppendWriter, Crypt};
use crate::io::blocking;

/// The name of this backend in [`Error::Backend`].
const BACKEND: &str = "local-spool";
const DATA_EXT: &str = "data";
const ENCRYPTED_EXT: &str = "enc";
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
/// - `<id>.data`: the bytes, exactly as appended (a spool opened with [`LocalSpool::open`]);
/// - `<id>.enc`: the bytes encrypted in the append layout of `ENCRYPTION.md` (a spool
///   opened with [`LocalSpool::open_encrypted`]): every append is sealed and
///   `fdatasync`'d before it is acknowledged, a crash resumes at the durable end, and no
///   (key, nonce) pair is ever used twice; sealing writes the final segment, so a sealed
///   entry cut short is detected;
/// - `<id>.sealed`: an empty marker that exists once the recording is sealed.
///
/// An entry keeps the form it was created in: turning encryption on leaves entries that
/// were already arriving in plaintext readable and appendable. Other files in the
/// directory are ignored.
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
    /// Encrypts new entries when set.
    crypt: Option<Crypt>,
    /// Entries kept open between appends. Used only under the entry's lock.
    open: OpenEntries,
}

/// An entry kept open between appends, so that an append neither re-opens the file
/// (plaintext) nor re-reads its tail (encrypted). Dropped after any failure: the next
/// append opens the file again at its durable end.
#[derive(Debug)]
enum OpenEntry {
    Plain { file: File, len: u64 },
    Encrypted(Box<AppendWriter<File>>),
}

type OpenEntries = Arc<Mutex<OpenCache>>;

/// The entries kept open, each with when it was last kept.
#[derive(Debug, Default)]
struct OpenCache {
    entries: HashMap<RecordingId, (OpenEntry, u64)>,
    clock: u64,
}

impl OpenCache {
    fn take(&mut self, id: &RecordingId) -> Option<OpenEntry> {
        self.entries.remove(id).map(|(open, _)| open)
    }

    /// Keeps `open` for `id`, closing the least recently kept entry past the bound.
    fn keep(&mut self, id: RecordingId, open: OpenEntry) {
        self.clock += 1;
        self.entries.insert(id, (open, self.clock));
        if self.entries.len() > LocalSpool::OPEN_ENTRIES {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, kept))| *kept)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
    }
}

impl LocalSpool {
    /// At most this many entries are kept open between appends (one file each); past it,
    /// the entry appended to longest ago is closed, and reopened at its durable end if it
    /// is appended to again. Recordings abandoned mid-way never reach `delete`: without a
    /// bound their files would pile up until the process runs out of file descriptors.
    pub const OPEN_ENTRIES: usize = 256;

    /// Opens the spool in directory `root`, creating it (and its parents) if needed.
    ///
    /// Entries already in `root` are the spool's: their durable length is their length
    /// on disk.
    pub async fn open(root: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(root, None).await
    }

    /// Opens the spool in directory `root` like [`LocalSpool::open`], encrypting every new
    /// entry with `crypt` (see *Layout*).
    pub async fn open_encrypted(root: impl AsRef<Path>, crypt: Crypt) -> Result<Self> {
        Self::open_with(root, Some(crypt)).await
    }

    async fn open_with(root: impl AsRef<Path>, crypt: Option<Crypt>) -> Result<Self> {
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
                crypt,
                open: OpenEntries::default(),
            }),
        })
    }

    /// The directory this spool keeps its files in.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Runs `op` on the blocking pool with the entry of `id`; a `NotFound` from the file
    /// system becomes `NotFound` for the recording.
    async fn with_entry<T, F>(&self, id: &RecordingId, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Entry) -> Result<T, Failure> + Send + 'static,
    {
        let entry = Entry {
            id: id.clone(),
            files: Files::new(&self.inner.root, id),
            crypt: self.inner.crypt.clone(),
            open: Arc::clone(&self.inner.open),
        };
        match blocking(move || Ok(op(entry))).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Spool(e))) => Err(e),
            Ok(Err(Failure::Io(e))) | Err(e) => Err(io_error(e, format_args!("recording {id}"))),
        }
    }

    /// [`Self::with_entry`] holding the lock of `id` until `op` has finished, even if the
    /// caller stops waiting: the blocking write of a cancelled append must not overlap
    /// the next append.
    async fn with_locked_entry<T, F>(&self, id: &RecordingId, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Entry) -> Result<T, Failure> + Send + 'static,
    {
        let guard = self.inner.locks.lock(id).await;
        self.with_entry(id, move |entry| {
            let result = op(entry);
            drop(guard);
            result
        })
        .await
    }
}

#[async_trait]
impl Spool for LocalSpool {
    async fn create(&self, id: &RecordingId) -> Result<SpoolEntry> {
        // A new entry's data key is wrapped under the recording's key, if there are any.
        let crypt = match &self.inner.crypt {
            Some(crypt) => Some(crypt.for_recording(id).await?),
            None => None,
        };
        self.with_locked_entry(id, move |mut entry| {
            entry.crypt = crypt;
            if entry.form()?.is_some() {
                return entry.stat();
            }
            let path = match entry.crypt {
                Some(_) => &entry.files.encrypted,
                None => &entry.files.data,
            };
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)?;
            // A marker left by a delete that crashed halfway must not seal the new entry.
            remove_if_exists(&entry.files.sealed)?;
            match &entry.crypt {
                // Writes the header and syncs it.
                Some(crypt) => {
                    let writer = crypt.create_append(file)?;
                    entry.keep(OpenEntry::Encrypted(Box::new(writer)));
                }
                None => file.sync_all()?,
            }
            sync_dir(&entry.files.root)?;
            Ok(SpoolEntry::new(entry.id, 0, false))
        })
        .await
    }

    async fn append(&self, id: &RecordingId, offset: u64, data: Bytes) -> Result<u64> {
        let outcome = self
            .with_locked_entry(id, move |entry| match entry.form()? {
                None => Err(io::Error::from(ErrorKind::NotFound).into()),
                Some(Form::Plain) => entry.append_plain(offset, &data),
                Some(Form::Encrypted) => entry.append_encrypted(offset, &data),
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
        // Under the lock: an append in flight has written its bytes but not yet synced
        // them, and a client resuming from this length would drop them.
        self.with_locked_entry(id, Entry::stat).await
    }

    async fn read_at(&self, id: &RecordingId, offset: u64, len: usize) -> Result<Bytes> {
        self.with_entry(id, move |entry| match entry.form()? {
            None => Err(io::Error::from(ErrorKind::NotFound).into()),
            Some(Form::Plain) => {
                let mut file = File::open(&entry.files.data)?;
                let available = file.metadata()?.len().saturating_sub(offset);
                let len = usize::try_from(available).unwrap_or(usize::MAX).min(len);
                if len == 0 {
                    return Ok(Bytes::new());
                }
                file.seek(SeekFrom::Start(offset))?;
                let mut buf = Vec::with_capacity(len);
                file.take(len as u64).read_to_end(&mut buf)?;
                Ok(buf.into())
            }
            Some(Form::Encrypted) => {
                let sealed = entry.files.is_sealed()?;
                let reader = encrypted_reader(entry.crypt()?, &entry.files.encrypted, sealed)?;
                if offset >= reader.len() {
                    return Ok(Bytes::new());
                }
                Ok(reader.read_at(offset, len)?.into())
            }
        })
        .await
    }

    async fn seal(&self, id: &RecordingId) -> Result<SpoolEntry> {
        self.with_locked_entry(id, move |entry| {
            let Some(form) = entry.form()? else {
                return Err(io::Error::from(ErrorKind::NotFound).into());
            };
            if form == Form::Encrypted && !entry.files.is_sealed()? {
                // The final segment: a sealed entry cut short no longer reads as whole.
                entry.writer()?.finish()?;
            }
            if !entry.files.is_sealed()? {
                File::create(&entry.files.sealed)?.sync_all()?;
                sync_dir(&entry.files.root)?;
            }
            // No more appends: its file need not stay open.
            entry.take();
            entry.stat()
        })
        .await
    }

    async fn list(&self) -> Result<Vec<SpoolEntry>> {
        let root = self.inner.root.clone();
        let crypt = self.inner.crypt.clone();
        match blocking(move || Ok(list(&root, crypt.as_ref()))).await {
            Ok(Ok(entries)) => Ok(entries),
            Ok(Err(Failure::Spool(e))) => Err(e),
            Ok(Err(Failure::Io(e))) | Err(e) => Err(io_error(e, "the spool directory")),
        }
    }

    async fn delete(&self, id: &RecordingId) -> Result<()> {
        self.with_locked_entry(id, move |entry| {
            entry.take();
            // Data first: a crash in between leaves a marker without data, which `list`
            // ignores and `create` removes, rather than an unsealed entry that was deleted.
            let data = remove_if_exists(&entry.files.data)?;
            let encrypted = remove_if_exists(&entry.files.encrypted)?;
            let marker = remove_if_exists(&entry.files.sealed)?;
            if data || encrypted || marker {
                sync_dir(&entry.files.root)?;
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

/// Why blocking spool work failed: the file system, or the spool's own verdict (an
/// encrypted entry that fails to authenticate, a missing key).
enum Failure {
    Io(io::Error),
    Spool(Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Spool(e)
    }
}

/// How an entry's bytes are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `<id>.data`, plaintext.
    Plain,
    /// `<id>.enc`, the append layout.
    Encrypted,
}

/// One recording's files, with what blocking work on them needs.
struct Entry {
    id: RecordingId,
    files: Files,
    crypt: Option<Crypt>,
    open: OpenEntries,
}

impl Entry {
    /// Which form the entry is in, `None` if it does not exist.
    fn form(&self) -> io::Result<Option<Form>> {
        Ok(if self.files.encrypted.try_exists()? {
            Some(Form::Encrypted)
        } else if self.files.data.try_exists()? {
            Some(Form::Plain)
        } else {
            None
        })
    }

    fn crypt(&self) -> Result<&Crypt, Failure> {
        self.crypt.as_ref().ok_or_else(|| {
            Failure::Spool(Error::precondition(format!(
                "recording {} is encrypted and this spool was opened without keys",
                self.id
            )))
        })
    }

    fn stat(self) -> Result<SpoolEntry, Failure> {
        let sealed = self.files.is_sealed()?;
        let len = match self.form()? {
            None => return Err(io::Error::from(ErrorKind::NotFound).into()),
            Some(Form::Plain) => fs::metadata(&self.files.data)?.len(),
            Some(Form::Encrypted) => {
                encrypted_reader(self.crypt()?, &self.files.encrypted, sealed)?.len()
            }
        };
        Ok(SpoolEntry::new(self.id, len, sealed))
    }

    fn append_plain(&self, offset: u64, data: &[u8]) -> Result<Append, Failure> {
        let (mut file, len) = match self.take() {
            Some(OpenEntry::Plain { file, len }) => (file, len),
            _ => {
                let file = OpenOptions::new().append(true).open(&self.files.data)?;
                let len = file.metadata()?.len();
                (file, len)
            }
        };
        if offset > len {
            self.keep(OpenEntry::Plain { file, len });
            return Ok(Append::Gap { len });
        }
        // Only the part past the durable end is new.
        let tail = &data[skip(len, offset, data.len())..];
        if !tail.is_empty() && self.files.is_sealed()? {
            return Ok(Append::Sealed { len });
        }
        // Synced even when `tail` is empty: the bytes below `len` may be those of an
        // earlier append whose sync failed.
        let written = file.write_all(tail).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Leave no unsynced bytes behind that a later call could count as durable; if
            // even that fails, the next append's sync covers them.
            let _ = file.set_len(len).and_then(|()| file.sync_data());
            return Err(e.into());
        }
        let len = len + tail.len() as u64;
        self.keep(OpenEntry::Plain { file, len });
        Ok(Append::Done { len })
    }

    fn append_encrypted(&self, offset: u64, data: &[u8]) -> Result<Append, Failure> {
        if self.files.is_sealed()? {
            let len = encrypted_reader(self.crypt()?, &self.files.encrypted, true)?.len();
            return Ok(if offset > len {
                Append::Gap { len }
            } else if skip(len, offset, data.len()) < data.len() {
                Append::Sealed { len }
            } else {
                Append::Done { len }
            });
        }
        let mut writer = self.writer()?;
        let len = writer.durable_plaintext_len();
        if offset > len {
            self.keep(OpenEntry::Encrypted(Box::new(writer)));
            return Ok(Append::Gap { len });
        }
        // The writer seals and syncs before it returns; after a failure it is dropped, and
        // the next append re-opens the file at its durable end.
        let len = writer.append(&data[skip(len, offset, data.len())..])?;
        self.keep(OpenEntry::Encrypted(Box::new(writer)));
        Ok(Append::Done { len })
    }

    /// The open writer of this encrypted entry, or a new one resumed at its durable end.
    fn writer(&self) -> Result<AppendWriter<File>, Failure> {
        match self.take() {
            Some(OpenEntry::Encrypted(writer)) => Ok(*writer),
            _ => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&self.files.encrypted)?;
                Ok(self.crypt()?.open_append(file)?)
            }
        }
    }

    /// Takes this entry's open file or writer out of the cache.
    fn take(&self) -> Option<OpenEntry> {
        self.open.lock().expect("open entries lock").take(&self.id)
    }

    /// Keeps this entry's open file or writer for the next append.
    fn keep(&self, open: OpenEntry) {
        self.open
            .lock()
            .expect("open entries lock")
            .keep(self.id.clone(), open);
    }
}

/// How many leading bytes of a chunk of `chunk_len` at `offset` the entry (of `len` bytes)
/// already holds.
fn skip(len: u64, offset: u64, chunk_len: usize) -> usize {
    usize::try_from(len - offset)
        .unwrap_or(usize::MAX)
        .min(chunk_len)
}

/// Opens an encrypted entry for reading; a `sealed` one must end with its final segment,
/// or it was cut short.
fn encrypted_reader(
    crypt: &Crypt,
    path: &Path,
    sealed: bool,
) -> Result<AppendReader<File>, Failure> {
    let reader = crypt.read_append(File::open(path)?)?;
    Ok(if sealed {
        reader.expect_finished()?
    } else {
        reader
    })
}

/// The paths of one recording.
struct Files {
    root: PathBuf,
    data: PathBuf,
    encrypted: PathBuf,
    sealed: PathBuf,
}

impl Files {
    fn new(root: &Path, id: &RecordingId) -> Self {
        // `RecordingId` is `[A-Za-z0-9_-]{1,64}`: a plain file name, never a path.
        Self {
            root: root.to_path_buf(),
            data: root.join(format!("{id}.{DATA_EXT}")),
            encrypted: root.join(format!("{id}.{ENCRYPTED_EXT}")),
            sealed: root.join(format!("{id}.{SEALED_EXT}")),
        }
    }

    fn is_sealed(&self) -> io::Result<bool> {
        self.sealed.try_exists()
    }
}

fn list(root: &Path, crypt: Option<&Crypt>) -> Result<Vec<SpoolEntry>, Failure> {
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
            DATA_EXT => data.push((id, Form::Plain, dirent)),
            ENCRYPTED_EXT => data.push((id, Form::Encrypted, dirent)),
            SEALED_EXT => {
                sealed.insert(id);
            }
            _ => {}
        }
    }
    let mut entries = Vec::with_capacity(data.len());
    for (id, form, dirent) in data {
        let len = match form {
            Form::Plain => dirent.metadata().map(|meta| meta.len()),
            Form::Encrypted => match File::open(dirent.path()) {
                Ok(file) => {
                    let crypt = crypt.ok_or_else(|| {
                        Error::precondition(format!(
                            "recording {id} is encrypted and this spool was opened without keys"
                        ))
                    })?;
                    let reader = crypt.read_append(file)?;
                    Ok(if sealed.contains(&id) {
                        reader.expect_finished()?
                    } else {
                        reader
                    }
                    .len())
                }
                Err(e) => Err(e),
            },
        };
        let len = match len {
            Ok(len) => len,
            // Deleted since the directory was read.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
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
        kind if Error::is_permanent_io(kind) => Error::permanent(BACKEND, e),
        _ => Error::temporary(BACKEND, e),
    }
}
