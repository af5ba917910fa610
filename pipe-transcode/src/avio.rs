//! Input through our own I/O: FFmpeg reads media only from a [`MediaSource`] (or, to probe
//! our own output, from a file we opened), never through one of its protocols.
//!
//! The `AVIOContext` is ffmpeg-next's [`StreamIo`]: `avio_alloc_context` with read and seek
//! callbacks (the seek callback answers `AVSEEK_SIZE`), freed by its `Drop`, and installed
//! as the format context's `pb` with `AVFMT_FLAG_CUSTOM_IO` by
//! [`ffmpeg::format::input_from_stream`]. Behind it sits [`SourceReader`], a
//! `Read + Seek` adapter that fetches the source in [`CHUNK`]-sized reads with
//! [`Handle::block_on`] (we run on a blocking thread) and catches panics so that none
//! crosses into C.
//!
//! Before FFmpeg parses anything we identify the container ourselves
//! (`av_probe_input_buffer2`) and refuse everything outside [`ALLOWED_FORMATS`], with a
//! reason naming the format; the open then runs with `format_whitelist` (the same list)
//! and `protocol_whitelist=none`, so neither a demuxer outside the list nor a nested URL
//! (e.g. an MP4 data reference) is ever opened, and with `codec_whitelist` set to the
//! decoders of the accepted codecs, so that stream probing runs no other decoder.
//!
//! The output MP4 is written by FFmpeg's `file` protocol to a temporary path we chose,
//! because `movflags=+faststart` re-opens the output by its URL to move the `moov` box to
//! the front; see [`crate::transcode`].

// This module holds the crate's only `unsafe`: one FFI call, `av_probe_input_buffer2`,
// for which ffmpeg-next has no safe wrapper. Every block carries a `// SAFETY:` comment.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

use bytes::Bytes;
use ffmpeg_next as ffmpeg;
use ffmpeg_next::format::context::{Input, StreamIo};
use pipe_core::{MediaSource, Result};
use tokio::runtime::Handle;

use crate::error::{SourceFailure, media};

/// The containers we accept, as FFmpeg's demuxer names (the `format_whitelist`).
pub(crate) const ALLOWED_FORMATS: &str = "matroska,webm,mov,mp4,m4a,3gp,3g2,mj2,ogg,wav";

/// How much the adapter reads from the source at a time.
const CHUNK: usize = 256 * 1024;

/// The size of the `AVIOContext`'s own buffer.
const AVIO_BUFFER: usize = 64 * 1024;

/// An opened input and the record of its source's I/O failures.
pub(crate) struct MediaInput {
    /// The demuxer, reading through our I/O.
    pub(crate) input: Input,
    /// Why a read failed, if the source (not the media) was at fault.
    pub(crate) failure: SourceFailure,
}

impl std::fmt::Debug for MediaInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaInput")
            .field("format", &self.input.format().name())
            .finish_non_exhaustive()
    }
}

/// Opens `source` for demuxing. Must run on a blocking thread of `handle`'s runtime.
pub(crate) fn open_source(source: Arc<dyn MediaSource>, handle: Handle) -> Result<MediaInput> {
    let failure = SourceFailure::default();
    let len = handle
        .block_on(source.len())
        .map_err(pipe_core::Error::from)?;
    if len == 0 {
        return Err(media("the file is empty"));
    }
    let reader = SourceReader {
        source,
        handle,
        len,
        pos: 0,
        chunk: Bytes::new(),
        chunk_start: 0,
        failure: failure.clone(),
    };
    open(reader, failure)
}

/// Opens the file at `path` (our own output) for demuxing.
pub(crate) fn open_file(path: &Path) -> Result<MediaInput> {
    let file = File::open(path).map_err(pipe_core::Error::from)?;
    open(file, SourceFailure::default())
}

fn open(reader: impl Read + Seek + Send + 'static, failure: SourceFailure) -> Result<MediaInput> {
    let mut io = StreamIo::from_read_seek_with_capacity(reader, AVIO_BUFFER)
        .map_err(|e| crate::error::internal("allocating the I/O context", e))?;

    let format = detect_format(&mut io).map_err(|e| match failure.take() {
        Some(io) => pipe_core::Error::from(io),
        None => media(format!("not a media file FFmpeg recognises ({e})")),
    })?;
    if !is_allowed(&format) {
        return Err(media(format!(
            "the container `{format}` is not accepted (accepted: WebM/Matroska, MP4/MOV, Ogg, WAV)"
        )));
    }

    let mut options = ffmpeg::Dictionary::new();
    options.set("format_whitelist", ALLOWED_FORMATS);
    options.set("protocol_whitelist", "none");
    options.set("codec_whitelist", &crate::decode::decoder_whitelist());
    let input = ffmpeg::format::input_from_stream(io, None, Some(options)).map_err(|e| {
        failure.explain(
            &format!("cannot read the `{format}` header; the file is damaged or truncated"),
            e,
        )
    })?;

    // Defence in depth: the whitelist has already refused anything else.
    let opened = input.format().name().to_owned();
    if !is_allowed(&opened) {
        return Err(media(format!("the container `{opened}` is not accepted")));
    }
    Ok(MediaInput { input, failure })
}

