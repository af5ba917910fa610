//! Fixtures made with the ffmpeg CLI (and Chromium), and what ffprobe says about results.

pub mod chromium;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use pipe_core::MediaSource;
use serde_json::Value;
use tempfile::TempDir;

/// A fixture file `name`, made once per test run with `ffmpeg <args> <path>`.
pub fn fixture(name: &str, args: &[&str]) -> PathBuf {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("fixture dir"));
    let path = dir.path().join(name);
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !path.exists() {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(&path)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg could not make {name}");
    }
    path
}

/// 3 s of 640×480 30 fps VP8 and 48 kHz Opus, as a browser records.
pub fn webm() -> PathBuf {
    fixture(
        "av.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x480:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "3",
            "-c:v",
            "libvpx",
            "-b:v",
            "1M",
            "-c:a",
            "libopus",
        ],
    )
}

/// A WebM file with no duration and no cues in its header, like MediaRecorder writes:
/// the muxer writes to a pipe, so it cannot go back to fill them in.
pub fn live_webm() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = webm().with_file_name("live.webm");
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(webm())
            .args(["-c", "copy", "-f", "webm", "pipe:1"])
            .output()
            .expect("ffmpeg runs");
        assert!(out.status.success());
        std::fs::write(&path, out.stdout).unwrap();
        path
    })
    .clone()
}

/// An MP4 whose video must be turned 90° for display (`rotate` tag → display matrix).
pub fn rotated_mp4() -> PathBuf {
    let plain = fixture(
        "plain.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    fixture(
        "rotated.mp4",
        &[
            "-i",
            plain.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
        ],
    )
}

/// The bytes of `path`, as a media source.
pub fn source(path: &Path) -> Arc<dyn MediaSource> {
    Arc::new(Bytes::from(std::fs::read(path).expect("fixture readable")))
}

/// `ffprobe -show_streams -show_format` of `path`.
pub fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// The streams of `probe` of kind `codec_type` (`video`, `audio`).
pub fn streams<'a>(probe: &'a Value, codec_type: &str) -> Vec<&'a Value> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["codec_type"] == codec_type)
        .collect()
}

/// The container's duration in seconds, as ffprobe reports it.
pub fn duration(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .expect("a duration")
        .parse()
        .unwrap()
}

/// The four-character types of the top-level boxes of the MP4 at `path`, in file order.
pub fn top_level_boxes(path: &Path) -> Vec<String> {
    let data = std::fs::read(path).unwrap();
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let size32 = u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
        let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned();
        let size = match size32 {
            0 => data.len() - at,
            1 => usize::try_from(u64::from_be_bytes(
                data[at + 8..at + 16].try_into().unwrap(),
            ))
            .unwrap(),
            n => n as usize,
        };
        assert!(size >= 8, "box {kind} at {at} has size {size}");
        boxes.push(kind);
        at += size;
    }
    assert_eq!(at, data.len(), "the boxes tile the file");
    boxes
}

/// The entries of `dir`.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
