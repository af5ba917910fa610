//! The HTTP listener: hyper's HTTP/1 connection, driven by our own accept loop so that a
//! client cannot hold the server with connections that do nothing.
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never runs there and an
//! idle or trickling connection stays open for ever: 1,100 idle TCP connections made the
//! server unreachable. Here:
//!
//! - each connection has [`Limits::header_read`] to send a whole request head, counted
//!   from when hyper waits for one, so it also bounds a keep-alive connection's idle time
//!   between requests (hyper closes it);
//! - at most [`Limits::max_connections`] connections are open before their upgrade (the
//!   streaming connections then hold the ingest's own permits); past it the loop stops
//!   accepting, and new clients wait in the kernel's queue until one closes, instead of
//!   the process running out of file descriptors;
//! - WebSocket upgrades and graceful shutdown work as under `axum::serve`: on shutdown
//!   the loop stops accepting and waits for the connections it served to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// What the listener allows each client.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections open at once, not counting upgraded streams.
    pub max_connections: usize,
    /// Time to send a request head, and the longest idle time between requests.
    pub header_read: Duration,
}

/// File descriptors the process keeps for everything but HTTP connections: the catalog,
/// the spool, sinks, webhooks, logs.
const RESERVED_FILES: u64 = 256;

impl Limits {
    /// `max_connections` lowered, if need be, so that these connections and `streams`
    /// upgraded ones fit under the process's open-file limit (raised to its hard limit
    /// first), with [`RESERVED_FILES`] to spare.
    pub fn fitted(self, streams: usize) -> Self {
        let files = raise_file_limit();
        let room = files
            .saturating_sub(RESERVED_FILES + streams as u64)
            .max(16);
        let max = usize::try_from(room).unwrap_or(usize::MAX);
        if max < self.max_connections {
            tracing::warn!(
                open_files = files,
                streams,
                max_connections = max,
                "the open-file limit allows fewer HTTP connections than configured"
            );
        }
        Self {
            max_connections: self.max_connections.min(max),
            ..self
        }
    }
}

/// Raises the soft open-file limit to the hard one; the limit then in force.
fn raise_file_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes, then waits for
/// the connections being served. Each request carries the peer's address as
/// [`ConnectInfo<SocketAddr>`], as `into_make_service_with_connect_info` gives it.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let max = limits
        .max_connections
        .min(Semaphore::MAX_PERMITS)
        .min(u32::MAX as usize);
    let permits = Arc::new(Semaphore::new(max));
    let (stop, stopping) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => {
                permit.expect("the connection semaphore is never closed")
            }
            () = &mut shutdown => break,
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let connection = http
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = async { drop(stopping.wait_for(|stop| *stop).await) } => {
                    // The request in flight is answered; then the connection closes.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    stop.send_replace(true);
    // Every permit back: every connection served has ended (or was upgraded).
    let _ = permits.acquire_many(max as u32).await;
}
