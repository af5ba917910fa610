//! The streaming protocol's binary frame parser on arbitrary bytes: it never panics, and
//! whatever it accepts encodes back to the same bytes.
//!
//! Run: `cargo fuzz run stream_frame` (from the repository root).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pipe_ingest::protocol::{Chunk, Close};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the size limit, so limits are fuzzed too.
    let Some((&limit, frame)) = data.split_first() else { return };
    let max_chunk = usize::from(limit) * 16;
    match Chunk::parse(Bytes::copy_from_slice(frame), max_chunk) {
        Ok(chunk) => {
            assert!(chunk.data.len() <= max_chunk);
            assert_eq!(chunk.encode(), frame);
            assert!(chunk.end() >= chunk.offset);
        }
        Err(close) => {
            assert!(matches!(close.code, Close::TOO_BIG | Close::BAD_MESSAGE));
            assert!(close.reason.len() <= 123);
        }
    }
});
