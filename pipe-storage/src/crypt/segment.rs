//! One object's data key, ready to seal and open its segments: the STREAM construction.
//!
//! Segment `i` is AES-256-GCM under the data key with the nonce
//! `prefix (7 bytes) ‖ i (u32, big-endian) ‖ last (1 byte: 1 for the final segment, else 0)`
//! and the immutable header fields as associated data. A segment moved, repeated, dropped
//! or cut fails to open, and so does the stream cut at a segment boundary (no segment
//! carries the final flag).

use std::fmt;

use pipe_core::{Error, Result};

use super::cipher::{AeadKey, CipherBackend, NONCE_LEN, TAG_LEN};
use super::header::{DataKey, FIXED_LEN, Header, NONCE_PREFIX_LEN};

/// The largest segment counter: 2^32 − 1. A counter past it is refused, never wrapped.
pub const MAX_COUNTER: u64 = u32::MAX as u64;

/// The STREAM nonce of segment `counter`. [`Error::Invalid`] past [`MAX_COUNTER`].
pub fn stream_nonce(
    prefix: &[u8; NONCE_PREFIX_LEN],
    counter: u64,
    last: bool,
) -> Result<[u8; NONCE_LEN]> {
    let counter = u32::try_from(counter).map_err(|_| {
        Error::invalid(
            "segment counter",
            format!("{counter} overflows the 32-bit counter; the object is too large"),
        )
    })?;
    let mut nonce = [0; NONCE_LEN];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    nonce[NONCE_PREFIX_LEN..NONCE_LEN - 1].copy_from_slice(&counter.to_be_bytes());
    nonce[NONCE_LEN - 1] = u8::from(last);
    Ok(nonce)
}

/// Seals and opens the segments of one object (stream layout).
pub struct SegmentCipher {
    key: Box<dyn AeadKey>,
    aad: [u8; FIXED_LEN],
    prefix: [u8; NONCE_PREFIX_LEN],
    segment_size: u32,
}

impl SegmentCipher {
    /// The cipher of the object `header` describes, under its unwrapped `data_key`.
    pub fn new(backend: &dyn CipherBackend, header: &Header, data_key: &DataKey) -> Self {
        Self {
            key: backend.key(data_key.expose()),
            aad: header.immutable_bytes(),
            prefix: header.nonce_prefix(),
            segment_size: header.segment_size(),
        }
    }

    /// Plaintext bytes per segment.
    pub fn segment_size(&self) -> usize {
        self.segment_size as usize
    }

    /// Encrypts segment `counter` in place and returns its tag.
    pub fn seal(&self, counter: u64, last: bool, in_out: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        let nonce = stream_nonce(&self.prefix, counter, last)?;
        self.key.seal_in_place(&nonce, &self.aad, in_out)
    }

    /// Checks and decrypts segment `counter` (ciphertext then tag) in place; the plaintext
    /// is the first `in_out.len() - TAG_LEN` bytes. [`Error::Integrity`] on any failure.
    pub fn open(&self, counter: u64, last: bool, in_out: &mut [u8]) -> Result<()> {
        let nonce = stream_nonce(&self.prefix, counter, last).map_err(|_| Error::Integrity {
            detail: "segment past the last possible counter".into(),
        })?;
        self.key
            .open_in_place(&nonce, &self.aad, in_out)
            .map_err(|_| Error::Integrity {
                detail: format!("segment {counter}: authentication failed"),
            })
    }
}

impl SegmentCipher {
    /// Encrypts segment `counter` into `out`, exactly `plaintext.len() + TAG_LEN` bytes.
    pub fn seal_to(
        &self,
        counter: u64,
        last: bool,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let nonce = stream_nonce(&self.prefix, counter, last)?;
        self.key.seal_to(&nonce, &self.aad, plaintext, out)
    }

    /// Checks and decrypts segment `counter` (`sealed` is ciphertext then tag) into `out`,
    /// exactly `sealed.len() - TAG_LEN` bytes. [`Error::Integrity`] on any failure, and then
    /// `out` holds nothing usable.
    pub fn open_to(&self, counter: u64, last: bool, sealed: &[u8], out: &mut [u8]) -> Result<()> {
        let nonce = stream_nonce(&self.prefix, counter, last).map_err(|_| Error::Integrity {
            detail: "segment past the last possible counter".into(),
        })?;
        self.key
            .open_to(&nonce, &self.aad, sealed, out)
            .map_err(|_| Error::Integrity {
                detail: format!("segment {counter}: authentication failed"),
            })
    }
}

impl fmt::Debug for SegmentCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentCipher")
            .field("segment_size", &self.segment_size)
            .finish_non_exhaustive()
    }
}
