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
//! database. Functions that claim jobs enqueue them at a random instant in the past and
//! claim "as of" that instant ([`ClaimOptions::at`]), so jobs enqueued for *now* by other
//! code are not due for them; they finish (complete or dead-letter) every job they claim.
//! They assume no worker serves the catalog while they run: a worker would claim their
//! jobs from under them.

use std::time::Duration;

use crate::{
    Artifact, ArtifactKind, Catalog, Change, ClaimOptions, Copy, Error, Event, Job, JobFilter,
    JobId, JobKind, JobLease, JobRecord, JobStatus, MediaInfo, NewJob, NewRecording, ObjectKey,
    Recording, RecordingId, RecordingState, SinkId, Timestamp,
};

const LEASE: Duration = Duration::from_secs(60);

/// Runs every function of this suite, one after another.
pub async fn run_all(c: &dyn Catalog) {
    create_and_get(c).await;
    list_recordings(c).await;
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
    for pair in all.windows(2) {
        assert!(
            pair[0].created >= pair[1].created,
            "list: recordings are not newest first"
        );
    }

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

// ---- helpers -------------------------------------------------------------------------

/// A random instant between 2001 and 2020 that a function claims "as of", far from now
/// and (with overwhelming likelihood) from the window of every other function.
struct Window(Timestamp);

impl Window {
    fn new() -> Self {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        // 600 billion ms is ~19 years; windows are spaced by at least a day.
        const DAY: i64 = 86_400_000;
        let slots = (600_000_000_000 / (2 * DAY)) as u64;
        let slot = (u64::from_le_bytes(bytes) % slots) as i64;
        Self(Timestamp::from_millis(1_000_000_000_000 + slot * 2 * DAY))
    }

    fn at(&self, offset_ms: i64) -> Timestamp {
        Timestamp::from_millis(self.0.as_millis() + offset_ms)
    }
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

/// Claims at `at` and expects a job of `id`.
async fn claim_own(c: &dyn Catalog, id: &RecordingId, at: Timestamp) -> Job {
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
