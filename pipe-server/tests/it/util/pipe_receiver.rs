//! A webhook receiver written only from what receivers of the hosted Pipe rely on
//! (`../shared/PIPE-COMPAT.md` §1.8): the form-encoded `payload` field that Lookit, the
//! WordPress plugin and interviewlook read; `X-Pipe-Signature` checked as Lookit and footing
//! check it, base64(HMAC-SHA1(key, URL as configured + the payload JSON)), computed here
//! with `hmac` and `sha1` directly, not with `pipe-webhook`; and footing's strict data
//! classes: exactly Pipe's fields, no unknown ones, `id` and `duration` numbers, nothing
//! null. Anything else is refused with a 4xx, as those receivers would.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha1::Sha1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    version: String,
    event: String,
    data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct VideoRecorded {
    video_name: String,
    audio_codec: String,
    video_codec: String,
    #[serde(rename = "type")]
    kind: String,
    id: u64,
    date_time: String,
    time_zone: String,
    payload: String,
    http_referer: String,
    #[serde(rename = "cam_name")]
    cam_name: String,
    #[serde(rename = "mic_name")]
    mic_name: String,
    ip: String,
    ua: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct VideoConverted {
    video_name: String,
    duration: f64,
    audio_codec: String,
    video_codec: String,
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    width: String,
    height: String,
    orientation: String,
    id: u64,
    date_time: String,
    time_zone: String,
    payload: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Cdn {
    cdn_recording_url: String,
    cdn_raw_recording_url: String,
    cdn_snapshot_url: String,
    cdn_filmstrip_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct VideoCopiedPipeS3 {
    stored_status: String,
    video_name: String,
    size: u64,
    #[serde(rename = "checksum_md5")]
    checksum_md5: String,
    #[serde(rename = "checksum_sha1")]
    checksum_sha1: String,
    id: u64,
    url: String,
    raw_recording_url: String,
    snapshot_url: String,
    filmstrip_url: String,
    cdn: Cdn,
    bucket: String,
    region: String,
    payload: String,
}

/// `video_copied_s3` as Lookit's tests show it (PIPE-COMPAT.md §1.4): Lookit requires
/// `s3UploadStatus`, and builds the file name from `videoName` and the lower-cased `type`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct VideoCopiedS3 {
    s3_upload_status: String,
    video_name: String,
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    id: String,
    url: String,
    snapshot_url: String,
    bucket: String,
    region: String,
    acl: String,
    payload: String,
}

/// `video_copied_ftp` (SFTP and FTPS) as interviewlook's pasted request shows it
/// (PIPE-COMPAT.md §1.5): `duration`, `width` and `height` numbers, `id` numeric text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct VideoCopiedFtp {
    ftp_upload_status: String,
    video_name: String,
    duration: f64,
    audio_codec: String,
    video_codec: String,
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    width: u64,
    height: u64,
    orientation: String,
    id: String,
    payload: String,
    http_referer: String,
}

/// `video_copied_dbox` as Pipe's documented example shows it (PIPE-COMPAT.md §1.6):
/// lower-case `type`, numeric `id`, snake_case checksums.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct VideoCopiedDbox {
    #[serde(rename = "dboxUploadStatus")]
    dbox_upload_status: String,
    #[serde(rename = "videoName")]
    video_name: String,
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    checksum_md5: String,
    checksum_sha1: String,
    id: u64,
    payload: String,
}

/// One event the receiver accepted.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub event: String,
    pub data: Value,
}

impl Accepted {
    pub fn video_name(&self) -> &str {
        self.data["videoName"].as_str().unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct PipeReceiver {
    pub url: String,
    key: String,
    accepted: Arc<Mutex<Vec<Accepted>>>,
    refused: Arc<Mutex<Vec<String>>>,
}

impl PipeReceiver {
    pub async fn start(key: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            url: format!("http://{}/pipe/webhook", listener.local_addr().unwrap()),
            key: key.to_owned(),
            accepted: Arc::default(),
            refused: Arc::default(),
        };
        let app = Router::new()
            .route("/pipe/webhook", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    /// The events accepted for the recording whose `videoName` is `name`.
    pub fn accepted(&self, name: &str) -> Vec<Accepted> {
        let all = self.accepted.lock().unwrap().clone();
        all.into_iter().filter(|a| a.video_name() == name).collect()
    }

    /// Why each refused request was refused.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }

    fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<Accepted, String> {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type != "application/x-www-form-urlencoded" {
            return Err(format!("content-type {content_type:?}"));
        }
        let payload = form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or("no payload field")?;
        let signature = headers
            .get("x-pipe-signature")
            .and_then(|v| v.to_str().ok())
            .ok_or("no X-Pipe-Signature")?;
        let mut mac = Hmac::<Sha1>::new_from_slice(self.key.as_bytes()).unwrap();
        mac.update(self.url.as_bytes());
        mac.update(payload.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        if signature != expected {
            return Err("bad signature".into());
        }
        if payload.contains("null") {
            return Err(format!("a null in {payload}"));
        }
        let envelope: Envelope = serde_json::from_str(&payload).map_err(|e| e.to_string())?;
        if envelope.version != "1.0" {
            return Err(format!("version {}", envelope.version));
        }
        let strict =
            |r: Result<(), serde_json::Error>| r.map_err(|e| format!("{}: {e}", envelope.event));
        match envelope.event.as_str() {
            "video_recorded" => {
                strict(serde_json::from_value::<VideoRecorded>(envelope.data.clone()).map(drop))?
            }
            "video_converted" => {
                strict(serde_json::from_value::<VideoConverted>(envelope.data.clone()).map(drop))?
            }
            "video_copied_pipe_s3" => strict(
                serde_json::from_value::<VideoCopiedPipeS3>(envelope.data.clone()).map(drop),
            )?,
            "video_copied_ftp" => {
                strict(serde_json::from_value::<VideoCopiedFtp>(envelope.data.clone()).map(drop))?
            }
            "video_copied_s3" => {
                strict(serde_json::from_value::<VideoCopiedS3>(envelope.data.clone()).map(drop))?
            }
            "video_copied_dbox" => {
                strict(serde_json::from_value::<VideoCopiedDbox>(envelope.data.clone()).map(drop))?
            }
            other => return Err(format!("unknown event {other}")),
        }
        Ok(Accepted {
            event: envelope.event,
            data: envelope.data,
        })
    }
}

async fn receive(
    State(receiver): State<PipeReceiver>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    match receiver.check(&headers, &body) {
        Ok(accepted) => {
            receiver.accepted.lock().unwrap().push(accepted);
            StatusCode::OK
        }
        Err(why) => {
            receiver.refused.lock().unwrap().push(why);
            StatusCode::BAD_REQUEST
        }
    }
}
