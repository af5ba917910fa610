//! How FFmpeg's failures become [`pipe_core::Error`]s a caller can act on.

use std::fmt::Display;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use ffmpeg_next as ffmpeg;
use pipe_core::Error;

/// [`Error::Media`] with `detail`: the input cannot be read or converted, permanently.
pub(crate) fn media(detail: impl Display) -> Error {
    Error::Media {
        detail: detail.to_string(),
    }
}

/// A failure of our own machinery (not the input's fault), e.g. an encoder that FFmpeg
/// was built without. Retrying will not help.
pub(crate) fn internal(what: impl Display, source: ffmpeg::Error) -> Error {
    Error::permanent("ffmpeg", format!("{what}: {source}"))
}

/// The last I/O error the media source reported, shared between the reader inside
/// FFmpeg's callbacks and the code that interprets FFmpeg's (coarser) error codes.
///
/// FFmpeg turns every read failure into one `AVERROR`; without this a flaky spool read
/// would look like a damaged file, and a retryable failure would become a permanent one.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceFailure(Arc<Mutex<Option<io::Error>>>);

impl SourceFailure {
    /// Records `error` (keeping its kind and message) and hands it back.
    pub(crate) fn record(&self, error: io::Error) -> io::Error {
        let copy = io::Error::new(error.kind(), error.to_string());
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(copy);
        error
    }

    /// The recorded error, if the source failed.
    pub(crate) fn take(&self) -> Option<io::Error> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// `error` from FFmpeg while `doing` something, explained: a failure of the source
    /// itself wins (it is usually retryable), otherwise the media is at fault.
    pub(crate) fn explain(&self, doing: &str, error: ffmpeg::Error) -> Error {
        match self.take() {
            Some(io) => Error::from(io),
            None => media(format!("{doing}: {error}")),
        }
    }
}

/// `error` while writing the MP4: bad timestamps are the input's fault; anything else
/// (a full disk, an I/O error) may go away, so it is retryable.
pub(crate) fn output(doing: &str, error: ffmpeg::Error) -> Error {
    match error {
        ffmpeg::Error::InvalidData => media(format!("{doing}: {error}")),
        ffmpeg::Error::Other { errno } if errno == ffmpeg::util::error::EINVAL => {
            media(format!("{doing}: {error}"))
        }
        _ => Error::temporary("ffmpeg", format!("{doing}: {error}")),
    }
}
