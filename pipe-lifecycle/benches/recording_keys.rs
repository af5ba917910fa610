//! What recording keys cost, on an SQLite catalog on disk and a local-disk sink:
//!
//! - making a recording's key (`Crypt::for_recording` the first time: seal, keep) and
//!   getting it again;
//! - a ranged read (64 KiB) of a 1 MiB encrypted object whose data key is under a
//!   recording key (fetched from the catalog and unsealed at each read) and under a
//!   key-encryption key (as before recording keys);
//! - escrowing `PIPE_BENCH_ESCROW_KEYS` (default 100,000) keys to a directory, then the
//!   same again (every key already there).
//!
//! `cargo bench -p pipe-lifecycle --bench recording_keys`

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipe_core::{
    Catalog, GetOptions, NewRecording, ObjectKey, PutBody, PutOptions, RecordingKeyStore, SinkKind,
    StorageSink,
};
use pipe_lifecycle::SqliteCatalog;
use pipe_storage::crypt::{Crypt, LocalKeyProvider};
use pipe_storage::{EncryptedSink, ObjectStoreSink};

fn main() {
    let keys: usize = std::env::var("PIPE_BENCH_ESCROW_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(keys));
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    format!(
        "median {:>7.1} µs, p99 {:>7.1} µs ({} runs)",
        at(0.5).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        times.len()
    )
}

async fn run(escrowed: usize) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(
        SqliteCatalog::open(dir.path().join("catalog.sqlite"))
            .await
            .unwrap(),
    );
    let keks = Arc::new(LocalKeyProvider::open_or_create(dir.path().join("keys")).unwrap());
    let plain = Crypt::new(keks);
    let crypt = plain.clone().with_recording_keys(catalog.clone());

    const RUNS: usize = 2_000;
    let mut ids = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        ids.push(
            catalog
                .create_recording(NewRecording::new())
                .await
                .unwrap()
                .id,
        );
    }
    let mut made = Vec::with_capacity(RUNS);
    for id in &ids {
        let start = Instant::now();
        crypt.for_recording(id).await.unwrap();
        made.push(start.elapsed());
    }
    let mut again = Vec::with_capacity(RUNS);
    for id in &ids {
        let start = Instant::now();
        crypt.for_recording(id).await.unwrap();
        again.push(start.elapsed());
    }
    println!("make a recording key:      {}", summary(made));
    println!("get it again:              {}", summary(again));

    let disk: Arc<dyn StorageSink> =
        Arc::new(ObjectStoreSink::local(dir.path().join("sink"), SinkKind::Local).unwrap());
    let object = vec![7u8; 1 << 20];
    for (name, sink, options) in [
        (
            "64 KiB read, recording key",
            EncryptedSink::new(Arc::clone(&disk), crypt.clone()),
            PutOptions::default().for_recording(ids[0].clone()),
        ),
        (
            "64 KiB read, KEK (before)",
            EncryptedSink::new(Arc::clone(&disk), plain.clone()),
            PutOptions::default(),
        ),
    ] {
        let key = ObjectKey::new(format!("bench/{}", name.len())).unwrap();
        sink.put(&key, PutBody::from_bytes(object.clone()), options)
            .await
            .unwrap();
        let mut reads = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let start = Instant::now();
            let got = sink
                .get(&key, GetOptions::default().with_range(0..65_536))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            reads.push(start.elapsed());
            assert_eq!(got.len(), 65_536);
        }
        println!("{name}: {}", summary(reads));
    }

    // Keys of `escrowed` recordings, made straight in the store.
    let sealed = catalog.recording_key(&ids[0]).await.unwrap().unwrap();
    for _ in RUNS..escrowed {
        let id = catalog
            .create_recording(NewRecording::new())
            .await
            .unwrap()
            .id;
        catalog
            .keep_recording_key(&id, sealed.clone())
            .await
            .unwrap();
    }
    let destination: Arc<dyn StorageSink> =
        Arc::new(ObjectStoreSink::local(dir.path().join("escrow"), SinkKind::Local).unwrap());
    for run in ["escrow, first time", "escrow, all there"] {
        let start = Instant::now();
        let done = pipe_storage::escrow::escrow_keys(catalog.as_ref(), &destination)
            .await
            .unwrap();
        let took = start.elapsed();
        println!(
            "{run}: {} keys ({} put) in {:.2} s, {:.0} keys/s",
            done.keys,
            done.put,
            took.as_secs_f64(),
            done.keys as f64 / took.as_secs_f64()
        );
    }
}
