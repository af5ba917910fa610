//! HAProxy (Debian's) in front of several `pipe` nodes on loopback, as an operator runs
//! them: HTTP and WebSocket proxied, nodes health-checked on `/healthz` every 200 ms, and a
//! connection refused by a dead node retried on another.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// How the balancer chooses a node.
#[derive(Clone, Copy, Debug)]
pub enum Spread {
    /// Every connection to the first node while it is up, then to the next: a test knows
    /// which node a client is on.
    FirstUp,
    /// Connections spread over every node that is up, in turn.
    RoundRobin,
}

/// A running HAProxy; stopped when dropped.
pub struct Balancer {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Balancer {
    /// Starts HAProxy on `port` of 127.0.0.1 in front of `nodes`, its configuration and
    /// log under `dir`, and waits until it passes a request to a node.
    pub async fn start(dir: &Path, port: u16, nodes: &[SocketAddr], spread: Spread) -> Self {
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let backup = match spread {
                    Spread::FirstUp if i > 0 => " backup",
                    _ => "",
                };
                format!("    server node{i} {addr} check{backup}\n")
            })
            .collect();
        // `retries` with `redispatch 1`: a connection a node refuses (it was killed, or is
        // draining) is tried on another node at once, before the health check has noticed.
        let config = format!(
            "global\n\
             \x20   maxconn 2000\n\
             defaults\n\
             \x20   mode http\n\
             \x20   timeout connect 1s\n\
             \x20   timeout client 60s\n\
             \x20   timeout server 60s\n\
             \x20   timeout tunnel 10m\n\
             \x20   retries 3\n\
             \x20   option redispatch 1\n\
             frontend pipe\n\
             \x20   bind 127.0.0.1:{port}\n\
             \x20   default_backend nodes\n\
             backend nodes\n\
             \x20   balance roundrobin\n\
             \x20   option httpchk GET /healthz\n\
             \x20   default-server inter 200ms fall 1 rise 2\n\
             {servers}"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let log = dir.join("haproxy.log");
        let out = std::fs::File::create(&log).unwrap();
        let haproxy = std::env::var("PIPE_HAPROXY").unwrap_or_else(|_| "/usr/sbin/haproxy".into());
        let child = Command::new(&haproxy)
            .args(["-db", "-f"])
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{haproxy} starts (cargo xtask test installs it): {e}"));
        let balancer = Self { child, port, log };
        let url = format!("{}/healthz", balancer.url());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "HAProxy reached no node within 20 s:\n{}",
                balancer.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        balancer
    }

    /// The base URL clients use, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// HAProxy's output, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
