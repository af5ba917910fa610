//! Listing and reading recordings.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use pipe_core::Role;

use crate::util::Fixture;

#[tokio::test]
async fn pages_list_every_recording_once_newest_first() {
    let f = Fixture::new().await;
    let (a, b) = (f.environment("a").await, f.environment("b").await);
    let mut made = Vec::new();
    for i in 0..57 {
        made.push(f.recording(if i % 3 == 0 { &b } else { &a }).await);
    }
    let key = f.key(Role::Viewer, &[]).await;
    let mut seen = Vec::new();
    let mut uri = "/v1/recordings?environment=a&limit=7".to_owned();
    loop {
        let page = f.call(Method::GET, &uri, Some(&key), None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        for r in page.json["recordings"].as_array().unwrap() {
            assert_eq!(r["environment"], "a");
            seen.push((
                r["created"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page.json["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/v1/recordings?environment=a&limit=7&cursor={cursor}"),
            None => break,
        }
    }
    let expected: HashSet<String> = made
        .iter()
        .filter(|r| r.environment == a)
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(seen.len(), expected.len());
    assert_eq!(
        seen.iter()
            .map(|(_, id)| id.clone())
            .collect::<HashSet<_>>(),
        expected
    );
    let mut sorted = seen.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(seen, sorted, "newest first, then by id descending");
}

#[tokio::test]
async fn malformed_queries_are_400_problems_naming_the_parameter() {
    let f = Fixture::new().await;
    let key = f.key(Role::Viewer, &[]).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("state=done", "state"),
        ("created_from=yesterday", "created_from"),
        ("created_until=2026-13-01T00:00:00Z", "created_until"),
        ("cursor=%%%", "cursor"),
        ("cursor=bm90IGEgY3Vyc29y", "cursor"),
    ] {
        let answer = f
            .call(
                Method::GET,
                &format!("/v1/recordings?{query}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.json
        );
        if query != "cursor=%%%" {
            assert_eq!(answer.json["field"], field, "{query}");
        }
    }
    let in_range = f
        .call(
            Method::GET,
            "/v1/recordings?created_from=2000-01-01T00:00:00Z&created_until=2000-01-02T00:00:00%2B02:00",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(in_range.status, StatusCode::OK);
    assert_eq!(in_range.json["recordings"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_recording_shows_its_steps_and_unknown_routes_are_problems() {
    let f = Fixture::new().await;
    let env = f.environment("a").await;
    let rec = f.recording(&env).await;
    let key = f.key(Role::Viewer, &[]).await;
    let got = f
        .call(
            Method::GET,
            &format!("/v1/recordings/{}", rec.id),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json["state"], "receiving");
    assert_eq!(got.json["environment"], "a");
    assert_eq!(got.json["steps"].as_array().unwrap().len(), 0);
    let nowhere = f.call(Method::GET, "/v1/nowhere", Some(&key), None).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    let wrong_method = f
        .call(Method::PUT, "/v1/recordings", Some(&key), None)
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn step_errors_are_shown_to_editors_not_to_viewers() {
    use pipe_core::{Catalog, Change, ClaimOptions, JobKind, Timestamp};
    let f = Fixture::new().await;
    let env = f.environment("a").await;
    let rec = f.recorded(&env).await;
    f.catalog
        .commit(Change::new(rec.id.clone()).enqueue(JobKind::Convert {
            recording: rec.id.clone(),
        }))
        .await
        .unwrap();
    let job = f
        .catalog
        .claim_job(ClaimOptions::default())
        .await
        .unwrap()
        .expect("the job is due");
    f.catalog
        .retry_job(
            &job.lease,
            "cannot open /srv/secret/bucket",
            Timestamp::now(),
        )
        .await
        .unwrap();
    let viewer = f.key(Role::Viewer, &[]).await;
    let editor = f.key(Role::Editor, &[]).await;
    let uri = format!("/v1/recordings/{}", rec.id);
    let seen = f.call(Method::GET, &uri, Some(&viewer), None).await;
    assert_eq!(seen.json["steps"][0]["step"], "convert");
    assert!(
        seen.json["steps"][0]["last_error"].is_null(),
        "{}",
        seen.json
    );
    assert!(!seen.json.to_string().contains("/srv/secret"));
    let seen = f.call(Method::GET, &uri, Some(&editor), None).await;
    assert_eq!(
        seen.json["steps"][0]["last_error"],
        "cannot open /srv/secret/bucket"
    );
}
