//! The conformance suite of [`StorageSink`]: one async function per promise of its
//! `# Contract`.
//!
//! Every function writes keys of its own under `conformance/<random id>/`, so the suite
//! can run against a shared bucket, and the functions can run in any order. Each panics
//! with a message naming the promise that was broken. A sink that cannot read back (its
//! [`StorageSink::capabilities`] say so) is held to every promise about writing and
//! deleting, and to refusing reads with `NotSupported`; what would read is left out.
//!
//! ```ignore
//! pipe_core::conformance::sink::run_all(&my_sink).await;
//! ```

use std::io;
use std::ops::Range;

use bytes::Bytes;
use futures::stream::{self, StreamExt};

use crate::{Error, GetOptions, ObjectKey, PutBody, PutOptions, RecordingId, StorageSink};

/// SHA-256 of no bytes.
const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// SHA-256 of `abc` (FIPS 180-2, appendix B.1).
const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

/// Runs every check of this suite against `sink`.
pub async fn run_all(sink: &dyn StorageSink) {
    empty_object_round_trips(sink).await;
    streamed_object_round_trips(sink).await;
    size_mismatch_is_integrity_error(sink).await;
    failed_stream_leaves_no_partial_object(sink).await;
    delete_is_idempotent(sink).await;
    receipt_has_sha256(sink).await;
    if readable(sink) {
        put_replaces(sink).await;
        ranges_are_exact_and_clamped(sink).await;
        head_reports_size(sink).await;
        missing_is_not_found(sink).await;
    } else {
        reads_are_not_supported(sink).await;
    }
}

/// Whether `sink` reads back ([`crate::SinkCapabilities::read`]).
fn readable(sink: &dyn StorageSink) -> bool {
    sink.capabilities().read
}

/// A sink that says it cannot read refuses `get` and `head` with `NotSupported`, for
/// objects it holds and ones it does not.
pub async fn reads_are_not_supported(sink: &dyn StorageSink) {
    const PROMISE: &str = "a write-only sink refuses reads with NotSupported";
    let key = unique_key("dropped.bin");
    CONTRACT.ok(
        sink.put(&key, PutBody::from_bytes("dropped"), PutOptions::default())
            .await,
        PROMISE,
        "put",
    );
    let missing = unique_key("never-put.bin");
    for key in [&key, &missing] {
        let not_supported = |e: &Error| matches!(e, Error::NotSupported { .. });
        CONTRACT.expect_err(sink.head(key).await, PROMISE, "head", not_supported);
        let get = sink.get(key, GetOptions::default()).await.map(|r| r.meta);
        CONTRACT.expect_err(get, PROMISE, "get", not_supported);
    }
    cleanup(sink, &key).await;
}

/// An empty object can be put, and reads back empty.
pub async fn empty_object_round_trips(sink: &dyn StorageSink) {
    const PROMISE: &str = "whole or nothing (empty object)";
    let key = unique_key("empty.bin");
    let receipt = CONTRACT.ok(
        sink.put(
            &key,
            PutBody::from_bytes(Bytes::new()),
            PutOptions::default(),
        )
        .await,
        PROMISE,
        "put",
    );
    assert_eq!(
        receipt.size, 0,
        "{PROMISE}: the receipt must report 0 bytes"
    );
    if !readable(sink) {
        return cleanup(sink, &key).await;
    }
    let meta = CONTRACT.ok(sink.head(&key).await, PROMISE, "head");
    assert_eq!(meta.size, 0, "{PROMISE}: head must report 0 bytes");
    let got = CONTRACT.ok(sink.get(&key, GetOptions::default()).await, PROMISE, "get");
    assert_eq!(
        got.range,
        0..0,
        "{PROMISE}: the range of an empty object is 0..0"
    );
    let bytes = CONTRACT.ok(
        got.bytes().await.map_err(Error::from),
        PROMISE,
        "reading the body",
    );
    assert!(
        bytes.is_empty(),
        "{PROMISE}: an empty object must read back empty"
    );
    cleanup(sink, &key).await;
}

