use std::io::Write;
use std::path::Path;

use futures::StreamExt;
use pipe_core::{Error, GetOptions, ObjectKey, PutBody, PutOptions, SinkKind, StorageSink};
use pipe_storage::{ObjectStoreSink, ObjectStoreSinkConfig, file_body, put_file};
use sha2::{Digest, Sha256};

use crate::pattern;

#[tokio::test]
async fn local_sink_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::local(dir.path().join("objects"), SinkKind::Local).unwrap();
    assert_eq!(sink.kind(), SinkKind::Local);
    pipe_core::conformance::sink::run_all(&sink).await;
    assert_no_staged_uploads(dir.path());
}

/// With 1 MiB parts every body past 1 MiB goes through a multipart upload with parts in
/// flight at once, including the failing and aborted ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_sink_conforms_with_multipart_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let config = ObjectStoreSinkConfig::new(SinkKind::PipeStorage)
        .with_part_size(1024 * 1024)
        .with_max_concurrency(3);
    let sink = ObjectStoreSink::local_with_config(dir.path(), config).unwrap();
    pipe_core::conformance::sink::run_all(&sink).await;
    assert_no_staged_uploads(dir.path());
}

#[tokio::test]
async fn put_file_streams_a_file_and_reports_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::local(dir.path().join("objects"), SinkKind::Local).unwrap();
    let data = pattern(0, 5 * 1024 * 1024 + 3);
    let path = dir.path().join("clip.webm");
    std::fs::write(&path, &data).unwrap();

    let key = ObjectKey::new("rec/clip.webm").unwrap();
    let receipt = put_file(
        &sink,
        &key,
        &path,
        PutOptions::default().with_content_type("video/webm"),
    )
    .await
    .unwrap();
    assert_eq!(receipt.size, data.len() as u64);
    assert_eq!(receipt.sha256, hex::encode(Sha256::digest(&data)));
    assert_eq!(
        std::fs::read(dir.path().join("objects/rec/clip.webm")).unwrap(),
        data
    );
    let meta = sink.head(&key).await.unwrap();
    assert_eq!(
        (meta.size, meta.content_type),
        (data.len() as u64, None),
        "the local sink keeps no content type"
    );
}

#[tokio::test]
async fn a_file_that_grows_while_streamed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::local(dir.path().join("objects"), SinkKind::Local).unwrap();
    let path = dir.path().join("growing.webm");
    std::fs::write(&path, pattern(0, 1000)).unwrap();

    let body = file_body(&path).await.unwrap();
    assert_eq!(body.size, 1000);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"late bytes")
        .unwrap();
    let key = ObjectKey::new("rec/growing.webm").unwrap();
    let err = sink
        .put(&key, body, PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Integrity { .. }), "{err:?}");
    assert!(sink.head(&key).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn a_missing_file_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = file_body(dir.path().join("nope.mp4")).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn a_put_is_durable_and_visible_to_a_new_sink_on_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let key = ObjectKey::new("a/b/c.bin").unwrap();
    {
        let sink = ObjectStoreSink::local(dir.path(), SinkKind::Local).unwrap();
        sink.put(
            &key,
            PutBody::from_bytes(pattern(3, 4096)),
            PutOptions::default(),
        )
        .await
        .unwrap();
    }
    let sink = ObjectStoreSink::local(dir.path(), SinkKind::Local).unwrap();
    let got = sink
        .get(&key, GetOptions::default().with_range(4000..5000))
        .await
        .unwrap();
    assert_eq!(got.range, 4000..4096);
    let mut stream = got.stream;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes, pattern(3, 4096)[4000..]);
}

#[tokio::test]
async fn an_empty_or_inverted_range_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ObjectStoreSink::local(dir.path(), SinkKind::Local).unwrap();
    let key = ObjectKey::new("r.bin").unwrap();
    sink.put(
        &key,
        PutBody::from_bytes(pattern(0, 100)),
        PutOptions::default(),
    )
    .await
    .unwrap();
    #[allow(clippy::reversed_empty_ranges)] // The point of the test.
    for range in [10..10, 20..10] {
        let err = sink
            .get(&key, GetOptions::default().with_range(range.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{range:?}: {err:?}");
    }
}

/// object_store stages uploads as `<key>#<n>` next to the key; none may be left over.
fn assert_no_staged_uploads(root: &Path) {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                let name = entry.file_name();
                assert!(
                    !name.to_string_lossy().contains('#'),
                    "a staged upload was left behind: {}",
                    entry.path().display()
                );
            }
        }
    }
}
