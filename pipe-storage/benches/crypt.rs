//! What encryption at rest costs per core: AES-256-GCM segments sealed and opened by each
//! backend, through the stream layout (64 KiB segments) and the raw cipher, to compare
//! with `openssl speed -evp aes-256-gcm` on the same machine.
//!
//! `cargo bench -p pipe-storage --all-features --bench crypt`

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pipe_storage::crypt::cipher::{NONCE_LEN, all_backends};
use pipe_storage::crypt::{Crypt, LocalKeyProvider};

/// One object of 8 MiB: 128 segments of 64 KiB.
const OBJECT: usize = 8 * 1024 * 1024;
const SEGMENT: usize = 64 * 1024;
/// One read from a file or a socket (tokio reads files in 64 KiB at most... by default).
const READ: usize = 64 * 1024;

fn provider() -> Arc<LocalKeyProvider> {
    Arc::new(
        LocalKeyProvider::from_env_value("bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .unwrap(),
    )
}

/// An 8 MiB object streamed through in 1 MiB reads, the output buffer reused: how a file
/// is copied to a sink or served from one.
fn stream(c: &mut Criterion) {
    let plaintext = vec![0x5Au8; OBJECT];
    let mut group = c.benchmark_group("stream-64KiB-segments");
    group.throughput(Throughput::Bytes(OBJECT as u64));
    group.sample_size(30);
    for backend in all_backends() {
        let crypt = Crypt::new(provider()).with_backend(backend.clone());
        let mut out = Vec::with_capacity(READ + READ / 64);
        group.bench_function(BenchmarkId::new("encrypt", backend.name()), |b| {
            b.iter(|| {
                let mut encryptor = crypt.encryptor().unwrap();
                for read in plaintext.chunks(READ) {
                    out.clear();
                    encryptor.push_into(read, &mut out).unwrap();
                }
                encryptor.finish().unwrap()
            })
        });
        let object = crypt.encrypt(&plaintext).unwrap();
        group.bench_function(BenchmarkId::new("decrypt", backend.name()), |b| {
            b.iter(|| {
                let mut decryptor = crypt.decryptor();
                for read in object.chunks(READ) {
                    out.clear();
                    decryptor.push_into(read, &mut out).unwrap();
                }
                decryptor.finish().unwrap()
            })
        });
    }
    group.finish();
}

fn append(c: &mut Criterion) {
    // 1 MiB appended in 16 KiB chunks, as a recorder sends them, into memory (no fsync):
    // the cost of re-sealing the partial tail on every append.
    let chunk = vec![0x5Au8; 16 * 1024];
    let mut group = c.benchmark_group("append-16KiB-chunks");
    group.throughput(Throughput::Bytes(1024 * 1024));
    group.sample_size(20);
    for backend in all_backends() {
        let crypt = Crypt::new(provider()).with_backend(backend.clone());
        group.bench_function(BenchmarkId::new("append", backend.name()), |b| {
            b.iter(|| {
                let mut writer = crypt.create_append(Vec::new()).unwrap();
                for _ in 0..64 {
                    writer.append(&chunk).unwrap();
                }
                writer.finish().unwrap()
            })
        });
    }
    group.finish();
}

fn raw_seal(c: &mut Criterion) {
    let mut group = c.benchmark_group("aes-256-gcm-seal-64KiB");
    group.throughput(Throughput::Bytes(SEGMENT as u64));
    for backend in all_backends() {
        let key = backend.key(&[7; 32]);
        let mut buf = vec![0x5Au8; SEGMENT];
        let mut counter = 0u64;
        group.bench_function(backend.name(), |b| {
            b.iter(|| {
                counter += 1;
                let mut nonce = [0; NONCE_LEN];
                nonce[4..].copy_from_slice(&counter.to_be_bytes());
                key.seal_in_place(&nonce, b"", &mut buf).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stream, append, raw_seal);
criterion_main!(benches);
