//! What a probe says about real files.

use pipe_core::Transcoder;
use pipe_transcode::FfmpegTranscoder;

use crate::util;

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_webm() {
    let info = FfmpegTranscoder::new()
        .probe(util::source(&util::webm()))
        .await
        .unwrap();
    assert_eq!(info.container, "matroska,webm");
    assert_eq!((info.width, info.height), (640, 480));
    assert_eq!(info.video_codec.as_deref(), Some("vp8"));
    assert_eq!(info.audio_codec.as_deref(), Some("opus"));
    assert_eq!(info.frame_rate, Some(30.0));
    assert_eq!(info.rotation, 0);
    assert!(
        (info.duration.as_secs_f64() - 3.0).abs() < 0.05,
        "{:?}",
        info.duration
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webm_without_duration_is_measured_from_its_packets() {
    let live = util::live_webm();
    let header = util::ffprobe(&live);
    assert!(header["format"]["duration"].is_null() || util::duration(&header) > 0.0);
    let info = FfmpegTranscoder::new()
        .probe(util::source(&live))
        .await
        .unwrap();
    let real = util::duration(&util::ffprobe(&util::webm()));
    assert!(
        (info.duration.as_secs_f64() - real).abs() <= 0.1,
        "{:?} vs {real}",
        info.duration
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_mp4() {
    let info = FfmpegTranscoder::new()
        .probe(util::source(&util::rotated_mp4()))
        .await
        .unwrap();
    assert_eq!(info.container, "mov,mp4,m4a,3gp,3g2,mj2");
    assert_eq!(info.video_codec.as_deref(), Some("h264"));
    assert_eq!(info.audio_codec, None);
    assert_eq!(info.rotation, 270);
    assert_eq!(info.orientation(), "portrait");
}
