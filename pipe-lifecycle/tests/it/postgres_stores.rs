//! PostgresCatalog as an EnvironmentStore, ApiKeyStore, EndpointStore, AuditLog and
//! RecordingKeyStore: the conformance suites, several nodes at once, and what the
//! database holds, on a real PostgreSQL server (a database of its own per test).

use std::sync::Arc;
use std::time::Duration;

use pipe_core::conformance::{api_keys, audit, endpoints, environments};
use pipe_core::{
    AuditEntry, AuditLog, EndpointStore, EnvironmentId, EnvironmentSettings, EnvironmentStore,
    EnvironmentUpdate, Error, KeyProvider, NewEnvironment, RecordingId, RecordingKeyStore, SinkId,
    SinkSettings, StoredEndpoint, Timestamp,
};
use pipe_lifecycle::PostgresCatalog;
use pipe_storage::testing::PostgresTestServer;
use sqlx::{Executor as _, PgPool};

/// A server, and the URL of a fresh database on it.
fn database() -> (PostgresTestServer, String) {
    let server = PostgresTestServer::start();
    let url = server.create_database();
    (server, url)
}

async fn connect(url: &str) -> PostgresCatalog {
    PostgresCatalog::connect(url)
        .await
        .expect("connect to the catalog")
}

/// A pool of its own on the catalog's database, to look at (or tamper with) its tables.
async fn sql(url: &str) -> PgPool {
    PgPool::connect(url).await.expect("connect to the database")
}

fn keys() -> (tempfile::TempDir, Arc<dyn KeyProvider>) {
    let dir = tempfile::tempdir().unwrap();
    let keys: Arc<dyn KeyProvider> =
        Arc::new(pipe_storage::crypt::LocalKeyProvider::open_or_create(dir.path()).unwrap());
    (dir, keys)
}

/// Adds a recording row by SQL (the `Catalog` of PostgreSQL is not what these tests test).
async fn insert_recording(pool: &PgPool, environment: &str) -> RecordingId {
    let id = RecordingId::generate();
    sqlx::query(
        "INSERT INTO recordings (id, environment, state, version, created, updated) \
         VALUES ($1, $2, 'receiving', 0, 0, 0)",
    )
    .bind(id.as_str())
    .bind(environment)
    .execute(pool)
    .await
    .unwrap();
    id
}

// ---- environments ----------------------------------------------------------------------

#[tokio::test]
async fn postgres_environments_conform() {
    let (_server, url) = database();
    let catalog = connect(&url).await;
    environments::run_all(&catalog).await;
    environments::delete_refused_while_recordings_belong(&catalog, &catalog).await;
}

#[tokio::test]
async fn two_nodes_run_the_environment_suite_at_once() {
    // Two catalogs on one database, as two nodes have: row locks serialize their
    // updates, and each suite keeps to its own environments.
    let (_server, url) = database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    tokio::join!(environments::run_all(&a), environments::run_all(&b));
    // Updates racing from both nodes expecting one version: one wins.
    let id = EnvironmentId::generate();
    a.create_environment(NewEnvironment::new(id.clone()))
        .await
        .unwrap();
    let racers = (0..8).map(|n| {
        let store = if n % 2 == 0 { &a } else { &b };
        store.update_environment(
            &id,
            EnvironmentUpdate::default()
                .with_name(format!("racer {n}"))
                .expect_version(1),
        )
    });
    let results = futures::future::join_all(racers).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(Error::is_precondition),
        "{results:?}"
    );
    assert_eq!(b.environment_history(&id).await.unwrap().len(), 2);
}

