//! # pipe-transcode
//!
//! Pipe's media processing, in process, over FFmpeg: [`FfmpegTranscoder`] implements
//! [`pipe_core::Transcoder`]. It
//!
//! - **probes** an original: container, duration (counted from the packets when the header
//!   does not say, as in MediaRecorder's WebM), picture size, codecs, frame rate, rotation;
//! - **transcodes** it to an MP4 that plays in every browser: H.264 (libx264, `yuv420p`,
//!   even sizes, upright, the source's variable timestamps kept) and AAC (FFmpeg's native
//!   encoder), `moov` before `mdat` (`+faststart`). Audio-only inputs give an AAC-only MP4,
//!   video-only inputs an H.264-only MP4;
//! - **takes a JPEG snapshot** of the picture at [`TranscodeOptions::snapshot_at`](pipe_core::TranscodeOptions)
//!   (clamped to the recording), upright, at the MP4's size, full-range.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use bytes::Bytes;
//! use pipe_core::{TranscodeRequest, Transcoder};
//! use pipe_transcode::FfmpegTranscoder;
//!
//! # async fn run() -> pipe_core::Result<()> {
//! let original = Bytes::from(std::fs::read("recording.webm")?);
//! let transcoder = FfmpegTranscoder::new();
//! let done = transcoder
//!     .transcode(TranscodeRequest::new(Arc::new(original), "recording.mp4", "recording.jpg"))
//!     .await?;
//! println!("{} s, {}×{}", done.mp4.duration.as_secs_f64(), done.mp4.width, done.mp4.height);
//! # Ok(())
//! # }
//! ```
//!
//! ## Hardened input
//!
//! Recordings come from strangers, so FFmpeg reads them only through our own I/O: a custom
//! `AVIOContext` over the [`pipe_core::MediaSource`] (no FFmpeg protocol is
//! ever opened for input; `protocol_whitelist=none`), accepts only the demuxers for
//! WebM/Matroska, MP4/MOV, Ogg and WAV (the container is identified first and anything else
//! is refused with its name), runs only the decoders of the codecs browsers and phones
//! record, and enforces [`TranscodeOptions::max_duration`](pipe_core::TranscodeOptions) and
//! `max_pixels`. Whatever FFmpeg cannot read fails with [`pipe_core::Error::Media`] and a
//! reason; a failing source (not the media) surfaces as its own, usually retryable, error.
//! The one `unsafe` FFI call lives in the private `avio` module.
//!
//! ## Why ffmpeg-next
//!
//! One library reads everything browsers record (VP8/VP9/AV1/H.264, Opus/Vorbis/AAC in
//! WebM, MP4 and Ogg) and writes what they play, with decades of hardening; `ffmpeg-next`
//! binds it with owned, dropped-on-every-path wrappers (contexts, frames, packets, filter
//! graphs) and a safe custom-I/O context, so this crate needs a single line of FFI.
//! Running in process instead of spawning the `ffmpeg` CLI keeps the input behind our
//! I/O and our limits and saves a copy of the original to disk.
//!
//! ## What it does not do
//!
//! - No filmstrip, no HLS/DASH, no other output containers or codecs.
//! - No hardware encoders; libx264 and its thread pool run on the calling machine.
//! - The snapshot of an audio-only input is not written (the path stays untouched).
//! - FFmpeg's own log is silenced: reasons come back in the errors instead.
//! - The MP4 is written through FFmpeg's `file` protocol to a temporary file next to the
//!   target (faststart re-opens it by name), then renamed; inputs never touch a protocol.
//!
//! Requires FFmpeg 5.1 or newer with libx264, built with `--enable-gpl`.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod audio;
mod avio;
mod decode;
mod error;
mod probe;
mod snapshot;
mod transcode;
mod video;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use ffmpeg_next as ffmpeg;
use pipe_core::{
    Error, MediaInfo, MediaSource, Result, TranscodeOutput, TranscodeRequest, Transcoder,
};
use tokio::runtime::Handle;

/// A [`Transcoder`] over the FFmpeg libraries, in process.
///
/// Cheap to create and to clone; work runs on tokio's blocking threads, one transcode per
/// call (libx264 and the decoders use all cores within a call).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct FfmpegTranscoder;

impl FfmpegTranscoder {
    /// A transcoder. Initialises FFmpeg on first use.
    pub fn new() -> Self {
        Self
    }
}

/// Initialises FFmpeg once per process and silences its log.
fn init() -> Result<()> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg::init().map_err(|e| e.to_string())?;
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Quiet);
        Ok(())
    })
    .clone()
    .map_err(|e| Error::permanent("ffmpeg", format!("initialising FFmpeg: {e}")))
}

/// Runs `work` on a blocking thread, giving it the runtime's handle for source reads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce(Handle) -> Result<T> + Send + 'static,
) -> Result<T> {
    init()?;
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || work(handle))
        .await
        .map_err(|e| {
            Error::permanent(
                "pipe-transcode",
                format!("the transcoding thread failed: {e}"),
            )
        })?
}

#[async_trait]
impl Transcoder for FfmpegTranscoder {
    async fn probe(&self, source: Arc<dyn MediaSource>) -> Result<MediaInfo> {
        blocking(move |handle| transcode::probe_source(source, handle)).await
    }

    async fn transcode(&self, request: TranscodeRequest) -> Result<TranscodeOutput> {
        let span = tracing::info_span!("transcode", mp4 = %request.mp4.display());
        let started = std::time::Instant::now();
        let result =
            blocking(move |handle| span.in_scope(|| transcode::run(&request, handle))).await;
        match &result {
            Ok(done) => tracing::info!(
                seconds = done.mp4.duration.as_secs_f64(),
                took_ms = started.elapsed().as_millis() as u64,
                "transcoded"
            ),
            Err(e) => tracing::warn!(error = %e, "transcode failed"),
        }
        result
    }
}
