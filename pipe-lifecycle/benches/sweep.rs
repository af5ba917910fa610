//! Retention over a backlog: `PIPE_BENCH_SWEEP_RECORDINGS` (default 100,000) recordings
//! all past their retention at once, in an SQLite catalog on disk. The bench sweeps until
//! none is left to ask for, then runs the erase jobs until the catalog is empty, while an
//! "ingest" task creates a recording every 10 ms and times each creation: a sweep must
//! not stall recordings that are arriving.
//!
//! Prints the sweeps' rate (deletions asked per second), the erasures' rate, and the
//! ingest's creation latency (median, p99, max) during both.
//!
//! `cargo bench -p pipe-lifecycle --bench sweep`

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipe_core::{
    Catalog, Change, EnvironmentId, EnvironmentSettings, EnvironmentStore, NewEnvironment,
    NewRecording, RecordingState, Timestamp,
};
use pipe_lifecycle::Pipeline;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let recordings: usize = std::env::var("PIPE_BENCH_SWEEP_RECORDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(recordings));
}

async fn run(recordings: usize) {
    let dir = tempfile::tempdir().unwrap();
    let notifier = Arc::new(NoNotifier);
    let (catalog, config) = common::pipeline_in(dir.path(), notifier).await;
    catalog
        .create_environment(
            NewEnvironment::new(EnvironmentId::default()).with_settings({
                let mut settings = EnvironmentSettings::default().with_retention_hours(Some(30));
                // The recordings arriving during the bench are not to be taken for
                // abandoned by its clock, 31 hours ahead.
                settings.abandoned_after_hours = 1000;
                settings
            }),
        )
        .await
        .unwrap();
    let pipeline = Arc::new(Pipeline::new(
        config.with_environments(catalog.clone()).with_workers(2),
    ));

    let filled = Instant::now();
    for _ in 0..recordings {
        let rec = catalog.create_recording(NewRecording::new()).await.unwrap();
        catalog
            .commit(
                Change::new(rec.id.clone())
                    .expect_state(RecordingState::Receiving)
                    .state(RecordingState::Copied)
                    .length(0),
            )
            .await
            .unwrap();
    }
    println!(
        "{recordings} copied recordings made in {:.1} s",
        filled.elapsed().as_secs_f64()
    );

    // Recordings keep arriving meanwhile; each creation is timed.
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let arriving = {
        let (catalog, latencies) = (catalog.clone(), Arc::clone(&latencies));
        tokio::spawn(async move {
            loop {
                let started = Instant::now();
                catalog.create_recording(NewRecording::new()).await.unwrap();
                latencies.lock().unwrap().push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let later = Timestamp::now().plus(Duration::from_secs(31 * 3600));
    let swept = Instant::now();
    let (mut asked, mut sweeps) = (0, 0);
    loop {
        let report = pipeline.sweep(later).await.unwrap();
        if report.deleted == 0 {
            break;
        }
        asked += report.deleted;
        sweeps += 1;
    }
    let sweep_time = swept.elapsed();
    let during_sweeps = std::mem::take(&mut *latencies.lock().unwrap());
    let erased = Instant::now();
    let ran = pipeline.drain().await.unwrap();
    let erase_time = erased.elapsed();
    arriving.abort();
    let during_erasures = std::mem::take(&mut *latencies.lock().unwrap());
    println!(
        "sweeps: {asked} deletions asked in {sweeps} sweeps, {:.1} s: {:.0} a second",
        sweep_time.as_secs_f64(),
        asked as f64 / sweep_time.as_secs_f64()
    );
    println!(
        "erasures: {ran} jobs in {:.1} s: {:.0} a second (2 workers, no sinks)",
        erase_time.as_secs_f64(),
        ran as f64 / erase_time.as_secs_f64()
    );
    for (what, mut taken) in [
        ("during the sweeps", during_sweeps),
        ("during the erasures", during_erasures),
    ] {
        taken.sort();
        println!(
            "a recording arriving {what}: {} created, median {:?}, p99 {:?}, max {:?}",
            taken.len(),
            percentile(&taken, 0.5),
            percentile(&taken, 0.99),
            taken.last().copied().unwrap_or_default()
        );
    }
}

#[derive(Debug)]
struct NoNotifier;

#[async_trait::async_trait]
impl pipe_core::Notifier for NoNotifier {
    async fn deliver(&self, _event: &pipe_core::Event) -> pipe_core::Result<()> {
        Ok(())
    }
}
