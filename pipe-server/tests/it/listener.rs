//! The HTTP listener under clients that hold connections and do nothing with them: they
//! are closed after the header timeout, at most `PIPE_MAX_CONNECTIONS` of them are open at
//! once, and the server stays reachable throughout.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::util::PipeServer;

/// Whether the server closed `socket` within `limit` (reading gives end of file or an
/// error), reading and dropping whatever it sent before.
async fn closed_within(socket: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read).await.is_ok()
}

async fn healthz(server: &PipeServer) -> reqwest::StatusCode {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .expect("the server answered while idle connections were held")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_cannot_make_the_server_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let server = PipeServer::start(
        dir.path(),
        &[
            ("PIPE_HEADER_TIMEOUT_SECS", "2"),
            ("PIPE_MAX_CONNECTIONS", "32"),
        ],
    )
    .await;

    // Five times the cap of connections that never send a byte.
    let mut idle = Vec::new();
    for _ in 0..160 {
        idle.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    // A new client is answered: the idle ones are closed after the header timeout, so the
    // ones waiting behind the cap get their turn.
    assert_eq!(healthz(&server).await, reqwest::StatusCode::OK);
    for (i, socket) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(socket, Duration::from_secs(30)).await,
            "idle connection {i} is still open"
        );
    }

    // A client that trickles its request head a byte at a time is cut off as well.
    let mut slow = TcpStream::connect(server.addr()).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let trickle = async {
        for _ in 0..40 {
            if slow.write_all(b"X").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        false
    };
    let cut = trickle.await || closed_within(&mut slow, Duration::from_secs(1)).await;
    assert!(cut, "a request head trickled for 10 s was still being read");

    // A keep-alive connection that goes quiet after its request is closed too.
    let mut kept = TcpStream::connect(server.addr()).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: pipe\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    kept.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut kept, Duration::from_secs(15)).await,
        "an idle keep-alive connection stayed open"
    );
    assert_eq!(healthz(&server).await, reqwest::StatusCode::OK);
}
