//! The [`Catalog`] conformance suite: one async function per promise of the trait's
//! `# Contract`, each panicking with a message that names the promise it found broken.
//!
//! ```ignore
//! #[tokio::test]
//! async fn sqlite_catalog_conforms() {
//!     let dir = tempfile::tempdir().unwrap();
//!     let catalog = SqliteCatalog::open(dir.path().join("catalog.db")).await.unwrap();
//!     pipe_core::conformance::catalog::run_all(&catalog).await;
//! }
//! ```
//!
//! Every function works on recordings with fresh random ids, so suites can share a
//! database; the functions about listing put their recordings in a fresh random
//! environment and list that one. Functions that claim jobs enqueue them at a random instant in the past and
//! claim "as of" that instant ([`ClaimOptions::at`]), so jobs enqueued for *now* by other
//! code are not due for them; they finish (complete or dead-letter) every job they claim.
//! They assume no worker serves the catalog while they run: a worker would claim their
//! jobs from under them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::{
    Artifact, ArtifactKind, Attempted, Catalog, Change, ClaimOptions, Copy, DeletionReason,
    DeliveryAttempt, DeliveryFilter, EnvironmentId, Error, Event, Job, JobFilter, JobId, JobKind,
    JobLease, JobRecord, JobStatus, ListOptions, MediaInfo, NewJob, NewRecording, ObjectKey,
    Recording, RecordingCursor, RecordingId, RecordingSource, RecordingState, SinkId, Timestamp,
};

pub(super) const LEASE: Duration = Duration::from_secs(60);

/// Runs every function of this suite, one after another.
pub async fn run_all(c: &dyn Catalog) {
    create_and_get(c).await;
    personal_data_is_kept_merged_and_anonymized(c).await;
    an_upload_keeps_its_source_and_first_declared_length(c).await;
    environment_round_trips(c).await;
    list_recordings(c).await;
    list_filters_by_environment(c).await;
    list_filters_by_created_range(c).await;
    list_pages_cover_every_recording_once_in_order(c).await;
    list_cursor_orders_ties_by_id(c).await;
    commit_applies_everything(c).await;
    failed_precondition_changes_nothing(c).await;
    version_increments_by_one(c).await;
    dedupe_keeps_one_job(c).await;
    claim_takes_due_jobs_oldest_first(c).await;
    expired_lease_is_reclaimed_and_old_lease_refused(c).await;
    extended_lease_keeps_the_job(c).await;
    retry_job_requeues_with_error(c).await;
    dead_letter_job_gives_up_with_reason(c).await;
    jobs_filter(c).await;
    deletion_stops_every_step_and_purge_removes_everything(c).await;
    numbers_are_unique_increasing_and_never_reused(c).await;
    a_sequence_runs_in_order_and_other_sequences_pass_it(c).await;
    jobs_enqueued_after_failures_count_them_or_start_dead(c).await;
    requeue_puts_a_finished_job_back_with_its_attempts_from_zero(c).await;
    delivery_log_keeps_attempts_filters_them_and_goes_with_the_recording(c).await;
    a_lane_runs_one_job_at_a_time_and_a_waiting_job_holds_nothing(c).await;
    concurrent_writes_each_stand_alone(c).await;
}

/// Personal data given at creation reads back; a change with personal data sets the
/// fields it gives and keeps the others; `anonymize` erases every field and records when,
/// and a later change does not set it again.
pub async fn personal_data_is_kept_merged_and_anonymized(c: &dyn Catalog) {
    let seen = crate::PersonalData::default()
        .with_ip("192.0.2.7")
        .with_user_agent("Conformance/1.0");
    let created = c
        .create_recording(NewRecording::new().with_personal(seen.clone()))
        .await
        .expect("personal data: create failed");
    assert_eq!(created.personal, seen, "personal data: create lost some");
    assert_eq!(
        created.anonymized, None,
        "personal data: anonymized at birth"
    );
    let told = crate::PersonalData::default()
        .with_camera_name("Conformance Camera")
        .with_referer("https://example.com/record");
    let merged = c
        .commit(Change::new(created.id.clone()).personal(told))
        .await
        .expect("personal data: commit failed");
    assert_eq!(
        merged.personal,
        seen.clone()
            .with_camera_name("Conformance Camera")
            .with_referer("https://example.com/record"),
        "personal data: a change did not merge"
    );
    let anonymized = c
        .commit(Change::new(created.id.clone()).anonymize())
        .await
        .expect("personal data: anonymize failed");
    assert!(
        anonymized.personal.is_empty(),
        "personal data: anonymize kept {:?}",
        anonymized.personal
    );
    let when = anonymized
        .anonymized
        .expect("personal data: anonymize did not say when");
    let again = c
        .commit(Change::new(created.id.clone()).state(RecordingState::Recorded))
        .await
        .expect("personal data: a later change failed");
    assert!(again.personal.is_empty(), "personal data: it came back");
    assert_eq!(
        again.anonymized,
        Some(when),
        "personal data: anonymized moved"
    );
    assert_eq!(
        c.recording(&created.id).await.expect("recording").personal,
        crate::PersonalData::default(),
        "personal data: read back after anonymizing"
    );
}

/// A recording streamed by a recorder says so; an upload says so with the length it
/// declared at creation or later, and the first declared length stays.
pub async fn an_upload_keeps_its_source_and_first_declared_length(c: &dyn Catalog) {
    let streamed = c
        .create_recording(NewRecording::new())
        .await
        .expect("uploads: create failed");
    assert_eq!(
        streamed.source,
        RecordingSource::Recorder,
        "uploads: default source"
    );
    assert_eq!(
        streamed.upload_length, None,
        "uploads: a stream has no length"
    );
    let known = c
        .create_recording(NewRecording::new().with_upload(Some(1 << 40)))
        .await
        .expect("uploads: create failed");
    assert_eq!(
        known.source,
        RecordingSource::Upload,
        "uploads: source lost"
    );
    assert_eq!(known.upload_length, Some(1 << 40), "uploads: length lost");
    let deferred = c
        .create_recording(NewRecording::new().with_upload(None))
        .await
        .expect("uploads: create failed");
    assert_eq!(
        deferred.upload_length, None,
        "uploads: deferred length invented"
    );
    let told = c
        .commit(Change::new(deferred.id.clone()).upload_length(7))
        .await
        .expect("uploads: declaring the length failed");
    assert_eq!(told.upload_length, Some(7), "uploads: declared length lost");
    let again = c
        .commit(Change::new(deferred.id.clone()).upload_length(9))
        .await
        .expect("uploads: a second declaration failed");
    assert_eq!(
        again.upload_length,
        Some(7),
        "uploads: the first length did not stay"
    );
    let read = c.recording(&deferred.id).await.expect("uploads: read back");
    assert_eq!(
        (read.source, read.upload_length),
        (RecordingSource::Upload, Some(7)),
        "uploads: read back"
    );
}

/// `create_recording` starts in `receiving` with what the client said; `recording` finds
/// it; a second create of the id is `AlreadyExists`; an unknown id is `NotFound`.
pub async fn create_and_get(c: &dyn Catalog) {
    let id = RecordingId::generate();
    let new = NewRecording::new()
        .with_id(id.clone())
        .with_mime_type("video/webm;codecs=vp8,opus")
        .with_payload("user-42");
    let created = c
        .create_recording(new.clone())
        .await
        .expect("create: create_recording failed");
    assert_eq!(
        created.id, id,
        "create: the recording has another id than asked for"
    );
    assert_eq!(
        created.state,
        RecordingState::Receiving,
        "create: a new recording is not `receiving`"
    );
    assert_eq!(
        created.mime_type.as_deref(),
        Some("video/webm;codecs=vp8,opus"),
        "create: mime type lost"
    );
    assert_eq!(
        created.payload.as_deref(),
        Some("user-42"),
        "create: payload lost"
    );
    assert_eq!(created.length, None, "create: a new recording has a length");
    assert_eq!(
        created.media, None,
        "create: a new recording has media info"
    );
    assert_eq!(
        created.failure, None,
        "create: a new recording has a failure"
    );

    let got = c
        .recording(&id)
        .await
        .expect("get: recording() does not find a created recording");
    assert_eq!(
        got, created,
        "get: recording() differs from what create_recording returned"
    );

    match c.create_recording(new).await {
        Err(Error::AlreadyExists { .. }) => {}
        other => {
            panic!("create: a second create of the same id must be AlreadyExists, got {other:?}")
        }
    }
    assert_eq!(
        c.recording(&id).await.unwrap(),
        created,
        "create: a refused create changed the recording"
    );

    match c.recording(&RecordingId::generate()).await {
        Err(e) if e.is_not_found() => {}
        other => panic!("get: an unknown id must be NotFound, got {other:?}"),
    }
}

