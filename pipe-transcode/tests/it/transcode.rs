//! Web-playable MP4s and snapshots from what browsers and phones record.

use std::path::Path;
use std::time::Duration;

use pipe_core::{TranscodeOptions, TranscodeOutput, TranscodeRequest, Transcoder};
use pipe_transcode::FfmpegTranscoder;

use crate::util::{self, duration, ffprobe, fixture, streams, top_level_boxes};

async fn transcode(input: &Path, out: &Path, options: TranscodeOptions) -> TranscodeOutput {
    FfmpegTranscoder::new()
        .transcode(
            TranscodeRequest::new(
                util::source(input),
                out.join("out.mp4"),
                out.join("out.jpg"),
            )
            .with_options(options),
        )
        .await
        .expect("transcodes")
}

/// Asserts the MP4 at `path` is what browsers play: H.264 `yuv420p` of `size` (if video),
/// AAC (if audio), `moov` before `mdat`, lasting `seconds` ± 0.1 s.
fn assert_browser_mp4(path: &Path, size: Option<(u64, u64)>, audio: bool, seconds: f64) {
    let probe = ffprobe(path);
    let video = streams(&probe, "video");
    match size {
        Some((width, height)) => {
            assert_eq!(video.len(), 1, "one video stream: {probe}");
            assert_eq!(video[0]["codec_name"], "h264");
            assert_eq!(video[0]["pix_fmt"], "yuv420p");
            assert_eq!(
                (
                    video[0]["width"].as_u64().unwrap(),
                    video[0]["height"].as_u64().unwrap()
                ),
                (width, height)
            );
        }
        None => assert!(video.is_empty(), "no video stream: {probe}"),
    }
    let sound = streams(&probe, "audio");
    if audio {
        assert_eq!(sound.len(), 1, "one audio stream: {probe}");
        assert_eq!(sound[0]["codec_name"], "aac");
    } else {
        assert!(sound.is_empty(), "no audio stream: {probe}");
    }
    let got = duration(&probe);
    assert!(
        (got - seconds).abs() <= 0.1,
        "MP4 lasts {got} s, the source {seconds} s"
    );

    let boxes = top_level_boxes(path);
    let moov = boxes.iter().position(|b| b == "moov").expect("a moov box");
    let mdat = boxes.iter().position(|b| b == "mdat").expect("an mdat box");
    assert!(moov < mdat, "moov before mdat (faststart): {boxes:?}");
}

