//! Encryption at rest: AES-256-GCM in fixed-size segments with STREAM nonces, one random
//! data key per object wrapped by a [`KeyProvider`]. The format is
//! specified in `pipe-storage/ENCRYPTION.md`.
//!
//! | you have | use |
//! |---|---|
//! | a whole object, or chunks of one, to write once | [`Crypt::encryptor`] → [`StreamEncryptor`], [`Crypt::decryptor`] → [`StreamDecryptor`] |
//! | a byte range to serve from a stored object | [`StreamLayout::segments_for`] → fetch [`SegmentRange::ciphertext`] → [`SegmentRange::decrypt`] |
//! | a spool file appended to and fsync'd | [`Crypt::create_append`] / [`Crypt::open_append`] → [`AppendWriter`], [`Crypt::read_append`] → [`AppendReader`] |
//! | a key to rotate or an object to shred | [`LocalKeyProvider::rotate`], [`Header::rewrap`], [`Header::shredded`] |
//!
//! ## Features
//!
//! - `cipher-aws-lc` (default): AES-256-GCM from aws-lc-rs (AWS-LC's assembly; builds C
//!   with `cc`, no cmake needed on x86-64 Linux).
//! - `cipher-rustcrypto`: AES-256-GCM from the pure-Rust `aes-gcm` crate.
//!
//! Both produce the same bytes; [`default_backend`] picks aws-lc-rs when it is compiled
//! in. One of the two features is required.
//!
//! ## What it does not do
//!
//! - It does not hide object lengths (ciphertext length is a function of plaintext length).
//! - It does not protect an unfinished append-layout file against rollback to an earlier
//!   durable state by someone who can write to it: a crash and such an attack look alike.
//! - It holds no key server: a KMS is one more [`KeyProvider`].
//!
//! ```
//! use std::sync::Arc;
//! use pipe_storage::crypt::{Crypt, LocalKeyProvider};
//!
//! # fn main() -> pipe_core::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! let keys = LocalKeyProvider::open_or_create(dir.path())?;
//! if let Some(id) = keys.generated() {
//!     println!("generated encryption key {id}: back up {:?}", keys.path());
//! }
//! let crypt = Crypt::new(Arc::new(keys));
//!
//! let mut encryptor = crypt.encryptor()?;
//! let mut object = encryptor.push(b"webm bytes ")?;
//! object.extend(encryptor.push(b"and more")?);
//! object.extend(encryptor.finish()?);
//!
//! assert_eq!(crypt.decrypt(&object)?, b"webm bytes and more");
//! # Ok(())
//! # }
//! ```

mod append;
pub mod cipher;
mod header;
mod keys;
mod layout;
mod random;
mod recording;
mod segment;
mod stream;

use std::fmt;
use std::sync::Arc;

use pipe_core::{KeyProvider, RecordingId, RecordingKeyStore, Result};

pub use append::{AppendReader, AppendWriter, ByteStore};
pub use cipher::{CipherBackend, default_backend};
pub use header::{
    DEFAULT_HEADER_LEN, DEFAULT_SEGMENT_SIZE, DataKey, FIXED_LEN, Header, Layout, MAX_HEADER_LEN,
    MAX_SEGMENT_SIZE,
};
pub use keys::{KEY_FILE, KEYS_ENV, LocalKeyProvider};
pub use layout::{SegmentRange, StreamLayout, decrypt_segments};
pub(crate) use random::fill as random_fill;
pub use recording::{Keyring, RecordingKey};
pub use segment::{MAX_COUNTER, SegmentCipher, stream_nonce};
pub use stream::{StreamDecryptor, StreamEncryptor};

/// Encryption at rest with one key provider, one cipher backend and one segment size: the
/// entry point to everything in [`crypt`](self).
#[derive(Clone)]
pub struct Crypt {
    provider: Arc<dyn KeyProvider>,
    /// Recording keys, when kept ([`Crypt::with_recording_keys`]).
    keyring: Option<Arc<Keyring>>,
    backend: Arc<dyn CipherBackend>,
    segment_size: u32,
    header_len: u16,
}

