//! What a media file holds, as a [`MediaInfo`].

use std::time::Duration;

use ffmpeg_next as ffmpeg;
use ffmpeg_next::codec::packet::side_data::Type as SideDataType;
use ffmpeg_next::format::context::Input;
use ffmpeg_next::format::stream::Stream;
use ffmpeg_next::{Packet, Rational, media};
use pipe_core::{MediaInfo, Result};

use crate::avio::MediaInput;
use crate::error::media;

/// Reads `opened` to the end if its header does not say how long it is.
pub(crate) fn probe(mut opened: MediaInput) -> Result<MediaInfo> {
    let mut info = header_info(&opened.input)?;
    if info.duration.is_zero() {
        let mut extent = Extent::default();
        loop {
            // A fresh packet per read: `av_read_frame` overwrites, it does not unref.
            let mut packet = Packet::empty();
            match packet.read(&mut opened.input) {
                Ok(()) => extent.add(&opened.input, &packet),
                Err(ffmpeg::Error::Eof) => break,
                // A demuxer resynchronises past a damaged packet.
                Err(ffmpeg::Error::InvalidData) => continue,
                Err(e) => return Err(opened.failure.explain("reading the media", e)),
            }
        }
        info.duration = extent.duration();
    }
    Ok(info)
}

/// What the header (and `avformat_find_stream_info`) says. Duration is zero if unknown.
pub(crate) fn header_info(input: &Input) -> Result<MediaInfo> {
    let mut info = MediaInfo::new(input.format().name());
    let duration = input.duration();
    if duration > 0 {
        info.duration = Duration::from_micros(duration.unsigned_abs());
    }
    if let Some(video) = input.streams().best(media::Type::Video) {
        let params = video.parameters();
        let decoder = ffmpeg::codec::context::Context::from_parameters(params.clone())
            .and_then(|c| c.decoder().video())
            .map_err(|e| media(format!("the video stream is unusable: {e}")))?;
        info.width = decoder.width();
        info.height = decoder.height();
        info.video_codec = Some(params.id().name().to_owned());
        info.frame_rate = rate(video.avg_frame_rate());
        info.rotation = rotation(&video);
    }
    if let Some(audio) = input.streams().best(media::Type::Audio) {
        info.audio_codec = Some(audio.parameters().id().name().to_owned());
    }
    Ok(info)
}

fn rate(r: Rational) -> Option<f64> {
    (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
}

/// Clockwise degrees (0, 90, 180, 270) to turn the picture for display: from the display
/// matrix side data, else from a legacy `rotate` tag.
pub(crate) fn rotation(stream: &Stream<'_>) -> u16 {
    let from_matrix = stream
        .side_data()
        .find(|sd| sd.kind() == SideDataType::DisplayMatrix)
        .and_then(|sd| display_matrix_rotation(sd.data()));
    let degrees = from_matrix.or_else(|| {
        stream
            .metadata()
            .get("rotate")
            .and_then(|r| r.trim().parse::<f64>().ok())
    });
    degrees.map_or(0, quarter_turns)
}

/// The clockwise rotation a display matrix (nine native-endian `i32`s, 16.16 fixed point)
/// asks for: the negation of `av_display_rotation_get`, which FFmpeg's CLI applies too.
fn display_matrix_rotation(data: &[u8]) -> Option<f64> {
    let m: Vec<f64> = data
        .chunks_exact(4)
        .take(9)
        .map(|b| f64::from(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])) / 65536.0)
        .collect();
    if m.len() < 9 {
        return None;
    }
    let scale0 = m[0].hypot(m[3]);
    let scale1 = m[1].hypot(m[4]);
    if scale0 == 0.0 || scale1 == 0.0 {
        return None;
    }
    // av_display_rotation_get = -atan2(m1/s1, m0/s0): counter-clockwise; we want clockwise.
    Some((m[1] / scale1).atan2(m[0] / scale0).to_degrees())
}

/// `degrees` (any real) to the nearest of 0, 90, 180, 270.
fn quarter_turns(degrees: f64) -> u16 {
    let quarters = (degrees / 90.0).round().rem_euclid(4.0);
    // `quarters` is one of 0.0, 1.0, 2.0, 3.0.
    (quarters as u16) * 90
}

/// The furthest presentation end seen over all streams: a duration for containers whose
/// header does not say (MediaRecorder's WebM).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Extent {
    end: Option<f64>,
    start: Option<f64>,
}

impl Extent {
    /// Accounts for `packet` of `input`.
    pub(crate) fn add(&mut self, input: &Input, packet: &Packet) {
        let Some(stream) = input.stream(packet.stream()) else {
            return;
        };
        if let Some(pts) = packet.pts().or(packet.dts()) {
            let tb = f64::from(stream.time_base());
            let start = pts as f64 * tb;
            let end = (pts.saturating_add(packet.duration().max(0))) as f64 * tb;
            self.start = Some(self.start.map_or(start, |s| s.min(start)));
            self.end = Some(self.end.map_or(end, |e| e.max(end)));
        }
    }

    /// Whether `packet` of `input` is decoded more than `cut` after the first timestamp
    /// seen.
    pub(crate) fn decodes_after(&self, input: &Input, packet: &Packet, cut: Duration) -> bool {
        let (Some(stream), Some(ts), Some(start)) = (
            input.stream(packet.stream()),
            packet.dts().or(packet.pts()),
            self.start,
        ) else {
            return false;
        };
        ts as f64 * f64::from(stream.time_base()) - start.max(0.0) > cut.as_secs_f64()
    }

    /// The span from the first (non-negative) timestamp to the furthest end.
    pub(crate) fn duration(&self) -> Duration {
        match (self.start, self.end) {
            // A slightly negative start (codec delay) is not playing time.
            (Some(start), Some(end)) => {
                Duration::try_from_secs_f64(end - start.max(0.0)).unwrap_or_default()
            }
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(values: [i32; 9]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    #[test]
    fn display_matrix_angles_round_to_quarter_turns() {
        let identity = matrix([65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30]);
        assert_eq!(
            display_matrix_rotation(&identity).map(quarter_turns),
            Some(0)
        );
        // What `-metadata:s:v rotate=90` makes in FFmpeg 5.1; its CLI turns it counter-clockwise.
        let m = matrix([0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30]);
        assert_eq!(display_matrix_rotation(&m).map(quarter_turns), Some(270));
        let m = matrix([0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30]);
        assert_eq!(display_matrix_rotation(&m).map(quarter_turns), Some(90));
        let m = matrix([-65536, 0, 0, 0, -65536, 0, 0, 0, 1 << 30]);
        assert_eq!(display_matrix_rotation(&m).map(quarter_turns), Some(180));
        assert_eq!(display_matrix_rotation(&[0; 8]), None);
    }

    #[test]
    fn quarter_turns_normalise() {
        assert_eq!(quarter_turns(-90.0), 270);
        assert_eq!(quarter_turns(450.0), 90);
        assert_eq!(quarter_turns(89.6), 90);
        assert_eq!(quarter_turns(-0.0), 0);
    }
}