/// Asserts `path` is a JPEG of `size`.
fn assert_jpeg(path: &Path, size: (u64, u64)) {
    let bytes = std::fs::read(path).expect("a snapshot");
    assert_eq!(&bytes[..2], [0xFF, 0xD8], "JPEG magic");
    let probe = ffprobe(path);
    let video = streams(&probe, "video");
    assert_eq!(video[0]["codec_name"], "mjpeg");
    assert_eq!(
        (
            video[0]["width"].as_u64().unwrap(),
            video[0]["height"].as_u64().unwrap()
        ),
        size
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_webm_becomes_a_web_mp4_and_a_snapshot() {
    let input = util::webm();
    let dir = tempfile::tempdir().unwrap();
    let done = transcode(&input, dir.path(), TranscodeOptions::default()).await;

    let source_seconds = duration(&ffprobe(&input));
    assert_eq!(done.source.container, "matroska,webm");
    assert_eq!(done.source.video_codec.as_deref(), Some("vp8"));
    assert_eq!(done.source.audio_codec.as_deref(), Some("opus"));
    assert!((done.source.duration.as_secs_f64() - source_seconds).abs() < 0.01);
    assert_eq!(done.mp4.video_codec.as_deref(), Some("h264"));
    assert_eq!(done.mp4.audio_codec.as_deref(), Some("aac"));
    assert_eq!((done.mp4.width, done.mp4.height), (640, 480));
    assert_browser_mp4(
        &dir.path().join("out.mp4"),
        Some((640, 480)),
        true,
        source_seconds,
    );
    assert!((done.mp4.duration.as_secs_f64() - source_seconds).abs() <= 0.1);
    assert_jpeg(&dir.path().join("out.jpg"), (640, 480));

    // Only the two outputs: no temporary file left next to them.
    assert_eq!(util::entries(dir.path()), ["out.jpg", "out.mp4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webm_without_duration_keeps_its_length() {
    let input = util::live_webm();
    let dir = tempfile::tempdir().unwrap();
    let done = transcode(&input, dir.path(), TranscodeOptions::default()).await;

    let real = duration(&ffprobe(&util::webm()));
    assert!(
        (done.source.duration.as_secs_f64() - real).abs() <= 0.1,
        "counted {:?}",
        done.source.duration
    );
    assert_browser_mp4(&dir.path().join("out.mp4"), Some((640, 480)), true, real);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_video_comes_out_upright() {
    let input = util::rotated_mp4();
    let dir = tempfile::tempdir().unwrap();
    let done = transcode(&input, dir.path(), TranscodeOptions::default()).await;

    // `rotate=90` in FFmpeg 5.1 makes a matrix its CLI turns counter-clockwise; so do we.
    assert_eq!(done.source.rotation, 270);
    assert_eq!((done.source.width, done.source.height), (320, 240));
    assert_eq!(done.source.display_size(), (240, 320));
    assert_eq!(done.mp4.rotation, 0, "the pixels are turned, not flagged");
    assert_browser_mp4(
        &dir.path().join("out.mp4"),
        Some((240, 320)),
        false,
        duration(&ffprobe(&input)),
    );
    assert_jpeg(&dir.path().join("out.jpg"), (240, 320));

    // The same picture as the ffmpeg CLI's autorotation, not its mirror image.
    let cli = dir.path().join("cli.png");
    let ours = dir.path().join("ours.png");
    let mirror = dir.path().join("mirror.png");
    let run = |args: &[&str], out: &Path| {
        let ok = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(out)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    run(&["-i", input.to_str().unwrap(), "-frames:v", "1"], &cli);
    run(
        &[
            "-i",
            dir.path().join("out.mp4").to_str().unwrap(),
            "-frames:v",
            "1",
        ],
        &ours,
    );
    run(
        &[
            "-noautorotate",
            "-i",
            input.to_str().unwrap(),
            "-vf",
            "transpose=clock",
            "-frames:v",
            "1",
        ],
        &mirror,
    );
    assert!(
        psnr(&ours, &cli) > psnr(&ours, &mirror) + 10.0,
        "our picture matches the CLI's orientation"
    );
}

/// Peak signal-to-noise ratio between two same-size pictures, per ffmpeg's `psnr` filter.
fn psnr(a: &Path, b: &Path) -> f64 {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", "psnr", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let average = log
        .split("average:")
        .nth(1)
        .expect("psnr output")
        .split_whitespace()
        .next()
        .unwrap();
    if average == "inf" {
        f64::INFINITY
    } else {
        average.parse().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_sizes_become_even() {
    let input = fixture(
        "odd.webm",
        // lavfi sources round odd sizes down; the scaler does not.
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-t",
            "2",
            "-vf",
            "scale=321:241",
            "-c:v",
            "libvpx",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let done = transcode(&input, dir.path(), TranscodeOptions::default()).await;
    assert_eq!((done.source.width, done.source.height), (321, 241));
    assert_browser_mp4(
        &dir.path().join("out.mp4"),
        Some((320, 240)),
        false,
        duration(&ffprobe(&input)),
    );
    assert_jpeg(&dir.path().join("out.jpg"), (320, 240));
}

#[tokio::test(flavor = "multi_thread")]
async fn audio_only_gives_aac_only_and_no_snapshot() {
    let input = fixture(
        "audio.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "2.5",
            "-c:a",
            "libopus",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let done = transcode(&input, dir.path(), TranscodeOptions::default()).await;
    assert!(!done.source.has_video() && !done.mp4.has_video());
    assert_eq!(done.mp4.audio_codec.as_deref(), Some("aac"));
    assert_browser_mp4(
        &dir.path().join("out.mp4"),
        None,
        true,
        duration(&ffprobe(&input)),
    );
    assert!(
        !dir.path().join("out.jpg").exists(),
        "no snapshot without pictures"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wav_is_accepted() {
    let input = fixture(
        "mono.wav",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:sample_rate=44100",
            "-t",
            "1.5",
            "-ac",
            "1",
            "-c:a",
            "pcm_s16le",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let done = transcode(&input, dir.path(), TranscodeOptions::default()).await;
    assert_eq!(done.source.container, "wav");
    assert_browser_mp4(&dir.path().join("out.mp4"), None, true, 1.5);
}

#[tokio::test(flavor = "multi_thread")]
async fn video_only_gives_h264_only() {
    let input = fixture(
        "video.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-t",
            "2",
            "-c:v",
            "libvpx",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let done = transcode(&input, dir.path(), TranscodeOptions::default()).await;
    assert!(!done.mp4.has_audio());
    assert_browser_mp4(
        &dir.path().join("out.mp4"),
        Some((320, 240)),
        false,
        duration(&ffprobe(&input)),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_snapshot_time_is_honoured_and_clamped() {
    let input = util::webm();
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let later = dir.path().join("later");
    let past = dir.path().join("past");
    for d in [&first, &later, &past] {
        std::fs::create_dir(d).unwrap();
    }
    transcode(&input, &first, TranscodeOptions::default()).await;
    transcode(
        &input,
        &later,
        TranscodeOptions::default().with_snapshot_at(Duration::from_secs(2)),
    )
    .await;
    transcode(
        &input,
        &past,
        TranscodeOptions::default().with_snapshot_at(Duration::from_secs(3600)),
    )
    .await;
    for d in [&first, &later, &past] {
        assert_jpeg(&d.join("out.jpg"), (640, 480));
    }
    // testsrc2 changes every frame: different times give different pictures.
    let read = |d: &Path| std::fs::read(d.join("out.jpg")).unwrap();
    assert_ne!(read(&first), read(&later));
    assert_ne!(read(&later), read(&past));
}

#[tokio::test(flavor = "multi_thread")]
async fn crf_and_preset_are_honoured() {
    let input = util::webm();
    let dir = tempfile::tempdir().unwrap();
    let fine = dir.path().join("fine");
    let coarse = dir.path().join("coarse");
    std::fs::create_dir(&fine).unwrap();
    std::fs::create_dir(&coarse).unwrap();
    transcode(&input, &fine, TranscodeOptions::default().with_crf(18)).await;
    transcode(
        &input,
        &coarse,
        TranscodeOptions::default()
            .with_crf(40)
            .with_preset("ultrafast"),
    )
    .await;
    let size = |d: &Path| std::fs::metadata(d.join("out.mp4")).unwrap().len();
    assert!(
        size(&coarse) * 2 < size(&fine),
        "crf 40 is much smaller than crf 18"
    );

    let err = FfmpegTranscoder::new()
        .transcode(
            TranscodeRequest::new(
                util::source(&input),
                dir.path().join("x.mp4"),
                dir.path().join("x.jpg"),
            )
            .with_options(TranscodeOptions::default().with_preset("no-such-preset")),
        )
        .await
        .expect_err("an unknown preset is refused");
    assert!(matches!(err, pipe_core::Error::Media { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn running_twice_overwrites_with_equivalent_files() {
    let input = util::webm();
    let dir = tempfile::tempdir().unwrap();
    let first = transcode(&input, dir.path(), TranscodeOptions::default()).await;
    let second = transcode(&input, dir.path(), TranscodeOptions::default()).await;
    assert_eq!(first, second);
    assert_eq!(util::entries(dir.path()), ["out.jpg", "out.mp4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_mediarecorder_recording() {
    let dir = tempfile::tempdir().unwrap();
    let input = util::chromium::record(dir.path());
    let header = ffprobe(&input);
    assert!(
        header["format"]["duration"].is_null(),
        "MediaRecorder writes no duration: {header}"
    );

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let done = transcode(&input, &out, TranscodeOptions::default()).await;
    let seconds = done.source.duration.as_secs_f64();
    assert!(
        (2.5..3.6).contains(&seconds),
        "recorded for 3 s, counted {seconds} s"
    );
    assert_eq!(done.source.video_codec.as_deref(), Some("vp8"));
    assert_eq!(done.source.audio_codec.as_deref(), Some("opus"));
    assert_browser_mp4(&out.join("out.mp4"), Some((640, 480)), true, seconds);
    assert_jpeg(&out.join("out.jpg"), (640, 480));
}
