//! What the ingest reports through the [`metrics`] facade; the application installs a
//! recorder (the reference server renders them for Prometheus at `/metrics`). Without
//! one, recording a metric costs next to nothing.

use std::time::Duration;

/// Open streaming connections (gauge).
pub const ACTIVE_STREAMS: &str = "pipe_ingest_active_streams";
/// Bytes made durable in the spool (counter).
pub const BYTES: &str = "pipe_ingest_bytes_total";
/// Seconds from a chunk's arrival to its durable acknowledgement (histogram).
pub const ACK_SECONDS: &str = "pipe_ingest_ack_seconds";

/// Suggested buckets for [`ACK_SECONDS`]: an fsync takes from a fraction of a millisecond
/// to tens of milliseconds.
pub const ACK_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

pub(crate) fn chunk_durable(new_bytes: u64, took: Duration) {
    metrics::counter!(BYTES).increment(new_bytes);
    metrics::histogram!(ACK_SECONDS).record(took.as_secs_f64());
}

/// Counts a connection as open for as long as it lives.
pub(crate) struct OpenStream;

impl OpenStream {
    pub(crate) fn new() -> Self {
        metrics::gauge!(ACTIVE_STREAMS).increment(1.0);
        Self
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!(ACTIVE_STREAMS).decrement(1.0);
    }
}
