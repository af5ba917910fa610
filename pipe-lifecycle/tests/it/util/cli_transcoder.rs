//! Transcoder stand-in over the `ffmpeg`/`ffprobe` command-line tools, for as long as
//! pipe-transcode's in-process `FfmpegTranscoder` is being written. Real FFmpeg, but it
//! copies the source into a temporary file first and has none of the hardening.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pipe_core::{
    Error, MediaInfo, MediaSource, Result, TranscodeOutput, TranscodeRequest, Transcoder,
};

/// Stand-in transcoder running the FFmpeg CLI.
#[derive(Debug, Default)]
pub struct CliTranscoder;

impl CliTranscoder {
    async fn source_file(source: &Arc<dyn MediaSource>) -> Result<tempfile::NamedTempFile> {
        let len = source.len().await?;
        let mut data = Vec::with_capacity(len as usize);
        while (data.len() as u64) < len {
            let chunk = source.read_at(data.len() as u64, 1 << 20).await?;
            if chunk.is_empty() {
                break;
            }
            data.extend_from_slice(&chunk);
        }
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), data)?;
        Ok(file)
    }
}

fn probe_path(path: &Path) -> Result<MediaInfo> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(path)
        .output()?;
    if !out.status.success() {
        return Err(Error::Media {
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Media {
            detail: e.to_string(),
        })?;
    let mut info = MediaInfo::new(json["format"]["format_name"].as_str().unwrap_or_default());
    let secs: f64 = json["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    info.duration = Duration::from_secs_f64(secs);
    for stream in json["streams"].as_array().into_iter().flatten() {
        let codec = stream["codec_name"].as_str().map(str::to_owned);
        match stream["codec_type"].as_str() {
            Some("video") if info.video_codec.is_none() => {
                info.video_codec = codec;
                info.width = stream["width"].as_u64().unwrap_or(0) as u32;
                info.height = stream["height"].as_u64().unwrap_or(0) as u32;
            }
            Some("audio") if info.audio_codec.is_none() => info.audio_codec = codec,
            _ => {}
        }
    }
    if !info.has_video() && !info.has_audio() {
        return Err(Error::Media {
            detail: "no audio or video stream".into(),
        });
    }
    Ok(info)
}

fn run(args: &[&std::ffi::OsStr]) -> Result<()> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Media {
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[async_trait]
impl Transcoder for CliTranscoder {
    async fn probe(&self, source: Arc<dyn MediaSource>) -> Result<MediaInfo> {
        let file = Self::source_file(&source).await?;
        tokio::task::spawn_blocking(move || probe_path(file.path()))
            .await
            .expect("probe panicked")
    }

    async fn transcode(&self, request: TranscodeRequest) -> Result<TranscodeOutput> {
        let file = Self::source_file(&request.source).await?;
        tokio::task::spawn_blocking(move || {
            let input = file.path();
            let source = probe_path(input)?;
            let mp4_tmp = request.mp4.with_extension("part.mp4");
            let mut args: Vec<&std::ffi::OsStr> = vec!["-i".as_ref(), input.as_os_str()];
            if source.has_video() {
                args.extend(
                    [
                        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    ]
                    .map(std::ffi::OsStr::new),
                );
            }
            if source.has_audio() {
                args.extend(["-c:a", "aac"].map(std::ffi::OsStr::new));
            }
            args.extend(["-movflags", "+faststart"].map(std::ffi::OsStr::new));
            args.push(mp4_tmp.as_os_str());
            run(&args)?;
            std::fs::rename(&mp4_tmp, &request.mp4)?;
            if source.has_video() {
                let jpg_tmp = request.snapshot.with_extension("part.jpg");
                run(&[
                    "-i".as_ref(),
                    input.as_os_str(),
                    "-frames:v".as_ref(),
                    "1".as_ref(),
                    jpg_tmp.as_os_str(),
                ])?;
                std::fs::rename(&jpg_tmp, &request.snapshot)?;
            }
            let mp4 = probe_path(&request.mp4)?;
            Ok(TranscodeOutput::new(source, mp4))
        })
        .await
        .expect("transcode panicked")
    }
}
