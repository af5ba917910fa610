//! The append layout: an encrypted file that grows by appends, each one durable before it
//! is acknowledged, and that resumes after a crash at its durable end without ever
//! sealing two plaintexts under one (key, nonce). Design and byte layout in
//! `ENCRYPTION.md`, "Append layout".
//!
//! After the header come fixed-size slots. Slot `i` is segment `i`'s home; the slot after
//! it is the "alternate" where segment `i`'s partial tail may also live. Every record in a
//! slot is sealed under its own subkey, HKDF-SHA256 of the data key and a fresh random
//! salt stored in the record, so a record torn by a crash and then written again with
//! other bytes never shares a key with it.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use hkdf::Hkdf;
use pipe_core::{Error, KeyProvider, Result};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::cipher::{CipherBackend, KEY_LEN, TAG_LEN};
use super::header::{DataKey, FIXED_LEN, Header, Layout};
use super::random;
use super::segment::{MAX_COUNTER, stream_nonce};

/// Bytes of a record's salt.
pub const SALT_LEN: usize = 16;
/// Bytes before a record's ciphertext: salt, kind, plaintext length.
pub const RECORD_HEADER_LEN: usize = SALT_LEN + 1 + 4;
/// HKDF `info` prefix of record subkeys (followed by the immutable header fields).
const SUBKEY_INFO: &[u8] = b"pipe-enc v1 append record";

/// A file-like store of bytes the append layout writes through: positioned reads and
/// writes, a durability barrier, and truncation. Implemented for [`File`] and, for tests
/// and in-memory use, `Vec<u8>`.
pub trait ByteStore {
    /// The current length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes all of `data` at `offset`, growing the store if needed.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Makes every write so far durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the store to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl ByteStore for File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match FileExt::read_at(self, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.write_all_at(data, offset)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

impl ByteStore for Vec<u8> {
    fn size(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(<[u8]>::len(self));
        let n = buf.len().min(<[u8]>::len(self) - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let end = start + data.len();
        if end > <[u8]>::len(self) {
            self.resize(end, 0);
        }
        self[start..end].copy_from_slice(data);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        Vec::truncate(self, usize::try_from(len).unwrap_or(usize::MAX));
        Ok(())
    }
}

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A complete segment (segment-size bytes) or a durable partial tail (fewer).
    Open = 0,
    /// The object's final segment: it was finished, nothing follows.
    Final = 1,
}

/// A record read back and authenticated.
struct Record {
    kind: Kind,
    plaintext: Zeroizing<Vec<u8>>,
    /// The sealed bytes as stored, to copy them to another slot without sealing again.
    sealed: Vec<u8>,
}

/// Which of segment `k`'s two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Home,
    Alternate,
}

impl Slot {
    fn other(self) -> Self {
        match self {
            Self::Home => Self::Alternate,
            Self::Alternate => Self::Home,
        }
    }
}

/// Seals and opens append-layout records of one object.
struct RecordCipher {
    backend: Arc<dyn CipherBackend>,
    data_key: DataKey,
    aad: [u8; FIXED_LEN],
    prefix: [u8; 7],
    segment_size: usize,
    header_len: u64,
}

impl RecordCipher {
    fn new(backend: Arc<dyn CipherBackend>, header: &Header, data_key: DataKey) -> Self {
        Self {
            backend,
            data_key,
            aad: header.immutable_bytes(),
            prefix: header.nonce_prefix(),
            segment_size: header.segment_size() as usize,
            header_len: header.len() as u64,
        }
    }

    /// Bytes of one slot: the largest record.
    fn slot_len(&self) -> u64 {
        (RECORD_HEADER_LEN + self.segment_size + TAG_LEN) as u64
    }

    /// Where slot `i` starts.
    fn slot_offset(&self, i: u64) -> u64 {
        self.header_len + i * self.slot_len()
    }

    /// Where segment `k`'s `slot` starts.
    fn offset(&self, k: u64, slot: Slot) -> u64 {
        match slot {
            Slot::Home => self.slot_offset(k),
            Slot::Alternate => self.slot_offset(k + 1),
        }
    }

    fn subkey(&self, salt: &[u8; SALT_LEN]) -> Zeroizing<[u8; KEY_LEN]> {
        let mut key = Zeroizing::new([0; KEY_LEN]);
        let hkdf = Hkdf::<Sha256>::new(Some(salt), self.data_key.expose());
        let mut info = Vec::with_capacity(SUBKEY_INFO.len() + FIXED_LEN);
        info.extend_from_slice(SUBKEY_INFO);
        info.extend_from_slice(&self.aad);
        hkdf.expand(&info, &mut key[..])
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }

