//! The Dropbox sink against `DropboxStandIn`, a stand-in enforcing Dropbox's documented
//! contract (Dropbox itself cannot be reached from here).

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use pipe_core::{
    Error, GetOptions, ObjectKey, PutBody, PutOptions, SinkKind, SinkLocation, StorageSink,
};
use pipe_storage::testing::DropboxStandIn;
use pipe_storage::{DropboxAuth, DropboxConfig, DropboxSink};
use sha2::{Digest, Sha256};

use crate::pattern;

const MIB: usize = 1024 * 1024;

const START: &str = "/2/files/upload_session/start";
const APPEND: &str = "/2/files/upload_session/append_v2";
const FINISH: &str = "/2/files/upload_session/finish";
const UPLOAD: &str = "/2/files/upload";
const TOKEN: &str = "/oauth2/token";

fn sink(config: DropboxConfig) -> DropboxSink {
    DropboxSink::new(config, SinkKind::Dropbox).unwrap()
}

/// `data` streamed in chunks of `chunk` bytes, declared as `declared` bytes.
fn body(data: &Bytes, chunk: usize, declared: u64) -> PutBody {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    PutBody::new(declared, stream::iter(chunks).boxed())
}

fn path(key: &str) -> String {
    format!("{}/{key}", DropboxStandIn::FOLDER)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropbox_sink_conforms() {
    let dropbox = DropboxStandIn::start();
    let sink = sink(dropbox.config());
    assert_eq!(sink.kind(), SinkKind::Dropbox);
    assert_eq!(
        sink.location(),
        SinkLocation::default().with_folder(Some(DropboxStandIn::FOLDER.to_owned()))
    );
    pipe_core::conformance::sink::run_all(&sink).await;
    assert!(dropbox.files().is_empty(), "left: {:?}", dropbox.files());
    // One token served the whole suite.
    assert_eq!(dropbox.requests(TOKEN), 1);
}

/// The suite again with everything over 1 MiB going through upload sessions in 4 MiB
/// chunks (the 6 MiB object: `start` with 4 MiB, `finish` with the rest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropbox_sink_conforms_through_upload_sessions() {
    let dropbox = DropboxStandIn::start();
    let config = dropbox
        .config()
        .with_upload_threshold(MIB as u64)
        .with_chunk_size(4 * MIB);
    pipe_core::conformance::sink::run_all(&sink(config)).await;
    assert!(dropbox.requests(START) >= 1);
    assert_eq!(dropbox.requests(START), dropbox.requests(FINISH));
    assert_eq!(dropbox.open_sessions(), 0);
    assert!(dropbox.files().is_empty(), "left: {:?}", dropbox.files());
}

