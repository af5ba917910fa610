//! ObjectSpool against the spool conformance suite on a real S3 server (plain and
//! encrypted) and on a local directory, and two nodes sharing one bucket: what one
//! acknowledged, the other resumes from and reads.

use std::sync::Arc;

use bytes::Bytes;
use pipe_core::{RecordingId, Spool, SpoolEntry};
use pipe_storage::ObjectSpool;
use pipe_storage::crypt::{Crypt, LocalKeyProvider};
use pipe_storage::testing::S3TestServer;

use crate::pattern;

fn bucket(s3: &S3TestServer) -> Arc<dyn object_store::ObjectStore> {
    s3.config().object_store().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_spool_conforms_on_s3() {
    let s3 = S3TestServer::start();
    pipe_core::conformance::spool::run_all(&ObjectSpool::new(bucket(&s3))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_object_spool_conforms_on_s3_and_stores_no_plaintext() {
    let s3 = S3TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeyProvider::open_or_create(dir.path()).unwrap();
    let spool = ObjectSpool::encrypted(bucket(&s3), Crypt::new(Arc::new(keys)));
    pipe_core::conformance::spool::run_all(&spool).await;

    let id = RecordingId::generate();
    spool.create(&id).await.unwrap();
    spool.append(&id, 0, pattern(0, 4096)).await.unwrap();
    let secret = pattern(0, 4096);
    for file in crate::files_under(s3.root()) {
        let stored = std::fs::read(&file).unwrap();
        assert!(
            !stored.windows(64).any(|w| w == &secret[1000..1064]),
            "{} holds plaintext",
            file.display()
        );
    }
    assert_eq!(
        spool.read_at(&id, 1000, 64).await.unwrap(),
        secret.slice(1000..1064)
    );
}

#[tokio::test]
async fn object_spool_conforms_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    pipe_core::conformance::spool::run_all(&ObjectSpool::new(Arc::new(store))).await;
}

/// Node A takes a recording's first bytes, then "dies"; node B, on the same bucket, says
/// where to resume, takes the rest and seals it; A, back, reads the whole recording (its
/// own knowledge of the entry was stale) and refuses to append to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_resumes_on_another_node_and_every_node_reads_it_whole() {
    let s3 = S3TestServer::start();
    let (a, b) = (ObjectSpool::new(bucket(&s3)), ObjectSpool::new(bucket(&s3)));
    let id = RecordingId::generate();
    a.create(&id).await.unwrap();
    assert_eq!(
        a.append(&id, 0, pattern(0, 300_000)).await.unwrap(),
        300_000
    );
    assert_eq!(a.read_at(&id, 0, 10).await.unwrap(), pattern(0, 10));

    let resumed = b.stat(&id).await.unwrap();
    assert_eq!(resumed, SpoolEntry::new(id.clone(), 300_000, false));
    // The client re-sends a little of what it had sent, then goes on.
    assert_eq!(
        b.append(&id, 250_000, pattern(250_000, 150_000))
            .await
            .unwrap(),
        400_000
    );
    assert_eq!(
        b.seal(&id).await.unwrap(),
        SpoolEntry::new(id.clone(), 400_000, true)
    );

    assert_eq!(
        a.read_at(&id, 0, 500_000).await.unwrap(),
        pattern(0, 400_000)
    );
    assert_eq!(
        a.read_at(&id, 299_990, 20).await.unwrap(),
        pattern(299_990, 20)
    );
    let refused = a.append(&id, 400_000, Bytes::from_static(b"more")).await;
    assert!(
        matches!(refused, Err(ref e) if e.is_precondition()),
        "{refused:?}"
    );
    let listed = a.list().await.unwrap();
    assert_eq!(listed, vec![SpoolEntry::new(id.clone(), 400_000, true)]);
    b.delete(&id).await.unwrap();
    assert!(a.stat(&id).await.unwrap_err().is_not_found());
}
