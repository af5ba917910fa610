//! The GCS sink against fake-gcs-server (an emulator of GCS's JSON API) on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use pipe_core::{GetOptions, ObjectKey, PutBody, PutOptions, SinkKind, SinkLocation, StorageSink};
use pipe_storage::testing::GcsTestServer;
use pipe_storage::{GcsAuth, GcsConfig, GcsSink};
use sha2::{Digest, Sha256};

use crate::pattern;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn sink(config: GcsConfig) -> GcsSink {
    GcsSink::new(config, SinkKind::Gcs).unwrap()
}

/// `data` streamed in chunks of `chunk` bytes.
fn body(data: &Bytes, chunk: usize) -> PutBody {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    PutBody::new(data.len() as u64, stream::iter(chunks).boxed())
}

/// The conformance suite with the defaults: every body of the suite (up to 6 MiB) in one
/// `multipart` upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_sink_conforms() {
    let server = GcsTestServer::start();
    let sink = sink(server.config().with_folder("pipe"));
    assert_eq!(sink.kind(), SinkKind::Gcs);
    assert_eq!(
        sink.location(),
        SinkLocation::bucket(GcsTestServer::BUCKET).with_folder(Some("pipe".to_owned()))
    );
    pipe_core::conformance::sink::run_all(&sink).await;
    assert!(server.objects().is_empty(), "left: {:?}", server.objects());
}

/// The suite again with everything over 512 KiB going through resumable uploads in
/// 1 MiB chunks (the 6 MiB object: 7 chunks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_sink_conforms_through_resumable_uploads() {
    let server = GcsTestServer::start();
    let config = server
        .config()
        .with_upload_threshold(512 * KIB as u64)
        .with_chunk_size(MIB);
    pipe_core::conformance::sink::run_all(&sink(config)).await;
    assert!(server.objects().is_empty(), "left: {:?}", server.objects());
}

/// A body far larger than a chunk streams through a resumable upload and lands byte for
/// byte, whatever the body's own chunking; so does one that is an exact number of chunks.
/// A body that fails after some chunks went up leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_in_chunks_and_land_byte_exact() {
    let server = GcsTestServer::start();
    let sink = sink(
        server
            .config()
            .with_folder("big")
            .with_upload_threshold(MIB as u64)
            .with_chunk_size(4 * MIB),
    );
    let key = ObjectKey::new("rec/rec.mp4").unwrap();
    let data = pattern(3, 20 * MIB + 5);
    let receipt = sink
        .put(
            &key,
            body(&data, 333_333),
            PutOptions::default().with_content_type("video/mp4"),
        )
        .await
        .unwrap();
    assert_eq!(receipt.size, data.len() as u64);
    assert_eq!(receipt.sha256, hex::encode(Sha256::digest(&data)));
    assert_eq!(server.objects(), ["big/rec/rec.mp4"]);

    let meta = sink.head(&key).await.unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.content_type.as_deref(), Some("video/mp4"));
    let whole = sink.get(&key, GetOptions::default()).await.unwrap();
    assert_eq!(whole.range, 0..data.len() as u64);
    assert!(whole.bytes().await.unwrap() == data, "the object differs");
    // Across the boundary of the first two chunks.
    let boundary = 4 * MIB as u64;
    let got = sink
        .get(
            &key,
            GetOptions::default().with_range(boundary - 10..boundary + 10),
        )
        .await
        .unwrap();
    assert_eq!(got.meta.size, data.len() as u64);
    assert_eq!(got.bytes().await.unwrap(), data[4 * MIB - 10..4 * MIB + 10]);

    // Exactly two chunks: the second is the last, sent once the body proved to end.
    let exact = pattern(4, 8 * MIB);
    sink.put(&key, body(&exact, MIB), PutOptions::default())
        .await
        .unwrap();
    let read = sink.get(&key, GetOptions::default()).await.unwrap();
    assert!(read.bytes().await.unwrap() == exact, "the object differs");

    // Fails after two chunks went up: the session is cancelled, nothing is committed.
    let failing = stream::iter([
        Ok(pattern(5, 9 * MIB)),
        Err(std::io::Error::other("the client went away")),
    ])
    .boxed();
    let other = ObjectKey::new("rec/other.mp4").unwrap();
    sink.put(
        &other,
        PutBody::new(12 * MIB as u64, failing),
        PutOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(sink.head(&other).await.unwrap_err().is_not_found());
    assert_eq!(server.objects(), ["big/rec/rec.mp4"]);
}

