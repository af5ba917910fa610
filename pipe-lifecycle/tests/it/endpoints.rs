//! SqliteCatalog as an EndpointStore: the conformance suite, endpoints surviving a
//! reopen, and the notifier delivering to stored endpoints, on real files.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use pipe_core::conformance::endpoints;
use pipe_core::{EndpointStore, EnvironmentId, Event, Notifier, StoredEndpoint, Timestamp};
use pipe_lifecycle::SqliteCatalog;
use pipe_webhook::{AddressPolicy, StandardWebhooks, Verifier, WebhookNotifier};
use serde_json::json;

use crate::util::catalog_in;

#[tokio::test]
async fn sqlite_endpoints_conform() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    endpoints::run_all(catalog.as_ref()).await;
}

#[tokio::test]
async fn endpoints_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    let kept = StoredEndpoint::new(
        "endpoint-1",
        EnvironmentId::default(),
        "https://hooks.example.com/in",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    );
    catalog.create_endpoint(kept.clone()).await.unwrap();
    catalog.close().await;
    let reopened = SqliteCatalog::open(&path).await.unwrap();
    assert_eq!(reopened.endpoint("endpoint-1").await.unwrap(), kept);
}

/// Whether `needle` is anywhere in the catalog's files (the database and its WAL).
pub(crate) fn on_disk(dir: &std::path::Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        path.is_file()
            && std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
    })
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_under_the_servers_keys() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = tempfile::tempdir().unwrap();
    let keys: Arc<dyn pipe_core::KeyProvider> =
        Arc::new(pipe_storage::crypt::LocalKeyProvider::open_or_create(keys_dir.path()).unwrap());
    let path = dir.path().join("catalog.db");
    let (old, new) = (
        "whsec_b2xkIHNlY3JldCB0aGF0IG11c3Qgbm90IGxlYWs=",
        "whsec_bmV3IHNlY3JldCB0aGF0IG11c3Qgbm90IGxlYWs=",
    );

    // Written by a catalog without keys (as before sealing existed): stored as it is.
    let plain = SqliteCatalog::open(&path).await.unwrap();
    endpoints::run_all(&plain.clone().seal_secrets_with(Arc::clone(&keys))).await;
    let endpoint = StoredEndpoint::new(
        "sealed",
        EnvironmentId::default(),
        "https://hooks.example.com/in",
        old,
    );
    plain.create_endpoint(endpoint.clone()).await.unwrap();
    plain.close().await;
    assert!(
        on_disk(dir.path(), old),
        "the test cannot see a plaintext secret"
    );

    // A catalog with keys reads it, and seals both secrets when it writes the endpoint.
    let sealing = open_sealing(&path, &keys).await;
    assert_eq!(sealing.endpoint("sealed").await.unwrap(), endpoint);
    let rotated = endpoint.rotated(new, Duration::from_secs(3600));
    sealing.replace_endpoint(rotated.clone()).await.unwrap();
    assert_eq!(sealing.endpoint("sealed").await.unwrap(), rotated);
    sqlx_vacuum(&path).await;
    sealing.close().await;
    for secret in [old, new] {
        assert!(
            !on_disk(dir.path(), secret),
            "a webhook secret is in the catalog's files in plaintext"
        );
    }

    // Reopened with the keys, the same endpoint; without them, a clear refusal.
    let reopened = open_sealing(&path, &keys).await;
    assert_eq!(reopened.endpoint("sealed").await.unwrap(), rotated);
    reopened.close().await;
    let keyless = SqliteCatalog::open(&path).await.unwrap();
    match keyless.endpoint("sealed").await {
        Err(pipe_core::Error::Integrity { detail }) => {
            assert!(detail.contains("without the server's keys"), "{detail}")
        }
        other => panic!("a sealed secret was read without keys: {other:?}"),
    }
}

/// The catalog at `path`, sealing secrets under `keys`.
pub(crate) async fn open_sealing(
    path: &std::path::Path,
    keys: &Arc<dyn pipe_core::KeyProvider>,
) -> SqliteCatalog {
    SqliteCatalog::open(path)
        .await
        .unwrap()
        .seal_secrets_with(Arc::clone(keys))
}

/// Rewrites the database file so that no page keeps the value it had before (SQLite
/// leaves freed pages as they were), and checkpoints the WAL into it.
pub(crate) async fn sqlx_vacuum(path: &std::path::Path) {
    use sqlx::Connection;
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::query("VACUUM")
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
}

