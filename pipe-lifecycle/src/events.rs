//! The events the pipeline tells, each in two forms:
//!
//! - [`Event::data`], our own documented payload (the `standard` wire format), in the
//!   table below: Pipe's field names, plus what Pipe does not send (`checksumSha256`,
//!   `rotated`, the `video_failed` event);
//! - [`Event::pipe`], exactly what the hosted Pipe sends (the `pipe` wire format): Pipe's
//!   event names (`video_copied_pipe_s3` for our own storage), only Pipe's fields, with
//!   Pipe's JSON types and casing — `id` the recording's [`Recording::number`] (a number,
//!   or numeric text where Pipe sends text), `duration` a number, `type` lower case where
//!   Pipe's examples are. A field we cannot fill is the empty string, never `null`: the
//!   personal data fields (`ip`, `ua`, `httpReferer`, `cam_name`, `mic_name`) where the
//!   environment does not collect them, and `checksum_md5`/`checksum_sha1`, `filmstripUrl` and `cdn`
//!   because we do not have them yet (`bucket`, `region` and `acl` of `video_copied_s3`
//!   are the sink's [`SinkLocation`]; our own storage has none). Events Pipe does not have
//!   (`video_failed`, copies to GCS, Azure and local disk) have no Pipe form.
//!
//! The standard form:
//!
//! | event | `data` fields |
//! |---|---|
//! | `video_recorded` | `videoName`, `duration`, `audioCodec`, `videoCodec`, `type`, `size`, `width`, `height`, `orientation`, `id`, `dateTime`, `timeZone`, `payload`; `httpReferer`, `cam_name`, `mic_name`, `ip`, `ua` where the environment collects them |
//! | `video_converted` | `videoName`, `duration`, `type`, `size`, `width`, `height`, `orientation`, `audioCodec`, `videoCodec`, `rotated`, `id`, `payload` |
//! | `video_copied_…` | `storedStatus`, `videoName`, `size`, `checksumSha256`, `id`, `url`, `snapshotUrl`, `rawRecordingUrl`, `payload` |
//! | `video_failed` | `videoName`, `id`, `reason`, `dateTime`, `timeZone`, `payload` |
//! | `video_copy_failed` | `videoName`, `id`, `sink`, `sinkKind`, `reason`, `dateTime`, `timeZone`, `payload` |
//! | `video_deleted` | `videoName`, `id`, `reason` (`request`, `retention`, `abandoned`), `requestedAt`, `dateTime`, `timeZone` |
//!
//! `id` and `videoName` are both the recording's id; `dateTime` is UTC (`timeZone` says so).

use serde_json::{Value, json};

use pipe_core::{
    Artifact, DeletionReason, Event, EventId, EventName, JobId, MediaInfo, PipeEvent, Recording,
    SinkId, SinkKind, SinkLocation, Timestamp,
};

/// Where the files of one sink can be fetched, for `video_copied_…`; `None` where the sink
/// makes no URLs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopiedUrls {
    /// The MP4.
    pub mp4: Option<String>,
    /// The snapshot.
    pub snapshot: Option<String>,
    /// The original as recorded.
    pub original: Option<String>,
}

impl CopiedUrls {
    /// URLs of the MP4, the snapshot and the original.
    pub fn new(mp4: Option<String>, snapshot: Option<String>, original: Option<String>) -> Self {
        Self {
            mp4,
            snapshot,
            original,
        }
    }
}

/// `video_recorded`: the original is complete and was probed. `size` is the original's
/// length; `type` its container (`WEBM`, `MP4`, …).
pub fn video_recorded(recording: &Recording, original: &MediaInfo) -> Event {
    let (width, height) = original.display_size();
    let mut data = json!({
        "videoName": recording.id.as_str(),
        "duration": duration(original),
        "audioCodec": codec(original.audio_codec.as_deref()),
        "videoCodec": codec(original.video_codec.as_deref()),
        "type": original_type(recording.mime_type.as_deref()),
        "size": recording.length.unwrap_or(0),
        "width": width.to_string(),
        "height": height.to_string(),
        "orientation": original.orientation(),
        "id": recording.id.as_str(),
        "dateTime": recording.created.to_utc_string(),
        "timeZone": "UTC",
        "payload": payload(recording),
    });
    let mut pipe = json!({
        "videoName": recording.id.as_str(),
        "audioCodec": codec(original.audio_codec.as_deref()),
        "videoCodec": codec(original.video_codec.as_deref()),
        "type": original_extension(recording.mime_type.as_deref()),
        "id": recording.number,
        "dateTime": recording.created.to_utc_string(),
        "timeZone": "UTC",
        "payload": payload(recording),
    });
    for (field, value) in personal_fields(recording) {
        pipe[field] = Value::String(value.clone().unwrap_or_default());
        if let Some(value) = value {
            data[field] = Value::String(value);
        }
    }
    Event::new(EventName::VIDEO_RECORDED, recording.id.clone(), data)
        .in_environment(recording.environment.clone())
        .with_pipe(PipeEvent::new(EventName::VIDEO_RECORDED, pipe))
}

