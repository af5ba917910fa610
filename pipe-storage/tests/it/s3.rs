//! The S3 sink against a real S3 server on loopback: `s3s-fs`, which checks SigV4
//! signatures and `x-amz-checksum-*` headers and keeps objects (and the parts of uploads
//! in progress) as files under its root, so the tests can look at what it holds.
//!
//! `cargo xtask test` installs `s3s-fs`; `PIPE_S3S_FS` names another binary.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipe_core::{ObjectKey, PutBody, PutOptions, SinkKind, StorageSink};
use pipe_storage::{ObjectStoreSink, ObjectStoreSinkConfig, S3Config};

use crate::pattern;

const ACCESS_KEY: &str = "pipe-test-access-key";
const SECRET_KEY: &str = "pipe-test-secret-key-0123456789";
const BUCKET: &str = "recordings";

/// An `s3s-fs` process serving a temporary directory on a free loopback port; killed
/// when dropped.
struct S3Server {
    child: Child,
    root: tempfile::TempDir,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `s3s-fs` binary: `PIPE_S3S_FS`, else on the `PATH`, else in cargo's `bin`.
fn s3s_fs() -> PathBuf {
    if let Some(path) = std::env::var_os("PIPE_S3S_FS") {
        return path.into();
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin"));
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_bin)
        .map(|dir| dir.join("s3s-fs"))
        .find(|candidate| candidate.is_file())
        .expect("s3s-fs is not installed: `cargo xtask test` installs it (or set PIPE_S3S_FS)")
}

impl S3Server {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(s3s_fs())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            root,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    fn config(&self) -> S3Config {
        S3Config::new(BUCKET, "us-east-1")
            .with_endpoint(&self.endpoint)
            .with_credentials(ACCESS_KEY, SECRET_KEY)
    }

    /// Files of uploads begun and neither completed nor aborted.
    fn uploads_in_progress(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".upload"))
            .collect()
    }
}

/// The conformance suite, with 5 MiB parts (S3's least) so that its large bodies go up as
/// multipart uploads, including the ones that fail and must be aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_sink_conforms_and_leaves_no_upload_behind() {
    let server = S3Server::start();
    let sink = ObjectStoreSink::s3_with_config(
        &server.config(),
        ObjectStoreSinkConfig::new(SinkKind::S3)
            .with_part_size(5 * 1024 * 1024)
            .with_max_concurrency(2),
    )
    .unwrap();
    assert_eq!(sink.kind(), SinkKind::S3);
    pipe_core::conformance::sink::run_all(&sink).await;
    assert_eq!(
        server.uploads_in_progress(),
        Vec::<String>::new(),
        "a multipart upload was left behind"
    );
}

/// Objects land under the folder, whole, with their content type; a 12 MiB body goes up
/// in parts, each checked by the server against its SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_land_under_the_folder_whole() {
    let server = S3Server::start();
    let sink = ObjectStoreSink::s3_with_config(
        &server.config().with_folder("/pipe/production/"),
        ObjectStoreSinkConfig::new(SinkKind::S3).with_part_size(5 * 1024 * 1024),
    )
    .unwrap();
    let key = ObjectKey::new("abc/abc.mp4").unwrap();
    let data = pattern(7, 12 * 1024 * 1024 + 5);
    let receipt = sink
        .put(
            &key,
            PutBody::from_bytes(data.clone()),
            PutOptions::default().with_content_type("video/mp4"),
        )
        .await
        .unwrap();
    assert_eq!(receipt.size, data.len() as u64);
    let stored = server
        .root
        .path()
        .join(BUCKET)
        .join("pipe/production/abc/abc.mp4");
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        data,
        "{}",
        stored.display()
    );
    let head = sink.head(&key).await.unwrap();
    assert_eq!(head.size, data.len() as u64);
}

/// A wrong secret is a permanent error: the copy job gives up and tells the operator,
/// rather than retrying for hours. (A missing bucket cannot be shown here: s3s-fs makes
/// one on the first put, where S3 answers `NoSuchBucket`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_permanent() {
    let server = S3Server::start();
    let key = ObjectKey::new("abc/abc.jpg").unwrap();
    let wrong_secret = S3Config::new(BUCKET, "us-east-1")
        .with_endpoint(&server.endpoint)
        .with_credentials(ACCESS_KEY, "not-the-secret");
    let sink = ObjectStoreSink::s3(&wrong_secret, SinkKind::S3).unwrap();
    let error = sink
        .put(&key, PutBody::from_bytes("jpeg"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(
        !error.is_retryable(),
        "a wrong secret was retryable: {error}"
    );
    assert!(
        !server.root.path().join(BUCKET).join("abc").exists(),
        "a put with a wrong secret stored something"
    );
}
