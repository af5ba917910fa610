//! Video: decode → (rotate, make even, `yuv420p`) → libx264, and the snapshot's frame.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::format::context::Output;
use ffmpeg_next::format::stream::Stream;
use ffmpeg_next::format::{self, Pixel};
use ffmpeg_next::{Dictionary, Packet, Rational, codec, decoder, encoder, filter, frame, picture};
use pipe_core::{Result, TranscodeOptions};

use crate::decode::{Medium, is_drained, open_decoder};
use crate::error::{internal, media, output};

/// The one video stream of a transcode, from packets in to H.264 packets out.
pub(crate) struct VideoPipeline {
    stream_index: usize,
    /// The input stream's time base; frames and the encoder keep it (variable frame rate).
    time_base: Rational,
    decoder: decoder::Video,
    rotation: u16,
    /// The encoded size: the upright size, rounded down to even numbers.
    size: (u32, u32),
    max_pixels: u64,
    graph: Option<Graph>,
    encoder: encoder::Video,
    output_index: usize,
    output_time_base: Rational,
    /// One frame's duration in `time_base`, for the last frame and missing timestamps.
    frame_interval: i64,
    last_pts: Option<i64>,
    snapshot: SnapshotPicker,
    frames: u64,
    decoded: frame::Video,
    filtered: frame::Video,
    packet: Packet,
}