/// `list_recordings` returns recordings newest first, filtered by state.
pub async fn list_recordings(c: &dyn Catalog) {
    let a = create(c).await;
    let b = create(c).await;
    c.commit(Change::new(b.id.clone()).state(RecordingState::Recorded))
        .await
        .expect("list: commit failed");

    let all = c
        .list_recordings(crate::ListOptions::default().with_limit(1000))
        .await
        .expect("list failed");
    for rec in [&a, &b] {
        assert!(
            all.iter().any(|r| r.id == rec.id),
            "list: a created recording is missing"
        );
    }
    assert_in_order(&all, "list");

    let recorded = c
        .list_recordings(
            crate::ListOptions::default()
                .with_state(RecordingState::Recorded)
                .with_limit(1000),
        )
        .await
        .expect("list with state failed");
    assert!(
        recorded.iter().all(|r| r.state == RecordingState::Recorded),
        "list: state filter ignored"
    );
    assert!(
        recorded.iter().any(|r| r.id == b.id),
        "list: state filter lost a matching recording"
    );
    assert!(
        !recorded.iter().any(|r| r.id == a.id),
        "list: state filter kept a recording in another state"
    );

    let one = c
        .list_recordings(crate::ListOptions::default().with_limit(1))
        .await
        .expect("list failed");
    assert_eq!(one.len(), 1, "list: limit ignored");
}

/// A recording keeps the environment it was created in (through `recording`,
/// `list_recordings` and `commit`); one created without an environment belongs to
/// `production`.
pub async fn environment_round_trips(c: &dyn Catalog) {
    let environment = EnvironmentId::generate();
    let created = create_in(c, &environment).await;
    assert_eq!(
        created.environment, environment,
        "environment: create_recording returned another environment than asked for"
    );
    assert_eq!(
        c.recording(&created.id)
            .await
            .expect("environment: recording failed")
            .environment,
        environment,
        "environment: recording() lost the environment"
    );
    let committed = c
        .commit(Change::new(created.id.clone()).state(RecordingState::Recorded))
        .await
        .expect("environment: commit failed");
    assert_eq!(
        committed.environment, environment,
        "environment: commit changed the environment"
    );
    let listed = list(
        c,
        ListOptions::default().with_environment(environment.clone()),
    )
    .await;
    assert_eq!(
        listed,
        vec![committed],
        "environment: list_recordings of the environment differs from the stored recording"
    );

    let default = create(c).await;
    assert_eq!(
        default.environment,
        EnvironmentId::default_environment(),
        "environment: a recording created without an environment is not in `production`"
    );
    assert_eq!(
        c.recording(&default.id).await.unwrap().environment,
        EnvironmentId::default_environment(),
        "environment: recording() lost the default environment"
    );
}

/// `list_recordings` with environments returns every recording of those environments
/// and no other, newest first; an empty list of environments means every environment;
/// the environment filter combines with the state filter.
pub async fn list_filters_by_environment(c: &dyn Catalog) {
    let start = Timestamp::now();
    let a = EnvironmentId::generate();
    let b = EnvironmentId::generate();
    let mut in_a = Vec::new();
    let mut in_b = Vec::new();
    for _ in 0..3 {
        in_a.push(create_in(c, &a).await);
    }
    for _ in 0..2 {
        in_b.push(create_in(c, &b).await);
    }

    let only_a = list(
        c,
        ListOptions::default()
            .with_environment(a.clone())
            .with_limit(1000),
    )
    .await;
    assert_eq!(
        ids(&only_a),
        ids(&in_a),
        "list by environment: not exactly the recordings of the environment"
    );
    assert_in_order(&only_a, "list by environment");

    let a_and_b = list(
        c,
        ListOptions::default()
            .with_environment(a.clone())
            .with_environment(b.clone())
            .with_limit(1000),
    )
    .await;
    assert_eq!(
        ids(&a_and_b),
        ids(&in_a).union(&ids(&in_b)).cloned().collect(),
        "list by environments: not exactly the recordings of both environments"
    );
    assert_eq!(
        a_and_b.len(),
        in_a.len() + in_b.len(),
        "list by environments: a recording was listed twice"
    );
    assert_in_order(&a_and_b, "list by environments");

    let none = list(
        c,
        ListOptions::default()
            .with_environment(EnvironmentId::generate())
            .with_limit(1000),
    )
    .await;
    assert!(
        none.is_empty(),
        "list by environment: an environment without recordings listed {none:?}"
    );

    let every = list(
        c,
        ListOptions::default()
            .with_created(Some(start), None)
            .with_limit(100_000),
    )
    .await;
    let every = ids(&every);
    assert!(
        in_a.iter().chain(&in_b).all(|r| every.contains(&r.id)),
        "list: without environments, a recording of some environment is missing"
    );

    let recorded = in_a[1].id.clone();
    c.commit(Change::new(recorded.clone()).state(RecordingState::Recorded))
        .await
        .expect("list by environment: commit failed");
    let a_recorded = list(
        c,
        ListOptions::default()
            .with_environment(a.clone())
            .with_state(RecordingState::Recorded),
    )
    .await;
    assert_eq!(
        a_recorded.iter().map(|r| &r.id).collect::<Vec<_>>(),
        vec![&recorded],
        "list by environment and state: not exactly the one recording in both"
    );
}

/// `list_recordings` with `created_from` keeps recordings created at or after it, with
/// `created_until` those created before it; together, those in between.
pub async fn list_filters_by_created_range(c: &dyn Catalog) {
    let environment = EnvironmentId::generate();
    // Recordings until at least three distinct creation times exist.
    let began = Instant::now();
    let mut times = BTreeSet::new();
    let mut count = 0;
    while times.len() < 3 || count < 5 {
        times.insert(create_in(c, &environment).await.created);
        count += 1;
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "list by time: {count} recordings created in 30 s have fewer than 3 creation times"
        );
    }
    let all = list(
        c,
        ListOptions::default()
            .with_environment(environment.clone())
            .with_limit(100_000),
    )
    .await;
    assert_eq!(all.len(), count, "list by time: a recording is missing");
    assert_in_order(&all, "list by time");

    let times: Vec<Timestamp> = times.into_iter().collect();
    let (first, middle, last) = (times[0], times[times.len() / 2], times[times.len() - 1]);
    let ms = |t: Timestamp, d: i64| Timestamp::from_millis(t.as_millis() + d);
    let ranges = [
        (Some(middle), None),
        (None, Some(middle)),
        (Some(first), Some(last)),
        (Some(middle), Some(ms(middle, 1))),
        (Some(middle), Some(middle)),
        (Some(ms(last, 1)), None),
        (None, Some(first)),
        (Some(first), Some(ms(last, 1))),
    ];
    for (from, until) in ranges {
        let got = list(
            c,
            ListOptions::default()
                .with_environment(environment.clone())
                .with_created(from, until)
                .with_limit(100_000),
        )
        .await;
        let want: Vec<&Recording> = all
            .iter()
            .filter(|r| from.is_none_or(|f| r.created >= f) && until.is_none_or(|u| r.created < u))
            .collect();
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            want,
            "list by time: created from {from:?} (inclusive) until {until:?} (exclusive) \
             returned the wrong recordings"
        );
    }
}

/// Following the cursor of the last recording of each page lists every recording exactly
/// once, in the order `created` descending then id descending, whatever the page size,
/// also combined with a time range; the last page is short (or empty).
pub async fn list_pages_cover_every_recording_once_in_order(c: &dyn Catalog) {
    const RECORDINGS: usize = 25;
    let environment = EnvironmentId::generate();
    // Created as fast as the catalog allows, so that some share a millisecond.
    let mut expected = Vec::new();
    for _ in 0..RECORDINGS {
        expected.push(create_in(c, &environment).await);
    }
    expected.sort_by(|x, y| order_key(y).cmp(&order_key(x)));
    let from = expected[RECORDINGS / 2].created;

    for limit in [1, 2, 7, RECORDINGS as u32, RECORDINGS as u32 + 1] {
        for ranged in [false, true] {
            let mut options = ListOptions::default()
                .with_environment(environment.clone())
                .with_limit(limit);
            if ranged {
                options = options.with_created(Some(from), None);
            }
            let want: Vec<&RecordingId> = expected
                .iter()
                .filter(|r| !ranged || r.created >= from)
                .map(|r| &r.id)
                .collect();
            let mut got = Vec::new();
            let mut pages = 0;
            loop {
                let page = list(c, options.clone()).await;
                pages += 1;
                assert!(
                    page.len() <= limit as usize,
                    "list pages: a page of limit {limit} has {} recordings",
                    page.len()
                );
                let Some(last) = page.last() else { break };
                options = options.with_after(RecordingCursor::after(last));
                let short = page.len() < limit as usize;
                got.extend(page);
                if short {
                    break;
                }
                assert!(
                    pages <= want.len() + 1,
                    "list pages: following the cursor does not end"
                );
            }
            assert_eq!(
                got.iter().map(|r| &r.id).collect::<Vec<_>>(),
                want,
                "list pages (limit {limit}, time range {ranged}): the pages together are not \
                 every recording once, created descending then id descending"
            );
        }
    }
}

