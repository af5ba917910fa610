//! Opening decoders (only for the codecs we accept), and what every pipeline shares.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::codec::Id;
use ffmpeg_next::format::stream::Stream;
use ffmpeg_next::{Dictionary, codec, decoder};
use pipe_core::Result;

use crate::error::media;

/// Video codecs browsers and phones record; a decoder outside this list never runs.
const VIDEO_CODECS: &[Id] = &[
    Id::H264,
    Id::HEVC,
    Id::VP8,
    Id::VP9,
    Id::AV1,
    Id::MPEG4,
    Id::H263,
    Id::THEORA,
];

/// Audio codecs browsers and phones record, and the PCM flavours of WAV.
const AUDIO_CODECS: &[Id] = &[
    Id::OPUS,
    Id::VORBIS,
    Id::AAC,
    Id::MP3,
    Id::FLAC,
    Id::ALAC,
    Id::AMR_NB,
    Id::AMR_WB,
    Id::PCM_S16LE,
    Id::PCM_S16BE,
    Id::PCM_S24LE,
    Id::PCM_S32LE,
    Id::PCM_F32LE,
    Id::PCM_F64LE,
    Id::PCM_U8,
    Id::PCM_MULAW,
    Id::PCM_ALAW,
];

/// The names of the decoders FFmpeg picks for the accepted codecs, comma-separated: the
/// `codec_whitelist` that keeps `avformat_find_stream_info` from running any other.
pub(crate) fn decoder_whitelist() -> String {
    VIDEO_CODECS
        .iter()
        .chain(AUDIO_CODECS)
        .filter_map(|&id| decoder::find(id))
        .map(|codec| codec.name().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// Which kind of stream a decoder is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Medium {
    Video,
    Audio,
}

impl std::fmt::Display for Medium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Video => "video",
            Self::Audio => "audio",
        })
    }
}

/// Opens the decoder of `stream` with FFmpeg's automatic thread count, after checking
/// its codec against the allow-list for `kind`.
pub(crate) fn open_decoder(stream: &Stream<'_>, kind: Medium) -> Result<decoder::Opened> {
    let params = stream.parameters();
    let id = params.id();
    let name = id.name();
    let allowed = match kind {
        Medium::Video => VIDEO_CODECS,
        Medium::Audio => AUDIO_CODECS,
    };
    if !allowed.contains(&id) {
        return Err(media(format!("the {kind} codec `{name}` is not accepted")));
    }
    let mut context = codec::context::Context::from_parameters(params)
        .map_err(|e| media(format!("the {kind} stream is unusable: {e}")))?;
    context.set_time_base(stream.time_base());
    let mut decoder = context.decoder();
    decoder.set_packet_time_base(stream.time_base());
    let mut options = Dictionary::new();
    // Like the ffmpeg CLI: as many threads as cores, frame and slice threading.
    options.set("threads", "auto");
    let codec = decoder::find(id).ok_or_else(|| media(format!("no decoder for `{name}`")))?;
    decoder
        .open_as_with(codec, options)
        .map_err(|e| media(format!("cannot open the `{name}` decoder: {e}")))
}

/// Whether `e` means "no output now, feed more input" (EAGAIN) or "no output ever" (EOF).
pub(crate) fn is_drained(e: &ffmpeg::Error) -> bool {
    matches!(e, ffmpeg::Error::Eof)
        || *e
            == (ffmpeg::Error::Other {
                errno: ffmpeg::util::error::EAGAIN,
            })
}

#[cfg(test)]
mod tests {
    use super::decoder_whitelist;

    #[test]
    fn the_whitelist_names_decoders_of_accepted_codecs_only() {
        ffmpeg_next::init().unwrap();
        let list = decoder_whitelist();
        let names: Vec<&str> = list.split(',').collect();
        for expected in ["h264", "vp8", "vp9", "opus", "vorbis", "aac", "pcm_s16le"] {
            assert!(names.contains(&expected), "{expected} missing from {list}");
        }
        for refused in ["mjpeg", "flv", "rawvideo", "png"] {
            assert!(!names.contains(&refused), "{refused} in {list}");
        }
    }
}