/// A receiver on loopback answering every request with `status`; it keeps each
/// request's headers.
async fn receiver(status: u16) -> (String, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let kept = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().unwrap().push(headers);
                let _ = body;
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn stored_endpoints_get_their_environments_events_and_a_410_disables_one() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    let (a, b): (EnvironmentId, EnvironmentId) = ("a".parse().unwrap(), "b".parse().unwrap());
    let (ok_url, ok_seen) = receiver(200).await;
    let (gone_url, gone_seen) = receiver(410).await;
    let (other_url, other_seen) = receiver(200).await;
    let old = StandardWebhooks::generate_secret();
    let new = StandardWebhooks::generate_secret();
    let ok = StoredEndpoint::new("ok", a.clone(), ok_url, old.clone())
        .rotated(new.clone(), Duration::from_secs(3600));
    let gone = StoredEndpoint::new("gone", a.clone(), gone_url, old.clone());
    let mut off = StoredEndpoint::new("off", a.clone(), other_url.clone(), old.clone());
    off.disabled = Some("turned off by an operator".into());
    let elsewhere = StoredEndpoint::new("elsewhere", b.clone(), other_url, old.clone());
    for endpoint in [ok, gone, off, elsewhere] {
        catalog.create_endpoint(endpoint).await.unwrap();
    }
    let notifier = WebhookNotifier::builder()
        .address_policy(AddressPolicy::new().allow(std::net::Ipv4Addr::LOCALHOST))
        .endpoint_store(catalog.clone())
        .build()
        .unwrap();

    let event = Event::new("video_recorded", "r1".parse().unwrap(), json!({"id": "r1"}))
        .in_environment(a.clone());
    assert_eq!(
        notifier.subscribers(&event).await.unwrap(),
        ["ok", "gone"],
        "the enabled endpoints of the event's environment"
    );

    // Signed with both secrets while the rotation's overlap lasts.
    let accepted = notifier.attempt(&event, "ok").await;
    assert!(accepted.outcome.is_ok(), "{:?}", accepted.outcome);
    let headers = ok_seen.lock().unwrap()[0].clone();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    let body = event.envelope().to_bytes();
    let now = Timestamp::now().as_secs();
    for secret in [&old, &new] {
        Verifier::new(secret)
            .unwrap()
            .verify(&headers, &body, now)
            .expect("a receiver with either secret verifies");
    }

    // 410: refused for good, and the endpoint is disabled with the reason.
    let refused = notifier.attempt(&event, "gone").await;
    assert!(refused.outcome.is_err_and(|e| !e.is_retryable()));
    assert_eq!(refused.status, Some(410));
    let stored = catalog.endpoint("gone").await.unwrap();
    assert!(
        stored
            .disabled
            .as_deref()
            .is_some_and(|why| why.contains("410")),
        "{stored:?}"
    );
    assert_eq!(notifier.subscribers(&event).await.unwrap(), ["ok"]);
    let again = notifier.attempt(&event, "gone").await;
    assert!(
        again
            .outcome
            .is_err_and(|e| e.to_string().contains("disabled")),
        "a disabled endpoint is not contacted"
    );
    assert_eq!(gone_seen.lock().unwrap().len(), 1);
    assert!(other_seen.lock().unwrap().is_empty());

    // Changes apply to the next event without a new notifier.
    catalog.delete_endpoint("ok").await.unwrap();
    assert!(notifier.subscribers(&event).await.unwrap().is_empty());
    let unknown = notifier.attempt(&event, "ok").await;
    assert!(unknown.outcome.is_err_and(|e| e.is_not_found()));
}

#[tokio::test]
async fn an_endpoint_failing_every_delivery_for_long_is_disabled_and_a_success_forgives() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    let env = EnvironmentId::default();
    let (down_url, down_seen) = receiver(500).await;
    let (up_url, _) = receiver(200).await;
    let secret = StandardWebhooks::generate_secret();
    catalog
        .create_endpoint(StoredEndpoint::new(
            "down",
            env.clone(),
            down_url,
            secret.clone(),
        ))
        .await
        .unwrap();
    catalog
        .create_endpoint(StoredEndpoint::new("flaky", env.clone(), up_url, secret))
        .await
        .unwrap();
    // Days, shrunk to a moment.
    let notifier = WebhookNotifier::builder()
        .address_policy(AddressPolicy::new().allow(std::net::Ipv4Addr::LOCALHOST))
        .endpoint_store(catalog.clone())
        .disable_after(Duration::from_millis(300))
        .build()
        .unwrap();
    let event = Event::new("video_recorded", "r1".parse().unwrap(), json!({"id": "r1"}));

    assert!(notifier.attempt(&event, "down").await.outcome.is_err());
    let since = catalog.endpoint("down").await.unwrap().failing_since;
    assert!(since.is_some(), "the first failure is marked");
    assert!(notifier.attempt(&event, "down").await.outcome.is_err());
    let stored = catalog.endpoint("down").await.unwrap();
    assert_eq!(
        (stored.failing_since, stored.disabled.as_deref()),
        (since, None),
        "a second failure within the time changes nothing"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(notifier.attempt(&event, "down").await.outcome.is_err());
    let stored = catalog.endpoint("down").await.unwrap();
    assert!(
        stored
            .disabled
            .as_deref()
            .is_some_and(|why| why.starts_with("every delivery failed from")),
        "{stored:?}"
    );
    assert_eq!(notifier.subscribers(&event).await.unwrap(), ["flaky"]);
    assert_eq!(down_seen.lock().unwrap().len(), 3);

    // A failure, then a success: the mark is gone, and a later failure starts afresh.
    let mut flaky = catalog.endpoint("flaky").await.unwrap();
    flaky.failing_since = Some(Timestamp::from_millis(0));
    catalog.replace_endpoint(flaky).await.unwrap();
    assert!(notifier.attempt(&event, "flaky").await.outcome.is_ok());
    let flaky = catalog.endpoint("flaky").await.unwrap();
    assert_eq!((flaky.failing_since, flaky.disabled), (None, None));
}

#[tokio::test]
async fn a_stored_endpoint_inside_the_network_is_refused_at_delivery_and_never_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    // A receiver on loopback that would accept; stored behind the API's back, so only the
    // delivery's own check stands between it and the request.
    let (url, seen) = receiver(200).await;
    let secret = StandardWebhooks::generate_secret();
    catalog
        .create_endpoint(StoredEndpoint::new(
            "inside",
            EnvironmentId::default(),
            url,
            secret,
        ))
        .await
        .unwrap();
    let notifier = WebhookNotifier::builder()
        .endpoint_store(catalog.clone())
        .build()
        .unwrap();
    let event = Event::new("video_recorded", "r1".parse().unwrap(), json!({"id": "r1"}));
    let refused = notifier.attempt(&event, "inside").await;
    assert!(
        refused
            .outcome
            .is_err_and(|e| !e.is_retryable() && e.to_string().contains("loopback")),
        "a loopback endpoint was not refused"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the receiver was contacted"
    );
}