/// The cursor is a place in the total order `(created, id)` descending: `after` lists
/// exactly the recordings ordered after it, even among recordings created in the same
/// millisecond as the cursor, and whether or not a recording has the cursor's id.
pub async fn list_cursor_orders_ties_by_id(c: &dyn Catalog) {
    let environment = EnvironmentId::generate();
    let mut all = Vec::new();
    for _ in 0..6 {
        all.push(create_in(c, &environment).await);
    }
    all.sort_by(|x, y| order_key(y).cmp(&order_key(x)));
    let id = |s: String| RecordingId::try_from(s).expect("a valid recording id");
    // Generated ids are 26 lowercase base32 characters: `0` sorts before each of them,
    // and 27 `z`s after each of them.
    let lowest = id("0".into());
    let highest = id("z".repeat(27));
    let mut cursors = Vec::new();
    for r in &all {
        let millis = r.created.as_millis();
        cursors.push(RecordingCursor::after(r));
        // Just above the id in the same millisecond: the recording itself is listed first.
        cursors.push(RecordingCursor::new(r.created, id(format!("{}0", r.id))));
        cursors.push(RecordingCursor::new(r.created, lowest.clone()));
        cursors.push(RecordingCursor::new(r.created, highest.clone()));
        cursors.push(RecordingCursor::new(
            Timestamp::from_millis(millis + 1),
            lowest.clone(),
        ));
    }
    for cursor in cursors {
        let got = list(
            c,
            ListOptions::default()
                .with_environment(environment.clone())
                .with_after(cursor.clone())
                .with_limit(1000),
        )
        .await;
        let want: Vec<&RecordingId> = all
            .iter()
            .filter(|r| order_key(r) < (cursor.created, cursor.id.as_str()))
            .map(|r| &r.id)
            .collect();
        assert_eq!(
            got.iter().map(|r| &r.id).collect::<Vec<_>>(),
            want,
            "list after {cursor:?}: not exactly the recordings with (created, id) below it"
        );
    }
}

/// One `commit` applies state, length, media, failure, artifacts, copies, jobs and the
/// completion of a claimed job together; artifacts and copies of the same kind (and
/// sink) are replaced.
pub async fn commit_applies_everything(c: &dyn Catalog) {
    let rec = create(c).await;
    let id = rec.id.clone();
    let media = sample_media();
    let mp4 = artifact(&id, ArtifactKind::Mp4, 1000);
    let snap = artifact(&id, ArtifactKind::Snapshot, 200);
    let copy = Copy::new(
        id.clone(),
        ArtifactKind::Mp4,
        SinkId::new("own"),
        mp4.key.clone(),
        1000,
    );
    let window = Window::new();
    let after = c
        .commit(
            Change::new(id.clone())
                .expect_state(RecordingState::Receiving)
                .state(RecordingState::Converted)
                .length(4321)
                .media(media.clone())
                .artifact(mp4.clone())
                .artifact(snap.clone())
                .copy(copy.clone())
                .enqueue(
                    NewJob::new(JobKind::Convert {
                        recording: id.clone(),
                    })
                    .at(window.at(0)),
                )
                .enqueue(
                    NewJob::new(JobKind::Cleanup {
                        recording: id.clone(),
                    })
                    .at(window.at(0)),
                ),
        )
        .await
        .expect("commit: a change with every part failed");

    assert_eq!(
        after.state,
        RecordingState::Converted,
        "commit: state not applied"
    );
    assert_eq!(after.length, Some(4321), "commit: length not applied");
    assert_eq!(
        after.media.as_ref(),
        Some(&media),
        "commit: media not applied"
    );
    assert_eq!(after.mime_type, rec.mime_type, "commit: mime type changed");
    assert_eq!(after.payload, rec.payload, "commit: payload changed");
    assert_eq!(
        c.recording(&id).await.unwrap(),
        after,
        "commit: returned recording differs from stored"
    );
    assert_eq!(
        sorted(c.artifacts(&id).await.unwrap()),
        sorted(vec![mp4.clone(), snap]),
        "commit: artifacts not applied"
    );
    assert_eq!(
        c.copies(&id).await.unwrap(),
        vec![copy],
        "commit: copies not applied"
    );
    let jobs = jobs_of(c, &id).await;
    assert_eq!(jobs.len(), 2, "commit: enqueued jobs missing: {jobs:?}");
    assert!(
        jobs.iter()
            .all(|j| j.status == JobStatus::Queued && j.attempts == 0),
        "commit: new jobs not queued"
    );
    assert!(
        jobs.iter().all(|j| j.run_at == window.at(0)),
        "commit: run_at of a new job not kept"
    );

    // Replacing an artifact and a copy of the same kind, and completing a claimed job.
    let job = claim_own(c, &id, window.at(0)).await;
    let bigger = artifact(&id, ArtifactKind::Mp4, 2000);
    let copy2 = Copy::new(
        id.clone(),
        ArtifactKind::Mp4,
        SinkId::new("own"),
        bigger.key.clone(),
        2000,
    );
    let after = c
        .commit(
            Change::new(id.clone())
                .fail("broken")
                .artifact(bigger.clone())
                .copy(copy2.clone())
                .complete(job.lease.clone()),
        )
        .await
        .expect("commit: completing a held lease failed");
    assert_eq!(
        after.state,
        RecordingState::Failed,
        "commit: fail() did not set state failed"
    );
    assert_eq!(
        after.failure.as_deref(),
        Some("broken"),
        "commit: failure reason not applied"
    );
    let arts = c.artifacts(&id).await.unwrap();
    assert_eq!(
        arts.len(),
        2,
        "commit: an artifact of the same kind was added, not replaced"
    );
    assert!(
        arts.contains(&bigger),
        "commit: the replacing artifact is not stored"
    );
    assert_eq!(
        c.copies(&id).await.unwrap(),
        vec![copy2],
        "commit: a copy of the same kind and sink was not replaced"
    );
    assert_eq!(
        job_status(c, &id, job.id).await,
        JobStatus::Done,
        "commit: the completed job is not done"
    );

    finish_queued(c, &[&id], window.at(0)).await;
}

/// A commit whose precondition fails (wrong state, stale version, a lease that is not
/// held, an unknown recording) returns an error and changes nothing.
pub async fn failed_precondition_changes_nothing(c: &dyn Catalog) {
    // A claimed job of this recording, to present a wrong token for.
    let (id, _, job) =
        claimed_job(c, |recording| JobKind::Probe { recording }, "precondition").await;
    let before = c.recording(&id).await.unwrap();
    let jobs_before = jobs_of(c, &id).await;

    let would = |change: Change| {
        change
            .state(RecordingState::Copied)
            .length(99)
            .media(sample_media())
            .artifact(artifact(&id, ArtifactKind::Mp4, 5))
            .copy(Copy::new(
                id.clone(),
                ArtifactKind::Mp4,
                SinkId::new("own"),
                ObjectKey::for_artifact(&id, ArtifactKind::Mp4, None),
                5,
            ))
            .enqueue(JobKind::Cleanup {
                recording: id.clone(),
            })
            .enqueue(JobKind::Convert {
                recording: id.clone(),
            })
    };
    let wrong_token = JobLease {
        job: job.id,
        token: "not-the-token".into(),
        expires: job.lease.expires,
    };
    let unknown_job = JobLease {
        job: JobId(i64::MAX),
        token: job.lease.token.clone(),
        expires: job.lease.expires,
    };
    let cases = [
        (
            "wrong state",
            would(Change::new(id.clone()).expect_state(RecordingState::Converted)),
        ),
        (
            "stale version",
            would(Change::new(id.clone()).expect_version(before.version - 1)),
        ),
        (
            "future version",
            would(Change::new(id.clone()).expect_version(before.version + 1)),
        ),
        (
            "lease with a wrong token",
            would(Change::new(id.clone()).complete(wrong_token)),
        ),
        (
            "lease of an unknown job",
            would(Change::new(id.clone()).complete(unknown_job)),
        ),
    ];
    for (what, change) in cases {
        match c.commit(change).await {
            Err(e) if e.is_precondition() => {}
            other => {
                panic!("precondition ({what}): commit must fail with Precondition, got {other:?}")
            }
        }
        assert_eq!(
            c.recording(&id).await.unwrap(),
            before,
            "precondition ({what}): the recording changed"
        );
        assert!(
            c.artifacts(&id).await.unwrap().is_empty(),
            "precondition ({what}): an artifact was stored"
        );
        assert!(
            c.copies(&id).await.unwrap().is_empty(),
            "precondition ({what}): a copy was stored"
        );
        assert_eq!(
            jobs_of(c, &id).await,
            jobs_before,
            "precondition ({what}): jobs were enqueued or changed"
        );
    }

    match c
        .commit(Change::new(RecordingId::generate()).state(RecordingState::Recorded))
        .await
    {
        Err(e) if e.is_not_found() => {}
        other => {
            panic!("precondition: a commit to an unknown recording must be NotFound, got {other:?}")
        }
    }

    c.commit(Change::new(id.clone()).complete(job.lease))
        .await
        .expect("precondition: completing the held lease failed");
}

/// Every successful commit increments the recording's version by exactly one, an empty
/// change included; `expect_version` with the current version succeeds.
pub async fn version_increments_by_one(c: &dyn Catalog) {
    let rec = create(c).await;
    let changes = [
        Change::new(rec.id.clone()),
        Change::new(rec.id.clone())
            .state(RecordingState::Recorded)
            .expect_version(rec.version + 1),
        Change::new(rec.id.clone()).length(10),
    ];
    for (n, change) in (1..).zip(changes) {
        let after = c.commit(change).await.expect("version: commit failed");
        assert_eq!(
            after.version,
            rec.version + n,
            "version: a commit did not increment the version by one"
        );
        assert_eq!(
            c.recording(&rec.id).await.unwrap().version,
            rec.version + n,
            "version: stored version differs"
        );
    }
}

