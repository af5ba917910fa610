//! The operator's API on the real server: the first key from the command line, the
//! recording just made read back and downloaded, environments changed while it runs.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

use crate::stream::{connect_to, receive, send_json, stream_recording, webm};
use crate::util::{PipeServer, eventually};

/// `pipe keys create …` against the server's data dir; returns the key it prints.
pub(crate) async fn create_key(server: &PipeServer, args: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["keys", "create"])
        .args(args)
        .env("PIPE_DATA_DIR", &server.data_dir)
        .envs(server.env())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "pipe keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("pk_"), "{key}");
    key
}

pub(crate) async fn get(url: &str, key: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until the recording `id` is copied; its API answer then.
pub(crate) async fn until_copied(server: &PipeServer, key: &str, id: &str) -> Value {
    let url = format!("{}/v1/recordings/{id}", server.url());
    eventually(
        Duration::from_secs(60),
        "the recording to be copied",
        async || {
            let (status, body) = get(&url, key).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            (body["state"] == "copied").then_some(body)
        },
    )
    .await
}

/// The download link of the recording's MP4 in an API answer.
pub(crate) fn mp4_url(recording: &Value) -> String {
    recording["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .find(|a| a["kind"] == "mp4")
        .expect("an mp4 artifact")["url"]
        .as_str()
        .expect("a download link")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_on_the_command_line_reads_and_downloads_the_recording_just_made() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[("PIPE_ALLOWED_HOSTS", "")]).await;
    assert!(
        server.log_tail().contains("pipe keys create --role admin"),
        "the log says how to make the first key:\n{}",
        server.log_tail()
    );
    let key = create_key(&server, &["--role", "admin", "--label", "test"]).await;
    let base = server.url();

    let anonymous = reqwest::get(format!("{base}/v1/recordings")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()["content-type"],
        "application/problem+json"
    );

    let id = stream_recording(&server, &webm(dir.path())).await;
    let recording = until_copied(&server, &key, &id).await;
    assert_eq!(recording["environment"], "production");
    assert!(
        recording["media"]["duration"].as_f64().unwrap() > 0.5,
        "{recording}"
    );
    let steps: Vec<&str> = recording["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(
        steps.contains(&"convert") && steps.contains(&"copy"),
        "{steps:?}"
    );
    let mp4 = recording["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "mp4")
        .expect("an mp4 artifact");
    let url = mp4["url"].as_str().expect("a download link");
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, mp4["size"].as_u64().unwrap());
    assert_eq!(&bytes[4..8], b"ftyp");
    // The download is in the audit log: which file, by a link, never the link itself.
    let (_, audit) = get(
        &format!("{base}/v1/audit?action=files.download&target=recording:{id}"),
        &key,
    )
    .await;
    let downloads = audit["entries"].as_array().expect("audit entries");
    assert!(
        downloads.iter().any(|e| e["actor"] == "link"
            && e["outcome"] == "200"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with(&format!("{id}.mp4")))),
        "{audit}"
    );
    assert!(!audit.to_string().contains("signature="), "{audit}");
    // A link whose expiry is not a number is refused as any bad link is, as a problem.
    let (path, _) = url.split_once('?').unwrap();
    let broken = reqwest::get(format!("{path}?expires=soon&signature=x"))
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::FORBIDDEN);
    assert_eq!(broken.headers()["content-type"], "application/problem+json");

    let (status, page) = get(
        &format!("{base}/v1/recordings?environment=production"),
        &key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["recordings"][0]["id"], id.as_str());

    let doc: Value = reqwest::get(format!("{base}/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    let nowhere = reqwest::get(format!("{base}/no/such/route")).await.unwrap();
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        nowhere.headers()["content-type"],
        "application/problem+json"
    );

    // The key never reaches the log. (Its secret is URL-safe base64, which may hold `_`:
    // the parser, not a split on the last `_`, says which part it is.)
    let secret = pipe_api::auth::parse_key(&key).unwrap().secret;
    let log = std::fs::read_to_string(dir.path().join("pipe.log")).unwrap();
    assert!(!log.contains(secret), "the key's secret is in the log");
    assert!(log.contains("pipe_api::access"), "requests are logged");
}

