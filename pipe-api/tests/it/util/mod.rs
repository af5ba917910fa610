//! A catalog in a temporary SQLite file, the API over it, and requests through the router.

pub mod schema;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use pipe_api::{Api, RateLimit, mint_key};
use pipe_core::{
    ApiKeyStore, Catalog, Change, EndpointStore, EnvironmentId, EnvironmentStore, NewEnvironment,
    NewRecording, Recording, RecordingState, Role,
};
use pipe_lifecycle::SqliteCatalog;
use serde_json::Value;
use tower::ServiceExt;

pub struct Fixture {
    pub catalog: Arc<SqliteCatalog>,
    pub router: Router,
    _dir: tempfile::TempDir,
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub retry_after: Option<String>,
    pub json: Value,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with_rate_limit(RateLimit::new(10_000.0, 10_000)).await
    }

    pub async fn with_rate_limit(limit: RateLimit) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(
            SqliteCatalog::open(dir.path().join("catalog.sqlite"))
                .await
                .unwrap(),
        );
        let api = Api::builder(catalog.clone(), catalog.clone(), catalog.clone())
            .endpoint_store(catalog.clone())
            .audit_log(catalog.clone())
            .url_guard(Arc::new(pipe_webhook::AddressPolicy::new()))
            // Test events go nowhere here (no network): they fail fast.
            .notifier(Arc::new(
                pipe_webhook::WebhookNotifier::builder()
                    .endpoint_store(catalog.clone())
                    .timeout(std::time::Duration::from_millis(300))
                    .build()
                    .unwrap(),
            ))
            .sink_directory(Arc::new(pipe_storage::EnvironmentSinks::new(
                catalog.clone(),
            )))
            .rate_limit(limit)
            .metrics(pipe_api::metrics::MetricsRender::new(|| {
                "# TYPE up gauge\nup 1\n".to_owned()
            }))
            .build();
        let router = api
            .router()
            .merge(api.pipe_compat_router())
            .fallback(pipe_api::not_found);
        Self {
            catalog,
            router,
            _dir: dir,
        }
    }

    pub async fn environment(&self, id: &str) -> EnvironmentId {
        let id: EnvironmentId = id.parse().unwrap();
        self.catalog
            .create_environment(NewEnvironment::new(id.clone()))
            .await
            .unwrap();
        id
    }

    /// A webhook endpoint `id` of `environment` (at a public address, never contacted).
    pub async fn webhook(&self, id: &str, environment: &EnvironmentId) {
        self.catalog
            .create_endpoint(pipe_core::StoredEndpoint::new(
                id,
                environment.clone(),
                "https://1.1.1.1/hooks",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ))
            .await
            .unwrap();
    }

    pub async fn recording(&self, environment: &EnvironmentId) -> Recording {
        self.catalog
            .create_recording(NewRecording::new().with_environment(environment.clone()))
            .await
            .unwrap()
    }

    /// A recording that was finished (`recorded`), so it may be deleted.
    pub async fn recorded(&self, environment: &EnvironmentId) -> Recording {
        let recording = self.recording(environment).await;
        self.catalog
            .commit(Change::new(recording.id.clone()).state(RecordingState::Recorded))
            .await
            .unwrap()
    }

    pub async fn key(&self, role: Role, environments: &[&EnvironmentId]) -> String {
        let minted = mint_key(
            "test",
            role,
            environments.iter().map(|e| (*e).clone()).collect(),
        );
        self.catalog
            .create_api_key(minted.record.clone())
            .await
            .unwrap();
        minted.key
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        self.send(request).await
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
        let retry_after = header(header::RETRY_AFTER);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else if !content_type.contains("json") {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        if !status.is_success() {
            assert_eq!(content_type, "application/problem+json", "{status} {json}");
            assert_eq!(json["status"], status.as_u16(), "{json}");
            assert!(
                json["type"]
                    .as_str()
                    .unwrap()
                    .starts_with("urn:pipe:problem:"),
                "{json}"
            );
        }
        Answer {
            status,
            content_type,
            retry_after,
            json,
        }
    }
}
