//! A real HTTP receiver on loopback that records every request and answers by path:
//!
//! - `/status/{code}`: answers `code`;
//! - `/redirect`: answers `302 Found` to `/landed`;
//! - `/redirect-to/{host:port}`: answers `302 Found` to `http://{host:port}/landed`;
//! - `/slow`: answers 200 after 5 s;
//! - `/busy`: answers `503` with `Retry-After: 120`;
//! - anything else: `200 OK`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

/// The receiver; stops when dropped.
pub struct Receiver {
    base: String,
    log: Log,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let log = Log::default();
        let app = Router::new().fallback(record).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, log, server }
    }

    /// The full URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `127.0.0.1:port`, as errors name this receiver.
    pub fn host(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    log.lock().unwrap().push(Received {
        method,
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or("<not UTF-8>").to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    });
    if let Some(code) = path.strip_prefix("/status/") {
        return StatusCode::from_u16(code.parse().unwrap())
            .unwrap()
            .into_response();
    }
    if let Some(authority) = path.strip_prefix("/redirect-to/") {
        let location = format!("http://{authority}/landed");
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    match path.as_str() {
        "/redirect" => (StatusCode::FOUND, [(header::LOCATION, "/landed")]).into_response(),
        "/busy" => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "120")],
        )
            .into_response(),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

/// A listener that answers nothing and counts the connections it gets: where a request
/// must never arrive.
pub struct Tripwire {
    addr: std::net::SocketAddr,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Tripwire {
    /// Listens on `ip`, any port.
    pub async fn on(ip: &str) -> Self {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(socket);
            }
        });
        Self {
            addr,
            connections,
            server,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.server.abort();
    }
}