    fn record_aad(&self, kind: Kind, len: u32) -> [u8; FIXED_LEN + 5] {
        let mut aad = [0; FIXED_LEN + 5];
        aad[..FIXED_LEN].copy_from_slice(&self.aad);
        aad[FIXED_LEN] = kind as u8;
        aad[FIXED_LEN + 1..].copy_from_slice(&len.to_be_bytes());
        aad
    }

    /// Seals `plaintext` as segment `k`'s record under a fresh salt.
    fn seal(&self, k: u64, kind: Kind, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut salt = [0; SALT_LEN];
        random::fill(&mut salt)?;
        let len = plaintext.len() as u32;
        let nonce = stream_nonce(&self.prefix, k, kind == Kind::Final)?;
        let mut out = Vec::with_capacity(RECORD_HEADER_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&salt);
        out.push(kind as u8);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(plaintext);
        let key = self.backend.key(&self.subkey(&salt));
        let tag = key.seal_in_place(
            &nonce,
            &self.record_aad(kind, len),
            &mut out[RECORD_HEADER_LEN..],
        )?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Reads and authenticates segment `k`'s record in `slot`; `None` if the slot holds
    /// anything else (nothing, a torn write, another segment's record).
    fn read(&self, store: &impl ByteStore, k: u64, slot: Slot) -> Result<Option<Record>> {
        let offset = self.offset(k, slot);
        let mut head = [0; RECORD_HEADER_LEN];
        if store.read_at(offset, &mut head).map_err(io_error)? < RECORD_HEADER_LEN {
            return Ok(None);
        }
        let kind = match head[SALT_LEN] {
            0 => Kind::Open,
            1 => Kind::Final,
            _ => return Ok(None),
        };
        let len = u32::from_be_bytes(head[SALT_LEN + 1..].try_into().expect("4 bytes"));
        let fits = match kind {
            Kind::Open => len as usize <= self.segment_size,
            Kind::Final => (len as usize) < self.segment_size,
        };
        let Ok(nonce) = stream_nonce(&self.prefix, k, kind == Kind::Final) else {
            return Ok(None);
        };
        if !fits {
            return Ok(None);
        }
        let mut sealed = vec![0; RECORD_HEADER_LEN + len as usize + TAG_LEN];
        if store.read_at(offset, &mut sealed).map_err(io_error)? < sealed.len() {
            return Ok(None);
        }
        let salt: [u8; SALT_LEN] = head[..SALT_LEN].try_into().expect("16 bytes");
        let key = self.backend.key(&self.subkey(&salt));
        let mut body = Zeroizing::new(sealed[RECORD_HEADER_LEN..].to_vec());
        if key
            .open_in_place(&nonce, &self.record_aad(kind, len), &mut body)
            .is_err()
        {
            return Ok(None);
        }
        body.truncate(len as usize);
        Ok(Some(Record {
            kind,
            plaintext: body,
            sealed,
        }))
    }

    /// Segment `i` read as a complete segment, [`Error::Integrity`] otherwise.
    fn read_full(&self, store: &impl ByteStore, i: u64) -> Result<Zeroizing<Vec<u8>>> {
        match self.read(store, i, Slot::Home)? {
            Some(r) if r.kind == Kind::Open && r.plaintext.len() == self.segment_size => {
                Ok(r.plaintext)
            }
            _ => Err(Error::Integrity {
                detail: format!("encrypted append file: segment {i} is missing or corrupt"),
            }),
        }
    }
}

/// The durable state found in a store: complete segments and the tail after them.
struct Recovered {
    /// Segments `0..complete` are complete in their home slots.
    complete: u64,
    /// The best record of segment `complete`, and the slot it is in.
    tail: Option<(Slot, Record)>,
}

/// Finds the durable end of an append-layout store. Only the last few slots are read:
/// segments become durable in order, so the first incomplete one is near the end.
fn recover(cipher: &RecordCipher, store: &impl ByteStore) -> Result<Recovered> {
    let len = store.size().map_err(io_error)?;
    let body = len.saturating_sub(cipher.header_len);
    let highest = body / cipher.slot_len();
    // At most two slots (home and alternate of the first incomplete segment) and one torn
    // write extend past the last complete segment.
    let mut complete = None;
    for k in (highest.saturating_sub(3)..=highest).rev() {
        if k == 0
            || cipher
                .read(store, k - 1, Slot::Home)?
                .is_some_and(|r| r.kind == Kind::Open && r.plaintext.len() == cipher.segment_size)
        {
            complete = Some(k);
            break;
        }
    }
    let complete = complete.ok_or_else(|| Error::Integrity {
        detail: "encrypted append file: no durable end found (corrupt or not this format)".into(),
    })?;
    // A record of a later segment proves this one was complete once: it was damaged.
    for slot in [Slot::Home, Slot::Alternate] {
        if cipher.read(store, complete + 1, slot)?.is_some() {
            return Err(Error::Integrity {
                detail: format!("encrypted append file: segment {complete} is damaged"),
            });
        }
    }
    let mut tail: Option<(Slot, Record)> = None;
    for slot in [Slot::Home, Slot::Alternate] {
        let Some(record) = cipher.read(store, complete, slot)? else {
            continue;
        };
        let better = match &tail {
            None => true,
            Some((_, best)) => {
                (record.plaintext.len(), record.kind as u8)
                    > (best.plaintext.len(), best.kind as u8)
            }
        };
        if better {
            tail = Some((slot, record));
        }
    }
    Ok(Recovered { complete, tail })
}

fn open_cipher(
    backend: Arc<dyn CipherBackend>,
    provider: &dyn KeyProvider,
    store: &impl ByteStore,
) -> Result<(Header, RecordCipher)> {
    let mut fixed = [0; FIXED_LEN];
    if store.read_at(0, &mut fixed).map_err(io_error)? < FIXED_LEN {
        return Err(Error::Integrity {
            detail: "encrypted append file: shorter than its header".into(),
        });
    }
    let mut bytes = vec![0; Header::peek_len(&fixed)?];
    if store.read_at(0, &mut bytes).map_err(io_error)? < bytes.len() {
        return Err(Error::Integrity {
            detail: "encrypted append file: shorter than its header".into(),
        });
    }
    let header = Header::parse(&bytes)?;
    if header.layout() != Layout::Append {
        return Err(Error::invalid("encrypted file", "not of the append layout"));
    }
    let data_key = header.open(provider)?;
    let cipher = RecordCipher::new(backend, &header, data_key);
    Ok((header, cipher))
}

/// Appends to an encrypted append-layout file, each append durable before it returns.
///
/// Complete segments are sealed once into their home slot. The partial tail of the
/// segment being filled is sealed anew (fresh salt, fresh subkey) on every append and
/// written to whichever of its two slots does not hold the last durable tail, so a torn
/// write never destroys acknowledged bytes. See `ENCRYPTION.md` for the full argument.
pub struct AppendWriter<S: ByteStore> {
    store: S,
    header: Header,
    cipher: RecordCipher,
    /// Segments `0..complete` are durable in their home slots.
    complete: u64,
    /// Plaintext of segment `complete` (shorter than a segment).
    tail: Zeroizing<Vec<u8>>,
    /// How much of `tail` is durable, and in which slot.
    durable_tail: Option<(Slot, usize)>,
    finished: bool,
    /// Set when a write failed: memory and disk may disagree until the file is reopened.
    failed: bool,
}

impl<S: ByteStore> AppendWriter<S> {
    /// Starts a new file in `store` (which should be empty: it is truncated) with `header`
    /// (of the append layout) and its `data_key`; the header is durable on return.
    pub fn create(
        mut store: S,
        backend: Arc<dyn CipherBackend>,
        header: Header,
        data_key: DataKey,
    ) -> Result<Self> {
        if header.layout() != Layout::Append {
            return Err(Error::invalid("header", "not of the append layout"));
        }
        store.truncate(0).map_err(io_error)?;
        store.write_at(0, &header.to_bytes()).map_err(io_error)?;
        store.sync().map_err(io_error)?;
        let cipher = RecordCipher::new(backend, &header, data_key);
        Ok(Self {
            store,
            header,
            cipher,
            complete: 0,
            tail: Zeroizing::new(Vec::new()),
            durable_tail: None,
            finished: false,
            failed: false,
        })
    }

