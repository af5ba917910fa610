//! The [`EnvironmentStore`] conformance suite: one async function per promise of the
//! trait's `# Contract`, each panicking with a message that names the promise it found
//! broken.
//!
//! ```ignore
//! #[tokio::test]
//! async fn sqlite_environments_conform() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let catalog = SqliteCatalog::open(dir.path().join("catalog.db")).await.unwrap();
//!     pipe_core::conformance::environments::run_all(&catalog).await;
//!     pipe_core::conformance::environments::delete_refused_while_recordings_belong(
//!         &catalog, &catalog,
//!     )
//!     .await;
//! }
//! ```
//!
//! Every function works on environments with fresh random ids, so the suite can run
//! against a store that holds other environments, and the functions can run in any
//! order. Durability is the implementation's own test: it must reopen its store.

use futures::future::join_all;

use crate::{
    Catalog, Environment, EnvironmentId, EnvironmentSettings, EnvironmentStore, EnvironmentUpdate,
    Error, NewEnvironment, NewRecording,
};

/// Runs every function of this suite that needs only the store, one after another.
/// [`delete_refused_while_recordings_belong`] needs a [`Catalog`] on the same data too
/// and is run on its own.
pub async fn run_all(store: &dyn EnvironmentStore) {
    create_and_get(store).await;
    list_by_id(store).await;
    update_adds_a_version_and_keeps_the_old(store).await;
    failed_expect_version_changes_nothing(store).await;
    concurrent_updates_each_make_one_version(store).await;
    delete_removes_the_environment_and_its_history(store).await;
    unknown_ids_are_not_found(store).await;
}

/// `create_environment` stores the environment at version 1 with the name and settings
/// asked for; `environment` reads it back; a second create of the id is `AlreadyExists`
/// and changes nothing.
pub async fn create_and_get(store: &dyn EnvironmentStore) {
    const PROMISE: &str = "create at version 1";
    let id = EnvironmentId::generate();
    let settings = sample_settings();
    let new = NewEnvironment::new(id.clone())
        .with_name("Acme staging")
        .with_settings(settings.clone());
    let created = CONTRACT.ok(
        store.create_environment(new.clone()).await,
        PROMISE,
        "create_environment",
    );
    assert_eq!(created.id, id, "{PROMISE}: created another id");
    assert_eq!(created.name, "Acme staging", "{PROMISE}: name lost");
    assert_eq!(
        created.version, 1,
        "{PROMISE}: a new environment is not at 1"
    );
    assert_eq!(created.settings, settings, "{PROMISE}: settings lost");
    assert_eq!(
        created.created, created.updated,
        "{PROMISE}: a new environment was updated after it was created"
    );
    let got = CONTRACT.ok(store.environment(&id).await, PROMISE, "environment");
    assert_eq!(
        got, created,
        "{PROMISE}: environment() differs from what create_environment returned"
    );

    let unnamed = EnvironmentId::generate();
    let plain = CONTRACT.ok(
        store
            .create_environment(NewEnvironment::new(unnamed.clone()))
            .await,
        PROMISE,
        "create_environment with defaults",
    );
    assert_eq!(
        plain.name,
        unnamed.as_str(),
        "{PROMISE}: an environment created without a name is not named after its id"
    );
    assert_eq!(
        plain.settings,
        EnvironmentSettings::default(),
        "{PROMISE}: default settings not kept"
    );

    CONTRACT.expect_err(
        store
            .create_environment(new.with_name("another").with_settings(Default::default()))
            .await,
        "errors",
        "a second create_environment of the same id",
        |e| matches!(e, Error::AlreadyExists { .. }),
    );
    assert_eq!(
        CONTRACT.ok(store.environment(&id).await, PROMISE, "environment"),
        created,
        "errors: a refused create changed the environment"
    );
    assert_eq!(
        history(store, &id).await,
        vec![created],
        "errors: a refused create changed the history"
    );
}

