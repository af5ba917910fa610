//! The [`Catalog`] contract under contention: `handles` are several handles on one
//! catalog, each with connections of its own, as several nodes (or processes) have. Many
//! claimers at once on every handle run each job once; optimistic versions hold when
//! every handle changes one recording at once.
//!
//! The suite needs a catalog of its own: its claimers take every job that is due in its
//! window, and would count another user's job as a stranger.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use futures::future::join_all;

use super::catalog::{LEASE, Window};
use crate::{Catalog, Change, ClaimOptions, JobId, JobKind, NewJob, NewRecording, RecordingId};

/// Runs every function of this suite, one after another.
pub async fn run_all(handles: &[&dyn Catalog]) {
    claimers_on_every_handle_run_each_job_once(handles).await;
    versions_hold_when_every_handle_changes_one_recording(handles).await;
}

/// Jobs made for the claimers.
const JOBS: usize = 240;
/// Claimers per handle, each claiming and completing until no job is left.
const CLAIMERS_PER_HANDLE: usize = 4;
/// Changes each writer keeps.
const CHANGES_PER_WRITER: usize = 10;

/// Each job claimed, with its recording and how many times it was claimed.
type Claims = Mutex<HashMap<JobId, (RecordingId, u32)>>;

/// Claims and completes jobs due in `window` through `c` until none is left.
async fn claim_until_empty(c: &dyn Catalog, window: &Window, claims: &Claims) {
    loop {
        let claimed = c
            .claim_job(ClaimOptions::default().with_lease(LEASE).at(window.at(0)))
            .await
            .expect("contention: claim_job failed");
        let Some(job) = claimed else { return };
        let recording = job.kind.recording().clone();
        claims
            .lock()
            .expect("not poisoned")
            .entry(job.id)
            .or_insert_with(|| (recording.clone(), 0))
            .1 += 1;
        c.commit(Change::new(recording).complete(job.lease))
            .await
            .expect("contention: completing a claimed job failed");
    }
}

/// `JOBS` jobs, claimed and completed by several claimers on every handle at once: each
/// job is claimed exactly once, and none is left.
pub async fn claimers_on_every_handle_run_each_job_once(handles: &[&dyn Catalog]) {
    assert!(!handles.is_empty(), "contention: no handle given");
    let window = Window::new();
    let mut ours = BTreeSet::new();
    for n in 0..JOBS {
        let c = handles[n % handles.len()];
        let id = c
            .create_recording(NewRecording::new())
            .await
            .expect("contention: create_recording failed")
            .id;
        c.commit(
            Change::new(id.clone()).enqueue(
                NewJob::new(JobKind::Probe {
                    recording: id.clone(),
                })
                .at(window.at(0)),
            ),
        )
        .await
        .expect("contention: enqueueing failed");
        ours.insert(id);
    }
    let claims = Claims::default();
    let claimers = handles
        .iter()
        .flat_map(|c| (0..CLAIMERS_PER_HANDLE).map(|_| claim_until_empty(*c, &window, &claims)));
    join_all(claimers).await;

    let claims = claims.into_inner().expect("not poisoned");
    for (job, (recording, times)) in &claims {
        assert!(
            ours.contains(recording),
            "contention: job {job:?} of another user was claimed (the suite needs a catalog \
             of its own)"
        );
        assert_eq!(
            *times, 1,
            "contention: job {job:?} was claimed {times} times by claimers on separate \
             connections"
        );
    }
    let claimed: BTreeSet<&RecordingId> = claims.values().map(|(r, _)| r).collect();
    assert_eq!(
        claimed.len(),
        JOBS,
        "contention: {} of {JOBS} jobs were claimed",
        claimed.len()
    );
}

/// Keeps `CHANGES_PER_WRITER` changes to `id` through `c`, each expecting the version it
/// read and reading again when another writer won; the versions its changes started from.
async fn change_repeatedly(c: &dyn Catalog, id: &RecordingId) -> Vec<i64> {
    let mut from = Vec::with_capacity(CHANGES_PER_WRITER);
    while from.len() < CHANGES_PER_WRITER {
        let read = c
            .recording(id)
            .await
            .expect("contention: recording failed")
            .version;
        match c.commit(Change::new(id.clone()).expect_version(read)).await {
            Ok(kept) => {
                assert_eq!(
                    kept.version,
                    read + 1,
                    "contention: a change kept from version {read} made version {}",
                    kept.version
                );
                from.push(read);
            }
            Err(e) if e.is_precondition() => {}
            Err(e) => panic!("contention: a change failed: {e}"),
        }
    }
    from
}

/// Two writers per handle change one recording at once, each change expecting the version
/// it read: every change kept adds one version, and no two kept changes started from the
/// same version (no lost update).
pub async fn versions_hold_when_every_handle_changes_one_recording(handles: &[&dyn Catalog]) {
    assert!(!handles.is_empty(), "contention: no handle given");
    let recording = handles[0]
        .create_recording(NewRecording::new())
        .await
        .expect("contention: create_recording failed");
    let id = recording.id.clone();
    let writers = handles
        .iter()
        .flat_map(|c| [*c, *c])
        .map(|c| change_repeatedly(c, &id));
    let from: Vec<i64> = join_all(writers).await.into_iter().flatten().collect();
    let kept = from.len();
    let distinct: BTreeSet<i64> = from.into_iter().collect();
    assert_eq!(
        distinct.len(),
        kept,
        "contention: two changes were kept from the same version (a lost update)"
    );
    let last = handles[handles.len() - 1]
        .recording(&id)
        .await
        .expect("contention: recording failed");
    assert_eq!(
        last.version,
        recording.version + kept as i64,
        "contention: {kept} changes kept, but the version moved from {} to {}",
        recording.version,
        last.version
    );
}
