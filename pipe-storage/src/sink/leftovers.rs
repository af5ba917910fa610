//! [`Leftovers`]: temporary files a put could not remove, removed by a later call.

use std::sync::{Arc, Mutex};

/// The temporary files of failed puts that could not be removed at once (the server went
/// down mid-put, and its connection with it), for the next session to remove: an outage
/// leaves no `.part` files behind once the server is back and the sink is used again.
/// Kept in memory: a process that stops before then leaves them (their names say what
/// they are: `.<name>.<random>.part`).
#[derive(Debug, Default, Clone)]
pub(super) struct Leftovers(Arc<Mutex<Vec<String>>>);

impl Leftovers {
    /// Remembers `path` for later.
    pub(super) fn note(&self, path: String) {
        tracing::debug!(%path, "a temporary file stays until the server is reachable");
        self.0.lock().expect("not poisoned").push(path);
    }

    /// Every path noted so far, forgotten: note again the ones that still cannot go.
    pub(super) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}