/// `list_environments` lists every environment, by id.
pub async fn list_by_id(store: &dyn EnvironmentStore) {
    const PROMISE: &str = "list by id";
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(
            CONTRACT.ok(
                store
                    .create_environment(NewEnvironment::new(EnvironmentId::generate()))
                    .await,
                PROMISE,
                "create_environment",
            ),
        );
    }
    let listed = CONTRACT.ok(
        store.list_environments().await,
        PROMISE,
        "list_environments",
    );
    for environment in &made {
        assert!(
            listed.contains(environment),
            "{PROMISE}: {:?} is missing or differs",
            environment.id
        );
    }
    assert!(
        listed.windows(2).all(|w| w[0].id < w[1].id),
        "{PROMISE}: environments are not listed by id"
    );
}

/// Every `update_environment` adds one to the version, applies what it changes, keeps
/// the rest, and is read at once; `environment_history` returns every version, oldest
/// first.
pub async fn update_adds_a_version_and_keeps_the_old(store: &dyn EnvironmentStore) {
    const PROMISE: &str = "versioned";
    let id = EnvironmentId::generate();
    let v1 = CONTRACT.ok(
        store
            .create_environment(NewEnvironment::new(id.clone()).with_name("first"))
            .await,
        PROMISE,
        "create_environment",
    );

    let v2 = CONTRACT.ok(
        store
            .update_environment(&id, EnvironmentUpdate::default().with_name("second"))
            .await,
        PROMISE,
        "update_environment (name)",
    );
    assert_eq!(v2.version, 2, "{PROMISE}: an update did not add one");
    assert_eq!(v2.name, "second", "{PROMISE}: the new name not applied");
    assert_eq!(
        v2.settings, v1.settings,
        "{PROMISE}: an update of the name changed the settings"
    );
    assert_eq!(
        v2.created, v1.created,
        "{PROMISE}: an update changed `created`"
    );
    assert!(
        v2.updated >= v1.updated,
        "{PROMISE}: `updated` went back in time"
    );
    assert_eq!(
        CONTRACT.ok(
            store.environment(&id).await,
            "read after write",
            "environment"
        ),
        v2,
        "read after write: environment() does not show the update"
    );

    let settings = sample_settings();
    let v3 = CONTRACT.ok(
        store
            .update_environment(
                &id,
                EnvironmentUpdate::default()
                    .with_settings(settings.clone())
                    .expect_version(2),
            )
            .await,
        PROMISE,
        "update_environment (settings, expecting the current version)",
    );
    assert_eq!(v3.version, 3, "{PROMISE}: an update did not add one");
    assert_eq!(v3.settings, settings, "{PROMISE}: new settings not applied");
    assert_eq!(
        v3.name, "second",
        "{PROMISE}: an update of the settings changed the name"
    );

    let v4 = CONTRACT.ok(
        store
            .update_environment(&id, EnvironmentUpdate::default())
            .await,
        PROMISE,
        "update_environment (nothing)",
    );
    assert_eq!(
        v4.version, 4,
        "{PROMISE}: an update that changes nothing must still add a version"
    );
    assert_eq!(
        (&v4.name, &v4.settings),
        (&v3.name, &v3.settings),
        "{PROMISE}: an empty update changed the environment"
    );
    assert_eq!(
        CONTRACT.ok(
            store.environment(&id).await,
            "read after write",
            "environment"
        ),
        v4,
        "read after write: environment() does not show the last update"
    );

    let versions = history(store, &id).await;
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "{PROMISE}: the history is not every version, oldest first"
    );
    assert_eq!(
        versions,
        vec![v1, v2, v3, v4],
        "{PROMISE}: a version in the history differs from what the call that made it returned"
    );
}

/// An `update_environment` whose `expect_version` is not the current version is
/// `Precondition` and changes nothing.
pub async fn failed_expect_version_changes_nothing(store: &dyn EnvironmentStore) {
    const PROMISE: &str = "a failed expect_version changes nothing";
    let id = EnvironmentId::generate();
    CONTRACT.ok(
        store
            .create_environment(NewEnvironment::new(id.clone()))
            .await,
        PROMISE,
        "create_environment",
    );
    let current = CONTRACT.ok(
        store
            .update_environment(&id, EnvironmentUpdate::default().with_name("two"))
            .await,
        PROMISE,
        "update_environment",
    );
    let before = history(store, &id).await;
    for stale in [0, 1, 3, i64::MAX] {
        CONTRACT.expect_err(
            store
                .update_environment(
                    &id,
                    EnvironmentUpdate::default()
                        .with_name("refused")
                        .with_settings(sample_settings())
                        .expect_version(stale),
                )
                .await,
            PROMISE,
            "update_environment expecting a version it is not at",
            Error::is_precondition,
        );
        assert_eq!(
            CONTRACT.ok(store.environment(&id).await, PROMISE, "environment"),
            current,
            "{PROMISE}: a refused update (expecting {stale}) changed the environment"
        );
        assert_eq!(
            history(store, &id).await,
            before,
            "{PROMISE}: a refused update (expecting {stale}) changed the history"
        );
    }
}

