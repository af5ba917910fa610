//! Recording keys: each recording has a key of its own, kept sealed under a key-encryption
//! key in a [`RecordingKeyStore`] (the catalog), and every encrypted object of the
//! recording has its data key wrapped under it. Erasing the recording deletes that one
//! row, and every copy of every object of the recording, wherever it went and whatever
//! header it carries, no longer opens: see "Recording keys" in `ENCRYPTION.md`.

use std::fmt;
use std::sync::Arc;

use pipe_core::{Error, KeyId, KeyProvider, RecordingId, RecordingKeyStore, Result};
use zeroize::Zeroizing;

use super::cipher::KEY_LEN;
use super::{LocalKeyProvider, random};

/// Associated data prefix of a sealed recording key; the recording's id follows.
const SEAL_DOMAIN: &[u8] = b"pipe recording key v1\0";

/// The server's key-encryption keys and the recording keys sealed under them.
///
/// As a [`KeyProvider`] it wraps new data keys under a key-encryption key (objects that
/// belong to no recording), and unwraps data keys wrapped under either: a key id
/// `r.<recording id>` ([`KeyId::for_recording`]) is looked up in the store and unsealed.
/// That lookup waits for the store on the calling thread: like every [`KeyProvider`]
/// call, make it on tokio's blocking pool (`spawn_blocking`), within a tokio runtime.
pub struct Keyring {
    kek: Arc<dyn KeyProvider>,
    store: Arc<dyn RecordingKeyStore>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("kek", &self.kek)
            .field("store", &self.store)
            .finish()
    }
}

impl Keyring {
    /// Recording keys kept in `store`, sealed under `kek`.
    pub fn new(kek: Arc<dyn KeyProvider>, store: Arc<dyn RecordingKeyStore>) -> Self {
        Self { kek, store }
    }

    /// The key-encryption keys recording keys are sealed under.
    pub fn kek(&self) -> &Arc<dyn KeyProvider> {
        &self.kek
    }

    /// The store recording keys are kept in.
    pub fn store(&self) -> &Arc<dyn RecordingKeyStore> {
        &self.store
    }

    /// The key of `recording`, made and kept if it has none (the first one kept wins, so
    /// two callers at once agree). [`Error::NotFound`] if the store has no such recording
    /// or it was erased.
    pub async fn key_for(self: &Arc<Self>, recording: &RecordingId) -> Result<RecordingKey> {
        if let Some(sealed) = self.store.recording_key(recording).await? {
            return self.unseal_blocking(recording, sealed).await;
        }
        let (kek, id) = (Arc::clone(&self.kek), recording.clone());
        let sealed = blocking(move || {
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            random::fill(&mut key[..])?;
            seal(kek.as_ref(), &id, &key)
        })
        .await?;
        let kept = self.store.keep_recording_key(recording, sealed).await?;
        self.unseal_blocking(recording, kept).await
    }

    /// The key of `recording` if it has one; [`Error::NotFound`] if it has none (never
    /// had, or erased).
    pub async fn existing_key(self: &Arc<Self>, recording: &RecordingId) -> Result<RecordingKey> {
        match self.store.recording_key(recording).await? {
            Some(sealed) => self.unseal_blocking(recording, sealed).await,
            None => Err(no_key(recording)),
        }
    }

    async fn unseal_blocking(
        self: &Arc<Self>,
        recording: &RecordingId,
        sealed: Vec<u8>,
    ) -> Result<RecordingKey> {
        let (keyring, id) = (Arc::clone(self), recording.clone());
        blocking(move || keyring.unseal(&id, &sealed)).await
    }

    /// Opens `sealed`, the key of `recording` as the store keeps it.
    fn unseal(self: &Arc<Self>, recording: &RecordingId, sealed: &[u8]) -> Result<RecordingKey> {
        let (kek_id, wrapped) = parse_sealed(sealed)?;
        let key = Zeroizing::new(
            self.kek
                .unwrap(&kek_id, wrapped, &seal_context(recording))?,
        );
        let key: [u8; KEY_LEN] = key.as_slice().try_into().map_err(|_| Error::Integrity {
            detail: format!("the key of recording {recording} has the wrong length"),
        })?;
        let id = KeyId::for_recording(recording)?;
        Ok(RecordingKey {
            own: LocalKeyProvider::from_key(id.clone(), Zeroizing::new(key)),
            id,
            keyring: Arc::clone(self),
        })
    }