/// Enqueueing a job whose dedupe key exists (queued, in the same change, or done) keeps
/// the existing job and adds none.
pub async fn dedupe_keeps_one_job(c: &dyn Catalog) {
    let rec = create(c).await;
    let id = rec.id.clone();
    let window = Window::new();
    let convert = || {
        NewJob::new(JobKind::Convert {
            recording: id.clone(),
        })
        .at(window.at(0))
    };
    let event = Event::new(
        "video_recorded",
        id.clone(),
        serde_json::json!({"id": id.as_str()}),
    );
    let notify = || {
        NewJob::new(JobKind::Notify {
            event: event.clone(),
        })
        .at(window.at(0))
    };

    c.commit(
        Change::new(id.clone())
            .enqueue(convert())
            .enqueue(convert())
            .enqueue(notify()),
    )
    .await
    .expect("dedupe: commit failed");
    c.commit(Change::new(id.clone()).enqueue(convert()).enqueue(notify()))
        .await
        .expect("dedupe: commit failed");
    let jobs = jobs_of(c, &id).await;
    assert_eq!(
        jobs.len(),
        2,
        "dedupe: the same dedupe key enqueued twice made two jobs: {jobs:?}"
    );

    let a = claim_own(c, &id, window.at(0)).await;
    let b = claim_own(c, &id, window.at(0)).await;
    for job in [a, b] {
        c.commit(Change::new(id.clone()).complete(job.lease))
            .await
            .expect("dedupe: complete failed");
    }
    c.commit(Change::new(id.clone()).enqueue(convert()).enqueue(notify()))
        .await
        .expect("dedupe: commit failed");
    let jobs = jobs_of(c, &id).await;
    assert_eq!(
        jobs.len(),
        2,
        "dedupe: a done job's dedupe key enqueued again made a new job: {jobs:?}"
    );
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "dedupe: a done job was requeued: {jobs:?}"
    );
    assert_no_own_claim(
        c,
        &id,
        window.at(60_000),
        "dedupe: a deduplicated job was claimable",
    )
    .await;
}

/// Claims take due jobs only (`run_at <= now`), oldest `run_at` first, and say who holds
/// them until when.
pub async fn claim_takes_due_jobs_oldest_first(c: &dyn Catalog) {
    let rec = create(c).await;
    let id = rec.id.clone();
    let window = Window::new();
    let later = NewJob::new(JobKind::Cleanup {
        recording: id.clone(),
    })
    .at(window.at(3_600_000));
    let due = NewJob::new(JobKind::Convert {
        recording: id.clone(),
    })
    .at(window.at(0));
    let older = NewJob::new(JobKind::Probe {
        recording: id.clone(),
    })
    .at(window.at(-1_000));
    c.commit(
        Change::new(id.clone())
            .enqueue(later)
            .enqueue(due)
            .enqueue(older),
    )
    .await
    .expect("claim: commit failed");

    assert_no_own_claim(
        c,
        &id,
        window.at(-2_000),
        "claim: a job was claimed before its run_at",
    )
    .await;
    let first = claim_own(c, &id, window.at(0)).await;
    assert_eq!(
        first.kind,
        JobKind::Probe {
            recording: id.clone()
        },
        "claim: not the oldest run_at first"
    );
    assert_eq!(first.attempt, 1, "claim: a first claim must be attempt 1");
    assert_eq!(
        first.lease.job, first.id,
        "claim: the lease names another job"
    );
    assert_eq!(
        first.lease.expires,
        window.at(0).plus(LEASE),
        "claim: lease expiry is not now + lease"
    );
    assert_eq!(
        job_status(c, &id, first.id).await,
        JobStatus::Running,
        "claim: a claimed job is not running"
    );
    let second = claim_own(c, &id, window.at(0)).await;
    assert_eq!(
        second.kind,
        JobKind::Convert {
            recording: id.clone()
        },
        "claim: wrong job claimed second"
    );
    assert_ne!(
        first.lease.token, second.lease.token,
        "claim: two claims share a lease token"
    );
    assert_no_own_claim(
        c,
        &id,
        window.at(1_000),
        "claim: a job with run_at in the future was claimed",
    )
    .await;

    for job in [first, second] {
        c.commit(Change::new(id.clone()).complete(job.lease))
            .await
            .expect("claim: complete failed");
    }
    let last = claim_own(c, &id, window.at(3_600_000)).await;
    assert_eq!(
        last.kind,
        JobKind::Cleanup {
            recording: id.clone()
        },
        "claim: the later job was not claimed when due"
    );
    c.commit(Change::new(id.clone()).complete(last.lease))
        .await
        .expect("claim: complete failed");
}

/// A claim whose lease expired is claimed again with `attempt` one higher; the old lease
/// is then refused by `commit(complete)`, `retry_job` and `dead_letter_job`.
pub async fn expired_lease_is_reclaimed_and_old_lease_refused(c: &dyn Catalog) {
    let (id, window, old) =
        claimed_job(c, |recording| JobKind::Convert { recording }, "lease").await;
    assert_no_own_claim(
        c,
        &id,
        window.at(30_000),
        "lease: a job with a live lease was claimed again",
    )
    .await;

    let new = claim_own(c, &id, window.at(61_000)).await;
    assert_eq!(
        new.id, old.id,
        "lease: the expired job was not the one reclaimed"
    );
    assert_eq!(
        new.attempt,
        old.attempt + 1,
        "lease: a reclaim must have attempt one higher"
    );
    assert_ne!(
        new.lease.token, old.lease.token,
        "lease: a reclaim kept the old token"
    );

    let before = c.recording(&id).await.unwrap();
    match c
        .commit(
            Change::new(id.clone())
                .state(RecordingState::Recorded)
                .complete(old.lease.clone()),
        )
        .await
    {
        Err(e) if e.is_precondition() => {}
        other => panic!("lease: commit with a reclaimed lease must be Precondition, got {other:?}"),
    }
    assert_eq!(
        c.recording(&id).await.unwrap(),
        before,
        "lease: a refused commit changed the recording"
    );
    match c.retry_job(&old.lease, "stale", window.at(0)).await {
        Err(e) if e.is_precondition() => {}
        other => {
            panic!("lease: retry_job with a reclaimed lease must be Precondition, got {other:?}")
        }
    }
    match c.dead_letter_job(&old.lease, "stale").await {
        Err(e) if e.is_precondition() => {}
        other => panic!(
            "lease: dead_letter_job with a reclaimed lease must be Precondition, got {other:?}"
        ),
    }
    let record = job_record(c, &id, new.id).await;
    assert_eq!(
        record.status,
        JobStatus::Running,
        "lease: a refused call changed the job's status"
    );
    assert_eq!(
        record.last_error, None,
        "lease: a refused call recorded an error"
    );

    c.commit(Change::new(id.clone()).complete(new.lease.clone()))
        .await
        .expect("lease: completing the new lease failed");
    match c.commit(Change::new(id.clone()).complete(new.lease)).await {
        Err(e) if e.is_precondition() => {}
        other => panic!("lease: completing a job twice must be Precondition, got {other:?}"),
    }
}

/// `extend_lease` keeps a claimed job past its first expiry with the same token; once the
/// job is completed, extending is `Precondition`.
pub async fn extended_lease_keeps_the_job(c: &dyn Catalog) {
    let (id, window, job) =
        claimed_job(c, |recording| JobKind::Convert { recording }, "extend").await;
    let extended = c
        .extend_lease(&job.lease, Duration::from_secs(60))
        .await
        .expect("extend: extending a held lease failed");
    assert_eq!(extended.token, job.lease.token, "extend: the token changed");
    assert_eq!(extended.job, job.id, "extend: the lease names another job");
    assert!(
        extended.expires >= Timestamp::now().plus(Duration::from_secs(59)),
        "extend: the new expiry is not `by` from now"
    );
    assert_no_own_claim(
        c,
        &id,
        window.at(2 * LEASE.as_millis() as i64),
        "extend: a job whose lease was extended was claimed again",
    )
    .await;
    c.commit(Change::new(id.clone()).complete(extended.clone()))
        .await
        .expect("extend: completing with the extended lease failed");
    match c.extend_lease(&extended, Duration::from_secs(60)).await {
        Err(e) if e.is_precondition() => {}
        other => panic!(
            "extend: extending the lease of a finished job must be Precondition, got {other:?}"
        ),
    }
}

