//! Secrets the server makes on first start and keeps under the data dir, mode 0600.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use pipe_storage::crypt::{Crypt, LocalKeyProvider};

use crate::ServeError;

/// The 32-byte key of resume tokens and download links (`<data>/server.secret`, hex).
pub(crate) fn server_secret(data: &Path) -> Result<Vec<u8>, ServeError> {
    let text = load_or_create(data, "server.secret", || {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(io::Error::other)?;
        Ok(hex::encode(key))
    })?;
    parse_server_secret(&text, &data.join("server.secret").display().to_string())
}

/// The key of resume tokens and download links in `text` (hex), read from `origin`.
pub(crate) fn parse_server_secret(text: &str, origin: &str) -> Result<Vec<u8>, ServeError> {
    match hex::decode(text.trim()) {
        Ok(key) if key.len() >= 32 => Ok(key),
        // An empty or cut key would make resume tokens and links forgeable: refuse it.
        _ => Err(ServeError::DataDir {
            path: origin.into(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                "not 64 hex digits: restore it from a backup, or delete it to make a new \
                 one (open streams then cannot resume and old links stop working)",
            ),
        }),
    }
}

/// The `whsec_…` secret of webhooks when none is configured (`<data>/webhook.secret`).
pub(crate) fn webhook_secret(data: &Path) -> Result<String, ServeError> {
    let created = !data.join("webhook.secret").exists();
    let secret = load_or_create(data, "webhook.secret", || {
        Ok(pipe_webhook::StandardWebhooks::generate_secret())
    })?;
    if secret.trim().is_empty() {
        return Err(ServeError::DataDir {
            path: data.join("webhook.secret"),
            source: io::Error::new(io::ErrorKind::InvalidData, "empty"),
        });
    }
    if created {
        tracing::warn!(
            path = %data.join("webhook.secret").display(),
            "no PIPE_WEBHOOK_SECRET set: signing webhooks with a new secret kept in this file; give it to your receiver"
        );
    }
    Ok(secret.trim().to_owned())
}

fn load_or_create(
    data: &Path,
    name: &str,
    make: impl FnOnce() -> io::Result<String>,
) -> Result<String, ServeError> {
    let path = data.join(name);
    let fail = |source| ServeError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let value = make().map_err(fail)?;
    // Written whole to a temporary name, then linked into place: a crash leaves either no
    // secret or the whole one, never an empty file. `hard_link` fails if another server
    // starting on the same directory won the race; its secret is then read.
    let temp = data.join(format!(".{name}.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(value.as_bytes())
                .and_then(|()| file.sync_all())
        });
    let linked = written.and_then(|()| std::fs::hard_link(&temp, &path));
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            std::fs::File::open(data)
                .and_then(|dir| dir.sync_all())
                .map_err(fail)?;
            Ok(value)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(&path).map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

/// The encryption at rest of the spool and the server's own storage: keys from
/// `PIPE_ENCRYPTION_KEYS`, or else from `<data>/keys/`, where the first start makes one and
/// says so once, loudly, because losing that file loses every recording.
pub(crate) fn encryption(data: &Path) -> pipe_core::Result<Crypt> {
    let keys = match LocalKeyProvider::from_env()? {
        Some(keys) => keys,
        None => {
            let keys = LocalKeyProvider::open_or_create(data.join("keys"))?;
            if let Some(id) = keys.generated() {
                tracing::warn!(
                    key = %id,
                    path = %keys.path().map(|p| p.display().to_string()).unwrap_or_default(),
                    "generated the encryption key of this server: back this file up now; without it no stored recording can be read"
                );
            }
            keys
        }
    };
    Ok(Crypt::new(Arc::new(keys)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_secret_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = server_secret(dir.path()).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(server_secret(dir.path()).unwrap(), first);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn an_empty_or_cut_server_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "",
            "abcd",
            "not hex at all, not hex at all, not hex at all, not hex at all!",
        ] {
            std::fs::write(dir.path().join("server.secret"), bad).unwrap();
            assert!(server_secret(dir.path()).is_err(), "{bad:?} accepted");
        }
    }
}