impl Crypt {
    /// Data keys wrapped by `provider`, the [`default_backend`], 64 KiB segments and
    /// 256-byte headers.
    pub fn new(provider: Arc<dyn KeyProvider>) -> Self {
        Self {
            provider,
            keyring: None,
            backend: default_backend(),
            segment_size: DEFAULT_SEGMENT_SIZE,
            header_len: DEFAULT_HEADER_LEN,
        }
    }

    /// The key-encryption keys data keys are wrapped under (to seal other secrets under
    /// the same keys, such as a catalog's webhook secrets).
    pub fn key_provider(&self) -> &Arc<dyn KeyProvider> {
        match &self.keyring {
            Some(keyring) => keyring.kek(),
            None => &self.provider,
        }
    }

    /// Gives each recording a key of its own, kept in `store` sealed under this crypt's
    /// key-encryption keys: objects made through [`for_recording`](Self::for_recording)
    /// have their data keys wrapped under it, and this crypt (and every one made from it)
    /// opens them while the store keeps the key. Erasing the recording from the store
    /// makes all of them unreadable, wherever they were copied (`ENCRYPTION.md`,
    /// "Recording keys"). Objects of no recording are still wrapped under the
    /// key-encryption keys.
    #[must_use]
    pub fn with_recording_keys(mut self, store: Arc<dyn RecordingKeyStore>) -> Self {
        let kek = match &self.keyring {
            Some(keyring) => Arc::clone(keyring.kek()),
            None => Arc::clone(&self.provider),
        };
        let keyring = Arc::new(Keyring::new(kek, store));
        self.provider = Arc::new(recording::KeyringProvider(Arc::clone(&keyring)));
        self.keyring = Some(keyring);
        self
    }

    /// The recording keys, if this crypt keeps them.
    pub fn keyring(&self) -> Option<&Arc<Keyring>> {
        self.keyring.as_ref()
    }

    /// This crypt, wrapping the data keys of new objects under the key of `recording`
    /// (made and kept on first use). Without recording keys, this crypt as it is.
    /// [`pipe_core::Error::NotFound`] if the store has no such recording, or it was
    /// erased.
    pub async fn for_recording(&self, recording: &RecordingId) -> Result<Crypt> {
        let Some(keyring) = &self.keyring else {
            return Ok(self.clone());
        };
        let key = keyring.key_for(recording).await?;
        Ok(Self {
            provider: Arc::new(key),
            ..self.clone()
        })
    }

    /// Uses `backend` for AES-256-GCM.
    #[must_use]
    pub fn with_backend(mut self, backend: Arc<dyn CipherBackend>) -> Self {
        self.backend = backend;
        self
    }

    /// Plaintext bytes per segment of new objects (1 to [`MAX_SEGMENT_SIZE`]; checked when
    /// an object is created).
    #[must_use]
    pub fn with_segment_size(mut self, segment_size: u32) -> Self {
        self.segment_size = segment_size;
        self
    }

    /// Header length of new objects: room for re-wrapping under another provider.
    #[must_use]
    pub fn with_header_len(mut self, header_len: u16) -> Self {
        self.header_len = header_len;
        self
    }

    /// The key provider.
    pub fn provider(&self) -> &dyn KeyProvider {
        self.provider.as_ref()
    }

    /// The cipher backend.
    pub fn backend(&self) -> &Arc<dyn CipherBackend> {
        &self.backend
    }

    /// A header for a new object of `layout` with a fresh data key, and that key.
    pub fn new_header(&self, layout: Layout) -> Result<(Header, DataKey)> {
        Header::create(
            self.provider.as_ref(),
            layout,
            self.segment_size,
            self.header_len,
        )
    }

    /// An encryptor for a new stream-layout object with a fresh data key.
    pub fn encryptor(&self) -> Result<StreamEncryptor> {
        let (header, key) = self.new_header(Layout::Stream)?;
        StreamEncryptor::new(self.backend.as_ref(), &header, &key)
    }

