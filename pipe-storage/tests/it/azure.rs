//! The Azure sink against Azurite (Microsoft's emulator of Blob Storage) on loopback.

use pipe_core::{ObjectKey, PutBody, PutOptions, SinkKind, StorageSink};
use pipe_storage::testing::AzureTestServer;
use pipe_storage::{ObjectStoreSink, ObjectStoreSinkConfig};

use crate::pattern;

/// The conformance suite, with 5 MiB parts so that its large bodies go up as blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_sink_conforms() {
    let server = AzureTestServer::start();
    let sink = ObjectStoreSink::azure_with_config(
        &server.config(),
        ObjectStoreSinkConfig::new(SinkKind::Azure)
            .with_part_size(5 * 1024 * 1024)
            .with_max_concurrency(2),
    )
    .unwrap();
    assert_eq!(sink.kind(), SinkKind::Azure);
    pipe_core::conformance::sink::run_all(&sink).await;
}

/// A wrong key is `PermissionDenied`; the right one stores under the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_and_the_right_one_stores_under_the_folder() {
    let server = AzureTestServer::start();
    let key = ObjectKey::new("abc.mp4").unwrap();
    let wrong = ObjectStoreSink::azure(
        &server
            .config()
            .with_access_key("bm90IHRoZSBrZXkgbm90IHRoZSBrZXkgbm90IHRoZSBrZXk="),
        SinkKind::Azure,
    )
    .unwrap();
    let error = wrong
        .put(&key, PutBody::from_bytes("mp4"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(error.is_permission_denied(), "{error:?}");

    let sink =
        ObjectStoreSink::azure(&server.config().with_folder("pipe"), SinkKind::Azure).unwrap();
    let data = pattern(5, 1024 * 1024 + 3);
    sink.put(
        &key,
        PutBody::from_bytes(data.clone()),
        PutOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(sink.head(&key).await.unwrap().size, data.len() as u64);
    let flat = ObjectStoreSink::azure(&server.config(), SinkKind::Azure).unwrap();
    let nested = ObjectKey::new("pipe/abc.mp4").unwrap();
    assert_eq!(flat.head(&nested).await.unwrap().size, data.len() as u64);
}

/// A container that does not exist is a put's `NotFound` that says the container is
/// missing (not the object), and is not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_container_says_so() {
    let server = AzureTestServer::start();
    let mut config = server.config();
    config.container = "no-such-container".into();
    let sink = ObjectStoreSink::azure(&config, SinkKind::Azure).unwrap();
    let error = sink
        .put(
            &ObjectKey::new("abc.mp4").unwrap(),
            PutBody::from_bytes("mp4"),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("bucket or container"),
        "the error does not say what is missing: {error}"
    );
}