/// `retry_job` returns the job to the queue at `run_at` with the error recorded; it is not
/// due before then, and the lease it presented is spent.
pub async fn retry_job_requeues_with_error(c: &dyn Catalog) {
    let (id, window, job) = claimed_job(c, |recording| JobKind::Probe { recording }, "retry").await;
    let run_at = window.at(600_000);
    c.retry_job(&job.lease, "endpoint said 503", run_at)
        .await
        .expect("retry: retry_job with a held lease failed");

    let record = job_record(c, &id, job.id).await;
    assert_eq!(
        record.status,
        JobStatus::Queued,
        "retry: a retried job is not queued"
    );
    assert_eq!(record.run_at, run_at, "retry: run_at not set");
    assert_eq!(
        record.last_error.as_deref(),
        Some("endpoint said 503"),
        "retry: error not recorded"
    );
    assert_eq!(record.attempts, 1, "retry: attempts changed by retry_job");

    match c.retry_job(&job.lease, "again", run_at).await {
        Err(e) if e.is_precondition() => {}
        other => {
            panic!("retry: a lease already returned must be refused by retry_job, got {other:?}")
        }
    }
    assert_no_own_claim(
        c,
        &id,
        window.at(300_000),
        "retry: a retried job was claimed before its run_at",
    )
    .await;
    let again = claim_own(c, &id, run_at).await;
    assert_eq!(
        again.id, job.id,
        "retry: another job claimed instead of the retried one"
    );
    assert_eq!(
        again.attempt, 2,
        "retry: the second claim must be attempt 2"
    );
    c.commit(Change::new(id.clone()).complete(again.lease))
        .await
        .expect("retry: complete failed");
    assert_eq!(
        job_record(c, &id, job.id).await.status,
        JobStatus::Done,
        "retry: a completed retried job is not done"
    );
}

/// `dead_letter_job` gives up on the job for good: status `dead`, the reason recorded,
/// never claimed again.
pub async fn dead_letter_job_gives_up_with_reason(c: &dyn Catalog) {
    let (id, window, job) =
        claimed_job(c, |recording| JobKind::Probe { recording }, "dead letter").await;
    c.dead_letter_job(&job.lease, "410 Gone")
        .await
        .expect("dead letter: dead_letter_job with a held lease failed");
    let record = job_record(c, &id, job.id).await;
    assert_eq!(
        record.status,
        JobStatus::Dead,
        "dead letter: status is not dead"
    );
    assert_eq!(
        record.last_error.as_deref(),
        Some("410 Gone"),
        "dead letter: reason not recorded"
    );
    assert_no_own_claim(
        c,
        &id,
        window.at(86_400_000),
        "dead letter: a dead job was claimed",
    )
    .await;
    match c.commit(Change::new(id.clone()).complete(job.lease)).await {
        Err(e) if e.is_precondition() => {}
        other => panic!("dead letter: the lease of a dead job must be refused, got {other:?}"),
    }
}

/// `jobs(filter)` returns the jobs matching recording and status, oldest first.
pub async fn jobs_filter(c: &dyn Catalog) {
    let a = create(c).await;
    let b = create(c).await;
    let window = Window::new();
    for rec in [&a, &b] {
        let id = rec.id.clone();
        c.commit(
            Change::new(id.clone())
                .enqueue(
                    NewJob::new(JobKind::Probe {
                        recording: id.clone(),
                    })
                    .at(window.at(0)),
                )
                .enqueue(
                    NewJob::new(JobKind::Convert {
                        recording: id.clone(),
                    })
                    .at(window.at(5_000)),
                ),
        )
        .await
        .expect("jobs: commit failed");
    }
    let a_jobs = jobs_of(c, &a.id).await;
    assert_eq!(
        a_jobs.len(),
        2,
        "jobs: filter by recording returned {a_jobs:?}"
    );
    assert!(
        a_jobs.iter().all(|j| j.kind.recording() == &a.id),
        "jobs: filter by recording kept another recording's job"
    );
    assert!(
        a_jobs.windows(2).all(|w| w[0].id < w[1].id),
        "jobs: not oldest first"
    );
    assert_eq!(
        a_jobs[0].kind,
        JobKind::Probe {
            recording: a.id.clone()
        },
        "jobs: not oldest first"
    );

    let job = claim_own(c, &a.id, window.at(0)).await;
    c.commit(Change::new(a.id.clone()).complete(job.lease))
        .await
        .expect("jobs: complete failed");
    let done = c
        .jobs(
            JobFilter::default()
                .recording(a.id.clone())
                .status(JobStatus::Done),
        )
        .await
        .expect("jobs failed");
    assert_eq!(
        done.len(),
        1,
        "jobs: filter by recording and status returned {done:?}"
    );
    assert_eq!(
        done[0].id, job.id,
        "jobs: filter by status returned the wrong job"
    );
    let all_done = c
        .jobs(JobFilter::default().status(JobStatus::Done))
        .await
        .expect("jobs failed");
    assert!(
        all_done.iter().all(|j| j.status == JobStatus::Done),
        "jobs: filter by status kept other statuses"
    );
    assert!(
        all_done.iter().any(|j| j.id == job.id),
        "jobs: filter by status lost a matching job"
    );
    assert!(
        !all_done.iter().any(|j| j.kind.recording() == &b.id),
        "jobs: filter by status kept a queued job"
    );

    finish_queued(c, &[&a.id, &b.id], window.at(5_000)).await;
}

/// A change with `delete` marks the recording, dead-letters its queued jobs and enqueues
/// the erasure at once; every later change is refused; a step re-queued afterwards is
/// never claimed again (only the erasure is); `purge_recording` refuses a
/// recording that is not being deleted and a lease it does not hold, and with the
/// erasure's lease removes its artifacts, copies and jobs and leaves its tombstone, whose
/// jobs (`video_deleted`) run while no other change is taken.
pub async fn deletion_stops_every_step_and_purge_removes_everything(c: &dyn Catalog) {
    let id = create(c).await.id;
    let window = Window::new();
    let mp4 = artifact(&id, ArtifactKind::Mp4, 10);
    c.commit(
        Change::new(id.clone())
            .state(RecordingState::Recorded)
            .artifact(mp4.clone())
            .copy(Copy::new(
                id.clone(),
                ArtifactKind::Mp4,
                SinkId::new("s"),
                mp4.key.clone(),
                10,
            ))
            .enqueue(
                NewJob::new(JobKind::Convert {
                    recording: id.clone(),
                })
                .at(window.at(0)),
            )
            .enqueue(
                NewJob::new(JobKind::Cleanup {
                    recording: id.clone(),
                })
                .at(window.at(10)),
            ),
    )
    .await
    .expect("deletion: setting up failed");
    let convert = claim_own(c, &id, window.at(0)).await;
    match c.purge_recording(&id, &convert.lease, Vec::new()).await {
        Err(e) if e.is_precondition() => {}
        other => panic!("deletion: purging a recording not being deleted gave {other:?}"),
    }

    let deleting = c
        .commit(
            Change::new(id.clone())
                .delete(DeletionReason::Retention)
                .enqueue(
                    NewJob::new(JobKind::Erase {
                        recording: id.clone(),
                    })
                    .at(window.at(20)),
                ),
        )
        .await
        .expect("deletion: the deleting change failed");
    assert!(deleting.deleting.is_some(), "deletion: `deleting` not set");
    let cleanup = jobs_of(c, &id)
        .await
        .into_iter()
        .find(|j| matches!(j.kind, JobKind::Cleanup { .. }))
        .expect("deletion: the cleanup job vanished");
    assert_eq!(
        cleanup.status,
        JobStatus::Dead,
        "deletion: a queued job still queued"
    );
    assert!(
        cleanup.last_error.is_some(),
        "deletion: no reason on the dead job"
    );
    for (what, change) in [
        (
            "a step's result",
            Change::new(id.clone()).state(RecordingState::Converted),
        ),
        (
            "a second deletion",
            Change::new(id.clone()).delete(DeletionReason::Request),
        ),
        (
            "completing the running job",
            Change::new(id.clone()).complete(convert.lease.clone()),
        ),
    ] {
        match c.commit(change).await {
            Err(e) if e.is_precondition() => {}
            other => panic!("deletion: {what} was not refused: {other:?}"),
        }
    }
    assert_eq!(
        c.recording(&id).await.expect("deletion: recording").state,
        RecordingState::Recorded,
        "deletion: a refused change changed the state"
    );

    // The running step fails for now and is retried, due before the erasure: it must
    // not run again behind the erasure's back.
    c.retry_job(&convert.lease, "storage down", window.at(5))
        .await
        .expect("deletion: retrying the running job failed");
    let erase = claim_own(c, &id, window.at(20)).await;
    assert!(
        matches!(erase.kind, JobKind::Erase { .. }),
        "deletion: claimed {:?} instead of the erasure",
        erase.kind
    );
    assert_eq!(
        job_status(c, &id, convert.id).await,
        JobStatus::Dead,
        "deletion: a step re-queued after the deletion is still alive"
    );
    match c.purge_recording(&id, &convert.lease, Vec::new()).await {
        Err(e) if e.is_precondition() => {}
        other => panic!("deletion: purging with a lease not held gave {other:?}"),
    }
    let before = c.recording(&id).await.expect("deletion: recording");
    assert!(
        c.tombstone(&id).await.is_err_and(|e| e.is_not_found()),
        "deletion: a tombstone before the purge"
    );
    let told = Event::new("video_deleted", id.clone(), serde_json::json!({}));
    let tombstone = c
        .purge_recording(
            &id,
            &erase.lease,
            vec![NewJob::new(JobKind::Notify { event: told }).at(window.at(30))],
        )
        .await
        .expect("deletion: purge with the erasure's lease failed");
    assert!(
        c.recording(&id).await.is_err_and(|e| e.is_not_found()),
        "deletion: the recording is still there"
    );
    assert!(
        c.recording_by_number(before.number)
            .await
            .is_err_and(|e| e.is_not_found()),
        "deletion: the recording is still found by its number"
    );
    assert!(
        c.artifacts(&id).await.expect("artifacts").is_empty()
            && c.copies(&id).await.expect("copies").is_empty(),
        "deletion: artifacts or copies are left"
    );
    let listed = c
        .list_recordings(ListOptions::default().with_limit(1_000))
        .await
        .expect("deletion: list failed");
    assert!(
        !listed.iter().any(|r| r.id == id),
        "deletion: an erased recording is listed"
    );
    let erased_list = c
        .list_recordings(ListOptions::default().with_deleting(true).with_limit(1_000))
        .await
        .expect("deletion: list failed");
    assert!(
        !erased_list.iter().any(|r| r.id == id),
        "deletion: an erased recording is listed among those being deleted"
    );

    // The tombstone: who it was, and when and why it went; the same from `tombstone`.
    assert_eq!(tombstone.id, id, "tombstone: id");
    assert_eq!(tombstone.number, before.number, "tombstone: number");
    assert_eq!(
        tombstone.environment, before.environment,
        "tombstone: environment"
    );
    assert_eq!(tombstone.created, before.created, "tombstone: created");
    assert_eq!(
        Some(tombstone.deletion_requested),
        before.deleting,
        "tombstone: when the deletion was asked for"
    );
    assert!(
        tombstone.erased >= tombstone.deletion_requested,
        "tombstone: erased before it was asked"
    );
    assert_eq!(
        tombstone.reason,
        DeletionReason::Retention,
        "tombstone: reason"
    );
    assert_eq!(
        c.tombstone(&id).await.expect("deletion: tombstone"),
        tombstone,
        "tombstone: read back differs"
    );
    match c
        .create_recording(NewRecording::new().with_id(id.clone()))
        .await
    {
        Err(Error::AlreadyExists { .. }) => {}
        other => panic!("deletion: an erased recording's id was given again: {other:?}"),
    }

    // Only the jobs enqueued with the purge are left, and they run: the changes that
    // complete them and enqueue deliveries are taken; any other change is not.
    let left = jobs_of(c, &id).await;
    assert!(
        left.len() == 1 && matches!(left[0].kind, JobKind::Notify { .. }),
        "deletion: jobs other than the purge's are left: {left:?}"
    );
    let notify = claim_own(c, &id, window.at(30)).await;
    assert!(
        matches!(notify.kind, JobKind::Notify { .. }),
        "deletion: claimed {:?} instead of the purge's notification",
        notify.kind
    );
    let delivery = Event::new("video_deleted", id.clone(), serde_json::json!({}));
    c.commit(
        Change::new(id.clone())
            .complete(notify.lease.clone())
            .enqueue(
                NewJob::new(JobKind::Deliver {
                    event: delivery,
                    endpoint: format!("conformance-{id}"),
                })
                .at(window.at(40)),
            ),
    )
    .await
    .expect("deletion: completing the erased recording's notification was refused");
    for (what, change) in [
        (
            "a step's result",
            Change::new(id.clone()).state(RecordingState::Converted),
        ),
        (
            "a copy",
            Change::new(id.clone()).copy(Copy::new(
                id.clone(),
                ArtifactKind::Mp4,
                SinkId::new("s"),
                mp4.key.clone(),
                10,
            )),
        ),
        (
            "a step's job",
            Change::new(id.clone()).enqueue(JobKind::Erase {
                recording: id.clone(),
            }),
        ),
    ] {
        match c.commit(change).await {
            Err(e) if e.is_not_found() => {}
            other => panic!("deletion: {what} on an erased recording gave {other:?}"),
        }
    }
    finish_queued(c, &[&id], window.at(40)).await;
}