/// A body of several MiB streamed in uneven chunks reads back byte for byte, and head
/// reports its full size.
pub async fn streamed_object_round_trips(sink: &dyn StorageSink) {
    const PROMISE: &str = "whole or nothing (streamed object)";
    let key = unique_key("big.bin");
    let data = pattern(1, 6 * 1024 * 1024 + 12_345);
    let receipt = CONTRACT.ok(
        sink.put(&key, chunked_body(&data, 100_003), PutOptions::default())
            .await,
        PROMISE,
        "put",
    );
    assert_eq!(
        receipt.size,
        data.len() as u64,
        "{PROMISE}: the receipt must report every byte"
    );
    if !readable(sink) {
        return cleanup(sink, &key).await;
    }
    let meta = CONTRACT.ok(sink.head(&key).await, PROMISE, "head");
    assert_eq!(
        meta.size,
        data.len() as u64,
        "{PROMISE}: head must report the full size"
    );
    assert_eq!(meta.key, key, "{PROMISE}: head must report the key");
    let got = CONTRACT.ok(sink.get(&key, GetOptions::default()).await, PROMISE, "get");
    assert_eq!(
        got.meta.size,
        data.len() as u64,
        "{PROMISE}: get must report the full size"
    );
    assert_eq!(
        got.range,
        0..data.len() as u64,
        "{PROMISE}: get without a range must cover the whole object"
    );
    let bytes = CONTRACT.ok(
        got.bytes().await.map_err(Error::from),
        PROMISE,
        "reading the body",
    );
    assert!(
        bytes == data,
        "{PROMISE}: get must return exactly the bytes put ({} read, {} put)",
        bytes.len(),
        data.len()
    );
    cleanup(sink, &key).await;
}

/// Putting a key again replaces the object, also with a shorter one.
pub async fn put_replaces(sink: &dyn StorageSink) {
    const PROMISE: &str = "idempotent put (a re-put replaces)";
    let key = unique_key("replaced.txt");
    CONTRACT.ok(
        sink.put(
            &key,
            PutBody::from_bytes("the first, longer version"),
            PutOptions::default(),
        )
        .await,
        PROMISE,
        "put",
    );
    CONTRACT.ok(
        sink.put(&key, PutBody::from_bytes("second"), PutOptions::default())
            .await,
        PROMISE,
        "second put",
    );
    assert_eq!(
        read(sink, &key, GetOptions::default()).await,
        b"second",
        "{PROMISE}: get must return the latest put"
    );
    assert_eq!(
        CONTRACT.ok(sink.head(&key).await, PROMISE, "head").size,
        6,
        "{PROMISE}: head must report the latest size"
    );
    cleanup(sink, &key).await;
}

/// A stream shorter or longer than [`PutBody::size`] fails with `Integrity`, and leaves
/// no object, or the earlier complete one, under the key.
pub async fn size_mismatch_is_integrity_error(sink: &dyn StorageSink) {
    const PROMISE: &str = "verified size";
    let data = pattern(2, 300_000);

    for (what, declared) in [
        ("a stream shorter than its size", data.len() as u64 + 1),
        ("a stream longer than its size", 1000),
    ] {
        let key = unique_key("mismatch.bin");
        let body = PutBody::new(declared, chunked_body(&data, 65_536).stream);
        let err = sink.put(&key, body, PutOptions::default()).await;
        CONTRACT.expect_err(err, PROMISE, &format!("put of {what}"), |e| {
            matches!(e, Error::Integrity { .. })
        });
        if readable(sink) {
            CONTRACT.expect_err(
                sink.head(&key).await,
                "whole or nothing",
                &format!("head after a put of {what}"),
                Error::is_not_found,
            );
        }

        CONTRACT.ok(
            sink.put(&key, PutBody::from_bytes("older"), PutOptions::default())
                .await,
            PROMISE,
            "put",
        );
        let body = PutBody::new(declared, chunked_body(&data, 65_536).stream);
        let err = sink.put(&key, body, PutOptions::default()).await;
        CONTRACT.expect_err(
            err,
            PROMISE,
            &format!("put of {what} over an object"),
            |e| matches!(e, Error::Integrity { .. }),
        );
        assert_older_or_nothing(sink, &key, b"older", &format!("a failed put of {what}")).await;
        cleanup(sink, &key).await;
    }
}

/// A stream that fails halfway makes the put fail and leaves no partial object.
pub async fn failed_stream_leaves_no_partial_object(sink: &dyn StorageSink) {
    const PROMISE: &str = "whole or nothing (interrupted stream)";
    let key = unique_key("interrupted.bin");
    let body = || {
        let chunks = vec![
            Ok(pattern(3, 1024 * 1024)),
            Err(io::Error::other("the client went away")),
        ];
        PutBody::new(4 * 1024 * 1024, stream::iter(chunks).boxed())
    };
    if let Ok(receipt) = sink.put(&key, body(), PutOptions::default()).await {
        panic!(
            "sink contract broken ({PROMISE}): a put whose stream failed succeeded with {receipt:?}"
        );
    }
    if readable(sink) {
        CONTRACT.expect_err(
            sink.head(&key).await,
            PROMISE,
            "head after an interrupted put",
            Error::is_not_found,
        );
    }

    CONTRACT.ok(
        sink.put(&key, PutBody::from_bytes("older"), PutOptions::default())
            .await,
        PROMISE,
        "put",
    );
    if let Ok(receipt) = sink.put(&key, body(), PutOptions::default()).await {
        panic!(
            "sink contract broken ({PROMISE}): a put whose stream failed succeeded with {receipt:?}"
        );
    }
    assert_older_or_nothing(sink, &key, b"older", "an interrupted put").await;
    cleanup(sink, &key).await;
}