/// A file over the threshold goes up in 8 MiB chunks (`start`, `append_v2`, `finish`
/// with the ragged rest) and lands byte for byte, whatever the body's own chunking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_go_through_an_upload_session() {
    let dropbox = DropboxStandIn::start();
    let config = dropbox
        .config()
        .with_upload_threshold(4 * MIB as u64)
        .with_chunk_size(8 * MIB);
    let sink = sink(config);
    let key = ObjectKey::new("rec/rec.mp4").unwrap();
    let data = pattern(3, 20 * MIB + 5);
    let receipt = sink
        .put(
            &key,
            body(&data, 333_333, data.len() as u64),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(receipt.size, data.len() as u64);
    assert_eq!(receipt.sha256, hex::encode(Sha256::digest(&data)));
    assert_eq!(
        (
            dropbox.requests(START),
            dropbox.requests(APPEND),
            dropbox.requests(FINISH),
            dropbox.requests(UPLOAD)
        ),
        (1, 1, 1, 0)
    );
    assert!(dropbox.file(&path("rec/rec.mp4")).unwrap() == data);
    assert_eq!(dropbox.open_sessions(), 0);

    let got = sink
        .get(
            &key,
            GetOptions::default().with_range(8 * MIB as u64..8 * MIB as u64 + 10),
        )
        .await
        .unwrap();
    assert_eq!(got.meta.size, data.len() as u64);
    assert_eq!(got.bytes().await.unwrap(), data[8 * MIB..8 * MIB + 10]);

    // At the threshold, one call.
    let small = pattern(4, 4 * MIB);
    sink.put(
        &key,
        PutBody::from_bytes(small.clone()),
        PutOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(dropbox.requests(UPLOAD), 1);
    assert_eq!(dropbox.requests(START), 1);
    assert!(dropbox.file(&path("rec/rec.mp4")).unwrap() == small);
}

/// Tokens that expire are renewed: ahead of time when they are about to, and after a
/// `401 expired_access_token` in the middle of an upload session, whose chunk is sent
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refreshed() {
    let dropbox = DropboxStandIn::start();
    dropbox.set_token_lifetime(Duration::from_secs(1));
    let config = dropbox
        .config()
        .with_upload_threshold(0)
        .with_chunk_size(4 * MIB);
    let sink = sink(config);
    let key = ObjectKey::new("a/b.webm").unwrap();

    sink.put(&key, PutBody::from_bytes("one"), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(dropbox.requests(TOKEN), 1);
    // Past the half of its life: the sink renews it before using it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    dropbox.set_token_lifetime(Duration::from_secs(3600));
    sink.put(&key, PutBody::from_bytes("two"), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(dropbox.requests(TOKEN), 2, "the token was not renewed");
    // Renewed ahead of time: no call was refused.
    assert_eq!(dropbox.requests(UPLOAD), 2);

    dropbox.expire_tokens_at(APPEND);
    let data = pattern(9, 9 * MIB);
    sink.put(
        &key,
        PutBody::from_bytes(data.clone()),
        PutOptions::default(),
    )
    .await
    .unwrap();
    assert!(dropbox.file(&path("a/b.webm")).unwrap() == data);
    assert_eq!(dropbox.requests(TOKEN), 3);
    // 4 MiB to `start`, 4 MiB to `append_v2` (refused for its expired token, and sent
    // again), the last 1 MiB with `finish`.
    assert_eq!(dropbox.requests(START), 1);
    assert_eq!(dropbox.requests(APPEND), 2);
    assert_eq!(dropbox.requests(FINISH), 1);
}

/// Wrong credentials are `PermissionDenied`, never retried, name what to fix, and show
/// no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_permission_denied() {
    let dropbox = DropboxStandIn::start();
    let key = ObjectKey::new("x.mp4").unwrap();
    let put = |config: DropboxConfig| {
        let key = key.clone();
        async move {
            sink(config)
                .put(&key, PutBody::from_bytes("mp4"), PutOptions::default())
                .await
                .unwrap_err()
        }
    };
    let with_auth = |auth: DropboxAuth| {
        let mut config = dropbox.config();
        config.auth = auth;
        config
    };

    let wrong_secret = "not-the-secret-at-all";
    let error = put(with_auth(DropboxAuth::refresh_token(
        DropboxStandIn::APP_KEY,
        wrong_secret,
        DropboxStandIn::REFRESH_TOKEN,
    )))
    .await;
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(!error.is_retryable());
    let message = error.to_string();
    assert!(message.contains("app secret"), "{message}");
    assert!(!message.contains(wrong_secret), "{message}");

    let wrong_refresh = "not-the-refresh-token";
    let error = put(with_auth(DropboxAuth::refresh_token(
        DropboxStandIn::APP_KEY,
        DropboxStandIn::APP_SECRET,
        wrong_refresh,
    )))
    .await;
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("refresh token"), "{error}");
    assert!(!error.to_string().contains(wrong_refresh), "{error}");

    let error = put(with_auth(DropboxAuth::AccessToken("sl.forged".into()))).await;
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(
        error.to_string().contains("invalid_access_token"),
        "{error}"
    );

    // A fixed token that expires cannot be renewed.
    let token = dropbox.access_token();
    let config = with_auth(DropboxAuth::AccessToken(token));
    sink(config.clone())
        .put(&key, PutBody::from_bytes("mp4"), PutOptions::default())
        .await
        .unwrap();
    dropbox.expire_tokens();
    let error = put(config).await;
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(error.to_string().contains("refresh"), "{error}");

    // The app unlinked: the refresh token stops working.
    let working = sink(dropbox.config());
    working
        .put(&key, PutBody::from_bytes("mp4"), PutOptions::default())
        .await
        .unwrap();
    dropbox.revoke();
    let error = working.head(&key).await.unwrap_err();
    assert!(error.is_permission_denied(), "{error:?}");
    assert!(!error.is_retryable());
    assert_eq!(dropbox.files(), [path("x.mp4")]);
}

/// A `429` is handed up as `RateLimited` with Dropbox's `Retry-After`; the sink does not
/// wait itself. A `429` on a session's `finish` commits nothing; a `5xx` is temporary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_handed_up() {
    let dropbox = DropboxStandIn::start();
    dropbox.set_retry_after(Duration::from_secs(42));
    let config = dropbox
        .config()
        .with_upload_threshold(0)
        .with_chunk_size(4 * MIB);
    let sink = sink(config);
    let key = ObjectKey::new("limited.mp4").unwrap();

    dropbox.fail_next(1, 429);
    let started = std::time::Instant::now();
    let error = sink
        .put(&key, PutBody::from_bytes("mp4"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the sink waited"
    );
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(42)));
    assert!(dropbox.files().is_empty());

    dropbox.fail_next_at(FINISH, 1, 429);
    let data = pattern(5, 5 * MIB);
    let error = sink
        .put(
            &key,
            PutBody::from_bytes(data.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(42)));
    assert!(
        error.to_string().contains("too_many_write_operations"),
        "{error}"
    );
    assert!(dropbox.files().is_empty());

    dropbox.fail_next(1, 500);
    let error = sink.head(&key).await.unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(!matches!(error, Error::RateLimited { .. }), "{error:?}");
    dropbox.fail_next(1, 503);
    let error = sink.get(&key, GetOptions::default()).await.unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(42)));

    // The retry the caller makes succeeds.
    sink.put(
        &key,
        PutBody::from_bytes(data.clone()),
        PutOptions::default(),
    )
    .await
    .unwrap();
    assert!(dropbox.file(&path("limited.mp4")).unwrap() == data);
}

