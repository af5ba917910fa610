//! A person records in a real browser: the whole way from the camera to a stored MP4,
//! its snapshot and signed webhooks, also through dropped connections and a killed server.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::util::media::{codecs, duration, ffprobe, recognisable_media, top_level_boxes};
use crate::util::pipe_receiver::PipeReceiver;
use crate::util::receiver::verify_with_reference_library;
use crate::util::{Driver, PipeServer, Proxy, WEBHOOK_SECRET, WebhookReceiver};

const COPIED: &str = "video_copied_pipe_storage";

pub(crate) async fn server_with_hooks(dir: &std::path::Path) -> (PipeServer, WebhookReceiver) {
    let hooks = WebhookReceiver::start().await;
    let env = [
        ("PIPE_WEBHOOK_URL", hooks.url.as_str()),
        ("PIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        // Download links in these tests are valid for an hour.
        ("PIPE_LINK_TTL_SECS", "3600"),
    ];
    (PipeServer::start(dir, &env).await, hooks)
}

pub(crate) async fn download(url: &str) -> (reqwest::StatusCode, String, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_recording_becomes_a_playable_mp4_a_snapshot_and_signed_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let (server, hooks) = server_with_hooks(dir.path()).await;

    let done = Driver::record(&format!("{}/", server.url()), 5)
        .done()
        .await;
    let id = done["recordingId"].as_str().unwrap();
    let recorded_secs = done["durationMs"].as_f64().unwrap() / 1000.0;

    let copied = hooks.wait_for(id, COPIED, Duration::from_secs(60)).await;
    let deliveries = hooks.for_recording(id);
    let first_of = |event: &str| {
        deliveries
            .iter()
            .position(|d| d.event() == event)
            .unwrap_or(usize::MAX)
    };
    assert!(
        first_of("video_recorded") < first_of("video_converted")
            && first_of("video_converted") < first_of(COPIED),
        "events out of order: {:?}",
        deliveries.iter().map(|d| d.event()).collect::<Vec<_>>()
    );
    for delivery in &deliveries {
        delivery
            .verify(WEBHOOK_SECRET)
            .unwrap_or_else(|e| panic!("{} has a bad signature: {e}", delivery.event()));
        assert!(delivery.webhook_id().starts_with("msg_"));
        assert_eq!(delivery.json["version"], "1.0");
    }
    // And by the specification's reference library, as a JavaScript receiver would.
    let verdicts = verify_with_reference_library(WEBHOOK_SECRET, &deliveries).await;
    assert_eq!(
        verdicts,
        vec!["ok"; deliveries.len()],
        "the reference library refused a delivery"
    );
    let mut forged = deliveries[0].clone();
    forged.body.push(b' ');
    let verdict = verify_with_reference_library(WEBHOOK_SECRET, &[forged]).await;
    assert!(verdict[0].starts_with("error"), "{verdict:?}");

    let data = &copied.json["data"];
    let (status, content_type, mp4) = download(data["url"].as_str().unwrap()).await;
    assert_eq!((status.as_u16(), content_type.as_str()), (200, "video/mp4"));
    let path = dir.path().join("downloaded.mp4");
    std::fs::write(&path, &mp4).unwrap();
    let probe = ffprobe(&path);
    assert_eq!(codecs(&probe), ["h264", "aac"]);
    let mp4_secs = duration(&probe);
    assert!(
        (mp4_secs - recorded_secs).abs() <= 0.5,
        "MP4 lasts {mp4_secs} s, the recording {recorded_secs} s"
    );
    let boxes = top_level_boxes(&mp4);
    let at = |b: &str| {
        boxes
            .iter()
            .position(|x| x == b)
            .unwrap_or_else(|| panic!("no {b} box in {boxes:?}"))
    };
    assert!(at("moov") < at("mdat"), "moov after mdat: {boxes:?}");

    let (status, content_type, jpeg) = download(data["snapshotUrl"].as_str().unwrap()).await;
    assert_eq!(
        (status.as_u16(), content_type.as_str()),
        (200, "image/jpeg")
    );
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "not a JPEG");

    let (status, _, original) = download(data["rawRecordingUrl"].as_str().unwrap()).await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(
        sha256_hex(&original),
        done["sha256"],
        "the stored original is not what MediaRecorder made"
    );

    // A browser seeking: a range request gets exactly those bytes.
    let ranged = reqwest::Client::new()
        .get(data["url"].as_str().unwrap())
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status().as_u16(), 206);
    assert_eq!(
        ranged.headers()["content-range"].to_str().unwrap(),
        format!("bytes 100-199/{}", mp4.len())
    );
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &mp4[100..200]);

    // Links expire when the operator said.
    let expires: i64 = data["url"]
        .as_str()
        .unwrap()
        .split("expires=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (expires - now - 3600).abs() < 120,
        "the link expires {} s from now, not in an hour",
        expires - now
    );

    // Links are signed: a changed key or signature is refused.
    let tampered = data["url"].as_str().unwrap().replace(".mp4?", ".jpg?");
    assert_eq!(download(&tampered).await.0.as_u16(), 403);

    // Encryption at rest, on by default: nothing under the data dir is recognisable media,
    // while the links above served the plaintext.
    let leaks = recognisable_media(&server.data_dir, &[&mp4, &jpeg, &original]);
    assert!(
        leaks.is_empty(),
        "plaintext media at rest:\n{}",
        leaks.join("\n")
    );

    let played = Driver::play(
        &format!("{}/healthz", server.url()),
        data["url"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        played["event"], "canplay",
        "Chromium cannot play the MP4: {played}"
    );
    assert!((played["duration"].as_f64().unwrap() - mp4_secs).abs() < 0.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_and_the_original_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (server, hooks) = server_with_hooks(dir.path()).await;
    let proxy = Proxy::start(server.addr()).await;

    let mut recording = Driver::record(&format!("{}/", proxy.url()), 6);
    let acked =
        |e: &serde_json::Value| e["event"] == "uploadprogress" && e["acked"].as_u64() > Some(0);
    recording.until(acked).await;
    recording.until(acked).await;
    proxy.cut();
    recording
        .until(|e| e["event"] == "connection" && e["state"] == "reconnecting")
        .await;
    let done = recording.done().await;
    assert!(
        done["reconnects"].as_u64().unwrap() >= 1,
        "the recorder never lost its connection"
    );

    let id = done["recordingId"].as_str().unwrap();
    let copied = hooks.wait_for(id, COPIED, Duration::from_secs(60)).await;
    let (_, _, original) = download(copied.json["data"]["rawRecordingUrl"].as_str().unwrap()).await;
    assert_eq!(original.len() as u64, done["length"].as_u64().unwrap());
    assert_eq!(
        sha256_hex(&original),
        done["sha256"],
        "the stored original differs from what MediaRecorder made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_streaming_loses_no_acknowledged_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, hooks) = server_with_hooks(dir.path()).await;

    // Killed while the browser is streaming: the recorder resumes against the restarted
    // server, and since it forgets every acknowledged byte, a byte-identical original
    // proves none of them was lost.
    let mut recording = Driver::record(&format!("{}/", server.url()), 8);
    let acked =
        |e: &serde_json::Value| e["event"] == "uploadprogress" && e["acked"].as_u64() > Some(0);
    recording.until(acked).await;
    recording.until(acked).await;
    server.kill().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart().await;
    let done = recording.done().await;
    assert!(
        done["reconnects"].as_u64().unwrap() >= 1,
        "the recorder never noticed the kill"
    );
    let id = done["recordingId"].as_str().unwrap();
    let copied = hooks.wait_for(id, COPIED, Duration::from_secs(60)).await;
    let (_, _, original) = download(copied.json["data"]["rawRecordingUrl"].as_str().unwrap()).await;
    assert_eq!(
        sha256_hex(&original),
        done["sha256"],
        "acknowledged bytes were lost in the kill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_plays_the_recording_back_after_stop() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[]).await;
    let mut recording = Driver::record_and_watch(&format!("{}/", server.url()), 3);
    let done = recording.until(|e| e["event"] == "done").await;
    let played = recording.until(|e| e["event"] == "played").await;
    let playable = recording
        .seen
        .iter()
        .find(|e| e["event"] == "playable")
        .expect("the recorder fired playable")
        .clone();
    assert_eq!(playable["recordingId"], done["recordingId"]);
    assert_eq!(played["hidden"], false);
    assert_eq!(played["src"], playable["url"]);
    let src = played["src"].as_str().unwrap();
    assert!(
        src.contains("/v1/files/")
            && src.ends_with(&format!(
                "signature={}",
                src.rsplit("signature=").next().unwrap()
            ))
    );
    let recorded_secs = done["durationMs"].as_f64().unwrap() / 1000.0;
    let played_secs = played["duration"].as_f64().unwrap();
    assert!(
        (played_secs - recorded_secs).abs() < 1.0,
        "played {played_secs} s of a {recorded_secs} s recording"
    );
    assert!(played["videoWidth"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorder_stops_at_the_environments_longest_recording() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[]).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["keys", "create", "--role", "admin"])
        .env("PIPE_DATA_DIR", &server.data_dir)
        .output()
        .await
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let limited = reqwest::Client::new()
        .patch(format!("{}/v1/environments/production", server.url()))
        .bearer_auth(&key)
        .json(&serde_json::json!({"settings": {"max_recording_secs": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 200);

    let mut recording = Driver::record(&format!("{}/", server.url()), 6);
    let stopped = recording.until(|e| e["event"] == "maxduration").await;
    assert_eq!(stopped["maxDurationMs"], 2000);
    let done = recording.done().await;
    let recorded_ms = done["durationMs"].as_f64().unwrap();
    assert!(
        (1900.0..3500.0).contains(&recorded_ms),
        "recorded {recorded_ms} ms under a 2 s limit"
    );
}

/// An operator moving from the hosted Pipe changes only environment variables, and a
/// receiver written for Pipe (form-encoded, `X-Pipe-Signature`, strict field types) accepts
/// every event of a real browser recording, and downloads the MP4 with the link it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_written_for_pipe_accepts_every_event_of_a_browser_recording() {
    let dir = tempfile::tempdir().unwrap();
    let key = "pipe-webhook-key-0f9e8d";
    let hooks = PipeReceiver::start(key).await;
    let env = [
        ("PIPE_WEBHOOK_URL", hooks.url.as_str()),
        ("PIPE_WEBHOOK_FORMAT", "pipe"),
        ("PIPE_WEBHOOK_KEY", key),
        ("PIPE_WEBHOOK_CONTENT_TYPE", "form"),
    ];
    let server = PipeServer::start(dir.path(), &env).await;

    let mut numbers = Vec::new();
    for _ in 0..2 {
        let done = Driver::record(&format!("{}/", server.url()), 3)
            .done()
            .await;
        let name = done["recordingId"].as_str().unwrap().to_owned();
        let events = crate::util::eventually(
            Duration::from_secs(60),
            "video_copied_pipe_s3",
            async || {
                let events = hooks.accepted(&name);
                events
                    .iter()
                    .any(|a| a.event == "video_copied_pipe_s3")
                    .then_some(events)
            },
        )
        .await;
        let names: Vec<&str> = events.iter().map(|a| a.event.as_str()).collect();
        assert_eq!(
            names,
            ["video_recorded", "video_converted", "video_copied_pipe_s3"],
            "for {name}"
        );
        let ids: Vec<u64> = events
            .iter()
            .map(|a| a.data["id"].as_u64().unwrap())
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "ids differ: {ids:?}");
        numbers.push(ids[0]);
        assert_eq!(events[0].data["type"], "webm");
        assert_eq!(events[1].data["type"], "mp4");
        let duration = events[1].data["duration"].as_f64().unwrap();
        let recorded = done["durationMs"].as_f64().unwrap() / 1000.0;
        assert!(
            (duration - recorded).abs() <= 0.5,
            "{duration} s vs {recorded} s"
        );

        let copied = &events[2].data;
        let (status, content_type, mp4) = download(copied["url"].as_str().unwrap()).await;
        assert_eq!((status.as_u16(), content_type.as_str()), (200, "video/mp4"));
        assert_eq!(mp4.len() as u64, copied["size"].as_u64().unwrap());
    }
    assert!(numbers[1] > numbers[0], "numbers {numbers:?}");
    assert!(hooks.refused().is_empty(), "refused: {:?}", hooks.refused());

    // A Pipe client fetches the video the webhook named, by that number.
    let api_key = crate::api::create_key(&server, &["--role", "viewer"]).await;
    let video: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/video/{}", server.url(), numbers[0]))
        .header("X-PIPE-AUTH", &api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(video["status"], "OK", "{video}");
    assert_eq!(video["videos"][0]["id"], numbers[0].to_string());
}

/// `PIPE_SINKS` with an S3 bucket, an SFTP folder, an FTPS folder, an Azure container
/// and a Dropbox folder (on the stand-in): a browser recording lands in all five under
/// Pipe's file names, byte for byte what our own storage holds, and a receiver written
/// for Pipe gets `video_copied_s3` (with the bucket and region), `video_copied_ftp` twice
/// (SFTP and FTPS, as Pipe names both) and `video_copied_dbox`, besides the copy to our
/// own storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_recording_lands_in_the_customers_s3_sftp_ftps_azure_and_dropbox() {
    use pipe_core::{GetOptions, ObjectKey, SinkKind, StorageSink};
    use pipe_storage::testing::{
        AzureTestServer, DropboxStandIn, FtpsTestServer, S3TestServer, SftpTestServer,
    };

    let dir = tempfile::tempdir().unwrap();
    let s3 = S3TestServer::start();
    let sftp = SftpTestServer::start();
    let ftps = FtpsTestServer::start();
    let ftps_ca = dir.path().join("ftps-ca.pem");
    std::fs::write(&ftps_ca, ftps.ca_pem()).unwrap();
    let azure = AzureTestServer::start();
    let dropbox = DropboxStandIn::start();
    let key = "pipe-webhook-key-s3-sink";
    let hooks = PipeReceiver::start(key).await;
    let sinks = format!(
        "s3://{}/pipe/production?endpoint={}&access_key_id={}&secret_key_from=PIPE_TEST_S3_SECRET,\
         sftp://{}@127.0.0.1:{}{}/incoming?host_key={}&key_from=PIPE_TEST_SFTP_KEY,\
         azure://{}/{}/pipe?access_key_from=PIPE_TEST_AZURE_KEY&endpoint={},\
         ftps://{}@127.0.0.1:{}/~/incoming?password_from=PIPE_TEST_FTPS_PASSWORD&ca_file={},\
         dropbox://{}?app_key={}&app_secret_from=PIPE_TEST_DBX_SECRET\
         &refresh_token_from=PIPE_TEST_DBX_TOKEN&api_endpoint={}&content_endpoint={}",
        S3TestServer::BUCKET,
        s3.endpoint(),
        S3TestServer::ACCESS_KEY,
        sftp.user(),
        sftp.port(),
        sftp.files_dir().display(),
        sftp.host_key(),
        AzureTestServer::ACCOUNT,
        AzureTestServer::CONTAINER,
        azure.endpoint(),
        FtpsTestServer::USER,
        ftps.port(),
        ftps_ca.display(),
        DropboxStandIn::FOLDER,
        DropboxStandIn::APP_KEY,
        dropbox.api_url(),
        dropbox.content_url(),
    );
    let env = [
        ("PIPE_WEBHOOK_URL", hooks.url.as_str()),
        ("PIPE_WEBHOOK_FORMAT", "pipe"),
        ("PIPE_WEBHOOK_KEY", key),
        ("PIPE_WEBHOOK_CONTENT_TYPE", "form"),
        ("PIPE_SINKS", sinks.as_str()),
        ("PIPE_TEST_S3_SECRET", S3TestServer::SECRET_KEY),
        ("PIPE_TEST_SFTP_KEY", sftp.private_key()),
        ("PIPE_TEST_AZURE_KEY", AzureTestServer::KEY),
        ("PIPE_TEST_FTPS_PASSWORD", FtpsTestServer::PASSWORD),
        ("PIPE_TEST_DBX_SECRET", DropboxStandIn::APP_SECRET),
        ("PIPE_TEST_DBX_TOKEN", DropboxStandIn::REFRESH_TOKEN),
    ];
    let server = PipeServer::start(dir.path(), &env).await;

    let done = Driver::record(&format!("{}/", server.url()), 3)
        .done()
        .await;
    let name = done["recordingId"].as_str().unwrap().to_owned();
    let events = crate::util::eventually(
        Duration::from_secs(60),
        "video_copied_s3, video_copied_ftp twice, video_copied_dbox and video_copied_pipe_s3",
        async || {
            let events = hooks.accepted(&name);
            let count = |event: &str| events.iter().filter(|a| a.event == event).count();
            (count("video_copied_s3") == 1
                && count("video_copied_ftp") == 2
                && count("video_copied_dbox") == 1
                && count("video_copied_pipe_s3") == 1)
                .then_some(events)
        },
    )
    .await;
    assert!(hooks.refused().is_empty(), "refused: {:?}", hooks.refused());
    let copied = events
        .iter()
        .find(|a| a.event == "video_copied_s3")
        .unwrap();
    assert_eq!(copied.data["bucket"], S3TestServer::BUCKET);
    assert_eq!(copied.data["region"], "us-east-1");
    assert_eq!(copied.data["s3UploadStatus"], "upload success");
    // The link in the event is presigned: it fetches the MP4 from the private bucket.
    let (status, _, linked) = download(copied.data["url"].as_str().unwrap()).await;
    assert_eq!(status.as_u16(), 200, "{}", copied.data["url"]);
    assert_eq!(linked.len() as u64, copied.data["size"].as_u64().unwrap());

    // Pipe's names, side by side in the folder; the same bytes as our own copy.
    let own = &events
        .iter()
        .find(|a| a.event == "video_copied_pipe_s3")
        .unwrap()
        .data;
    let folder = s3.bucket_dir().join("pipe/production");
    let sftp_folder = sftp.files_dir().join("incoming");
    let ftps_folder = ftps.files_dir().join("incoming");
    for (file, url) in [
        (format!("{name}.mp4"), "url"),
        (format!("{name}.jpg"), "snapshotUrl"),
        (format!("{name}_raw.webm"), "rawRecordingUrl"),
    ] {
        let stored = std::fs::read(folder.join(&file))
            .unwrap_or_else(|e| panic!("{file} is not in the bucket: {e}"));
        let (status, _, ours) = download(own[url].as_str().unwrap()).await;
        assert_eq!(status.as_u16(), 200);
        assert_eq!(
            sha256_hex(&stored),
            sha256_hex(&ours),
            "{file} differs from our own copy"
        );
        let on_sftp = std::fs::read(sftp_folder.join(&file))
            .unwrap_or_else(|e| panic!("{file} is not in the SFTP folder: {e}"));
        assert_eq!(sha256_hex(&on_sftp), sha256_hex(&ours), "{file} on SFTP");
        let on_ftps = std::fs::read(ftps_folder.join(&file))
            .unwrap_or_else(|e| panic!("{file} is not in the FTPS folder: {e}"));
        assert_eq!(sha256_hex(&on_ftps), sha256_hex(&ours), "{file} on FTPS");
        let in_dropbox = dropbox
            .file(&format!("{}/{file}", DropboxStandIn::FOLDER))
            .unwrap_or_else(|| panic!("{file} is not in the Dropbox folder"));
        assert_eq!(
            sha256_hex(&in_dropbox),
            sha256_hex(&ours),
            "{file} in Dropbox"
        );
    }
    assert_eq!(
        std::fs::metadata(folder.join(format!("{name}.mp4")))
            .unwrap()
            .len(),
        copied.data["size"].as_u64().unwrap()
    );
    assert!(s3.uploads_in_progress().is_empty());

    // In the Azure container too (read back through the sink: Azurite keeps blobs in its
    // own database).
    let container =
        pipe_storage::ObjectStoreSink::azure(&azure.config().with_folder("pipe"), SinkKind::Azure)
            .unwrap();
    let mp4 = ObjectKey::new(format!("{name}.mp4")).unwrap();
    crate::util::eventually(Duration::from_secs(30), "the MP4 in Azure", async || {
        container.head(&mp4).await.ok()
    })
    .await;
    let mut stream = container
        .get(&mp4, GetOptions::default())
        .await
        .unwrap()
        .stream;
    let mut in_azure = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        in_azure.extend_from_slice(&chunk.unwrap());
    }
    let (_, _, ours) = download(own["url"].as_str().unwrap()).await;
    assert_eq!(sha256_hex(&in_azure), sha256_hex(&ours), "the MP4 in Azure");

    // The events carried working links, but no working link rests in the server's files
    // (the catalog and its WAL, where the events wait in their jobs): links are signed
    // as an event goes out.
    for file in walk(&server.data_dir) {
        let bytes = std::fs::read(&file).unwrap();
        for signed in [&b"signature="[..], &b"X-Amz-Signature"[..]] {
            assert!(
                !bytes.windows(signed.len()).any(|w| w == signed),
                "{} holds a signed link",
                file.display()
            );
        }
    }
}

/// "Do not store", set through the API on the first environment with two sinks of the
/// operator's (an S3 bucket and an FTPS folder, their credentials given as secrets): a
/// browser recording lands in both, verified and identical, our own storage is never
/// written, and once both hold it no file of it is left anywhere under the server's data
/// directory (scanned whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_store_leaves_no_file_of_a_recording_on_the_server() {
    use pipe_storage::testing::{FtpsTestServer, S3TestServer};

    let dir = tempfile::tempdir().unwrap();
    let s3 = S3TestServer::start();
    let ftps = FtpsTestServer::start();
    let key = "pipe-webhook-key-do-not-store";
    let hooks = PipeReceiver::start(key).await;
    let env = [
        ("PIPE_WEBHOOK_URL", hooks.url.as_str()),
        ("PIPE_WEBHOOK_FORMAT", "pipe"),
        ("PIPE_WEBHOOK_KEY", key),
        ("PIPE_WEBHOOK_CONTENT_TYPE", "form"),
    ];
    let server = PipeServer::start(dir.path(), &env).await;
    let admin = crate::api::create_key(&server, &["--role", "admin"]).await;
    let settings = serde_json::json!({
        "do_not_store": true,
        "sinks": [
            {
                "id": "bucket",
                "url": format!(
                    "s3://{}/dns?endpoint={}&access_key_id={}&secret_key_from=s3",
                    S3TestServer::BUCKET, s3.endpoint(), S3TestServer::ACCESS_KEY
                ),
                "secrets": {"s3": S3TestServer::SECRET_KEY}
            },
            {
                "id": "drop",
                "url": format!(
                    "ftps://{}@127.0.0.1:{}/~/dns?password_from=password&ca_from=ca",
                    FtpsTestServer::USER, ftps.port()
                ),
                "secrets": {"password": FtpsTestServer::PASSWORD, "ca": ftps.ca_pem()}
            }
        ]
    });
    let changed = reqwest::Client::new()
        .patch(format!("{}/v1/environments/production", server.url()))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "settings": settings }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "{}", changed.text().await.unwrap());

    let done = Driver::record(&format!("{}/", server.url()), 3)
        .done()
        .await;
    let name = done["recordingId"].as_str().unwrap().to_owned();
    let events = crate::util::eventually(
        Duration::from_secs(60),
        "video_copied_s3 and video_copied_ftp",
        async || {
            let events = hooks.accepted(&name);
            let has = |event: &str| events.iter().any(|a| a.event == event);
            (has("video_copied_s3") && has("video_copied_ftp")).then_some(events)
        },
    )
    .await;
    assert!(hooks.refused().is_empty(), "refused: {:?}", hooks.refused());

    // Both sinks hold the same verified files, under Pipe's names.
    let copied = &events
        .iter()
        .find(|a| a.event == "video_copied_s3")
        .unwrap()
        .data;
    for file in [
        format!("{name}.mp4"),
        format!("{name}.jpg"),
        format!("{name}_raw.webm"),
    ] {
        let in_bucket = std::fs::read(s3.bucket_dir().join("dns").join(&file))
            .unwrap_or_else(|e| panic!("{file} is not in the bucket: {e}"));
        let on_ftps = std::fs::read(ftps.files_dir().join("dns").join(&file))
            .unwrap_or_else(|e| panic!("{file} is not in the FTPS folder: {e}"));
        assert!(!in_bucket.is_empty(), "{file} is empty");
        assert_eq!(sha256_hex(&in_bucket), sha256_hex(&on_ftps), "{file}");
        if file.ends_with(".mp4") {
            assert_eq!(in_bucket.len() as u64, copied["size"].as_u64().unwrap());
        }
    }

    // Nothing of it stays with us: no file names it, and the places recordings rest in
    // (spool, staging, work, our storage) hold no file at all.
    let data = server.data_dir.clone();
    let left = crate::util::eventually(
        Duration::from_secs(30),
        "the recording's local files to go",
        async || {
            let resting: Vec<_> = walk(&data)
                .into_iter()
                .filter(|path| {
                    path.to_string_lossy().contains(&name)
                        || ["spool", "staging", "work", "storage"].iter().any(|place| {
                            path.strip_prefix(&data)
                                .is_ok_and(|rel| rel.starts_with(place))
                        })
                })
                .collect();
            resting.is_empty().then_some(resting)
        },
    )
    .await;
    assert!(left.is_empty());
    assert!(
        !hooks
            .accepted(&name)
            .iter()
            .any(|a| a.event.starts_with("video_copied_pipe")),
        "our own storage was written to"
    );
}

/// Every file under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}
