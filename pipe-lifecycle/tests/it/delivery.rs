//! Deliveries with the real `WebhookNotifier` and real receivers on loopback: each endpoint
//! gets its own delivery jobs, so one that is down or hangs never holds up another, and a
//! receiver that recovers gets every event, in order, each under one webhook-id.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use pipe_core::{Catalog, Change, DeliveryFilter, Event, JobKind, NewRecording, Notifier};
use pipe_lifecycle::RetryPolicy;
use pipe_webhook::{AddressPolicy, StandardWebhooks, WebhookEndpoint, WebhookNotifier};

use crate::util::{Harness, Parts, eventually};

/// How a receiver answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    Fail,
    Hang,
}

/// A receiver that keeps (webhook-id, event, accepted) of every request.
#[derive(Clone)]
struct Receiver {
    url: String,
    failing: Arc<AtomicBool>,
    mode: Mode,
    seen: Arc<Mutex<Vec<(String, String, bool)>>>,
}

impl Receiver {
    async fn start(mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self {
            url: format!("http://{}/hooks", listener.local_addr().unwrap()),
            failing: Arc::new(AtomicBool::new(mode == Mode::Fail)),
            mode,
            seen: Arc::default(),
        };
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    /// The events accepted, in order.
    fn accepted(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(_, _, ok)| *ok)
            .map(|(_, event, _)| event.clone())
            .collect()
    }

    fn requests(&self) -> Vec<(String, String, bool)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    if r.mode == Mode::Hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = headers["webhook-id"].to_str().unwrap().to_owned();
    let failing = r.failing.load(Ordering::SeqCst);
    r.seen
        .lock()
        .unwrap()
        .push((id, json["event"].as_str().unwrap().to_owned(), !failing));
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

const EVENTS: [&str; 3] = [
    "video_recorded",
    "video_converted",
    "video_copied_pipe_storage",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_or_hanging_endpoint_never_delays_a_healthy_one_and_gets_everything_in_order() {
    let healthy = Receiver::start(Mode::Ok).await;
    let down = Receiver::start(Mode::Fail).await;
    let hanging = Receiver::start(Mode::Hang).await;
    let secret = StandardWebhooks::generate_secret();
    let endpoint = |id: &str, url: &str| {
        WebhookEndpoint::new(url)
            .with_id(id)
            .with_signer(Arc::new(StandardWebhooks::new(&secret).unwrap()))
    };
    let notifier: Arc<dyn Notifier> = Arc::new(
        WebhookNotifier::builder()
            .address_policy(AddressPolicy::new().allow(std::net::Ipv4Addr::LOCALHOST))
            .endpoint(endpoint("healthy", &healthy.url))
            .endpoint(endpoint("down", &down.url))
            .endpoint(endpoint("hanging", &hanging.url))
            // Longer than the whole test may take: were the notify job to wait for the
            // hanging endpoint, the healthy one would not have its events in time. The
            // first-attempt budget below cuts the hanging one off instead.
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    );
    // The schedule's shape, shrunk: retries every 20 ms, and enough of them to outlast
    // the test.
    let policy =
        RetryPolicy::default().with_delivery_schedule(vec![Duration::from_millis(20); 500]);
    let h = Harness::new(Parts::StandIns, &[], notifier, |c| {
        c.with_retry_policy(policy)
            .with_first_attempt_budget(Duration::from_millis(100))
            .with_workers(2)
            .with_poll_interval(Duration::from_millis(10))
    })
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Arc::clone(&h.pipeline).run(async {
        let _ = stopped.await;
    }));

    let rec = h
        .catalog
        .create_recording(NewRecording::new())
        .await
        .unwrap();
    for name in EVENTS {
        let event = Event::new(
            name,
            rec.id.clone(),
            serde_json::json!({"id": rec.id.as_str()}),
        );
        h.catalog
            .commit(Change::new(rec.id.clone()).enqueue(JobKind::Notify { event }))
            .await
            .unwrap();
        h.pipeline.wake();
    }

    eventually(
        Duration::from_secs(20),
        "the healthy endpoint has every event",
        || async { healthy.accepted().len() == EVENTS.len() },
    )
    .await;
    assert_eq!(healthy.accepted(), EVENTS);
    // The down endpoint is retried meanwhile, and only ever with the first event: the later
    // ones wait behind it.
    eventually(
        Duration::from_secs(20),
        "three tries at the down endpoint",
        || async { down.requests().len() >= 3 },
    )
    .await;
    let tried = down.requests();
    assert!(
        tried.iter().all(|(_, event, _)| event == EVENTS[0]),
        "a later event passed the first: {tried:?}"
    );
    assert_eq!(
        healthy.requests().len(),
        EVENTS.len(),
        "the healthy endpoint got repeats"
    );

    down.failing.store(false, Ordering::SeqCst);
    eventually(
        Duration::from_secs(20),
        "the recovered endpoint has every event",
        || async { down.accepted().len() == EVENTS.len() },
    )
    .await;
    assert_eq!(down.accepted(), EVENTS, "out of order after recovering");
    let requests = down.requests();
    for event in EVENTS {
        let ids: std::collections::BTreeSet<&str> = requests
            .iter()
            .filter(|(_, e, _)| e == event)
            .map(|(id, _, _)| id.as_str())
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "{event} went out under several webhook-ids: {ids:?}"
        );
    }
    assert!(
        hanging.requests().is_empty(),
        "the hanging receiver answered"
    );

    // The delivery log has every attempt with what the endpoint said.
    let log = |endpoint: &str| {
        let filter = DeliveryFilter::default()
            .recording(rec.id.clone())
            .endpoint(endpoint);
        let catalog = Arc::clone(&h.catalog);
        async move { catalog.delivery_attempts(filter).await.unwrap() }
    };
    let healthy_log = log("healthy").await;
    assert_eq!(healthy_log.len(), EVENTS.len(), "{healthy_log:?}");
    assert!(
        healthy_log
            .iter()
            .zip(EVENTS)
            .all(|(a, event)| a.delivered()
                && a.status == Some(200)
                && a.event_name.as_str() == event),
        "{healthy_log:?}"
    );
    eventually(
        Duration::from_secs(20),
        "every accepted delivery is logged",
        || async { log("down").await.iter().filter(|a| a.delivered()).count() == EVENTS.len() },
    )
    .await;
    let down_log = log("down").await;
    let (refused, taken): (Vec<_>, Vec<_>) = down_log.iter().partition(|a| !a.delivered());
    assert!(
        refused.len() >= 3
            && refused
                .iter()
                .all(|a| a.status == Some(500)
                    && a.error.as_deref().is_some_and(|e| e.contains("500"))),
        "{refused:?}"
    );
    assert_eq!(
        taken
            .iter()
            .map(|a| a.event_name.as_str())
            .collect::<Vec<_>>(),
        EVENTS,
        "{taken:?}"
    );
    // As many log entries as requests the receiver saw.
    assert_eq!(down_log.len(), down.requests().len());
    let hanging_log = log("hanging").await;
    assert!(
        !hanging_log.is_empty()
            && hanging_log.iter().all(|a| a.status.is_none()
                && a.error
                    .as_deref()
                    .is_some_and(|e| e.contains("no answer within the first attempt"))),
        "{hanging_log:?}"
    );

    let _ = stop.send(());
    running.await.unwrap();
}
