//! [`LocalKeyProvider`]: key-encryption keys in a local file (mode 0600) or in an
//! environment variable, wrapping data keys with AES-256-GCM.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pipe_core::{Error, KeyId, KeyProvider, Result};
use zeroize::Zeroizing;

use super::cipher::{CipherBackend, KEY_LEN, NONCE_LEN, TAG_LEN, default_backend};
use super::random;

/// The environment variable [`LocalKeyProvider::from_env`] reads: `id1:base64,id2:base64`,
/// the last key current.
pub const KEYS_ENV: &str = "PIPE_ENCRYPTION_KEYS";
/// The key file's name inside the directory given to [`LocalKeyProvider::open_or_create`].
pub const KEY_FILE: &str = "encryption-keys";
/// Associated data prefix of a wrapped data key.
const WRAP_DOMAIN: &[u8] = b"pipe-kek v1";

struct Kek {
    id: KeyId,
    key: Zeroizing<[u8; KEY_LEN]>,
}

/// Key-encryption keys held locally: in a file (one `id:base64` line per key, the last
/// current, mode 0600) or parsed from an environment variable's value.
///
/// A wrapped data key is `nonce (12) ‖ AES-256-GCM(kek, data key) ‖ tag (16)`, bound to
/// the key id and the caller's context. Key bytes never appear in `Debug` output or in
/// errors.
pub struct LocalKeyProvider {
    keys: RwLock<Vec<Kek>>,
    /// The key file, if keys live in one (rotation appends to it).
    file: Option<PathBuf>,
    backend: Arc<dyn CipherBackend>,
    generated: Option<KeyId>,
}