    /// Resumes a file after a restart or crash, at its durable end: bytes a crash cut off
    /// are gone; everything that was durable is kept. A segment whose completion was cut
    /// short is completed from its durable copy first (copied, not sealed again).
    pub fn open(
        mut store: S,
        backend: Arc<dyn CipherBackend>,
        provider: &dyn KeyProvider,
    ) -> Result<Self> {
        let (header, cipher) = open_cipher(backend, provider, &store)?;
        let Recovered { mut complete, tail } = recover(&cipher, &store)?;
        let mut finished = false;
        let mut durable_tail = None;
        let mut plain = Zeroizing::new(Vec::new());
        if let Some((slot, record)) = tail {
            let full = record.plaintext.len() == cipher.segment_size;
            if slot == Slot::Alternate && (full || record.kind == Kind::Final) {
                // The durable copy made before the home slot was (re)written: redo the copy.
                store
                    .write_at(cipher.offset(complete, Slot::Home), &record.sealed)
                    .map_err(io_error)?;
                store.sync().map_err(io_error)?;
            }
            if record.kind == Kind::Final {
                finished = true;
                let end = cipher.offset(complete, Slot::Home) + record.sealed.len() as u64;
                if store.size().map_err(io_error)? != end {
                    store.truncate(end).map_err(io_error)?;
                    store.sync().map_err(io_error)?;
                }
                plain = record.plaintext;
            } else if full {
                complete += 1;
            } else {
                durable_tail = Some((slot, record.plaintext.len()));
                plain = record.plaintext;
            }
        }
        Ok(Self {
            store,
            header,
            cipher,
            complete,
            tail: plain,
            durable_tail,
            finished,
            failed: false,
        })
    }

