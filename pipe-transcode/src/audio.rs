//! Audio: decode → `abuffer → aformat → abuffersink` (the AAC encoder's format, rate,
//! channels and frame size) → FFmpeg's native `aac`.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::format::context::Output;
use ffmpeg_next::format::stream::Stream;
use ffmpeg_next::format::{self, Sample};
use ffmpeg_next::{
    ChannelLayout, Dictionary, Packet, Rational, Rescale, codec, decoder, encoder, filter, frame,
};
use pipe_core::{Result, TranscodeOptions};

use crate::decode::{Medium, is_drained, open_decoder};
use crate::error::{internal, media, output};

/// The sample rates the AAC encoder takes.
const AAC_RATES: &[u32] = &[
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The one audio stream of a transcode, from packets in to AAC packets out.
pub(crate) struct AudioPipeline {
    stream_index: usize,
    time_base: Rational,
    decoder: decoder::Audio,
    graph: Option<Graph>,
    /// What the graph produces and the encoder takes.
    rate: u32,
    layout: ChannelLayout,
    frame_size: u32,
    encoder: encoder::Audio,
    output_index: usize,
    output_time_base: Rational,
    /// Where the next decoded frame should start, in samples at its own rate.
    next_pts: Option<(i64, u32)>,
    frames: u64,
    decoded: frame::Audio,
    filtered: frame::Audio,
    packet: Packet,
}

impl std::fmt::Debug for AudioPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioPipeline")
            .field("stream_index", &self.stream_index)
            .field("rate", &self.rate)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl AudioPipeline {
    /// Opens the decoder of `stream` and adds an AAC stream to `out`.
    pub(crate) fn new(
        stream: &Stream<'_>,
        out: &mut Output,
        options: &TranscodeOptions,
    ) -> Result<Self> {
        let decoder = open_decoder(stream, Medium::Audio)?
            .audio()
            .map_err(|e| media(format!("not an audio stream: {e}")))?;
        let in_rate = decoder.rate();
        if in_rate == 0 || decoder.channels() == 0 {
            return Err(media(
                "the audio stream does not say its sample rate or channels",
            ));
        }
        let rate = if AAC_RATES.contains(&in_rate) {
            in_rate
        } else {
            48000
        };
        let layout = if decoder.channels() == 1 {
            ChannelLayout::MONO
        } else {
            ChannelLayout::STEREO
        };

        let aac = encoder::find_by_name("aac").ok_or_else(|| {
            pipe_core::Error::permanent("ffmpeg", "FFmpeg was built without the aac encoder")
        })?;
        let global_header = out.format().flags().contains(format::Flags::GLOBAL_HEADER);
        let mut ost = out
            .add_stream(aac)
            .map_err(|e| internal("adding the audio stream", e))?;
        let output_index = ost.index();
        let mut enc = codec::context::Context::new_with_codec(aac)
            .encoder()
            .audio()
            .map_err(|e| internal("creating the aac encoder", e))?;
        enc.set_rate(rate as i32);
        enc.set_channel_layout(layout);
        enc.set_channels(layout.channels());
        enc.set_format(Sample::F32(format::sample::Type::Planar));
        enc.set_bit_rate(options.audio_bitrate as usize);
        enc.set_time_base((1, rate as i32));
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let encoder = enc
            .open_as_with(aac, Dictionary::new())
            .map_err(|e| internal("opening the aac encoder", e))?;
        ost.set_parameters(&encoder);
        ost.set_time_base((1, rate as i32));

        Ok(Self {
            stream_index: stream.index(),
            time_base: stream.time_base(),
            decoder,
            graph: None,
            rate,
            layout,
            frame_size: encoder.frame_size(),
            encoder,
            output_index,
            output_time_base: Rational(1, rate as i32),
            next_pts: None,
            frames: 0,
            decoded: frame::Audio::empty(),
            filtered: frame::Audio::empty(),
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
            Ok(()) | Err(ffmpeg::Error::InvalidData) => {}
            Err(e) if is_drained(&e) => {}
            Err(e) => return Err(media(format!("decoding audio: {e}"))),
        }
        self.drain_decoder(out)
    }

    /// Flushes decoder, filters and encoder at the end of the input.
    pub(crate) fn finish(&mut self, out: &mut Output) -> Result<()> {
        let _ = self.decoder.send_eof();
        self.drain_decoder(out)?;
        if let Some(graph) = self.graph.as_mut() {
            graph
                .flush()
                .map_err(|e| internal("flushing the audio filters", e))?;
            self.drain_graph(out)?;
        }
        self.encoder
            .send_eof()
            .map_err(|e| internal("flushing the aac encoder", e))?;
        self.drain_encoder(out)
    }

    /// How many audio frames were encoded.
    pub(crate) fn frames(&self) -> u64 {
        self.frames
    }

    fn drain_decoder(&mut self, out: &mut Output) -> Result<()> {
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => self.filter(out)?,
                Err(e) if is_drained(&e) => return Ok(()),
                Err(ffmpeg::Error::InvalidData) => continue,
                Err(e) => return Err(media(format!("decoding audio: {e}"))),
            }
        }
    }

    fn filter(&mut self, out: &mut Output) -> Result<()> {
        let frame_rate = self.decoded.rate();
        let channels = self.decoded.channels();
        if frame_rate == 0 || channels == 0 || self.decoded.samples() == 0 {
            return Ok(());
        }
        let mut layout = self.decoded.channel_layout();
        if layout.is_empty() || layout.channels() != i32::from(channels) {
            layout = ChannelLayout::default(i32::from(channels));
        }
        let input = (frame_rate, self.decoded.format(), layout.bits());
        if self.graph.as_ref().is_none_or(|g| g.input != input) {
            if let Some(old) = self.graph.as_mut() {
                old.flush()
                    .map_err(|e| internal("flushing the audio filters", e))?;
                self.drain_graph(out)?;
            }
            let graph = Graph::new(input, self.rate, self.layout, self.frame_size)?;
            self.graph = Some(graph);
        }

        // Timestamps in samples: the frame's own, unless it would overlap the previous
        // frame or is missing; then the audio continues where it left off.
        let own = self
            .decoded
            .timestamp()
            .map(|ts| ts.rescale(self.time_base, Rational(1, frame_rate as i32)));
        let pts = match (own, self.next_pts) {
            (Some(own), Some((next, r))) if r == frame_rate => own.max(next),
            (Some(own), _) => own,
            (None, Some((next, r))) if r == frame_rate => next,
            (None, _) => 0,
        };
        self.next_pts = Some((pts + self.decoded.samples() as i64, frame_rate));
        self.decoded.set_pts(Some(pts));
        if let Some(graph) = self.graph.as_mut() {
            graph
                .add(&self.decoded)
                .map_err(|e| internal("filtering audio", e))?;
        }
        self.drain_graph(out)
    }

    fn drain_graph(&mut self, out: &mut Output) -> Result<()> {
        loop {
            let Some(graph) = self.graph.as_mut() else {
                return Ok(());
            };
            match graph.get(&mut self.filtered) {
                Ok(()) => {
                    let sink_time_base = graph.time_base();
                    let pts = self
                        .filtered
                        .pts()
                        .map(|ts| ts.rescale(sink_time_base, Rational(1, self.rate as i32)));
                    self.filtered.set_pts(pts);
                    self.encoder
                        .send_frame(&self.filtered)
                        .map_err(|e| media(format!("encoding audio: {e}")))?;
                    self.frames += 1;
                    self.drain_encoder(out)?;
                }
                Err(e) if is_drained(&e) => return Ok(()),
                Err(e) => return Err(internal("filtering audio", e)),
            }
        }
    }

    fn drain_encoder(&mut self, out: &mut Output) -> Result<()> {
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    self.packet.set_stream(self.output_index);
                    self.packet
                        .rescale_ts(Rational(1, self.rate as i32), self.output_time_base);
                    self.packet
                        .write_interleaved(out)
                        .map_err(|e| output("writing audio to the MP4", e))?;
                }
                Err(e) if is_drained(&e) => return Ok(()),
                Err(e) => return Err(media(format!("encoding audio: {e}"))),
            }
        }
    }
}

