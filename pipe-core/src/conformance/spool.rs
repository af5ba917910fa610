//! The conformance suite of [`Spool`]: one async function per promise of its `# Contract`.
//!
//! Every function works on recordings of its own (fresh random ids), so the suite can run
//! against a spool that holds other entries, and the functions can run in any order.
//! Each panics with a message naming the promise that was broken.
//!
//! ```ignore
//! pipe_core::conformance::spool::run_all(&my_spool).await;
//! ```

use bytes::Bytes;

use crate::{Error, RecordingId, Spool, SpoolEntry};

/// Runs every check of this suite against `spool`.
pub async fn run_all(spool: &dyn Spool) {
    create_is_idempotent(spool).await;
    append_returns_durable_length(spool).await;
    gap_is_refused(spool).await;
    resent_ranges_are_harmless(spool).await;
    concurrent_resends_are_harmless(spool).await;
    read_at_is_exact_and_short_at_end(spool).await;
    sealed_is_final(spool).await;
    list_reports_every_entry(spool).await;
    delete_is_idempotent(spool).await;
    missing_is_not_found(spool).await;
}

/// `create` makes an empty, unsealed entry; a second `create` returns the existing state
/// and does not truncate it.
pub async fn create_is_idempotent(spool: &dyn Spool) {
    const PROMISE: &str = "idempotent create";
    let id = RecordingId::generate();
    let entry = CONTRACT.ok(spool.create(&id).await, PROMISE, "first create");
    assert_eq!(
        entry,
        SpoolEntry::new(id.clone(), 0, false),
        "{PROMISE}: a new entry is empty and unsealed"
    );

    CONTRACT.ok(
        spool.append(&id, 0, Bytes::from_static(b"hello")).await,
        PROMISE,
        "append",
    );
    let again = CONTRACT.ok(spool.create(&id).await, PROMISE, "second create");
    assert_eq!(
        again,
        SpoolEntry::new(id.clone(), 5, false),
        "{PROMISE}: create on an existing entry must return its state, not reset it"
    );
    assert_eq!(
        read_all(spool, &id).await,
        b"hello",
        "{PROMISE}: create must not touch existing bytes"
    );
    cleanup(spool, &id).await;
}

/// `append` returns the new durable length, and `stat` agrees with it.
pub async fn append_returns_durable_length(spool: &dyn Spool) {
    const PROMISE: &str = "durable on return";
    let id = RecordingId::generate();
    CONTRACT.ok(spool.create(&id).await, PROMISE, "create");
    let mut expected = Vec::new();
    for (i, size) in [1usize, 0, 4096, 70_000, 3].into_iter().enumerate() {
        let chunk = pattern(i as u8, size);
        let len = CONTRACT.ok(
            spool
                .append(&id, expected.len() as u64, chunk.clone())
                .await,
            PROMISE,
            "append",
        );
        expected.extend_from_slice(&chunk);
        assert_eq!(
            len,
            expected.len() as u64,
            "{PROMISE}: append must return the new durable length"
        );
        let stat = CONTRACT.ok(spool.stat(&id).await, PROMISE, "stat");
        assert_eq!(
            stat.len, len,
            "{PROMISE}: stat must report the length append returned"
        );
    }
    assert_eq!(
        read_all(spool, &id).await,
        expected,
        "{PROMISE}: the bytes read back must be the bytes appended"
    );
    cleanup(spool, &id).await;
}

/// An append that starts past the durable end is refused with `Precondition` and changes
/// nothing.
pub async fn gap_is_refused(spool: &dyn Spool) {
    const PROMISE: &str = "append-only at the durable end (a gap is refused)";
    let id = RecordingId::generate();
    CONTRACT.ok(spool.create(&id).await, PROMISE, "create");
    CONTRACT.ok(
        spool.append(&id, 0, Bytes::from_static(b"abc")).await,
        PROMISE,
        "append",
    );

    let err = spool.append(&id, 4, Bytes::from_static(b"x")).await;
    CONTRACT.expect_err(
        err,
        PROMISE,
        "append at offset 4 of a 3-byte entry",
        Error::is_precondition,
    );
    let err = spool.append(&id, u64::MAX, Bytes::from_static(b"x")).await;
    CONTRACT.expect_err(
        err,
        PROMISE,
        "append at offset u64::MAX",
        Error::is_precondition,
    );

    let stat = CONTRACT.ok(spool.stat(&id).await, PROMISE, "stat");
    assert_eq!(
        stat.len, 3,
        "{PROMISE}: a refused append must change nothing"
    );
    assert_eq!(
        read_all(spool, &id).await,
        b"abc",
        "{PROMISE}: a refused append must change nothing"
    );
    cleanup(spool, &id).await;
}