    /// Appends `plaintext` and makes it durable; returns the durable plaintext length.
    /// [`Error::Precondition`] once finished, or after a failed call (open the file again
    /// to resume at its durable end); [`Error::Invalid`] past the largest object.
    pub fn append(&mut self, plaintext: &[u8]) -> Result<u64> {
        self.check_usable()?;
        let result = self.append_inner(plaintext);
        self.failed = result.is_err();
        result
    }

    fn check_usable(&self) -> Result<()> {
        if self.finished {
            return Err(Error::precondition("the encrypted file is finished"));
        }
        if self.failed {
            return Err(Error::precondition(
                "an earlier append failed: open the file again to resume",
            ));
        }
        Ok(())
    }

    fn append_inner(&mut self, mut plaintext: &[u8]) -> Result<u64> {
        if plaintext.is_empty() {
            return Ok(self.durable_plaintext_len());
        }
        let size = self.cipher.segment_size;
        while !plaintext.is_empty() {
            let take = plaintext.len().min(size - self.tail.len());
            self.tail.extend_from_slice(&plaintext[..take]);
            plaintext = &plaintext[take..];
            if self.tail.len() == size {
                self.complete_segment()?;
            }
        }
        if !self.tail.is_empty() {
            let slot = self
                .durable_tail
                .map_or(Slot::Home, |(slot, _)| slot.other());
            let record = self.cipher.seal(self.complete, Kind::Open, &self.tail)?;
            self.write(self.complete, slot, &record)?;
            self.store.sync().map_err(io_error)?;
            self.durable_tail = Some((slot, self.tail.len()));
        }
        Ok(self.durable_plaintext_len())
    }

    /// Seals the final segment: the file is complete and takes no more appends. Returns
    /// the store. Idempotent on a file that is finished already.
    pub fn finish(mut self) -> Result<S> {
        if self.failed {
            return Err(Error::precondition(
                "an earlier append failed: open the file again to resume",
            ));
        }
        if !self.finished {
            let record = self.cipher.seal(self.complete, Kind::Final, &self.tail)?;
            // The home slot may hold the last durable tail: never overwrite it before a
            // durable copy of what replaces it exists.
            if let Some((Slot::Home, _)) = self.durable_tail {
                self.write(self.complete, Slot::Alternate, &record)?;
                self.store.sync().map_err(io_error)?;
            }
            self.write(self.complete, Slot::Home, &record)?;
            self.store.sync().map_err(io_error)?;
            let end = self.cipher.offset(self.complete, Slot::Home) + record.len() as u64;
            self.store.truncate(end).map_err(io_error)?;
            self.store.sync().map_err(io_error)?;
            self.finished = true;
        }
        Ok(self.store)
    }

    /// Plaintext bytes that are durable: what a restart would find.
    pub fn durable_plaintext_len(&self) -> u64 {
        let tail = if self.finished {
            self.tail.len()
        } else {
            self.durable_tail.map_or(0, |(_, len)| len)
        };
        self.complete * self.cipher.segment_size as u64 + tail as u64
    }

    /// Whether [`finish`](Self::finish) sealed the file.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The underlying store, e.g. to drop the writer without finishing.
    pub fn into_inner(self) -> S {
        self.store
    }