/// `video_converted`: the MP4 (and the snapshot, for video) exist. `rotated` says whether
/// the original carried a rotation that the conversion applied.
pub fn video_converted(
    recording: &Recording,
    original: &MediaInfo,
    mp4: &MediaInfo,
    mp4_size: u64,
) -> Event {
    let (width, height) = mp4.display_size();
    let data = json!({
        "videoName": recording.id.as_str(),
        "duration": duration(mp4),
        "type": "MP4",
        "size": mp4_size,
        "width": width.to_string(),
        "height": height.to_string(),
        "orientation": mp4.orientation(),
        "audioCodec": codec(mp4.audio_codec.as_deref()),
        "videoCodec": codec(mp4.video_codec.as_deref()),
        "rotated": (original.rotation != 0).to_string(),
        "id": recording.id.as_str(),
        "payload": payload(recording),
    });
    let pipe = json!({
        "videoName": recording.id.as_str(),
        "duration": duration_number(mp4),
        "audioCodec": codec(mp4.audio_codec.as_deref()),
        "videoCodec": codec(mp4.video_codec.as_deref()),
        "type": "mp4",
        "size": mp4_size,
        "width": width.to_string(),
        "height": height.to_string(),
        "orientation": mp4.orientation(),
        "id": recording.number,
        "dateTime": Timestamp::now().to_utc_string(),
        "timeZone": "UTC",
        "payload": payload(recording),
    });
    Event::new(EventName::VIDEO_CONVERTED, recording.id.clone(), data)
        .in_environment(recording.environment.clone())
        .with_pipe(PipeEvent::new(EventName::VIDEO_CONVERTED, pipe))
}

/// `video_copied_…` (the name from [`SinkKind::copied_event`]): every file of the
/// recording is in one sink, verified. `size` and `checksumSha256` are the MP4's.
pub fn video_copied(
    sink: SinkKind,
    location: &SinkLocation,
    recording: &Recording,
    mp4: &Artifact,
    urls: &CopiedUrls,
) -> Event {
    let data = json!({
        "storedStatus": "stored successful",
        "videoName": recording.id.as_str(),
        "size": mp4.size,
        "checksumSha256": mp4.sha256,
        "id": recording.id.as_str(),
        "url": urls.mp4,
        "snapshotUrl": urls.snapshot,
        "rawRecordingUrl": urls.original,
        "payload": payload(recording),
    });
    let event = Event::new(sink.copied_event(), recording.id.clone(), data)
        .in_environment(recording.environment.clone());
    match pipe_copied(sink, location, recording, mp4, urls) {
        Some(pipe) => event.with_pipe(pipe),
        None => event,
    }
}

