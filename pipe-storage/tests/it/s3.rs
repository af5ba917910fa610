//! The S3 sink against a real S3 server on loopback: `s3s-fs`, which checks SigV4
//! signatures and `x-amz-checksum-*` headers and keeps objects (and the parts of uploads
//! in progress) as files under its root, so the tests can look at what it holds.
//!
//! `cargo xtask test` installs `s3s-fs`; `PIPE_S3S_FS` names another binary.

use std::time::Duration;

use pipe_core::{ObjectKey, PutBody, PutOptions, SinkKind, StorageSink, UrlOptions};
use pipe_storage::testing::S3TestServer;
use pipe_storage::{ObjectStoreSink, ObjectStoreSinkConfig, S3Config};

use crate::pattern;

/// The conformance suite, with 5 MiB parts (S3's least) so that its large bodies go up as
/// multipart uploads, including the ones that fail and must be aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_sink_conforms_and_leaves_no_upload_behind() {
    let server = S3TestServer::start();
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
    let server = S3TestServer::start();
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
    let stored = server.bucket_dir().join("pipe/production/abc/abc.mp4");
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        data,
        "{}",
        stored.display()
    );
    let head = sink.head(&key).await.unwrap();
    assert_eq!(head.size, data.len() as u64);

    // A presigned link to it, capped at the 7 days SigV4 allows.
    let url = sink
        .url(
            &key,
            UrlOptions::default().with_expires_in(Duration::from_secs(30 * 24 * 3600)),
        )
        .await
        .unwrap()
        .expect("the S3 sink makes links");
    assert!(
        url.starts_with(&format!(
            "{}/{}/pipe/production/abc/abc.mp4?",
            server.endpoint(),
            S3TestServer::BUCKET
        )),
        "{url}"
    );
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(url.contains("X-Amz-Expires=604800"), "{url}");
}

/// A wrong secret is `PermissionDenied`, never retried: the copy job gives up and tells the operator,
/// rather than retrying for hours. (A missing bucket cannot be shown here: s3s-fs makes
/// one on the first put, where S3 answers `NoSuchBucket`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_permanent() {
    let server = S3TestServer::start();
    let key = ObjectKey::new("abc/abc.jpg").unwrap();
    let wrong_secret = S3Config::new(S3TestServer::BUCKET, "us-east-1")
        .with_endpoint(server.endpoint())
        .with_credentials(S3TestServer::ACCESS_KEY, "not-the-secret");
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
        error.is_permission_denied(),
        "a wrong secret is not said to be one: {error:?}"
    );
    assert!(
        !server.bucket_dir().join("abc").exists(),
        "a put with a wrong secret stored something"
    );
}