    fn complete_segment(&mut self) -> Result<()> {
        // Segment `complete + 1` must exist for the final segment after this one.
        if self.complete + 1 > MAX_COUNTER {
            return Err(Error::invalid(
                "plaintext length",
                "the file needs more than 2^32 segments",
            ));
        }
        let record = self.cipher.seal(self.complete, Kind::Open, &self.tail)?;
        if let Some((Slot::Home, _)) = self.durable_tail {
            self.write(self.complete, Slot::Alternate, &record)?;
            self.store.sync().map_err(io_error)?;
        }
        self.write(self.complete, Slot::Home, &record)?;
        // In order: the next segment's slots overlap this one's alternate slot.
        self.store.sync().map_err(io_error)?;
        self.complete += 1;
        self.tail.clear();
        self.durable_tail = None;
        Ok(())
    }

    fn write(&mut self, k: u64, slot: Slot, record: &[u8]) -> Result<()> {
        let offset = self.cipher.offset(k, slot);
        self.store.write_at(offset, record).map_err(io_error)
    }
}

impl<S: ByteStore> fmt::Debug for AppendWriter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppendWriter")
            .field("header", &self.header)
            .field("durable_plaintext_len", &self.durable_plaintext_len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// Reads an append-layout file at any offset, decrypting only the segments a read needs.
/// It sees the file as it was durable when opened.
pub struct AppendReader<S: ByteStore> {
    store: S,
    header: Header,
    cipher: RecordCipher,
    complete: u64,
    tail: Zeroizing<Vec<u8>>,
    finished: bool,
}

impl<S: ByteStore> AppendReader<S> {
    /// Opens `store`, unwrapping its data key with `provider`, and finds its durable end.
    pub fn open(
        store: S,
        backend: Arc<dyn CipherBackend>,
        provider: &dyn KeyProvider,
    ) -> Result<Self> {
        let (header, cipher) = open_cipher(backend, provider, &store)?;
        let Recovered { complete, tail } = recover(&cipher, &store)?;
        let (complete, tail, finished) = match tail {
            Some((_, r)) if r.kind == Kind::Final => (complete, r.plaintext, true),
            // A partial tail, or a complete segment whose copy home was cut short: served
            // from the record found.
            Some((_, r)) => (complete, r.plaintext, false),
            None => (complete, Zeroizing::new(Vec::new()), false),
        };
        Ok(Self {
            store,
            header,
            cipher,
            complete,
            tail,
            finished,
        })
    }

    /// The plaintext length.
    pub fn len(&self) -> u64 {
        self.complete * self.cipher.segment_size as u64 + self.tail.len() as u64
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the file was finished (sealed with its final segment).
    ///
    /// An unfinished file whose last records were damaged cannot be told from one whose
    /// writer crashed: it reads as an earlier durable state. A caller that knows the file
    /// was finished uses [`expect_finished`](Self::expect_finished).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// `self` if the file was finished, [`Error::Integrity`] otherwise (for files the
    /// caller knows were finished: a missing final segment means truncation or damage).
    pub fn expect_finished(self) -> Result<Self> {
        if self.finished {
            Ok(self)
        } else {
            Err(Error::Integrity {
                detail: "encrypted append file: the final segment is missing".into(),
            })
        }
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Up to `len` plaintext bytes from `offset` (fewer at the end). [`Error::Integrity`]
    /// if a segment it needs fails to authenticate; [`Error::Invalid`] past the end.
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let total = self.len();
        if offset > total {
            return Err(Error::invalid(
                "offset",
                format!("{offset} is past the end ({total})"),
            ));
        }
        let end = offset.saturating_add(len as u64).min(total);
        let size = self.cipher.segment_size as u64;
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut pos = offset;
        while pos < end {
            let i = pos / size;
            let within = (pos - i * size) as usize;
            let want = ((end - pos) as usize).min(size as usize - within);
            if i < self.complete {
                let segment = self.cipher.read_full(&self.store, i)?;
                out.extend_from_slice(&segment[within..within + want]);
            } else {
                out.extend_from_slice(&self.tail[within..within + want]);
            }
            pos += want as u64;
        }
        Ok(out)
    }
}

impl<S: ByteStore> fmt::Debug for AppendReader<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppendReader")
            .field("header", &self.header)
            .field("len", &self.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

fn io_error(e: io::Error) -> Error {
    Error::from(e)
}