/// Pipe's `video_copied_…` for a sink of `kind`, with the fields of Pipe's event of that
/// name; `None` for kinds Pipe has no event for.
fn pipe_copied(
    kind: SinkKind,
    location: &SinkLocation,
    recording: &Recording,
    mp4: &Artifact,
    urls: &CopiedUrls,
) -> Option<PipeEvent> {
    let url = |u: &Option<String>| u.clone().unwrap_or_default();
    let text = |t: &Option<String>| t.clone().unwrap_or_default();
    let name = recording.id.as_str();
    let number = recording.number;
    let payload = payload(recording);
    Some(match kind {
        SinkKind::PipeStorage => PipeEvent::new(
            "video_copied_pipe_s3",
            json!({
                "storedStatus": "stored successful",
                "videoName": name,
                "size": mp4.size,
                "checksum_md5": "",
                "checksum_sha1": "",
                "id": number,
                "url": url(&urls.mp4),
                "rawRecordingUrl": url(&urls.original),
                "snapshotUrl": url(&urls.snapshot),
                "filmstripUrl": "",
                "cdn": {
                    "cdnRecordingUrl": "",
                    "cdnRawRecordingUrl": "",
                    "cdnSnapshotUrl": "",
                    "cdnFilmstripUrl": "",
                },
                "bucket": "",
                "region": "",
                "payload": payload,
            }),
        ),
        SinkKind::S3 => PipeEvent::new(
            "video_copied_s3",
            json!({
                "s3UploadStatus": "upload success",
                "videoName": name,
                "type": "MP4",
                "size": mp4.size,
                "id": number.to_string(),
                "url": url(&urls.mp4),
                "snapshotUrl": url(&urls.snapshot),
                "bucket": text(&location.bucket),
                "region": text(&location.region),
                "acl": text(&location.acl),
                "payload": payload,
            }),
        ),
        // Pipe tells copies to SFTP and to FTP(S) by one name.
        SinkKind::Ftp | SinkKind::Sftp => {
            let media = recording.media.clone().unwrap_or_default();
            let (width, height) = media.display_size();
            let has = |stream: &Option<String>, name: &'static str| {
                if stream.is_some() { name } else { "" }
            };
            PipeEvent::new(
                "video_copied_ftp",
                json!({
                    "ftpUploadStatus": "upload success",
                    "videoName": name,
                    "duration": duration_number(&media),
                    "audioCodec": has(&media.audio_codec, "AAC"),
                    "videoCodec": has(&media.video_codec, "H.264"),
                    "type": "MP4",
                    "size": mp4.size,
                    "width": width,
                    "height": height,
                    "orientation": media.orientation(),
                    "id": number.to_string(),
                    "payload": payload,
                    "httpReferer": text(&recording.personal.referer),
                }),
            )
        }
        SinkKind::Dropbox => PipeEvent::new(
            "video_copied_dbox",
            json!({
                "dboxUploadStatus": "upload success",
                "videoName": name,
                "type": "mp4",
                "size": mp4.size,
                "checksum_md5": "",
                "checksum_sha1": "",
                "id": number,
                "payload": payload,
            }),
        ),
        // GCS, Azure, local disk and any later kind: Pipe has no such event.
        _ => return None,
    })
}

/// `video_failed` (ours): processing gave up on the recording, for `reason`.
pub fn video_failed(recording: &Recording, reason: &str) -> Event {
    let data = json!({
        "videoName": recording.id.as_str(),
        "id": recording.id.as_str(),
        "reason": reason,
        "dateTime": Timestamp::now().to_utc_string(),
        "timeZone": "UTC",
        "payload": payload(recording),
    });
    Event::new(EventName::VIDEO_FAILED, recording.id.clone(), data)
        .in_environment(recording.environment.clone())
}

/// `video_deleted` (ours): the recording was erased from every sink and the catalog, for
/// `reason`, at `erased` (`dateTime`); its deletion was asked for at `requested`. It has
/// no `payload`: the erasure forgot it, and an event waiting for its delivery is kept in
/// the catalog.
pub fn video_deleted(
    recording: &Recording,
    reason: DeletionReason,
    requested: Timestamp,
    erased: Timestamp,
) -> Event {
    let data = json!({
        "videoName": recording.id.as_str(),
        "id": recording.id.as_str(),
        "reason": reason.as_str(),
        "requestedAt": requested.to_utc_string(),
        "dateTime": erased.to_utc_string(),
        "timeZone": "UTC",
    });
    Event::new(EventName::VIDEO_DELETED, recording.id.clone(), data)
        .in_environment(recording.environment.clone())
}

/// `video_copy_failed` (ours): the copy to one sink gave up, with the reason. The
/// recording stays `converted`, its files kept, until every sink has them (a redelivery
/// of the copy job through the API tries again). One event per given-up copy job: its id
/// comes from the job, so telling it twice (a crash between the two writes) sends it
/// once.
pub fn video_copy_failed(
    recording: &Recording,
    sink: &SinkId,
    kind: SinkKind,
    reason: &str,
    job: JobId,
) -> Event {
    let data = json!({
        "videoName": recording.id.as_str(),
        "id": recording.id.as_str(),
        "sink": sink.as_str(),
        "sinkKind": kind.as_str(),
        "reason": reason,
        "dateTime": Timestamp::now().to_utc_string(),
        "timeZone": "UTC",
        "payload": payload(recording),
    });
    let mut event = Event::new(EventName::VIDEO_COPY_FAILED, recording.id.clone(), data)
        .in_environment(recording.environment.clone());
    event.id = EventId::new(format!("msg_copy_failed_{job}"));
    event
}