/// Every recording gets a [`crate::Recording::number`] above 0, larger than that of any
/// recording made before it, kept by every change, and never given again after the
/// recording that had it was purged.
pub async fn numbers_are_unique_increasing_and_never_reused(c: &dyn Catalog) {
    let first = create(c).await;
    let second = create(c).await;
    assert!(first.number > 0, "numbers: a recording has number 0");
    assert!(
        second.number > first.number,
        "numbers: {} made after {}",
        second.number,
        first.number
    );
    let changed = c
        .commit(Change::new(second.id.clone()).state(RecordingState::Recorded))
        .await
        .expect("numbers: commit failed");
    assert_eq!(
        changed.number, second.number,
        "numbers: a change renumbered"
    );
    assert_eq!(
        c.recording_by_number(first.number)
            .await
            .expect("numbers: lookup by number failed")
            .id,
        first.id,
        "numbers: the lookup by number found another recording"
    );

    let window = Window::new();
    c.commit(
        Change::new(second.id.clone())
            .delete(DeletionReason::Request)
            .enqueue(
                NewJob::new(JobKind::Erase {
                    recording: second.id.clone(),
                })
                .at(window.at(0)),
            ),
    )
    .await
    .expect("numbers: deleting failed");
    let erase = claim_own(c, &second.id, window.at(0)).await;
    c.purge_recording(&second.id, &erase.lease, Vec::new())
        .await
        .expect("numbers: purge failed");
    assert!(
        c.recording_by_number(second.number)
            .await
            .is_err_and(|e| e.is_not_found()),
        "numbers: a purged recording is found by its number"
    );
    let third = create(c).await;
    assert!(
        third.number > second.number,
        "numbers: {} given after the purged {}",
        third.number,
        second.number
    );
}

/// Jobs of one [`JobKind::sequence`] are claimed one after another in the order they were
/// enqueued, even when the older waits for a retry; a job of another sequence is not held
/// up by them.
pub async fn a_sequence_runs_in_order_and_other_sequences_pass_it(c: &dyn Catalog) {
    let id = create(c).await.id;
    let window = Window::new();
    // Endpoint names of this run only: deliveries to one endpoint share a lane, and
    // another suite on the same catalog must not share it.
    let deliver = |name: &str, endpoint: &str| {
        NewJob::new(JobKind::Deliver {
            event: Event::new(name, id.clone(), serde_json::json!({})),
            endpoint: format!("{endpoint}.{id}"),
        })
        .at(window.at(0))
    };
    c.commit(
        Change::new(id.clone())
            .enqueue(deliver("video_recorded", "a"))
            .enqueue(deliver("video_converted", "a"))
            .enqueue(deliver("video_recorded", "b")),
    )
    .await
    .expect("sequence: commit failed");
    let name = |job: &Job| match &job.kind {
        JobKind::Deliver { event, endpoint } => {
            let endpoint = endpoint.split('.').next().unwrap_or_default();
            format!("{}@{endpoint}", event.name)
        }
        other => format!("{other:?}"),
    };
    let first = claim_own(c, &id, window.at(0)).await;
    assert_eq!(
        name(&first),
        "video_recorded@a",
        "sequence: not the oldest first"
    );
    c.retry_job(&first.lease, "endpoint down", window.at(50))
        .await
        .expect("sequence: retry failed");
    let other = claim_own(c, &id, window.at(1)).await;
    assert_eq!(
        name(&other),
        "video_recorded@b",
        "sequence: a job passed the older job of its sequence that waits for a retry"
    );
    assert_no_own_claim(
        c,
        &id,
        window.at(1),
        "sequence: a job was claimed while an older one of its sequence waits",
    )
    .await;
    let again = claim_own(c, &id, window.at(50)).await;
    assert_eq!(name(&again), "video_recorded@a");
    c.commit(Change::new(id.clone()).complete(again.lease))
        .await
        .expect("sequence: complete failed");
    let next = claim_own(c, &id, window.at(50)).await;
    assert_eq!(
        name(&next),
        "video_converted@a",
        "sequence: the next job of the sequence is not free once the older is done"
    );
    for job in [other, next] {
        c.commit(Change::new(id.clone()).complete(job.lease))
            .await
            .expect("sequence: complete failed");
    }
}

/// A job enqueued [`NewJob::after_failures`] is claimed as the next attempt and shows the
/// earlier error; one enqueued [`NewJob::into_dead`] is never claimed and shows as dead.
pub async fn jobs_enqueued_after_failures_count_them_or_start_dead(c: &dyn Catalog) {
    let id = create(c).await.id;
    let window = Window::new();
    let deliver = |endpoint: &str| {
        NewJob::new(JobKind::Deliver {
            event: Event::new("video_recorded", id.clone(), serde_json::json!({})),
            endpoint: format!("{endpoint}.{id}"),
        })
        .at(window.at(0))
    };
    c.commit(
        Change::new(id.clone())
            .enqueue(deliver("retry").after_failures(1, "503 at once"))
            .enqueue(deliver("gone").after_failures(1, "410 at once").into_dead()),
    )
    .await
    .expect("after failures: commit failed");
    let job = claim_own(c, &id, window.at(0)).await;
    assert_eq!(
        job.attempt, 2,
        "after failures: the attempt made is not counted"
    );
    let dead = jobs_of(c, &id)
        .await
        .into_iter()
        .find(|j| j.id != job.id)
        .expect("after failures: the dead job is missing");
    assert_eq!(
        dead.status,
        JobStatus::Dead,
        "after failures: not enqueued dead"
    );
    assert_eq!(dead.attempts, 1, "after failures: attempts not kept");
    assert_eq!(
        dead.last_error.as_deref(),
        Some("410 at once"),
        "after failures: the error is not kept"
    );
    assert_no_own_claim(
        c,
        &id,
        window.at(1),
        "after failures: a dead job was claimed",
    )
    .await;
    c.commit(Change::new(id.clone()).complete(job.lease))
        .await
        .expect("after failures: complete failed");
}