/// `delete_environment` is refused while a recording belongs to the environment (added
/// here by SQL), and changes nothing; a recording of another environment holds nothing.
#[tokio::test]
async fn delete_is_refused_while_a_recording_belongs() {
    let (_server, url) = database();
    let catalog = connect(&url).await;
    let pool = sql(&url).await;
    let (held, free): (EnvironmentId, EnvironmentId) =
        ("held".parse().unwrap(), "free".parse().unwrap());
    for id in [&held, &free] {
        catalog
            .create_environment(NewEnvironment::new(id.clone()))
            .await
            .unwrap();
    }
    let updated = catalog
        .update_environment(&held, EnvironmentUpdate::default().with_name("held"))
        .await
        .unwrap();
    insert_recording(&pool, held.as_str()).await;
    insert_recording(&pool, "never-created").await;
    let history = catalog.environment_history(&held).await.unwrap();

    let refused = catalog.delete_environment(&held).await.unwrap_err();
    assert!(refused.is_precondition(), "{refused:?}");
    assert_eq!(catalog.environment(&held).await.unwrap(), updated);
    assert_eq!(catalog.environment_history(&held).await.unwrap(), history);
    catalog.delete_environment(&free).await.unwrap();
    assert!(catalog.environment(&free).await.unwrap_err().is_not_found());
    assert!(
        catalog
            .delete_environment(&free)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

/// A recording being created (its transaction not yet committed, on another node) when
/// an environment is deleted: the delete waits for it, sees it, and is refused, rather
/// than deleting an environment a recording then belongs to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_waits_for_a_recording_being_created() {
    let (_server, url) = database();
    let catalog = connect(&url).await;
    let pool = sql(&url).await;
    let id: EnvironmentId = "busy".parse().unwrap();
    catalog
        .create_environment(NewEnvironment::new(id.clone()))
        .await
        .unwrap();
    let mut creating = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO recordings (id, environment, state, version, created, updated) \
         VALUES ($1, $2, 'receiving', 0, 0, 0)",
    )
    .bind(RecordingId::generate().as_str())
    .bind(id.as_str())
    .execute(&mut *creating)
    .await
    .unwrap();

    let delete = tokio::spawn({
        let (catalog, id) = (catalog.clone(), id.clone());
        async move { catalog.delete_environment(&id).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !delete.is_finished(),
        "the delete did not wait for the recording being created"
    );
    creating.commit().await.unwrap();
    let refused = delete.await.unwrap().unwrap_err();
    assert!(refused.is_precondition(), "{refused:?}");
    assert!(catalog.environment(&id).await.is_ok());
}

/// The credentials of an environment's sinks are sealed at rest, in the environment and
/// in its history, under the server's keys; read back whole; refused without the keys.
#[tokio::test]
async fn sink_secrets_are_sealed_at_rest() {
    let (_server, url) = database();
    let (_keys_dir, keys) = keys();
    let (first, second) = (
        "a-bucket-secret-never-stored",
        "a-rotated-secret-never-stored",
    );
    let settings = |secret: &str| {
        EnvironmentSettings::default().with_sinks([SinkSettings::new(
            SinkId::new("archive"),
            "s3://bucket?access_key_id=AKIA&secret_key_from=key",
        )
        .with_secret("key", secret)])
    };
    let id: EnvironmentId = "sealed".parse().unwrap();
    let catalog = connect(&url).await.seal_secrets_with(Arc::clone(&keys));
    let created = catalog
        .create_environment(NewEnvironment::new(id.clone()).with_settings(settings(first)))
        .await
        .unwrap();
    assert_eq!(created.settings, settings(first));
    let updated = catalog
        .update_environment(
            &id,
            EnvironmentUpdate::default().with_settings(settings(second)),
        )
        .await
        .unwrap();
    assert_eq!(updated.settings, settings(second));
    let history = catalog.environment_history(&id).await.unwrap();
    assert_eq!(history[0].settings, settings(first));
    assert_eq!(history[1].settings, settings(second));
    assert_eq!(
        catalog.list_environments().await.unwrap(),
        vec![updated.clone()]
    );

    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT settings FROM environments UNION ALL SELECT settings FROM environment_versions",
    )
    .fetch_all(&sql(&url).await)
    .await
    .unwrap();
    assert_eq!(stored.len(), 3);
    for settings in &stored {
        assert!(settings.contains("sealed:v1:"), "{settings}");
        for secret in [first, second] {
            assert!(
                !settings.contains(secret),
                "a sink's secret is stored in plaintext: {settings}"
            );
        }
    }

    let keyless = connect(&url).await;
    let refused = keyless.environment(&id).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Integrity { detail } if detail.contains("without the server's keys")),
        "{refused:?}"
    );
}

