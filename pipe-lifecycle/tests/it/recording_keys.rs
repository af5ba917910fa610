//! Recording keys on the SQLite catalog: the store's contract, and crypto-shredding
//! through it: every encrypted object of a recording (a sink's, the spool's) is wrapped
//! under the recording's key, and a copy of its bytes taken anywhere no longer opens
//! once the recording is purged; and the escrow of those keys for backups.

use std::sync::Arc;

use pipe_core::{
    Catalog, Change, ClaimOptions, DeletionReason, GetOptions, JobKind, KeyId, NewJob,
    NewRecording, ObjectKey, PutBody, PutOptions, RecordingId, RecordingKeyStore, SinkKind, Spool,
    StorageSink,
};
use pipe_lifecycle::SqliteCatalog;
use pipe_storage::crypt::{Crypt, Header, LocalKeyProvider};
use pipe_storage::{EncryptedSink, LocalSpool, ObjectStoreSink};

use crate::util::catalog_in;

#[tokio::test]
async fn sqlite_recording_keys_conform() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    pipe_core::conformance::recording_keys::run_all(catalog.as_ref(), catalog.as_ref()).await;
}

fn crypt_over(dir: &std::path::Path, catalog: &Arc<SqliteCatalog>) -> Crypt {
    let keks = LocalKeyProvider::open_or_create(dir.join("keys")).unwrap();
    Crypt::new(Arc::new(keks)).with_recording_keys(Arc::clone(catalog) as _)
}

/// Deletes `id` as the API does and purges it as the erasure job does.
async fn erase(catalog: &SqliteCatalog, id: &RecordingId) {
    catalog
        .commit(
            Change::new(id.clone())
                .delete(DeletionReason::Request)
                .enqueue(NewJob::new(JobKind::Erase {
                    recording: id.clone(),
                })),
        )
        .await
        .unwrap();
    let job = catalog
        .claim_job(ClaimOptions::default())
        .await
        .unwrap()
        .expect("the erase job");
    catalog
        .purge_recording(id, &job.lease, Vec::new())
        .await
        .unwrap();
}

