//! Random bytes from the operating system.

use pipe_core::{Error, Result};

/// Fills `buf` from the OS generator; a failure (no entropy source) is permanent.
pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::permanent("random", e.to_string()))
}