// ---- API keys --------------------------------------------------------------------------

#[tokio::test]
async fn postgres_api_keys_conform() {
    let (_server, url) = database();
    api_keys::run_all(&connect(&url).await).await;
}

#[tokio::test]
async fn two_nodes_run_the_api_key_suite_at_once() {
    let (_server, url) = database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    tokio::join!(api_keys::run_all(&a), api_keys::run_all(&b));
}

// ---- webhook endpoints -----------------------------------------------------------------

#[tokio::test]
async fn postgres_endpoints_conform() {
    let (_server, url) = database();
    endpoints::run_all(&connect(&url).await).await;
}

#[tokio::test]
async fn two_nodes_run_the_endpoint_suite_at_once() {
    let (_server, url) = database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    tokio::join!(endpoints::run_all(&a), endpoints::run_all(&b));
}

/// Signing secrets: stored as they are by a catalog without keys, read by one with keys,
/// which seals both secrets when it writes the endpoint; refused without the keys.
#[tokio::test]
async fn endpoint_secrets_are_sealed_at_rest_under_the_servers_keys() {
    let (_server, url) = database();
    let (_keys_dir, keys) = keys();
    let pool = sql(&url).await;
    let stored = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT endpoint FROM webhook_endpoints WHERE id = 'sealed'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let (old, new) = (
        "whsec_b2xkIHNlY3JldCB0aGF0IG11c3Qgbm90IGxlYWs=",
        "whsec_bmV3IHNlY3JldCB0aGF0IG11c3Qgbm90IGxlYWs=",
    );

    let plain = connect(&url).await;
    endpoints::run_all(&plain.clone().seal_secrets_with(Arc::clone(&keys))).await;
    let endpoint = StoredEndpoint::new(
        "sealed",
        EnvironmentId::default(),
        "https://hooks.example.com/in",
        old,
    );
    plain.create_endpoint(endpoint.clone()).await.unwrap();
    assert!(
        stored().await.contains(old),
        "the test cannot see a plaintext secret"
    );

    let sealing = connect(&url).await.seal_secrets_with(Arc::clone(&keys));
    assert_eq!(sealing.endpoint("sealed").await.unwrap(), endpoint);
    let rotated = endpoint.rotated(new, Duration::from_secs(3600));
    sealing.replace_endpoint(rotated.clone()).await.unwrap();
    assert_eq!(sealing.endpoint("sealed").await.unwrap(), rotated);
    let document = stored().await;
    for secret in [old, new] {
        assert!(
            !document.contains(secret),
            "a webhook secret is stored in plaintext: {document}"
        );
    }

    match plain.endpoint("sealed").await {
        Err(Error::Integrity { detail }) => {
            assert!(detail.contains("without the server's keys"), "{detail}")
        }
        other => panic!("a sealed secret was read without keys: {other:?}"),
    }
}

