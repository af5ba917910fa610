//! The [`ApiKeyStore`] conformance suite: one async function per promise of the trait's
//! `# Contract`, each panicking with a message that names the promise it found broken.
//!
//! ```ignore
//! #[tokio::test]
//! async fn sqlite_api_keys_conform() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let catalog = SqliteCatalog::open(dir.path().join("catalog.db")).await.unwrap();
//!     pipe_core::conformance::api_keys::run_all(&catalog).await;
//! }
//! ```
//!
//! Every function works on keys with fresh random ids, so the suite can run against a
//! store that holds other keys, and the functions can run in any order. Their keys stay
//! (a store never forgets a key); they are created in the past (before 2021) and revoked,
//! so they are never mistaken for real ones. Durability is the implementation's own
//! test: it must reopen its store.

use crate::{ApiKey, ApiKeyId, ApiKeyStore, EnvironmentId, Error, Role, Timestamp};

/// Runs every function of this suite, one after another.
pub async fn run_all(store: &dyn ApiKeyStore) {
    create_and_get(store).await;
    every_field_round_trips(store).await;
    list_oldest_first_with_revoked_keys(store).await;
    revoke_is_immediate_and_keeps_the_first_time(store).await;
    unknown_ids_are_not_found(store).await;
}

/// `create_api_key` stores the key as given and returns it; `api_key` reads it back; a
/// second create of the id is `AlreadyExists` and changes nothing.
pub async fn create_and_get(store: &dyn ApiKeyStore) {
    const PROMISE: &str = "create";
    let key = sample(Role::Editor, 1_000);
    let created = CONTRACT.ok(
        store.create_api_key(key.clone()).await,
        PROMISE,
        "create_api_key",
    );
    assert_eq!(
        created, key,
        "{PROMISE}: create_api_key returned another key than it was given"
    );
    assert_eq!(
        CONTRACT.ok(store.api_key(&key.id).await, PROMISE, "api_key"),
        key,
        "{PROMISE}: api_key() differs from the key created"
    );

    let mut other = sample(Role::Admin, 2_000);
    other.id = key.id.clone();
    CONTRACT.expect_err(
        store.create_api_key(other).await,
        "errors",
        "a second create_api_key of the same id",
        |e| matches!(e, Error::AlreadyExists { .. }),
    );
    assert_eq!(
        CONTRACT.ok(store.api_key(&key.id).await, PROMISE, "api_key"),
        key,
        "errors: a refused create changed the key"
    );
    revoke(store, &key).await;
}

/// Every role, environment list (empty for all, one, several) and a key created revoked
/// are stored and read back as given.
pub async fn every_field_round_trips(store: &dyn ApiKeyStore) {
    const PROMISE: &str = "create";
    let several = vec![
        EnvironmentId::default_environment(),
        EnvironmentId::generate(),
        EnvironmentId::generate(),
    ];
    let mut keys = Vec::new();
    for (n, role) in [Role::Viewer, Role::Editor, Role::Admin]
        .into_iter()
        .enumerate()
    {
        for environments in [vec![], several[..1].to_vec(), several.clone()] {
            let mut key = sample(role, 3_000 + n as i64);
            key.environments = environments;
            keys.push(key);
        }
    }
    let mut revoked = sample(Role::Viewer, 4_000);
    revoked.revoked = Some(Timestamp::from_millis(1_000_000_004_000));
    keys.push(revoked);

    for key in &keys {
        CONTRACT.ok(
            store.create_api_key(key.clone()).await,
            PROMISE,
            "create_api_key",
        );
        assert_eq!(
            &CONTRACT.ok(store.api_key(&key.id).await, PROMISE, "api_key"),
            key,
            "{PROMISE}: a key with role {} and environments {:?} did not round-trip",
            key.role,
            key.environments
        );
    }
    for key in &keys {
        revoke(store, key).await;
    }
}

