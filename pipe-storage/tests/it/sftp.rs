//! The SFTP sink against OpenSSH's `sshd` (its `internal-sftp`) on loopback, logging in
//! with a key and pinning the server's host key.

use pipe_core::{ObjectKey, PutBody, PutOptions, SinkKind, StorageSink};
use pipe_storage::SftpSink;
use pipe_storage::testing::SftpTestServer;

use crate::{files_under, pattern};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_sink_conforms_and_leaves_no_temporary_file() {
    let server = SftpTestServer::start();
    let sink = SftpSink::new(server.config(), SinkKind::Sftp).unwrap();
    assert_eq!(sink.kind(), SinkKind::Sftp);
    pipe_core::conformance::sink::run_all(&sink).await;
    let left: Vec<_> = files_under(&server.files_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// A put lands whole under the folder, in directories it makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_land_whole_under_the_folder() {
    let server = SftpTestServer::start();
    let sink = SftpSink::new(server.config(), SinkKind::Sftp).unwrap();
    let key = ObjectKey::new("abc/abc.mp4").unwrap();
    let data = pattern(11, 3 * 1024 * 1024 + 7);
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
        std::fs::read(server.files_dir().join("abc/abc.mp4")).unwrap(),
        data
    );
}

/// A server whose host key is not the pinned one is refused before anything is sent,
/// and the refusal says so; so is a key the server does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_host_key_and_an_unknown_user_key_are_refused() {
    let server = SftpTestServer::start();
    let key = ObjectKey::new("abc.jpg").unwrap();

    let mut config = server.config();
    config.host_key = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    let error = SftpSink::new(config, SinkKind::Sftp)
        .unwrap()
        .put(&key, PutBody::from_bytes("jpeg"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(
        error.to_string().contains(server.host_key()),
        "the error does not name the key it saw: {error}"
    );

    let stranger = SftpTestServer::start();
    let mut config = server.config();
    config.auth = stranger.config().auth;
    let error = SftpSink::new(config, SinkKind::Sftp)
        .unwrap()
        .put(&key, PutBody::from_bytes("jpeg"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(!error.is_retryable());
    assert!(files_under(&server.files_dir()).is_empty());
}

/// A password login (a local user's, as sshd checks it): the conformance suite passes; a
/// wrong password is refused as permission, not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_login_works_and_a_wrong_one_is_refused() {
    let server = SftpTestServer::start();
    let sink = SftpSink::new(server.password_config(), SinkKind::Sftp).unwrap();
    pipe_core::conformance::sink::run_all(&sink).await;

    let mut config = server.password_config();
    config.auth = pipe_storage::SftpAuth::Password("not-the-password".into());
    let error = SftpSink::new(config, SinkKind::Sftp)
        .unwrap()
        .put(
            &ObjectKey::new("abc.jpg").unwrap(),
            PutBody::from_bytes("jpeg"),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(!error.is_retryable());
}