impl LocalKeyProvider {
    /// Opens the key file in `dir`, creating the directory (0700) and a file with one new
    /// key (0600) if there is none: then [`generated`](Self::generated) names that key, and
    /// the operator must be told to back the file up. [`Error::Invalid`] if the file is
    /// readable by group or others, or malformed.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(KEY_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let mode = fs::metadata(&path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(Error::invalid(
                        "key file",
                        format!(
                            "{} has mode {:o}: readable by others; chmod 600 it",
                            path.display(),
                            mode & 0o777
                        ),
                    ));
                }
                let keys = parse_keys(text.lines(), "key file")?;
                Ok(Self::from_keys(keys, Some(path), None))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
                let kek = new_kek(&[])?;
                let id = kek.id.clone();
                write_key_file(&path, std::slice::from_ref(&kek))?;
                Ok(Self::from_keys(vec![kek], Some(path), Some(id)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Keys from a value like `id1:base64,id2:base64` (32-byte keys, standard base64), the
    /// last current. [`Error::Invalid`] if it is malformed (the error names no key bytes).
    pub fn from_env_value(value: &str) -> Result<Self> {
        let keys = parse_keys(value.split(','), KEYS_ENV)?;
        Ok(Self::from_keys(keys, None, None))
    }

    /// One key, `key` under `id`, held only in memory: a key derived from a passphrase,
    /// as a backup's.
    pub fn from_key(id: KeyId, key: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self::from_keys(vec![Kek { id, key }], None, None)
    }

    /// Keys from [`KEYS_ENV`], or `None` if it is not set.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(KEYS_ENV) {
            Ok(value) => Self::from_env_value(&value).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::invalid(
                "environment",
                format!("{KEYS_ENV} is not UTF-8"),
            )),
        }
    }

    /// Uses `backend` for wrapping instead of the default one.
    #[must_use]
    pub fn with_backend(mut self, backend: Arc<dyn CipherBackend>) -> Self {
        self.backend = backend;
        self
    }

    /// The key [`open_or_create`](Self::open_or_create) generated, if it created the file.
    pub fn generated(&self) -> Option<&KeyId> {
        self.generated.as_ref()
    }

    /// The key file, if the keys live in one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Every key id, oldest first; the last is current.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.read().iter().map(|k| k.id.clone()).collect()
    }

    /// Adds a new key, durable in the key file, that new objects use from now on; old
    /// keys stay for reading. [`Error::NotSupported`] for keys from the environment (the
    /// operator adds one to the variable).
    pub fn rotate(&self) -> Result<KeyId> {
        let Some(path) = &self.file else {
            return Err(Error::NotSupported {
                backend: "local key provider (environment)",
                operation: "rotate",
            });
        };
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let kek = new_kek(&keys)?;
        let id = kek.id.clone();
        keys.push(kek);
        if let Err(e) = write_key_file(path, &keys) {
            keys.pop();
            return Err(e);
        }
        Ok(id)
    }

    fn from_keys(keys: Vec<Kek>, file: Option<PathBuf>, generated: Option<KeyId>) -> Self {
        Self {
            keys: RwLock::new(keys),
            file,
            backend: default_backend(),
            generated,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Kek>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn with_key<T>(&self, id: &KeyId, f: impl FnOnce(&[u8; KEY_LEN]) -> Result<T>) -> Result<T> {
        let keys = self.read();
        let kek = keys
            .iter()
            .find(|k| &k.id == id)
            .ok_or_else(|| Error::not_found(format!("key-encryption key {id}")))?;
        f(&kek.key)
    }
}

impl KeyProvider for LocalKeyProvider {
    fn current(&self) -> Result<KeyId> {
        self.read()
            .last()
            .map(|k| k.id.clone())
            .ok_or_else(|| Error::not_found("key-encryption key (none configured)"))
    }

    fn wrap(&self, id: &KeyId, data_key: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        self.with_key(id, |kek| {
            let mut nonce = [0; NONCE_LEN];
            random::fill(&mut nonce)?;
            let mut out = Vec::with_capacity(NONCE_LEN + data_key.len() + TAG_LEN);
            out.extend_from_slice(&nonce);
            out.extend_from_slice(data_key);
            let tag = self.backend.key(kek).seal_in_place(
                &nonce,
                &wrap_aad(id, context),
                &mut out[NONCE_LEN..],
            )?;
            out.extend_from_slice(&tag);
            Ok(out)
        })
    }

    fn unwrap(&self, id: &KeyId, wrapped: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        self.with_key(id, |kek| {
            if wrapped.len() < NONCE_LEN + TAG_LEN {
                return Err(Error::Integrity {
                    detail: "wrapped data key too short".into(),
                });
            }
            let nonce: [u8; NONCE_LEN] = wrapped[..NONCE_LEN].try_into().expect("12 bytes");
            let mut body = Zeroizing::new(wrapped[NONCE_LEN..].to_vec());
            self.backend
                .key(kek)
                .open_in_place(&nonce, &wrap_aad(id, context), &mut body)
                .map_err(|_| Error::Integrity {
                    detail: format!("wrapped data key does not open under {id}"),
                })?;
            let len = body.len() - TAG_LEN;
            body.truncate(len);
            Ok(body.to_vec())
        })
    }
}

impl fmt::Debug for LocalKeyProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyProvider")
            .field("key_ids", &self.key_ids())
            .field("file", &self.file)
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

fn wrap_aad(id: &KeyId, context: &[u8]) -> Vec<u8> {
    let id = id.as_str().as_bytes();
    let mut aad = Vec::with_capacity(WRAP_DOMAIN.len() + 1 + id.len() + context.len());
    aad.extend_from_slice(WRAP_DOMAIN);
    aad.push(id.len() as u8);
    aad.extend_from_slice(id);
    aad.extend_from_slice(context);
    aad
}

/// Parses `id:base64` entries (blank lines and `#` comments skipped). Errors name the
/// entry's position and id, never its key.
fn parse_keys<'a>(entries: impl Iterator<Item = &'a str>, source: &str) -> Result<Vec<Kek>> {
    let mut keys: Vec<Kek> = Vec::new();
    for (n, entry) in entries.enumerate() {
        let entry = entry.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            Error::invalid(
                "encryption keys",
                format!("{source}, entry {}: {why}", n + 1),
            )
        };
        let (id, b64) = entry
            .split_once(':')
            .ok_or_else(|| bad("expected id:base64"))?;
        let id = KeyId::new(id.trim()).map_err(|_| bad("bad key id"))?;
        let bytes = Zeroizing::new(
            STANDARD
                .decode(b64.trim())
                .map_err(|_| bad(&format!("key {id} is not valid base64")))?,
        );
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| bad(&format!("key {id} is not 32 bytes")))?;
        if keys.iter().any(|k| k.id == id) {
            return Err(bad(&format!("key id {id} appears twice")));
        }
        keys.push(Kek {
            id,
            key: Zeroizing::new(key),
        });
    }
    if keys.is_empty() {
        return Err(Error::invalid(
            "encryption keys",
            format!("{source} has no key"),
        ));
    }
    Ok(keys)
}

fn new_kek(existing: &[Kek]) -> Result<Kek> {
    let mut key = Zeroizing::new([0; KEY_LEN]);
    random::fill(&mut key[..])?;
    loop {
        let mut tag = [0; 4];
        random::fill(&mut tag)?;
        let id = KeyId::new(format!("kek-{}", hex::encode(tag)))?;
        if !existing.iter().any(|k| k.id == id) {
            return Ok(Kek { id, key });
        }
    }
}

/// Writes the key file atomically: a 0600 temporary file, fsync, rename, fsync the folder.
fn write_key_file(path: &Path, keys: &[Kek]) -> Result<()> {
    let mut text = Zeroizing::new(String::from(
        "# Pipe's key-encryption keys: id:base64, the last is current. BACK THIS FILE UP;\n\
         # losing it makes every encrypted recording unreadable.\n",
    ));
    for kek in keys {
        text.push_str(kek.id.as_str());
        text.push(':');
        STANDARD.encode_string(&kek.key[..], &mut text);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
