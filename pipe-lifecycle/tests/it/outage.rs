//! Each sink's real server (S3, SFTP, FTPS, Azure, GCS) stopped for a minute in the middle
//! of a copy: the copies complete after the servers return, each sink is told once, and
//! nothing is left behind (no multipart upload in progress, no temporary file) or written
//! twice.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use pipe_core::{
    Catalog, GetOptions, GetResult, JobFilter, JobStatus, ObjectKey, ObjectMeta, PutBody,
    PutOptions, PutReceipt, RecordingState, Result, SinkCapabilities, SinkId, SinkKind,
    SinkLocation, StorageSink, UrlOptions,
};
use pipe_lifecycle::RetryPolicy;
use pipe_storage::testing::{
    AzureTestServer, FtpsTestServer, GcsTestServer, S3TestServer, SftpTestServer,
};
use pipe_storage::{FtpsSink, GcsSink, ObjectStoreSink, ObjectStoreSinkConfig, SftpSink};

use crate::util::notifier::RecordingNotifier;
use crate::util::{Harness, Parts, eventually};

/// How long each server stays down.
const OUTAGE: Duration = Duration::from_secs(60);

/// Bodies larger than this are paced.
const PACED_ABOVE: u64 = 1024 * 1024;

/// A real sink whose large puts are paced (64 KiB every 20 ms, about 3 MiB/s): a layer of
/// this test, so that a copy lasts long enough for its server to be stopped while the
/// bytes flow. Every byte still goes to the real server.
#[derive(Debug)]
struct Paced {
    inner: Arc<dyn StorageSink>,
    large_puts: AtomicUsize,
}

