//! A receiver that answers 500 for 20 minutes and then 200, in real time, with the default
//! retry schedule (at once, 5 s, 5 min, 30 min, …): does it get every event, each under
//! one `webhook-id`, in order per recording, and when?
//!
//! Twenty recordings each tell three events (`video_recorded`, `video_converted`,
//! `video_copied_pipe_s3`) at the start, through the real pipeline, an SQLite catalog and
//! `WebhookNotifier` signing with Standard Webhooks. The receiver logs every request; at
//! the end the bench prints when each event was taken, how many requests it took, and
//! checks the promises (it panics if one is broken).
//!
//! `cargo bench -p pipe-lifecycle --bench outage` (about 36 minutes;
//! `PIPE_BENCH_OUTAGE_SECONDS` sets the outage, default 1200).

mod common;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use pipe_core::{Catalog, Change, Event, JobKind, NewJob, NewRecording, Notifier};
use pipe_lifecycle::Pipeline;
use pipe_webhook::{AddressPolicy, StandardWebhooks, WebhookEndpoint, WebhookNotifier};

const RECORDINGS: usize = 20;
const EVENTS: [&str; 3] = ["video_recorded", "video_converted", "video_copied_pipe_s3"];

/// One request the receiver got: when, which webhook-id, for which recording, and
/// whether it was taken (200) or refused (500).
#[derive(Clone, Debug)]
struct Request {
    at: Duration,
    webhook_id: String,
    recording: String,
    taken: bool,
}

#[derive(Clone)]
struct Receiver {
    started: Instant,
    outage: Duration,
    log: Arc<Mutex<Vec<Request>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let at = receiver.started.elapsed();
    let taken = at >= receiver.outage;
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    receiver.log.lock().unwrap().push(Request {
        at,
        webhook_id: headers["webhook-id"].to_str().unwrap().to_owned(),
        recording: body["data"]["recording"].as_str().unwrap().to_owned(),
        taken,
    });
    if taken {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

fn main() {
    let outage = Duration::from_secs(
        std::env::var("PIPE_BENCH_OUTAGE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1200),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(outage));
}

async fn run(outage: Duration) {
    let receiver = Receiver {
        started: Instant::now(),
        outage,
        log: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hooks", post(receive))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let secret = StandardWebhooks::generate_secret();
    let notifier: Arc<dyn Notifier> = Arc::new(
        WebhookNotifier::builder()
            .address_policy(AddressPolicy::new().allow(std::net::Ipv4Addr::LOCALHOST))
            .endpoint(
                WebhookEndpoint::new(format!("http://{addr}/hooks"))
                    .with_id("receiver")
                    .with_signer(Arc::new(StandardWebhooks::new(&secret).unwrap())),
            )
            .build()
            .unwrap(),
    );
    let (catalog, config) = common::pipeline_in(dir.path(), notifier).await;
    let pipeline = Arc::new(Pipeline::new(config));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Arc::clone(&pipeline).run(async {
        let _ = stopped.await;
    }));

    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..RECORDINGS {
        let id = catalog
            .create_recording(NewRecording::new())
            .await
            .unwrap()
            .id;
        let mut change = Change::new(id.clone());
        for name in EVENTS {
            let event = Event::new(
                name,
                id.clone(),
                serde_json::json!({"recording": id.as_str()}),
            );
            expected
                .entry(id.to_string())
                .or_default()
                .push(event.id.to_string());
            change = change.enqueue(NewJob::new(JobKind::Notify { event }));
        }
        catalog.commit(change).await.unwrap();
    }
    pipeline.wake();

    let total = RECORDINGS * EVENTS.len();
    let limit = outage + Duration::from_secs(3 * 3600);
    loop {
        let taken = receiver
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.taken)
            .count();
        if taken >= total {
            break;
        }
        assert!(
            receiver.started.elapsed() < limit,
            "only {taken} of {total} events were taken"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = stop.send(());
    running.await.unwrap();

    let log = receiver.log.lock().unwrap().clone();
    // Each event: every request under one webhook-id, taken once at least.
    let mut by_id: HashMap<&str, Vec<&Request>> = HashMap::new();
    for request in &log {
        by_id.entry(&request.webhook_id).or_default().push(request);
    }
    assert_eq!(
        by_id.len(),
        total,
        "requests came under more ids than events"
    );
    let mut first_taken = Vec::new();
    for (recording, ids) in &expected {
        let mut previous: Option<Duration> = None;
        for id in ids {
            let requests = &by_id[id.as_str()];
            assert!(
                requests.iter().all(|r| &r.recording == recording),
                "one webhook-id was used for two recordings"
            );
            let taken = requests
                .iter()
                .filter(|r| r.taken)
                .map(|r| r.at)
                .min()
                .expect("every event is taken");
            if let Some(previous) = previous {
                assert!(
                    taken >= previous,
                    "recording {recording}: an event was taken before the one told before it"
                );
            }
            previous = Some(taken);
            first_taken.push(taken);
        }
    }
    first_taken.sort();
    let refused = log.iter().filter(|r| !r.taken).count();
    let duplicates = log.iter().filter(|r| r.taken).count() - total;
    println!(
        "outage of {} s: {total} events, {} requests ({refused} refused, {duplicates} taken twice); \
         every event taken, each under one webhook-id, in order per recording; \
         first taken at {:.1} s, last at {:.1} s after the start",
        outage.as_secs(),
        log.len(),
        first_taken[0].as_secs_f64(),
        first_taken[total - 1].as_secs_f64(),
    );
}