/// A ranged get returns exactly those bytes, clamped at the end; a range starting at or
/// past the end is `Invalid`.
pub async fn ranges_are_exact_and_clamped(sink: &dyn StorageSink) {
    const PROMISE: &str = "ranges";
    let key = unique_key("ranged.bin");
    let data = pattern(4, 100_000);
    CONTRACT.ok(
        sink.put(
            &key,
            PutBody::from_bytes(data.clone()),
            PutOptions::default(),
        )
        .await,
        PROMISE,
        "put",
    );

    let cases: [(Range<u64>, Range<usize>); 4] = [
        (0..1, 0..1),
        (1000..51_000, 1000..51_000),
        (99_000..200_000, 99_000..100_000),
        (99_999..100_000, 99_999..100_000),
    ];
    for (range, expected) in cases {
        let got = CONTRACT.ok(
            sink.get(&key, GetOptions::default().with_range(range.clone()))
                .await,
            PROMISE,
            "ranged get",
        );
        assert_eq!(
            got.range,
            expected.start as u64..expected.end as u64,
            "{PROMISE}: get({range:?}) must report the clamped range"
        );
        assert_eq!(
            got.meta.size,
            data.len() as u64,
            "{PROMISE}: a ranged get must report the whole object's size"
        );
        let bytes = CONTRACT.ok(
            got.bytes().await.map_err(Error::from),
            PROMISE,
            "reading the body",
        );
        assert!(
            bytes == data[expected.clone()],
            "{PROMISE}: get({range:?}) must return exactly bytes {expected:?}"
        );
    }
    for range in [100_000..100_010, 150_000..150_001] {
        let err = sink
            .get(&key, GetOptions::default().with_range(range.clone()))
            .await;
        CONTRACT.expect_err(
            err,
            PROMISE,
            &format!("get({range:?}) of a 100000-byte object"),
            |e| matches!(e, Error::Invalid { .. }),
        );
    }
    cleanup(sink, &key).await;
}

/// `head` reports the key and size; a content type, where the sink keeps one, is the one
/// put.
pub async fn head_reports_size(sink: &dyn StorageSink) {
    const PROMISE: &str = "head reports the full size";
    let key = unique_key("clip.mp4");
    let options = PutOptions::default().with_content_type("video/mp4");
    CONTRACT.ok(
        sink.put(&key, PutBody::from_bytes(pattern(5, 4321)), options)
            .await,
        PROMISE,
        "put",
    );
    let meta = CONTRACT.ok(sink.head(&key).await, PROMISE, "head");
    assert_eq!(meta.key, key, "{PROMISE}: head must report the key");
    assert_eq!(meta.size, 4321, "{PROMISE}: head must report the size");
    if let Some(content_type) = meta.content_type {
        assert_eq!(
            content_type, "video/mp4",
            "{PROMISE}: a kept content type must be the one put"
        );
    }
    cleanup(sink, &key).await;
}

/// `delete` removes the object; deleting a missing key is `Ok`.
pub async fn delete_is_idempotent(sink: &dyn StorageSink) {
    const PROMISE: &str = "idempotent delete";
    let key = unique_key("deleted.bin");
    CONTRACT.ok(
        sink.put(&key, PutBody::from_bytes("bye"), PutOptions::default())
            .await,
        PROMISE,
        "put",
    );
    CONTRACT.ok(sink.delete(&key).await, PROMISE, "delete");
    if !readable(sink) {
        return CONTRACT.ok(sink.delete(&key).await, PROMISE, "second delete");
    }
    CONTRACT.expect_err(
        sink.head(&key).await,
        PROMISE,
        "head after delete",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        sink.get(&key, GetOptions::default()).await.map(|r| r.meta),
        PROMISE,
        "get after delete",
        Error::is_not_found,
    );
    CONTRACT.ok(sink.delete(&key).await, PROMISE, "second delete");
}

/// `get` and `head` of a key that never existed are `NotFound`, also with a range;
/// `delete` of it is `Ok`.
pub async fn missing_is_not_found(sink: &dyn StorageSink) {
    const PROMISE: &str = "NotFound for a missing key";
    let key = unique_key("never-put.bin");
    CONTRACT.expect_err(
        sink.head(&key).await,
        PROMISE,
        "head of a missing key",
        Error::is_not_found,
    );
    let get = sink.get(&key, GetOptions::default()).await.map(|r| r.meta);
    CONTRACT.expect_err(get, PROMISE, "get of a missing key", Error::is_not_found);
    let get = sink
        .get(&key, GetOptions::default().with_range(0..10))
        .await
        .map(|r| r.meta);
    CONTRACT.expect_err(
        get,
        PROMISE,
        "ranged get of a missing key",
        Error::is_not_found,
    );
    CONTRACT.ok(
        sink.delete(&key).await,
        "idempotent delete",
        "delete of a missing key",
    );
}