/// `replace_endpoint` keeps the stored environment, in what it returns and in the row.
#[tokio::test]
async fn replace_keeps_the_stored_environment() {
    let (_server, url) = database();
    let catalog = connect(&url).await;
    let (a, b): (EnvironmentId, EnvironmentId) = ("a".parse().unwrap(), "b".parse().unwrap());
    let endpoint = StoredEndpoint::new("moved", a.clone(), "https://hooks.example.com/in", "s");
    catalog.create_endpoint(endpoint.clone()).await.unwrap();
    let mut elsewhere = endpoint.clone();
    elsewhere.environment = b.clone();
    elsewhere.url = "https://hooks.example.com/other".into();
    let replaced = catalog.replace_endpoint(elsewhere).await.unwrap();
    assert_eq!(replaced.environment, a);
    assert_eq!(catalog.endpoint("moved").await.unwrap(), replaced);
    assert_eq!(catalog.endpoints(&a).await.unwrap(), vec![replaced]);
    assert!(catalog.endpoints(&b).await.unwrap().is_empty());
    let missing = StoredEndpoint::new("missing", a, "https://hooks.example.com/in", "s");
    assert!(
        catalog
            .replace_endpoint(missing)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

// ---- the audit log ---------------------------------------------------------------------

#[tokio::test]
async fn postgres_audit_log_conforms() {
    let (_server, url) = database();
    audit::run_all(&connect(&url).await).await;
}

/// Two nodes appending at once: every entry numbered once, the chain whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_append_to_one_chain() {
    let (_server, url) = database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    tokio::join!(
        audit::appends_at_once_are_numbered_without_gaps(&a),
        audit::appends_at_once_are_numbered_without_gaps(&b),
        audit::append_numbers_chains_and_reads_back(&a),
    );
    let (count, head) = pipe_core::verify_log(&b).await.unwrap().unwrap();
    assert_eq!(count, 66);
    assert_eq!(head.map(|(seq, _)| seq), Some(66));
}

/// The audit log refuses, through SQL, to change an entry or to remove one that is not
/// among the oldest; `expire_audit` is the only way entries leave.
#[tokio::test]
async fn the_audit_table_is_append_only() {
    let (_server, url) = database();
    let catalog = connect(&url).await;
    for n in 0..3 {
        catalog
            .append_audit(AuditEntry::new(
                "cli",
                "keys.create",
                format!("key:{n}"),
                "ok",
            ))
            .await
            .unwrap();
    }
    let pool = sql(&url).await;
    for (what, sql) in [
        (
            "a change",
            "UPDATE audit SET outcome = 'denied' WHERE seq = 2",
        ),
        ("a removal in the middle", "DELETE FROM audit WHERE seq = 2"),
        ("a removal of the newest", "DELETE FROM audit WHERE seq = 3"),
    ] {
        let refused = sqlx::query(sql).execute(&pool).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("audit")),
            "{what} was not refused: {refused:?}"
        );
    }
    sqlx::query("DELETE FROM audit WHERE seq = 1")
        .execute(&pool)
        .await
        .expect("removing the oldest entry");
}

/// An expiry removes entries oldest first, also once the table's pages are reused: a
/// `DELETE` in page order would remove a newer entry first, which the trigger refuses.
#[tokio::test]
async fn expiry_works_once_the_tables_space_is_reused() {
    let (_server, url) = database();
    let catalog = connect(&url).await;
    let pool = sql(&url).await;
    let padding = "x".repeat(400);
    let old_entries = |from: i64| {
        let (catalog, padding) = (&catalog, &padding);
        async move {
            for n in 0..100 {
                catalog
                    .append_audit(
                        AuditEntry::new("cli", "recordings.get", format!("recording:{n}"), "200")
                            .at(Timestamp::from_millis(from + n))
                            .with_detail(padding.clone()),
                    )
                    .await
                    .unwrap();
            }
            catalog
                .append_audit(AuditEntry::new("cli", "recordings.get", "head", "200"))
                .await
                .unwrap()
        }
    };

    old_entries(1_000_000).await;
    assert_eq!(
        catalog
            .expire_audit(Timestamp::from_millis(2_000_000))
            .await
            .unwrap(),
        100
    );
    pool.execute("VACUUM audit").await.unwrap();
    old_entries(3_000_000).await;
    let first_in_pages: i64 = sqlx::query_scalar("SELECT seq FROM audit ORDER BY ctid LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let oldest: i64 = sqlx::query_scalar("SELECT MIN(seq) FROM audit")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(
        first_in_pages, oldest,
        "the test needs new entries in the pages old ones left"
    );

    // The head of the first round, its audit.expired entry, and the 100 old entries.
    assert_eq!(
        catalog
            .expire_audit(Timestamp::from_millis(4_000_000))
            .await
            .unwrap(),
        102
    );
    let (count, _) = pipe_core::verify_log(&catalog).await.unwrap().unwrap();
    assert_eq!(count, 2, "the head and the second audit.expired are left");
}