impl std::fmt::Debug for VideoPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoPipeline")
            .field("stream_index", &self.stream_index)
            .field("size", &self.size)
            .field("rotation", &self.rotation)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl VideoPipeline {
    /// Opens the decoder of `stream` and adds an H.264 stream to `out`.
    pub(crate) fn new(
        stream: &Stream<'_>,
        out: &mut Output,
        options: &TranscodeOptions,
        rotation: u16,
    ) -> Result<Self> {
        let decoder = open_decoder(stream, Medium::Video)?
            .video()
            .map_err(|e| media(format!("not a video stream: {e}")))?;
        let (width, height) = (decoder.width(), decoder.height());
        if width == 0 || height == 0 {
            return Err(media("the video stream does not say its picture size"));
        }
        check_pixels(width, height, options.max_pixels)?;
        let upright = if rotation % 180 == 90 {
            (height, width)
        } else {
            (width, height)
        };
        let size = (even(upright.0), even(upright.1));

        let time_base = stream.time_base();
        let frame_rate =
            Some(stream.avg_frame_rate()).filter(|r| r.numerator() > 0 && r.denominator() > 0);
        let frame_interval = frame_interval(time_base, frame_rate.unwrap_or(Rational(30, 1)));

        let x264 = encoder::find_by_name("libx264").ok_or_else(|| {
            pipe_core::Error::permanent("ffmpeg", "FFmpeg was built without libx264")
        })?;
        let global_header = out.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let mut ost = out
            .add_stream(x264)
            .map_err(|e| internal("adding the video stream", e))?;
        let output_index = ost.index();
        let mut enc = codec::context::Context::new_with_codec(x264)
            .encoder()
            .video()
            .map_err(|e| internal("creating the libx264 encoder", e))?;
        enc.set_width(size.0);
        enc.set_height(size.1);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base(time_base);
        enc.set_frame_rate(frame_rate);
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut x264_options = Dictionary::new();
        x264_options.set("preset", &options.preset);
        x264_options.set("crf", &options.crf.to_string());
        // The ffmpeg CLI's default: x264 picks its thread count from the cores.
        x264_options.set("threads", "auto");
        let encoder = enc.open_as_with(x264, x264_options).map_err(|e| {
            media(format!(
                "cannot open libx264 (preset `{}`, crf {}): {e}",
                options.preset, options.crf
            ))
        })?;
        ost.set_parameters(&encoder);
        ost.set_time_base(time_base);

        Ok(Self {
            stream_index: stream.index(),
            time_base,
            decoder,
            rotation,
            size,
            max_pixels: options.max_pixels,
            graph: None,
            encoder,
            output_index,
            output_time_base: time_base,
            frame_interval,
            last_pts: None,
            snapshot: SnapshotPicker::new(options.snapshot_at.as_secs_f64() / f64::from(time_base)),
            frames: 0,
            decoded: frame::Video::empty(),
            filtered: frame::Video::empty(),
            packet: Packet::empty(),
        })
    }

    /// The input stream this pipeline decodes.
    pub(crate) fn stream_index(&self) -> usize {
        self.stream_index
    }

    /// Learns the time base the muxer chose in `write_header`.
    pub(crate) fn started(&mut self, out: &Output) {
        if let Some(stream) = out.stream(self.output_index) {
            self.output_time_base = stream.time_base();
        }
    }

    /// Decodes `packet` and encodes what comes out.
    pub(crate) fn send(&mut self, packet: &Packet, out: &mut Output) -> Result<()> {
        match self.decoder.send_packet(packet) {
            // A damaged packet is skipped, as the ffmpeg CLI does; the next keyframe resyncs.
            Ok(()) | Err(ffmpeg::Error::InvalidData) => {}
            Err(e) if is_drained(&e) => {}
            Err(e) => return Err(media(format!("decoding video: {e}"))),
        }
        self.drain_decoder(out)
    }

    /// Flushes decoder, filters and encoder at the end of the input.
    pub(crate) fn finish(&mut self, out: &mut Output) -> Result<()> {
        // The decoder may be in an error state on damaged input; EOF then is moot.
        let _ = self.decoder.send_eof();
        self.drain_decoder(out)?;
        if let Some(graph) = self.graph.as_mut() {
            graph
                .flush()
                .map_err(|e| internal("flushing the video filters", e))?;
            self.drain_graph(out)?;
        }
        self.encoder
            .send_eof()
            .map_err(|e| internal("flushing libx264", e))?;
        self.drain_encoder(out)
    }

    /// How many frames were encoded.
    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    /// The frame chosen for the snapshot, upright and at the encoded size.
    pub(crate) fn take_snapshot(&mut self) -> Option<frame::Video> {
        self.snapshot.chosen.take()
    }

    fn drain_decoder(&mut self, out: &mut Output) -> Result<()> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => self.filter(out)?,
                Err(e) if is_drained(&e) => return Ok(()),
                Err(ffmpeg::Error::InvalidData) => continue,
                Err(e) => return Err(media(format!("decoding video: {e}"))),
            }
        }
    }

    fn filter(&mut self, out: &mut Output) -> Result<()> {
        let input = (
            self.decoded.width(),
            self.decoded.height(),
            self.decoded.format(),
        );
        check_pixels(input.0, input.1, self.max_pixels)?;
        if input.2 == Pixel::None || input.0 == 0 || input.1 == 0 {
            return Err(media(
                "the decoder produced a picture without size or pixel format",
            ));
        }
        // A recording may change resolution midway (MediaRecorder does): rebuild the
        // filters for the new input, keeping the encoded size.
        if self.graph.as_ref().is_none_or(|g| g.input != input) {
            if let Some(old) = self.graph.as_mut() {
                old.flush()
                    .map_err(|e| internal("flushing the video filters", e))?;
                self.drain_graph(out)?;
            }
            self.graph = Some(Graph::new(input, self.time_base, self.rotation, self.size)?);
        }
        let pts = self.decoded.timestamp();
        self.decoded.set_pts(pts);
        if let Some(graph) = self.graph.as_mut() {
            graph
                .add(&self.decoded)
                .map_err(|e| internal("filtering video", e))?;
        }
        self.drain_graph(out)
    }

    fn drain_graph(&mut self, out: &mut Output) -> Result<()> {
        loop {
            let Some(graph) = self.graph.as_mut() else {
                return Ok(());
            };
            match graph.get(&mut self.filtered) {
                Ok(()) => self.encode(out)?,
                Err(e) if is_drained(&e) => return Ok(()),
                Err(e) => return Err(internal("filtering video", e)),
            }
        }
    }

    fn encode(&mut self, out: &mut Output) -> Result<()> {
        // Strictly increasing timestamps, whatever the input claims; gaps stay gaps.
        let pts = match (self.filtered.pts(), self.last_pts) {
            (Some(pts), Some(last)) if pts <= last => last + 1,
            (Some(pts), _) => pts,
            (None, Some(last)) => last + self.frame_interval,
            (None, None) => 0,
        };
        self.last_pts = Some(pts);
        self.filtered.set_pts(Some(pts));
        // Let x264 place keyframes itself instead of copying the source's.
        self.filtered.set_kind(picture::Type::None);
        self.encoder
            .send_frame(&self.filtered)
            .map_err(|e| media(format!("encoding video: {e}")))?;
        self.frames += 1;
        self.snapshot.offer(&mut self.filtered);
        self.drain_encoder(out)
    }

    fn drain_encoder(&mut self, out: &mut Output) -> Result<()> {
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    if self.packet.duration() <= 0 {
                        self.packet.set_duration(self.frame_interval);
                    }
                    self.packet.set_stream(self.output_index);
                    self.packet
                        .rescale_ts(self.time_base, self.output_time_base);
                    self.packet
                        .write_interleaved(out)
                        .map_err(|e| output("writing video to the MP4", e))?;
                }
                Err(e) if is_drained(&e) => return Ok(()),
                Err(e) => return Err(media(format!("encoding video: {e}"))),
            }
        }
    }
}

fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Result<()> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(media(format!(
            "the picture is {width}×{height} ({pixels} pixels), more than the limit of {max_pixels}"
        )));
    }
    Ok(())
}

