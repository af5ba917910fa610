//! `GET /v1/audit`: every call is an entry (key, role, route, target, status); only admin
//! keys for every environment read it; bad parameters are a 400 naming the parameter.

use axum::http::{Method, StatusCode};
use pipe_core::Role;

use crate::util::Fixture;

#[tokio::test]
async fn every_call_is_audited_and_only_global_admins_read_the_log() {
    let f = Fixture::new().await;
    let env = f.environment("staging").await;
    let admin = f.key(Role::Admin, &[]).await;
    let local_admin = f.key(Role::Admin, &[&env]).await;
    let viewer = f.key(Role::Viewer, &[]).await;
    let viewer_id = pipe_api::auth::parse_key(&viewer).unwrap().id.to_string();

    let refused = f
        .call(Method::DELETE, "/v1/recordings/nope", Some(&viewer), None)
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    for key in [&viewer, &local_admin] {
        let answer = f.call(Method::GET, "/v1/audit", Some(key), None).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.json);
    }
    let answer = f
        .call(
            Method::GET,
            &format!("/v1/audit?actor=key:{viewer_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    let entries = answer.json["entries"].as_array().unwrap();
    let delete = entries
        .iter()
        .find(|e| e["action"] == "DELETE /v1/recordings/{id}")
        .unwrap_or_else(|| panic!("the refused delete is not audited: {}", answer.json));
    assert_eq!(delete["target"], "recording:nope");
    assert_eq!(delete["outcome"], "404");
    assert_eq!(delete["role"], "viewer");
    let audit_read = entries
        .iter()
        .find(|e| e["action"] == "GET /v1/audit")
        .unwrap_or_else(|| {
            panic!(
                "the refused read of the log is not audited: {}",
                answer.json
            )
        });
    assert_eq!(audit_read["outcome"], "403");

    for (query, field) in [
        ("after=first", "after"),
        ("from=yesterday", "from"),
        ("limit=0", "limit"),
    ] {
        let answer = f
            .call(
                Method::GET,
                &format!("/v1/audit?{query}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.json
        );
        assert_eq!(answer.json["field"], field, "{query}: {}", answer.json);
    }
}