/// A bucket that does not exist is a put's `NotFound` that names the bucket, is not
/// retried, and stays so through a resumable upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_not_found_on_put_and_not_retried() {
    let server = GcsTestServer::start();
    let mut config = server.config().with_upload_threshold(MIB as u64);
    config.bucket = "no-such-bucket".into();
    let sink = sink(config);
    let key = ObjectKey::new("abc.mp4").unwrap();
    for data in [Bytes::from_static(b"mp4"), pattern(1, 3 * MIB)] {
        let error = sink
            .put(&key, body(&data, 64 * KIB), PutOptions::default())
            .await
            .unwrap_err();
        assert!(error.is_not_found(), "{error:?}");
        assert!(!error.is_retryable(), "{error:?}");
        assert!(
            error.to_string().contains("bucket \"no-such-bucket\""),
            "the error does not say what is missing: {error}"
        );
    }
    assert!(server.objects().is_empty());
}

/// An emulator that is down is a temporary error; once it is back, puts work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_temporary() {
    let mut server = GcsTestServer::start();
    let sink = sink(server.config());
    let key = ObjectKey::new("abc.mp4").unwrap();
    server.stop();
    let error = sink
        .put(&key, PutBody::from_bytes("mp4"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    server.restart();
    sink.put(&key, PutBody::from_bytes("mp4"), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(sink.head(&key).await.unwrap().size, 3);
}

/// A service account's key: the sink signs a JWT that the token endpoint (a stand-in here,
/// checking the signature with the key's public half) exchanges for a token, which serves
/// every later call; a refused key is `PermissionDenied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_gets_a_token_with_a_signed_jwt() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    let server = GcsTestServer::start();
    let key = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = key.public_key().as_ref().to_vec();
    let issued = Arc::new(AtomicUsize::new(0));
    let app = {
        let issued = issued.clone();
        axum::Router::new()
            .route(
                "/token",
                axum::routing::post(move |form: String| {
                    let issued = issued.clone();
                    let public = public.clone();
                    async move {
                        let pairs: Vec<(String, String)> =
                            url::form_urlencoded::parse(form.as_bytes())
                                .into_owned()
                                .collect();
                        let field = |name: &str| {
                            pairs
                                .iter()
                                .find(|(k, _)| k == name)
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default()
                        };
                        assert_eq!(
                            field("grant_type"),
                            "urn:ietf:params:oauth:grant-type:jwt-bearer"
                        );
                        let jwt = field("assertion");
                        let (signed, signature) = jwt.rsplit_once('.').unwrap();
                        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
                            .verify(
                                signed.as_bytes(),
                                &URL_SAFE_NO_PAD.decode(signature).unwrap(),
                            )
                            .expect("a JWT signed with the account's key");
                        let claims: serde_json::Value = serde_json::from_slice(
                            &URL_SAFE_NO_PAD
                                .decode(signed.split('.').nth(1).unwrap())
                                .unwrap(),
                        )
                        .unwrap();
                        assert_eq!(claims["iss"], "pipe-test@example.iam.gserviceaccount.com");
                        issued.fetch_add(1, Ordering::SeqCst);
                        axum::Json(serde_json::json!({
                            "access_token": "ya29.test-token",
                            "expires_in": 3600,
                            "token_type": "Bearer",
                        }))
                    }
                }),
            )
            .route(
                "/refuse",
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        axum::Json(serde_json::json!({
                            "error": "invalid_grant",
                            "error_description": "Invalid JWT Signature.",
                        })),
                    )
                }),
            )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    let der = key.as_der().unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der.as_ref())
    );
    let key_file = |path: &str| {
        serde_json::json!({
            "type": "service_account",
            "client_email": "pipe-test@example.iam.gserviceaccount.com",
            "private_key_id": "0123",
            "private_key": pem,
            "token_uri": format!("http://{address}{path}"),
        })
        .to_string()
    };
    let mut config = server.config();
    config.auth = GcsAuth::ServiceAccount(key_file("/token"));
    let sink = sink(config.with_upload_threshold(MIB as u64));
    let key = ObjectKey::new("abc.mp4").unwrap();
    for data in [pattern(1, 100), pattern(2, 2 * MIB + 1)] {
        sink.put(&key, body(&data, 100_000), PutOptions::default())
            .await
            .unwrap();
        let got = sink.get(&key, GetOptions::default()).await.unwrap();
        assert!(got.bytes().await.unwrap() == data, "the object differs");
    }
    sink.delete(&key).await.unwrap();
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "one token serves every call"
    );

    let mut config = server.config();
    config.auth = GcsAuth::ServiceAccount(key_file("/refuse"));
    let refused = self::sink(config)
        .put(&key, PutBody::from_bytes("mp4"), PutOptions::default())
        .await
        .unwrap_err();
    assert!(refused.is_permission_denied(), "{refused:?}");
    assert!(
        refused
            .to_string()
            .contains("pipe-test@example.iam.gserviceaccount.com"),
        "{refused}"
    );
    serving.abort();
}
