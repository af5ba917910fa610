//! Blocking file I/O off the async runtime, and what an I/O error means for a retry.

use std::io::{self, ErrorKind};

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

/// Whether an I/O error of this kind will recur on retry: Pipe's one table,
/// [`pipe_core::Error::is_permanent_io`].
pub(crate) fn is_permanent(kind: ErrorKind) -> bool {
    pipe_core::Error::is_permanent_io(kind)
}
