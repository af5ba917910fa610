//! The header at the start of every encrypted object: what it is, how it is cut, and its
//! data key wrapped under a key-encryption key. Byte layout in `ENCRYPTION.md`.

use std::fmt;

use pipe_core::{Error, KeyId, KeyProvider, Result};
use zeroize::Zeroizing;

use super::cipher::KEY_LEN;
use super::random;

/// The first bytes of every encrypted object.
pub const MAGIC: [u8; 8] = *b"PIPE-ENC";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Algorithm 1: AES-256-GCM segments, STREAM nonces, HKDF-SHA256 record subkeys.
pub const ALGORITHM_AES256GCM: u8 = 1;
/// Bytes of the immutable part of the header (magic to header length): the associated
/// data of every segment.
pub const FIXED_LEN: usize = 25;
/// Bytes of the nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;
/// The header length new objects get unless told otherwise: room for any key id and a
/// wrapped key of up to 160 bytes, so that a re-wrap under another provider fits in place.
pub const DEFAULT_HEADER_LEN: u16 = 256;
/// The longest header this code reads.
pub const MAX_HEADER_LEN: u16 = 4096;
/// The default plaintext bytes per segment: 64 KiB.
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// The largest segment size: 16 MiB.
pub const MAX_SEGMENT_SIZE: u32 = 16 * 1024 * 1024;

/// How the segments of an object are laid out after the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// Written once, front to back: segments sealed under the data key (sinks, uploads).
    Stream,
    /// Appended to and fsync'd, resumable after a crash: records sealed under per-record
    /// subkeys (the spool).
    Append,
}

impl Layout {
    fn to_byte(self) -> u8 {
        match self {
            Self::Stream => 1,
            Self::Append => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Stream),
            2 => Some(Self::Append),
            _ => None,
        }
    }
}

/// An object's data key: 32 random bytes, erased from memory when dropped, never printed.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self> {
        let mut key = Zeroizing::new([0; KEY_LEN]);
        random::fill(&mut key[..])?;
        Ok(Self(key))
    }

    /// A key from known bytes (known-answer tests, keys unwrapped elsewhere).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn from_unwrapped(bytes: Vec<u8>) -> Result<Self> {
        let bytes = Zeroizing::new(bytes);
        let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| Error::Integrity {
            detail: "unwrapped data key has the wrong length".into(),
        })?;
        Ok(Self(Zeroizing::new(key)))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// The parsed header of an encrypted object.
///
/// Everything before the key slot is immutable for the life of the object and is the
/// associated data of every segment; the key slot (key id and wrapped data key) can be
/// re-wrapped or shredded in place without touching a segment, because the header length
/// never changes.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    layout: Layout,
    segment_size: u32,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    header_len: u16,
    key_id: KeyId,
    /// Empty once shredded.
    wrapped_key: Vec<u8>,
}

impl Header {
    /// A header for a new object with a fresh random data key and nonce prefix, the data
    /// key wrapped under `provider`'s current key. Returns the header and the data key.
    pub fn create(
        provider: &dyn KeyProvider,
        layout: Layout,
        segment_size: u32,
        header_len: u16,
    ) -> Result<(Self, DataKey)> {
        let data_key = DataKey::generate()?;
        let mut nonce_prefix = [0; NONCE_PREFIX_LEN];
        random::fill(&mut nonce_prefix)?;
        let header = Self::create_with(
            provider,
            layout,
            segment_size,
            header_len,
            &data_key,
            nonce_prefix,
        )?;
        Ok((header, data_key))
    }

    /// Like [`create`](Self::create) with a given data key and nonce prefix: for
    /// known-answer tests only. A (data key, nonce prefix) pair must never seal two objects.
    pub fn create_with(
        provider: &dyn KeyProvider,
        layout: Layout,
        segment_size: u32,
        header_len: u16,
        data_key: &DataKey,
        nonce_prefix: [u8; NONCE_PREFIX_LEN],
    ) -> Result<Self> {
        check_segment_size(segment_size).map_err(|d| Error::invalid("segment size", d))?;
        let key_id = provider.current()?;
        let mut header = Self {
            layout,
            segment_size,
            nonce_prefix,
            header_len,
            key_id,
            wrapped_key: Vec::new(),
        };
        header.wrapped_key =
            provider.wrap(&header.key_id, data_key.expose(), &header.wrap_context())?;
        if header.slot_len() > usize::from(header_len).saturating_sub(FIXED_LEN)
            || header_len > MAX_HEADER_LEN
        {
            return Err(Error::invalid(
                "header length",
                format!(
                    "{header_len} bytes; this key id and wrapped key need {} (at most {MAX_HEADER_LEN})",
                    FIXED_LEN + header.slot_len()
                ),
            ));
        }
        Ok(header)
    }