/// `list_api_keys` lists every key, revoked ones included (with their revocation time),
/// oldest `created` first.
pub async fn list_oldest_first_with_revoked_keys(store: &dyn ApiKeyStore) {
    const PROMISE: &str = "kept, not forgotten";
    // Created out of order, so the order of insertion cannot pass for the order asked.
    let keys = [
        sample(Role::Viewer, 7_000),
        sample(Role::Editor, 5_000),
        sample(Role::Admin, 6_000),
    ];
    for key in &keys {
        CONTRACT.ok(
            store.create_api_key(key.clone()).await,
            PROMISE,
            "create_api_key",
        );
    }
    let revoked = CONTRACT.ok(
        store
            .revoke_api_key(&keys[2].id, Timestamp::from_millis(1_000_000_008_000))
            .await,
        PROMISE,
        "revoke_api_key",
    );

    let listed = CONTRACT.ok(store.list_api_keys().await, PROMISE, "list_api_keys");
    assert!(
        listed.windows(2).all(|w| w[0].created <= w[1].created),
        "list oldest first: keys are not listed oldest first"
    );
    let ours: Vec<&ApiKey> = listed
        .iter()
        .filter(|k| keys.iter().any(|mine| mine.id == k.id))
        .collect();
    assert_eq!(
        ours,
        vec![&keys[1], &revoked, &keys[0]],
        "{PROMISE}: not every key listed once, oldest first, revoked with its time"
    );
    for key in &keys {
        revoke(store, key).await;
    }
}

/// After `revoke_api_key` returns, `api_key` shows the key revoked at the time given;
/// revoking it again keeps the first time; nothing else of the key changes.
pub async fn revoke_is_immediate_and_keeps_the_first_time(store: &dyn ApiKeyStore) {
    const PROMISE: &str = "revocation is immediate";
    let key = sample(Role::Admin, 9_000);
    CONTRACT.ok(
        store.create_api_key(key.clone()).await,
        PROMISE,
        "create_api_key",
    );
    let first = Timestamp::from_millis(1_000_000_010_000);
    let revoked = CONTRACT.ok(
        store.revoke_api_key(&key.id, first).await,
        PROMISE,
        "revoke_api_key",
    );
    let mut expected = key.clone();
    expected.revoked = Some(first);
    assert_eq!(
        revoked, expected,
        "{PROMISE}: revoke_api_key did not return the key revoked at the time given"
    );
    assert_eq!(
        CONTRACT.ok(store.api_key(&key.id).await, PROMISE, "api_key"),
        expected,
        "{PROMISE}: api_key() after revoke_api_key does not show the key revoked"
    );

    for (what, at) in [
        ("later", Timestamp::from_millis(1_000_000_020_000)),
        ("earlier", Timestamp::from_millis(1_000_000_000_000)),
    ] {
        let again = CONTRACT.ok(
            store.revoke_api_key(&key.id, at).await,
            PROMISE,
            "a second revoke_api_key",
        );
        assert_eq!(
            again, expected,
            "{PROMISE}: revoking a revoked key ({what}) did not keep the first revocation"
        );
        assert_eq!(
            CONTRACT.ok(store.api_key(&key.id).await, PROMISE, "api_key"),
            expected,
            "{PROMISE}: revoking a revoked key ({what}) changed the stored key"
        );
    }
}

/// `api_key` and `revoke_api_key` of an id that does not exist are `NotFound`, and a
/// refused revoke creates nothing.
pub async fn unknown_ids_are_not_found(store: &dyn ApiKeyStore) {
    const PROMISE: &str = "errors";
    let id = ApiKeyId::generate();
    CONTRACT.expect_err(
        store.api_key(&id).await,
        PROMISE,
        "api_key of an unknown id",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        store
            .revoke_api_key(&id, Timestamp::from_millis(1_000_000_000_000))
            .await,
        PROMISE,
        "revoke_api_key of an unknown id",
        Error::is_not_found,
    );
    CONTRACT.expect_err(
        store.api_key(&id).await,
        PROMISE,
        "api_key of an id a refused revoke named",
        Error::is_not_found,
    );
    let listed = CONTRACT.ok(store.list_api_keys().await, PROMISE, "list_api_keys");
    assert!(
        !listed.iter().any(|k| k.id == id),
        "{PROMISE}: a refused revoke listed a key"
    );
}

// ---- helpers -------------------------------------------------------------------------

/// A fresh key of `role`, created `offset_ms` after 2001-09-09 (long before any real key).
fn sample(role: Role, offset_ms: i64) -> ApiKey {
    let id = ApiKeyId::generate();
    ApiKey::new(
        id.clone(),
        format!("conformance {id}"),
        role,
        vec![EnvironmentId::generate()],
        format!("hash-of-{id}"),
        Timestamp::from_millis(1_000_000_000_000 + offset_ms),
    )
}

/// Revokes a key the suite made (if it is not revoked yet), so it never works.
async fn revoke(store: &dyn ApiKeyStore, key: &ApiKey) {
    CONTRACT.ok(
        store
            .revoke_api_key(&key.id, Timestamp::from_millis(1_000_000_099_000))
            .await,
        "revocation is immediate",
        "revoke_api_key",
    );
}

const CONTRACT: super::Contract = super::Contract("API key store");
