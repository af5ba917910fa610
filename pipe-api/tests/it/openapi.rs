//! The OpenAPI document against the answers: every operation, called with valid and with
//! malformed input, answers a status the document lists, with a body its schema accepts.

use axum::body::Body;
use axum::http::{Method, Request, header};
use pipe_core::Role;
use serde_json::{Value, json};

use crate::util::{Answer, Fixture, schema};

/// The status is documented for the operation and the body fits its schema.
fn conforms(doc: &Value, op: &Value, what: &str, answer: &Answer) -> Result<(), String> {
    let status = answer.status.as_u16().to_string();
    let Some(response) = op["responses"].get(&status) else {
        return Err(format!(
            "{what}: {status} is not documented: {}",
            answer.json
        ));
    };
    match response.get("content") {
        None => {
            if answer.json.is_null() {
                Ok(())
            } else {
                Err(format!(
                    "{what}: {status} documents no body, got {}",
                    answer.json
                ))
            }
        }
        Some(content) => {
            let media = answer.content_type.split(';').next().unwrap_or_default();
            let schema_of = &content[media]["schema"];
            if schema_of.is_null() {
                return Err(format!("{what}: {status} does not document {media}"));
            }
            schema::check(doc, schema_of, &answer.json, what)
        }
    }
}

#[tokio::test]
async fn every_operation_answers_as_its_document_says() {
    let f = Fixture::new().await;
    let env = f.environment("a").await;
    f.environment("doomed").await;
    let rec = f.recorded(&env).await;
    f.webhook("a", &env).await;
    f.webhook("doomed", &env).await;
    let admin = f.key(Role::Admin, &[]).await;
    let victim = f.key(Role::Viewer, &[]).await;
    let victim_id = pipe_api::auth::parse_key(&victim).unwrap().id.to_string();

    let served = f.call(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(
        served.json,
        serde_json::to_value(pipe_api::openapi()).unwrap()
    );
    let doc = served.json;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 6, "{paths:?}");

    let mut failures = Vec::new();
    let mut operations = 0;
    for (template, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            operations += 1;
            let id = if template.starts_with("/v1/recordings") {
                rec.id.to_string()
            } else if template.starts_with("/v1/keys") {
                victim_id.clone()
            } else if method == Method::DELETE {
                "doomed".to_owned()
            } else {
                "a".to_owned()
            };
            let uri = template.replace("{id}", &id);
            let body = match (method.as_str(), template.as_str()) {
                ("POST", "/v1/environments") => Some(json!({"id": "walked"})),
                ("PATCH", "/v1/webhooks/{id}") => Some(json!({"events": ["video_converted"]})),
                ("PATCH", _) => Some(json!({"name": "Walked"})),
                ("POST", "/v1/environments/{id}/webhooks") => {
                    Some(json!({"url": "https://1.1.1.1/hooks"}))
                }
                ("POST", "/v1/webhooks/{id}/rotate-secret") => Some(json!({})),
                ("POST", "/v1/keys") => Some(json!({"role": "viewer"})),
                ("POST", "/v1/deliveries/redeliver") => {
                    Some(json!({"failed_since": "2000-01-01T00:00:00Z"}))
                }
                _ => None,
            };
            let what = format!("{method} {uri}");

            // Valid input: a success.
            let answer = f
                .call(method.clone(), &uri, Some(&admin), body.clone())
                .await;
            if !answer.status.is_success() {
                failures.push(format!(
                    "{what}: valid input answered {}: {}",
                    answer.status, answer.json
                ));
            }
            if let Err(e) = conforms(&doc, op, &what, &answer) {
                failures.push(e);
            }

            // Malformed input: each a documented 4xx problem.
            let mut malformed: Vec<(String, Request<Body>)> = Vec::new();
            let authed = |uri: &str| {
                Request::builder()
                    .method(method.clone())
                    .uri(uri)
                    .header(header::AUTHORIZATION, format!("Bearer {admin}"))
            };
            if template.contains("{id}") {
                let bad = template.replace("{id}", "..%2F..%2Fetc");
                malformed.push((
                    format!("{method} {bad}"),
                    authed(&bad).body(Body::empty()).unwrap(),
                ));
                let absent = template.replace("{id}", "nosuchthing0000");
                malformed.push((
                    format!("{method} {absent}"),
                    authed(&absent).body(Body::empty()).unwrap(),
                ));
            }
            if body.is_some() {
                malformed.push((
                    format!("{what} with broken JSON"),
                    authed(&uri)
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from("{\"name\": "))
                        .unwrap(),
                ));
                malformed.push((
                    format!("{what} without a JSON content type"),
                    authed(&uri).body(Body::from("{}")).unwrap(),
                ));
                malformed.push((
                    format!("{what} with a JSON array"),
                    authed(&uri)
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from("[1, 2]"))
                        .unwrap(),
                ));
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "query" {
                    let name = param["name"].as_str().unwrap();
                    let bad = format!("{uri}?{name}=%00%FF!junk");
                    malformed.push((
                        format!("{method} {bad}"),
                        authed(&bad).body(Body::empty()).unwrap(),
                    ));
                }
            }
            for (what, request) in malformed {
                let answer = f.send(request).await;
                if !answer.status.is_client_error() {
                    failures.push(format!(
                        "{what}: malformed input answered {}",
                        answer.status
                    ));
                }
                if let Err(e) = conforms(&doc, op, &what, &answer) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(operations >= 11, "{operations} operations");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_schema_check_refuses_what_the_document_does_not_say() {
    let doc = serde_json::to_value(pipe_api::openapi()).unwrap();
    let page = json!({"$ref": "#/components/schemas/RecordingPage"});
    let summary = json!({
        "id": "x", "environment": "a", "state": "recorded", "created": "t", "updated": "t",
        "mime_type": null, "payload": null, "length": 5, "source": "recorder", "media": null,
        "failure": null
    });
    assert_eq!(
        schema::check(&doc, &page, &json!({"recordings": [summary]}), "$"),
        Ok(())
    );
    let mut extra = summary.clone();
    extra["secret"] = json!("leak");
    assert!(schema::check(&doc, &page, &json!({"recordings": [extra]}), "$").is_err());
    let mut wrong_state = summary.clone();
    wrong_state["state"] = json!("done");
    assert!(schema::check(&doc, &page, &json!({"recordings": [wrong_state]}), "$").is_err());
    let mut unknown_source = summary.clone();
    unknown_source["source"] = json!("fax");
    assert!(schema::check(&doc, &page, &json!({"recordings": [unknown_source]}), "$").is_err());
    let mut negative = summary.clone();
    negative["length"] = json!(-1);
    assert!(schema::check(&doc, &page, &json!({"recordings": [negative]}), "$").is_err());
    assert!(schema::check(&doc, &page, &json!({}), "$").is_err());
    let detail = json!({"$ref": "#/components/schemas/RecordingDetail"});
    let mut full = summary.clone();
    full["steps"] = json!([]);
    full["artifacts"] = json!([]);
    full["copies"] = json!([]);
    assert_eq!(schema::check(&doc, &detail, &full, "$"), Ok(()));
    full["secret"] = json!("leak");
    assert!(schema::check(&doc, &detail, &full, "$").is_err());
    full.as_object_mut().unwrap().remove("secret");
    full["steps"] = json!([{"step": 1}]);
    assert!(schema::check(&doc, &detail, &full, "$").is_err());
}