impl Paced {
    fn new(inner: Arc<dyn StorageSink>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            large_puts: AtomicUsize::new(0),
        })
    }

    fn large_puts(&self) -> usize {
        self.large_puts.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl StorageSink for Paced {
    fn kind(&self) -> SinkKind {
        self.inner.kind()
    }

    fn location(&self) -> SinkLocation {
        self.inner.location()
    }

    fn capabilities(&self) -> SinkCapabilities {
        self.inner.capabilities()
    }

    async fn url(&self, key: &ObjectKey, options: UrlOptions) -> Result<Option<String>> {
        self.inner.url(key, options).await
    }

    async fn put(&self, key: &ObjectKey, body: PutBody, options: PutOptions) -> Result<PutReceipt> {
        if body.size <= PACED_ABOVE {
            return self.inner.put(key, body, options).await;
        }
        self.large_puts.fetch_add(1, Ordering::SeqCst);
        let paced = body
            .stream
            .flat_map(|chunk| {
                let pieces: Vec<std::io::Result<Bytes>> = match chunk {
                    Ok(mut chunk) => {
                        let mut pieces = Vec::new();
                        while !chunk.is_empty() {
                            pieces.push(Ok(chunk.split_to(chunk.len().min(64 * 1024))));
                        }
                        pieces
                    }
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(pieces)
            })
            .then(|piece| async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                piece
            })
            .boxed();
        self.inner
            .put(key, PutBody::new(body.size, paced), options)
            .await
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        self.inner.get(key, options).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.inner.head(key).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.inner.delete(key).await
    }
}

/// A WebM of noise, about 12 MB: large enough for a multipart upload to S3 in 5 MiB
/// parts, and for a paced copy to last seconds.
fn noisy_webm() -> Bytes {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.webm");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p"])
        .args(["-s", "320x240", "-r", "25", "-i", "/dev/urandom", "-t", "4"])
        .args(["-c:v", "libvpx", "-b:v", "24M", "-deadline", "realtime"])
        .args(["-cpu-used", "8", "-an"])
        .arg(&path)
        .status()
        .expect("ffmpeg must be installed");
    assert!(status.success(), "ffmpeg could not make the fixture");
    let webm = Bytes::from(std::fs::read(&path).unwrap());
    assert!(
        webm.len() > 6 * 1024 * 1024,
        "the fixture is too small for a multipart upload: {} bytes",
        webm.len()
    );
    webm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_outlast_a_minute_long_outage_of_every_server() {
    let mut s3 = S3TestServer::start();
    let mut sftp = SftpTestServer::start();
    let mut ftps = FtpsTestServer::start();
    let mut azure = AzureTestServer::start();
    let mut gcs = GcsTestServer::start();
    let s3_sink = ObjectStoreSink::s3_with_config(
        &s3.config(),
        ObjectStoreSinkConfig::new(SinkKind::S3)
            .with_part_size(5 * 1024 * 1024)
            .with_max_concurrency(2),
    )
    .unwrap();
    let sinks = [
        ("bucket", Paced::new(Arc::new(s3_sink))),
        (
            "sftp",
            Paced::new(Arc::new(
                SftpSink::new(sftp.config(), SinkKind::Sftp).unwrap(),
            )),
        ),
        (
            "ftps",
            Paced::new(Arc::new(
                FtpsSink::new(ftps.config(), SinkKind::Ftp).unwrap(),
            )),
        ),
        (
            "azure",
            Paced::new(Arc::new(
                ObjectStoreSink::azure(&azure.config(), SinkKind::Azure).unwrap(),
            )),
        ),
        (
            "gcs",
            Paced::new(Arc::new(GcsSink::new(gcs.config(), SinkKind::Gcs).unwrap())),
        ),
    ];
    let notifier = Arc::new(RecordingNotifier::default());
    let h = Harness::new(Parts::Real, &[], notifier.clone(), |mut c| {
        for (id, sink) in &sinks {
            c = c.with_sink(SinkId::new(*id), Arc::clone(sink) as Arc<dyn StorageSink>);
        }
        // Quick retries, and enough of them to outlast the outage many times over.
        c.with_workers(6)
            .with_poll_interval(Duration::from_millis(50))
            .with_retry_policy(
                RetryPolicy::default()
                    .with_base(Duration::from_secs(1))
                    .with_cap(Duration::from_secs(4))
                    .with_max_attempts(200),
            )
    })
    .await;
    let id = h.ingest(noisy_webm(), "video/webm").await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Arc::clone(&h.pipeline).run(async {
        let _ = stopped.await;
    }));
    h.pipeline.wake();

    // Every sink in the middle of a large put, then every server down for a minute.
    eventually(
        Duration::from_secs(120),
        "a large put to every sink",
        || {
            let started = sinks.iter().all(|(_, sink)| sink.large_puts() > 0);
            async move { started }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s3.stop();
    sftp.stop();
    ftps.stop();
    azure.stop();
    gcs.stop();
    tokio::time::sleep(OUTAGE).await;
    let failed_meanwhile = h
        .catalog
        .jobs(JobFilter::default().recording(id.clone()))
        .await
        .unwrap()
        .iter()
        .filter(|j| matches!(j.kind, pipe_core::JobKind::Copy { .. }) && j.attempts > 1)
        .count();
    assert!(
        failed_meanwhile > 0,
        "no copy failed while the servers were down: the outage came too late"
    );
    s3.restart();
    sftp.restart();
    ftps.restart();
    azure.restart();
    gcs.restart();

    // Copied, and every job done; if not in time, the jobs say which sink is stuck.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let jobs = h
            .catalog
            .jobs(JobFilter::default().recording(id.clone()))
            .await
            .unwrap();
        let copied = h.catalog.recording(&id).await.unwrap().state == RecordingState::Copied;
        if copied && jobs.iter().all(|j| j.status == JobStatus::Done) {
            break;
        }
        if std::time::Instant::now() > deadline {
            let stuck: Vec<String> = jobs
                .iter()
                .filter(|j| j.status != JobStatus::Done)
                .map(|j| {
                    format!(
                        "{:?} {:?} after {} attempts: {:?}",
                        j.kind, j.status, j.attempts, j.last_error
                    )
                })
                .collect();
            panic!("not copied 120 s after the outage; jobs not done: {stuck:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    running.await.unwrap();

    // Told once per sink, never as failed.
    let names = notifier.names_for(&id);
    for event in [
        "video_copied_s3",
        "video_copied_sftp",
        "video_copied_ftp",
        "video_copied_azure",
        "video_copied_gcs",
    ] {
        assert_eq!(
            names.iter().filter(|n| *n == event).count(),
            1,
            "{event} in {names:?}"
        );
    }
    assert!(!names.iter().any(|n| n == "video_copy_failed"), "{names:?}");

    // Each sink holds each artifact once, whole: the files are the catalog's artifacts.
    let artifacts = h.catalog.artifacts(&id).await.unwrap();
    for (name, sink) in &sinks {
        for artifact in &artifacts {
            let meta = sink.head(&artifact.key).await.unwrap();
            assert_eq!(meta.size, artifact.size, "{name}: {}", artifact.key);
        }
    }
    // No upload left in progress in the bucket (the failed one is aborted once the
    // server is back), and no temporary file on the FTP servers.
    eventually(
        Duration::from_secs(90),
        "no multipart upload in progress",
        || {
            let none = s3.uploads_in_progress().is_empty();
            async move { none }
        },
    )
    .await;
    for (server, dir) in [("SFTP", sftp.files_dir()), ("FTPS", ftps.files_dir())] {
        let parts: Vec<_> = walk(&dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".part"))
            .collect();
        assert!(
            parts.is_empty(),
            "{server}: temporary files left: {parts:?}"
        );
    }
    let bucket_files = walk(&s3.bucket_dir());
    assert_eq!(
        bucket_files.len(),
        artifacts.len(),
        "the bucket holds other files than the artifacts: {bucket_files:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}
