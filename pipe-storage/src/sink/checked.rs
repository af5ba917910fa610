//! [`CheckedBody`]: the one place a put's bytes are counted, hashed and held to their
//! declared size, for every sink.

use std::io;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use pipe_core::{Error, PutBody, PutReceipt, Result};
use sha2::{Digest, Sha256};

/// A put's body that counts and hashes (SHA-256) its bytes as they stream, and refuses
/// to yield more than its declared size. Every sink reads its body through one, so each
/// [`PutReceipt`] means the same: these bytes, this many, this digest.
pub(crate) struct CheckedBody {
    size: u64,
    stream: BoxStream<'static, io::Result<Bytes>>,
    count: u64,
    sha256: Sha256,
}

impl CheckedBody {
    pub(crate) fn new(body: PutBody) -> Self {
        Self {
            size: body.size,
            stream: body.stream,
            count: 0,
            sha256: Sha256::new(),
        }
    }

    /// The size the body was declared with.
    #[cfg_attr(not(feature = "sink-dropbox"), allow(dead_code))]
    pub(crate) fn declared(&self) -> u64 {
        self.size
    }

    /// The bytes yielded so far.
    #[cfg_attr(not(feature = "sink-ftps"), allow(dead_code))]
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The next chunk (never an empty one); `Integrity` as soon as the stream runs past
    /// its size.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>> {
        loop {
            let Some(chunk) = self.stream.next().await.transpose()? else {
                return Ok(None);
            };
            if chunk.is_empty() {
                continue;
            }
            self.count += chunk.len() as u64;
            if self.count > self.size {
                return Err(self.mismatch("more than"));
            }
            self.sha256.update(&chunk);
            return Ok(Some(chunk));
        }
    }

    /// `Integrity` if the stream ended short of its size.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.count == self.size {
            Ok(())
        } else {
            Err(self.mismatch("only"))
        }
    }

    fn mismatch(&self, relation: &str) -> Error {
        Error::Integrity {
            detail: format!(
                "the body was declared as {} bytes but yielded {relation} {}",
                self.size, self.count
            ),
        }
    }

    /// What was stored: the bytes counted and their digest.
    pub(crate) fn receipt(self) -> PutReceipt {
        PutReceipt::new(self.count, hex::encode(self.sha256.finalize()))
    }
}
