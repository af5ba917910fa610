//! The FTPS sink against vsftpd with TLS on loopback: logging in with a password over
//! explicit TLS, the server's certificate checked against the CA made for it.

use pipe_core::{Error, GetOptions, ObjectKey, PutBody, PutOptions, SinkKind, StorageSink};
use pipe_storage::FtpsSink;
use pipe_storage::testing::FtpsTestServer;

use crate::{files_under, pattern};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftps_sink_conforms_and_leaves_no_temporary_file() {
    let server = FtpsTestServer::start();
    let sink = FtpsSink::new(server.config(), SinkKind::Ftp).unwrap();
    assert_eq!(sink.kind(), SinkKind::Ftp);
    pipe_core::conformance::sink::run_all(&sink).await;
    let left: Vec<_> = files_under(&server.files_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// A put lands whole under the folder, in directories it makes; a range reads back
/// exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_land_whole_under_the_folder() {
    let server = FtpsTestServer::start();
    let sink = FtpsSink::new(
        server.config().with_folder("recordings/2026"),
        SinkKind::Ftp,
    )
    .unwrap();
    let key = ObjectKey::new("abc/abc.mp4").unwrap();
    let data = pattern(5, 3 * 1024 * 1024 + 7);
    let receipt = sink
        .put(
            &key,
            PutBody::from_bytes(data.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(receipt.size, data.len() as u64);
    assert_eq!(
        std::fs::read(server.files_dir().join("recordings/2026/abc/abc.mp4")).unwrap(),
        data
    );
    let middle = sink
        .get(&key, GetOptions::default().with_range(1_000_000..1_000_100))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(middle, data.slice(1_000_000..1_000_100));
}

/// A wrong password is refused as permission, not retried; a server whose certificate is
/// not of the pinned CA is refused before the password is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_and_a_foreign_certificate_are_refused() {
    let server = FtpsTestServer::start();
    let key = ObjectKey::new("abc.jpg").unwrap();

    let mut config = server.config();
    config.password = "not-the-password".into();
    let error = FtpsSink::new(config, SinkKind::Ftp)
        .unwrap()
        .put(&key, PutBody::from_bytes("jpeg"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(!error.is_retryable());

    let other = FtpsTestServer::start();
    let config = server.config().with_ca_pem(other.ca_pem());
    let error = FtpsSink::new(config, SinkKind::Ftp)
        .unwrap()
        .put(&key, PutBody::from_bytes("jpeg"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(error.to_string().contains("certificate"), "{error}");
    assert!(files_under(&server.files_dir()).is_empty());
}

/// A drop folder that refuses downloads: the sink says it cannot read, the suite's
/// writes still hold, and a read is `NotSupported` rather than a confusing 550.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_only_folder_takes_files_and_says_it_cannot_read() {
    let server = FtpsTestServer::start_write_only();
    let sink = FtpsSink::new(server.config().write_only(), SinkKind::Ftp).unwrap();
    assert!(!sink.capabilities().read);
    pipe_core::conformance::sink::run_all(&sink).await;
    let key = ObjectKey::new("drop/abc.mp4").unwrap();
    let data = pattern(0, 100_000);
    sink.put(
        &key,
        PutBody::from_bytes(data.clone()),
        PutOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(server.files_dir().join("drop/abc.mp4")).unwrap(),
        data
    );
    let error = sink.get(&key, GetOptions::default()).await.unwrap_err();
    assert!(matches!(error, Error::NotSupported { .. }), "{error:?}");
}

/// A stopped server is a transient error; after it is back, the same put succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_transient() {
    let mut server = FtpsTestServer::start();
    let sink = FtpsSink::new(server.config(), SinkKind::Ftp).unwrap();
    let key = ObjectKey::new("abc/abc.jpg").unwrap();
    server.stop();
    let error = sink
        .put(&key, PutBody::from_bytes("jpeg"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    server.restart();
    sink.put(&key, PutBody::from_bytes("jpeg"), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(server.files_dir().join("abc/abc.jpg")).unwrap(),
        b"jpeg"
    );
}