/// Updates racing each other are applied one after another: each adds exactly one
/// version, and of updates expecting the same version exactly one succeeds.
pub async fn concurrent_updates_each_make_one_version(store: &dyn EnvironmentStore) {
    const PROMISE: &str = "versioned (concurrent updates)";
    const RACERS: usize = 8;
    let id = EnvironmentId::generate();
    CONTRACT.ok(
        store
            .create_environment(NewEnvironment::new(id.clone()))
            .await,
        PROMISE,
        "create_environment",
    );

    let results = join_all((0..RACERS).map(|n| {
        store.update_environment(
            &id,
            EnvironmentUpdate::default()
                .with_name(format!("racer {n}"))
                .expect_version(1),
        )
    }))
    .await;
    let won: Vec<&Environment> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        won.len(),
        1,
        "{PROMISE}: {} of {RACERS} updates expecting version 1 succeeded",
        won.len()
    );
    assert_eq!(
        won[0].version, 2,
        "{PROMISE}: the winner is not at version 2"
    );
    for result in &results {
        if let Err(e) = result {
            assert!(
                e.is_precondition(),
                "{PROMISE}: a losing update must be Precondition, got {e:?}"
            );
        }
    }

    let results = join_all((0..RACERS).map(|n| {
        store.update_environment(
            &id,
            EnvironmentUpdate::default().with_name(format!("free {n}")),
        )
    }))
    .await;
    let mut versions = Vec::new();
    for result in results {
        versions.push(CONTRACT.ok(result, PROMISE, "update_environment").version);
    }
    versions.sort_unstable();
    let expected: Vec<i64> = (3..3 + RACERS as i64).collect();
    assert_eq!(
        versions, expected,
        "{PROMISE}: concurrent updates did not each make one version"
    );
    let history = history(store, &id).await;
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        (1..3 + RACERS as i64).collect::<Vec<_>>(),
        "{PROMISE}: the history lost or doubled a version of concurrent updates"
    );
    let last = CONTRACT.ok(store.environment(&id).await, PROMISE, "environment");
    assert_eq!(
        Some(&last),
        history.last(),
        "{PROMISE}: the current environment is not the last version of its history"
    );
}

/// `delete_environment` removes the environment and its history: it is no longer read,
/// listed or updated, and its id can be created again, at version 1 with a new history.
pub async fn delete_removes_the_environment_and_its_history(store: &dyn EnvironmentStore) {
    const PROMISE: &str = "delete";
    let id = EnvironmentId::generate();
    CONTRACT.ok(
        store
            .create_environment(NewEnvironment::new(id.clone()).with_name("old"))
            .await,
        PROMISE,
        "create_environment",
    );
    CONTRACT.ok(
        store
            .update_environment(&id, EnvironmentUpdate::default().with_name("older"))
            .await,
        PROMISE,
        "update_environment",
    );
    CONTRACT.ok(
        store.delete_environment(&id).await,
        PROMISE,
        "delete_environment",
    );
    CONTRACT.expect_err(
        store.environment(&id).await,
        PROMISE,
        "environment after delete",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        store.environment_history(&id).await,
        PROMISE,
        "environment_history after delete",
        Error::is_not_found,
    );
    let listed = CONTRACT.ok(
        store.list_environments().await,
        PROMISE,
        "list_environments",
    );
    assert!(
        !listed.iter().any(|e| e.id == id),
        "{PROMISE}: a deleted environment is still listed"
    );
    CONTRACT.expect_err(
        store.delete_environment(&id).await,
        PROMISE,
        "a second delete_environment",
        Error::is_not_found,
    );

    let again = CONTRACT.ok(
        store
            .create_environment(NewEnvironment::new(id.clone()).with_name("new"))
            .await,
        PROMISE,
        "create_environment of a deleted id",
    );
    assert_eq!(
        again.version, 1,
        "{PROMISE}: an environment created again is not at version 1"
    );
    assert_eq!(
        history(store, &id).await,
        vec![again],
        "{PROMISE}: the history of a deleted environment was kept"
    );
}

