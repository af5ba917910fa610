//! Job claims per second on PostgreSQL, as several nodes make them: `claimers` tasks, each
//! with a catalog handle (its own connection pool) of its own, claim and complete jobs
//! until none is due. 1, 4 and 16 claimers over `PIPE_BENCH_CLAIM_JOBS` (default 5,000)
//! jobs each, with the SQLite catalog's rate beside them (its claimers share one file).
//! The PostgreSQL server is Debian's, started by the bench on loopback with `fsync=off`,
//! so the numbers are the catalog's work, not the disk's.
//!
//! `cargo bench -p pipe-lifecycle --features catalog-postgres --bench claims`
//! (`PIPE_POSTGRES_BIN` names PostgreSQL's `bin` directory if it is not Debian's newest.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipe_core::{Catalog, Change, ClaimOptions, JobKind, NewJob, NewRecording, Timestamp};
use pipe_lifecycle::{PostgresCatalog, SqliteCatalog};
use pipe_storage::testing::PostgresTestServer;

const LEASE: Duration = Duration::from_secs(60);

fn main() {
    let jobs: usize = std::env::var("PIPE_BENCH_CLAIM_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let postgres = PostgresTestServer::start();
    runtime.block_on(async {
        for claimers in [1, 4, 16] {
            let url = postgres.create_database();
            let mut handles: Vec<Arc<dyn Catalog>> = Vec::new();
            for _ in 0..claimers {
                handles.push(Arc::new(PostgresCatalog::connect(&url).await.unwrap()));
            }
            report("PostgreSQL", claimers, jobs, &handles).await;
        }
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        for claimers in [1, 4, 16] {
            let path = dir.path().join(format!("catalog-{claimers}.sqlite"));
            let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(&path).await.unwrap());
            let handles = vec![catalog; claimers];
            report("SQLite (one file)", claimers, jobs, &handles).await;
        }
    });
}

/// Fills the catalog with `jobs` due jobs, then times `handles` claiming and completing
/// them all, one claimer per handle.
async fn report(backend: &str, claimers: usize, jobs: usize, handles: &[Arc<dyn Catalog>]) {
    let due = Timestamp::now();
    for n in 0..jobs {
        let c = &handles[n % handles.len()];
        let id = c.create_recording(NewRecording::new()).await.unwrap().id;
        let job = NewJob::new(JobKind::Probe {
            recording: id.clone(),
        })
        .at(due);
        c.commit(Change::new(id).enqueue(job)).await.unwrap();
    }
    let started = Instant::now();
    let tasks: Vec<_> = handles
        .iter()
        .map(|c| {
            let c = Arc::clone(c);
            tokio::spawn(async move {
                let mut claimed = 0usize;
                let mut slowest = Duration::ZERO;
                loop {
                    let asked = Instant::now();
                    let job = c
                        .claim_job(ClaimOptions::default().with_lease(LEASE))
                        .await
                        .unwrap();
                    slowest = slowest.max(asked.elapsed());
                    let Some(job) = job else {
                        return (claimed, slowest);
                    };
                    let recording = job.kind.recording().clone();
                    c.commit(Change::new(recording).complete(job.lease))
                        .await
                        .unwrap();
                    claimed += 1;
                }
            })
        })
        .collect();
    let mut claimed = 0;
    let mut slowest = Duration::ZERO;
    for task in tasks {
        let (n, slow) = task.await.unwrap();
        claimed += n;
        slowest = slowest.max(slow);
    }
    let took = started.elapsed();
    assert_eq!(claimed, jobs, "every job is claimed once");
    println!(
        "{backend:<18} {claimers:>2} claimers: {jobs} jobs claimed and completed in {:>6.2} s: \
         {:>6.0} jobs/s (slowest claim {:.1} ms)",
        took.as_secs_f64(),
        jobs as f64 / took.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
}