    /// The key of `recording`, from the store, waiting on this thread.
    fn fetch(self: &Arc<Self>, recording: &RecordingId) -> Result<RecordingKey> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::precondition("recording keys are read within a tokio runtime"))?;
        match runtime.block_on(self.store.recording_key(recording))? {
            Some(sealed) => self.unseal(recording, &sealed),
            None => Err(no_key(recording)),
        }
    }
}

/// A [`KeyProvider`] that wraps under the key-encryption keys and unwraps under them or
/// under a recording key from the store.
#[derive(Debug, Clone)]
pub(super) struct KeyringProvider(pub(super) Arc<Keyring>);

impl KeyProvider for KeyringProvider {
    fn current(&self) -> Result<KeyId> {
        self.0.kek.current()
    }

    fn wrap(&self, id: &KeyId, data_key: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        if id.recording().is_some() {
            return Err(Error::invalid(
                "key id",
                format!("{id} is a recording key: wrap under it with Crypt::for_recording"),
            ));
        }
        self.0.kek.wrap(id, data_key, context)
    }

    fn unwrap(&self, id: &KeyId, wrapped: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        match id.recording() {
            Some(recording) => self.0.fetch(&recording)?.unwrap(id, wrapped, context),
            None => self.0.kek.unwrap(id, wrapped, context),
        }
    }
}

/// One recording's key, unsealed: the [`KeyProvider`] of [`super::Crypt::for_recording`].
/// Its current key is the recording's (`r.<id>`), so new objects are wrapped under it; it
/// unwraps under any key its keyring can.
pub struct RecordingKey {
    own: LocalKeyProvider,
    id: KeyId,
    keyring: Arc<Keyring>,
}

impl fmt::Debug for RecordingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl KeyProvider for RecordingKey {
    fn current(&self) -> Result<KeyId> {
        Ok(self.id.clone())
    }

    fn wrap(&self, id: &KeyId, data_key: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        if id == &self.id {
            self.own.wrap(id, data_key, context)
        } else {
            KeyringProvider(Arc::clone(&self.keyring)).wrap(id, data_key, context)
        }
    }

    fn unwrap(&self, id: &KeyId, wrapped: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        if id == &self.id {
            self.own.unwrap(id, wrapped, context)
        } else {
            KeyringProvider(Arc::clone(&self.keyring)).unwrap(id, wrapped, context)
        }
    }
}

fn no_key(recording: &RecordingId) -> Error {
    Error::not_found(format_args!(
        "the key of recording {recording} (it was erased, or never had one)"
    ))
}

fn seal_context(recording: &RecordingId) -> Vec<u8> {
    [SEAL_DOMAIN, recording.as_str().as_bytes()].concat()
}

/// `key` sealed for the store: `n (1 byte) ‖ key-encryption key id (n bytes) ‖
/// kek.wrap(id, key, "pipe recording key v1\0" ‖ recording id)`, so a sealed key moved to
/// another recording's row does not open.
fn seal(kek: &dyn KeyProvider, recording: &RecordingId, key: &[u8; KEY_LEN]) -> Result<Vec<u8>> {
    let id = kek.current()?;
    let wrapped = kek.wrap(&id, key, &seal_context(recording))?;
    let mut sealed = Vec::with_capacity(1 + id.as_str().len() + wrapped.len());
    sealed.push(u8::try_from(id.as_str().len()).expect("key ids have at most 64 bytes"));
    sealed.extend_from_slice(id.as_str().as_bytes());
    sealed.extend_from_slice(&wrapped);
    Ok(sealed)
}

fn parse_sealed(sealed: &[u8]) -> Result<(KeyId, &[u8])> {
    let malformed = || Error::Integrity {
        detail: "a sealed recording key is malformed".into(),
    };
    let (&n, rest) = sealed.split_first().ok_or_else(malformed)?;
    if rest.len() < usize::from(n) {
        return Err(malformed());
    }
    let (id, wrapped) = rest.split_at(usize::from(n));
    let id = std::str::from_utf8(id).map_err(|_| malformed())?;
    Ok((KeyId::new(id).map_err(|_| malformed())?, wrapped))
}

async fn blocking<T: Send + 'static>(op: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(op)
        .await
        .map_err(|e| Error::temporary("key provider", e.to_string()))?
}