/// A file Dropbox stores other than it was sent fails the put with `Integrity`, and is
/// deleted: in one call and through a session, also over an earlier file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_upload_is_an_integrity_error_and_removed() {
    let dropbox = DropboxStandIn::start();
    let config = dropbox
        .config()
        .with_upload_threshold(MIB as u64)
        .with_chunk_size(4 * MIB);
    let sink = sink(config);
    let key = ObjectKey::new("rec/corrupt.mp4").unwrap();

    for data in [pattern(6, 1000), pattern(7, 6 * MIB), Bytes::new()] {
        dropbox.corrupt_next_upload();
        let error = sink
            .put(
                &key,
                PutBody::from_bytes(data.clone()),
                PutOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Integrity { .. }), "{error:?}");
        assert!(dropbox.files().is_empty(), "left: {:?}", dropbox.files());
        assert!(sink.head(&key).await.unwrap_err().is_not_found());
    }

    sink.put(&key, PutBody::from_bytes("older"), PutOptions::default())
        .await
        .unwrap();
    dropbox.corrupt_next_upload();
    let error = sink
        .put(&key, PutBody::from_bytes("newer"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Integrity { .. }), "{error:?}");
    assert!(dropbox.files().is_empty());
}

/// A body shorter or longer than declared commits nothing: a session is never finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_size_mismatch_commits_nothing() {
    let dropbox = DropboxStandIn::start();
    let config = dropbox
        .config()
        .with_upload_threshold(MIB as u64)
        .with_chunk_size(4 * MIB);
    let sink = sink(config);
    let key = ObjectKey::new("rec/mismatch.webm").unwrap();
    let data = pattern(8, 9 * MIB);

    for declared in [
        data.len() as u64 + 1,
        data.len() as u64 - 1,
        10 * MIB as u64,
        4 * MIB as u64,
    ] {
        let error = sink
            .put(
                &key,
                body(&data, 1_000_000, declared),
                PutOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::Integrity { .. }),
            "declared {declared}: {error:?}"
        );
        assert!(dropbox.files().is_empty());
    }
    // Small bodies never reach Dropbox at all.
    let small = pattern(8, 1000);
    for declared in [999, 1001] {
        let error = sink
            .put(&key, body(&small, 100, declared), PutOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Integrity { .. }), "{error:?}");
    }
    assert_eq!(dropbox.requests(FINISH), 0);
    assert_eq!(dropbox.requests(UPLOAD), 0);
    assert!(dropbox.files().is_empty());
}

