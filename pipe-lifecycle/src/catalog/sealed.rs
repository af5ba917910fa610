//! Secrets the catalog keeps (webhook signing secrets, the credentials of environments'
//! sinks), sealed under the server's key-encryption keys when it has them.
//!
//! A sealed secret is stored as `sealed:v1:<key id>:<hex>`: the secret wrapped by
//! [`KeyProvider::wrap`] (AES-256-GCM under the named key, with a fresh nonce) and bound
//! to where it belongs (its row and field), so a sealed value copied into another row
//! does not open. Secrets that sign must be read back, so they cannot be hashed like API
//! keys; sealing keeps a stolen catalog file (or a backup of it) from signing webhooks
//! without the keys, which live apart from it. A catalog without keys stores secrets as
//! they are, and reads both kinds; a catalog with keys seals what it writes next.

use std::sync::Arc;

use pipe_core::{Error, KeyId, KeyProvider, Result};

/// Runs `op` with the catalog's keys, if it has any, on tokio's blocking pool: a provider
/// may wait on a remote KMS, and that wait must not stall the async executor (webhook
/// deliveries read their endpoint's secret every time). Without keys, at once.
pub(crate) async fn with_keys<T: Send + 'static>(
    keys: Option<&Arc<dyn KeyProvider>>,
    op: impl FnOnce(Option<&dyn KeyProvider>) -> Result<T> + Send + 'static,
) -> Result<T> {
    match keys {
        None => op(None),
        Some(keys) => {
            let keys = Arc::clone(keys);
            tokio::task::spawn_blocking(move || op(Some(keys.as_ref())))
                .await
                .map_err(|e| Error::temporary("key provider", e.to_string()))?
        }
    }
}

const PREFIX: &str = "sealed:v1:";

/// `secret` sealed under the current key of `keys`, bound to `context`.
pub(crate) fn seal(keys: &dyn KeyProvider, secret: &str, context: &str) -> Result<String> {
    let id = keys.current()?;
    let wrapped = keys.wrap(&id, secret.as_bytes(), context.as_bytes())?;
    Ok(format!("{PREFIX}{id}:{}", hex::encode(wrapped)))
}

/// What [`seal`] sealed for `context`; a value stored unsealed as it is.
pub(crate) fn open(keys: Option<&dyn KeyProvider>, stored: &str, context: &str) -> Result<String> {
    let Some(sealed) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_owned());
    };
    let unreadable = |why: &str| Error::Integrity {
        detail: format!("the sealed secret of {context} {why}"),
    };
    let keys = keys.ok_or_else(|| {
        unreadable("cannot be opened: this catalog was opened without the server's keys")
    })?;
    let (id, wrapped) = sealed
        .split_once(':')
        .ok_or_else(|| unreadable("is malformed"))?;
    let id = KeyId::new(id)?;
    let wrapped = hex::decode(wrapped).map_err(|_| unreadable("is malformed"))?;
    let secret = keys.unwrap(&id, &wrapped, context.as_bytes())?;
    String::from_utf8(secret).map_err(|_| unreadable("is not text"))
}