/// `abuffer → aformat → abuffersink`, the sink cutting frames of the encoder's size.
struct Graph {
    graph: filter::Graph,
    /// The sample rate, format and channel layout it was built for.
    input: (u32, Sample, u64),
}

impl Graph {
    fn new(
        input: (u32, Sample, u64),
        rate: u32,
        layout: ChannelLayout,
        frame_size: u32,
    ) -> Result<Self> {
        let (in_rate, in_format, in_layout) = input;
        let args = format!(
            "time_base=1/{in_rate}:sample_rate={in_rate}:sample_fmt={}:channel_layout=0x{in_layout:x}",
            in_format.name()
        );
        let spec = format!(
            "aformat=sample_fmts=fltp:sample_rates={rate}:channel_layouts={}",
            if layout == ChannelLayout::MONO {
                "mono"
            } else {
                "stereo"
            }
        );
        let mut graph = filter::Graph::new();
        let build = |graph: &mut filter::Graph| -> Result<(), ffmpeg::Error> {
            let abuffer = filter::find("abuffer").ok_or(ffmpeg::Error::FilterNotFound)?;
            let sink = filter::find("abuffersink").ok_or(ffmpeg::Error::FilterNotFound)?;
            graph.add(&abuffer, "in", &args)?;
            graph.add(&sink, "out", "")?;
            graph.output("in", 0)?.input("out", 0)?.parse(&spec)?;
            graph.validate()?;
            if frame_size > 0 {
                graph
                    .get("out")
                    .ok_or(ffmpeg::Error::FilterNotFound)?
                    .sink()
                    .set_frame_size(frame_size);
            }
            Ok(())
        };
        build(&mut graph)
            .map_err(|e| internal(format!("building the audio filters `{args}` → `{spec}`"), e))?;
        Ok(Self { graph, input })
    }

    fn add(&mut self, frame: &frame::Audio) -> Result<(), ffmpeg::Error> {
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

    fn get(&mut self, frame: &mut frame::Audio) -> Result<(), ffmpeg::Error> {
        self.graph
            .get("out")
            .ok_or(ffmpeg::Error::FilterNotFound)?
            .sink()
            .frame(frame)
    }

    fn time_base(&mut self) -> Rational {
        self.graph
            .get("out")
            .map_or(Rational(1, 1), |mut out| out.sink().time_base())
    }
}