/// A folder with characters past ASCII reaches Dropbox through `\u` escapes in
/// `Dropbox-API-Arg` (the stand-in refuses a header that is not ASCII), and comes back
/// in `Dropbox-API-Result`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_past_ascii_are_escaped() {
    let dropbox = DropboxStandIn::start();
    let folder = "/Récordings/Ünïcode 🎥";
    let config = dropbox
        .config()
        .with_folder(folder)
        .with_upload_threshold(0)
        .with_chunk_size(4 * MIB);
    let sink = sink(config);
    let key = ObjectKey::new("clip.mp4").unwrap();
    for data in [pattern(10, 100), pattern(11, 5 * MIB)] {
        sink.put(
            &key,
            PutBody::from_bytes(data.clone()),
            PutOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(dropbox.files(), [format!("{folder}/clip.mp4")]);
        let got = sink.get(&key, GetOptions::default()).await.unwrap();
        assert!(got.bytes().await.unwrap() == data);
    }
    assert_eq!(sink.head(&key).await.unwrap().size, 5 * MIB as u64);
    sink.delete(&key).await.unwrap();
    assert!(dropbox.files().is_empty());
}

/// Deleting a key that is a folder in Dropbox deletes nothing (`delete_v2` would delete
/// the folder and everything in it); a folder is not an object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_is_not_an_object() {
    let dropbox = DropboxStandIn::start();
    let sink = sink(dropbox.config());
    let inner = ObjectKey::new("rec/rec.mp4").unwrap();
    sink.put(&inner, PutBody::from_bytes("mp4"), PutOptions::default())
        .await
        .unwrap();
    let folder = ObjectKey::new("rec").unwrap();
    assert!(sink.head(&folder).await.unwrap_err().is_not_found());
    assert!(
        sink.get(&folder, GetOptions::default())
            .await
            .unwrap_err()
            .is_not_found()
    );
    sink.delete(&folder).await.unwrap();
    assert_eq!(dropbox.files(), [path("rec/rec.mp4")]);
    // A file where a folder must be is a precondition an operator must clear.
    let error = sink
        .put(
            &ObjectKey::new("rec/rec.mp4/x").unwrap(),
            PutBody::from_bytes("x"),
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(error.is_precondition(), "{error:?}");
}

