//! pipe-transcode against real FFmpeg: fixtures are made with the ffmpeg CLI at test time
//! and results are checked with ffprobe.

mod hostile;
mod probe;
mod transcode;
mod util;
