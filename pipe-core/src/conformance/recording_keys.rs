//! The [`RecordingKeyStore`] contract, on the catalog that keeps the keys (a key belongs to
//! a recording of that catalog, and goes with its erasure). The suite may share the
//! catalog with other users.

use futures::future::join_all;

use super::catalog::{Window, claim_own};
use crate::{
    Catalog, Change, DeletionReason, Error, JobKind, NewJob, NewRecording, RecordingId,
    RecordingKeyStore,
};

/// Runs every function of this suite, one after another.
pub async fn run_all(c: &dyn Catalog, keys: &dyn RecordingKeyStore) {
    the_first_key_kept_is_the_key(c, keys).await;
    only_recordings_of_the_catalog_get_keys(keys).await;
    live_keys_page_in_order_and_leave_out_deletions(c, keys).await;
    erasure_takes_the_key(c, keys).await;
}

async fn recording(c: &dyn Catalog) -> RecordingId {
    c.create_recording(NewRecording::new())
        .await
        .expect("recording keys: create_recording failed")
        .id
}

/// Marks `id` deleted, as the API does, with its erasure job due in `window`.
async fn delete(c: &dyn Catalog, id: &RecordingId, window: &Window) {
    c.commit(
        Change::new(id.clone())
            .delete(DeletionReason::Request)
            .enqueue(
                NewJob::new(JobKind::Erase {
                    recording: id.clone(),
                })
                .at(window.at(0)),
            ),
    )
    .await
    .expect("recording keys: deleting failed");
}

/// `keep_recording_key` keeps the first key and returns it to every later call, also to
/// calls made at once (two nodes starting the same recording agree on one key).
pub async fn the_first_key_kept_is_the_key(c: &dyn Catalog, keys: &dyn RecordingKeyStore) {
    let id = recording(c).await;
    assert_eq!(
        keys.recording_key(&id)
            .await
            .expect("recording keys: read failed"),
        None,
        "recording keys: a new recording has a key"
    );
    let at_once = join_all((0u8..8).map(|n| keys.keep_recording_key(&id, vec![n; 60]))).await;
    let kept = at_once
        .into_iter()
        .map(|kept| kept.expect("recording keys: keep failed"))
        .collect::<Vec<_>>();
    assert!(
        kept.iter().all(|k| k == &kept[0]),
        "recording keys: calls made at once kept different keys: {kept:?}"
    );
    assert!(
        (0u8..8).any(|n| kept[0] == vec![n; 60]),
        "recording keys: the key kept is none of those given"
    );
    assert_eq!(
        keys.keep_recording_key(&id, vec![9; 60])
            .await
            .expect("recording keys: keep failed"),
        kept[0],
        "recording keys: a later key replaced the first"
    );
    assert_eq!(
        keys.recording_key(&id)
            .await
            .expect("recording keys: read failed"),
        Some(kept[0].clone()),
        "recording keys: the kept key does not read back"
    );
}

/// A recording the catalog does not have gets no key.
pub async fn only_recordings_of_the_catalog_get_keys(keys: &dyn RecordingKeyStore) {
    let stranger = RecordingId::generate();
    super::Contract("RecordingKeyStore").expect_err(
        keys.keep_recording_key(&stranger, vec![1; 60]).await,
        "a key belongs to a recording of the catalog",
        "keep_recording_key(unknown recording)",
        Error::is_not_found,
    );
    assert_eq!(
        keys.recording_key(&stranger)
            .await
            .expect("recording keys: read failed"),
        None,
        "recording keys: an unknown recording has a key"
    );
}

/// `live_recording_keys` pages through keys in the order of their recordings' ids, each
/// once, leaving out recordings being deleted; `still_live` says which of a list are left.
pub async fn live_keys_page_in_order_and_leave_out_deletions(
    c: &dyn Catalog,
    keys: &dyn RecordingKeyStore,
) {
    let mut ids = Vec::new();
    for n in 0u8..5 {
        let id = recording(c).await;
        keys.keep_recording_key(&id, vec![n; 60])
            .await
            .expect("recording keys: keep failed");
        ids.push(id);
    }
    let deleted = ids[2].clone();
    let window = Window::new();
    delete(c, &deleted, &window).await;

    let mut seen = Vec::new();
    let mut after: Option<RecordingId> = None;
    loop {
        let page = keys
            .live_recording_keys(after.as_ref(), 2)
            .await
            .expect("recording keys: live_recording_keys failed");
        assert!(page.len() <= 2, "recording keys: a page is over its limit");
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        seen.extend(page);
    }
    let order = seen.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        order, sorted,
        "recording keys: pages are out of order or repeat"
    );
    for (n, id) in ids.iter().enumerate() {
        let listed = seen.iter().find(|(seen, _)| seen == id);
        if id == &deleted {
            assert!(
                listed.is_none(),
                "recording keys: a recording being deleted is listed"
            );
        } else {
            assert_eq!(
                listed.map(|(_, key)| key.clone()),
                Some(vec![n as u8; 60]),
                "recording keys: a live key is missing or wrong"
            );
        }
    }
    let mut asked = ids.clone();
    asked.push(RecordingId::generate());
    let mut live = keys
        .still_live(&asked)
        .await
        .expect("recording keys: still_live failed");
    live.sort();
    let mut expected = ids
        .into_iter()
        .filter(|id| id != &deleted)
        .collect::<Vec<_>>();
    expected.sort();
    assert_eq!(
        live, expected,
        "recording keys: still_live names the wrong recordings"
    );
    // Leaves no job behind for other functions to claim.
    let erase = claim_own(c, &deleted, window.at(0)).await;
    c.purge_recording(&deleted, &erase.lease, Vec::new())
        .await
        .expect("recording keys: purge failed");
}

/// Purging a recording deletes its key in the same transaction, and an erased recording
/// gets no key again.
pub async fn erasure_takes_the_key(c: &dyn Catalog, keys: &dyn RecordingKeyStore) {
    let id = recording(c).await;
    let other = recording(c).await;
    for recording in [&id, &other] {
        keys.keep_recording_key(recording, vec![7; 60])
            .await
            .expect("recording keys: keep failed");
    }
    let window = Window::new();
    delete(c, &id, &window).await;
    let erase = claim_own(c, &id, window.at(0)).await;
    c.purge_recording(&id, &erase.lease, Vec::new())
        .await
        .expect("recording keys: purge failed");
    assert_eq!(
        keys.recording_key(&id)
            .await
            .expect("recording keys: read failed"),
        None,
        "recording keys: an erased recording's key is left"
    );
    super::Contract("RecordingKeyStore").expect_err(
        keys.keep_recording_key(&id, vec![8; 60]).await,
        "an erased recording gets no key again",
        "keep_recording_key(erased recording)",
        Error::is_not_found,
    );
    assert!(
        keys.recording_key(&other)
            .await
            .expect("recording keys: read failed")
            .is_some(),
        "recording keys: purging took another recording's key"
    );
}
