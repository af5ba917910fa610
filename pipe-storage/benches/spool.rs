//! What durability costs: `LocalSpool::append` (every chunk `fdatasync`'d before it
//! returns), in plaintext and encrypted, against the floor, a plain `std::fs` sequential
//! write with `sync_data` after every chunk, in the same directory on the same disk.
//!
//! `cargo bench -p pipe-storage --bench spool`
//!
//! Each sample writes a fresh file (deleted afterwards), so the disk use stays bounded.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pipe_core::{RecordingId, Spool};
use pipe_storage::LocalSpool;
use pipe_storage::crypt::{Crypt, LocalKeyProvider};

fn appends(c: &mut Criterion) {
    // Under target/tmp: a real disk, where /tmp may be a tmpfs on which fsync is free.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spool = runtime
        .block_on(LocalSpool::open(dir.path().join("spool")))
        .unwrap();
    let keys = LocalKeyProvider::open_or_create(dir.path().join("keys")).unwrap();
    let encrypted = runtime
        .block_on(LocalSpool::open_encrypted(
            dir.path().join("encrypted"),
            Crypt::new(std::sync::Arc::new(keys)),
        ))
        .unwrap();

    let mut group = c.benchmark_group("durable_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for chunk_size in [64 * 1024, 1024 * 1024] {
        let chunk = Bytes::from(vec![0x5a; chunk_size]);
        let label = format!("{} KiB", chunk_size / 1024);
        group.throughput(Throughput::Bytes(chunk_size as u64));

        group.bench_with_input(
            BenchmarkId::new("local_spool", &label),
            &chunk,
            |b, chunk| {
                b.iter_custom(|iters| runtime.block_on(spool_appends(&spool, chunk, iters)));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("local_spool_encrypted", &label),
            &chunk,
            |b, chunk| {
                b.iter_custom(|iters| runtime.block_on(spool_appends(&encrypted, chunk, iters)));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("std_fs_write_sync_data", &label),
            &chunk,
            |b, chunk| {
                b.iter_custom(|iters| raw_appends(dir.path(), chunk, iters));
            },
        );
    }
    group.finish();
}

/// `iters` appends of `chunk` to a new recording, each acknowledged (durable).
async fn spool_appends(spool: &LocalSpool, chunk: &Bytes, iters: u64) -> Duration {
    let id = RecordingId::generate();
    spool.create(&id).await.unwrap();
    let start = Instant::now();
    let mut len = 0;
    for _ in 0..iters {
        len = spool.append(&id, len, chunk.clone()).await.unwrap();
    }
    let elapsed = start.elapsed();
    spool.delete(&id).await.unwrap();
    elapsed
}

/// `iters` writes of `chunk` to a new file, each followed by `sync_data`.
fn raw_appends(dir: &Path, chunk: &[u8], iters: u64) -> Duration {
    let path = dir.join("raw.data");
    let mut file: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.sync_all().unwrap();
    let start = Instant::now();
    for _ in 0..iters {
        file.write_all(chunk).unwrap();
        file.sync_data().unwrap();
    }
    let elapsed = start.elapsed();
    drop(file);
    std::fs::remove_file(&path).unwrap();
    elapsed
}

criterion_group!(benches, appends);
criterion_main!(benches);