/// The `Content-Type` the original is stored with: one of a fixed few, from its
/// extension (itself from an allow-list) and whether the probe found video. Never the text
/// the recorder declared, which a sink serving links would pass on to a browser.
pub fn original_content_type(extension: &str, has_video: bool) -> &'static str {
    match (extension, has_video) {
        ("mp4", true) => "video/mp4",
        ("mp4", false) => "audio/mp4",
        ("ogg", true) => "video/ogg",
        ("ogg", false) => "audio/ogg",
        ("wav", _) => "audio/wav",
        (_, true) => "video/webm",
        (_, false) => "audio/webm",
    }
}

/// The original's file extension, from the MIME type the recorder declared: `mp4`,
/// `ogg`, `wav` or (for WebM and anything unknown) `webm`.
pub fn original_extension(mime_type: Option<&str>) -> &'static str {
    let essence = mime_type
        .and_then(|m| m.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("video/mp4" | "audio/mp4") => "mp4",
        Some("video/ogg" | "audio/ogg" | "application/ogg") => "ogg",
        Some("audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave") => "wav",
        _ => "webm",
    }
}

/// Pipe's `type` of an original: its extension in capitals (`WEBM`, `MP4`, …).
fn original_type(mime_type: Option<&str>) -> String {
    original_extension(mime_type).to_ascii_uppercase()
}

/// Seconds with two decimals, as text (the standard form).
fn duration(media: &MediaInfo) -> String {
    format!("{:.2}", media.duration.as_secs_f64())
}

/// Seconds with two decimals, as a JSON number (`5.83`), as Pipe's webhooks send it.
fn duration_number(media: &MediaInfo) -> Value {
    let hundredths = (media.duration.as_secs_f64() * 100.0).round() / 100.0;
    serde_json::Number::from_f64(hundredths).map_or(Value::from(0), Value::Number)
}

/// A codec's name as Pipe shows it (`H.264`, `AAC`, `VP8`, `Opus`), from FFmpeg's short name.
fn codec(name: Option<&str>) -> String {
    let Some(name) = name else {
        return String::new();
    };
    match name {
        "h264" => "H.264",
        "hevc" => "H.265",
        "vp8" => "VP8",
        "vp9" => "VP9",
        "av1" => "AV1",
        "aac" => "AAC",
        "opus" => "Opus",
        "vorbis" => "Vorbis",
        "mp3" => "MP3",
        "flac" => "FLAC",
        pcm if pcm.starts_with("pcm_") => "PCM",
        other => other,
    }
    .to_owned()
}

