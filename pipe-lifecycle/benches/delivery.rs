//! Webhook deliveries through the whole job system: a real SQLite catalog, the pipeline's
//! workers, `WebhookNotifier` signing with Standard Webhooks, and a receiver on loopback.
//!
//! For 1, 10 and 100 endpoints it enqueues events from 16 tasks at once (one `notify` job
//! each, which makes the first attempt at every endpoint at once and logs it) while the
//! workers run, and measures signed deliveries
//! per second until the receiver has every one, and the time from each event's commit to
//! its first attempt at each endpoint (p50, p99). A last run has 10 healthy endpoints
//! and one that never answers (the notifier's default 10 s timeout), to show what it
//! costs the healthy ones.
//!
//! `cargo bench -p pipe-lifecycle --bench delivery` (`PIPE_BENCH_DELIVERIES` sets the
//! deliveries per run, default 6000; `PIPE_BENCH_WORKERS` the workers, default 8;
//! `PIPE_BENCH_ENDPOINTS` which runs, such as `1,10+hanging`; default all).

mod common;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use pipe_core::{Catalog, Change, Event, JobKind, NewRecording, Notifier};
use pipe_lifecycle::Pipeline;
use pipe_webhook::{AddressPolicy, StandardWebhooks, WebhookEndpoint, WebhookNotifier};

/// Tasks that commit events at once.
const PRODUCERS: usize = 16;

/// First arrival of each (event id, endpoint).
type Arrivals = Arc<Mutex<HashMap<(String, String), Instant>>>;

async fn receive(
    State(arrivals): State<Arrivals>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
) -> &'static str {
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    arrivals
        .lock()
        .unwrap()
        .entry((id, endpoint))
        .or_insert_with(Instant::now);
    "ok"
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// An endpoint that never answers.
async fn hang() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    "late"
}

/// `endpoints` healthy endpoints, and one more that never answers when `hanging`: the
/// deliveries and latencies are the healthy endpoints'.
async fn run(endpoints: usize, deliveries: usize, workers: usize, hanging: bool) {
    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hooks/{endpoint}", post(receive))
        .route("/hang", post(hang))
        .with_state(Arc::clone(&arrivals));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let secret = StandardWebhooks::generate_secret();
    let mut builder = WebhookNotifier::builder()
        .address_policy(AddressPolicy::new().allow(std::net::Ipv4Addr::LOCALHOST));
    for n in 0..endpoints {
        builder = builder.endpoint(
            WebhookEndpoint::new(format!("http://{addr}/hooks/{n}"))
                .with_id(n.to_string())
                .with_signer(Arc::new(StandardWebhooks::new(&secret).unwrap())),
        );
    }
    if hanging {
        builder = builder.endpoint(
            WebhookEndpoint::new(format!("http://{addr}/hang"))
                .with_id("hanging")
                .with_signer(Arc::new(StandardWebhooks::new(&secret).unwrap())),
        );
    }
    let notifier: Arc<dyn Notifier> = Arc::new(builder.build().unwrap());
    let (catalog, config) = common::pipeline_in(dir.path(), notifier).await;
    let config = config
        .with_workers(workers)
        .with_poll_interval(Duration::from_millis(50));
    let pipeline = Arc::new(Pipeline::new(config));

    let events = deliveries.div_ceil(endpoints);
    let mut recordings = Vec::with_capacity(events);
    for _ in 0..events {
        recordings.push(
            catalog
                .create_recording(NewRecording::new())
                .await
                .unwrap()
                .id,
        );
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Arc::clone(&pipeline).run(async {
        let _ = stopped.await;
    }));

    // Events come from many recordings at once, as on a busy server: PRODUCERS tasks
    // commit them side by side (each commit one event and its notify job).
    let started = Instant::now();
    let committed: Arc<Mutex<HashMap<String, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(events)));
    let mut producers = tokio::task::JoinSet::new();
    let per_producer = recordings.len().div_ceil(PRODUCERS);
    for share in recordings.chunks(per_producer) {
        let share = share.to_vec();
        let catalog = Arc::clone(&catalog);
        let pipeline = Arc::clone(&pipeline);
        let committed = Arc::clone(&committed);
        producers.spawn(async move {
            for id in share {
                let event = Event::new(
                    "video_converted",
                    id.clone(),
                    serde_json::json!({"id": id.as_str()}),
                );
                let event_id = event.id.to_string();
                catalog
                    .commit(Change::new(id).enqueue(JobKind::Notify { event }))
                    .await
                    .unwrap();
                committed.lock().unwrap().insert(event_id, Instant::now());
                pipeline.wake();
            }
        });
    }
    producers.join_all().await;
    let produced = started.elapsed();
    let committed = std::mem::take(&mut *committed.lock().unwrap());
    let total = events * endpoints;
    let limit = Instant::now() + Duration::from_secs(600);
    while arrivals.lock().unwrap().len() < total {
        assert!(
            Instant::now() < limit,
            "deliveries did not finish in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    running.await.unwrap();

    let mut latencies: Vec<Duration> = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|((event, _), at)| at.saturating_duration_since(committed[event]))
        .collect();
    latencies.sort();
    let also = if hanging {
        " + 1 that never answers"
    } else {
        ""
    };
    println!(
        "{endpoints:>3} endpoints{also}: {total} deliveries ({events} events) in {:.2} s = {:.0}/s; \
         event to first attempt p50 {:.1} ms, p99 {:.1} ms ({workers} workers; \
         the events were committed in {:.2} s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        produced.as_secs_f64(),
    );
}

fn main() {
    let deliveries = env_number("PIPE_BENCH_DELIVERIES", 6000);
    let workers = env_number("PIPE_BENCH_WORKERS", 8);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("PIPE_BENCH_ENDPOINTS").ok();
    let runs = [(1, false), (10, false), (100, false), (10, true)];
    for (endpoints, hanging) in runs {
        let name = format!("{endpoints}{}", if hanging { "+hanging" } else { "" });
        if only
            .as_ref()
            .is_none_or(|only| only.split(',').any(|o| o == name))
        {
            runtime.block_on(run(endpoints, deliveries, workers, hanging));
        }
    }
}
