//! `WebhookNotifier` against a real HTTP receiver (axum on 127.0.0.1).

mod ssrf;
mod util;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pipe_core::{Event, Notifier};
use pipe_webhook::{
    AddressPolicy, DeliveryError, EndpointError, PipeSignature, StandardWebhooks, Verifier,
    WebhookEndpoint, WebhookNotifier,
};
use serde_json::json;
use util::Receiver;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PIPE_KEY: &str = "pipe-account-webhook-key";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn event() -> Event {
    Event::new(
        "video_converted",
        "r1".parse().unwrap(),
        json!({"id": "r1", "url": "https://cdn.example.com/r1.mp4", "duration": 12.5}),
    )
}

fn endpoint(url: String) -> WebhookEndpoint {
    WebhookEndpoint::new(url)
        .with_signer(Arc::new(StandardWebhooks::new(SECRET).unwrap()))
        .with_signer(Arc::new(PipeSignature::new(PIPE_KEY).unwrap()))
}

/// The receivers of these tests listen on 127.0.0.1, which the SSRF guard refuses
/// unless it is re-admitted.
fn loopback() -> AddressPolicy {
    AddressPolicy::new().allow(std::net::Ipv4Addr::LOCALHOST)
}

fn notifier(urls: impl IntoIterator<Item = String>) -> WebhookNotifier {
    WebhookNotifier::builder()
        .address_policy(loopback())
        .endpoints(urls.into_iter().map(endpoint))
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// The `DeliveryError` inside a failed delivery.
fn delivery_error(err: &pipe_core::Error) -> &DeliveryError {
    let pipe_core::Error::Backend {
        backend: "webhook",
        source,
        ..
    } = err
    else {
        panic!("expected a webhook backend error, got {err:?}");
    };
    source
        .downcast_ref()
        .expect("the source is a DeliveryError")
}

/// The error never quotes a secret.
fn assert_no_secret(err: &pipe_core::Error) {
    let text = format!("{err} {err:?}");
    for secret in [SECRET, SECRET.trim_start_matches("whsec_"), PIPE_KEY] {
        assert!(!text.contains(secret), "secret in {text}");
    }
}

#[tokio::test]
async fn delivers_the_envelope_signed_so_that_receivers_verify_it() {
    let receiver = Receiver::start().await;
    let url = receiver.url("/hooks/pipe?token=abc");
    let event = event();
    notifier([url.clone()]).deliver(&event).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/pipe");
    assert_eq!(request.body, event.envelope().to_bytes());
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["version"], "1.0");
    assert_eq!(body["event"], "video_converted");
    assert_eq!(body["data"]["id"], "r1");

    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("user-agent"),
        Some(concat!("pipe-webhook/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(request.header("webhook-id"), Some(event.id.as_str()));
    let timestamp: i64 = request
        .header("webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (now() - timestamp).abs() <= 5,
        "timestamp {timestamp} is not the time of the attempt"
    );
    assert!(
        request
            .header("webhook-signature")
            .unwrap()
            .starts_with("v1,")
    );

    Verifier::new(SECRET)
        .unwrap()
        .verify(&request.headers, &request.body, now())
        .unwrap();
    let pipe_signature = request
        .header("x-pipe-signature")
        .expect("X-Pipe-Signature is sent");
    PipeSignature::new(PIPE_KEY)
        .unwrap()
        .verify(&url, &request.body, pipe_signature)
        .unwrap();

    // The same request checked with the wrong secret is refused.
    let other = Verifier::new(&StandardWebhooks::generate_secret()).unwrap();
    assert!(
        other
            .verify(&request.headers, &request.body, now())
            .is_err()
    );
}

#[tokio::test]
async fn a_redelivered_event_keeps_its_webhook_id() {
    let receiver = Receiver::start().await;
    let notifier = notifier([receiver.url("/in")]);
    let event = event();
    notifier.deliver(&event).await.unwrap();
    notifier.deliver(&event).await.unwrap();
    notifier.deliver(&self::event()).await.unwrap();

    let ids: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], event.id.as_str());
    assert_eq!(ids[1], ids[0], "a retry presents the same id");
    assert_ne!(ids[2], ids[0], "another event has another id");
}

#[tokio::test]
async fn retryable_answers_give_retryable_errors_naming_host_and_status() {
    let receiver = Receiver::start().await;
    for code in [500, 502, 503, 408, 429] {
        let err = notifier([receiver.url(&format!("/status/{code}"))])
            .deliver(&event())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{code}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(receiver.host()) && text.contains(&code.to_string()),
            "{text}"
        );
        assert!(
            !text.contains("/status"),
            "the path stays out of errors: {text}"
        );
        assert_no_secret(&err);
        assert!(matches!(
            delivery_error(&err).failures(),
            [EndpointError::Status { status, .. }] if *status == code
        ));
    }
}