/// Re-sending an acknowledged range is harmless: the part below the durable length is
/// ignored, only the tail past it is added.
pub async fn resent_ranges_are_harmless(spool: &dyn Spool) {
    const PROMISE: &str = "append-only at the durable end (re-sending is harmless)";
    let id = RecordingId::generate();
    CONTRACT.ok(spool.create(&id).await, PROMISE, "create");
    CONTRACT.ok(
        spool
            .append(&id, 0, Bytes::from_static(b"0123456789"))
            .await,
        PROMISE,
        "append",
    );

    // Entirely below the durable length: ignored, even though the bytes differ.
    let len = CONTRACT.ok(
        spool.append(&id, 2, Bytes::from_static(b"xyz")).await,
        PROMISE,
        "re-send below len",
    );
    assert_eq!(
        len, 10,
        "{PROMISE}: a range entirely below len must add nothing"
    );
    let len = CONTRACT.ok(
        spool
            .append(&id, 0, Bytes::from_static(b"0123456789"))
            .await,
        PROMISE,
        "exact re-send",
    );
    assert_eq!(
        len, 10,
        "{PROMISE}: re-sending exactly the acknowledged range must add nothing"
    );
    let len = CONTRACT.ok(
        spool.append(&id, 10, Bytes::new()).await,
        PROMISE,
        "empty append at len",
    );
    assert_eq!(len, 10, "{PROMISE}: an empty append must add nothing");

    // Overlapping the end: only the tail past len is added.
    let len = CONTRACT.ok(
        spool.append(&id, 7, Bytes::from_static(b"789abc")).await,
        PROMISE,
        "overlapping re-send",
    );
    assert_eq!(len, 13, "{PROMISE}: only the part past len may be added");
    assert_eq!(
        read_all(spool, &id).await,
        b"0123456789abc",
        "{PROMISE}: the bytes below len must stay as they were"
    );
    cleanup(spool, &id).await;
}

/// Two clients racing to send the same chunk at the same offset (a reconnect that
/// overlaps the old connection) both succeed and the chunk is stored once.
pub async fn concurrent_resends_are_harmless(spool: &dyn Spool) {
    const PROMISE: &str = "append-only at the durable end (concurrent re-sends)";
    let id = RecordingId::generate();
    CONTRACT.ok(spool.create(&id).await, PROMISE, "create");
    let chunk = pattern(7, 100_000);
    let appends = (0..4).map(|_| spool.append(&id, 0, chunk.clone()));
    for result in futures::future::join_all(appends).await {
        let len = CONTRACT.ok(result, PROMISE, "racing append");
        assert_eq!(
            len,
            chunk.len() as u64,
            "{PROMISE}: every racing append must report the chunk as durable"
        );
    }
    assert_eq!(
        read_all(spool, &id).await,
        chunk,
        "{PROMISE}: racing re-sends must store the chunk exactly once"
    );
    cleanup(spool, &id).await;
}

/// `read_at` returns exactly the bytes asked for, fewer only at the end, none past it.
pub async fn read_at_is_exact_and_short_at_end(spool: &dyn Spool) {
    const PROMISE: &str = "read_at returns up to len bytes from offset, fewer only at the end";
    let id = RecordingId::generate();
    CONTRACT.ok(spool.create(&id).await, PROMISE, "create");
    let data = pattern(3, 10_000);
    CONTRACT.ok(spool.append(&id, 0, data.clone()).await, PROMISE, "append");

    let cases: [(u64, usize, &[u8]); 6] = [
        (0, 10, &data[..10]),
        (1234, 4000, &data[1234..5234]),
        (9_990, 100, &data[9_990..]),
        (0, 20_000, &data[..]),
        (10_000, 10, b""),
        (20_000, 10, b""),
    ];
    for (offset, len, expected) in cases {
        let got = CONTRACT.ok(spool.read_at(&id, offset, len).await, PROMISE, "read_at");
        assert!(
            got == expected,
            "{PROMISE}: read_at({offset}, {len}) returned {} bytes, expected {}",
            got.len(),
            expected.len()
        );
    }
    let got = CONTRACT.ok(
        spool.read_at(&id, 5, 0).await,
        PROMISE,
        "read_at of zero bytes",
    );
    assert!(
        got.is_empty(),
        "{PROMISE}: read_at of zero bytes must return nothing"
    );
    cleanup(spool, &id).await;
}

/// After `seal`, appends that would add bytes are refused with `Precondition`; `seal` is
/// idempotent, and `stat`, `create` and `read_at` still work.
pub async fn sealed_is_final(spool: &dyn Spool) {
    const PROMISE: &str = "sealed is final";
    let id = RecordingId::generate();
    CONTRACT.ok(spool.create(&id).await, PROMISE, "create");
    CONTRACT.ok(
        spool.append(&id, 0, Bytes::from_static(b"final")).await,
        PROMISE,
        "append",
    );

    let sealed = CONTRACT.ok(spool.seal(&id).await, PROMISE, "seal");
    assert_eq!(
        sealed,
        SpoolEntry::new(id.clone(), 5, true),
        "{PROMISE}: seal must return the final entry"
    );
    let err = spool.append(&id, 5, Bytes::from_static(b"more")).await;
    CONTRACT.expect_err(
        err,
        PROMISE,
        "append past the end of a sealed entry",
        Error::is_precondition,
    );

    let again = CONTRACT.ok(spool.seal(&id).await, PROMISE, "second seal");
    assert_eq!(again, sealed, "{PROMISE}: seal must be idempotent");
    let stat = CONTRACT.ok(spool.stat(&id).await, PROMISE, "stat");
    assert_eq!(
        stat, sealed,
        "{PROMISE}: stat must report the entry as sealed"
    );
    let created = CONTRACT.ok(spool.create(&id).await, PROMISE, "create on a sealed entry");
    assert_eq!(
        created, sealed,
        "{PROMISE}: create on a sealed entry must return it, still sealed"
    );
    assert_eq!(
        read_all(spool, &id).await,
        b"final",
        "{PROMISE}: a sealed entry must still be readable"
    );
    cleanup(spool, &id).await;
}