async fn refused_status(server: &PipeServer, path: &str, origin: &str) -> Option<u16> {
    match connect_to(server, path, Some(origin)).await {
        Ok(mut socket) => {
            send_json(&mut socket, json!({"type": "start"})).await;
            assert_eq!(receive(&mut socket).await["type"], "started");
            None
        }
        Err(tungstenite::Error::Http(response)) => Some(response.status().as_u16()),
        Err(e) => panic!("{path} from {origin}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_environment_allows_its_own_hosts_and_a_change_applies_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[("PIPE_ALLOWED_HOSTS", "a.example")]).await;
    let key = create_key(&server, &["--role", "admin"]).await;
    let client = reqwest::Client::new();
    let base = server.url();

    // The first start made `production` from PIPE_ALLOWED_HOSTS.
    let (_, production) = get(&format!("{base}/v1/environments/production"), &key).await;
    assert_eq!(
        production["settings"]["allowed_hosts"],
        json!(["a.example"])
    );

    let created = client
        .post(format!("{base}/v1/environments"))
        .bearer_auth(&key)
        .json(&json!({"id": "b", "settings": {"allowed_hosts": ["b.example"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    let b = "/v1/stream?environment=b";
    assert_eq!(
        refused_status(&server, b, "https://a.example").await,
        Some(403)
    );
    assert_eq!(refused_status(&server, b, "https://b.example").await, None);
    assert_eq!(
        refused_status(&server, "/v1/stream", "https://b.example").await,
        Some(403)
    );
    assert_eq!(
        refused_status(&server, "/v1/stream", "https://a.example").await,
        None
    );
    assert_eq!(
        refused_status(
            &server,
            "/v1/stream?environment=nowhere",
            "https://a.example"
        )
        .await,
        Some(404)
    );

    let changed = client
        .patch(format!("{base}/v1/environments/b"))
        .bearer_auth(&key)
        .json(&json!({"settings": {"allowed_hosts": ["c.example"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        refused_status(&server, b, "https://b.example").await,
        Some(403)
    );
    assert_eq!(refused_status(&server, b, "https://c.example").await, None);

    // A recording made through b belongs to b.
    let (_, page) = get(&format!("{base}/v1/recordings?environment=b"), &key).await;
    assert_eq!(page["recordings"].as_array().unwrap().len(), 2, "{page}");
}

async fn ask_playback(
    server: &PipeServer,
    origin: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/stream/playback", server.url()))
        .json(body);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    if let Some(origin) = origin {
        assert_eq!(response.headers()["access-control-allow-origin"], origin);
    }
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_recorder_that_made_a_recording_gets_its_playback_link() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[("PIPE_ALLOWED_HOSTS", "site.example")]).await;
    let key = create_key(&server, &["--role", "admin"]).await;
    let origin = Some("https://site.example");

    let media = webm(dir.path());
    let mut socket = connect_to(&server, "/v1/stream", origin).await.unwrap();
    send_json(
        &mut socket,
        json!({"type": "start", "mimeType": "video/webm"}),
    )
    .await;
    let started = receive(&mut socket).await;
    let (id, token) = (
        started["recording"].as_str().unwrap().to_owned(),
        started["resumeToken"].as_str().unwrap().to_owned(),
    );
    let mut frame = 0u64.to_be_bytes().to_vec();
    frame.extend_from_slice(&media);
    futures::SinkExt::send(&mut socket, tungstenite::Message::binary(frame))
        .await
        .unwrap();
    assert_eq!(receive(&mut socket).await["type"], "ack");
    send_json(
        &mut socket,
        json!({"type": "finish", "length": media.len()}),
    )
    .await;
    assert_eq!(receive(&mut socket).await["type"], "finished");

    let ask = json!({"recording": id, "resumeToken": token});
    let answer = eventually(Duration::from_secs(60), "a playback link", async || {
        let (status, body) = ask_playback(&server, origin, &ask).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["mp4Url"].as_str().map(str::to_owned)
    })
    .await;
    let mp4 = reqwest::get(&answer).await.unwrap();
    assert_eq!(mp4.status(), StatusCode::OK);
    assert_eq!(mp4.headers()["content-type"], "video/mp4");

    // Another token, or another recording's: as unknown as a recording that does not exist.
    let forged = json!({"recording": id, "resumeToken": "AAAA"});
    assert_eq!(
        ask_playback(&server, origin, &forged).await.0,
        StatusCode::NOT_FOUND
    );
    let other = json!({"recording": "nosuchrecording", "resumeToken": token});
    assert_eq!(
        ask_playback(&server, origin, &other).await.0,
        StatusCode::NOT_FOUND
    );
    // A page the environment does not allow.
    let (status, body) = ask_playback(&server, Some("https://evil.example"), &ask).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["type"], "urn:pipe:problem:origin-not-allowed");
    // Malformed.
    let (status, body) = ask_playback(&server, origin, &json!({"recording": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The environment turns client playback off: refused from the next request on.
    let off = reqwest::Client::new()
        .patch(format!("{}/v1/environments/production", server.url()))
        .bearer_auth(&key)
        .json(&json!({"settings": {"allowed_hosts": ["site.example"], "client_playback": false}}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::OK);
    let (status, body) = ask_playback(&server, origin, &ask).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("playback"),
        "{body}"
    );
}

/// The samples of a Prometheus text body, as a parser other tools use reads them.
fn scrape(body: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("not Prometheus text ({e}):\n{body}"))
}

/// The value of `name` whose labels include `labels` (summed over the rest).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    use prometheus_parse::Value;
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_when_a_recording_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = crate::util::free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let server = PipeServer::start(dir.path(), &[("PIPE_METRICS_LISTEN", &metrics_addr)]).await;
    let key = create_key(&server, &["--role", "viewer"]).await;
    let base = server.url();

    let anonymous = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let read = async || {
        let response = reqwest::Client::new()
            .get(format!("{base}/metrics"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        scrape(&response.text().await.unwrap())
    };
    let before = read().await;
    assert_eq!(sample(&before, "pipe_ingest_bytes_total", &[]), 0.0);

    let media = webm(dir.path());
    let id = stream_recording(&server, &media).await;
    until_copied(&server, &key, &id).await;
    let after = eventually(Duration::from_secs(30), "the copy's metrics", async || {
        let after = read().await;
        (sample(&after, "pipe_sink_copies_total", &[("outcome", "copied")]) >= 1.0).then_some(after)
    })
    .await;
    assert_eq!(
        sample(&after, "pipe_ingest_bytes_total", &[]),
        media.len() as f64
    );
    assert!(sample(&after, "pipe_ingest_ack_seconds_count", &[]) >= 1.0);
    assert_eq!(sample(&after, "pipe_ingest_active_streams", &[]), 0.0);
    assert!(
        sample(
            &after,
            "pipe_job_duration_seconds_count",
            &[("kind", "convert"), ("outcome", "done")]
        ) >= 1.0
    );
    assert_eq!(
        sample(
            &after,
            "pipe_jobs",
            &[("kind", "convert"), ("status", "done")]
        ),
        1.0
    );
    assert!(
        sample(
            &after,
            "pipe_sink_copies_total",
            &[("sink", "pipe"), ("outcome", "copied")]
        ) >= 1.0
    );

    // The monitoring listener needs no key.
    let open = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let open = scrape(&open.text().await.unwrap());
    assert_eq!(
        sample(&open, "pipe_ingest_bytes_total", &[]),
        media.len() as f64
    );
}

/// Every file under `dir` whose path names `id`.
fn files_of(dir: &std::path::Path, id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            if path.to_string_lossy().contains(id) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_recording_leaves_every_place_it_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[]).await;
    let editor = create_key(&server, &["--role", "editor"]).await;
    let viewer = create_key(&server, &["--role", "viewer"]).await;
    let base = server.url();
    let client = reqwest::Client::new();

    let media = webm(dir.path());
    let id = stream_recording(&server, &media).await;
    until_copied(&server, &editor, &id).await;
    assert!(
        !files_of(&server.data_dir, &id).is_empty(),
        "nothing stored to delete"
    );

    let refused = client
        .delete(format!("{base}/v1/recordings/{id}"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let deleted = client
        .delete(format!("{base}/v1/recordings/{id}"))
        .bearer_auth(&editor)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    let body: Value = deleted.json().await.unwrap();
    assert!(body["deleting"].is_string(), "{body}");

    eventually(
        Duration::from_secs(30),
        "the recording to be gone",
        async || {
            let (status, _) = get(&format!("{base}/v1/recordings/{id}"), &editor).await;
            (status == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;
    assert_eq!(
        files_of(&server.data_dir, &id),
        Vec::<String>::new(),
        "files of the deleted recording are left"
    );
    // The 404 says when and why, from the tombstone, to a key that could see it.
    let (_, problem) = get(&format!("{base}/v1/recordings/{id}"), &editor).await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("erased at") && detail.contains("deletion reason: request"),
        "{problem}"
    );
    // Asking again is harmless.
    let again = client
        .delete(format!("{base}/v1/recordings/{id}"))
        .bearer_auth(&editor)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // Through Pipe's REST API too; a recording still arriving is not deleted under it.
    let second = stream_recording(&server, &media).await;
    let mut receiving = crate::stream::connect(&server, None).await.unwrap();
    send_json(&mut receiving, json!({"type": "start"})).await;
    let third = receive(&mut receiving).await["recording"]
        .as_str()
        .unwrap()
        .to_owned();
    let busy = client
        .delete(format!("{base}/v1/recordings/{third}"))
        .bearer_auth(&editor)
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), StatusCode::CONFLICT);
    let pipe: Value = client
        .delete(format!("{base}/video/{second}"))
        .header("X-PIPE-AUTH", &editor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pipe["status"], "OK", "{pipe}");
    eventually(
        Duration::from_secs(60),
        "the second recording to be gone",
        async || {
            let (status, _) = get(&format!("{base}/v1/recordings/{second}"), &editor).await;
            (status == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;
    assert_eq!(files_of(&server.data_dir, &second), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_shows_what_the_receiver_said_and_a_redelivery_is_signed_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = crate::util::WebhookReceiver::start().await;
    let server = PipeServer::start(
        dir.path(),
        &[
            ("PIPE_ALLOWED_HOSTS", ""),
            ("PIPE_WEBHOOK_URL", hooks.url.as_str()),
            ("PIPE_WEBHOOK_SECRET", crate::util::WEBHOOK_SECRET),
        ],
    )
    .await;
    let key = create_key(&server, &["--role", "editor"]).await;
    let id = stream_recording(&server, &webm(dir.path())).await;
    let first = hooks
        .wait_for(&id, "video_converted", Duration::from_secs(60))
        .await;

    // The log: each event accepted by the one endpoint, with the receiver's status.
    let url = format!("{}/v1/recordings/{id}/deliveries", server.url());
    let deliveries = eventually(
        Duration::from_secs(30),
        "every event to be logged",
        async || {
            let (status, body) = get(&url, &key).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let list = body["deliveries"].as_array()?.clone();
            (list.len() == 3).then_some(list)
        },
    )
    .await;
    for delivery in &deliveries {
        assert_eq!(delivery["endpoint"], "endpoint-1");
        assert_eq!(delivery["state"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"][0]["status"], 200, "{delivery}");
    }
    let converted = deliveries
        .iter()
        .find(|d| d["event_name"] == "video_converted")
        .expect("video_converted was logged");
    assert_eq!(converted["event"], first.webhook_id());

    // Sent again: the same body under the same webhook-id, a fresh timestamp and
    // signature (one second later at least, so the timestamp must differ).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/deliveries/redeliver", server.url()))
        .bearer_auth(&key)
        .json(&json!({"event": first.webhook_id(), "endpoint": "endpoint-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let again = eventually(Duration::from_secs(30), "the redelivery", async || {
        hooks
            .for_recording(&id)
            .into_iter()
            .filter(|d| d.webhook_id() == first.webhook_id())
            .nth(1)
    })
    .await;
    assert_eq!(again.body, first.body, "the same body");
    assert_ne!(
        again.header("webhook-timestamp"),
        first.header("webhook-timestamp"),
        "a fresh timestamp"
    );
    assert_ne!(
        again.header("webhook-signature"),
        first.header("webhook-signature")
    );
    again.verify(crate::util::WEBHOOK_SECRET).unwrap();
    let verdicts = crate::util::receiver::verify_with_reference_library(
        crate::util::WEBHOOK_SECRET,
        std::slice::from_ref(&again),
    )
    .await;
    assert_eq!(verdicts, ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_made_through_the_api_gets_its_environments_events_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let production_hooks = crate::util::WebhookReceiver::start().await;
    let staging_hooks = crate::util::WebhookReceiver::start().await;
    let server = PipeServer::start(
        dir.path(),
        &[
            ("PIPE_ALLOWED_HOSTS", ""),
            ("PIPE_WEBHOOK_URL", production_hooks.url.as_str()),
            ("PIPE_WEBHOOK_SECRET", crate::util::WEBHOOK_SECRET),
        ],
    )
    .await;
    let admin = create_key(&server, &["--role", "admin"]).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", server.url()))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    // The endpoint of PIPE_WEBHOOK_URL is production's, and listed as such.
    let (status, listed) = get(
        &format!("{}/v1/environments/production/webhooks", server.url()),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["webhooks"][0]["id"], "endpoint-1", "{listed}");
    assert_eq!(listed["webhooks"][0]["url"], production_hooks.url.as_str());

    let made = post("/v1/environments", json!({"id": "staging"}))
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let made = post(
        "/v1/environments/staging/webhooks",
        json!({"url": staging_hooks.url, "events": ["video_converted"]}),
    )
    .await
    .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.unwrap();
    let secret = made["secret"].as_str().unwrap().to_owned();
    let endpoint = made["id"].as_str().unwrap().to_owned();

    // A test event reaches it at once, signed with that secret.
    let tested = post(&format!("/v1/webhooks/{endpoint}/test"), json!({}))
        .await
        .unwrap();
    assert_eq!(tested.status(), StatusCode::OK);
    let tested: Value = tested.json().await.unwrap();
    assert_eq!(
        (&tested["delivered"], &tested["status"]),
        (&json!(true), &json!(200)),
        "{tested}"
    );
    let test_event = staging_hooks
        .all()
        .into_iter()
        .find(|d| d.event() == "webhook_test")
        .expect("the test event arrived");
    test_event.verify(&secret).unwrap();

    // No restart: a staging recording is told to staging's endpoint only, signed with
    // the secret shown at creation.
    let id = crate::stream::stream_recording_at(
        &server,
        "/v1/stream?environment=staging",
        &webm(dir.path()),
    )
    .await;
    let converted = staging_hooks
        .wait_for(&id, "video_converted", Duration::from_secs(60))
        .await;
    converted.verify(&secret).unwrap();
    let production_id = stream_recording(&server, &webm(dir.path())).await;
    production_hooks
        .wait_for(&production_id, "video_converted", Duration::from_secs(60))
        .await;
    assert!(
        production_hooks.for_recording(&id).is_empty(),
        "production's endpoint got staging's events"
    );
    assert!(
        staging_hooks.for_recording(&production_id).is_empty(),
        "staging's endpoint got production's events"
    );
    assert_eq!(
        staging_hooks
            .for_recording(&id)
            .iter()
            .map(|d| d.event().to_owned())
            .collect::<Vec<_>>(),
        ["video_converted"],
        "staging's endpoint is subscribed to video_converted only"
    );
}

/// Nothing in the data directory is another local user's to read: the directory and every
/// one in it are 0700, every file is owner-only (the catalog and its WAL, the keys, the
/// secrets, the spool), also those a `pipe keys` command made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_its_owners_alone() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[]).await;
    let key = create_key(&server, &["--role", "admin"]).await;
    let (status, _) = get(&format!("{}/v1/environments", server.url()), &key).await;
    assert_eq!(status, StatusCode::OK);
    let mut seen = 0;
    let mut dirs = vec![server.data_dir.clone()];
    while let Some(dir) = dirs.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", entry.path().display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 4, "only {seen} files under the data directory");
}
