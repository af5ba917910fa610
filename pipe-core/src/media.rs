use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a probe found in a media file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MediaInfo {
    /// The container format as FFmpeg names it (`matroska,webm`, `mov,mp4,m4a,3gp,3g2,mj2`, …).
    pub container: String,
    /// Playing time. Zero where the container does not say and no packet had a timestamp.
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    /// Width of the first video stream in pixels, as stored (before rotation).
    pub width: u32,
    /// Height of the first video stream in pixels, as stored (before rotation).
    pub height: u32,
    /// The video codec's short name (`vp8`, `h264`, …), if there is a video stream.
    pub video_codec: Option<String>,
    /// The audio codec's short name (`opus`, `aac`, …), if there is an audio stream.
    pub audio_codec: Option<String>,
    /// Average frame rate, if known.
    pub frame_rate: Option<f64>,
    /// Clockwise rotation in degrees (0, 90, 180 or 270) to apply for display.
    pub rotation: u16,
}

impl MediaInfo {
    /// An empty info for `container`; fill the rest with the builders.
    pub fn new(container: impl Into<String>) -> Self {
        Self {
            container: container.into(),
            ..Self::default()
        }
    }

    /// Whether a video stream is present.
    pub fn has_video(&self) -> bool {
        self.video_codec.is_some()
    }

    /// Whether an audio stream is present.
    pub fn has_audio(&self) -> bool {
        self.audio_codec.is_some()
    }

    /// Width and height as displayed, after rotation.
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation % 180 == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// `landscape`, `portrait` or `square`, as displayed (Pipe's `orientation` field).
    pub fn orientation(&self) -> &'static str {
        let (w, h) = self.display_size();
        match w.cmp(&h) {
            std::cmp::Ordering::Greater => "landscape",
            std::cmp::Ordering::Less => "portrait",
            std::cmp::Ordering::Equal => "square",
        }
    }
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}
