//! The ingest in-process over a real SQLite catalog and a real spool, with short limits,
//! so that timeouts and caps can be seen to hold without waiting for the defaults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use pipe_ingest::{Ingest, IngestConfig};
use tokio_tungstenite::tungstenite::{self, Message};

struct Harness {
    _dir: tempfile::TempDir,
    url: String,
}

async fn serve(config: IngestConfig) -> Harness {
    serve_in(config, None).await
}

/// [`serve`] with a `production` environment of these settings.
async fn serve_in(
    config: IngestConfig,
    settings: Option<pipe_core::EnvironmentSettings>,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let catalog = pipe_lifecycle::SqliteCatalog::open(dir.path().join("catalog.sqlite"))
        .await
        .unwrap();
    let catalog = Arc::new(catalog);
    let spool = pipe_storage::LocalSpool::open(dir.path().join("spool"))
        .await
        .unwrap();
    let mut builder =
        Ingest::builder(catalog.clone(), Arc::new(spool), b"test secret".to_vec()).config(config);
    if let Some(settings) = settings {
        use pipe_core::EnvironmentStore as _;
        catalog
            .create_environment(
                pipe_core::NewEnvironment::new(pipe_core::EnvironmentId::default())
                    .with_settings(settings),
            )
            .await
            .unwrap();
        builder = builder.environments(catalog);
    }
    let ingest = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/stream", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, ingest.router::<()>()).await.unwrap() });
    Harness { _dir: dir, url }
}

#[tokio::test]
async fn pings_do_not_hold_a_connection_open_without_a_recording() {
    let h = serve(
        IngestConfig::default().with_timeouts(Duration::from_millis(500), Duration::from_secs(1)),
    )
    .await;
    let (socket, _) = tokio_tungstenite::connect_async(&h.url).await.unwrap();
    let (mut write, mut read) = socket.split();
    let started = Instant::now();
    let pinger = tokio::spawn(async move {
        loop {
            if write.send(Message::Ping(Vec::new().into())).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(5), read.next())
            .await
            .expect("closed within 5 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    pinger.abort();
    assert_eq!(code, 4408);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "pings extended the start timeout"
    );
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_before_the_upgrade() {
    let h = serve(IngestConfig::default().with_max_connections(2)).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let (mut socket, _) = tokio_tungstenite::connect_async(&h.url).await.unwrap();
        socket
            .send(Message::text(r#"{"type":"start"}"#))
            .await
            .unwrap();
        assert!(matches!(socket.next().await, Some(Ok(Message::Text(_)))));
        open.push(socket);
    }
    match tokio_tungstenite::connect_async(&h.url).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 503),
        other => panic!(
            "a third connection was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    // Room again once one closes.
    let mut first = open.remove(0);
    first.close(None).await.unwrap();
    // The server answers the client's close: the handshake completes, no reset.
    while let Some(message) = first.next().await {
        assert!(
            message.is_ok(),
            "the close handshake did not complete: {message:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio_tungstenite::connect_async(&h.url).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_arriving_at_once_never_overshoot_the_cap() {
    const CAP: usize = 4;
    let h = serve(IngestConfig::default().with_max_connections(CAP)).await;
    // Forty connections at once: each holds its socket open until all have tried.
    let attempts: Vec<_> = (0..40)
        .map(|_| {
            let url = h.url.clone();
            tokio::spawn(async move { tokio_tungstenite::connect_async(&url).await })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok((socket, _)) => admitted.push(socket),
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 503);
                refused += 1;
            }
            Err(e) => panic!("neither admitted nor refused: {e}"),
        }
    }
    assert!(
        admitted.len() <= CAP,
        "{} connections admitted under a cap of {CAP}",
        admitted.len()
    );
    assert_eq!(admitted.len() + refused, 40);
}

#[tokio::test]
async fn chunks_that_add_nothing_do_not_hold_a_connection_open() {
    let h = serve(
        IngestConfig::default().with_timeouts(Duration::from_secs(5), Duration::from_secs(1)),
    )
    .await;
    let (mut socket, _) = tokio_tungstenite::connect_async(&h.url).await.unwrap();
    socket
        .send(Message::text(r#"{"type":"start"}"#))
        .await
        .unwrap();
    assert!(matches!(socket.next().await, Some(Ok(Message::Text(_)))));
    let started = Instant::now();
    // An empty chunk at offset 0, ten times a second: acknowledged, but no progress.
    let code = loop {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "empty chunks held the connection open past its idle timeout"
        );
        socket
            .send(Message::binary(0u64.to_be_bytes().to_vec()))
            .await
            .ok();
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("an answer within 5 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(Message::Text(_))) => {}
            other => panic!("no close frame: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(code, 4408);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "empty chunks extended the idle timeout"
    );
}

#[tokio::test]
async fn a_stream_going_on_past_its_maximum_recording_time_is_finished() {
    let mut settings = pipe_core::EnvironmentSettings::default();
    settings.max_recording_secs = Some(1);
    let h = serve_in(
        IngestConfig::default().with_max_duration_grace(Duration::from_secs(1)),
        Some(settings),
    )
    .await;
    let (mut socket, _) = tokio_tungstenite::connect_async(&h.url).await.unwrap();
    socket
        .send(Message::text(r#"{"type":"start"}"#))
        .await
        .unwrap();
    let started = next_json(&mut socket).await;
    assert_eq!(started["maxDurationMs"], 1000, "{started}");
    // A recorder that ignores the limit and sends a chunk every 200 ms.
    let mut offset = 0u64;
    let finished = loop {
        let mut frame = offset.to_be_bytes().to_vec();
        frame.extend_from_slice(&[7u8; 1000]);
        socket.send(Message::binary(frame)).await.unwrap();
        let reply = next_json(&mut socket).await;
        if reply["type"] == "finished" {
            break reply;
        }
        assert_eq!(reply["type"], "ack", "{reply}");
        offset += 1000;
        assert!(offset < 100_000, "never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Everything sent is kept (the conversion cuts at the limit), and the stream ends.
    assert_eq!(finished["length"], offset + 1000, "{finished}");
    assert!(
        offset >= 8000,
        "finished before limit and grace: {offset} bytes"
    );
    match socket.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("no close: {other:?}"),
    }
}

/// The next text message as JSON.
async fn next_json(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer within 10 s")
        {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(text.as_str()).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
