//! The delivery log and redelivery through the API, over a real SQLite catalog.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use pipe_core::{
    Attempted, Catalog, Change, DeliveryAttempt, Error, Event, JobFilter, JobKind, JobStatus,
    NewJob, Role, Timestamp,
};
use serde_json::{Value, json};

use crate::util::Fixture;

#[tokio::test]
async fn deliveries_show_every_attempt_and_failed_ones_are_sent_again() {
    let f = Fixture::new().await;
    let (a, b) = (f.environment("a").await, f.environment("b").await);
    let rec = f.recorded(&a).await;
    let event = Event::new(
        "video_recorded",
        rec.id.clone(),
        json!({"id": rec.id.as_str()}),
    );
    // The notification (its job holds the event as sent); the first attempts: accepted by
    // `ok`, refused by `down`, which gave up at once.
    let refused = Attempted::new(
        Err(Error::permanent(
            "webhook",
            "hooks.example answered 410 Gone",
        )),
        Duration::from_millis(30),
    )
    .with_answer(410, b"gone for good".to_vec());
    let accepted =
        Attempted::new(Ok(()), Duration::from_millis(5)).with_answer(200, b"ok".to_vec());
    let now = Timestamp::now();
    f.catalog
        .commit(
            Change::new(rec.id.clone())
                .enqueue(JobKind::Notify {
                    event: event.clone(),
                })
                .enqueue(
                    NewJob::new(JobKind::Deliver {
                        event: event.clone(),
                        endpoint: "down".into(),
                    })
                    .after_failures(1, "410 Gone")
                    .into_dead(),
                )
                .log_attempt(DeliveryAttempt::new(&event, "ok", now, &accepted))
                .log_attempt(DeliveryAttempt::new(&event, "down", now, &refused)),
        )
        .await
        .unwrap();

    let editor = f.key(Role::Editor, &[]).await;
    let viewer = f.key(Role::Viewer, &[]).await;
    let editor_b = f.key(Role::Editor, &[&b]).await;
    let uri = format!("/v1/recordings/{}/deliveries", rec.id);

    let seen = f.call(Method::GET, &uri, Some(&editor), None).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.json);
    let deliveries = seen.json["deliveries"].as_array().unwrap();
    let summary: Vec<(&str, &str, usize)> = deliveries
        .iter()
        .map(|d| {
            (
                d["endpoint"].as_str().unwrap(),
                d["state"].as_str().unwrap(),
                d["attempts"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(summary, [("ok", "delivered", 1), ("down", "failed", 1)]);
    let down = &deliveries[1]["attempts"][0];
    assert_eq!(down["status"], 410);
    assert_eq!(down["response"], "gone for good");
    assert_eq!(down["event"], event.id.as_str());
    assert!(down["error"].as_str().unwrap().contains("410"), "{down}");
    // Viewers see that it failed, not what the endpoint said.
    let seen = f.call(Method::GET, &uri, Some(&viewer), None).await;
    let down = &seen.json["deliveries"][1]["attempts"][0];
    assert_eq!(
        (&down["response"], &down["error"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(down["delivered"], false);

    // The log, filtered.
    let failed = f
        .call(
            Method::GET,
            "/v1/deliveries?outcome=failed",
            Some(&editor),
            None,
        )
        .await;
    assert_eq!(failed.json["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(failed.json["attempts"][0]["endpoint"], "down");
    let bad = f
        .call(
            Method::GET,
            "/v1/deliveries?outcome=maybe",
            Some(&editor),
            None,
        )
        .await;
    assert_eq!(
        (bad.status, bad.json["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("outcome"))
    );
    let elsewhere = f
        .call(Method::GET, "/v1/deliveries", Some(&editor_b), None)
        .await;
    assert_eq!(
        elsewhere.json["attempts"],
        json!([]),
        "another environment's log"
    );
    let hidden = f
        .call(
            Method::GET,
            &format!("/v1/deliveries?recording={}", rec.id),
            Some(&editor_b),
            None,
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    let redeliver = |key: &str, body: Value| {
        let key = key.to_owned();
        let f = &f;
        async move {
            f.call(
                Method::POST,
                "/v1/deliveries/redeliver",
                Some(&key),
                Some(body),
            )
            .await
        }
    };
    // Every failed delivery since a time: `down`'s.
    let all = redeliver(&editor, json!({"failed_since": now.to_rfc3339()})).await;
    assert_eq!(
        (all.status, all.json["redelivered"].as_u64()),
        (StatusCode::ACCEPTED, Some(1)),
        "{}",
        all.json
    );
    let deliver_jobs = || async {
        f.catalog
            .jobs(JobFilter::default().recording(rec.id.clone()))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|j| match j.kind {
                JobKind::Deliver { event, endpoint } => {
                    Some((endpoint, event.id, j.status, j.attempts))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        deliver_jobs().await,
        [("down".to_owned(), event.id.clone(), JobStatus::Queued, 0)],
        "the failed delivery is queued again, its attempts counted afresh"
    );
    let pending = f.call(Method::GET, &uri, Some(&editor), None).await;
    assert_eq!(pending.json["deliveries"][1]["state"], "pending");
    let again = redeliver(&editor, json!({"failed_since": now.to_rfc3339()})).await;
    assert_eq!(
        again.json["redelivered"], 0,
        "a queued delivery is not counted twice"
    );

    // One delivery that was accepted: the same event again, under the same id.
    let one = redeliver(
        &editor,
        json!({"event": event.id.as_str(), "endpoint": "ok"}),
    )
    .await;
    assert_eq!(one.status, StatusCode::ACCEPTED, "{}", one.json);
    let jobs = deliver_jobs().await;
    assert!(
        jobs.contains(&("ok".to_owned(), event.id.clone(), JobStatus::Queued, 0)),
        "{jobs:?}"
    );

    // Refusals.
    for (key, body, status) in [
        (
            &viewer,
            json!({"failed_since": now.to_rfc3339()}),
            StatusCode::FORBIDDEN,
        ),
        (&editor, json!({}), StatusCode::BAD_REQUEST),
        (
            &editor,
            json!({"event": event.id.as_str()}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &editor,
            json!({"failed_since": "yesterday"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            &editor,
            json!({"event": "msg_nope", "endpoint": "ok"}),
            StatusCode::NOT_FOUND,
        ),
        (
            &editor,
            json!({"event": event.id.as_str(), "endpoint": "nowhere"}),
            StatusCode::NOT_FOUND,
        ),
        (
            &editor_b,
            json!({"event": event.id.as_str(), "endpoint": "ok"}),
            StatusCode::NOT_FOUND,
        ),
        (
            &editor,
            json!({"event": event.id.as_str(), "endpoint": "ok", "extra": 1}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let answer = redeliver(key, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.json);
    }
}
