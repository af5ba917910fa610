//! What the sinks that speak a service's HTTP API themselves (Dropbox, GCS) share: their
//! timeouts, reading answers and error bodies, streaming downloads, and telling a network
//! failure from a setting to fix.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use pipe_core::{Error, Result};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

/// How long connecting may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a call without a large body may take to answer, and how long a download may
/// send nothing before it is given up.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The slowest upload rate waited for (64 KiB/s): an upload call may take
/// [`CALL_TIMEOUT`] plus its size at this rate.
const SLOWEST_UPLOAD: u64 = 64 * 1024;

/// Error bodies are read up to this many bytes.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// How long an upload call of `len` bytes may take.
pub(super) fn upload_timeout(len: usize) -> Duration {
    CALL_TIMEOUT + Duration::from_secs(len as u64 / SLOWEST_UPLOAD)
}

/// A service, as its errors name it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Service {
    /// Its name in [`Error::Backend`] (`dropbox`).
    pub(super) backend: &'static str,
    /// Its name for people (`Dropbox`).
    pub(super) name: &'static str,
    /// What an invalid address of it is called (`Dropbox endpoint`).
    pub(super) endpoint: &'static str,
}

impl Service {
    /// A call that got no answer within `timeout`.
    pub(super) fn no_answer(self, op: &str, what: &str, timeout: Duration) -> Error {
        Error::temporary(
            self.backend,
            format!("{op} ({what}): no answer within {}s", timeout.as_secs()),
        )
    }

    /// A request that got no answer: a bad URL is the config's fault; anything else (no
    /// connection, a reset, a timeout) may pass.
    pub(super) fn transport_error(self, op: &str, what: &str, e: &reqwest::Error) -> Error {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        if e.is_builder() {
            Error::invalid(self.endpoint, format!("{op}: {detail}"))
        } else {
            Error::temporary(self.backend, format!("{op} ({what}): {detail}"))
        }
    }

    /// Reads a successful answer's JSON.
    pub(super) async fn json_body<T: serde::de::DeserializeOwned>(
        self,
        response: reqwest::Response,
        op: &str,
        what: &str,
    ) -> Result<T> {
        let bytes = match tokio::time::timeout(CALL_TIMEOUT, response.bytes()).await {
            Err(_) => return Err(self.no_answer(op, what, CALL_TIMEOUT)),
            Ok(Err(e)) => return Err(self.transport_error(op, what, &e)),
            Ok(Ok(bytes)) => bytes,
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::temporary(
                self.backend,
                format!("{op} ({what}): an answer that is not the JSON expected: {e}"),
            )
        })
    }

    /// The bytes of a download: `skip` bytes dropped (a server that ignored the range),
    /// then exactly `len` bytes; a stream that ends early, or stalls for
    /// [`CALL_TIMEOUT`], fails.
    pub(super) fn body_stream(
        self,
        response: reqwest::Response,
        skip: u64,
        len: u64,
    ) -> BoxStream<'static, io::Result<Bytes>> {
        let inner = response.bytes_stream().boxed();
        let name = self.name;
        stream::unfold(
            (inner, skip, len),
            move |(mut inner, mut skip, mut left)| async move {
                loop {
                    if left == 0 {
                        return None;
                    }
                    let failed = |e: io::Error| Some((Err(e), (stream::empty().boxed(), 0, 0)));
                    let mut bytes = match tokio::time::timeout(CALL_TIMEOUT, inner.next()).await {
                        Err(_) => {
                            return failed(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("{name} sent nothing for {CALL_TIMEOUT:?}"),
                            ));
                        }
                        Ok(None) => {
                            return failed(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                format!("the download ended {left} bytes early"),
                            ));
                        }
                        Ok(Some(Err(e))) => return failed(io::Error::other(e)),
                        Ok(Some(Ok(bytes))) => bytes,
                    };
                    if skip > 0 {
                        let n = skip.min(bytes.len() as u64);
                        bytes = bytes.slice(n as usize..);
                        skip -= n;
                    }
                    if bytes.is_empty() {
                        continue;
                    }
                    if bytes.len() as u64 > left {
                        bytes.truncate(left as usize);
                    }
                    left -= bytes.len() as u64;
                    return Some((Ok(bytes), (inner, skip, left)));
                }
            },
        )
        .boxed()
    }
}

/// An answer other than 2xx, as read: its status, its `Retry-After` (in seconds) and up
/// to 16 KiB of its body (what a service says is wrong).
pub(super) async fn read_failure(
    mut response: reqwest::Response,
) -> (StatusCode, Option<Duration>, Vec<u8>) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    let read = async {
        while body.len() < ERROR_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(CALL_TIMEOUT, read).await;
    body.truncate(ERROR_BODY_LIMIT);
    (status, retry_after, body)
}