    /// A decryptor for a stream-layout object.
    pub fn decryptor(&self) -> StreamDecryptor {
        StreamDecryptor::new(self.provider.clone(), self.backend.clone())
    }

    /// Encrypts a whole object.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let (header, key) = self.new_header(Layout::Stream)?;
        let len = StreamLayout::of(&header).ciphertext_len(plaintext.len() as u64)?;
        let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let mut encryptor = StreamEncryptor::new(self.backend.as_ref(), &header, &key)?;
        encryptor.push_into(plaintext, &mut out)?;
        out.extend(encryptor.finish()?);
        Ok(out)
    }

    /// Decrypts a whole stream-layout object. [`pipe_core::Error::Integrity`] unless every
    /// byte is authentic and the object is complete.
    pub fn decrypt(&self, object: &[u8]) -> Result<Vec<u8>> {
        let mut decryptor = self.decryptor();
        let mut out = Vec::with_capacity(object.len());
        decryptor.push_into(object, &mut out)?;
        out.extend(decryptor.finish()?);
        Ok(out)
    }

    /// Unwraps the data key of the object `header` belongs to, for reading ranges of it.
    pub fn segment_cipher(&self, header: &Header) -> Result<SegmentCipher> {
        let key = header.open(self.provider.as_ref())?;
        Ok(SegmentCipher::new(self.backend.as_ref(), header, &key))
    }

    /// Starts a new append-layout file in `store`, with a fresh data key.
    pub fn create_append<S: ByteStore>(&self, store: S) -> Result<AppendWriter<S>> {
        let (header, key) = self.new_header(Layout::Append)?;
        AppendWriter::create(store, self.backend.clone(), header, key)
    }

    /// Resumes appending to an append-layout file at its durable end.
    pub fn open_append<S: ByteStore>(&self, store: S) -> Result<AppendWriter<S>> {
        AppendWriter::open(store, self.backend.clone(), self.provider.as_ref())
    }

    /// Opens an append-layout file for random-access reads.
    pub fn read_append<S: ByteStore>(&self, store: S) -> Result<AppendReader<S>> {
        AppendReader::open(store, self.backend.clone(), self.provider.as_ref())
    }

    /// Re-wraps the data key of the object whose header starts `object` under the
    /// provider's current key: returns the new header bytes, the same length as the old,
    /// to write over them. No segment changes.
    pub fn rewrap(&self, object: &[u8]) -> Result<Vec<u8>> {
        Ok(Header::parse(object)?
            .rewrap(self.provider.as_ref())?
            .to_bytes())
    }

    /// Re-wraps in place the header of the file in `store` (see [`rewrap`](Self::rewrap)),
    /// durable on return.
    pub fn rewrap_in_place(&self, store: &mut impl ByteStore) -> Result<Header> {
        let header = read_header(store)?.rewrap(self.provider.as_ref())?;
        write_header(store, &header)?;
        Ok(header)
    }

    /// Destroys in place the wrapped data key of the file in `store`, durable on return:
    /// the file is unreadable from then on, with any key.
    pub fn shred_in_place(&self, store: &mut impl ByteStore) -> Result<()> {
        let header = read_header(store)?.shredded();
        write_header(store, &header)
    }
}

impl fmt::Debug for Crypt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crypt")
            .field("provider", &self.provider)
            .field("backend", &self.backend.name())
            .field("segment_size", &self.segment_size)
            .field("header_len", &self.header_len)
            .finish()
    }
}

fn read_header(store: &impl ByteStore) -> Result<Header> {
    let mut bytes = vec![0; MAX_HEADER_LEN as usize];
    let n = store.read_at(0, &mut bytes)?;
    bytes.truncate(n);
    Header::parse(&bytes)
}

fn write_header(store: &mut impl ByteStore, header: &Header) -> Result<()> {
    store.write_at(0, &header.to_bytes())?;
    store.sync()?;
    Ok(())
}
