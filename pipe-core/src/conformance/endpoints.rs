//! The [`EndpointStore`] conformance suite: one async function per promise of the trait's
//! `# Contract`, each panicking with a message that names the promise it found broken.
//!
//! ```ignore
//! #[tokio::test]
//! async fn sqlite_endpoints_conform() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let catalog = SqliteCatalog::open(dir.path().join("catalog.db")).await.unwrap();
//!     pipe_core::conformance::endpoints::run_all(&catalog).await;
//! }
//! ```
//!
//! Every function works in fresh random environments with fresh random endpoint ids, so
//! the suite can run against a store that holds other endpoints.

use std::time::Duration;

use crate::{
    BodyEncoding, EndpointStore, EnvironmentId, EventFilter, EventName, StoredEndpoint, WireFormat,
};

/// Runs every function of this suite, one after another.
pub async fn run_all(store: &dyn EndpointStore) {
    what_is_stored_comes_back(store).await;
    ids_are_unique_across_environments(store).await;
    replace_and_delete(store).await;
}

fn endpoint(environment: &EnvironmentId) -> StoredEndpoint {
    StoredEndpoint::new(
        StoredEndpoint::generate_id(),
        environment.clone(),
        "https://hooks.example.com/in?token=t",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
}

/// `create_endpoint` then `endpoint` and `endpoints` give back every field, secrets
/// included; `endpoints` lists one environment's, oldest first.
pub async fn what_is_stored_comes_back(store: &dyn EndpointStore) {
    let environment = EnvironmentId::generate();
    let mut first = endpoint(&environment);
    first.format = WireFormat::Pipe;
    first.encoding = BodyEncoding::Form;
    first.events = EventFilter::Only(vec![EventName::new("video_converted")]);
    first.disabled = Some("answered 410 Gone".into());
    let first = first.rotated("pipe-key-2", Duration::from_secs(3600));
    let created = store
        .create_endpoint(first.clone())
        .await
        .expect("endpoints: create failed");
    assert_eq!(created, first, "endpoints: create changed the endpoint");
    assert_eq!(
        store
            .endpoint(&first.id)
            .await
            .expect("endpoints: get failed"),
        first,
        "endpoints: not every field came back"
    );
    let second = endpoint(&environment);
    store
        .create_endpoint(second.clone())
        .await
        .expect("endpoints: create failed");
    store
        .create_endpoint(endpoint(&EnvironmentId::generate()))
        .await
        .expect("endpoints: create failed");
    let listed = store
        .endpoints(&environment)
        .await
        .expect("endpoints: list failed");
    assert_eq!(
        listed,
        [first, second],
        "endpoints: the environment's endpoints, oldest first, and no other"
    );
}

/// An id is taken in every environment.
pub async fn ids_are_unique_across_environments(store: &dyn EndpointStore) {
    let one = endpoint(&EnvironmentId::generate());
    store
        .create_endpoint(one.clone())
        .await
        .expect("endpoints: create failed");
    let mut elsewhere = endpoint(&EnvironmentId::generate());
    elsewhere.id = one.id.clone();
    match store.create_endpoint(elsewhere).await {
        Err(crate::Error::AlreadyExists { .. }) => {}
        other => panic!("endpoints: a taken id gave {other:?}"),
    }
}

/// `replace_endpoint` changes what is stored (never the environment); `delete_endpoint`
/// removes it; both, and `endpoint`, are `NotFound` for an unknown id.
pub async fn replace_and_delete(store: &dyn EndpointStore) {
    let environment = EnvironmentId::generate();
    let created = store
        .create_endpoint(endpoint(&environment))
        .await
        .expect("endpoints: create failed");
    let mut changed = created.clone();
    changed.url = "https://other.example.com/hooks".into();
    changed.disabled = None;
    changed.events = EventFilter::All;
    let changed = changed.rotated("whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", Duration::ZERO);
    store
        .replace_endpoint(changed.clone())
        .await
        .expect("endpoints: replace failed");
    assert_eq!(
        store
            .endpoint(&created.id)
            .await
            .expect("endpoints: get failed"),
        changed,
        "endpoints: replace did not store every field"
    );
    let mut moved = changed.clone();
    moved.environment = EnvironmentId::generate();
    store
        .replace_endpoint(moved)
        .await
        .expect("endpoints: replace failed");
    assert_eq!(
        store
            .endpoint(&created.id)
            .await
            .expect("endpoints: get failed")
            .environment,
        environment,
        "endpoints: replace moved the endpoint to another environment"
    );
    store
        .delete_endpoint(&created.id)
        .await
        .expect("endpoints: delete failed");
    let unknown = created.id.clone();
    assert!(
        store
            .endpoint(&unknown)
            .await
            .is_err_and(|e| e.is_not_found()),
        "endpoints: a deleted endpoint is still there"
    );
    assert!(
        store
            .delete_endpoint(&unknown)
            .await
            .is_err_and(|e| e.is_not_found()),
        "endpoints: deleting an unknown endpoint"
    );
    assert!(
        store
            .replace_endpoint(created)
            .await
            .is_err_and(|e| e.is_not_found()),
        "endpoints: replacing an unknown endpoint"
    );
}
