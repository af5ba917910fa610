//! Whatever FFmpeg cannot read, or must not, fails its own job with a reason.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pipe_core::{Error, MediaSource, TranscodeOptions, TranscodeRequest, Transcoder};
use pipe_transcode::FfmpegTranscoder;

use crate::util::{self, fixture};

/// Transcodes `source` into a fresh directory; returns the result and what the directory holds.
async fn attempt(
    source: Arc<dyn MediaSource>,
    options: TranscodeOptions,
) -> (pipe_core::Result<()>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let request = TranscodeRequest::new(
        source,
        dir.path().join("out.mp4"),
        dir.path().join("out.jpg"),
    )
    .with_options(options);
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        FfmpegTranscoder::new().transcode(request),
    )
    .await
    .expect("no hang");
    (result.map(|_| ()), util::entries(dir.path()))
}

/// Asserts `source` fails with `Error::Media` whose detail contains `reason`, leaving nothing.
async fn assert_refused(source: Arc<dyn MediaSource>, options: TranscodeOptions, reason: &str) {
    let (result, left) = attempt(source.clone(), options).await;
    match result {
        Err(Error::Media { detail }) => {
            assert!(detail.contains(reason), "`{detail}` should say `{reason}`")
        }
        other => panic!("expected a media error saying `{reason}`, got {other:?}"),
    }
    assert!(left.is_empty(), "nothing is left behind: {left:?}");
}

/// Asserts that probing `source` fails with `Error::Media` too.
async fn assert_probe_refuses(source: Arc<dyn MediaSource>) {
    let probed = FfmpegTranscoder::new().probe(source).await;
    assert!(
        matches!(probed, Err(Error::Media { .. })),
        "probe refuses it too: {probed:?}"
    );
}

fn bytes(data: Vec<u8>) -> Arc<dyn MediaSource> {
    Arc::new(Bytes::from(data))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_file_is_refused() {
    assert_refused(bytes(Vec::new()), TranscodeOptions::default(), "empty").await;
    assert_probe_refuses(bytes(Vec::new())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn random_bytes_are_refused() {
    // A fixed xorshift stream: random-looking, the same on every run.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let noise: Vec<u8> = (0..300_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let (result, left) = attempt(bytes(noise.clone()), TranscodeOptions::default()).await;
    assert_probe_refuses(bytes(noise)).await;
    assert!(matches!(result, Err(Error::Media { .. })), "{result:?}");
    assert!(left.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webm_cut_inside_its_header_is_refused() {
    let whole = std::fs::read(util::webm()).unwrap();
    for cut in [4, 40, 150, 300] {
        let (result, left) =
            attempt(bytes(whole[..cut].to_vec()), TranscodeOptions::default()).await;
        assert!(
            matches!(result, Err(Error::Media { .. })),
            "cut at {cut}: {result:?}"
        );
        assert!(left.is_empty(), "cut at {cut}: {left:?}");
        assert_probe_refuses(bytes(whole[..cut].to_vec())).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webm_cut_midstream_gives_what_is_there_or_a_reason() {
    let whole = std::fs::read(util::webm()).unwrap();
    let (result, left) = attempt(
        bytes(whole[..whole.len() / 2].to_vec()),
        TranscodeOptions::default(),
    )
    .await;
    match result {
        Ok(()) => assert_eq!(left, ["out.jpg", "out.mp4"]),
        Err(Error::Media { .. }) => assert!(left.is_empty()),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_off_the_allow_list_are_refused_by_name() {
    let avi = fixture(
        "clip.avi",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=10",
            "-t",
            "1",
            "-c:v",
            "mjpeg",
        ],
    );
    assert_refused(util::source(&avi), TranscodeOptions::default(), "`avi`").await;
    assert_probe_refuses(util::source(&avi)).await;
    let flv = fixture(
        "clip.flv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=10",
            "-t",
            "1",
            "-c:v",
            "flv1",
        ],
    );
    assert_refused(util::source(&flv), TranscodeOptions::default(), "`flv`").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn codecs_off_the_allow_list_are_refused_by_name() {
    let mjpeg = fixture(
        "mjpeg.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x120:rate=10",
            "-t",
            "1",
            "-c:v",
            "mjpeg",
        ],
    );
    assert_refused(util::source(&mjpeg), TranscodeOptions::default(), "`mjpeg`").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_are_enforced_with_a_reason() {
    let mut small = TranscodeOptions::default();
    small.max_pixels = 320 * 240;
    assert_refused(util::source(&util::webm()), small, "pixels").await;

    let mut short = TranscodeOptions::default();
    short.max_duration = Duration::from_secs(1);
    assert_refused(util::source(&util::webm()), short.clone(), "longer than").await;
    // Also when only the packets tell the length.
    let (result, left) = attempt(util::source(&util::live_webm()), short).await;
    assert!(
        matches!(&result, Err(Error::Media { detail }) if detail.contains("longer than")),
        "{result:?}"
    );
    assert!(left.is_empty());
}

/// A stand-in for a spool whose disk fails halfway through the file.
#[derive(Debug)]
struct FailingSourceStandIn {
    data: Bytes,
    fail_from: u64,
    panic: bool,
}

#[async_trait]
impl MediaSource for FailingSourceStandIn {
    async fn len(&self) -> io::Result<u64> {
        Ok(self.data.len() as u64)
    }

    async fn read_at(&self, offset: u64, len: usize) -> io::Result<Bytes> {
        if offset + len as u64 > self.fail_from {
            assert!(!self.panic, "a source that panics");
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the disk timed out",
            ));
        }
        self.data.read_at(offset, len).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_source_is_a_retryable_error_not_a_media_error() {
    let data = Bytes::from(std::fs::read(util::webm()).unwrap());
    let fail_from = data.len() as u64 / 2;
    let source = Arc::new(FailingSourceStandIn {
        data,
        fail_from,
        panic: false,
    });
    let (result, left) = attempt(source, TranscodeOptions::default()).await;
    let err = result.expect_err("the read fails");
    assert!(err.is_retryable(), "{err:?}");
    assert!(left.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_source_fails_the_job_without_crossing_into_ffmpeg() {
    let data = Bytes::from(std::fs::read(util::webm()).unwrap());
    let fail_from = data.len() as u64 / 2;
    let source = Arc::new(FailingSourceStandIn {
        data,
        fail_from,
        panic: true,
    });
    let (result, left) = attempt(source, TranscodeOptions::default()).await;
    assert!(result.is_err());
    assert!(left.is_empty());
}
