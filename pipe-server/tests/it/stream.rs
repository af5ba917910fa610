//! The streaming protocol against the real server: hostile and malformed input fail their
//! own recording only, with the documented answers.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::util::{PipeServer, WEBHOOK_SECRET, WebhookReceiver};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) async fn connect(
    server: &PipeServer,
    origin: Option<&str>,
) -> Result<Socket, tungstenite::Error> {
    connect_to(server, "/v1/stream", origin).await
}

/// Opens the stream at `path` (`/v1/stream?environment=…`) with `origin`.
pub(crate) async fn connect_to(
    server: &PipeServer,
    path: &str,
    origin: Option<&str>,
) -> Result<Socket, tungstenite::Error> {
    let mut request = format!("ws://127.0.0.1:{}{path}", server.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "pipe.stream.v1".parse().unwrap());
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, response)| {
            assert_eq!(
                response.headers()["sec-websocket-protocol"],
                "pipe.stream.v1"
            );
            socket
        })
}

pub(crate) async fn send_json(socket: &mut Socket, value: Value) {
    socket.send(Message::text(value.to_string())).await.unwrap();
}

pub(crate) async fn send_chunk(socket: &mut Socket, offset: u64, bytes: &[u8]) {
    let mut frame = offset.to_be_bytes().to_vec();
    frame.extend_from_slice(bytes);
    socket.send(Message::binary(frame)).await.unwrap();
}

/// The next text message as JSON, or the close frame as `{"close": code, "reason": …}`.
pub(crate) async fn receive(socket: &mut Socket) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("the server answered within 10 s")
        .expect("the connection is open")
        .unwrap();
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        Message::Close(Some(frame)) => {
            json!({"close": u16::from(frame.code), "reason": frame.reason.as_str()})
        }
        other => panic!("unexpected message {other:?}"),
    }
}

/// Starts a WebM recording on `socket`; the server's `started`.
pub(crate) async fn start_webm(socket: &mut Socket) -> Value {
    send_json(socket, json!({"type": "start", "mimeType": "video/webm"})).await;
    let started = receive(socket).await;
    assert_eq!(started["type"], "started", "{started}");
    started
}

/// Streams `bytes` as one new recording and finishes it; returns its id.
pub(crate) async fn stream_recording(server: &PipeServer, bytes: &[u8]) -> String {
    stream_recording_at(server, "/v1/stream", bytes).await
}

/// [`stream_recording`] through the stream URL `path` (`/v1/stream?environment=…`).
pub(crate) async fn stream_recording_at(server: &PipeServer, path: &str, bytes: &[u8]) -> String {
    let mut socket = connect_to(server, path, None).await.unwrap();
    let started = start_webm(&mut socket).await;
    for (i, chunk) in bytes.chunks(64 << 10).enumerate() {
        send_chunk(&mut socket, (i * (64 << 10)) as u64, chunk).await;
        assert_eq!(receive(&mut socket).await["type"], "ack");
    }
    send_json(
        &mut socket,
        json!({"type": "finish", "length": bytes.len()}),
    )
    .await;
    let finished = receive(&mut socket).await;
    assert_eq!(finished["type"], "finished", "{finished}");
    assert_eq!(receive(&mut socket).await["close"], 1000);
    started["recording"].as_str().unwrap().to_owned()
}

/// Deterministic bytes that are no media format.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A short real WebM made by the ffmpeg command line.
pub(crate) fn webm(dir: &std::path::Path) -> Vec<u8> {
    webm_of(dir, 2)
}

