//! Several nodes: `pipe` processes sharing a PostgreSQL catalog and an S3 bucket (the
//! spool, our own storage and staging in it), with the secrets and keys every node is
//! given by configuration, behind HAProxy. A node killed (-9) or drained (SIGTERM) in the
//! middle of streams loses no acknowledged byte: its clients resume through the balancer
//! on another node, any node converts and copies, and every event keeps one webhook id.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pipe_storage::testing::{PostgresTestServer, S3TestServer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::api::{create_key, get, until_copied};
use crate::stream::{Socket, connect, receive, send_chunk, send_json, start_webm, webm};
use crate::util::balancer::{Balancer, Spread};
use crate::util::{
    Driver, PipeServer, WEBHOOK_SECRET, WebhookReceiver, eventually, files_under, free_port,
    s3_env, s3_url,
};

const COPIED: &str = "video_copied_pipe_storage";

/// What the nodes share their bytes in.
#[derive(Clone, Copy)]
enum Shared {
    /// A bucket of the S3 server.
    Bucket,
    /// A directory both nodes reach (as a file system every node mounts would be).
    Directory,
}

/// Two nodes on one database and one bucket, behind a balancer, webhooks to `hooks`.
struct Cluster {
    nodes: Vec<PipeServer>,
    balancer: Balancer,
    hooks: WebhookReceiver,
    /// An admin key of the API.
    key: String,
    _s3: S3TestServer,
    _postgres: PostgresTestServer,
}

