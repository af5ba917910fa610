//! Encryption at rest applied: the encrypting spool and the encrypting sink layer keep
//! their traits' contracts, store no plaintext, survive restarts, and rotate and shred
//! keys end to end.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use pipe_core::{
    Error, GetOptions, ObjectKey, PutBody, PutOptions, RecordingId, SinkKind, Spool, StorageSink,
    conformance,
};
use pipe_storage::crypt::{Crypt, Header, LocalKeyProvider};
use pipe_storage::{EncryptedSink, LocalSpool, ObjectStoreSink};

use crate::pattern;

/// The spool of the tests in `dir`: `dir/spool`, encrypted with keys in `dir/keys` if
/// `encrypted`.
pub async fn open_spool(dir: &Path, encrypted: bool) -> LocalSpool {
    let root = dir.join("spool");
    if encrypted {
        LocalSpool::open_encrypted(root, crypt(dir)).await.unwrap()
    } else {
        LocalSpool::open(root).await.unwrap()
    }
}

fn crypt(dir: &Path) -> Crypt {
    Crypt::new(Arc::new(keys(dir)))
}

fn keys(dir: &Path) -> LocalKeyProvider {
    LocalKeyProvider::open_or_create(dir.join("keys")).unwrap()
}

fn sink(dir: &Path, keys: Arc<LocalKeyProvider>) -> (EncryptedSink, Arc<ObjectStoreSink>) {
    let disk =
        Arc::new(ObjectStoreSink::local(dir.join("objects"), SinkKind::PipeStorage).unwrap());
    (EncryptedSink::new(disk.clone(), Crypt::new(keys)), disk)
}

/// Every file under `dir`, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encrypting_spool_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::spool::run_all(&open_spool(dir.path(), true).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encrypting_sink_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, _) = sink(dir.path(), Arc::new(keys(dir.path())));
    conformance::sink::run_all(&sink).await;
}

#[tokio::test]
async fn neither_spool_nor_sink_stores_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let marker = b"\x1a\x45\xdf\xa3 a recognisable plaintext run of bytes ".repeat(50);

    let spool = open_spool(dir.path(), true).await;
    let id = RecordingId::generate();
    spool.create(&id).await.unwrap();
    let mut len = 0;
    for _ in 0..5 {
        len = spool
            .append(&id, len, Bytes::from(marker.clone()))
            .await
            .unwrap();
    }
    assert_eq!(
        spool.read_at(&id, 0, marker.len()).await.unwrap(),
        &marker[..]
    );

    let (sink, _) = sink(dir.path(), Arc::new(keys(dir.path())));
    let key = ObjectKey::new("r/r.webm").unwrap();
    sink.put(
        &key,
        PutBody::from_bytes(marker.clone()),
        PutOptions::default(),
    )
    .await
    .unwrap();

    let stored = files(dir.path());
    assert!(
        stored.len() >= 3,
        "expected spool, object and key files: {:?}",
        stored.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, bytes) in stored {
        assert!(!contains(&bytes, &marker[..16]), "{path} holds plaintext");
    }
}

#[tokio::test]
async fn the_encrypting_spool_resumes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let id = RecordingId::generate();
    {
        let spool = open_spool(dir.path(), true).await;
        spool.create(&id).await.unwrap();
        // Not a multiple of the segment size: the durable tail is a partial segment.
        assert_eq!(
            spool.append(&id, 0, pattern(0, 100_003)).await.unwrap(),
            100_003
        );
    }
    let spool = open_spool(dir.path(), true).await;
    assert_eq!(spool.stat(&id).await.unwrap().len, 100_003);
    // The client re-sends from its last ack; only the new part is added.
    assert_eq!(
        spool
            .append(&id, 90_000, pattern(90_000, 60_000))
            .await
            .unwrap(),
        150_000
    );
    let sealed = spool.seal(&id).await.unwrap();
    assert!(sealed.sealed);
    assert_eq!(
        spool.read_at(&id, 0, 200_000).await.unwrap(),
        pattern(0, 150_000)
    );
    let listed = spool.list().await.unwrap();
    assert_eq!(
        listed.iter().find(|e| e.id == id).map(|e| e.len),
        Some(150_000)
    );
}

#[tokio::test]
async fn plaintext_entries_stay_readable_when_encryption_is_turned_on() {
    let dir = tempfile::tempdir().unwrap();
    let id = RecordingId::generate();
    let plain = open_spool(dir.path(), false).await;
    plain.create(&id).await.unwrap();
    plain.append(&id, 0, pattern(0, 1000)).await.unwrap();

    let spool = open_spool(dir.path(), true).await;
    assert_eq!(spool.create(&id).await.unwrap().len, 1000);
    assert_eq!(
        spool.append(&id, 1000, pattern(1000, 1000)).await.unwrap(),
        2000
    );
    assert_eq!(spool.read_at(&id, 0, 2000).await.unwrap(), pattern(0, 2000));
}