/// `requeue_job` puts a done or dead job back in the queue, due when asked, counting its
/// attempts from zero; a queued job is left as it is; an unknown job is `NotFound`.
pub async fn requeue_puts_a_finished_job_back_with_its_attempts_from_zero(c: &dyn Catalog) {
    let (id, window, job) = claimed_job(
        c,
        |recording| JobKind::Deliver {
            endpoint: format!("requeued.{recording}"),
            event: Event::new("video_recorded", recording, serde_json::json!({})),
        },
        "requeue",
    )
    .await;
    c.dead_letter_job(&job.lease, "410 Gone")
        .await
        .expect("requeue: dead-lettering failed");
    c.requeue_job(job.id, window.at(10))
        .await
        .expect("requeue: requeueing a dead job failed");
    let record = job_record(c, &id, job.id).await;
    assert_eq!(
        (record.status, record.attempts, record.run_at),
        (JobStatus::Queued, 0, window.at(10)),
        "requeue: a dead job is not queued again, due when asked, with no attempts"
    );
    assert_no_own_claim(c, &id, window.at(5), "requeue: claimed before it is due").await;
    let again = claim_own(c, &id, window.at(10)).await;
    assert_eq!(
        (again.id, again.attempt),
        (job.id, 1),
        "requeue: the requeued job is not claimed as a first attempt"
    );
    c.commit(Change::new(id.clone()).complete(again.lease))
        .await
        .expect("requeue: completing failed");
    c.requeue_job(job.id, window.at(20))
        .await
        .expect("requeue: requeueing a done job failed");
    c.requeue_job(job.id, window.at(30))
        .await
        .expect("requeue: requeueing a queued job failed");
    assert_eq!(
        job_record(c, &id, job.id).await.run_at,
        window.at(20),
        "requeue: a queued job was moved"
    );
    let last = claim_own(c, &id, window.at(20)).await;
    c.commit(Change::new(id).complete(last.lease))
        .await
        .expect("requeue: completing failed");
    match c.requeue_job(JobId(i64::MAX), window.at(0)).await {
        Err(e) if e.is_not_found() => {}
        other => panic!("requeue: an unknown job gave {other:?}"),
    }
}

/// The delivery log keeps every attempt, logged alone or with a change, as it was given;
/// `delivery_attempts` filters by recording, endpoint, event, outcome, time and
/// environment, oldest first, up to the limit; purging the recording removes its
/// entries.
pub async fn delivery_log_keeps_attempts_filters_them_and_goes_with_the_recording(c: &dyn Catalog) {
    let environment = EnvironmentId::generate();
    let id = create_in(c, &environment).await.id;
    let other = create(c).await.id;
    let window = Window::new();
    let recorded = Event::new("video_recorded", id.clone(), serde_json::json!({}));
    let converted = Event::new("video_converted", id.clone(), serde_json::json!({}));
    let refused = Attempted::new(
        Err(Error::temporary("webhook", "hooks.example answered 503")),
        Duration::from_millis(120),
    )
    .with_answer(503, b"busy, try later".to_vec());
    let accepted = Attempted::new(Ok(()), Duration::from_millis(8)).with_answer(204, Vec::new());
    let log = [
        DeliveryAttempt::new(&recorded, "a", window.at(0), &refused),
        DeliveryAttempt::new(&recorded, "b", window.at(1), &accepted),
        DeliveryAttempt::new(&recorded, "a", window.at(2), &accepted),
        DeliveryAttempt::new(&converted, "a", window.at(3), &accepted),
    ];
    c.log_delivery_attempt(log[0].clone())
        .await
        .expect("delivery log: logging an attempt failed");
    c.commit(
        Change::new(id.clone())
            .log_attempt(log[1].clone())
            .log_attempt(log[2].clone()),
    )
    .await
    .expect("delivery log: a change with attempts failed");
    c.log_delivery_attempt(log[3].clone())
        .await
        .expect("delivery log: logging an attempt failed");
    let elsewhere = Event::new("video_recorded", other.clone(), serde_json::json!({}));
    c.log_delivery_attempt(DeliveryAttempt::new(
        &elsewhere,
        "a",
        window.at(0),
        &refused,
    ))
    .await
    .expect("delivery log: logging an attempt failed");

    let query = |filter: DeliveryFilter| async move {
        c.delivery_attempts(filter.clone())
            .await
            .unwrap_or_else(|e| panic!("delivery log: {filter:?} failed: {e}"))
    };
    let mine = DeliveryFilter::default().recording(id.clone());
    assert_eq!(
        query(mine.clone()).await,
        log,
        "delivery log: not every attempt came back as given, oldest first"
    );
    assert_eq!(query(mine.clone().endpoint("b")).await, [log[1].clone()]);
    assert_eq!(
        query(mine.clone().event(converted.id.clone())).await,
        [log[3].clone()]
    );
    assert_eq!(
        query(mine.clone().delivered(false)).await,
        [log[0].clone()],
        "delivery log: filtering failures"
    );
    assert_eq!(query(mine.clone().delivered(true)).await.len(), 3);
    assert_eq!(
        query(mine.clone().since(window.at(2))).await,
        log[2..],
        "delivery log: filtering by time"
    );
    assert_eq!(query(mine.clone().limit(1)).await, log[..1]);
    assert_eq!(
        query(DeliveryFilter::default().environments(vec![environment.clone()])).await,
        log,
        "delivery log: filtering by environment"
    );
    assert!(
        query(DeliveryFilter::default().environments(vec![EnvironmentId::generate()]))
            .await
            .is_empty(),
        "delivery log: another environment's attempts were listed"
    );

    // Erasure: the entries go with the recording.
    c.commit(
        Change::new(id.clone())
            .delete(DeletionReason::Retention)
            .enqueue(
                NewJob::new(JobKind::Erase {
                    recording: id.clone(),
                })
                .at(window.at(10)),
            ),
    )
    .await
    .expect("delivery log: deleting failed");
    let erase = claim_own(c, &id, window.at(10)).await;
    c.purge_recording(&id, &erase.lease, Vec::new())
        .await
        .expect("delivery log: purging failed");
    assert!(
        query(DeliveryFilter::default().recording(id))
            .await
            .is_empty(),
        "delivery log: a purged recording's attempts are left"
    );
    assert_eq!(
        query(DeliveryFilter::default().recording(other))
            .await
            .len(),
        1,
        "delivery log: purging took another recording's attempts"
    );
}

/// Jobs of one [`JobKind::lane`] never run two at a time: while one runs under a live
/// lease, the others wait and jobs of other lanes pass them; a job of the lane that waits
/// for a retry holds up nothing.
pub async fn a_lane_runs_one_job_at_a_time_and_a_waiting_job_holds_nothing(c: &dyn Catalog) {
    let (first, second) = (create(c).await.id, create(c).await.id);
    let window = Window::new();
    // Names of this run only (another suite may share the catalog, and lanes with it).
    let busy = format!("busy.{first}");
    let free = format!("free.{first}");
    let deliver = |recording: &RecordingId, endpoint: &str, at: i64| {
        NewJob::new(JobKind::Deliver {
            event: Event::new("video_recorded", recording.clone(), serde_json::json!({})),
            endpoint: endpoint.to_owned(),
        })
        .at(window.at(at))
    };
    c.commit(Change::new(first.clone()).enqueue(deliver(&first, &busy, 0)))
        .await
        .expect("lane: commit failed");
    c.commit(
        Change::new(second.clone())
            .enqueue(deliver(&second, &busy, 1))
            .enqueue(deliver(&second, &free, 2)),
    )
    .await
    .expect("lane: commit failed");
    let endpoint = |job: &Job| match &job.kind {
        JobKind::Deliver { endpoint, .. } => endpoint.clone(),
        other => panic!("lane: claimed {other:?}"),
    };
    let running = claim_own(c, &first, window.at(5)).await;
    assert_eq!(endpoint(&running), busy, "lane: not the oldest first");
    let passed = claim_own(c, &second, window.at(5)).await;
    assert_eq!(
        endpoint(&passed),
        free,
        "lane: a job of a busy lane was handed out, or another lane was held up"
    );
    assert_no_own_claim(
        c,
        &second,
        window.at(5),
        "lane: a second job of a lane was handed out while one runs",
    )
    .await;
    // The running one now waits for a retry: the lane is free for the other.
    c.retry_job(&running.lease, "endpoint hangs", window.at(100))
        .await
        .expect("lane: retry failed");
    let next = claim_own(c, &second, window.at(6)).await;
    assert_eq!(
        endpoint(&next),
        busy,
        "lane: a job waiting for a retry held up its lane"
    );
    for (recording, job) in [(&second, passed), (&second, next)] {
        c.commit(Change::new(recording.clone()).complete(job.lease))
            .await
            .expect("lane: complete failed");
    }
    let last = claim_own(c, &first, window.at(100)).await;
    c.commit(Change::new(first).complete(last.lease))
        .await
        .expect("lane: complete failed");
}

