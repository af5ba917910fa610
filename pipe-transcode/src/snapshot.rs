//! The JPEG snapshot: one picture, full-range YUV, encoded with FFmpeg's `mjpeg`.

use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling;
use ffmpeg_next::{Dictionary, Packet, codec, encoder, frame};
use pipe_core::Result;

use crate::error::internal;

/// `mjpeg`'s quantiser scale (2 best … 31 worst); 3 looks like the original.
const QUALITY: usize = 3;

/// Encodes `picture` (any pixel format the scaler reads) as a baseline JPEG of the same size.
pub(crate) fn encode_jpeg(picture: &frame::Video) -> Result<Vec<u8>> {
    let (width, height) = (picture.width(), picture.height());
    // `yuvj420p` is JPEG's full-range 4:2:0; the scaler expands the studio range on the way.
    let mut scaler = scaling::Context::get(
        picture.format(),
        width,
        height,
        Pixel::YUVJ420P,
        width,
        height,
        scaling::Flags::BICUBIC,
    )
    .map_err(|e| internal("preparing the snapshot scaler", e))?;
    let mut full_range = frame::Video::empty();
    scaler
        .run(picture, &mut full_range)
        .map_err(|e| internal("converting the snapshot", e))?;
    full_range.set_pts(Some(0));

    let codec = encoder::find(codec::Id::MJPEG).ok_or_else(|| {
        pipe_core::Error::permanent("ffmpeg", "FFmpeg was built without the mjpeg encoder")
    })?;
    let mut jpeg = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(|e| internal("creating the mjpeg encoder", e))?;
    jpeg.set_width(width);
    jpeg.set_height(height);
    jpeg.set_format(Pixel::YUVJ420P);
    jpeg.set_time_base((1, 25));
    jpeg.set_flags(codec::Flags::QSCALE);
    jpeg.set_quality(QUALITY * 118); // FF_QP2LAMBDA
    let mut jpeg = jpeg
        .open_as_with(codec, Dictionary::new())
        .map_err(|e| internal("opening the mjpeg encoder", e))?;

    jpeg.send_frame(&full_range)
        .map_err(|e| internal("encoding the snapshot", e))?;
    jpeg.send_eof()
        .map_err(|e| internal("encoding the snapshot", e))?;
    let mut packet = Packet::empty();
    jpeg.receive_packet(&mut packet)
        .map_err(|e| internal("encoding the snapshot", e))?;
    Ok(packet.data().unwrap_or_default().to_vec())
}