/// Whether every name of a demuxer (`matroska,webm`) is on the allow-list.
fn is_allowed(demuxer: &str) -> bool {
    let allowed: Vec<&str> = ALLOWED_FORMATS.split(',').collect();
    !demuxer.is_empty() && demuxer.split(',').all(|name| allowed.contains(&name))
}

/// Which demuxer FFmpeg would pick for the bytes behind `io`, without opening it.
/// Leaves `io` rewound to the start.
fn detect_format(io: &mut StreamIo) -> Result<String, ffmpeg::Error> {
    let mut format: *const ffmpeg::ffi::AVInputFormat = ptr::null();
    // SAFETY: `io.as_mut_ptr()` is the live, readable AVIOContext owned by `io`, which
    // outlives this call; `format` is a valid out-pointer; a null URL and log context and
    // zero offset/size are documented defaults. The function reads through the context
    // and rewinds it (keeping the probed bytes), it does not free or retain it.
    let ret = unsafe {
        ffmpeg::ffi::av_probe_input_buffer2(
            io.as_mut_ptr(),
            &mut format,
            ptr::null(),
            ptr::null_mut(),
            0,
            0,
        )
    };
    if ret < 0 {
        return Err(ffmpeg::Error::from(ret));
    }
    if format.is_null() {
        return Err(ffmpeg::Error::InvalidData);
    }
    // SAFETY: on success `format` points to one of libavformat's static AVInputFormat
    // definitions, whose `name` is a static NUL-terminated string (checked for null).
    let name = unsafe {
        let name = (*format).name;
        if name.is_null() {
            return Err(ffmpeg::Error::InvalidData);
        }
        CStr::from_ptr(name)
    };
    Ok(name.to_string_lossy().into_owned())
}

/// `Read + Seek` over a [`MediaSource`], fetching [`CHUNK`]s with `block_on`.
///
/// Runs inside FFmpeg's C callbacks: every method catches panics (a panic would otherwise
/// abort the process at the FFI boundary) and records source errors in `failure`.
struct SourceReader {
    source: Arc<dyn MediaSource>,
    handle: Handle,
    len: u64,
    pos: u64,
    /// The bytes last fetched, starting at `chunk_start`.
    chunk: Bytes,
    chunk_start: u64,
    failure: SourceFailure,
}

impl SourceReader {
    fn fill(&mut self) -> io::Result<()> {
        let wanted = usize::try_from(self.len - self.pos)
            .unwrap_or(usize::MAX)
            .min(CHUNK);
        let chunk = self
            .handle
            .block_on(self.source.read_at(self.pos, wanted))
            .map_err(|e| self.failure.record(e))?;
        if chunk.is_empty() {
            // The source promised `len` bytes; reading none before that is its failure.
            return Err(self.failure.record(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("media source ended at {} of {} bytes", self.pos, self.len),
            )));
        }
        self.chunk = chunk;
        self.chunk_start = self.pos;
        Ok(())
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let chunk_end = self.chunk_start + self.chunk.len() as u64;
        if self.pos < self.chunk_start || self.pos >= chunk_end {
            self.fill()?;
        }
        // `pos` is inside the chunk now; the offset fits in usize because the chunk does.
        let offset = (self.pos - self.chunk_start) as usize;
        let available = &self.chunk[offset..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }

    fn seek_inner(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}

/// Runs `f`, turning a panic into an I/O error so that it never unwinds into FFmpeg.
fn guarded<T>(f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(io::Error::other("the media source panicked")))
}

impl Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        guarded(|| self.read_inner(buf))
    }
}

impl Seek for SourceReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        guarded(|| self.seek_inner(to))
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::is_allowed;

    #[test]
    fn allow_list_needs_every_name_of_a_demuxer() {
        assert!(is_allowed("matroska,webm"));
        assert!(is_allowed("mov,mp4,m4a,3gp,3g2,mj2"));
        assert!(is_allowed("wav"));
        assert!(!is_allowed("avi"));
        assert!(!is_allowed("flv"));
        assert!(!is_allowed("webm,avi"));
        assert!(!is_allowed(""));
    }
}