// ---- helpers -------------------------------------------------------------------------

/// A random instant between 2001 and 2020 that a function claims "as of", far from now
/// and (with overwhelming likelihood) from the window of every other function.
pub(super) struct Window(Timestamp);

impl Window {
    pub(super) fn new() -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        // 600 billion ms is ~19 years; windows are spaced by at least a day.
        const DAY: i64 = 86_400_000;
        let slots = (600_000_000_000 / (2 * DAY)) as u64;
        let slot = (u64::from_le_bytes(bytes) % slots) as i64;
        Self(Timestamp::from_millis(1_000_000_000_000 + slot * 2 * DAY))
    }

    pub(super) fn at(&self, offset_ms: i64) -> Timestamp {
        Timestamp::from_millis(self.0.as_millis() + offset_ms)
    }
}

/// Changes and claims made at once (as a pipeline's workers make them) each succeed or
/// fail on their own: a change whose precondition fails changes nothing while those
/// beside it are kept, and claims made at once take different jobs.
pub async fn concurrent_writes_each_stand_alone(c: &dyn Catalog) {
    let rec = create(c).await;
    let id = rec.id.clone();
    let window = Window::new();
    let changes = (0..32u64).map(|n| {
        let change = Change::new(id.clone()).enqueue(
            NewJob::new(JobKind::Copy {
                recording: id.clone(),
                sink: SinkId::new(format!("sink-{n}")),
            })
            .at(window.at(0)),
        );
        // Every other change expects a version the recording never has.
        let change = if n % 2 == 1 {
            change.expect_version(i64::MAX)
        } else {
            change
        };
        c.commit(change)
    });
    let results = futures::future::join_all(changes).await;
    for (n, result) in results.iter().enumerate() {
        match (n % 2, result) {
            (0, Ok(_)) => {}
            (1, Err(e)) if e.is_precondition() => {}
            (_, other) => panic!("concurrent writes: change {n} ended as {other:?}"),
        }
    }
    let after = c.recording(&id).await.expect("recording failed");
    assert_eq!(
        after.version,
        rec.version + 16,
        "concurrent writes: the kept changes did not each add one version"
    );
    let jobs = jobs_of(c, &id).await;
    assert_eq!(
        jobs.len(),
        16,
        "concurrent writes: a refused change enqueued its job, or a kept one lost it: {jobs:?}"
    );

    let claims = (0..16).map(|_| claim_own(c, &id, window.at(0)));
    let claimed = futures::future::join_all(claims).await;
    let distinct: BTreeSet<JobId> = claimed.iter().map(|job| job.id).collect();
    assert_eq!(
        distinct.len(),
        16,
        "concurrent writes: claims made at once took the same job twice"
    );
    let completions = claimed
        .into_iter()
        .map(|job| c.commit(Change::new(id.clone()).complete(job.lease)));
    for done in futures::future::join_all(completions).await {
        done.expect("concurrent writes: completing a claimed job failed");
    }
    assert_no_own_claim(
        c,
        &id,
        window.at(60_000),
        "concurrent writes: a job was claimable after every job was claimed",
    )
    .await;
}

/// A fresh recording with one job (of the kind `kind` makes) due at the start of a new
/// window, claimed there: how every lease test begins. `what` names the test in failures.
async fn claimed_job(
    c: &dyn Catalog,
    kind: fn(RecordingId) -> JobKind,
    what: &str,
) -> (RecordingId, Window, Job) {
    let id = create(c).await.id;
    let window = Window::new();
    c.commit(Change::new(id.clone()).enqueue(NewJob::new(kind(id.clone())).at(window.at(0))))
        .await
        .unwrap_or_else(|e| panic!("{what}: commit failed: {e}"));
    let job = claim_own(c, &id, window.at(0)).await;
    (id, window, job)
}

async fn create(c: &dyn Catalog) -> Recording {
    c.create_recording(
        NewRecording::new()
            .with_mime_type("video/webm")
            .with_payload("conformance"),
    )
    .await
    .expect("create_recording failed")
}

async fn create_in(c: &dyn Catalog, environment: &EnvironmentId) -> Recording {
    c.create_recording(
        NewRecording::new()
            .with_environment(environment.clone())
            .with_payload("conformance"),
    )
    .await
    .expect("create_recording failed")
}

async fn list(c: &dyn Catalog, options: ListOptions) -> Vec<Recording> {
    c.list_recordings(options.clone())
        .await
        .unwrap_or_else(|e| panic!("list_recordings({options:?}) failed: {e}"))
}

fn ids(recordings: &[Recording]) -> BTreeSet<RecordingId> {
    recordings.iter().map(|r| r.id.clone()).collect()
}

/// Where a recording is in the order of `list_recordings` (which lists it descending).
fn order_key(r: &Recording) -> (Timestamp, &str) {
    (r.created, r.id.as_str())
}

/// Panics unless `recordings` are strictly in the order `(created, id)` descending.
fn assert_in_order(recordings: &[Recording], what: &str) {
    for pair in recordings.windows(2) {
        assert!(
            order_key(&pair[0]) > order_key(&pair[1]),
            "{what}: recordings are not ordered by created then id, descending: {:?} before {:?}",
            order_key(&pair[0]),
            order_key(&pair[1]),
        );
    }
}

/// Claims at `at` and expects a job of `id`.
pub(super) async fn claim_own(c: &dyn Catalog, id: &RecordingId, at: Timestamp) -> Job {
    let job = c
        .claim_job(ClaimOptions::default().with_lease(LEASE).at(at))
        .await
        .expect("claim_job failed")
        .unwrap_or_else(|| panic!("claim: a due job of recording {id} was not claimed"));
    assert_eq!(
        job.kind.recording(),
        id,
        "claim: took a job of another recording (is something else using this catalog?)"
    );
    job
}

async fn assert_no_own_claim(c: &dyn Catalog, id: &RecordingId, at: Timestamp, message: &str) {
    if let Some(job) = c
        .claim_job(ClaimOptions::default().with_lease(LEASE).at(at))
        .await
        .expect("claim_job failed")
    {
        let own = job.kind.recording() == id;
        // Give the job back, due again at once.
        let _ = c
            .retry_job(&job.lease, "claimed by the conformance suite", at)
            .await;
        assert!(!own, "{message}: {job:?}");
    }
}

/// Claims and completes every queued job of the recordings `ids`, all due at `at`.
async fn finish_queued(c: &dyn Catalog, ids: &[&RecordingId], at: Timestamp) {
    let mut queued = 0;
    for id in ids {
        queued += c
            .jobs(
                JobFilter::default()
                    .recording((*id).clone())
                    .status(JobStatus::Queued),
            )
            .await
            .unwrap()
            .len();
    }
    for _ in 0..queued {
        let job = c
            .claim_job(ClaimOptions::default().with_lease(LEASE).at(at))
            .await
            .expect("claim_job failed")
            .unwrap_or_else(|| panic!("claim: a due job of recordings {ids:?} was not claimed"));
        let owner = job.kind.recording().clone();
        assert!(
            ids.contains(&&owner),
            "claim: took a job of another recording (is something else using this catalog?)"
        );
        c.commit(Change::new(owner).complete(job.lease))
            .await
            .expect("complete failed");
    }
}

async fn jobs_of(c: &dyn Catalog, id: &RecordingId) -> Vec<JobRecord> {
    c.jobs(JobFilter::default().recording(id.clone()))
        .await
        .expect("jobs failed")
}

async fn job_record(c: &dyn Catalog, id: &RecordingId, job: JobId) -> JobRecord {
    jobs_of(c, id)
        .await
        .into_iter()
        .find(|j| j.id == job)
        .unwrap_or_else(|| panic!("jobs: job {job} is missing"))
}

async fn job_status(c: &dyn Catalog, id: &RecordingId, job: JobId) -> JobStatus {
    job_record(c, id, job).await.status
}

fn artifact(id: &RecordingId, kind: ArtifactKind, size: u64) -> Artifact {
    Artifact::new(
        id.clone(),
        kind,
        ObjectKey::for_artifact(id, kind, None),
        size,
        format!("{size:064x}"),
        kind.content_type(),
    )
}

fn sample_media() -> MediaInfo {
    let mut media = MediaInfo::new("matroska,webm");
    media.duration = Duration::from_millis(2_040);
    media.width = 320;
    media.height = 240;
    media.video_codec = Some("vp8".into());
    media.audio_codec = Some("opus".into());
    media.frame_rate = Some(30.0);
    media
}

fn sorted(mut artifacts: Vec<Artifact>) -> Vec<Artifact> {
    artifacts.sort_by_key(|a| a.kind);
    artifacts
}