/// Decrypts a whole stream-layout object on the blocking pool, as key providers require.
async fn decrypt(crypt: &Crypt, object: Vec<u8>) -> pipe_core::Result<Vec<u8>> {
    let crypt = crypt.clone();
    tokio::task::spawn_blocking(move || crypt.decrypt(&object))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_recording_leaves_copies_of_its_objects_that_no_key_opens() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    let crypt = crypt_over(dir.path(), &catalog);
    let disk = Arc::new(ObjectStoreSink::local(dir.path().join("sink"), SinkKind::Local).unwrap());
    let sink = EncryptedSink::new(disk.clone(), crypt.clone());

    let id = catalog
        .create_recording(NewRecording::new())
        .await
        .unwrap()
        .id;
    let other = catalog
        .create_recording(NewRecording::new())
        .await
        .unwrap()
        .id;
    let key = ObjectKey::new(format!("{id}/{id}.mp4")).unwrap();
    let other_key = ObjectKey::new(format!("{other}/{other}.mp4")).unwrap();
    for (recording, key) in [(&id, &key), (&other, &other_key)] {
        sink.put(
            key,
            PutBody::from_bytes("the recording's bytes"),
            PutOptions::default().for_recording(recording.clone()),
        )
        .await
        .unwrap();
    }
    // The object names the recording's key, and a copy of its bytes (a backup of the
    // bucket, a write-only sink) opens while the recording lives.
    let copy = disk
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let header = Header::parse(&copy).unwrap();
    assert_eq!(header.key_id(), &KeyId::for_recording(&id).unwrap());
    assert_eq!(
        decrypt(&crypt, copy.clone()).await.unwrap(),
        b"the recording's bytes"
    );

    // The spool's entry is under the same key.
    let spool = LocalSpool::open_encrypted(dir.path().join("spool"), crypt.clone())
        .await
        .unwrap();
    spool.create(&id).await.unwrap();
    spool
        .append(&id, 0, bytes::Bytes::from_static(b"webm"))
        .await
        .unwrap();
    let entry = std::fs::read(dir.path().join("spool").join(format!("{id}.enc"))).unwrap();
    assert_eq!(
        Header::parse(&entry).unwrap().key_id(),
        &KeyId::for_recording(&id).unwrap()
    );

    // A key rotation cannot move the object off its recording's key.
    let rewrap = crypt.clone();
    let moved = tokio::task::spawn_blocking(move || rewrap.rewrap(&copy))
        .await
        .unwrap();
    assert!(moved.is_err(), "re-wrapped off the recording key");
    let copy = disk
        .get(&key, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();

    erase(&catalog, &id).await;

    let opened = decrypt(&crypt, copy).await;
    assert!(
        matches!(opened, Err(ref e) if e.is_not_found()),
        "a copy of an erased recording's object opened: {opened:?}"
    );
    let read = sink.get(&key, GetOptions::default()).await;
    assert!(
        matches!(read, Err(ref e) if e.is_not_found()),
        "the sink's object of an erased recording opened"
    );
    let spooled = spool.read_at(&id, 0, 4).await;
    assert!(
        matches!(spooled, Err(ref e) if e.is_not_found()),
        "the spool entry of an erased recording opened: {spooled:?}"
    );
    // Another recording's objects are untouched.
    let kept = sink
        .get(&other_key, GetOptions::default())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(kept, "the recording's bytes");
}

/// A store that marks `victim` deleted when asked which keys are still live: a deletion
/// that lands while a backup escrows keys.
#[derive(Debug)]
struct DeletedDuringEscrow {
    catalog: Arc<SqliteCatalog>,
    victim: RecordingId,
}

#[async_trait::async_trait]
impl RecordingKeyStore for DeletedDuringEscrow {
    async fn recording_key(&self, id: &RecordingId) -> pipe_core::Result<Option<Vec<u8>>> {
        self.catalog.recording_key(id).await
    }

    async fn keep_recording_key(
        &self,
        id: &RecordingId,
        sealed: Vec<u8>,
    ) -> pipe_core::Result<Vec<u8>> {
        self.catalog.keep_recording_key(id, sealed).await
    }

    async fn live_recording_keys(
        &self,
        after: Option<&RecordingId>,
        limit: usize,
    ) -> pipe_core::Result<Vec<(RecordingId, Vec<u8>)>> {
        self.catalog.live_recording_keys(after, limit).await
    }

    async fn recordings_without_keys(&self) -> pipe_core::Result<Vec<RecordingId>> {
        self.catalog.recordings_without_keys().await
    }

    async fn still_live(&self, ids: &[RecordingId]) -> pipe_core::Result<Vec<RecordingId>> {
        let deleting = Change::new(self.victim.clone()).delete(DeletionReason::Request);
        if self
            .catalog
            .recording(&self.victim)
            .await?
            .deleting
            .is_none()
        {
            self.catalog.commit(deleting).await?;
        }
        self.catalog.still_live(ids).await
    }
}

/// Escrow puts each live key once, withdraws a key whose recording began to be deleted
/// meanwhile, and gives the keys back to a restored catalog, naming the one that is gone.
#[tokio::test]
async fn escrow_keeps_live_keys_apart_and_gives_them_back() {
    use pipe_storage::escrow::{MARKER, escrow_keys, recover_keys};

    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    let mut ids = Vec::new();
    for n in 0u8..3 {
        let id = catalog
            .create_recording(NewRecording::new())
            .await
            .unwrap()
            .id;
        catalog.keep_recording_key(&id, vec![n; 61]).await.unwrap();
        ids.push(id);
    }
    let victim = ids[1].clone();
    let store = DeletedDuringEscrow {
        catalog: Arc::clone(&catalog),
        victim: victim.clone(),
    };
    let destination: Arc<dyn StorageSink> =
        Arc::new(ObjectStoreSink::local(dir.path().join("escrow"), SinkKind::Local).unwrap());

    let done = escrow_keys(&store, &destination).await.unwrap();
    assert_eq!((done.keys, done.put, done.withdrawn), (2, 2, 1), "{done:?}");
    for (n, id) in ids.iter().enumerate() {
        let held = destination
            .get(&ObjectKey::for_recording_key(id), GetOptions::default())
            .await;
        if id == &victim {
            assert!(
                matches!(held, Err(ref e) if e.is_not_found()),
                "a deleted recording's key stayed in escrow"
            );
        } else {
            assert_eq!(held.unwrap().bytes().await.unwrap(), vec![n as u8; 61]);
        }
    }
    assert!(
        destination
            .head(&ObjectKey::new(MARKER).unwrap())
            .await
            .is_ok()
    );
    let again = escrow_keys(catalog.as_ref(), &destination).await.unwrap();
    assert_eq!((again.keys, again.put), (2, 0), "{again:?}");

    // A fresh catalog that needs the three keys gets two back and learns the third is gone.
    std::fs::create_dir_all(dir.path().join("restored")).unwrap();
    let restored = catalog_in(&dir.path().join("restored")).await;
    for id in &ids {
        restored
            .create_recording(NewRecording::new().with_id(id.clone()))
            .await
            .unwrap();
    }
    let found = recover_keys(restored.as_ref(), &ids, &[Arc::clone(&destination)])
        .await
        .unwrap();
    assert_eq!(found.keys, 2);
    assert_eq!(found.missing, vec![victim.clone()]);
    assert!(found.escrowed_here);
    assert_eq!(
        restored.recording_key(&ids[0]).await.unwrap(),
        Some(vec![0; 61])
    );
    let elsewhere: Arc<dyn StorageSink> =
        Arc::new(ObjectStoreSink::local(dir.path().join("elsewhere"), SinkKind::Local).unwrap());
    let nowhere = recover_keys(restored.as_ref(), &ids, &[elsewhere])
        .await
        .unwrap();
    assert!(!nowhere.escrowed_here && nowhere.missing.len() == 3);
}
