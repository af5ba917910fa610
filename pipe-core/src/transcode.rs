use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{MediaInfo, MediaSource, Result};

/// Turns an original into web-playable files.
///
/// # Contract
///
/// - **Reads only through the source.** An implementation opens no path, URL or protocol
///   for its input; the bytes come from [`MediaSource`] alone.
/// - **Hostile input fails its own job.** Anything that cannot be read or converted is
///   [`crate::Error::Media`] with a reason a person can act on; it never panics, hangs past
///   its limits or affects other jobs.
/// - **Off the async runtime.** CPU-bound work runs on blocking threads; the futures
///   returned here never block an executor thread.
/// - **Idempotent.** Running the same request again overwrites the outputs with
///   equivalent files.
/// - **Outputs complete or absent.** On `Ok` every output path holds a complete file; on
///   `Err` no output path is left half-written.
#[async_trait]
pub trait Transcoder: Send + Sync + Debug + 'static {
    /// What the source holds.
    async fn probe(&self, source: Arc<dyn MediaSource>) -> Result<MediaInfo>;

    /// Makes the MP4 and the snapshot the request names.
    async fn transcode(&self, request: TranscodeRequest) -> Result<TranscodeOutput>;
}

/// What to transcode and where to put the results.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TranscodeRequest {
    /// The original.
    pub source: Arc<dyn MediaSource>,
    /// Where the MP4 goes (H.264 + AAC, moov before mdat).
    pub mp4: PathBuf,
    /// Where the JPEG snapshot goes.
    pub snapshot: PathBuf,
    /// Settings.
    pub options: TranscodeOptions,
}

impl TranscodeRequest {
    /// Transcodes `source` to `mp4` and `snapshot` with default settings.
    pub fn new(
        source: Arc<dyn MediaSource>,
        mp4: impl Into<PathBuf>,
        snapshot: impl Into<PathBuf>,
    ) -> Self {
        Self {
            source,
            mp4: mp4.into(),
            snapshot: snapshot.into(),
            options: TranscodeOptions::default(),
        }
    }

    /// Uses `options`.
    #[must_use]
    pub fn with_options(mut self, options: TranscodeOptions) -> Self {
        self.options = options;
        self
    }
}

/// Encoder settings and limits.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TranscodeOptions {
    /// x264 constant rate factor (default 23).
    pub crf: u8,
    /// x264 preset (default `veryfast`).
    pub preset: String,
    /// AAC bit rate in bits per second (default 128 000).
    pub audio_bitrate: u32,
    /// Where in the recording the snapshot is taken (default 0: the first frame). Clamped
    /// to the recording's length.
    pub snapshot_at: Duration,
    /// Inputs longer than this are refused (default 4 hours).
    pub max_duration: Duration,
    /// Inputs with more pixels per frame than this are refused (default 3840×2160).
    pub max_pixels: u64,
    /// Only the first this much of the recording is converted (default: all of it): an
    /// environment's maximum recording time, enforced on what a recorder sent past it.
    pub cut_after: Option<Duration>,
}

impl Default for TranscodeOptions {
    fn default() -> Self {
        Self {
            crf: 23,
            preset: "veryfast".to_owned(),
            audio_bitrate: 128_000,
            snapshot_at: Duration::ZERO,
            max_duration: Duration::from_secs(4 * 3600),
            max_pixels: 3840 * 2160,
            cut_after: None,
        }
    }
}

impl TranscodeOptions {
    /// Uses x264 `crf`.
    #[must_use]
    pub fn with_crf(mut self, crf: u8) -> Self {
        self.crf = crf;
        self
    }

    /// Uses x264 `preset`.
    #[must_use]
    pub fn with_preset(mut self, preset: impl Into<String>) -> Self {
        self.preset = preset.into();
        self
    }

    /// Takes the snapshot at `at`.
    #[must_use]
    pub fn with_snapshot_at(mut self, at: Duration) -> Self {
        self.snapshot_at = at;
        self
    }

    /// Converts only the first `length` of the recording.
    #[must_use]
    pub fn with_cut_after(mut self, length: Duration) -> Self {
        self.cut_after = Some(length);
        self
    }
}

/// What a transcode made.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TranscodeOutput {
    /// What the probe found in the source.
    pub source: MediaInfo,
    /// What the MP4 holds.
    pub mp4: MediaInfo,
}

impl TranscodeOutput {
    /// An output.
    pub fn new(source: MediaInfo, mp4: MediaInfo) -> Self {
        Self { source, mp4 }
    }
}
