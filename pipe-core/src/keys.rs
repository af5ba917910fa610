//! Key-encryption keys: the contract between encryption at rest and whoever holds the keys.
//!
//! Every encrypted object has its own random data key; a [`KeyProvider`] wraps that data
//! key under one of its key-encryption keys (KEKs), named by a [`KeyId`] that is stored in
//! the object's header beside the wrapped key. Rotation adds a KEK that new objects use;
//! old objects stay readable as long as their KEK is kept. This module holds no
//! cryptography: implementations (a local key file, a cloud KMS) live elsewhere and deal
//! in opaque bytes here.

use std::fmt;

use async_trait::async_trait;

use crate::{Error, RecordingId, Result};

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

    /// The prefix of the ids of [recording keys](RecordingKeyStore): `r.` and the
    /// recording's id.
    pub const RECORDING_PREFIX: &'static str = "r.";

    /// The id of the key of `recording` (see [`RecordingKeyStore`]): `r.<recording id>`.
    /// [`Error::Invalid`] for a recording id longer than 62 characters, which leaves no
    /// room for the prefix (generated ids have 26).
    pub fn for_recording(recording: &RecordingId) -> Result<Self> {
        Self::new(format!("{}{recording}", Self::RECORDING_PREFIX))
    }

    /// The recording whose key this id names, if it names one.
    pub fn recording(&self) -> Option<RecordingId> {
        self.0
            .strip_prefix(Self::RECORDING_PREFIX)
            .and_then(|id| id.parse().ok())
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

/// Where each recording's own key is kept, sealed (wrapped under a key-encryption key by
/// the caller, opaque here): the catalog.
///
/// Every encrypted object of a recording (its spool entry, its files in every sink) has
/// its data key wrapped under the recording's key, not under a key-encryption key, and the
/// object's header names it `r.<recording id>` ([`KeyId::for_recording`]). Erasing the
/// recording deletes its key here ([`crate::Catalog::purge_recording`]), and from then on
/// no copy of any of its objects opens, wherever it was copied, whatever header it
/// carries: crypto-shredding that reaches the copies no one can rewrite.
///
/// # Contract
///
/// - [`keep_recording_key`](Self::keep_recording_key) keeps the first key given for a
///   recording and returns it to every later call (two nodes making a key at once agree on
///   one); a recording that does not exist or was erased gets none ([`Error::NotFound`]).
/// - [`recording_key`](Self::recording_key) returns the kept key, `None` once the
///   recording is erased (or if it never had one).
/// - A recording's key goes in the same transaction as the rest of its erasure.
#[async_trait]
pub trait RecordingKeyStore: Send + Sync + fmt::Debug + 'static {
    /// The sealed key of `recording`, if it has one.
    async fn recording_key(&self, recording: &RecordingId) -> Result<Option<Vec<u8>>>;

    /// Keeps `sealed` as the key of `recording` unless it has one already; returns the key
    /// kept.
    async fn keep_recording_key(&self, recording: &RecordingId, sealed: Vec<u8>)
    -> Result<Vec<u8>>;

    /// Up to `limit` keys of recordings that are not being deleted, in the order of their
    /// ids, after `after`: what a backup escrows.
    async fn live_recording_keys(
        &self,
        after: Option<&RecordingId>,
        limit: usize,
    ) -> Result<Vec<(RecordingId, Vec<u8>)>>;

    /// Which of `recordings` still have a key and are not being deleted.
    async fn still_live(&self, recordings: &[RecordingId]) -> Result<Vec<RecordingId>>;

    /// The recordings whose key row has no key: in a catalog restored from a backup
    /// (which holds none), those waiting for their key from escrow.
    async fn recordings_without_keys(&self) -> Result<Vec<RecordingId>>;
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

    #[test]
    fn recording_key_ids_name_their_recording() {
        let recording = RecordingId::generate();
        let id = KeyId::for_recording(&recording).unwrap();
        assert_eq!(id.as_str(), format!("r.{recording}"));
        assert_eq!(id.recording(), Some(recording));
        assert_eq!(KeyId::new("kek-1").unwrap().recording(), None);
        let long: RecordingId = "x".repeat(63).parse().unwrap();
        assert!(KeyId::for_recording(&long).is_err());
    }
}
