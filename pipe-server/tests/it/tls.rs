//! HTTPS and WSS from the server itself, with certificates the test makes with OpenSSL:
//! a browser recording end to end, TLS 1.1 refused, a certificate reloaded on SIGHUP
//! while a stream stays open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::pem::PemObject};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::util::{Driver, PipeServer, eventually};

/// A self-signed certificate for `localhost` and 127.0.0.1, and its key.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// The base64 SHA-256 of the certificate's public key, as Chromium's SPKI list takes it.
fn spki(cert: &Path) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | base64",
            cert.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An HTTPS client that trusts `cert` alone.
fn client(cert: &Path) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap()
}

/// Whether OpenSSL completes a handshake with `version` (`-tls1_1`, `-tls1_2`, …).
async fn handshake(server: &PipeServer, version: &str) -> bool {
    let out = tokio::process::Command::new("openssl")
        .args(["s_client", version, "-cipher", "DEFAULT:@SECLEVEL=0"])
        .args(["-connect", &format!("127.0.0.1:{}", server.port)])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && !text.contains("Cipher is (NONE)")
}

type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A WSS connection to `/v1/stream`, trusting `cert` alone.
async fn wss(server: &PipeServer, cert: &Path) -> Wss {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let mut request = format!("wss://localhost:{}/v1/stream", server.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "pipe.stream.v1".parse().unwrap());
    tokio_tungstenite::client_async(request, tls)
        .await
        .unwrap()
        .0
}

async fn next_json(socket: &mut Wss) -> Value {
    match tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("unexpected {other:?}"),
    }
}

async fn chunk(socket: &mut Wss, offset: u64, bytes: &[u8]) -> Value {
    let mut frame = offset.to_be_bytes().to_vec();
    frame.extend_from_slice(bytes);
    socket.send(Message::binary(frame)).await.unwrap();
    next_json(socket).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_3_and_1_2_only_and_a_new_certificate_on_sighup_keeps_open_streams() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "live");
    let old = dir.path().join("old.crt");
    std::fs::copy(&cert, &old).unwrap();
    let server = PipeServer::start(
        dir.path(),
        &[
            ("PIPE_TLS_CERT", cert.to_str().unwrap()),
            ("PIPE_TLS_KEY", key.to_str().unwrap()),
        ],
    )
    .await;
    let base = format!("https://localhost:{}", server.port);

    let health = client(&old)
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert!(
        reqwest::get(format!("http://127.0.0.1:{}/healthz", server.port))
            .await
            .is_err(),
        "plain HTTP answered on the TLS port"
    );

    assert!(handshake(&server, "-tls1_3").await, "TLS 1.3 refused");
    assert!(handshake(&server, "-tls1_2").await, "TLS 1.2 refused");
    assert!(!handshake(&server, "-tls1_1").await, "TLS 1.1 accepted");

    // A stream opens under the first certificate…
    let mut stream = wss(&server, &old).await;
    stream
        .send(Message::text(json!({"type": "start"}).to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut stream).await["type"], "started");
    assert_eq!(chunk(&mut stream, 0, b"first").await["offset"], 5);

    // …the certificate is replaced and the server told…
    let (new_cert, new_key) = certificate(dir.path(), "next");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    server.hangup().await;
    eventually(Duration::from_secs(10), "the new certificate", async || {
        client(&new_cert)
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok()
            .then_some(())
    })
    .await;
    assert!(
        client(&old)
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "new handshakes still get the old certificate"
    );

    // …and the stream opened before goes on.
    assert_eq!(chunk(&mut stream, 5, b"second").await["offset"], 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_records_over_https_and_wss() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "server");
    let server = PipeServer::start(
        dir.path(),
        &[
            ("PIPE_TLS_CERT", cert.to_str().unwrap()),
            ("PIPE_TLS_KEY", key.to_str().unwrap()),
        ],
    )
    .await;
    let page = format!("https://127.0.0.1:{}/", server.port);
    let done = Driver::record_trusting(&page, 3, &spki(&cert)).done().await;
    assert!(done["length"].as_u64().unwrap() > 0);

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipe"))
        .args(["keys", "create", "--role", "viewer"])
        .env("PIPE_DATA_DIR", &server.data_dir)
        .output()
        .await
        .unwrap();
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let https = client(&cert);
    let id = done["recordingId"].as_str().unwrap();
    let recording = eventually(
        Duration::from_secs(60),
        "the recording to be copied",
        async || {
            let body: Value = https
                .get(format!("{page}v1/recordings/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body["state"] == "copied").then_some(body)
        },
    )
    .await;
    let mp4 = crate::api::mp4_url(&recording);
    assert!(mp4.starts_with("https://"), "{mp4}");
    let bytes = https.get(&mp4).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"ftyp");
}
