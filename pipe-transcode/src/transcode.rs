//! One transcode, start to finish, on a blocking thread.
//!
//! The MP4 is written by FFmpeg's `file` protocol (the only protocol the output context
//! may use: `protocol_whitelist=file`) to a temporary file next to the target, because
//! `movflags=+faststart` re-opens the finished file by its URL to move `moov` in front of
//! `mdat`. Both outputs are renamed into place only when complete.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use ffmpeg_next as ffmpeg;
use ffmpeg_next::{Dictionary, Packet, media as kind};
use pipe_core::{MediaInfo, Result, TranscodeOptions, TranscodeOutput, TranscodeRequest};
use tempfile::NamedTempFile;
use tokio::runtime::Handle;

use crate::audio::AudioPipeline;
use crate::avio::{self, MediaInput};
use crate::error::{media, output};
use crate::probe::{self, Extent};
use crate::snapshot;
use crate::video::VideoPipeline;

/// How many damaged packets in a row we skip before calling the file unreadable.
const MAX_DAMAGED_IN_A_ROW: u32 = 10_000;

/// Runs `request`. Must run on a blocking thread of `handle`'s runtime.
pub(crate) fn run(request: &TranscodeRequest, handle: Handle) -> Result<TranscodeOutput> {
    let options = &request.options;
    let mut opened = avio::open_source(request.source.clone(), handle)?;
    let mut source = probe::header_info(&opened.input)?;
    check_duration(source.duration, options)?;
    if !source.has_video() && !source.has_audio() {
        return Err(media("the file has neither an audio nor a video stream"));
    }

    let mp4 = temp_next_to(&request.mp4)?;
    let url = file_url(mp4.path())?;
    let mut out =
        ffmpeg::format::output_as(&url, "mp4").map_err(|e| output("creating the MP4", e))?;

    let mut video = match opened.input.streams().best(kind::Type::Video) {
        Some(stream) => Some(VideoPipeline::new(
            &stream,
            &mut out,
            options,
            source.rotation,
        )?),
        None => None,
    };
    let mut audio = match opened.input.streams().best(kind::Type::Audio) {
        Some(stream) => Some(AudioPipeline::new(&stream, &mut out, options)?),
        None => None,
    };

    let mut header = Dictionary::new();
    header.set("movflags", "+faststart");
    header.set("protocol_whitelist", "file");
    out.write_header_with(header)
        .map_err(|e| output("writing the MP4 header", e))?;
    if let Some(v) = video.as_mut() {
        v.started(&out);
    }
    if let Some(a) = audio.as_mut() {
        a.started(&out);
    }

    let extent = demux(
        &mut opened,
        &mut out,
        video.as_mut(),
        audio.as_mut(),
        options,
    )?;
    if let Some(v) = video.as_mut() {
        v.finish(&mut out)?;
        if v.frames() == 0 {
            return Err(media("the video stream has no decodable pictures"));
        }
    }
    if let Some(a) = audio.as_mut() {
        a.finish(&mut out)?;
        if a.frames() == 0 {
            return Err(media("the audio stream has no decodable sound"));
        }
    }
    out.write_trailer()
        .map_err(|e| output("finishing the MP4", e))?;
    drop(out);

    if source.duration.is_zero() {
        source.duration = extent.duration();
    }
    let written = probe::probe(avio::open_file(mp4.path())?)?;

    // Audio-only input: there is no picture, so no snapshot is written.
    let snapshot = match video.as_mut().and_then(VideoPipeline::take_snapshot) {
        Some(picture) => {
            let jpeg = snapshot::encode_jpeg(&picture)?;
            let mut file = temp_next_to(&request.snapshot)?;
            file.write_all(&jpeg)?;
            file.as_file().sync_all()?;
            Some(file)
        }
        None => None,
    };
    mp4.as_file().sync_all()?;
    persist(mp4, &request.mp4)?;
    if let Some(file) = snapshot {
        persist(file, &request.snapshot)?;
    }
    Ok(TranscodeOutput::new(source, written))
}

/// Feeds every packet of the chosen streams to its pipeline; returns how far they reach.
fn demux(
    opened: &mut MediaInput,
    out: &mut ffmpeg::format::context::Output,
    mut video: Option<&mut VideoPipeline>,
    mut audio: Option<&mut AudioPipeline>,
    options: &TranscodeOptions,
) -> Result<Extent> {
    let mut extent = Extent::default();
    let mut damaged = 0;
    loop {
        // A fresh packet per read: `av_read_frame` overwrites, it does not unref.
        let mut packet = Packet::empty();
        match packet.read(&mut opened.input) {
            Ok(()) => damaged = 0,
            Err(ffmpeg::Error::Eof) => return Ok(extent),
            Err(ffmpeg::Error::InvalidData) if damaged < MAX_DAMAGED_IN_A_ROW => {
                damaged += 1;
                continue;
            }
            Err(e) => return Err(opened.failure.explain("reading the media", e)),
        }
        let index = packet.stream();
        let is_video = video.as_ref().is_some_and(|v| v.stream_index() == index);
        let is_audio = audio.as_ref().is_some_and(|a| a.stream_index() == index);
        if !is_video && !is_audio {
            continue;
        }
        extent.add(&opened.input, &packet);
        // Past the cut nothing more is decoded. By decoding time: a picture shown before
        // the cut is decoded before it too, so none of them loses a reference it needs.
        if let Some(cut) = options.cut_after
            && extent.decodes_after(&opened.input, &packet, cut)
        {
            continue;
        }
        check_duration(extent.duration(), options)?;
        if is_video && let Some(v) = video.as_deref_mut() {
            v.send(&packet, out)?;
        } else if let Some(a) = audio.as_deref_mut() {
            a.send(&packet, out)?;
        }
    }
}

fn check_duration(duration: Duration, options: &TranscodeOptions) -> Result<()> {
    if duration > options.max_duration {
        return Err(media(format!(
            "the recording is longer than the limit of {} s",
            options.max_duration.as_secs()
        )));
    }
    Ok(())
}

/// An empty file in the directory of `target`, removed again unless persisted.
fn temp_next_to(target: &Path) -> Result<NamedTempFile> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("output");
    Ok(tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(dir)?)
}

/// The `file:` URL of `path`, so that no other protocol can be picked from its spelling.
fn file_url(path: &Path) -> Result<String> {
    let path = path.to_str().ok_or_else(|| {
        pipe_core::Error::invalid("path", format!("{} is not UTF-8", path.display()))
    })?;
    Ok(format!("file:{path}"))
}

fn persist(file: NamedTempFile, target: &Path) -> Result<()> {
    file.persist(target)
        .map_err(|e| pipe_core::Error::from(e.error))?;
    Ok(())
}

/// What `source` holds, reading to its end if the header does not say its duration.
pub(crate) fn probe_source(
    source: std::sync::Arc<dyn pipe_core::MediaSource>,
    handle: Handle,
) -> Result<MediaInfo> {
    probe::probe(avio::open_source(source, handle)?)
}
