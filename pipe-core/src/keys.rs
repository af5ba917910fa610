//! Key-encryption keys: the contract between encryption at rest and whoever holds the keys.
//!
//! Every encrypted object has its own random data key; a [`KeyProvider`] wraps that data
//! key under one of its key-encryption keys (KEKs), named by a [`KeyId`] that is stored in
//! the object's header beside the wrapped key. Rotation adds a KEK that new objects use;
//! old objects stay readable as long as their KEK is kept. This module holds no
//! cryptography: implementations (a local key file, a cloud KMS) live elsewhere and deal
//! in opaque bytes here.

use std::fmt;

use crate::{Error, Result};

/// The name of a key-encryption key, stored in the clear in every object it protects.
///
/// 1 to 64 characters from `A-Z a-z 0-9 . _ -`, so that it fits any header, file name or
/// log line unquoted. It names a key; it is not secret.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// The longest id, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Checks `id` and wraps it; [`Error::Invalid`] if it is empty, too long or has a
    /// character outside `A-Z a-z 0-9 . _ -`.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if id.is_empty() || id.len() > Self::MAX_LEN || !id.chars().all(allowed) {
            return Err(Error::invalid(
                "key id",
                format!(
                    "{id:?}: 1 to {} characters of A-Z a-z 0-9 . _ -",
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl std::str::FromStr for KeyId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// Holds key-encryption keys and wraps and unwraps data keys with them.
///
/// Calls are synchronous, and may block: Pipe's crates make them on tokio's blocking pool
/// (the encrypting sink, the encrypted spool, the catalog's sealed secrets), never on the
/// async executor, so an implementation may wait on a remote KMS. Other callers in async
/// code should do the same (`tokio::task::spawn_blocking`).
///
/// # Contract
///
/// - [`current`](Self::current) names the key new objects are wrapped under; it changes
///   only when the provider is rotated, and a key once current stays usable for
///   [`unwrap`](Self::unwrap) until the operator deletes it.
/// - [`wrap`](Self::wrap) is authenticated encryption of `data_key` under the key `id`,
///   bound to `context` (the caller's associated data, e.g. the immutable header fields of
///   the object) and to `id` itself; it is randomized, so wrapping the same key twice gives
///   different bytes.
/// - [`unwrap`](Self::unwrap) returns the exact `data_key` given to `wrap` only for the
///   same `id` and `context` and unmodified `wrapped` bytes. Any other input fails with
///   [`Error::Integrity`]; an `id` the provider does not hold fails with
///   [`Error::NotFound`]; neither panics on any input.
/// - Key material never appears in `Debug` output, log lines or error messages; only key
///   ids do.
pub trait KeyProvider: Send + Sync + fmt::Debug + 'static {
    /// The key new objects are wrapped under.
    fn current(&self) -> Result<KeyId>;

    /// Wraps `data_key` under the key `id`, bound to `context`.
    fn wrap(&self, id: &KeyId, data_key: &[u8], context: &[u8]) -> Result<Vec<u8>>;

    /// Unwraps what [`wrap`](Self::wrap) returned for the same `id` and `context`.
    ///
    /// The caller owns the returned key bytes and should erase them when done.
    fn unwrap(&self, id: &KeyId, wrapped: &[u8], context: &[u8]) -> Result<Vec<u8>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_checked() {
        assert_eq!(
            KeyId::new("kek-2026.11_a").unwrap().as_str(),
            "kek-2026.11_a"
        );
        for bad in ["", "has space", "colon:", "é", &"x".repeat(65)] {
            assert!(
                matches!(KeyId::new(bad), Err(Error::Invalid { .. })),
                "{bad:?}"
            );
        }
        assert!(KeyId::new("x".repeat(64)).is_ok());
    }
}
