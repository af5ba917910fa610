use std::sync::Arc;

use bytes::Bytes;
use pipe_core::{RecordingId, Spool, SpoolEntry};
use pipe_storage::LocalSpool;

use crate::pattern;

#[tokio::test]
async fn local_spool_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let spool = LocalSpool::open(dir.path()).await.unwrap();
    pipe_core::conformance::spool::run_all(&spool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_spool_conforms_on_a_multi_threaded_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let spool = LocalSpool::open(dir.path().join("nested/spool"))
        .await
        .unwrap();
    pipe_core::conformance::spool::run_all(&spool).await;
}

#[tokio::test]
async fn entries_survive_a_restart_and_appends_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (open, sealed) = (RecordingId::generate(), RecordingId::generate());
    {
        let spool = LocalSpool::open(dir.path()).await.unwrap();
        spool.create(&open).await.unwrap();
        assert_eq!(
            spool.append(&open, 0, pattern(0, 100_000)).await.unwrap(),
            100_000
        );
        spool.create(&sealed).await.unwrap();
        spool.append(&sealed, 0, pattern(0, 10)).await.unwrap();
        spool.seal(&sealed).await.unwrap();
    }

    let spool = LocalSpool::open(dir.path()).await.unwrap();
    assert_eq!(
        spool.stat(&open).await.unwrap(),
        SpoolEntry::new(open.clone(), 100_000, false)
    );
    assert_eq!(
        spool.stat(&sealed).await.unwrap(),
        SpoolEntry::new(sealed.clone(), 10, true)
    );
    let mut listed = spool.list().await.unwrap();
    listed.sort_by_key(|e| e.len);
    assert_eq!(
        listed,
        [
            SpoolEntry::new(sealed.clone(), 10, true),
            SpoolEntry::new(open.clone(), 100_000, false)
        ]
    );

    // The client resumes at the durable length, re-sending a little of what it had sent.
    assert_eq!(
        spool
            .append(&open, 99_000, pattern(99_000, 11_000))
            .await
            .unwrap(),
        110_000
    );
    assert_eq!(
        spool.read_at(&open, 0, 200_000).await.unwrap(),
        pattern(0, 110_000)
    );
    assert!(
        spool
            .append(&sealed, 10, Bytes::from_static(b"x"))
            .await
            .unwrap_err()
            .is_precondition()
    );
}

#[tokio::test]
async fn files_that_are_not_entries_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let spool = LocalSpool::open(dir.path()).await.unwrap();
    let id = RecordingId::generate();
    // What a delete that crashed between its two removals leaves, plus strangers.
    std::fs::write(dir.path().join(format!("{id}.sealed")), b"").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    std::fs::write(dir.path().join("not an id.data"), b"hello").unwrap();
    std::fs::create_dir(dir.path().join("subdir")).unwrap();

    assert_eq!(spool.list().await.unwrap(), []);
    assert!(spool.stat(&id).await.unwrap_err().is_not_found());
    assert_eq!(
        spool.create(&id).await.unwrap(),
        SpoolEntry::new(id.clone(), 0, false),
        "a stale marker sealed a new entry"
    );
    assert_eq!(spool.list().await.unwrap(), [SpoolEntry::new(id, 0, false)]);
}

#[tokio::test]
async fn append_to_a_missing_entry_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let spool = LocalSpool::open(dir.path()).await.unwrap();
    let err = spool
        .append(&RecordingId::generate(), 0, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(
        spool.list().await.unwrap(),
        [],
        "a failed append created an entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_recordings_append_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Arc::new(LocalSpool::open(dir.path()).await.unwrap());
    let writers = (0..8).map(|_| {
        let spool = Arc::clone(&spool);
        tokio::spawn(async move {
            let id = RecordingId::generate();
            spool.create(&id).await.unwrap();
            let mut len = 0;
            for _ in 0..20 {
                len = spool.append(&id, len, pattern(len, 10_000)).await.unwrap();
            }
            (id, len)
        })
    });
    for writer in futures::future::join_all(writers).await {
        let (id, len) = writer.unwrap();
        assert_eq!(len, 200_000);
        assert_eq!(
            spool.read_at(&id, 0, 200_000).await.unwrap(),
            pattern(0, 200_000)
        );
    }
    assert_eq!(spool.list().await.unwrap().len(), 8);
}

/// A connection drops while its append is being written: the client's next append (the
/// same chunk, re-sent) must not interleave with the write still under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_append_does_not_overlap_the_next() {
    const CHUNK: usize = 16 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let spool = LocalSpool::open(dir.path()).await.unwrap();
    let id = RecordingId::generate();
    spool.create(&id).await.unwrap();
    let expected = pattern(0, 3 * CHUNK);
    for round in 0..3 {
        let offset = (round * CHUNK) as u64;
        let chunk = expected.slice(round * CHUNK..(round + 1) * CHUNK);
        let wait = std::time::Duration::from_micros(200 * (round as u64 + 1));
        let cancelled = tokio::time::timeout(wait, spool.append(&id, offset, chunk.clone())).await;
        assert!(
            cancelled.is_err(),
            "the append finished before it could be cancelled"
        );
        let len = spool.append(&id, offset, chunk).await.unwrap();
        assert_eq!(len, offset + CHUNK as u64);
    }
    let stored = spool.read_at(&id, 0, 4 * CHUNK).await.unwrap();
    assert!(
        stored == expected,
        "bytes interleaved: {} stored, {} expected",
        stored.len(),
        expected.len()
    );
}

/// However many recordings are appended to and never finished (abandoned mid-way), the
/// spool keeps at most `OPEN_ENTRIES` files open; a closed one reopens at its end, and a
/// sealed one is closed at once.
#[tokio::test]
async fn open_files_are_bounded() {
    use pipe_core::{RecordingId, Spool};
    use pipe_storage::LocalSpool;

    let dir = tempfile::tempdir().unwrap();
    let spool = LocalSpool::open(dir.path().join("spool")).await.unwrap();
    let open_in_spool = || {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir.path()))
            .count()
    };
    let mut ids = Vec::new();
    for n in 0..LocalSpool::OPEN_ENTRIES + 40 {
        let id = RecordingId::generate();
        spool.create(&id).await.unwrap();
        spool
            .append(&id, 0, bytes::Bytes::from(vec![n as u8; 10]))
            .await
            .unwrap();
        ids.push(id);
    }
    let open = open_in_spool();
    assert!(
        open <= LocalSpool::OPEN_ENTRIES,
        "{open} spool files open, more than {}",
        LocalSpool::OPEN_ENTRIES
    );
    // The first entry's file was closed; it reopens at its durable end.
    assert_eq!(
        spool
            .append(&ids[0], 10, bytes::Bytes::from_static(b"more"))
            .await
            .unwrap(),
        14
    );
    for id in &ids {
        spool.seal(id).await.unwrap();
    }
    assert_eq!(open_in_spool(), 0, "sealed entries keep files open");
}