    /// Reads the header length from the first [`FIXED_LEN`] bytes of an object, to know how
    /// many bytes [`parse`](Self::parse) needs. [`Error::Integrity`] if they are not the
    /// start of an object in this format.
    pub fn peek_len(prefix: &[u8]) -> Result<usize> {
        let fixed = prefix
            .get(..FIXED_LEN)
            .ok_or_else(|| malformed("shorter than the fixed header"))?;
        Ok(parse_fixed(fixed)?.header_len.into())
    }

    /// Parses a header from the start of `bytes` (which may continue with segments).
    /// [`Error::Integrity`] for anything that is not a well-formed header.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let fixed = parse_fixed(
            bytes
                .get(..FIXED_LEN)
                .ok_or_else(|| malformed("shorter than the fixed header"))?,
        )?;
        let slot = bytes
            .get(FIXED_LEN..usize::from(fixed.header_len))
            .ok_or_else(|| malformed("shorter than its header length"))?;
        let (&id_len, rest) = slot.split_first().ok_or_else(|| malformed("no key slot"))?;
        let id_len = usize::from(id_len);
        let id = rest.get(..id_len).ok_or_else(|| malformed("key id"))?;
        let id = std::str::from_utf8(id)
            .ok()
            .and_then(|id| KeyId::new(id).ok())
            .ok_or_else(|| malformed("key id"))?;
        let rest = &rest[id_len..];
        let wrapped_len = rest
            .get(..2)
            .ok_or_else(|| malformed("wrapped key length"))?;
        let wrapped_len = usize::from(u16::from_be_bytes([wrapped_len[0], wrapped_len[1]]));
        let rest = &rest[2..];
        let wrapped = rest
            .get(..wrapped_len)
            .ok_or_else(|| malformed("wrapped key"))?;
        if rest[wrapped_len..].iter().any(|&b| b != 0) {
            return Err(malformed("padding is not zero"));
        }
        Ok(Self {
            layout: fixed.layout,
            segment_size: fixed.segment_size,
            nonce_prefix: fixed.nonce_prefix,
            header_len: fixed.header_len,
            key_id: id,
            wrapped_key: wrapped.to_vec(),
        })
    }

    /// The header's bytes: exactly [`len`](Self::len) of them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        out.extend_from_slice(&self.immutable_bytes());
        out.push(self.key_id.as_str().len() as u8);
        out.extend_from_slice(self.key_id.as_str().as_bytes());
        out.extend_from_slice(&(self.wrapped_key.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.wrapped_key);
        out.resize(self.len(), 0);
        out
    }

    /// Unwraps the data key with `provider`. [`Error::NotFound`] if the provider lacks the
    /// key id or the object was shredded; [`Error::Integrity`] if the wrapped key or any
    /// immutable header field was changed.
    pub fn open(&self, provider: &dyn KeyProvider) -> Result<DataKey> {
        if self.is_shredded() {
            return Err(Error::not_found(
                "data key of this object (it was shredded)",
            ));
        }
        let key = provider.unwrap(&self.key_id, &self.wrapped_key, &self.wrap_context())?;
        DataKey::from_unwrapped(key)
    }

    /// The same header with the data key re-wrapped under `provider`'s current key: the
    /// new header has the same length, so it overwrites the old one in place and no segment
    /// changes. [`Error::Invalid`] if the new key id and wrapped key do not fit, or if
    /// the object's data key is under a recording key and `provider`'s current key is
    /// another: that would take the object out of reach of the recording's erasure (a
    /// recording key is rotated by sealing it again, not by re-wrapping its objects).
    pub fn rewrap(&self, provider: &dyn KeyProvider) -> Result<Self> {
        if self.key_id.recording().is_some() && provider.current()? != self.key_id {
            return Err(Error::invalid(
                "rewrap",
                format!(
                    "the data key is under the recording key {}; re-wrapping it under another \
                     key would take the object out of reach of the recording's erasure",
                    self.key_id
                ),
            ));
        }
        let data_key = self.open(provider)?;
        Self::create_with(
            provider,
            self.layout,
            self.segment_size,
            self.header_len,
            &data_key,
            self.nonce_prefix,
        )
    }

    /// The same header with the wrapped data key destroyed (zeroed): written over the old
    /// header, it makes the object unreadable for good, with any key.
    pub fn shredded(&self) -> Self {
        Self {
            wrapped_key: Vec::new(),
            ..self.clone()
        }
    }

    /// Whether the data key was shredded.
    pub fn is_shredded(&self) -> bool {
        self.wrapped_key.is_empty()
    }

    /// The header's length in bytes; segments start here.
    #[allow(clippy::len_without_is_empty)] // a header is never empty
    pub fn len(&self) -> usize {
        self.header_len.into()
    }

    /// The segment layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> u32 {
        self.segment_size
    }

    /// The random nonce prefix of this object.
    pub fn nonce_prefix(&self) -> [u8; NONCE_PREFIX_LEN] {
        self.nonce_prefix
    }

    /// The key-encryption key the data key is wrapped under.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The immutable header fields: the associated data of every segment.
    pub fn immutable_bytes(&self) -> [u8; FIXED_LEN] {
        let mut out = [0; FIXED_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8] = VERSION;
        out[9] = ALGORITHM_AES256GCM;
        out[10] = self.layout.to_byte();
        out[11] = 0;
        out[12..16].copy_from_slice(&self.segment_size.to_be_bytes());
        out[16..23].copy_from_slice(&self.nonce_prefix);
        out[23..25].copy_from_slice(&self.header_len.to_be_bytes());
        out
    }

    /// What the wrapped key is bound to: the immutable fields and the key id.
    fn wrap_context(&self) -> Vec<u8> {
        let id = self.key_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(FIXED_LEN + 1 + id.len());
        out.extend_from_slice(&self.immutable_bytes());
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out
    }

    fn slot_len(&self) -> usize {
        1 + self.key_id.as_str().len() + 2 + self.wrapped_key.len()
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("layout", &self.layout)
            .field("segment_size", &self.segment_size)
            .field("header_len", &self.header_len)
            .field("key_id", &self.key_id)
            .field("shredded", &self.is_shredded())
            .finish_non_exhaustive()
    }
}