/// Reading, updating, deleting and the history of an id that does not exist are
/// `NotFound`.
pub async fn unknown_ids_are_not_found(store: &dyn EnvironmentStore) {
    const PROMISE: &str = "errors";
    let id = EnvironmentId::generate();
    CONTRACT.expect_err(
        store.environment(&id).await,
        PROMISE,
        "environment of an unknown id",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        store
            .update_environment(&id, EnvironmentUpdate::default().with_name("x"))
            .await,
        PROMISE,
        "update_environment of an unknown id",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        store
            .update_environment(&id, EnvironmentUpdate::default().expect_version(1))
            .await,
        PROMISE,
        "update_environment of an unknown id expecting version 1",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        store.delete_environment(&id).await,
        PROMISE,
        "delete_environment of an unknown id",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        store.environment_history(&id).await,
        PROMISE,
        "environment_history of an unknown id",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        store.environment(&id).await,
        PROMISE,
        "environment of an id a failed update named",
        Error::is_not_found,
    );
}

/// `delete_environment` is `Precondition` while a recording belongs to the environment,
/// and changes nothing; recordings of other environments do not hold it. `catalog` must
/// be the catalog whose recordings `store` checks (for one SQLite file, the same value).
pub async fn delete_refused_while_recordings_belong(
    store: &dyn EnvironmentStore,
    catalog: &dyn Catalog,
) {
    const PROMISE: &str = "no delete while recordings belong";
    let held = EnvironmentId::generate();
    let free = EnvironmentId::generate();
    for id in [&held, &free] {
        CONTRACT.ok(
            store
                .create_environment(NewEnvironment::new(id.clone()))
                .await,
            PROMISE,
            "create_environment",
        );
    }
    let updated = CONTRACT.ok(
        store
            .update_environment(&held, EnvironmentUpdate::default().with_name("held"))
            .await,
        PROMISE,
        "update_environment",
    );
    catalog
        .create_recording(NewRecording::new().with_environment(held.clone()))
        .await
        .unwrap_or_else(|e| panic!("{PROMISE}: create_recording failed: {e}"));
    // A recording of an environment that was never created holds nothing.
    catalog
        .create_recording(NewRecording::new().with_environment(EnvironmentId::generate()))
        .await
        .unwrap_or_else(|e| panic!("{PROMISE}: create_recording failed: {e}"));
    let history_before = history(store, &held).await;

    CONTRACT.expect_err(
        store.delete_environment(&held).await,
        PROMISE,
        "delete_environment of an environment with a recording",
        Error::is_precondition,
    );
    assert_eq!(
        CONTRACT.ok(store.environment(&held).await, PROMISE, "environment"),
        updated,
        "{PROMISE}: a refused delete changed the environment"
    );
    assert_eq!(
        history(store, &held).await,
        history_before,
        "{PROMISE}: a refused delete changed the history"
    );
    CONTRACT.ok(
        store.delete_environment(&free).await,
        PROMISE,
        "delete_environment of an environment without recordings",
    );
}

// ---- helpers -------------------------------------------------------------------------

async fn history(store: &dyn EnvironmentStore, id: &EnvironmentId) -> Vec<Environment> {
    CONTRACT.ok(
        store.environment_history(id).await,
        "versioned",
        "environment_history",
    )
}

/// Settings with every field away from its default.
fn sample_settings() -> EnvironmentSettings {
    let mut settings = EnvironmentSettings::default()
        .with_allowed_hosts(["example.com", "*.example.org:8443"])
        .with_client_playback(false)
        .with_sinks([crate::SinkSettings::new(
            crate::SinkId::new("archive"),
            "sftp://pipe@files.example.com/srv?host_key=SHA256:x&password_from=password",
        )
        .with_secret("password", "a password that round-trips")])
        .with_do_not_store(true);
    settings.max_recording_secs = Some(120);
    settings.max_recording_bytes = Some(50 * 1024 * 1024);
    settings
}

const CONTRACT: super::Contract = super::Contract("environment store");
