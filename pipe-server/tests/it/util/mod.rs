//! Real parts for the end-to-end tests: the `pipe` binary as a child process, a webhook
//! receiver, a TCP proxy that can cut connections, and Chromium driven by Playwright.

pub mod balancer;
pub mod browser;
pub mod media;
pub mod pipe_receiver;
pub mod receiver;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

pub use browser::Driver;
pub use receiver::WebhookReceiver;

/// The secret the test server signs webhooks with.
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pipe serve` as a child process on a fixed port, so it can be killed and restarted
/// where clients expect it.
pub struct PipeServer {
    child: Option<Child>,
    /// The loopback address it listens on (127.0.0.1 unless started with `start_on`).
    pub host: std::net::Ipv4Addr,
    pub port: u16,
    pub data_dir: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
}

impl PipeServer {
    /// Starts `pipe serve` with its data under `dir` and `env` on top of the test defaults.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_on(dir, std::net::Ipv4Addr::LOCALHOST, env).await
    }

    /// [`PipeServer::start`] on another loopback address, such as 127.0.0.2.
    pub async fn start_on(dir: &Path, host: std::net::Ipv4Addr, env: &[(&str, &str)]) -> Self {
        let mut server = Self {
            child: None,
            host,
            port: free_port(),
            data_dir: dir.join("data"),
            log: dir.join("pipe.log"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        server.spawn().await;
        server
    }

    /// The variables it was started with, on top of the test defaults.
    pub fn env(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The base URL, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.host, self.port))
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipe"));
        cmd.arg("serve")
            .env("PIPE_LISTEN", self.addr().to_string())
            .env("PIPE_DATA_DIR", &self.data_dir)
            .env("RUST_LOG", "info,pipe_ingest=debug")
            // The tests' webhook receivers listen on loopback, which the SSRF guard
            // refuses unless it is re-admitted.
            .env("PIPE_WEBHOOK_ALLOW_ADDRESSES", "127.0.0.1")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(cmd.spawn().expect("the pipe binary starts"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.addr()).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "pipe did not listen within 30 s:\n{}",
                self.log_tail()
            );
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("pipe exited at start with {status}:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no graceful anything.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// SIGTERM, then waits for the process to exit; returns whether it exited cleanly.
    pub async fn terminate(&mut self) -> bool {
        let mut child = self.child.take().expect("the server is running");
        let pid = child.id().expect("the server has a pid").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("pipe did not stop within 30 s of SIGTERM")
            .unwrap();
        status.success()
    }

    /// Sends SIGHUP (reload the TLS certificate).
    pub async fn hangup(&self) {
        let pid = self
            .child
            .as_ref()
            .expect("running")
            .id()
            .unwrap()
            .to_string();
        let sent = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success(), "kill -HUP {pid} failed");
    }

    /// Starts the server again on the same port and data dir.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// A TCP proxy on loopback whose open connections can be cut at once, as a network
/// failure would: both sides see their connection drop.
pub struct Proxy {
    pub port: u16,
    cut: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = watch::channel(0u64);
        let generation = cut.subscribe();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut generation = generation.clone();
                generation.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = generation.changed() => {}
                    }
                });
            }
        });
        Self { port, cut }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Drops every connection open now; new ones go through.
    pub fn cut(&self) {
        self.cut.send_modify(|g| *g += 1);
    }
}

/// Polls `check` until it gives `Some` or `limit` passes.
pub async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every file under `dir`, at any depth (none if `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// A sink URL of `s3`'s bucket under `folder`, its secret named `PIPE_TEST_S3_SECRET`
/// (which [`s3_env`] sets), for `PIPE_SINKS` or `PIPE_BACKUP_DESTINATIONS`.
pub fn s3_url(s3: &pipe_storage::testing::S3TestServer, folder: &str) -> String {
    use pipe_storage::testing::S3TestServer;
    format!(
        "s3://{}/{folder}?endpoint={}&access_key_id={}&secret_key_from=PIPE_TEST_S3_SECRET",
        S3TestServer::BUCKET,
        s3.endpoint(),
        S3TestServer::ACCESS_KEY,
    )
}

/// The variable [`s3_url`]'s secret is read from, with its value.
pub fn s3_env() -> (&'static str, &'static str) {
    (
        "PIPE_TEST_S3_SECRET",
        pipe_storage::testing::S3TestServer::SECRET_KEY,
    )
}
