//! The routes of Pipe's REST API v1, read by a client written from Pipe's documentation
//! alone: `X-PIPE-AUTH`, `status == "OK"`, `videos[]` of string values, `message` on errors.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use pipe_core::Role;
use serde_json::Value;

use crate::util::Fixture;

/// What a Pipe client does: GET with `X-PIPE-AUTH`, then trust `status` and `message`.
async fn pipe_get(f: &Fixture, path: &str, key: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .uri(path)
        .header("x-pipe-auth", key)
        .body(Body::empty())
        .unwrap();
    let answer = f.send(request).await;
    (answer.status, answer.json)
}

#[tokio::test]
async fn a_pipe_client_lists_and_reads_videos_and_understands_refusals() {
    let f = Fixture::new().await;
    let (a, b) = (f.environment("a").await, f.environment("b").await);
    let in_a = f.recording(&a).await;
    let in_b = f.recording(&b).await;
    let key_a = f.key(Role::Viewer, &[&a]).await;

    let (status, all) = pipe_get(&f, "/video/all", &key_a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["status"], "OK");
    assert_eq!(all["message"], "Request successful");
    assert_eq!(all["request_method"], "GET");
    assert_eq!(all["total_videos"], 1);
    let video = &all["videos"][0];
    // Pipe's video ids are numbers (as strings here); `name` is the stream name.
    assert_eq!(video["id"], in_a.number.to_string());
    assert_eq!(video["name"], in_a.id.as_str());
    assert_eq!(video["env_id"], "a");
    for (name, value) in video.as_object().unwrap() {
        assert!(
            value.is_string() || value.is_null(),
            "{name} is {value}: Pipe's video object holds strings and nulls only"
        );
    }
    for field in [
        "has_mp4",
        "converted",
        "audio_only",
        "has_snapshot",
        "anonymized",
    ] {
        assert!(
            ["0", "1"].contains(&video[field].as_str().unwrap()),
            "{field}"
        );
    }
    assert_eq!(
        video["datetime"].as_str().unwrap().len(),
        19,
        "YYYY-MM-DD HH:MM:SS"
    );

    // By the number a `pipe` webhook carried, or by our id.
    for id in [in_a.number.to_string(), in_a.id.to_string()] {
        let (status, one) = pipe_get(&f, &format!("/video/{id}"), &key_a).await;
        assert_eq!(status, StatusCode::OK, "{id}: {one}");
        assert_eq!(one["videos"][0]["name"], in_a.id.as_str());
    }

    let (status, env) = pipe_get(&f, "/environment", &key_a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env["environment_details"].as_array().unwrap().len(), 1);
    let (status, account) = pipe_get(&f, "/account", &key_a).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(account["account_details"]["role"], "viewer");

    // Refusals a Pipe client understands: status is not "OK", message says why.
    let bad = pipe_api::mint_key("never stored", Role::Admin, vec![]).key;
    for (path, key, want) in [
        ("/video/all", bad.as_str(), 401),
        ("/video/all", "garbage", 401),
        ("/video/nosuchvideo", key_a.as_str(), 404),
        ("/video/99999999", key_a.as_str(), 404),
        ("/video/99999999999999999999999", key_a.as_str(), 404),
    ] {
        let (status, body) = pipe_get(&f, path, key).await;
        assert_eq!(status.as_u16(), want, "{path}: {body}");
        assert_ne!(body["status"], "OK");
        assert_eq!(body["status_code"], want);
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    // Another environment's video, by number: as absent as one that does not exist.
    let (status, _) = pipe_get(&f, &format!("/video/{}", in_b.number), &key_a).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