/// `list` reports every entry with its durable length and sealed flag.
pub async fn list_reports_every_entry(spool: &dyn Spool) {
    const PROMISE: &str = "known after a restart (list)";
    let open = RecordingId::generate();
    let sealed = RecordingId::generate();
    CONTRACT.ok(spool.create(&open).await, PROMISE, "create");
    CONTRACT.ok(
        spool.append(&open, 0, Bytes::from_static(b"1234")).await,
        PROMISE,
        "append",
    );
    CONTRACT.ok(spool.create(&sealed).await, PROMISE, "create");
    CONTRACT.ok(
        spool.append(&sealed, 0, Bytes::from_static(b"12")).await,
        PROMISE,
        "append",
    );
    CONTRACT.ok(spool.seal(&sealed).await, PROMISE, "seal");

    let entries = CONTRACT.ok(spool.list().await, PROMISE, "list");
    let find = |id: &RecordingId| entries.iter().find(|e| &e.id == id).cloned();
    assert_eq!(
        find(&open),
        Some(SpoolEntry::new(open.clone(), 4, false)),
        "{PROMISE}: list must report an open entry"
    );
    assert_eq!(
        find(&sealed),
        Some(SpoolEntry::new(sealed.clone(), 2, true)),
        "{PROMISE}: list must report a sealed entry"
    );
    let duplicates = entries.iter().filter(|e| e.id == open).count();
    assert_eq!(duplicates, 1, "{PROMISE}: list must report each entry once");

    cleanup(spool, &open).await;
    cleanup(spool, &sealed).await;
    let entries = CONTRACT.ok(spool.list().await, PROMISE, "list");
    assert!(
        !entries.iter().any(|e| e.id == open || e.id == sealed),
        "{PROMISE}: list must not report deleted entries"
    );
}

/// `delete` removes the entry and its bytes, and deleting a missing entry is `Ok`; a
/// deleted entry can be created afresh, empty and unsealed.
pub async fn delete_is_idempotent(spool: &dyn Spool) {
    const PROMISE: &str = "idempotent delete";
    let id = RecordingId::generate();
    CONTRACT.ok(spool.create(&id).await, PROMISE, "create");
    CONTRACT.ok(
        spool.append(&id, 0, Bytes::from_static(b"gone soon")).await,
        PROMISE,
        "append",
    );
    CONTRACT.ok(spool.seal(&id).await, PROMISE, "seal");

    CONTRACT.ok(spool.delete(&id).await, PROMISE, "delete");
    CONTRACT.expect_err(
        spool.stat(&id).await,
        PROMISE,
        "stat after delete",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        spool.read_at(&id, 0, 1).await,
        PROMISE,
        "read_at after delete",
        Error::is_not_found,
    );
    CONTRACT.ok(spool.delete(&id).await, PROMISE, "second delete");

    let fresh = CONTRACT.ok(spool.create(&id).await, PROMISE, "create after delete");
    assert_eq!(
        fresh,
        SpoolEntry::new(id.clone(), 0, false),
        "{PROMISE}: an entry created after delete must start empty"
    );
    cleanup(spool, &id).await;
}

/// `stat` and `read_at` of an entry that never existed are `NotFound`; `delete` of it is
/// `Ok`.
pub async fn missing_is_not_found(spool: &dyn Spool) {
    const PROMISE: &str = "NotFound for a missing entry";
    let id = RecordingId::generate();
    CONTRACT.expect_err(
        spool.stat(&id).await,
        PROMISE,
        "stat of a missing entry",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        spool.read_at(&id, 0, 1).await,
        PROMISE,
        "read_at of a missing entry",
        Error::is_not_found,
    );
    CONTRACT.ok(
        spool.delete(&id).await,
        "idempotent delete",
        "delete of a missing entry",
    );
}

/// `size` bytes of a pattern that differs per `seed` and per position.
fn pattern(seed: u8, size: usize) -> Bytes {
    (0..size)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed as u32) as u8)
        .collect::<Vec<_>>()
        .into()
}

async fn read_all(spool: &dyn Spool, id: &RecordingId) -> Vec<u8> {
    let len = CONTRACT.ok(spool.stat(id).await, "stat", "stat").len;
    let bytes = CONTRACT.ok(
        spool.read_at(id, 0, len as usize).await,
        "read_at",
        "read_at",
    );
    bytes.to_vec()
}

async fn cleanup(spool: &dyn Spool, id: &RecordingId) {
    CONTRACT.ok(spool.delete(id).await, "idempotent delete", "delete");
}

const CONTRACT: super::Contract = super::Contract("spool");
