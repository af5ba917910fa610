//! Acknowledgement latency of a recording's chunk: `ObjectSpool::append` (one PUT to an
//! S3 server, `s3s-fs` on loopback, plaintext and encrypted) beside `LocalSpool::append`
//! (one `fdatasync`, on a real disk under the target directory). 200 chunks of each size,
//! one recording each, as a recorder sends them: one after another.
//!
//! `cargo bench -p pipe-storage --features test-servers --bench object_spool`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pipe_core::{RecordingId, Spool};
use pipe_storage::crypt::{Crypt, LocalKeyProvider};
use pipe_storage::testing::S3TestServer;
use pipe_storage::{LocalSpool, ObjectSpool};

const CHUNKS: usize = 200;

async fn latencies(spool: &dyn Spool, chunk: &Bytes) -> Vec<Duration> {
    let id = RecordingId::generate();
    spool.create(&id).await.unwrap();
    let mut offset = 0;
    let mut times = Vec::with_capacity(CHUNKS);
    for _ in 0..CHUNKS {
        let start = Instant::now();
        offset = spool.append(&id, offset, chunk.clone()).await.unwrap();
        times.push(start.elapsed());
    }
    spool.delete(&id).await.unwrap();
    times.sort();
    times
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let s3 = S3TestServer::start();
    let keys = Arc::new(LocalKeyProvider::open_or_create(dir.path().join("keys")).unwrap());
    runtime.block_on(async {
        let store = s3.config().object_store().unwrap();
        let spools: Vec<(&str, Box<dyn Spool>)> = vec![
            (
                "local spool (fdatasync)",
                Box::new(LocalSpool::open(dir.path().join("local")).await.unwrap()),
            ),
            (
                "object spool (S3 PUT)",
                Box::new(ObjectSpool::new(Arc::clone(&store))),
            ),
            (
                "object spool, encrypted",
                Box::new(ObjectSpool::encrypted(store, Crypt::new(keys))),
            ),
        ];
        for size in [64 * 1024, 1024 * 1024] {
            let chunk = Bytes::from(vec![0x5a; size]);
            for (name, spool) in &spools {
                let times = latencies(spool.as_ref(), &chunk).await;
                let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
                println!(
                    "{:>4} KiB chunks, {name:<24} median {:>6.2} ms, p99 {:>6.2} ms",
                    size / 1024,
                    ms(at(0.5)),
                    ms(at(0.99))
                );
            }
        }
    });
}
