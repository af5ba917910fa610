//! Transcodes one recording into a web-playable MP4 and a JPEG snapshot, in process.
//!
//! Run it with:
//!
//! ```sh
//! cargo run -p pipe-examples --example transcode_a_file -- in.webm out.mp4 out.jpg
//! ```
//!
//! It reads the whole file into memory (`Bytes` is a `MediaSource`), transcodes it with
//! `pipe_transcode::FfmpegTranscoder`, and prints what it found in the input and the output.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use pipe_core::{MediaInfo, TranscodeRequest, Transcoder};
use pipe_transcode::FfmpegTranscoder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, mp4, snapshot] = args.as_slice() else {
        eprintln!("usage: transcode_a_file <input> <output.mp4> <snapshot.jpg>");
        std::process::exit(2);
    };

    let original = Bytes::from(std::fs::read(input)?);
    let started = Instant::now();
    let done = FfmpegTranscoder::new()
        .transcode(TranscodeRequest::new(Arc::new(original), mp4, snapshot))
        .await?;

    print_info("input", &done.source);
    print_info("mp4", &done.mp4);
    println!("took {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn print_info(label: &str, info: &MediaInfo) {
    println!(
        "{label}: {} {:.3} s, {}×{} ({}, rotation {}°), video {}, audio {}, {} fps",
        info.container,
        info.duration.as_secs_f64(),
        info.width,
        info.height,
        info.orientation(),
        info.rotation,
        info.video_codec.as_deref().unwrap_or("none"),
        info.audio_codec.as_deref().unwrap_or("none"),
        info.frame_rate
            .map_or_else(|| "?".to_owned(), |r| format!("{r:.2}")),
    );
}
