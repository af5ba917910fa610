//! Blocking file I/O off the async runtime.

use std::io;

/// Runs blocking file I/O on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(op: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(op)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}
