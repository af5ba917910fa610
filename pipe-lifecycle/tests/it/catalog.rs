//! SqliteCatalog against the conformance suite and across restarts, on real files.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use pipe_core::{
    Artifact, ArtifactKind, Catalog, Change, ClaimOptions, JobFilter, JobKind, JobStatus,
    NewRecording, ObjectKey, RecordingState,
};
use pipe_lifecycle::SqliteCatalog;

use crate::util::catalog_in;

#[tokio::test]
async fn sqlite_catalog_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    pipe_core::conformance::catalog::run_all(catalog.as_ref()).await;
}

#[tokio::test]
async fn sqlite_audit_log_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    pipe_core::conformance::audit::run_all(catalog.as_ref()).await;
}

/// The audit log refuses, through SQL, to change an entry or to remove one that is not
/// among the oldest; `expire_audit` is the only way entries leave.
#[tokio::test]
async fn the_audit_table_is_append_only() {
    use pipe_core::{AuditEntry, AuditLog};

    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
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
    drop(catalog);
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("catalog.db").display()
    ))
    .await
    .unwrap();
    for (what, sql) in [
        (
            "a change",
            "UPDATE audit SET outcome = 'denied' WHERE seq = 2",
        ),
        ("a removal in the middle", "DELETE FROM audit WHERE seq = 2"),
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

#[tokio::test]
async fn two_suites_share_one_file() {
    // Two handles on one file, as two processes would have: the suite keeps to its own
    // recordings, and WAL + busy_timeout serialise the writers.
    let dir = tempfile::tempdir().unwrap();
    let a = catalog_in(dir.path()).await;
    let b = catalog_in(dir.path()).await;
    pipe_core::conformance::catalog::run_all(a.as_ref()).await;
    pipe_core::conformance::catalog::run_all(b.as_ref()).await;
}

/// Three handles on one file, as three processes (or nodes) would have, with several
/// claimers and writers on each at once: each job runs once and no update is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_on_one_file_contend_safely() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        catalog_in(dir.path()).await,
        catalog_in(dir.path()).await,
        catalog_in(dir.path()).await,
    );
    pipe_core::conformance::contention::run_all(&[a.as_ref(), b.as_ref(), c.as_ref()]).await;
}

#[tokio::test]
async fn committed_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let catalog = SqliteCatalog::open(&path).await.unwrap();
    let rec = catalog
        .create_recording(NewRecording::new().with_mime_type("video/webm"))
        .await
        .unwrap();
    let id = rec.id.clone();
    let mp4 = Artifact::new(
        id.clone(),
        ArtifactKind::Mp4,
        ObjectKey::for_artifact(&id, ArtifactKind::Mp4, None),
        1234,
        "0".repeat(64),
        "video/mp4",
    );
    let committed = catalog
        .commit(
            Change::new(id.clone())
                .state(RecordingState::Recorded)
                .length(5678)
                .artifact(mp4.clone())
                .enqueue(JobKind::Probe {
                    recording: id.clone(),
                }),
        )
        .await
        .unwrap();
    catalog.close().await;
    drop(catalog);

    let reopened = SqliteCatalog::open(&path).await.unwrap();
    assert_eq!(reopened.recording(&id).await.unwrap(), committed);
    assert_eq!(reopened.artifacts(&id).await.unwrap(), vec![mp4]);
    let jobs = reopened
        .jobs(JobFilter::default().recording(id.clone()))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].kind,
        JobKind::Probe {
            recording: id.clone()
        }
    );
    assert_eq!(jobs[0].status, JobStatus::Queued);
    let job = reopened
        .claim_job(ClaimOptions::default())
        .await
        .unwrap()
        .expect("the queued job is claimable");
    assert_eq!(job.kind, JobKind::Probe { recording: id });
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    std::fs::write(&path, vec![0x42; 8192]).unwrap();
    let err = SqliteCatalog::open(&path)
        .await
        .expect_err("garbage must not open");
    assert!(
        !err.is_retryable(),
        "a corrupt file is not worth retrying: {err}"
    );
}

#[tokio::test]
async fn concurrent_claims_take_each_job_once() {
    const JOBS: usize = 60;
    const WORKERS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    let mut ids = Vec::new();
    for _ in 0..JOBS {
        let rec = catalog.create_recording(NewRecording::new()).await.unwrap();
        catalog
            .commit(Change::new(rec.id.clone()).enqueue(JobKind::Probe {
                recording: rec.id.clone(),
            }))
            .await
            .unwrap();
        ids.push(rec.id);
    }

    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let catalog = Arc::clone(&catalog);
        tasks.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            while let Some(job) = catalog.claim_job(ClaimOptions::default()).await.unwrap() {
                let id = job.kind.recording().clone();
                catalog
                    .commit(Change::new(id.clone()).complete(job.lease))
                    .await
                    .unwrap();
                claimed.push(id);
            }
            claimed
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = start.elapsed();
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), JOBS, "a job was claimed twice or not at all");
    assert_eq!(unique.len(), JOBS);
    let done = catalog
        .jobs(JobFilter::default().status(JobStatus::Done))
        .await
        .unwrap();
    assert_eq!(done.len(), JOBS);
    eprintln!(
        "measured: {JOBS} claim+complete pairs by {WORKERS} workers in {elapsed:?} ({:.2} ms per job, synchronous=FULL)",
        elapsed.as_secs_f64() * 1000.0 / JOBS as f64
    );
}

#[tokio::test]
async fn commit_latency() {
    const COMMITS: u32 = 100;
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    let rec = catalog.create_recording(NewRecording::new()).await.unwrap();
    let start = Instant::now();
    for n in 0..COMMITS {
        let event = pipe_core::Event::new(
            "video_recorded",
            rec.id.clone(),
            serde_json::json!({ "n": n }),
        );
        catalog
            .commit(
                Change::new(rec.id.clone())
                    .length(u64::from(n))
                    .enqueue(JobKind::Notify { event }),
            )
            .await
            .unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(
        catalog.recording(&rec.id).await.unwrap().version,
        i64::from(COMMITS)
    );
    eprintln!(
        "measured: {COMMITS} commits (state + one job each) in {elapsed:?}: {:.2} ms per commit",
        elapsed.as_secs_f64() * 1000.0 / f64::from(COMMITS)
    );
}

#[tokio::test]
async fn released_jobs_are_claimed_again_at_once_and_their_old_leases_refused() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_in(dir.path()).await;
    let rec = catalog.create_recording(NewRecording::new()).await.unwrap();
    catalog
        .commit(Change::new(rec.id.clone()).enqueue(JobKind::Convert {
            recording: rec.id.clone(),
        }))
        .await
        .unwrap();
    let first = catalog
        .claim_job(ClaimOptions::default())
        .await
        .unwrap()
        .unwrap();
    // Claimed with a long lease, as by a process that then died.
    assert!(
        catalog
            .claim_job(ClaimOptions::default())
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(catalog.release_claimed_jobs().await.unwrap(), 1);
    let again = catalog
        .claim_job(ClaimOptions::default())
        .await
        .unwrap()
        .expect("released job is due");
    assert_eq!(again.id, first.id);
    assert_eq!(again.attempt, first.attempt + 1);
    let stale = catalog
        .commit(Change::new(rec.id.clone()).complete(first.lease))
        .await;
    assert!(
        stale.unwrap_err().is_precondition(),
        "the dead process's lease still counted"
    );
    catalog
        .commit(Change::new(rec.id.clone()).complete(again.lease))
        .await
        .unwrap();
    assert_eq!(catalog.release_claimed_jobs().await.unwrap(), 0);
}