/// A real WebM of `seconds` made by the ffmpeg command line.
pub(crate) fn webm_of(dir: &std::path::Path, seconds: u32) -> Vec<u8> {
    let path = dir.join(format!("fixture-{seconds}s.webm"));
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
        ])
        .args([
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &seconds.to_string(),
            "-c:v",
            "libvpx",
            "-c:a",
            "libopus",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(path).unwrap()
}

async fn server_with_hooks(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (PipeServer, WebhookReceiver) {
    let hooks = WebhookReceiver::start().await;
    let mut all = vec![
        ("PIPE_WEBHOOK_URL", hooks.url.as_str()),
        ("PIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ];
    all.extend_from_slice(env);
    (PipeServer::start(dir, &all).await, hooks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_media_and_truncated_media_fail_their_own_recording_only() {
    let dir = tempfile::tempdir().unwrap();
    let (server, hooks) = server_with_hooks(dir.path(), &[]).await;
    let good = webm(dir.path());

    let noise_id = stream_recording(&server, &noise(200 << 10)).await;
    // Cut inside the header: the tracks are never fully described.
    let truncated_id = stream_recording(&server, &good[..good.len().min(150)]).await;
    let good_id = stream_recording(&server, &good).await;

    for id in [&noise_id, &truncated_id] {
        let failed = hooks
            .wait_for(id, "video_failed", Duration::from_secs(60))
            .await;
        failed.verify(WEBHOOK_SECRET).unwrap();
        let reason = failed.json["data"]["reason"].as_str().unwrap();
        assert!(!reason.is_empty(), "no reason for {id}");
        assert!(
            !hooks
                .for_recording(id)
                .iter()
                .any(|d| d.event() == "video_converted"),
            "a broken recording was converted"
        );
    }
    // The server kept serving: the good recording streamed after them completes.
    hooks
        .wait_for(
            &good_id,
            "video_copied_pipe_storage",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(
        reqwest::get(format!("{}/healthz", server.url()))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_before_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(
        dir.path(),
        &[("PIPE_ALLOWED_HOSTS", "rec.example.com, *.example.org")],
    )
    .await;

    for origin in [
        Some("https://evil.example.net"),
        Some("https://example.org"),
        // A wildcard stands for one level of subdomain, as in Pipe.
        Some("https://a.b.example.org"),
        None,
    ] {
        match connect(&server, origin).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 403, "{origin:?}");
                let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
                assert!(
                    body.contains("urn:pipe:problem:origin-not-allowed"),
                    "{body}"
                );
            }
            Err(e) => panic!("{origin:?}: unexpected error {e}"),
            Ok(_) => panic!("{origin:?} was allowed to stream"),
        }
    }
    let spool = server.data_dir.join("spool");
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "a refused origin left bytes in the spool"
    );

    for origin in ["https://rec.example.com:8443", "https://b.example.org"] {
        let mut socket = connect(&server, Some(origin))
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        send_json(&mut socket, json!({"type": "start"})).await;
        assert_eq!(receive(&mut socket).await["type"], "started");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_text_reaches_the_log_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[]).await;
    // A message type carrying a newline and a terminal escape: the parse error quotes
    // it, the close reason carries it, and the log line of the close must not.
    let mut socket = connect(&server, None).await.unwrap();
    let evil = r"evil\nFORGED line \u001b[31mred";
    socket
        .send(Message::text(format!(r#"{{"type":"{evil}"}}"#)))
        .await
        .unwrap();
    assert_eq!(receive(&mut socket).await["close"], 4400);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(dir.path().join("pipe.log")).unwrap();
    assert!(log.contains("closing stream"), "{log}");
    assert!(
        !log.lines().any(|line| line.starts_with("FORGED")),
        "client text forged a log line:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "a terminal escape reached the log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_close_with_the_documented_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[]).await;

    // An oversized frame: 1009.
    let mut socket = connect(&server, None).await.unwrap();
    send_json(&mut socket, json!({"type": "start"})).await;
    let started = receive(&mut socket).await;
    let max_chunk = started["maxChunk"].as_u64().unwrap() as usize;
    send_chunk(&mut socket, 0, &vec![0u8; max_chunk + 1]).await;
    let close = receive(&mut socket).await;
    assert_eq!(close, json!({"close": 1009, "reason": "message too big"}));

    // A gap: 4409, and the recording resumes at the durable offset with its token.
    let mut socket = connect(&server, None).await.unwrap();
    send_json(&mut socket, json!({"type": "start"})).await;
    let started = receive(&mut socket).await;
    send_chunk(&mut socket, 0, b"0123456789").await;
    assert_eq!(
        receive(&mut socket).await,
        json!({"type": "ack", "offset": 10})
    );
    send_chunk(&mut socket, 20, b"x").await;
    assert_eq!(receive(&mut socket).await["close"], 4409);

    let resume = json!({"type": "resume", "recording": started["recording"], "resumeToken": started["resumeToken"]});
    let mut socket = connect(&server, None).await.unwrap();
    send_json(&mut socket, resume.clone()).await;
    let resumed = receive(&mut socket).await;
    assert_eq!(
        (resumed["type"].as_str(), resumed["offset"].as_u64()),
        (Some("resumed"), Some(10))
    );
    // Re-sending acknowledged bytes is harmless; the overlap adds only the new tail.
    send_chunk(&mut socket, 5, b"56789abc").await;
    assert_eq!(
        receive(&mut socket).await,
        json!({"type": "ack", "offset": 13})
    );
    // A finish with the wrong length: 4412.
    send_json(&mut socket, json!({"type": "finish", "length": 12})).await;
    assert_eq!(receive(&mut socket).await["close"], 4412);

    // finish is idempotent across connections.
    for _ in 0..2 {
        let mut socket = connect(&server, None).await.unwrap();
        send_json(&mut socket, resume.clone()).await;
        receive(&mut socket).await;
        send_json(&mut socket, json!({"type": "finish", "length": 13})).await;
        let finished = receive(&mut socket).await;
        assert_eq!(
            (finished["type"].as_str(), finished["length"].as_u64()),
            (Some("finished"), Some(13))
        );
    }

    // A forged resume token: 4401. Bytes before start: 4400. Junk JSON: 4400.
    let mut socket = connect(&server, None).await.unwrap();
    send_json(
        &mut socket,
        json!({"type": "resume", "recording": started["recording"], "resumeToken": "AAAA"}),
    )
    .await;
    assert_eq!(receive(&mut socket).await["close"], 4401);
    let mut socket = connect(&server, None).await.unwrap();
    send_chunk(&mut socket, 0, b"early").await;
    assert_eq!(receive(&mut socket).await["close"], 4400);
    let mut socket = connect(&server, None).await.unwrap();
    socket.send(Message::text("{not json")).await.unwrap();
    assert_eq!(receive(&mut socket).await["close"], 4400);

    // The server is still serving.
    let mut socket = connect(&server, None).await.unwrap();
    send_json(&mut socket, json!({"type": "start"})).await;
    assert_eq!(receive(&mut socket).await["type"], "started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_streams_with_1001_after_their_chunks_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = PipeServer::start(dir.path(), &[]).await;

    let mut socket = connect(&server, None).await.unwrap();
    send_json(&mut socket, json!({"type": "start"})).await;
    let started = receive(&mut socket).await;
    let chunk = noise(started["maxChunk"].as_u64().unwrap() as usize);
    send_chunk(&mut socket, 0, &chunk).await;

    // SIGTERM while the chunk is on its way or being made durable: whatever the server
    // acknowledges before it closes with 1001 must be there after the restart.
    let stopping = tokio::spawn(async move {
        let clean = server.terminate().await;
        (server, clean)
    });
    let mut acked = 0;
    let close = loop {
        let message = receive(&mut socket).await;
        match message["type"].as_str() {
            Some("ack") => acked = message["offset"].as_u64().unwrap(),
            _ => break message,
        }
    };
    assert_eq!(
        close,
        json!({"close": 1001, "reason": "server shutting down"})
    );
    let (mut server, clean) = stopping.await.unwrap();
    assert!(
        clean,
        "pipe did not exit cleanly on SIGTERM:\n{}",
        server.log_tail()
    );

    server.restart().await;
    let mut socket = connect(&server, None).await.unwrap();
    send_json(
        &mut socket,
        json!({"type": "resume", "recording": started["recording"], "resumeToken": started["resumeToken"]}),
    )
    .await;
    let resumed = receive(&mut socket).await;
    let offset = resumed["offset"].as_u64().unwrap();
    assert!(
        offset >= acked,
        "acknowledged bytes were lost in the shutdown: {resumed}, acked {acked}"
    );
    assert!(
        offset == 0 || offset == chunk.len() as u64,
        "a chunk was stored in part: {resumed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_makes_an_encryption_key_and_says_so_once() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let mut server = PipeServer::start(dir.path(), &[]).await;
    let key_file = server
        .data_dir
        .join("keys")
        .join(pipe_storage::crypt::KEY_FILE);
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is readable by others");
    let key = std::fs::read(&key_file).unwrap();

    server.restart().await;
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        key,
        "a restart replaced the key"
    );
    let log = server.log_tail();
    let told = log.matches("back this file up").count();
    assert_eq!(
        told, 1,
        "the operator must be told to back the key up exactly once:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_cut_off_by_sigkill_completes_after_the_restart_with_stable_webhook_ids() {
    use std::collections::{BTreeMap, BTreeSet};

    let dir = tempfile::tempdir().unwrap();
    // One worker and a receiver that holds video_recorded: the kill lands while that
    // delivery is in flight and before the conversion has started.
    let (mut server, hooks) = server_with_hooks(dir.path(), &[("PIPE_WORKERS", "1")]).await;
    hooks.hold("video_recorded", Duration::from_secs(5));
    let id = stream_recording(&server, &webm(dir.path())).await;
    hooks
        .wait_for(&id, "video_recorded", Duration::from_secs(30))
        .await;
    server.kill().await;
    assert!(
        !hooks
            .for_recording(&id)
            .iter()
            .any(|d| d.event() == "video_converted"),
        "the conversion finished before the kill; nothing was cut off"
    );

    server.restart().await;
    hooks
        .wait_for(&id, "video_copied_pipe_storage", Duration::from_secs(120))
        .await;
    // The delivery cut off by the kill is sent again: the restarted server takes over the
    // jobs the killed one held instead of waiting out their leases.
    crate::util::eventually(
        Duration::from_secs(90),
        "video_recorded sent again",
        async || {
            let recorded = hooks.for_recording(&id);
            (recorded
                .iter()
                .filter(|d| d.event() == "video_recorded")
                .count()
                >= 2)
                .then_some(())
        },
    )
    .await;
    // At least once, with one id per event however often it was sent.
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in hooks.for_recording(&id) {
        d.verify(WEBHOOK_SECRET).unwrap();
        ids.entry(d.event().to_owned())
            .or_default()
            .insert(d.webhook_id().to_owned());
    }
    for event in [
        "video_recorded",
        "video_converted",
        "video_copied_pipe_storage",
    ] {
        assert_eq!(
            ids.get(event).map(BTreeSet::len),
            Some(1),
            "{event}: webhook ids {ids:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(dir.path(), &[]).await;
    let second = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipe"))
        .arg("serve")
        .env(
            "PIPE_LISTEN",
            format!("127.0.0.1:{}", crate::util::free_port()),
        )
        .env("PIPE_DATA_DIR", &server.data_dir)
        .output()
        .await
        .unwrap();
    assert!(
        !second.status.success(),
        "a second server started on the same data dir"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another `pipe serve` is using this data directory"),
        "{stderr}"
    );
    // The first keeps serving.
    assert_eq!(
        reqwest::get(format!("{}/healthz", server.url()))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

/// `PIPE_WEBHOOK_EVENTS` subscribes the endpoint: subscribed to `video_converted`, it gets
/// that event and none of the others, even once the recording is copied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_subscribed_to_video_converted_gets_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let (server, hooks) =
        server_with_hooks(dir.path(), &[("PIPE_WEBHOOK_EVENTS", "video_converted")]).await;
    let key = crate::api::create_key(&server, &["--role", "viewer"]).await;
    let good = webm(dir.path());
    let good_id = stream_recording(&server, &good).await;
    let failed_id = stream_recording(&server, &noise(64 << 10)).await;

    let converted = hooks
        .wait_for(&good_id, "video_converted", Duration::from_secs(60))
        .await;
    converted.verify(WEBHOOK_SECRET).unwrap();
    let client = reqwest::Client::new();
    for (id, state) in [(&good_id, "copied"), (&failed_id, "failed")] {
        crate::util::eventually(Duration::from_secs(60), state, async || {
            let recording: Value = client
                .get(format!("{}/v1/recordings/{id}", server.url()))
                .bearer_auth(&key)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (recording["state"] == state).then_some(())
        })
        .await;
    }
    // Every notification has been tried: what the endpoint got is all it will get.
    crate::util::eventually(
        Duration::from_secs(30),
        "no notification left",
        async || {
            let metrics = client
                .get(format!("{}/metrics", server.url()))
                .bearer_auth(&key)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let busy = metrics.lines().any(|line| {
                line.starts_with("pipe_jobs{")
                    && line.contains("kind=\"notify\"")
                    && (line.contains("status=\"queued\"") || line.contains("status=\"running\""))
                    && !line.ends_with(" 0")
            });
            (!busy).then_some(())
        },
    )
    .await;
    let events: Vec<String> = hooks.all().iter().map(|d| d.event().to_owned()).collect();
    assert_eq!(events, ["video_converted"], "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_url_inside_the_network_stops_the_start_and_says_how_to_allow_it() {
    let dir = tempfile::tempdir().unwrap();
    let start = |url: &str, allow: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_pipe"))
            .arg("serve")
            .env(
                "PIPE_LISTEN",
                format!("127.0.0.1:{}", crate::util::free_port()),
            )
            .env("PIPE_DATA_DIR", dir.path().join("data"))
            .env("PIPE_WEBHOOK_URL", url)
            .env("PIPE_WEBHOOK_ALLOW_ADDRESSES", allow)
            .kill_on_drop(true)
            .output()
    };
    for (url, why) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254: the address is link-local",
        ),
        (
            "http://2130706433:9/hooks",
            "127.0.0.1: the address is loopback",
        ),
        // A name: resolved at start (to 127.0.0.1 or ::1).
        ("http://localhost:9/hooks", "the address is loopback"),
    ] {
        // Only 10.0.0.0/8 re-admitted: not these.
        let out = start(url, "10.0.0.0/8").await.unwrap();
        assert!(!out.status.success(), "{url}: started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("PIPE_WEBHOOK_URL")
                && stderr.contains(why)
                && stderr.contains("set PIPE_WEBHOOK_ALLOW_ADDRESSES="),
            "{url}: {stderr}"
        );
        assert!(
            !stderr.contains("meta-data") && !stderr.contains("/hooks"),
            "{stderr}"
        );
    }
}

/// Pipe's `mrt`: a recorder that keeps sending past its environment's maximum recording
/// time gets a recording of that time, not of what it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_past_the_maximum_recording_time_is_converted_up_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, hooks) = server_with_hooks(dir.path(), &[("PIPE_LINK_TTL_SECS", "3600")]).await;
    let key = crate::api::create_key(&server, &["--role", "admin"]).await;
    let limited = reqwest::Client::new()
        .patch(format!("{}/v1/environments/production", server.url()))
        .bearer_auth(&key)
        .json(&json!({"settings": {"max_recording_secs": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 200);

    let id = stream_recording(&server, &webm_of(dir.path(), 14)).await;
    let copied = hooks
        .wait_for(&id, "video_copied_pipe_storage", Duration::from_secs(120))
        .await;
    let (_, _, mp4) = crate::browser::download(copied.json["data"]["url"].as_str().unwrap()).await;
    let path = dir.path().join("cut.mp4");
    std::fs::write(&path, mp4).unwrap();
    let seconds = crate::util::media::duration(&crate::util::media::ffprobe(&path));
    assert!(
        (9.9..10.2).contains(&seconds),
        "a 14 s recording under a 10 s limit became {seconds} s"
    );
}