/// The receipt's SHA-256 is the lowercase hex digest of the bytes put: checked against
/// known answers, and equal for the same bytes in different chunkings.
pub async fn receipt_has_sha256(sink: &dyn StorageSink) {
    const PROMISE: &str = "PutReceipt.sha256 is the SHA-256 of the bytes";
    let key = unique_key("hashed.bin");
    let empty = CONTRACT.ok(
        sink.put(
            &key,
            PutBody::from_bytes(Bytes::new()),
            PutOptions::default(),
        )
        .await,
        PROMISE,
        "put",
    );
    assert_eq!(
        empty.sha256, SHA256_EMPTY,
        "{PROMISE}: wrong digest of the empty object"
    );
    let abc = CONTRACT.ok(
        sink.put(&key, chunked_body(b"abc", 1), PutOptions::default())
            .await,
        PROMISE,
        "put",
    );
    assert_eq!(abc.sha256, SHA256_ABC, "{PROMISE}: wrong digest of \"abc\"");

    let data = pattern(6, 3 * 1024 * 1024 + 7);
    let first = CONTRACT.ok(
        sink.put(&key, chunked_body(&data, 1 << 20), PutOptions::default())
            .await,
        PROMISE,
        "put",
    );
    let second = CONTRACT.ok(
        sink.put(&key, chunked_body(&data, 77_777), PutOptions::default())
            .await,
        PROMISE,
        "put",
    );
    assert_eq!(
        first, second,
        "{PROMISE}: the same bytes in other chunks must give the same receipt"
    );
    assert!(
        first.sha256.len() == 64
            && first
                .sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{PROMISE}: the digest must be 64 lowercase hex digits, got {:?}",
        first.sha256
    );
    let other = CONTRACT.ok(
        sink.put(
            &key,
            PutBody::from_bytes(pattern(7, data.len())),
            PutOptions::default(),
        )
        .await,
        PROMISE,
        "put",
    );
    assert_ne!(
        other.sha256, first.sha256,
        "{PROMISE}: different bytes must give a different digest"
    );
    cleanup(sink, &key).await;
}

/// A key no other run uses: `conformance/<random id>/<name>`.
fn unique_key(name: &str) -> ObjectKey {
    ObjectKey::new(format!("conformance/{}/{name}", RecordingId::generate())).expect("a valid key")
}

/// `size` bytes of a pattern that differs per `seed` and per position.
fn pattern(seed: u8, size: usize) -> Bytes {
    (0..size)
        .map(|i| {
            (i as u32)
                .wrapping_mul(131)
                .wrapping_add(seed as u32 * 7 + (i >> 16) as u32) as u8
        })
        .collect::<Vec<_>>()
        .into()
}

/// `data` as a body streamed in chunks of `chunk` bytes.
fn chunked_body(data: &[u8], chunk: usize) -> PutBody {
    let chunks: Vec<io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    PutBody::new(data.len() as u64, stream::iter(chunks).boxed())
}

async fn read(sink: &dyn StorageSink, key: &ObjectKey, options: GetOptions) -> Vec<u8> {
    let got = CONTRACT.ok(sink.get(key, options).await, "get", "get");
    CONTRACT
        .ok(
            got.bytes().await.map_err(Error::from),
            "get",
            "reading the body",
        )
        .to_vec()
}

/// After a failed put over `older`, the key holds either `older` or nothing, never a part
/// of the failed body.
async fn assert_older_or_nothing(
    sink: &dyn StorageSink,
    key: &ObjectKey,
    older: &[u8],
    after: &str,
) {
    const PROMISE: &str = "whole or nothing (an earlier complete object may remain)";
    if !readable(sink) {
        return;
    }
    match sink.get(key, GetOptions::default()).await {
        Err(e) if e.is_not_found() => {}
        Err(e) => panic!("sink contract broken ({PROMISE}): get after {after} failed: {e}"),
        Ok(got) => {
            let bytes = CONTRACT.ok(
                got.bytes().await.map_err(Error::from),
                PROMISE,
                "reading the body",
            );
            assert!(
                bytes == older,
                "{PROMISE}: after {after} the key holds {} bytes that are not the earlier object",
                bytes.len()
            );
        }
    }
}

async fn cleanup(sink: &dyn StorageSink, key: &ObjectKey) {
    CONTRACT.ok(sink.delete(key).await, "idempotent delete", "delete");
}

const CONTRACT: super::Contract = super::Contract("sink");
