//! Looking at media files with the tools users have: ffprobe and the MP4 box layout.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// `ffprobe -show_streams -show_format` as JSON.
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
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The codec names of the streams, in order.
pub fn codecs(probe: &Value) -> Vec<String> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_owned())
        .collect()
}

/// The container's duration in seconds.
pub fn duration(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The types of the top-level boxes of an MP4, in order (`ftyp`, `moov`, `mdat`, …).
pub fn top_level_boxes(mp4: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= mp4.len() {
        let size32 = u32::from_be_bytes(mp4[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&mp4[at + 4..at + 8]).into_owned();
        let size = match size32 {
            0 => (mp4.len() - at) as u64,
            1 => u64::from_be_bytes(mp4[at + 8..at + 16].try_into().unwrap()),
            n => n,
        };
        assert!(size >= 8, "box {kind} at {at} has size {size}");
        boxes.push(kind);
        at += size as usize;
    }
    boxes
}