#[tokio::test]
async fn a_sealed_encrypted_entry_cut_short_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let id = RecordingId::generate();
    let spool = open_spool(dir.path(), true).await;
    spool.create(&id).await.unwrap();
    spool.append(&id, 0, pattern(0, 200_000)).await.unwrap();
    spool.seal(&id).await.unwrap();

    let path = dir.path().join("spool").join(format!("{id}.enc"));
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let reopened = open_spool(dir.path(), true).await;
    match reopened.stat(&id).await {
        Err(Error::Integrity { .. }) => {}
        other => panic!("a truncated sealed entry must fail its integrity check, got {other:?}"),
    }
    assert!(matches!(
        reopened.read_at(&id, 0, 10).await,
        Err(Error::Integrity { .. })
    ));
}

#[tokio::test]
async fn rotation_and_shredding_through_a_sink() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(keys(dir.path()));
    let first_key = keys
        .generated()
        .cloned()
        .expect("a first key was generated");
    let (sink, disk) = sink(dir.path(), keys.clone());
    // The ciphertext as the sink under the layer holds it.
    let stored = async |key: &ObjectKey| {
        disk.get(key, GetOptions::default())
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    };
    let header_of = async |key: &ObjectKey| Header::parse(&stored(key).await).unwrap();

    let old = ObjectKey::new("a/old.mp4").unwrap();
    sink.put(
        &old,
        PutBody::from_bytes(pattern(0, 300_000)),
        PutOptions::default(),
    )
    .await
    .unwrap();
    let second_key = keys.rotate().unwrap();
    let new = ObjectKey::new("a/new.mp4").unwrap();
    sink.put(
        &new,
        PutBody::from_bytes(pattern(7, 1000)),
        PutOptions::default(),
    )
    .await
    .unwrap();

    // New objects use the newest key; old ones stay readable under theirs.
    assert_eq!(header_of(&old).await.key_id(), &first_key);
    assert_eq!(header_of(&new).await.key_id(), &second_key);
    let read = |key: ObjectKey| {
        let sink = sink.clone();
        async move {
            sink.get(&key, GetOptions::default())
                .await?
                .bytes()
                .await
                .map_err(Error::from)
        }
    };
    assert_eq!(read(old.clone()).await.unwrap(), pattern(0, 300_000));

    // Re-wrapping moves the old object to the new key without touching a segment.
    let before = stored(&old).await;
    sink.rewrap(&old).await.unwrap();
    let after = stored(&old).await;
    let header_len = header_of(&old).await.len();
    assert_eq!(header_of(&old).await.key_id(), &second_key);
    assert_eq!(before.len(), after.len());
    assert_eq!(
        before[header_len..],
        after[header_len..],
        "re-wrapping changed the segments"
    );
    assert_eq!(read(old.clone()).await.unwrap(), pattern(0, 300_000));

    // Shredding destroys the wrapped data key: no key opens the object again.
    sink.shred(&new).await.unwrap();
    assert!(header_of(&new).await.is_shredded());
    assert!(
        read(new.clone()).await.is_err(),
        "a shredded object was read"
    );
    let ranged = sink
        .get(&new, GetOptions::default().with_range(0..10))
        .await;
    assert!(ranged.is_err(), "a range of a shredded object was read");
    // The other object is untouched.
    assert_eq!(read(old).await.unwrap(), pattern(0, 300_000));
}

/// A key provider that notes the threads it is called on: a remote KMS blocks, so
/// providers must never be called on the async executor's threads.
#[derive(Debug)]
struct ThreadNoting {
    inner: LocalKeyProvider,
    threads: std::sync::Mutex<Vec<std::thread::ThreadId>>,
}

impl ThreadNoting {
    fn note(&self) {
        self.threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
    }
}

impl pipe_core::KeyProvider for ThreadNoting {
    fn current(&self) -> pipe_core::Result<pipe_core::KeyId> {
        self.note();
        self.inner.current()
    }

    fn wrap(
        &self,
        id: &pipe_core::KeyId,
        key: &[u8],
        context: &[u8],
    ) -> pipe_core::Result<Vec<u8>> {
        self.note();
        self.inner.wrap(id, key, context)
    }

    fn unwrap(
        &self,
        id: &pipe_core::KeyId,
        wrapped: &[u8],
        context: &[u8],
    ) -> pipe_core::Result<Vec<u8>> {
        self.note();
        self.inner.unwrap(id, wrapped, context)
    }
}

/// On a single-threaded runtime the executor is the test's own thread: the encrypting
/// sink's put, get and re-wrap must call the key provider anywhere else.
#[tokio::test(flavor = "current_thread")]
async fn the_key_provider_is_never_called_on_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(ThreadNoting {
        inner: keys(dir.path()),
        threads: Default::default(),
    });
    let disk = Arc::new(
        ObjectStoreSink::local(dir.path().join("objects"), SinkKind::PipeStorage).unwrap(),
    );
    let sink = EncryptedSink::new(disk, Crypt::new(provider.clone()));
    let key = ObjectKey::new("abc/abc.mp4").unwrap();
    sink.put(
        &key,
        PutBody::from_bytes(pattern(0, 100_000)),
        PutOptions::default(),
    )
    .await
    .unwrap();
    let read = sink
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(read, pattern(0, 100_000));
    sink.rewrap(&key).await.unwrap();

    let executor = std::thread::current().id();
    let threads = provider.threads.lock().unwrap().clone();
    assert!(
        threads.len() >= 3,
        "the provider was not asked: {threads:?}"
    );
    assert!(
        threads.iter().all(|t| *t != executor),
        "the key provider was called on the executor's thread"
    );
}
