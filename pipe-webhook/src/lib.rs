//! # pipe-webhook
//!
//! Pipe's events on the wire: signing them, delivering them to the operator's
//! application, and verifying them on the receiving side.
//!
//! - **Body**: the envelope `{"version":"1.0","event":"video_converted","data":{…}}`
//!   ([`pipe_core::Envelope`]) in the endpoint's wire format: `standard` (our documented
//!   payload) or `pipe` (exactly what the hosted Pipe sends, so its receivers work
//!   unchanged), as JSON or, for `pipe`, form-encoded (`payload=<json>`). Every event of
//!   both formats, with an example body, is in `WEBHOOKS.md` next to this crate's
//!   `Cargo.toml`. Each endpoint is subscribed to all events or some
//!   ([`pipe_core::EventFilter`]).
//! - **Signatures**, per endpoint, as many as the receiver wants:
//!   - [`StandardWebhooks`]: the [Standard Webhooks](https://www.standardwebhooks.com/)
//!     headers `webhook-id` (the event id, the same on every attempt),
//!     `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256 of
//!     "{id}.{timestamp}.{body}">`, with a `whsec_…` secret. Pinned to the specification's
//!     published test vector.
//!   - [`PipeSignature`]: Pipe's `X-Pipe-Signature`, base64 HMAC-SHA1 of the endpoint
//!     URL followed by the body, for existing Pipe receivers.
//! - **Verification for receivers**: [`Verifier`] (timestamp tolerance, constant-time
//!   compare, several signatures for key rotation, unknown versions skipped) and
//!   [`PipeSignature::verify_request`] (JSON or form-encoded).
//! - **Delivery**: [`WebhookNotifier`] implements [`pipe_core::Notifier`]: one POST per
//!   endpoint per attempt, with a timeout, never following redirects, and errors that say
//!   whether a retry can help ([`pipe_core::Error::is_retryable`]).
//! - **SSRF guard** ([`AddressPolicy`]): webhooks go only to public addresses. Loopback,
//!   private, link-local (cloud metadata), unique-local, multicast and the other special
//!   ranges are refused, in every spelling (IPv4-mapped, NAT64, 6to4, decimal or octal
//!   IPv4); a name is resolved once and the connection goes to the address that was
//!   checked, so DNS rebinding cannot slip past. An explicit allow-list re-admits a
//!   receiver on the operator's own network, or a test's receiver on `127.0.0.1`.
//!
//! ## Example: sign a body, verify it as a receiver would
//!
//! ```
//! use pipe_core::{OutgoingWebhook, Signer};
//! use pipe_webhook::{StandardWebhooks, Verifier, VerifyError};
//!
//! let secret = StandardWebhooks::generate_secret(); // "whsec_…", shared with the receiver
//! let signer = StandardWebhooks::new(&secret)?;
//! let body = br#"{"version":"1.0","event":"video_recorded","data":{"id":"r1"}}"#;
//! let now = 1_767_225_600;
//! let headers = signer.sign(&OutgoingWebhook {
//!     id: "msg_2kq6w5c0v8x1tq3n9d7m4h0z5b",
//!     timestamp: now,
//!     url: "https://example.com/hooks/pipe",
//!     body,
//! });
//!
//! // On the receiving side, with the raw body bytes and the request's headers:
//! let verifier = Verifier::new(&secret)?;
//! assert_eq!(verifier.verify(&headers, body, now + 2), Ok(()));
//! assert_eq!(
//!     verifier.verify(&headers, b"{\"forged\":true}", now + 2),
//!     Err(VerifyError::NoMatchingSignature)
//! );
//! # Ok::<(), pipe_core::Error>(())
//! ```
//!
//! Delivering is [`WebhookNotifier::builder`], one [`WebhookEndpoint`] per URL with its
//! signers, then [`Notifier::deliver`](pipe_core::Notifier::deliver) for each event. With
//! [`WebhookNotifierBuilder::endpoint_store`], the endpoints environments keep
//! ([`pipe_core::EndpointStore`]) are read at each delivery instead: an event goes to its
//! environment's enabled endpoints that want it, both secrets sign during a rotation, and
//! an endpoint that answers `410 Gone` is disabled.
//!
//! ## Features
//!
//! None: the crate is small (reqwest with rustls, hmac, sha1, sha2, base64).
//!
//! ## What it does not do (yet)
//!
//! - **Retry on a schedule.** `deliver` and `deliver_to` make one attempt; the job system
//!   in `pipe-lifecycle` runs one delivery job per endpoint and event
//!   ([`Notifier::subscribers`](pipe_core::Notifier::subscribers) names the endpoints) and
//!   retries it on svix's schedule, presenting the same event (same id).
//! - **Asymmetric signatures** (`v1a`, ed25519): verifiers skip them; signing is not
//!   offered.
//! - Secrets are not zeroed in memory when dropped.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod endpoint;
mod error;
mod notifier;
mod pipe;
pub mod ssrf;
mod standard;

pub use endpoint::WebhookEndpoint;
pub use error::{DeliveryError, EndpointError, VerifyError};
pub use notifier::{WebhookNotifier, WebhookNotifierBuilder};
pub use pipe::{PipeSignature, X_PIPE_SIGNATURE};
/// The URL type of [`AddressPolicy::check_url`] (the `url` crate's, through reqwest), so
/// a caller needs no dependency of its own to call it.
pub use reqwest::Url;
pub use ssrf::{AddressPolicy, Forbidden, GuardedResolver, IpNet, IpNetError, SsrfError, classify};
pub use standard::{StandardWebhooks, Verifier, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
