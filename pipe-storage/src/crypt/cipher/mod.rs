//! AES-256-GCM behind one small trait, so that the format code never names a crypto crate.
//!
//! Two backends implement it and produce identical bytes (the tests check that):
//! `AwsLc` (feature `cipher-aws-lc`, the default) and `RustCrypto` (feature
//! `cipher-rustcrypto`, pure Rust). [`default_backend`] picks the fastest one compiled in.

use std::fmt;
use std::sync::Arc;

use pipe_core::{Error, Result};

#[cfg(feature = "cipher-aws-lc")]
mod aws_lc;
#[cfg(feature = "cipher-rustcrypto")]
mod rustcrypto;

#[cfg(feature = "cipher-aws-lc")]
pub use aws_lc::AwsLc;
#[cfg(feature = "cipher-rustcrypto")]
pub use rustcrypto::RustCrypto;

/// Bytes in an AES-256 key.
pub const KEY_LEN: usize = 32;
/// Bytes in a GCM nonce.
pub const NONCE_LEN: usize = 12;
/// Bytes in a GCM authentication tag.
pub const TAG_LEN: usize = 16;

/// Makes keyed AES-256-GCM instances: one implementation of AES-256-GCM.
///
/// # Contract
///
/// An implementation is standard AES-256-GCM (NIST SP 800-38D) with 96-bit nonces and
/// 128-bit tags, so that every backend produces the same bytes for the same key, nonce,
/// associated data and plaintext.
pub trait CipherBackend: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and benchmarks, e.g. `aws-lc-rs`.
    fn name(&self) -> &'static str;

    /// AES-256-GCM under `key`.
    fn key(&self, key: &[u8; KEY_LEN]) -> Box<dyn AeadKey>;
}

/// AES-256-GCM under one key.
///
/// # Contract
///
/// [`open_in_place`](Self::open_in_place) writes no plaintext the caller may use unless the
/// tag verifies: on error the buffer's contents are unspecified and must be discarded.
pub trait AeadKey: Send + Sync {
    /// Encrypts `in_out` in place and returns the tag. The caller never passes the same
    /// nonce twice for one key.
    fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN]>;

    /// Checks and decrypts `in_out`, which is ciphertext followed by the tag; on success
    /// the plaintext is `in_out[..in_out.len() - TAG_LEN]`. [`Error::Integrity`] if the tag
    /// does not verify or `in_out` is shorter than a tag.
    fn open_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> Result<()>;

    /// Encrypts `plaintext` into `out`, exactly `plaintext.len() + TAG_LEN` bytes:
    /// ciphertext then tag. The default copies and seals in place; a backend with an
    /// out-of-place primitive saves the copy.
    fn seal_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let (data, tag) = out.split_at_mut(plaintext.len());
        data.copy_from_slice(plaintext);
        tag.copy_from_slice(&self.seal_in_place(nonce, aad, data)?);
        Ok(())
    }

    /// Checks and decrypts `sealed` (ciphertext then tag) into `out`, which is exactly
    /// `sealed.len() - TAG_LEN` bytes; on error `out` holds nothing usable. The default
    /// copies and opens in place; a backend with an out-of-place primitive saves the copy.
    fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let mut buf = sealed.to_vec();
        self.open_in_place(nonce, aad, &mut buf)?;
        out.copy_from_slice(&buf[..out.len()]);
        Ok(())
    }
}

/// The fastest backend compiled in: `AwsLc` when the `cipher-aws-lc` feature is on,
/// otherwise `RustCrypto`.
pub fn default_backend() -> Arc<dyn CipherBackend> {
    #[cfg(feature = "cipher-aws-lc")]
    return Arc::new(AwsLc);
    #[cfg(not(feature = "cipher-aws-lc"))]
    return Arc::new(RustCrypto);
}

/// Every backend compiled in, the default first (for tests and benchmarks).
pub fn all_backends() -> Vec<Arc<dyn CipherBackend>> {
    vec![
        #[cfg(feature = "cipher-aws-lc")]
        Arc::new(AwsLc),
        #[cfg(feature = "cipher-rustcrypto")]
        Arc::new(RustCrypto),
    ]
}

/// The error of a tag that does not verify. Says nothing else, on purpose.
pub(crate) fn unauthentic(what: &str) -> Error {
    Error::Integrity {
        detail: format!("{what}: authentication failed"),
    }
}

/// The error of a plaintext too long for one GCM invocation.
pub(crate) fn too_long() -> Error {
    Error::invalid("plaintext", "too long for one AES-GCM invocation")
}
