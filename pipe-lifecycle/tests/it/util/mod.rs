//! Shared helpers: fixtures, the pipeline harness, and the stand-ins (each named as one).

pub mod cli_transcoder;
pub mod dir_storage;
pub mod notifier;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pipe_core::{
    Catalog, Change, JobKind, NewRecording, Notifier, RecordingId, RecordingState, SinkId,
    SinkKind, Spool, StorageSink, Transcoder,
};
use pipe_lifecycle::{Pipeline, PipelineConfig, SqliteCatalog};

use self::cli_transcoder::CliTranscoder;
use self::dir_storage::{DirSink, DirSpool};

/// A 2-second 320×240 VP8 + Opus WebM made by the FFmpeg CLI, once per test run.
pub fn webm() -> Bytes {
    static WEBM: OnceLock<Bytes> = OnceLock::new();
    WEBM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.webm");
        let status = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=30",
                "-f",
                "lavfi",
                "-i",
            ])
            .args(["sine", "-t", "2", "-c:v", "libvpx", "-c:a", "libopus"])
            .arg(&path)
            .status()
            .expect("ffmpeg must be installed");
        assert!(status.success(), "ffmpeg could not make the fixture");
        Bytes::from(std::fs::read(&path).unwrap())
    })
    .clone()
}

/// A 2-second Opus-only WebM (an audio recording), made once per test run.
pub fn audio_webm() -> Bytes {
    static WEBM: OnceLock<Bytes> = OnceLock::new();
    WEBM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.webm");
        let status = Command::new("ffmpeg")
            .args([
                "-v", "error", "-y", "-f", "lavfi", "-i", "sine", "-t", "2", "-c:a", "libopus",
            ])
            .arg(&path)
            .status()
            .expect("ffmpeg must be installed");
        assert!(status.success(), "ffmpeg could not make the fixture");
        Bytes::from(std::fs::read(&path).unwrap())
    })
    .clone()
}

/// `len` random bytes: an original no demuxer accepts.
pub fn garbage(len: usize) -> Bytes {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).unwrap();
    Bytes::from(bytes)
}

/// A catalog file in a fresh directory.
pub async fn catalog_in(dir: &Path) -> Arc<SqliteCatalog> {
    Arc::new(
        SqliteCatalog::open(dir.join("catalog.db"))
            .await
            .expect("open catalog"),
    )
}

/// Which spool, sinks and transcoder a harness uses.
#[derive(Debug, Clone, Copy)]
pub enum Parts {
    /// pipe-storage's `LocalSpool` and `ObjectStoreSink::local`, pipe-transcode's
    /// `FfmpegTranscoder`: what the server runs.
    Real,
    /// The stand-ins of this directory ([`DirSpool`], [`DirSink`], [`CliTranscoder`]).
    StandIns,
}

/// A pipeline over a real SQLite catalog, a spool, sinks and FFmpeg, in a temp dir.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub catalog: Arc<SqliteCatalog>,
    pub spool: Arc<dyn Spool>,
    pub sinks: Vec<(SinkId, Arc<dyn StorageSink>)>,
    pub pipeline: Arc<Pipeline>,
}

impl Harness {
    /// A harness of `parts` with `sinks` (name, kind) and `notifier`; `configure` adjusts
    /// the config.
    pub async fn new(
        parts: Parts,
        sinks: &[(&str, SinkKind)],
        notifier: Arc<dyn Notifier>,
        configure: impl FnOnce(PipelineConfig) -> PipelineConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = catalog_in(dir.path()).await;
        let spool: Arc<dyn Spool> = match parts {
            Parts::Real => Arc::new(
                pipe_storage::LocalSpool::open(dir.path().join("spool"))
                    .await
                    .unwrap(),
            ),
            Parts::StandIns => Arc::new(DirSpool::new(dir.path().join("spool"))),
        };
        let transcoder: Arc<dyn Transcoder> = match parts {
            Parts::Real => Arc::new(pipe_transcode::FfmpegTranscoder::new()),
            Parts::StandIns => Arc::new(CliTranscoder),
        };
        let sink = |name: &str, kind: SinkKind| -> Arc<dyn StorageSink> {
            let root = dir.path().join("sinks").join(name);
            match parts {
                Parts::Real => Arc::new(pipe_storage::ObjectStoreSink::local(root, kind).unwrap()),
                Parts::StandIns => Arc::new(DirSink::new(root, kind)),
            }
        };
        let sinks: Vec<_> = sinks
            .iter()
            .map(|(name, kind)| (SinkId::new(*name), sink(name, *kind)))
            .collect();
        let mut config = PipelineConfig::new(
            catalog.clone(),
            spool.clone(),
            transcoder,
            notifier,
            dir.path().join("work"),
        );
        for (id, sink) in &sinks {
            config = config.with_sink(id.clone(), sink.clone());
        }
        let pipeline = Arc::new(Pipeline::new(configure(config)));
        Self {
            dir,
            catalog,
            spool,
            sinks,
            pipeline,
        }
    }

    /// What the ingest does at finish: the original in the spool, then state `recorded`
    /// and a `probe` job in one commit.
    pub async fn ingest(&self, original: Bytes, mime: &str) -> RecordingId {
        let rec = self
            .catalog
            .create_recording(NewRecording::new().with_mime_type(mime).with_payload("it"))
            .await
            .unwrap();
        self.spool.create(&rec.id).await.unwrap();
        let len = self.spool.append(&rec.id, 0, original).await.unwrap();
        self.spool.seal(&rec.id).await.unwrap();
        self.catalog
            .commit(
                Change::new(rec.id.clone())
                    .expect_state(RecordingState::Receiving)
                    .state(RecordingState::Recorded)
                    .length(len)
                    .enqueue(JobKind::Probe {
                        recording: rec.id.clone(),
                    }),
            )
            .await
            .unwrap();
        rec.id
    }

    pub fn work_dir(&self, id: &RecordingId) -> PathBuf {
        self.dir.path().join("work").join(id.as_str())
    }
}

/// Polls `check` every 10 ms until it is true; panics after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