// ---- recording keys --------------------------------------------------------------------

/// The recording keys on recordings added by SQL (the conformance suite needs the
/// `Catalog`): the first key stays, a row without a key takes one, unknown and erased
/// recordings have none, and only recordings not being deleted are live.
#[tokio::test]
async fn recording_keys_first_wins_and_only_live_ones_are_listed() {
    let (_server, url) = database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    let pool = sql(&url).await;
    let key = |n: u8| vec![n; 32];

    // Racing from two nodes: one key is kept, and every caller gets it.
    let raced = insert_recording(&pool, "production").await;
    let kept = futures::future::join_all((0..8u8).map(|n| {
        let store = if n % 2 == 0 { &a } else { &b };
        store.keep_recording_key(&raced, key(n))
    }))
    .await;
    let first = kept[0].as_ref().unwrap().clone();
    assert!(
        kept.iter().all(|k| matches!(k, Ok(k) if *k == first)),
        "{kept:?}"
    );
    assert_eq!(a.recording_key(&raced).await.unwrap(), Some(first));

    let unknown = RecordingId::generate();
    assert!(
        a.keep_recording_key(&unknown, key(1))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(a.recording_key(&unknown).await.unwrap(), None);
    let erased = insert_recording(&pool, "production").await;
    sqlx::query("UPDATE recordings SET deleting = 1, erased = 2 WHERE id = $1")
        .bind(erased.as_str())
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        a.keep_recording_key(&erased, key(1))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(a.recording_key(&erased).await.unwrap(), None);

    // A row without a key, as a restored backup's: waiting, then it takes the next key.
    let restored = insert_recording(&pool, "production").await;
    sqlx::query("INSERT INTO recording_keys (recording, sealed, created) VALUES ($1, NULL, 0)")
        .bind(restored.as_str())
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        a.recordings_without_keys().await.unwrap(),
        vec![restored.clone()]
    );
    assert_eq!(a.recording_key(&restored).await.unwrap(), None);
    assert_eq!(
        a.keep_recording_key(&restored, key(9)).await.unwrap(),
        key(9)
    );
    assert_eq!(
        a.keep_recording_key(&restored, key(10)).await.unwrap(),
        key(9)
    );
    assert!(a.recordings_without_keys().await.unwrap().is_empty());

    // Being deleted: no longer live.
    let doomed = insert_recording(&pool, "production").await;
    a.keep_recording_key(&doomed, key(20)).await.unwrap();
    sqlx::query("UPDATE recordings SET deleting = 1 WHERE id = $1")
        .bind(doomed.as_str())
        .execute(&pool)
        .await
        .unwrap();
    let mut live = vec![raced.clone(), restored.clone()];
    live.sort();
    let mut paged = Vec::new();
    let mut after: Option<RecordingId> = None;
    loop {
        let page = b.live_recording_keys(after.as_ref(), 1).await.unwrap();
        let Some((id, _)) = page.last() else { break };
        assert_eq!(page.len(), 1);
        after = Some(id.clone());
        paged.extend(page.into_iter().map(|(id, _)| id));
    }
    assert_eq!(paged, live);
    assert_eq!(
        b.live_recording_keys(None, 10).await.unwrap(),
        vec![
            (
                live[0].clone(),
                a.recording_key(&live[0]).await.unwrap().unwrap()
            ),
            (
                live[1].clone(),
                a.recording_key(&live[1]).await.unwrap().unwrap()
            ),
        ]
    );
    let mut still = b
        .still_live(&[raced.clone(), doomed, erased, unknown, restored.clone()])
        .await
        .unwrap();
    still.sort();
    assert_eq!(still, live);
    assert!(b.still_live(&[]).await.unwrap().is_empty());
}