impl Cluster {
    /// Starts PostgreSQL, the S3 server, two nodes (with `extra` settings) and HAProxy.
    async fn start(dir: &Path, spread: Spread, shared: Shared, extra: &[(&str, &str)]) -> Self {
        let postgres = PostgresTestServer::start();
        let s3 = S3TestServer::start();
        let hooks = WebhookReceiver::start().await;
        let catalog = postgres.create_database();
        let shared = match shared {
            Shared::Bucket => s3_url(&s3, "shared"),
            Shared::Directory => format!("file://{}", dir.join("shared").display()),
        };
        let secret = "5e".repeat(32);
        let balancer_port = free_port();
        let public = format!("http://127.0.0.1:{balancer_port}");
        let mut env = vec![
            ("PIPE_CATALOG_URL", catalog.as_str()),
            ("PIPE_SHARED_STORAGE", shared.as_str()),
            ("PIPE_SERVER_SECRET", secret.as_str()),
            (
                "PIPE_ENCRYPTION_KEYS",
                "shared:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
            ),
            ("PIPE_PUBLIC_URL", public.as_str()),
            ("PIPE_WEBHOOK_URL", hooks.url.as_str()),
            ("PIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            s3_env(),
        ];
        env.extend_from_slice(extra);
        let mut nodes = Vec::new();
        for name in ["a", "b"] {
            let node_dir = dir.join(name);
            std::fs::create_dir_all(&node_dir).unwrap();
            nodes.push(PipeServer::start(&node_dir, &env).await);
        }
        let addrs: Vec<SocketAddr> = nodes.iter().map(PipeServer::addr).collect();
        let balancer = Balancer::start(dir, balancer_port, &addrs, spread).await;
        let key = create_key(&nodes[1], &["--role", "admin"]).await;
        Self {
            nodes,
            balancer,
            hooks,
            key,
            _s3: s3,
            _postgres: postgres,
        }
    }

    /// Every event about `id` was told under one webhook id, each of `events` at least once.
    fn assert_one_webhook_id_per_event(&self, id: &str, events: &[&str]) {
        let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for delivery in self.hooks.for_recording(id) {
            delivery.verify(WEBHOOK_SECRET).unwrap();
            ids.entry(delivery.event().to_owned())
                .or_default()
                .insert(delivery.webhook_id().to_owned());
        }
        for event in events {
            assert!(ids.contains_key(*event), "no {event} for {id}: {ids:?}");
        }
        for (event, webhook_ids) in &ids {
            assert_eq!(
                webhook_ids.len(),
                1,
                "{event} of {id} was told under several webhook ids: {webhook_ids:?}"
            );
        }
    }
}

/// The original of `id` in the customer bucket of `s3` (`PIPE_SINKS` set to
/// [`s3_url`]`(s3, "recordings")`: Pipe's names, no encryption).
fn original_in(s3: &S3TestServer, id: &str) -> Vec<u8> {
    let files = files_under(s3.root());
    let path = files
        .iter()
        .find(|f| f.ends_with(format!("recordings/{id}_raw.webm")))
        .unwrap_or_else(|| panic!("no original of {id} in the bucket: {files:?}"));
    std::fs::read(path).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_cut_off_by_kill_9_on_one_node_resumes_and_finishes_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), Spread::RoundRobin, Shared::Bucket, &[]).await;
    let bytes = webm(dir.path());
    let half = bytes.len() / 2;

    // Straight to node A, then to node B with the resume token A gave.
    let mut socket = connect(&cluster.nodes[0], None).await.unwrap();
    let started = start_webm(&mut socket).await;
    let mut acked = 0;
    for chunk in bytes[..half].chunks(16 << 10) {
        send_chunk(&mut socket, acked, chunk).await;
        acked = receive(&mut socket).await["offset"].as_u64().unwrap();
    }
    cluster.nodes[0].kill().await;
    let b = &cluster.nodes[1];

    let mut socket = connect(b, None).await.unwrap();
    send_json(
        &mut socket,
        json!({"type": "resume", "recording": started["recording"], "resumeToken": started["resumeToken"]}),
    )
    .await;
    let resumed = receive(&mut socket).await;
    assert_eq!(
        (resumed["type"].as_str(), resumed["offset"].as_u64()),
        (Some("resumed"), Some(acked)),
        "node B does not resume where node A acknowledged: {resumed}"
    );
    let mut offset = acked;
    for chunk in bytes[acked as usize..].chunks(64 << 10) {
        send_chunk(&mut socket, offset, chunk).await;
        offset = receive(&mut socket).await["offset"].as_u64().unwrap();
    }
    send_json(
        &mut socket,
        json!({"type": "finish", "length": bytes.len()}),
    )
    .await;
    assert_eq!(receive(&mut socket).await["type"], "finished");

    let id = started["recording"].as_str().unwrap();
    let recording = until_copied(b, &cluster.key, id).await;
    let original = recording["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "original")
        .expect("an original")["url"]
        .as_str()
        .expect("a link to the original")
        .to_owned();
    // The link names the balancer: whichever node serves it reads the shared storage.
    assert!(original.starts_with(&cluster.balancer.url()), "{original}");
    let served = reqwest::get(&original).await.unwrap();
    assert_eq!(served.status(), 200);
    assert!(
        served.bytes().await.unwrap() == bytes,
        "the original differs from what the client sent"
    );
    for node in &cluster.nodes {
        let data = &node.data_dir;
        assert!(!data.join("catalog.sqlite").exists(), "{}", data.display());
        let local = [
            data.join("spool"),
            data.join("storage"),
            data.join("staging"),
        ];
        for dir in local {
            let files = files_under(&dir);
            assert!(files.is_empty(), "a node kept bytes locally: {files:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_recording_through_the_balancer_survives_kill_9_of_its_node() {
    let dir = tempfile::tempdir().unwrap();
    let s3_sinks = S3TestServer::start();
    let sinks = s3_url(&s3_sinks, "recordings");
    let mut cluster = Cluster::start(
        dir.path(),
        Spread::FirstUp,
        Shared::Bucket,
        &[
            ("PIPE_SINKS", sinks.as_str()),
            ("PIPE_LINK_TTL_SECS", "3600"),
        ],
    )
    .await;

    // While node A is up the balancer sends every connection to it: the browser streams
    // through A, A is killed, and the recorder resumes through the balancer on B.
    let mut recording = Driver::record(&format!("{}/", cluster.balancer.url()), 8);
    let acked = |e: &Value| e["event"] == "uploadprogress" && e["acked"].as_u64() > Some(0);
    recording.until(acked).await;
    recording.until(acked).await;
    cluster.nodes[0].kill().await;
    let done = recording.done().await;
    assert!(
        done["reconnects"].as_u64().unwrap() >= 1,
        "the recorder never noticed the kill"
    );
    let id = done["recordingId"].as_str().unwrap().to_owned();
    let hooks = &cluster.hooks;
    let copied = hooks.wait_for(&id, COPIED, Duration::from_secs(90)).await;
    let link = copied.json["data"]["rawRecordingUrl"].as_str().unwrap();
    let original = reqwest::get(link).await.unwrap().bytes().await.unwrap();
    assert_eq!(
        sha256_hex(&original),
        done["sha256"],
        "acknowledged bytes were lost in the kill"
    );
    hooks
        .wait_for(&id, "video_copied_s3", Duration::from_secs(60))
        .await;
    assert_eq!(sha256_hex(&original_in(&s3_sinks, &id)), done["sha256"]);
    // The MP4 came from whichever node converted it (B: A is dead), and plays.
    let recording = until_copied(&cluster.nodes[1], &cluster.key, &id).await;
    let mp4 = crate::api::mp4_url(&recording);
    let played = Driver::play(&format!("{}/", cluster.balancer.url()), &mp4).await;
    assert_eq!(played["event"], "canplay", "{played}");
    cluster.assert_one_webhook_id_per_event(
        &id,
        &[
            "video_recorded",
            "video_converted",
            COPIED,
            "video_copied_s3",
        ],
    );
    // The recording was not made twice by the resume.
    let (_, list) = get(
        &format!("{}/v1/recordings", cluster.balancer.url()),
        &cluster.key,
    )
    .await;
    assert_eq!(list["recordings"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_node_moves_its_streams_to_the_other_without_losing_a_byte() {
    let dir = tempfile::tempdir().unwrap();
    let sinks_s3 = S3TestServer::start();
    let sinks = s3_url(&sinks_s3, "recordings");
    let mut cluster = Cluster::start(
        dir.path(),
        Spread::RoundRobin,
        Shared::Bucket,
        &[("PIPE_SINKS", sinks.as_str())],
    )
    .await;
    let bytes = webm(dir.path());
    let url = cluster.balancer.url();

    // 20 clients stream at about 64 KiB/s each, spread over both nodes; node B is
    // drained (SIGTERM) while they do.
    let streams: Vec<_> = (0..20)
        .map(|_| {
            let (url, bytes) = (url.clone(), bytes.clone());
            tokio::spawn(async move {
                stream_resuming(&url, &bytes, 8 << 10, Duration::from_millis(120)).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        cluster.nodes[1].terminate().await,
        "node B did not drain cleanly"
    );
    let mut moved = 0;
    for stream in streams {
        let streamed = stream.await.unwrap();
        moved += streamed.went_away;
        let recording = until_copied(&cluster.nodes[0], &cluster.key, &streamed.id).await;
        assert_eq!(recording["state"], "copied");
        assert!(
            original_in(&sinks_s3, &streamed.id) == bytes,
            "the original of {} differs from what its client sent",
            streamed.id
        );
    }
    assert!(
        moved > 0,
        "no stream was on node B when it drained: the test proved nothing"
    );
    eprintln!("{moved} of 20 streams moved from the drained node to the other");
    eprintln!("{moved} of 20 streams moved from the drained node to the other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_recordings_across_two_nodes_are_each_processed_once_when_one_dies() {
    const RECORDINGS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    // The bytes in a directory rather than the S3 server's bucket: s3s-fs lists a prefix
    // by walking the whole bucket, so at thousands of objects every spool read, which
    // lists the recording's chunks, costs more than the rest of the recording's
    // processing (a real S3 lists by prefix). The other tests here run on the bucket.
    let mut cluster = Cluster::start(dir.path(), Spread::RoundRobin, Shared::Directory, &[]).await;
    let bytes = tiny_webm(dir.path());
    let url = cluster.balancer.url();
    let started = std::time::Instant::now();

    // 16 clients at a time; node A is killed (-9) once half the recordings are finished,
    // with streams, conversions, copies and deliveries of its own in flight, and started
    // again a little later.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    for _ in 0..RECORDINGS {
        let (url, bytes, done_tx) = (url.clone(), bytes.clone(), done_tx.clone());
        let permit = permits.clone().acquire_owned().await.unwrap();
        tokio::spawn(async move {
            let streamed = stream_resuming(&url, &bytes, 16 << 10, Duration::ZERO).await;
            drop(permit);
            let _ = done_tx.send(streamed.id);
        });
    }
    drop(done_tx);
    let mut ids = Vec::new();
    while let Some(id) = done_rx.recv().await {
        ids.push(id);
        if ids.len() == RECORDINGS / 2 {
            cluster.nodes[0].kill().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            cluster.nodes[0].restart().await;
        }
    }
    let streamed_in = started.elapsed();
    assert_eq!(ids.len(), RECORDINGS);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        RECORDINGS,
        "a recording id was given twice"
    );

    // Every recording is copied in the end (jobs node A held return after their lease),
    // and each was converted once: one video_converted, under one webhook id.
    eventually(
        Duration::from_secs(600),
        "every recording to be copied",
        async || {
            let copied: BTreeSet<String> = cluster
                .hooks
                .all()
                .into_iter()
                .filter(|d| d.event() == COPIED)
                .map(|d| d.recording().to_owned())
                .collect();
            (copied.len() == RECORDINGS).then_some(())
        },
    )
    .await;
    eprintln!(
        "{RECORDINGS} recordings streamed through the balancer in {streamed_in:.1?}, all \
         copied after {:.1?}",
        started.elapsed()
    );
    let mut converted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for delivery in cluster.hooks.all() {
        if delivery.event() == "video_converted" {
            converted
                .entry(delivery.recording().to_owned())
                .or_default()
                .insert(delivery.webhook_id().to_owned());
        }
    }
    assert_eq!(converted.len(), RECORDINGS, "recordings told converted");
    let twice: Vec<_> = converted.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(twice.is_empty(), "converted more than once: {twice:?}");
    for id in ids.iter().step_by(97) {
        let recording = until_copied(&cluster.nodes[1], &cluster.key, id).await;
        let kinds: Vec<&str> = recording["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "mp4").count(),
            1,
            "{recording}"
        );
    }
}

/// A 0.4 s WebM of 64×48 pixels, for tests that make many recordings.
fn tiny_webm(dir: &Path) -> Vec<u8> {
    let path = dir.join("tiny.webm");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .args(["testsrc2=size=64x48:rate=15", "-f", "lavfi", "-i"])
        .args(["sine=frequency=440:sample_rate=48000", "-t", "0.4"])
        .args(["-c:v", "libvpx", "-c:a", "libopus"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(path).unwrap()
}

/// What a client made of one recording.
struct Streamed {
    id: String,
    /// How often a node closed the stream with 1001 (draining).
    went_away: u32,
}

/// A client of the streaming protocol as the recorder is: streams `bytes` in chunks of
/// `chunk` through `base`, one every `pace`, and whenever its connection ends (a node
/// killed or drained) reconnects and resumes where the server says, which must never be
/// before what it acknowledged.
async fn stream_resuming(base: &str, bytes: &[u8], chunk: usize, pace: Duration) -> Streamed {
    let mut session: Option<(String, String)> = None;
    let (mut acked, mut went_away) = (0u64, 0);
    for attempt in 0.. {
        assert!(attempt < 40, "gave up after 40 connections");
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 * attempt.min(5))).await;
        }
        let Ok(mut socket) = open(base).await else {
            continue;
        };
        match stream_once(&mut socket, &mut session, &mut acked, bytes, chunk, pace).await {
            Ok(()) => {
                let (id, _) = session.expect("a finished recording was started");
                return Streamed { id, went_away };
            }
            Err(Some(1001)) => went_away += 1,
            Err(_) => {}
        }
    }
    unreachable!()
}

/// One connection's part of [`stream_resuming`]: `Err` with the close code, if any, when
/// the connection ended before the recording was finished.
async fn stream_once(
    socket: &mut Socket,
    session: &mut Option<(String, String)>,
    acked: &mut u64,
    bytes: &[u8],
    chunk: usize,
    pace: Duration,
) -> Result<(), Option<u16>> {
    match session {
        None => {
            let start = json!({"type": "start", "mimeType": "video/webm"});
            say(socket, start).await?;
            let started = hear(socket).await?;
            assert_eq!(started["type"], "started", "{started}");
            *session = Some((
                started["recording"].as_str().unwrap().to_owned(),
                started["resumeToken"].as_str().unwrap().to_owned(),
            ));
        }
        Some((id, token)) => {
            let resume = json!({"type": "resume", "recording": id, "resumeToken": token});
            say(socket, resume).await?;
            let resumed = hear(socket).await?;
            assert_eq!(resumed["type"], "resumed", "{resumed}");
            let offset = resumed["offset"].as_u64().unwrap();
            assert!(
                offset >= *acked,
                "{id}: the server resumes at {offset}, but {acked} bytes were acknowledged"
            );
            *acked = offset;
            if resumed["finished"] == true {
                return Ok(());
            }
        }
    }
    while (*acked as usize) < bytes.len() {
        tokio::time::sleep(pace).await;
        let from = *acked as usize;
        let part = &bytes[from..(from + chunk).min(bytes.len())];
        let mut frame = acked.to_be_bytes().to_vec();
        frame.extend_from_slice(part);
        socket
            .send(Message::binary(frame))
            .await
            .map_err(|_| None)?;
        let ack = hear(socket).await?;
        assert_eq!(ack["type"], "ack", "{ack}");
        *acked = ack["offset"].as_u64().unwrap();
    }
    say(socket, json!({"type": "finish", "length": bytes.len()})).await?;
    let finished = hear(socket).await?;
    assert_eq!(finished["type"], "finished", "{finished}");
    Ok(())
}

/// Opens `/v1/stream` through `base`.
async fn open(base: &str) -> Result<Socket, ()> {
    let url = format!("{}/v1/stream", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "pipe.stream.v1".parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
        .map_err(|_| ())
}

async fn say(socket: &mut Socket, message: Value) -> Result<(), Option<u16>> {
    socket
        .send(Message::text(message.to_string()))
        .await
        .map_err(|_| None)
}

/// The next JSON message; `Err` with the close code when the connection ends instead.
async fn hear(socket: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .map_err(|_| None)?;
        match next {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}