/// `n` rounded down to an even number, at least 2 (H.264 in 4:2:0 needs even sizes).
fn even(n: u32) -> u32 {
    (n & !1).max(2)
}

/// One frame at `rate` in units of `time_base`, at least 1.
fn frame_interval(time_base: Rational, rate: Rational) -> i64 {
    let per_second = f64::from(time_base.denominator()) / f64::from(time_base.numerator().max(1));
    ((per_second / f64::from(rate)).round() as i64).max(1)
}

/// A filter graph `buffer → [transpose] → [crop|scale] → format=yuv420p → buffersink`.
struct Graph {
    graph: filter::Graph,
    /// The width, height and pixel format it was built for.
    input: (u32, u32, Pixel),
}

impl Graph {
    fn new(
        input: (u32, u32, Pixel),
        time_base: Rational,
        rotation: u16,
        size: (u32, u32),
    ) -> Result<Self> {
        let (width, height, pixel) = input;
        let mut steps: Vec<String> = Vec::new();
        match rotation {
            90 => steps.push("transpose=clock".into()),
            180 => steps.push("hflip,vflip".into()),
            270 => steps.push("transpose=cclock".into()),
            _ => {}
        }
        let upright = if rotation % 180 == 90 {
            (height, width)
        } else {
            (width, height)
        };
        if upright != size {
            if upright.0.saturating_sub(size.0) <= 1 && upright.1.saturating_sub(size.1) <= 1 {
                // Odd sizes lose their last row/column: exact, no resampling blur.
                steps.push(format!("crop={}:{}:0:0", size.0, size.1));
            } else {
                steps.push(format!("scale={}:{}", size.0, size.1));
            }
        }
        steps.push("format=yuv420p".into());
        let spec = steps.join(",");

        let mut graph = filter::Graph::new();
        let args = format!(
            "video_size={width}x{height}:pix_fmt={}:time_base={}/{}:pixel_aspect=1/1",
            ffmpeg::ffi::AVPixelFormat::from(pixel) as i32,
            time_base.numerator(),
            time_base.denominator(),
        );
        let build = |graph: &mut filter::Graph| -> Result<(), ffmpeg::Error> {
            let buffer = filter::find("buffer").ok_or(ffmpeg::Error::FilterNotFound)?;
            let sink = filter::find("buffersink").ok_or(ffmpeg::Error::FilterNotFound)?;
            graph.add(&buffer, "in", &args)?;
            graph.add(&sink, "out", "")?;
            graph.output("in", 0)?.input("out", 0)?.parse(&spec)?;
            graph.validate()
        };
        build(&mut graph)
            .map_err(|e| internal(format!("building the video filters `{spec}`"), e))?;
        Ok(Self { graph, input })
    }

    fn add(&mut self, frame: &frame::Video) -> Result<(), ffmpeg::Error> {
        self.graph
            .get("in")
            .ok_or(ffmpeg::Error::FilterNotFound)?
            .source()
            .add(frame)
    }

    fn flush(&mut self) -> Result<(), ffmpeg::Error> {
        self.graph
            .get("in")
            .ok_or(ffmpeg::Error::FilterNotFound)?
            .source()
            .flush()
    }

    fn get(&mut self, frame: &mut frame::Video) -> Result<(), ffmpeg::Error> {
        self.graph
            .get("out")
            .ok_or(ffmpeg::Error::FilterNotFound)?
            .sink()
            .frame(frame)
    }
}

/// Keeps the first frame at or after the snapshot time, or else the last frame (the time
/// is clamped to the recording's length). Frames are moved, never copied.
struct SnapshotPicker {
    /// The snapshot time after the first frame, in the stream's time base.
    at: f64,
    first_pts: Option<i64>,
    chosen: Option<frame::Video>,
    done: bool,
}

impl SnapshotPicker {
    fn new(at: f64) -> Self {
        Self {
            at,
            first_pts: None,
            chosen: None,
            done: false,
        }
    }

    /// Takes `frame` (leaving an empty one) unless an earlier frame already qualified.
    fn offer(&mut self, frame: &mut frame::Video) {
        if self.done {
            return;
        }
        let pts = frame.pts().unwrap_or(0);
        let first = *self.first_pts.get_or_insert(pts);
        self.chosen = Some(std::mem::replace(frame, frame::Video::empty()));
        self.done = (pts - first) as f64 >= self.at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_become_even() {
        assert_eq!(even(321), 320);
        assert_eq!(even(240), 240);
        assert_eq!(even(1), 2);
    }

    #[test]
    fn frame_interval_in_time_base() {
        assert_eq!(frame_interval(Rational(1, 1000), Rational(30, 1)), 33);
        assert_eq!(
            frame_interval(Rational(1, 90000), Rational(30000, 1001)),
            3003
        );
        assert_eq!(frame_interval(Rational(1, 10), Rational(1000, 1)), 1);
    }
}
