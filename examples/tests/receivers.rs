//! The example receivers accept what Pipe's notifier sends them, in their format, and
//! refuse what another key signed: so the examples readers copy are known to work.

use std::net::Ipv4Addr;
use std::sync::Arc;

use pipe_core::{BodyEncoding, Event, Notifier, PipeEvent, WireFormat};
use pipe_webhook::{
    AddressPolicy, PipeSignature, StandardWebhooks, WebhookEndpoint, WebhookNotifier,
};
use serde_json::json;

#[path = "../receive_pipe_webhooks.rs"]
mod pipe_receiver;
#[path = "../receive_standard_webhooks.rs"]
mod standard_receiver;

/// Serves `app` on loopback; its base URL.
async fn serve(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, server)
}

fn event() -> Event {
    Event::new(
        "video_converted",
        "01jzq3v8m6k2x9t4r7w5n0c1bd".parse().unwrap(),
        json!({"id": "01jzq3v8m6k2x9t4r7w5n0c1bd", "duration": 5.2}),
    )
    .with_pipe(PipeEvent::new(
        "video_converted",
        json!({"id": 17, "videoName": "stream-17", "duration": 5.2}),
    ))
}

fn notifier(endpoint: WebhookEndpoint) -> WebhookNotifier {
    WebhookNotifier::builder()
        .address_policy(AddressPolicy::new().allow(Ipv4Addr::LOCALHOST))
        .endpoint(endpoint)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_standard_receiver_accepts_pipes_deliveries_and_refuses_forgeries() {
    let secret = StandardWebhooks::generate_secret();
    let (base, _server) = serve(standard_receiver::router(&secret).unwrap()).await;
    let url = format!("{base}/hooks/pipe");
    let signed = |secret: &str| {
        notifier(
            WebhookEndpoint::new(url.clone())
                .with_signer(Arc::new(StandardWebhooks::new(secret).unwrap())),
        )
    };
    signed(&secret).deliver(&event()).await.unwrap();
    // The same event again (a retry): accepted, handled once.
    signed(&secret).deliver(&event()).await.unwrap();
    let forged = signed(&StandardWebhooks::generate_secret())
        .deliver(&event())
        .await
        .unwrap_err();
    assert!(forged.to_string().contains("401"), "{forged}");
}

#[tokio::test]
async fn the_pipe_receiver_accepts_forms_and_json_and_refuses_forgeries() {
    let key = "pipe-account-webhook-key";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/pipe", listener.local_addr().unwrap());
    let app = pipe_receiver::router(key, &url).unwrap();
    let _server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let signed = |key: &str, encoding| {
        notifier(
            WebhookEndpoint::new(url.clone())
                .with_format(WireFormat::Pipe)
                .with_encoding(encoding)
                .with_signer(Arc::new(PipeSignature::new(key).unwrap())),
        )
    };
    for encoding in [BodyEncoding::Form, BodyEncoding::Json] {
        signed(key, encoding).deliver(&event()).await.unwrap();
        let forged = signed("another-key", encoding)
            .deliver(&event())
            .await
            .unwrap_err();
        assert!(forged.to_string().contains("401"), "{forged}");
    }
}
