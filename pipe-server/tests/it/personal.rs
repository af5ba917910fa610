//! Personal data, end to end in Chromium: with every switch of the environment on, the
//! camera's and microphone's names, the page, the user agent and the IP address reach the
//! API and the webhooks; with every switch off (the default) none of them reaches the
//! SQLite file (or its WAL), any file under the data directory, a webhook or the server's
//! log at debug level.
//!
//! The server listens on 127.0.0.2 and the webhook receiver on 127.0.0.3, so that the
//! only way `127.0.0.1` (where Chromium connects from) can reach anything is as the
//! recorder's IP address.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{create_key, until_copied};
use crate::util::{Driver, PipeServer, WEBHOOK_SECRET, WebhookReceiver, eventually};

/// In the page's URL, to find it by.
const PAGE_MARK: &str = "personal-data-test-page";

/// A server on 127.0.0.2 whose webhooks go to `hooks` (on 127.0.0.3), logging at debug.
async fn server(dir: &Path, hooks: &WebhookReceiver) -> PipeServer {
    let env = [
        ("PIPE_WEBHOOK_URL", hooks.url.as_str()),
        ("PIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("PIPE_WEBHOOK_ALLOW_ADDRESSES", "127.0.0.3"),
        ("RUST_LOG", "debug"),
    ];
    PipeServer::start_on(dir, Ipv4Addr::new(127, 0, 0, 2), &env).await
}

/// Records 2 s in Chromium on the server's demo page; the recording's id.
async fn record(server: &PipeServer) -> String {
    let page = format!("{}/?from={PAGE_MARK}", server.url());
    let done = Driver::record(&page, 2).done().await;
    done["recordingId"].as_str().unwrap().to_owned()
}

/// `video_recorded` of `id`, once delivered.
async fn recorded_event(hooks: &WebhookReceiver, id: &str) -> Value {
    eventually(Duration::from_secs(60), "video_recorded", async || {
        hooks
            .for_recording(id)
            .into_iter()
            .find(|d| d.event() == "video_recorded")
            .map(|d| d.json)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_collected_only_where_switched_on() {
    // Every switch on: each field is collected, and told.
    let on = tempfile::tempdir().unwrap();
    let hooks = WebhookReceiver::start_on("127.0.0.3").await;
    let server_on = server(on.path(), &hooks).await;
    let admin = create_key(&server_on, &["--role", "admin"]).await;
    let changed = reqwest::Client::new()
        .patch(format!("{}/v1/environments/production", server_on.url()))
        .bearer_auth(&admin)
        .json(&json!({"settings": {"personal_data": {
            "ip": true, "user_agent": true, "referer": true,
            "camera_name": true, "microphone_name": true
        }}}))
        .send()
        .await
        .unwrap();
    assert!(
        changed.status().is_success(),
        "{}",
        changed.text().await.unwrap()
    );
    let id = record(&server_on).await;
    let recording = until_copied(&server_on, &admin, &id).await;
    assert_eq!(recording["ip"], "127.0.0.1", "{recording}");
    let ua = recording["ua"].as_str().expect("the user agent").to_owned();
    assert!(ua.contains("Chrome"), "{ua}");
    let page = recording["httpReferer"]
        .as_str()
        .expect("the page")
        .to_owned();
    assert!(page.contains(PAGE_MARK), "{page}");
    let camera = recording["cam_name"]
        .as_str()
        .expect("the camera")
        .to_owned();
    let microphone = recording["mic_name"].as_str().expect("the mic").to_owned();
    assert!(!camera.is_empty() && !microphone.is_empty(), "{recording}");
    let told = recorded_event(&hooks, &id).await;
    for (field, value) in [
        ("ip", "127.0.0.1"),
        ("ua", ua.as_str()),
        ("httpReferer", page.as_str()),
        ("cam_name", camera.as_str()),
        ("mic_name", microphone.as_str()),
    ] {
        assert_eq!(told["data"][field], value, "{field} in {told}");
    }
    // And in Pipe's REST API, under its names.
    let video: Value = reqwest::Client::new()
        .get(format!("{}/video/{id}", server_on.url()))
        .header("X-PIPE-AUTH", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (field, value) in [
        ("ipv4", "127.0.0.1"),
        ("ua", ua.as_str()),
        ("http_referer", page.as_str()),
        ("camera_name", camera.as_str()),
        ("microphone_name", microphone.as_str()),
    ] {
        assert_eq!(video["videos"][0][field], value, "{field} in {video}");
    }
    drop(server_on);

    // Every switch off (the default): none of them anywhere.
    let off = tempfile::tempdir().unwrap();
    let hooks = WebhookReceiver::start_on("127.0.0.3").await;
    let mut server_off = server(off.path(), &hooks).await;
    let admin = create_key(&server_off, &["--role", "admin"]).await;
    let id = record(&server_off).await;
    let recording = until_copied(&server_off, &admin, &id).await;
    for field in ["ip", "ua", "httpReferer", "cam_name", "mic_name"] {
        assert!(recording.get(field).is_none(), "{field} in {recording}");
    }
    recorded_event(&hooks, &id).await;
    server_off.terminate().await;
    let secrets = [
        ("the camera's name", camera.as_str()),
        ("the microphone's name", microphone.as_str()),
        ("the user agent", ua.as_str()),
        ("the page", PAGE_MARK),
        ("the IP address", "127.0.0.1"),
    ];
    let mut places: Vec<(String, Vec<u8>)> = crate::util::files_under(&server_off.data_dir)
        .into_iter()
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect();
    assert!(
        places.iter().any(|(p, _)| p.ends_with("catalog.sqlite")),
        "no catalog among {:?}",
        places.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    places.push((
        "the server's log".into(),
        std::fs::read(off.path().join("pipe.log")).unwrap(),
    ));
    for (n, delivery) in hooks.all().iter().enumerate() {
        places.push((
            format!("webhook {n} ({})", delivery.event()),
            delivery.body.clone(),
        ));
    }
    for (what, secret) in secrets {
        for (place, bytes) in &places {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{what} ({secret:?}) is in {place}, with every switch off"
            );
        }
    }
}
