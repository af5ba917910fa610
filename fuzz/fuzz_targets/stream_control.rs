//! The streaming protocol's control messages (JSON text) on arbitrary input: never a
//! panic; a refusal is always a 4400 close with a reason that fits a close frame.
//!
//! Run: `cargo fuzz run stream_control` (from the repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipe_ingest::protocol::{Close, parse_control};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(close) = parse_control(text) {
        assert_eq!(close.code, Close::BAD_MESSAGE);
        assert!(close.reason.len() <= 123);
    }
});
