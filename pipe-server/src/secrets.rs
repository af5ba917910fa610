//! Secrets the server makes on first start and keeps under the data dir, mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use std::sync::Arc;

use pipe_storage::crypt::{Crypt, LocalKeyProvider};

use crate::ServeError;

/// The 32-byte key of resume tokens and download links (`<data>/server.secret`, hex).
pub(crate) fn server_secret(data: &Path) -> Result<Vec<u8>, ServeError> {
    let text = load_or_create(data, "server.secret", || {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(std::io::Error::other)?;
        Ok(hex::encode(key))
    })?;
    hex::decode(text.trim()).map_err(|e| ServeError::DataDir {
        path: data.join("server.secret"),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

/// The `whsec_…` secret of webhooks when none is configured (`<data>/webhook.secret`).
pub(crate) fn webhook_secret(data: &Path) -> Result<String, ServeError> {
    let created = !data.join("webhook.secret").exists();
    let secret = load_or_create(data, "webhook.secret", || {
        Ok(pipe_webhook::StandardWebhooks::generate_secret())
    })?;
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
    make: impl FnOnce() -> std::io::Result<String>,
) -> Result<String, ServeError> {
    let path = data.join(name);
    let fail = |source| ServeError::DataDir {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => return Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let value = make().map_err(fail)?;
    // create_new: two servers starting at once on the same directory cannot both win.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(fail)?;
    file.write_all(value.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    Ok(value)
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
