//! The SSRF guard on a real client: endpoints inside the network are refused when the
//! notifier is made, names that resolve inside it are refused when a delivery connects,
//! and redirects lead nowhere. A [`Tripwire`] listens where no request may arrive.

use std::net::Ipv4Addr;

use pipe_core::Notifier;
use pipe_webhook::{AddressPolicy, EndpointError, Forbidden, SsrfError, WebhookNotifier};

use super::{delivery_error, endpoint, event, loopback};
use crate::util::{Receiver, Tripwire};

fn build(policy: AddressPolicy, url: &str) -> pipe_core::Result<WebhookNotifier> {
    WebhookNotifier::builder()
        .address_policy(policy)
        .endpoint(endpoint(url.to_owned()))
        .build()
}

#[tokio::test]
async fn endpoints_inside_the_network_are_refused_at_creation_in_every_spelling() {
    // Something listens on loopback, so a refusal is the guard's and not a closed port's.
    let wire = Tripwire::on("127.0.0.1").await;
    let port = wire.port();
    let refused = [
        (format!("http://127.0.0.1:{port}/in"), "loopback"),
        (format!("http://127.1.2.3:{port}/in"), "loopback"),
        ("http://10.0.0.1/in".to_owned(), "private"),
        ("http://172.16.5.4/in".to_owned(), "private"),
        ("http://192.168.1.1/in".to_owned(), "private"),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "link-local",
        ),
        (format!("http://[::1]:{port}/in"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/in"), "loopback"),
        ("http://[::ffff:169.254.169.254]/".to_owned(), "link-local"),
        ("http://[fd00::1]/in".to_owned(), "unique-local"),
        ("http://[fe80::1]/in".to_owned(), "link-local"),
        ("http://[64:ff9b::a9fe:a9fe]/in".to_owned(), "link-local"),
        ("http://[2002:7f00:1::]/in".to_owned(), "loopback"),
        (format!("http://0.0.0.0:{port}/in"), "unspecified"),
        (format!("http://0:{port}/in"), "unspecified"),
        ("http://[::]/in".to_owned(), "unspecified"),
        ("http://224.0.0.1/in".to_owned(), "multicast"),
        // Decimal, octal, hex and short forms of 127.0.0.1.
        (format!("http://2130706433:{port}/in"), "loopback"),
        (format!("http://0177.0.0.1:{port}/in"), "loopback"),
        (format!("http://0x7f.0.0.1:{port}/in"), "loopback"),
        (format!("http://0x7f000001:{port}/in"), "loopback"),
        (format!("http://127.1:{port}/in"), "loopback"),
        // 169.254.169.254 in decimal.
        (
            "http://2852039166/latest/meta-data/".to_owned(),
            "link-local",
        ),
    ];
    for (url, why) in &refused {
        let err = build(AddressPolicy::new(), url).unwrap_err();
        assert!(
            matches!(
                err,
                pipe_core::Error::Invalid {
                    what: "webhook endpoint URL",
                    ..
                }
            ),
            "{url}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(why), "{url}: {text}");
        assert!(
            !text.contains("/in") && !text.contains("meta-data"),
            "{text}"
        );
    }
    for url in [
        "file:///etc/passwd",
        "gopher://example.com/",
        "ftp://example.com/",
    ] {
        assert!(build(AddressPolicy::new(), url).is_err(), "{url}");
    }
    assert_eq!(wire.connections(), 0);

    // The allow-list re-admits exactly what it names.
    assert!(build(loopback(), &format!("http://127.0.0.1:{port}/in")).is_ok());
    assert!(build(loopback(), &format!("http://[::ffff:127.0.0.1]:{port}/in")).is_ok());
    assert!(build(loopback(), &format!("http://127.0.0.2:{port}/in")).is_err());
    assert!(build(loopback(), &format!("http://[::1]:{port}/in")).is_err());
    let ten = AddressPolicy::new().allow("10.1.0.0/16".parse::<pipe_webhook::IpNet>().unwrap());
    assert!(build(ten.clone(), "http://10.1.200.3/in").is_ok());
    assert!(build(ten, "http://10.2.0.1/in").is_err());
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_when_the_delivery_connects() {
    // `localhost` is the local DNS answer every machine has: 127.0.0.1 (and ::1).
    let wire = Tripwire::on("127.0.0.1").await;
    let url = format!("http://localhost:{}/in", wire.port());
    let notifier = build(AddressPolicy::new(), &url).expect("a name is checked at connection");
    let err = notifier.deliver(&event()).await.unwrap_err();
    assert!(
        matches!(
            delivery_error(&err).failures(),
            [EndpointError::Refused {
                error: SsrfError::Forbidden {
                    why: Forbidden::Loopback,
                    ..
                },
                ..
            }]
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable(), "a refusal is not waited out: {err}");
    assert_eq!(wire.connections(), 0, "nothing reached the listener");

    // Found up front, where an endpoint is created through an API.
    let refusal = AddressPolicy::new()
        .check_url_resolving(&url.parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            refusal,
            SsrfError::Forbidden {
                why: Forbidden::Loopback,
                ..
            }
        ),
        "{refusal:?}"
    );

    // With loopback re-admitted, the same name is delivered to.
    let receiver = Receiver::start().await;
    let port = receiver.host().rsplit(':').next().unwrap().to_owned();
    let allowed = AddressPolicy::new()
        .allow(Ipv4Addr::LOCALHOST)
        .allow(std::net::Ipv6Addr::LOCALHOST);
    build(allowed, &format!("http://localhost:{port}/in"))
        .unwrap()
        .deliver(&event())
        .await
        .unwrap();
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn a_redirect_to_loopback_is_not_followed() {
    // The receiver is allowed; where it redirects to is not, and is never contacted.
    let receiver = Receiver::start().await;
    let wire = Tripwire::on("127.0.0.2").await;
    let url = receiver.url(&format!("/redirect-to/{}", wire.addr()));
    let err = build(loopback(), &url)
        .unwrap()
        .deliver(&event())
        .await
        .unwrap_err();
    assert!(
        matches!(
            delivery_error(&err).failures(),
            [EndpointError::Redirect { status: 302, .. }]
        ),
        "{err:?}"
    );
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(wire.connections(), 0, "the redirect was not followed");
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_retryable() {
    let notifier = build(AddressPolicy::new(), "http://no-such-host.invalid/in").unwrap();
    let err = notifier.deliver(&event()).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        matches!(
            delivery_error(&err).failures(),
            [EndpointError::Refused {
                error: SsrfError::Resolve { .. },
                ..
            }]
        ),
        "{err:?}"
    );
}