/// The stand-in itself refuses what Dropbox refuses, so the sink's passing means
/// something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_enforces_the_contract() {
    let dropbox = DropboxStandIn::start();
    let http = reqwest::Client::new();
    let token = dropbox.access_token();
    let content = |route: &str| format!("{}/2/{route}", dropbox.content_url());
    let upload = |route: &str, arg: &str, data: Vec<u8>| {
        http.post(content(route))
            .bearer_auth(&token)
            .header("Dropbox-API-Arg", arg)
            .header("Content-Type", "application/octet-stream")
            .body(data)
    };

    // No token, a forged one, no argument, a malformed one, an unknown field.
    let answer = http
        .post(content("files/upload"))
        .header("Dropbox-API-Arg", r#"{"path":"/a"}"#)
        .header("Content-Type", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let answer = http
        .post(content("files/upload"))
        .bearer_auth("sl.forged")
        .header("Dropbox-API-Arg", r#"{"path":"/a"}"#)
        .header("Content-Type", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["error"][".tag"], "invalid_access_token");
    let answer = http
        .post(content("files/upload"))
        .bearer_auth(&token)
        .header("Content-Type", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    for arg in [
        r#"{"path":"/a""#,
        r#"{"path":"/a","colour":"red"}"#,
        r#"{"path":7}"#,
    ] {
        let answer = upload("files/upload", arg, vec![1]).send().await.unwrap();
        assert_eq!(answer.status(), 400, "{arg}");
    }
    // A path that is not rooted; one with a trailing slash.
    let answer = upload("files/upload", r#"{"path":"a"}"#, vec![1])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let answer = upload("files/upload", r#"{"path":"/a/"}"#, vec![1])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 409);
    // A header past ASCII.
    let answer = http
        .post(content("files/upload"))
        .bearer_auth(&token)
        .header(
            "Dropbox-API-Arg",
            reqwest::header::HeaderValue::from_bytes("{\"path\":\"/é\"}".as_bytes()).unwrap(),
        )
        .header("Content-Type", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // A content hash that does not match.
    let answer = upload(
        "files/upload",
        r#"{"path":"/a","content_hash":"00"}"#,
        vec![1],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(answer.status(), 409);

    // Sessions: chunks of 4 MiB multiples, offsets that match.
    let answer = upload("files/upload_session/start", "{}", vec![0; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400, "a ragged chunk that does not close");
    let answer = upload("files/upload_session/start", "{}", vec![0; 4 * MIB])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let started: serde_json::Value = answer.json().await.unwrap();
    let session = started["session_id"].as_str().unwrap();
    let arg = format!(r#"{{"cursor":{{"session_id":"{session}","offset":0}}}}"#);
    let answer = upload("files/upload_session/append_v2", &arg, vec![0; 4 * MIB])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 409);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["error"][".tag"], "incorrect_offset");
    assert_eq!(error["error"]["correct_offset"], 4 * MIB);
    let arg = format!(
        r#"{{"cursor":{{"session_id":"{session}","offset":{}}}}}"#,
        4 * MIB
    );
    let answer = upload("files/upload_session/append_v2", &arg, vec![0; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400, "a ragged append that does not close");
    let arg = format!(
        r#"{{"cursor":{{"session_id":"{session}","offset":{}}},"commit":{{"path":"/s","mode":"add"}}}}"#,
        4 * MIB
    );
    let answer = upload("files/upload_session/finish", &arg, vec![7; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(dropbox.file("/S").unwrap().len(), 4 * MIB + 10);
    assert_eq!(dropbox.open_sessions(), 0);

    // Ranges: clamped at the end, refused past it.
    let download = |range: &str| {
        http.post(content("files/download"))
            .bearer_auth(&token)
            .header("Dropbox-API-Arg", r#"{"path":"/s"}"#)
            .header("Range", range)
            .send()
    };
    let size = 4 * MIB + 10;
    let answer = download(&format!("bytes={}-{}", size - 4, size + 100))
        .await
        .unwrap();
    assert_eq!(answer.status(), 206);
    assert_eq!(
        answer.headers()["content-range"],
        format!("bytes {}-{}/{size}", size - 4, size - 1).as_str()
    );
    let result: serde_json::Value =
        serde_json::from_str(answer.headers()["dropbox-api-result"].to_str().unwrap()).unwrap();
    assert_eq!(result["size"], size);
    assert_eq!(answer.bytes().await.unwrap(), vec![7u8; 4]);
    let answer = download(&format!("bytes={size}-")).await.unwrap();
    assert_eq!(answer.status(), 416);

    // The RPC endpoints are not on the content host, and take JSON.
    let answer = http
        .post(content("files/get_metadata"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "path": "/s" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    let answer = http
        .post(format!("{}/2/files/get_metadata", dropbox.api_url()))
        .bearer_auth(&token)
        .body(r#"{"path":"/s"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400, "no Content-Type");

    // The token endpoint: a wrong secret, a wrong refresh token.
    let grant = |secret: &str, refresh: &str| {
        http.post(dropbox.token_url())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&refresh_token={refresh}&client_id={}&client_secret={secret}",
                DropboxStandIn::APP_KEY
            ))
            .send()
    };
    let answer = grant("wrong", DropboxStandIn::REFRESH_TOKEN).await.unwrap();
    assert_eq!(answer.status(), 400);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["error"], "invalid_client");
    let answer = grant(DropboxStandIn::APP_SECRET, "wrong").await.unwrap();
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");
    let answer = grant(DropboxStandIn::APP_SECRET, DropboxStandIn::REFRESH_TOKEN)
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let granted: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(granted["token_type"], "bearer");
    assert_eq!(granted["expires_in"], 4 * 3600);
}
