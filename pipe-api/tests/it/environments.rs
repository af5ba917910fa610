//! Environments through the API: created, changed with every version kept, deleted.

use axum::http::{Method, StatusCode};
use pipe_core::{EnvironmentId, EnvironmentStore, Role};
use serde_json::json;

use crate::util::Fixture;

#[tokio::test]
async fn environments_are_created_changed_versioned_and_deleted() {
    let f = Fixture::new().await;
    let admin = f.key(Role::Admin, &[]).await;
    let call = |method, uri: &'static str, body| f.call(method, uri, Some(&admin), body);

    let created = call(
        Method::POST,
        "/v1/environments",
        Some(json!({"id": "staging", "name": "Staging", "settings": {"allowed_hosts": ["*.example.com"]}})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(created.json["version"], 1);
    assert_eq!(
        created.json["settings"]["allowed_hosts"],
        json!(["*.example.com"])
    );
    assert_eq!(created.json["settings"]["client_playback"], true);

    let again = call(
        Method::POST,
        "/v1/environments",
        Some(json!({"id": "staging"})),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let changed = call(
        Method::PATCH,
        "/v1/environments/staging",
        Some(json!({"settings": {"allowed_hosts": ["example.org"], "client_playback": false}, "expect_version": 1})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    assert_eq!(changed.json["version"], 2);
    assert_eq!(changed.json["name"], "Staging");
    // What the ingest reads on its next connection is the new version.
    let stored = f
        .catalog
        .environment(&"staging".parse::<EnvironmentId>().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.settings.allowed_hosts, ["example.org"]);
    assert!(!stored.settings.client_playback);

    let stale = call(
        Method::PATCH,
        "/v1/environments/staging",
        Some(json!({"name": "x", "expect_version": 1})),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);

    let versions = call(Method::GET, "/v1/environments/staging/versions", None).await;
    let versions = versions.json["versions"].as_array().unwrap().clone();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0]["settings"]["allowed_hosts"],
        json!(["*.example.com"])
    );
    assert_eq!(
        versions[1]["settings"]["allowed_hosts"],
        json!(["example.org"])
    );

    // It holds a recording: deleting it is refused until the recording is gone.
    let staging: EnvironmentId = "staging".parse().unwrap();
    f.recording(&staging).await;
    let refused = call(Method::DELETE, "/v1/environments/staging", None).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let empty = call(
        Method::POST,
        "/v1/environments",
        Some(json!({"id": "empty"})),
    )
    .await;
    assert_eq!(empty.status, StatusCode::CREATED);
    let deleted = call(Method::DELETE, "/v1/environments/empty", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(Method::GET, "/v1/environments/empty", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_settings_are_refused_with_the_field_at_fault() {
    let f = Fixture::new().await;
    let admin = f.key(Role::Admin, &[]).await;
    let cases = [
        (json!({"id": "Bad Id"}), "id"),
        (
            json!({"settings": {"allowed_hosts": ["https://example.com/"]}}),
            "settings.allowed_hosts",
        ),
        (
            json!({"settings": {"allowed_hosts": ["a.com,b.com"]}}),
            "settings.allowed_hosts",
        ),
        (json!({"settings": {"max_recording_secs": 0}}), "settings"),
        (json!({"name": ""}), "name"),
    ];
    for (body, field) in cases {
        let answer = f
            .call(
                Method::POST,
                "/v1/environments",
                Some(&admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.json["field"], field, "{body}: {}", answer.json);
    }
    // Unknown members are typos, not silently ignored.
    let typo = f
        .call(
            Method::POST,
            "/v1/environments",
            Some(&admin),
            Some(json!({"settings": {"alowed_hosts": []}})),
        )
        .await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(
        typo.json["detail"]
            .as_str()
            .unwrap()
            .contains("alowed_hosts"),
        "{}",
        typo.json
    );
}

#[tokio::test]
async fn an_environment_that_valid_keys_name_is_not_deleted_under_them() {
    let f = Fixture::new().await;
    let admin = f.key(Role::Admin, &[]).await;
    let gone = f.environment("gone").await;
    let scoped = f.key(Role::Viewer, &[&gone]).await;
    let refused = f
        .call(Method::DELETE, "/v1/environments/gone", Some(&admin), None)
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    let id = pipe_api::auth::parse_key(&scoped).unwrap().id;
    assert!(
        refused.json["detail"]
            .as_str()
            .unwrap()
            .contains(id.as_str())
    );
    let revoked = f
        .call(
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let deleted = f
        .call(Method::DELETE, "/v1/environments/gone", Some(&admin), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

/// An environment's sinks: their secrets go in and never come out (not in the answer,
/// not in its versions); `null` keeps a secret; a URL that makes no sink, a file of the
/// server, and "do not store" without a sink are 400s that say why.
#[tokio::test]
async fn sinks_take_secrets_that_never_come_back() {
    let f = Fixture::new().await;
    let admin = f.key(Role::Admin, &[]).await;
    let call = |method, uri: &'static str, body| f.call(method, uri, Some(&admin), body);
    let secret = "a-secret-that-never-comes-back";
    let sink = json!({
        "id": "archive",
        "url": "s3://recordings/prod?region=eu-west-1&access_key_id=AKIA1&secret_key_from=key",
        "secrets": {"key": secret}
    });
    let created = call(
        Method::POST,
        "/v1/environments",
        Some(json!({"id": "acme", "settings": {"sinks": [sink], "do_not_store": true}})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(
        created.json["settings"]["sinks"][0]["secrets"],
        json!({"key": null})
    );
    assert_eq!(created.json["settings"]["do_not_store"], true);

    // Renamed, the sink's URL kept and its secret given as null: the secret stays.
    let renamed = call(
        Method::PATCH,
        "/v1/environments/acme",
        Some(json!({"name": "Acme", "settings": created.json["settings"].clone()})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.json);
    let stored = f
        .catalog
        .environment(&"acme".parse::<EnvironmentId>().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.settings.sinks[0].secrets["key"], secret);
    assert!(stored.settings.do_not_store);

    for answer in [
        &created,
        &renamed,
        &call(Method::GET, "/v1/environments/acme", None).await,
        &call(Method::GET, "/v1/environments/acme/versions", None).await,
        &call(Method::GET, "/v1/environments", None).await,
    ] {
        assert!(
            !answer.json.to_string().contains(secret),
            "a secret came back: {}",
            answer.json
        );
    }

    for (settings, field, says) in [
        (
            json!({"do_not_store": true}),
            "settings.do_not_store",
            "needs a sink",
        ),
        (
            json!({"sinks": [{"id": "a", "url": "s3://b?colour=red"}]}),
            "settings.sink",
            "sink `a`: unknown option `colour`",
        ),
        (
            json!({"sinks": [{"id": "a", "url": "sftp://u@h/x?host_key=SHA256:x&key_file=/etc/shadow"}]}),
            "settings.sink",
            "reads a file of the server",
        ),
        (
            json!({"sinks": [{"id": "a", "url": "ftps://u@h/x?password_from=pw", "secrets": {"pw": null}}]}),
            "settings.sinks",
            "secret `pw` is null",
        ),
        (
            json!({"sinks": [{"id": "pipe", "url": "s3://b"}]}),
            "settings.sinks",
            "`pipe` is taken",
        ),
    ] {
        let refused = call(
            Method::PATCH,
            "/v1/environments/acme",
            Some(json!({ "settings": settings })),
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.json);
        assert_eq!(refused.json["field"], field, "{}", refused.json);
        assert!(
            refused.json["detail"].as_str().unwrap().contains(says),
            "{}",
            refused.json
        );
    }
}

/// Retention and abandonment are settings like the others: set, read back, and refused
/// below their minimums with a 400 that names the field.
#[tokio::test]
async fn retention_is_set_and_its_minimum_enforced() {
    let f = Fixture::new().await;
    let admin = f.key(Role::Admin, &[]).await;
    let call = |method, uri: &'static str, body| f.call(method, uri, Some(&admin), body);
    let created = call(
        Method::POST,
        "/v1/environments",
        Some(
            json!({"id": "kept", "settings": {"retention_hours": 72, "abandoned_after_hours": 6}}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.json);
    assert_eq!(created.json["settings"]["retention_hours"], 72);
    assert_eq!(created.json["settings"]["retention_deletes_failed"], false);
    assert_eq!(created.json["settings"]["abandoned_after_hours"], 6);
    let plain = call(
        Method::POST,
        "/v1/environments",
        Some(json!({"id": "plain"})),
    )
    .await;
    assert_eq!(
        plain.json["settings"]["retention_hours"],
        serde_json::Value::Null
    );
    assert_eq!(plain.json["settings"]["abandoned_after_hours"], 24);
    for (settings, field) in [
        (json!({"retention_hours": 29}), "settings.retention_hours"),
        (
            json!({"abandoned_after_hours": 0}),
            "settings.abandoned_after_hours",
        ),
    ] {
        let refused = call(
            Method::PATCH,
            "/v1/environments/kept",
            Some(json!({ "settings": settings })),
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.json);
        assert_eq!(refused.json["field"], field, "{}", refused.json);
    }
}
