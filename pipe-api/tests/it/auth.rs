//! Who may call what: every route against every kind of caller.

use axum::http::{Method, StatusCode};
use pipe_core::{ApiKeyStore, Role, Timestamp};
use serde_json::json;

use crate::util::Fixture;

#[tokio::test]
async fn every_route_answers_every_caller_as_documented() {
    let f = Fixture::new().await;
    let (a, b) = (f.environment("a").await, f.environment("b").await);
    let rec_a = f.recorded(&a).await;
    let rec_b = f.recording(&b).await;
    f.webhook("hook-a", &a).await;
    f.webhook("hook-gone", &a).await;

    let admin = f.key(Role::Admin, &[]).await;
    let editor = f.key(Role::Editor, &[]).await;
    let viewer = f.key(Role::Viewer, &[]).await;
    let admin_b = f.key(Role::Admin, &[&b]).await;
    let viewer_b = f.key(Role::Viewer, &[&b]).await;
    let revoked = f.key(Role::Admin, &[]).await;
    let revoked_id = pipe_api::auth::parse_key(&revoked).unwrap().id;
    f.catalog
        .revoke_api_key(&revoked_id, Timestamp::now())
        .await
        .unwrap();
    // Well-formed, never issued.
    let unknown = pipe_api::mint_key("never stored", Role::Admin, vec![]).key;
    // The secret of one key with the id of another.
    let forged = format!(
        "pk_{}_{}",
        pipe_api::auth::parse_key(&admin).unwrap().id,
        pipe_api::auth::parse_key(&viewer).unwrap().secret
    );
    let victim = f.key(Role::Viewer, &[]).await;
    let victim_id = pipe_api::auth::parse_key(&victim).unwrap().id;

    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, "/v1/recordings".into(), None),
        (Method::GET, format!("/v1/recordings/{}", rec_a.id), None),
        (Method::DELETE, format!("/v1/recordings/{}", rec_a.id), None),
        (Method::GET, "/v1/environments".into(), None),
        (Method::GET, "/v1/environments/a".into(), None),
        (Method::POST, "/v1/environments".into(), Some(json!({}))),
        (
            Method::PATCH,
            "/v1/environments/a".into(),
            Some(json!({"name": "A"})),
        ),
        (
            Method::PATCH,
            "/v1/environments/b".into(),
            Some(json!({"name": "B"})),
        ),
        (Method::DELETE, "/v1/environments/a".into(), None),
        (Method::GET, "/v1/environments/a/versions".into(), None),
        (Method::GET, "/v1/keys".into(), None),
        (
            Method::POST,
            "/v1/keys".into(),
            Some(json!({"role": "viewer"})),
        ),
        (Method::DELETE, format!("/v1/keys/{victim_id}"), None),
        (Method::GET, "/v1/openapi.json".into(), None),
        (Method::GET, "/metrics".into(), None),
        (Method::GET, "/video/all".into(), None),
        (Method::GET, format!("/video/{}", rec_a.id), None),
        (Method::DELETE, format!("/video/{}", rec_a.id), None),
        (Method::GET, "/account".into(), None),
        (Method::GET, "/environment".into(), None),
        (Method::GET, "/v1/deliveries".into(), None),
        (
            Method::GET,
            format!("/v1/recordings/{}/deliveries", rec_a.id),
            None,
        ),
        (
            Method::POST,
            "/v1/deliveries/redeliver".into(),
            Some(json!({"failed_since": "2000-01-01T00:00:00Z"})),
        ),
        (Method::GET, "/v1/environments/a/webhooks".into(), None),
        (
            Method::POST,
            "/v1/environments/a/webhooks".into(),
            Some(json!({"url": "https://1.1.1.1/hooks"})),
        ),
        (Method::GET, "/v1/webhooks/hook-a".into(), None),
        (
            Method::PATCH,
            "/v1/webhooks/hook-a".into(),
            Some(json!({"events": ["all"]})),
        ),
        (
            Method::POST,
            "/v1/webhooks/hook-a/rotate-secret".into(),
            Some(json!({})),
        ),
        (Method::POST, "/v1/webhooks/hook-a/test".into(), None),
        // The editor deletes it: the callers after see no endpoint.
        (Method::DELETE, "/v1/webhooks/hook-gone".into(), None),
    ];
    const U: u16 = 401;
    let unauthenticated = [
        U, U, U, U, U, U, U, U, U, U, U, U, U, 200, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U, U,
    ];
    // Columns: the routes above, in order.
    #[rustfmt::skip]
    let callers: Vec<(&str, Option<&str>, [u16; 30])> = vec![
        ("no key", None, unauthenticated),
        ("unknown key", Some(&unknown), unauthenticated),
        ("forged key", Some(&forged), unauthenticated),
        ("malformed key", Some("pk_nope"), unauthenticated),
        ("revoked key", Some(&revoked), unauthenticated),
        ("viewer", Some(&viewer), [200, 200, 403, 200, 200, 403, 403, 403, 403, 200, 403, 403, 403, 200, 200, 200, 200, 403, 200, 200, 200, 200, 403, 200, 403, 200, 403, 403, 403, 403]),
        ("editor", Some(&editor), [200, 200, 202, 200, 200, 403, 403, 403, 403, 200, 403, 403, 403, 200, 200, 200, 200, 200, 200, 200, 200, 200, 202, 200, 201, 200, 200, 200, 200, 204]),
        ("admin", Some(&admin), [200, 200, 202, 200, 200, 201, 200, 200, 409, 200, 200, 201, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 202, 200, 201, 200, 200, 200, 200, 404]),
        ("admin of b", Some(&admin_b), [200, 404, 404, 200, 404, 403, 404, 200, 404, 404, 403, 403, 403, 200, 200, 200, 404, 404, 200, 200, 200, 404, 202, 404, 404, 404, 404, 404, 404, 404]),
        ("viewer of b", Some(&viewer_b), [200, 404, 404, 200, 404, 403, 404, 403, 404, 404, 403, 403, 403, 200, 200, 200, 404, 404, 200, 200, 200, 404, 403, 404, 404, 404, 404, 404, 404, 404]),
    ];
    assert_eq!(
        routes.len(),
        unauthenticated.len(),
        "a route without its column"
    );
    let mut failures = Vec::new();
    for (who, key, expected) in &callers {
        for ((method, uri, body), want) in routes.iter().zip(expected) {
            let got = f.call(method.clone(), uri, *key, body.clone()).await;
            if got.status.as_u16() != *want {
                failures.push(format!(
                    "{who}: {method} {uri} → {} (want {want}): {}",
                    got.status, got.json
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // What a key limited to b lists holds nothing of a.
    let page = f
        .call(Method::GET, "/v1/recordings", Some(&admin_b), None)
        .await;
    let ids: Vec<&str> = page.json["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [rec_b.id.as_str()]);
    let envs = f
        .call(Method::GET, "/v1/environments", Some(&admin_b), None)
        .await;
    assert_eq!(envs.json["environments"].as_array().unwrap().len(), 1);

    // A recording of another environment reads exactly as one that does not exist.
    let hidden = f
        .call(
            Method::GET,
            &format!("/v1/recordings/{}", rec_a.id),
            Some(&viewer_b),
            None,
        )
        .await;
    let missing = f
        .call(
            Method::GET,
            "/v1/recordings/nosuchrecording",
            Some(&viewer_b),
            None,
        )
        .await;
    assert_eq!(hidden.status, missing.status);
    assert_eq!(hidden.json["type"], missing.json["type"]);
    assert_eq!(hidden.json["title"], missing.json["title"]);
    let hidden_env = f
        .call(
            Method::GET,
            "/v1/recordings?environment=a",
            Some(&viewer_b),
            None,
        )
        .await;
    let missing_env = f
        .call(
            Method::GET,
            "/v1/recordings?environment=zzz",
            Some(&viewer_b),
            None,
        )
        .await;
    assert_eq!(
        (hidden_env.status, missing_env.status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
}

#[tokio::test]
async fn x_pipe_auth_works_and_revocation_applies_to_the_next_request() {
    let f = Fixture::new().await;
    let admin = f.key(Role::Admin, &[]).await;
    let viewer = f.key(Role::Viewer, &[]).await;
    let request = |key: &str| {
        axum::http::Request::builder()
            .uri("/v1/recordings")
            .header("X-PIPE-AUTH", key)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(f.send(request(&viewer)).await.status, StatusCode::OK);
    let id = pipe_api::auth::parse_key(&viewer).unwrap().id;
    let revoked = f
        .call(
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.json["revoked"].is_string());
    let after = f.send(request(&viewer)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(after.json["type"], "urn:pipe:problem:unauthenticated");
}

#[tokio::test]
async fn a_key_past_its_rate_limit_gets_429_with_retry_after() {
    let f = Fixture::with_rate_limit(pipe_api::RateLimit::new(0.5, 3)).await;
    let key = f.key(Role::Viewer, &[]).await;
    let other = f.key(Role::Viewer, &[]).await;
    for _ in 0..3 {
        assert_eq!(
            f.call(Method::GET, "/v1/recordings", Some(&key), None)
                .await
                .status,
            StatusCode::OK
        );
    }
    let limited = f
        .call(Method::GET, "/v1/recordings", Some(&key), None)
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.retry_after.as_deref(), Some("2"));
    // Another key is not slowed by the first.
    assert_eq!(
        f.call(Method::GET, "/v1/recordings", Some(&other), None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_created_key_is_shown_once_and_stored_as_a_hash() {
    let f = Fixture::new().await;
    let admin = f.key(Role::Admin, &[]).await;
    let created = f
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(json!({"role": "editor", "label": "ci", "environments": ["production"]})),
        )
        .await;
    // `production` does not exist in this catalog: a key cannot name it.
    assert_eq!(created.status, StatusCode::BAD_REQUEST, "{}", created.json);
    assert_eq!(created.json["field"], "environments");
    let created = f
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(json!({"role": "editor", "label": "ci"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let key = created.json["key"].as_str().unwrap().to_owned();
    let presented = pipe_api::auth::parse_key(&key).unwrap();
    assert_eq!(created.json["id"], presented.id.as_str());
    let stored = f.catalog.api_key(&presented.id).await.unwrap();
    assert_eq!(stored.role, Role::Editor);
    assert!(!stored.secret_hash.contains(presented.secret));
    let listed = f.call(Method::GET, "/v1/keys", Some(&admin), None).await;
    assert!(!listed.json.to_string().contains(presented.secret));
    assert!(listed.json["keys"][0].get("key").is_none());
    assert_eq!(
        f.call(Method::GET, "/v1/recordings", Some(&key), None)
            .await
            .status,
        StatusCode::OK
    );
}