#[tokio::test]
async fn other_client_errors_are_permanent() {
    let receiver = Receiver::start().await;
    for code in [400, 401, 404, 410, 422] {
        let err = notifier([receiver.url(&format!("/status/{code}"))])
            .deliver(&event())
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{code}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("{} answered {code}", receiver.host())),
            "{err}"
        );
        assert_no_secret(&err);
    }
    assert_eq!(receiver.requests().len(), 5);
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_permanent() {
    let receiver = Receiver::start().await;
    let err = notifier([receiver.url("/redirect")])
        .deliver(&event())
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(
        matches!(
            delivery_error(&err).failures(),
            [EndpointError::Redirect { status: 302, .. }]
        ),
        "{err:?}"
    );
    let paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/redirect"], "the Location was not requested");
}

#[tokio::test]
async fn an_endpoints_retry_after_is_carried_to_the_retry_machinery() {
    let receiver = Receiver::start().await;
    let notifier = notifier([receiver.url("/busy"), receiver.url("/status/503")]);
    let event = event();
    assert_eq!(
        notifier.subscribers(&event).await.unwrap(),
        ["endpoint-1", "endpoint-2"]
    );
    let busy = notifier.deliver_to(&event, "endpoint-1").await.unwrap_err();
    assert!(busy.is_retryable(), "{busy}");
    assert_eq!(busy.retry_after(), Some(Duration::from_secs(120)));
    assert!(busy.to_string().contains("503"), "{busy}");
    let plain = notifier.deliver_to(&event, "endpoint-2").await.unwrap_err();
    assert_eq!(plain.retry_after(), None);
    let gone = notifier.deliver_to(&event, "endpoint-3").await.unwrap_err();
    assert!(gone.is_not_found() && !gone.is_retryable(), "{gone}");
}

#[tokio::test]
async fn a_closed_port_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let err = notifier([format!("http://{address}/in")])
        .deliver(&event())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        matches!(
            delivery_error(&err).failures(),
            [EndpointError::Network { .. }]
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&address.to_string()), "{err}");
    assert_no_secret(&err);
}

#[tokio::test]
async fn a_slow_endpoint_times_out_and_is_retryable() {
    let receiver = Receiver::start().await;
    let started = Instant::now();
    let err = notifier([receiver.url("/slow")])
        .deliver(&event())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(err.is_retryable(), "{err}");
    assert!(
        matches!(
            delivery_error(&err).failures(),
            [EndpointError::Timeout { .. }]
        ),
        "{err:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "gave up after {elapsed:?}, not near the 500 ms timeout"
    );
}

#[tokio::test]
async fn every_endpoint_is_tried_and_one_failure_fails_the_delivery() {
    let receiver = Receiver::start().await;
    let notifier = notifier([
        receiver.url("/a"),
        receiver.url("/status/503"),
        receiver.url("/status/404"),
    ]);
    let err = notifier.deliver(&event()).await.unwrap_err();
    assert!(
        err.is_retryable(),
        "503 may pass later, so the delivery is retried: {err}"
    );
    assert_eq!(delivery_error(&err).failures().len(), 2);
    assert!(err.to_string().contains("2 of 3 endpoints failed"), "{err}");
    let mut paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/a", "/status/404", "/status/503"]);
}

#[tokio::test]
async fn no_endpoints_means_nothing_to_tell() {
    let notifier = WebhookNotifier::builder().build().unwrap();
    assert_eq!(notifier.endpoints().len(), 0);
    notifier.deliver(&event()).await.unwrap();
}

#[test]
fn debug_output_hides_secrets_and_urls() {
    let notifier = notifier(["https://hooks.example.com/in?token=t0k3n".to_owned()]);
    let text = format!("{notifier:?}");
    assert!(text.contains("hooks.example.com"), "{text}");
    for secret in [SECRET.trim_start_matches("whsec_"), PIPE_KEY, "t0k3n"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

/// A deliberately broken signer (a stand-in: no real scheme makes such headers).
#[derive(Debug)]
struct BrokenSigner;

impl pipe_core::Signer for BrokenSigner {
    fn sign(&self, _: &pipe_core::OutgoingWebhook<'_>) -> Vec<(String, String)> {
        vec![("not a header name".into(), "x".into())]
    }
}

#[tokio::test]
async fn a_signer_making_an_impossible_header_sends_nothing() {
    let receiver = Receiver::start().await;
    let notifier = WebhookNotifier::builder()
        .address_policy(loopback())
        .endpoint(endpoint(receiver.url("/ok")))
        .endpoint(WebhookEndpoint::new(receiver.url("/broken")).with_signer(Arc::new(BrokenSigner)))
        .build()
        .unwrap();
    let err = notifier.deliver(&event()).await.unwrap_err();
    assert!(
        matches!(
            err,
            pipe_core::Error::Invalid {
                what: "webhook header",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(
        receiver.requests().is_empty(),
        "no endpoint is told anything"
    );
}
