//! Webhook endpoints through the API: secrets shown once, rotation with an overlap, the
//! SSRF guard at creation, changes, and what each role sees.

use axum::http::{Method, StatusCode};
use pipe_core::{EndpointStore, Role};
use serde_json::json;

use crate::util::Fixture;

#[tokio::test]
async fn an_endpoint_is_made_with_its_secret_shown_once_then_changed_rotated_and_deleted() {
    let f = Fixture::new().await;
    let a = f.environment("a").await;
    let editor = f.key(Role::Editor, &[]).await;
    let viewer = f.key(Role::Viewer, &[]).await;
    let admin = f.key(Role::Admin, &[]).await;

    let made = f
        .call(
            Method::POST,
            "/v1/environments/a/webhooks",
            Some(&editor),
            Some(
                json!({"url": "https://1.1.1.1/hooks?token=t0k3n", "events": ["video_converted"]}),
            ),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
    let id = made.json["id"].as_str().unwrap().to_owned();
    let secret = made.json["secret"].as_str().unwrap().to_owned();
    assert!(
        id.starts_with("ep_") && secret.starts_with("whsec_"),
        "{}",
        made.json
    );
    assert_eq!(made.json["events"], json!(["video_converted"]));
    assert_eq!(
        (&made.json["format"], &made.json["content_type"]),
        (&json!("standard"), &json!("json"))
    );
    // Stored as given: the notifier signs with it.
    assert_eq!(f.catalog.endpoint(&id).await.unwrap().secret, secret);

    let uri = format!("/v1/webhooks/{id}");
    let read = f.call(Method::GET, &uri, Some(&editor), None).await;
    assert!(
        read.json.get("secret").is_none(),
        "the secret is shown once: {}",
        read.json
    );
    assert_eq!(read.json["url"], "https://1.1.1.1/hooks?token=t0k3n");
    let listed = f
        .call(
            Method::GET,
            "/v1/environments/a/webhooks",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(listed.json["webhooks"][0]["id"], id.as_str());
    assert_eq!(
        listed.json["webhooks"][0]["url"],
        json!(null),
        "viewers do not see URLs"
    );
    assert!(!listed.json.to_string().contains("whsec_"));

    // Rotation: a new secret, shown once; the old one signs as well for the overlap.
    let rotated = f
        .call(
            Method::POST,
            &format!("{uri}/rotate-secret"),
            Some(&editor),
            Some(json!({"overlap_secs": 3600})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.json);
    let new_secret = rotated.json["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert!(rotated.json["previous_secret_until"].is_string());
    let stored = f.catalog.endpoint(&id).await.unwrap();
    assert_eq!(
        stored.signing_secrets(pipe_core::Timestamp::now()),
        [new_secret, secret.as_str()]
    );
    let too_long = f
        .call(
            Method::POST,
            &format!("{uri}/rotate-secret"),
            Some(&editor),
            Some(json!({"overlap_secs": 99_999_999})),
        )
        .await;
    assert_eq!(too_long.json["field"], "overlap_secs");

    // Disabled and enabled again; events changed.
    let off = f
        .call(
            Method::PATCH,
            &uri,
            Some(&editor),
            Some(json!({"enabled": false, "events": ["all"]})),
        )
        .await;
    assert_eq!(
        (off.json["enabled"].as_bool(), &off.json["events"]),
        (Some(false), &json!(["all"]))
    );
    assert!(
        off.json["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("API"),
        "{}",
        off.json
    );
    let on = f
        .call(
            Method::PATCH,
            &uri,
            Some(&editor),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(
        (on.json["enabled"].as_bool(), &on.json["disabled_reason"]),
        (Some(true), &json!(null))
    );

    // An environment with endpoints is not deleted from under them.
    let refused = f
        .call(Method::DELETE, "/v1/environments/a", Some(&admin), None)
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.json["detail"].as_str().unwrap().contains(&id));

    let deleted = f.call(Method::DELETE, &uri, Some(&editor), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        f.call(Method::GET, &uri, Some(&editor), None).await.status,
        StatusCode::NOT_FOUND
    );
    let _ = a;
}

#[tokio::test]
async fn endpoints_inside_the_network_are_refused_with_the_reason() {
    let f = Fixture::new().await;
    f.environment("a").await;
    let editor = f.key(Role::Editor, &[]).await;
    let create = |url: &str| {
        let body = json!({"url": url});
        let editor = editor.clone();
        let f = &f;
        async move {
            f.call(
                Method::POST,
                "/v1/environments/a/webhooks",
                Some(&editor),
                Some(body),
            )
            .await
        }
    };
    for (url, why) in [
        ("http://127.0.0.1:8080/hooks", "loopback"),
        ("http://10.0.0.1/hooks", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]/hooks", "loopback"),
        ("http://[::ffff:127.0.0.1]/hooks", "loopback"),
        ("http://0.0.0.0/hooks", "unspecified"),
        ("http://2130706433/hooks", "loopback"),
        ("http://0177.0.0.1/hooks", "loopback"),
        ("http://0x7f.0.0.1/hooks", "loopback"),
        // A name that resolves to loopback.
        ("http://localhost:8080/hooks", "loopback"),
        ("ftp://1.1.1.1/hooks", "http"),
        ("not a url", "http"),
    ] {
        let answer = create(url).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{url}: {}",
            answer.json
        );
        assert_eq!(answer.json["field"], "url", "{url}");
        let detail = answer.json["detail"].as_str().unwrap();
        assert!(detail.contains(why), "{url}: {detail}");
    }
    // The same guard on a change of URL.
    let made = create("https://1.1.1.1/hooks").await;
    let uri = format!("/v1/webhooks/{}", made.json["id"].as_str().unwrap());
    let moved = f
        .call(
            Method::PATCH,
            &uri,
            Some(&editor),
            Some(json!({"url": "http://192.168.1.1/"})),
        )
        .await;
    assert_eq!(
        (moved.status, moved.json["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("url"))
    );

    // Other bad input names its field.
    for (body, field) in [
        (
            json!({"url": "https://1.1.1.1/", "format": "svix"}),
            "format",
        ),
        (
            json!({"url": "https://1.1.1.1/", "content_type": "form"}),
            "content_type",
        ),
        (
            json!({"url": "https://1.1.1.1/", "events": ["Video Converted"]}),
            "events",
        ),
        (
            json!({"url": "https://1.1.1.1/", "secret": "whsec_mine"}),
            "secret",
        ),
        (json!({"url": "https://1.1.1.1/", "id": "no spaces"}), "id"),
    ] {
        let answer = f
            .call(
                Method::POST,
                "/v1/environments/a/webhooks",
                Some(&editor),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (answer.status, answer.json["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}"
        );
    }
    // Pipe's format keeps Pipe's key, form-encoded if asked.
    let pipe = f
        .call(
            Method::POST,
            "/v1/environments/a/webhooks",
            Some(&editor),
            Some(json!({"id": "from-pipe", "url": "https://1.1.1.1/", "format": "pipe", "content_type": "form", "secret": "key-from-pipes-dashboard"})),
        )
        .await;
    assert_eq!(pipe.status, StatusCode::CREATED, "{}", pipe.json);
    assert_eq!(pipe.json["secret"], "key-from-pipes-dashboard");
    let taken = f
        .call(
            Method::POST,
            "/v1/environments/a/webhooks",
            Some(&editor),
            Some(json!({"id": "from-pipe", "url": "https://1.1.1.1/"})),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
}