/// The personal data fields under Pipe's names, each with its value where the
/// environment collected it: Pipe's form sends `""` for the others, ours leaves them out.
fn personal_fields(recording: &Recording) -> [(&'static str, Option<String>); 5] {
    let p = &recording.personal;
    [
        ("httpReferer", p.referer.clone()),
        ("cam_name", p.camera_name.clone()),
        ("mic_name", p.microphone_name.clone()),
        ("ip", p.ip.clone()),
        ("ua", p.user_agent.clone()),
    ]
}

fn payload(recording: &Recording) -> Value {
    Value::String(recording.payload.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pipe_core::{ArtifactKind, ObjectKey, RecordingId, RecordingState};

    use super::*;

    /// The MP4 artifact of `rec`, of `size` bytes.
    fn mp4_of(rec: &Recording, size: u64) -> Artifact {
        let key = ObjectKey::for_artifact(&rec.id, ArtifactKind::Mp4, None);
        Artifact::new(
            rec.id.clone(),
            ArtifactKind::Mp4,
            key,
            size,
            "ab".repeat(32),
            "video/mp4",
        )
    }

    fn recording() -> Recording {
        let id: RecordingId = "rec1".parse().unwrap();
        let created = Timestamp::from_millis(1_457_013_104_000);
        let mut r = Recording::new(id, RecordingState::Recorded, 3, created, created);
        r.mime_type = Some("video/webm;codecs=vp8,opus".into());
        r.payload = Some("user-42".into());
        r.length = Some(123_456);
        r.number = 42;
        r
    }

    fn media(
        container: &str,
        video: Option<&str>,
        audio: Option<&str>,
        w: u32,
        h: u32,
        ms: u64,
    ) -> MediaInfo {
        let mut m = MediaInfo::new(container);
        m.video_codec = video.map(str::to_owned);
        m.audio_codec = audio.map(str::to_owned);
        m.width = w;
        m.height = h;
        m.duration = Duration::from_millis(ms);
        m
    }

    #[test]
    fn video_recorded_has_pipes_fields() {
        let ev = video_recorded(
            &recording(),
            &media("matroska,webm", Some("vp8"), Some("opus"), 320, 240, 2_041),
        );
        assert_eq!(ev.name.as_str(), "video_recorded");
        assert_eq!(
            ev.data,
            json!({
                "videoName": "rec1", "duration": "2.04", "audioCodec": "Opus", "videoCodec": "VP8",
                "type": "WEBM", "size": 123_456, "width": "320", "height": "240",
                "orientation": "landscape", "id": "rec1", "dateTime": "2016-03-03 13:51:44",
                "timeZone": "UTC", "payload": "user-42"
            })
        );
    }

    #[test]
    fn video_converted_has_pipes_fields() {
        let mut original = media("matroska,webm", Some("vp8"), Some("opus"), 320, 240, 2_000);
        original.rotation = 90;
        let mp4 = media(
            "mov,mp4,m4a,3gp,3g2,mj2",
            Some("h264"),
            Some("aac"),
            240,
            320,
            2_005,
        );
        let ev = video_converted(&recording(), &original, &mp4, 99_000);
        assert_eq!(ev.name.as_str(), "video_converted");
        assert_eq!(
            ev.data,
            json!({
                "videoName": "rec1", "duration": "2.00", "type": "MP4", "size": 99_000,
                "width": "240", "height": "320", "orientation": "portrait",
                "audioCodec": "AAC", "videoCodec": "H.264", "rotated": "true",
                "id": "rec1", "payload": "user-42"
            })
        );
    }

    #[test]
    fn video_copied_has_pipes_fields_and_nulls_for_missing_urls() {
        let rec = recording();
        let mp4 = mp4_of(&rec, 99_000);
        let urls = CopiedUrls::new(
            Some("https://x/rec1/rec1.mp4".into()),
            None,
            Some("https://x/rec1/rec1_raw.webm".into()),
        );
        let ev = video_copied(
            SinkKind::PipeStorage,
            &SinkLocation::default(),
            &rec,
            &mp4,
            &urls,
        );
        assert_eq!(ev.name.as_str(), "video_copied_pipe_storage");
        assert_eq!(
            ev.data,
            json!({
                "storedStatus": "stored successful", "videoName": "rec1", "size": 99_000,
                "checksumSha256": "ab".repeat(32), "id": "rec1",
                "url": "https://x/rec1/rec1.mp4", "snapshotUrl": null,
                "rawRecordingUrl": "https://x/rec1/rec1_raw.webm", "payload": "user-42"
            })
        );
        assert_eq!(
            video_copied(SinkKind::S3, &SinkLocation::default(), &rec, &mp4, &urls)
                .name
                .as_str(),
            "video_copied_s3"
        );
    }

    #[test]
    fn video_copied_s3_tells_the_sinks_bucket_region_and_acl() {
        let rec = recording();
        let mp4 = mp4_of(&rec, 9);
        let urls = CopiedUrls::default();
        let location = SinkLocation::bucket("recordings")
            .with_region("eu-west-1")
            .with_acl(Some("bucket-owner-full-control".into()));
        let ev = video_copied(SinkKind::S3, &location, &rec, &mp4, &urls);
        let (name, data) = pipe_form(&ev);
        assert_eq!(name, "video_copied_s3");
        assert_eq!(data["bucket"], "recordings");
        assert_eq!(data["region"], "eu-west-1");
        assert_eq!(data["acl"], "bucket-owner-full-control");
        let none = video_copied(SinkKind::S3, &SinkLocation::default(), &rec, &mp4, &urls);
        assert_eq!(
            pipe_form(&none).1["acl"],
            "",
            "an absent field is empty, never null"
        );
    }

    /// The keys and JSON types of Pipe's forms, as PIPE-COMPAT.md's sources show them.
    fn pipe_form(ev: &Event) -> (&str, &serde_json::Map<String, Value>) {
        let pipe = ev.pipe.as_ref().expect("no Pipe form");
        (pipe.name.as_str(), pipe.data.as_object().unwrap())
    }

    #[test]
    fn pipes_form_of_video_recorded_has_a_numeric_id_lower_case_type_and_empty_pii() {
        let ev = video_recorded(
            &recording(),
            &media("matroska,webm", Some("vp8"), Some("opus"), 320, 240, 2_041),
        );
        let (name, data) = pipe_form(&ev);
        assert_eq!(name, "video_recorded");
        assert_eq!(
            Value::Object(data.clone()),
            json!({
                "videoName": "rec1", "audioCodec": "Opus", "videoCodec": "VP8", "type": "webm",
                "id": 42, "dateTime": "2016-03-03 13:51:44", "timeZone": "UTC",
                "payload": "user-42", "httpReferer": "", "cam_name": "", "mic_name": "",
                "ip": "", "ua": ""
            })
        );
    }

    #[test]
    fn pipes_form_of_video_converted_has_a_numeric_duration_and_a_time() {
        let original = media("matroska,webm", Some("vp8"), Some("opus"), 320, 240, 2_000);
        let mp4 = media("mov,mp4", Some("h264"), Some("aac"), 320, 240, 5_834);
        let ev = video_converted(&recording(), &original, &mp4, 99_000);
        let (name, data) = pipe_form(&ev);
        assert_eq!(name, "video_converted");
        assert_eq!(data["duration"], json!(5.83));
        assert_eq!(data["type"], "mp4");
        assert_eq!(data["id"], 42);
        assert_eq!(data["size"], 99_000);
        assert_eq!(data["width"], "320");
        assert_eq!(data["timeZone"], "UTC");
        assert_eq!(data["dateTime"].as_str().unwrap().len(), 19);
        assert!(!data.contains_key("rotated"), "an extra field: {data:?}");
    }

    #[test]
    fn pipes_forms_of_copies_use_pipes_names_and_never_null() {
        let rec = recording();
        let mp4 = mp4_of(&rec, 9);
        let urls = CopiedUrls::new(Some("https://x/a.mp4".into()), None, None);
        for (kind, name, id) in [
            (SinkKind::PipeStorage, "video_copied_pipe_s3", json!(42)),
            (SinkKind::S3, "video_copied_s3", json!("42")),
            (SinkKind::Sftp, "video_copied_ftp", json!("42")),
            (SinkKind::Ftp, "video_copied_ftp", json!("42")),
            (SinkKind::Dropbox, "video_copied_dbox", json!(42)),
        ] {
            let ev = video_copied(kind, &SinkLocation::default(), &rec, &mp4, &urls);
            let (pipe_name, data) = pipe_form(&ev);
            assert_eq!(pipe_name, name);
            assert_eq!(data["id"], id, "{name}");
            let text = serde_json::to_string(data).unwrap();
            assert!(!text.contains("null"), "{name}: {text}");
        }
        for kind in [SinkKind::Gcs, SinkKind::Azure, SinkKind::Local] {
            assert!(
                video_copied(kind, &SinkLocation::default(), &rec, &mp4, &urls)
                    .pipe
                    .is_none()
            );
        }
        assert!(video_failed(&rec, "x").pipe.is_none());
    }

    #[test]
    fn video_failed_says_why() {
        let mut rec = recording();
        rec.payload = None;
        let ev = video_failed(&rec, "media: no streams");
        assert_eq!(ev.name.as_str(), "video_failed");
        let data = ev.data.as_object().unwrap();
        let keys: Vec<_> = data.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "dateTime",
                "id",
                "payload",
                "reason",
                "timeZone",
                "videoName"
            ]
        );
        assert_eq!(data["reason"], "media: no streams");
        assert_eq!(data["payload"], "");
    }

    #[test]
    fn audio_only_has_empty_video_fields() {
        let ev = video_recorded(&recording(), &media("ogg", None, Some("opus"), 0, 0, 1_500));
        assert_eq!(ev.data["videoCodec"], "");
        assert_eq!(ev.data["audioCodec"], "Opus");
        assert_eq!(ev.data["width"], "0");
    }

    #[test]
    fn original_extensions() {
        assert_eq!(
            original_extension(Some("video/webm;codecs=vp8,opus")),
            "webm"
        );
        assert_eq!(original_extension(Some("video/mp4; codecs=avc1")), "mp4");
        assert_eq!(original_extension(Some("audio/ogg")), "ogg");
        assert_eq!(original_extension(Some("audio/wav")), "wav");
        assert_eq!(original_extension(Some("application/x-unknown")), "webm");
        assert_eq!(original_extension(None), "webm");
    }
}
