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

/// Where the files under `dir` show recognisable media: the WebM (EBML), MP4 (`ftyp`) or
/// JPEG (SOI + first marker) signatures, or any 64-byte run of one of `known` files. Only runs of
/// compressed media count (32 or more distinct byte values): the low-entropy structure of
/// box headers and zero padding is shared by every format, SQLite's included.
pub fn recognisable_media(dir: &Path, known: &[&[u8]]) -> Vec<String> {
    const RUN: usize = 64;
    // A JPEG opens with SOI and then APP0 (JFIF), APP1 (Exif), a comment (FFmpeg's) or
    // the quantisation tables.
    const SIGNATURES: [(&str, &[u8]); 6] = [
        ("a WebM signature", &[0x1A, 0x45, 0xDF, 0xA3]),
        ("an MP4 signature", b"ftyp"),
        ("a JPEG marker", &[0xFF, 0xD8, 0xFF, 0xE0]),
        ("a JPEG marker", &[0xFF, 0xD8, 0xFF, 0xE1]),
        ("a JPEG marker", &[0xFF, 0xD8, 0xFF, 0xFE]),
        ("a JPEG marker", &[0xFF, 0xD8, 0xFF, 0xDB]),
    ];
    let runs: std::collections::HashSet<&[u8]> = known
        .iter()
        .flat_map(|bytes| bytes.windows(RUN))
        .filter(|w| {
            let mut seen = [false; 256];
            w.iter().for_each(|b| seen[usize::from(*b)] = true);
            seen.iter().filter(|s| **s).count() >= 32
        })
        .collect();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        // A file the server removed while we looked is no finding.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for (what, signature) in SIGNATURES {
            if bytes.windows(signature.len()).any(|w| w == signature) {
                found.push(format!("{} holds {what}", path.display()));
            }
        }
        if let Some(at) = bytes.windows(RUN).position(|w| runs.contains(w)) {
            found.push(format!(
                "{} holds 64 bytes of a media file at {at}",
                path.display()
            ));
        }
    }
    found
}