struct Fixed {
    layout: Layout,
    segment_size: u32,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    header_len: u16,
}

fn parse_fixed(b: &[u8]) -> Result<Fixed> {
    if b[..8] != MAGIC {
        return Err(malformed("not an encrypted object (bad magic)"));
    }
    if b[8] != VERSION {
        return Err(malformed(format!("unknown version {}", b[8])));
    }
    if b[9] != ALGORITHM_AES256GCM {
        return Err(malformed(format!("unknown algorithm {}", b[9])));
    }
    let layout = Layout::from_byte(b[10]).ok_or_else(|| malformed("unknown layout"))?;
    if b[11] != 0 {
        return Err(malformed("reserved byte is not zero"));
    }
    let segment_size = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
    check_segment_size(segment_size).map_err(malformed)?;
    let mut nonce_prefix = [0; NONCE_PREFIX_LEN];
    nonce_prefix.copy_from_slice(&b[16..23]);
    let header_len = u16::from_be_bytes([b[23], b[24]]);
    if usize::from(header_len) < FIXED_LEN + 3 || header_len > MAX_HEADER_LEN {
        return Err(malformed("header length out of range"));
    }
    Ok(Fixed {
        layout,
        segment_size,
        nonce_prefix,
        header_len,
    })
}

fn check_segment_size(size: u32) -> Result<(), String> {
    if size == 0 || size > MAX_SEGMENT_SIZE {
        return Err(format!("{size}: 1 to {MAX_SEGMENT_SIZE} bytes"));
    }
    Ok(())
}

fn malformed(detail: impl fmt::Display) -> Error {
    Error::Integrity {
        detail: format!("encrypted header: {detail}"),
    }
}
