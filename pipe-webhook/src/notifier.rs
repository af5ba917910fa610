//! [`WebhookNotifier`]: signs an [`Event`] and POSTs it to every endpoint, once.

use std::borrow::Cow;
use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pipe_core::{
    Attempted, BodyEncoding, DeliveryAttempt, EndpointStore, Event, Notifier, OutgoingWebhook,
    Signer, StoredEndpoint, Timestamp, WireFormat,
};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::endpoint::host_of;
use crate::{
    AddressPolicy, DeliveryError, EndpointError, PipeSignature, SsrfError, StandardWebhooks,
    WebhookEndpoint,
};

/// The `user-agent` of every request.
const USER_AGENT: &str = concat!("pipe-webhook/", env!("CARGO_PKG_VERSION"));

/// Delivers events to the operator's endpoints: the body is the envelope
/// (`{"version":"1.0","event":…,"data":…}`) in each endpoint's wire format and encoding,
/// signed by each endpoint's signers with `webhook-id` = the event's id and the time of
/// the attempt. Signers sign the JSON document (for a form-encoded request, the value of
/// its `payload` field, as Pipe's signature does).
///
/// Each [`deliver`](Notifier::deliver) is one attempt at every endpoint subscribed to the
/// event, concurrently. It is `Ok` when every one answered 2xx, and when there is none.
/// Otherwise the error is a [`pipe_core::Error::Backend`] whose source is a
/// [`DeliveryError`] naming each failing endpoint by host and status (never by full URL,
/// never with a secret). It is retryable when any failure is: network errors, timeouts,
/// 408, 429 and 5xx. Other 4xx answers, and redirects, which are never followed, are
/// permanent. Endpoints that accepted the event get it again on a retry, with the same
/// `webhook-id`, and can deduplicate.
///
/// ```no_run
/// # async fn example(event: pipe_core::Event) -> pipe_core::Result<()> {
/// use std::{sync::Arc, time::Duration};
/// use pipe_core::Notifier;
/// use pipe_webhook::{StandardWebhooks, WebhookEndpoint, WebhookNotifier};
///
/// let notifier = WebhookNotifier::builder()
///     .endpoint(
///         WebhookEndpoint::new("https://example.com/hooks/pipe")
///             .with_signer(Arc::new(StandardWebhooks::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?)),
///     )
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// notifier.deliver(&event).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    targets: Vec<Target>,
    timeout: Duration,
    /// Endpoints kept by environments, read at each delivery.
    store: Option<Arc<dyn EndpointStore>>,
    addresses: AddressPolicy,
    disable_after: Duration,
}

/// An endpoint with its id and its URL parsed once.
#[derive(Clone)]
struct Target {
    id: String,
    endpoint: WebhookEndpoint,
    url: reqwest::Url,
    host: String,
}

impl Target {
    /// `endpoint` under `id`, its URL checked: `http(s)` with a host that `addresses`
    /// allows when it is an IP address, and form encoding only for the `pipe` format.
    /// The error says why, without quoting the URL (it may hold a token).
    fn new(
        id: String,
        endpoint: WebhookEndpoint,
        addresses: &AddressPolicy,
    ) -> Result<Self, String> {
        let url = reqwest::Url::parse(endpoint.url()).map_err(|e| e.to_string())?;
        // Also refuses any scheme but http(s), and a URL without a host.
        addresses.check_url(&url).map_err(|e| e.to_string())?;
        if endpoint.format() == WireFormat::Standard && endpoint.encoding() == BodyEncoding::Form {
            return Err("form encoding is Pipe's: use it with the `pipe` format".into());
        }
        Ok(Target {
            id,
            host: host_of(&url),
            endpoint,
            url,
        })
    }

    /// A stored endpoint as one to post to, signed with its secrets of `now`.
    fn stored(stored: &StoredEndpoint, addresses: &AddressPolicy) -> pipe_core::Result<Self> {
        let secrets = stored.signing_secrets(Timestamp::now());
        let signer: Arc<dyn Signer> = match stored.format {
            WireFormat::Standard => {
                let mut signer = StandardWebhooks::new(secrets[0])?;
                for previous in &secrets[1..] {
                    signer = signer.with_previous_secret(previous)?;
                }
                Arc::new(signer)
            }
            // Pipe's receivers read one X-Pipe-Signature: the current key's.
            WireFormat::Pipe => Arc::new(PipeSignature::new(secrets[0])?),
        };
        let endpoint = WebhookEndpoint::new(stored.url.clone())
            .with_id(stored.id.clone())
            .with_format(stored.format)
            .with_encoding(stored.encoding)
            .with_events(stored.events.clone())
            .with_signer(signer);
        Target::new(stored.id.clone(), endpoint, addresses).map_err(|why| {
            pipe_core::Error::invalid(
                "webhook endpoint URL",
                format!("endpoint {}: {why}", stored.id),
            )
        })
    }

    /// The signed headers of one request to this endpoint, whose JSON document is `json`.
    fn headers(&self, id: &str, timestamp: i64, json: &[u8]) -> pipe_core::Result<HeaderMap> {
        let request = OutgoingWebhook {
            id,
            timestamp,
            url: self.endpoint.url(),
            body: json,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(self.endpoint.encoding().content_type()),
        );
        for signer in self.endpoint.signers() {
            for (name, value) in signer.sign(&request) {
                // A signer that makes an impossible header is a bug; say which header
                // without echoing its value, which may be secret-derived.
                let header_name = HeaderName::try_from(name.as_str()).map_err(|_| {
                    pipe_core::Error::invalid("webhook header", format!("name {name:?}"))
                })?;
                let header_value = HeaderValue::try_from(value).map_err(|_| {
                    pipe_core::Error::invalid("webhook header", format!("value of {name}"))
                })?;
                headers.append(header_name, header_value);
            }
        }
        Ok(headers)
    }
}

impl WebhookNotifier {
    /// How long an endpoint has to answer, unless configured.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// How long a stored endpoint may fail every delivery before it is disabled, unless
    /// configured: 5 days, as svix does, longer than the whole retry schedule of one
    /// delivery (about 28 hours), so one dead delivery never disables an endpoint.
    pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

    /// Starts the configuration.
    pub fn builder() -> WebhookNotifierBuilder {
        WebhookNotifierBuilder::default()
    }

    /// The configured endpoints.
    pub fn endpoints(&self) -> impl ExactSizeIterator<Item = &WebhookEndpoint> {
        self.targets.iter().map(|target| &target.endpoint)
    }

    /// One POST to `target`. A refusal comes with the wait the endpoint asked for, if its
    /// answer had a `Retry-After` in seconds (an HTTP-date is not read).
    async fn post(
        &self,
        target: &Target,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(), (EndpointError, Option<Duration>)> {
        self.post_and_read(target, headers, body).await.outcome
    }

    /// One POST to `target`, and the start of the answer, for the delivery log.
    async fn post_and_read(&self, target: &Target, headers: HeaderMap, body: Vec<u8>) -> Posted {
        let sent = self
            .client
            .post(target.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Posted {
                    outcome: Err((self.unsent(target, e), None)),
                    status: None,
                    answer: Vec::new(),
                };
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer = read_start(response).await;
        let posted = |outcome| Posted {
            outcome,
            status: Some(status.as_u16()),
            answer,
        };
        if status.is_success() {
            return posted(Ok(()));
        }
        let host = target.host.clone();
        let error = if status.is_redirection() {
            EndpointError::Redirect {
                host,
                status: status.as_u16(),
            }
        } else {
            EndpointError::Status {
                host,
                status: status.as_u16(),
            }
        };
        posted(Err((error, retry_after)))
    }

    /// Why a request to `target` got no answer.
    fn unsent(&self, target: &Target, e: reqwest::Error) -> EndpointError {
        let host = target.host.clone();
        if let Some(refused) = ssrf_cause(&e) {
            EndpointError::Refused {
                host,
                error: refused,
            }
        } else if e.is_timeout() {
            EndpointError::Timeout {
                host,
                timeout: self.timeout,
            }
        } else {
            EndpointError::Network {
                host,
                detail: describe(e),
            }
        }
    }
}

/// What one POST gave.
struct Posted {
    outcome: Result<(), (EndpointError, Option<Duration>)>,
    status: Option<u16>,
    /// The start of the answer's body.
    answer: Vec<u8>,
}

/// The first [`DeliveryAttempt::RESPONSE_LIMIT`] bytes of an answer, or what arrived of
/// them before the answer failed or the timeout struck; the rest is never read.
async fn read_start(mut response: reqwest::Response) -> Vec<u8> {
    let limit = DeliveryAttempt::RESPONSE_LIMIT;
    let mut answer = Vec::new();
    while answer.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                answer.extend_from_slice(&chunk[..chunk.len().min(limit - answer.len())])
            }
            Ok(None) | Err(_) => break,
        }
    }
    answer
}

/// The guard's refusal, when that is why the request could not be sent.
fn ssrf_cause(e: &reqwest::Error) -> Option<SsrfError> {
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<SsrfError>() {
            return Some(refused.clone());
        }
        source = cause.source();
    }
    None
}

/// A reqwest error and its causes in one line, without the URL (which may carry tokens).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl WebhookNotifier {
    /// The signed headers and the body of `event` for `target`, signed now.
    fn request(target: &Target, event: &Event) -> pipe_core::Result<(HeaderMap, Vec<u8>)> {
        let (body, json) = target.endpoint.body(event);
        let timestamp = Timestamp::now().as_secs();
        let headers = target.headers(event.id.as_str(), timestamp, &json)?;
        Ok((headers, body))
    }

    /// The endpoint `id`: given to the builder, or stored and enabled (with what the
    /// store holds of it).
    async fn target(
        &self,
        id: &str,
    ) -> pipe_core::Result<(Cow<'_, Target>, Option<StoredEndpoint>)> {
        if let Some(target) = self.targets.iter().find(|t| t.id == id) {
            return Ok((Cow::Borrowed(target), None));
        }
        let not_found = || pipe_core::Error::not_found(format_args!("webhook endpoint {id:?}"));
        let Some(store) = &self.store else {
            return Err(not_found());
        };
        let stored = match store.endpoint(id).await {
            Err(e) if e.is_not_found() => return Err(not_found()),
            other => other?,
        };
        if let Some(why) = &stored.disabled {
            return Err(pipe_core::Error::permanent(
                "webhook",
                format!("webhook endpoint {id} is disabled: {why}"),
            ));
        }
        let target = Target::stored(&stored, &self.addresses)?;
        Ok((Cow::Owned(target), Some(stored)))
    }

    /// Keeps the stored endpoint's health after an attempt (see [`health`]). `seen` is
    /// the endpoint as read for the attempt: when it says nothing changes, as for every
    /// accepted delivery to a healthy endpoint, the store is not touched. Otherwise the
    /// endpoint is read again, so a change made meanwhile through the API is not
    /// overwritten, and written with the change. A write that fails is only logged (the
    /// delivery's own outcome stands).
    async fn track(&self, seen: &StoredEndpoint, posted: &Posted) {
        let Some(store) = &self.store else { return };
        let now = Timestamp::now();
        if health(seen, posted, now, self.disable_after).is_none() {
            return;
        }
        let id = seen.id.as_str();
        let result = async {
            let mut stored = store.endpoint(id).await?;
            let Some(change) = health(&stored, posted, now, self.disable_after) else {
                return Ok(None);
            };
            let disabled = match change {
                Health::Failing => {
                    stored.failing_since = Some(now);
                    None
                }
                Health::Recovered => {
                    stored.failing_since = None;
                    None
                }
                Health::Disabled(why) => {
                    stored.disabled = Some(why.clone());
                    Some(why)
                }
            };
            stored.updated = now;
            store.replace_endpoint(stored).await?;
            Ok::<_, pipe_core::Error>(disabled)
        }
        .await;
        match result {
            Ok(Some(why)) => {
                tracing::warn!(endpoint = id, reason = %why, "webhook endpoint disabled")
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(endpoint = id, error = %e, "could not keep the webhook endpoint's health")
            }
        }
    }
}

/// How an attempt changes a stored endpoint's health.
enum Health {
    /// The first failure after a success: failing from now.
    Failing,
    /// Accepted after failures.
    Recovered,
    /// Disabled, for this reason.
    Disabled(String),
}

/// What `posted` changes of `stored`'s health at `now`, if anything: a `410 Gone`
/// disables it; the first failure after a success marks when it began failing, and a
/// failure more than `disable_after` later disables it; a success clears the mark.
fn health(
    stored: &StoredEndpoint,
    posted: &Posted,
    now: Timestamp,
    disable_after: Duration,
) -> Option<Health> {
    match (&posted.outcome, stored.failing_since) {
        (Ok(()), None) => None,
        (Ok(()), Some(_)) => Some(Health::Recovered),
        (Err(_), _) if posted.status == Some(410) => Some(Health::Disabled(format!(
            "it answered 410 Gone at {}",
            now.to_rfc3339()
        ))),
        (Err(_), None) => Some(Health::Failing),
        (Err(_), Some(since)) if since.plus(disable_after) <= now => {
            Some(Health::Disabled(format!(
                "every delivery failed from {} to {}",
                since.to_rfc3339(),
                now.to_rfc3339()
            )))
        }
        (Err(_), Some(_)) => None,
    }
}

/// A refusal by one endpoint as the error of a delivery to it.
fn refusal(
    event: &Event,
    endpoint: &str,
    (failure, retry_after): (EndpointError, Option<Duration>),
) -> pipe_core::Error {
    tracing::warn!(event = %event.id, name = %event.name, endpoint, error = %failure, "webhook not accepted");
    DeliveryError::new(vec![failure], 1)
        .with_retry_after(retry_after)
        .into()
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn subscribers(&self, event: &Event) -> pipe_core::Result<Vec<String>> {
        let mut ids: Vec<String> = self
            .targets
            .iter()
            .filter(|target| target.endpoint.wants(event))
            .map(|target| target.id.clone())
            .collect();
        if let Some(store) = &self.store {
            for stored in store.endpoints(&event.environment).await? {
                if stored.is_enabled()
                    && stored.events.accepts(event, stored.format)
                    && !ids.contains(&stored.id)
                {
                    ids.push(stored.id);
                }
            }
        }
        Ok(ids)
    }

    async fn deliver_to(&self, event: &Event, endpoint: &str) -> pipe_core::Result<()> {
        self.attempt(event, endpoint).await.outcome
    }

    async fn attempt(&self, event: &Event, endpoint: &str) -> Attempted {
        let started = Instant::now();
        let prepared = match self.target(endpoint).await {
            Ok((target, stored)) => {
                Self::request(&target, event).map(|request| (target, stored, request))
            }
            Err(e) => Err(e),
        };
        let (target, stored, (headers, body)) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return Attempted::new(Err(e), started.elapsed()),
        };
        let posted = self.post_and_read(&target, headers, body).await;
        if let Some(stored) = &stored {
            self.track(stored, &posted).await;
        }
        let outcome = posted
            .outcome
            .map_err(|refused| refusal(event, endpoint, refused));
        if outcome.is_ok() {
            tracing::debug!(event = %event.id, name = %event.name, endpoint, "webhook delivered");
        }
        let attempted = Attempted::new(outcome, started.elapsed());
        match posted.status {
            Some(status) => attempted.with_answer(status, posted.answer),
            None => attempted,
        }
    }

    async fn deliver(&self, event: &Event) -> pipe_core::Result<()> {
        let targets: Vec<&Target> = self
            .targets
            .iter()
            .filter(|target| target.endpoint.wants(event))
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        // Every request is signed before any is sent: a signer that cannot sign fails the
        // delivery without telling some endpoints and not others.
        let requests = targets
            .iter()
            .map(|target| Ok((*target, Self::request(target, event)?)))
            .collect::<pipe_core::Result<Vec<_>>>()?;
        let posts = requests
            .into_iter()
            .map(|(target, (headers, body))| self.post(target, headers, body));
        let failures: Vec<EndpointError> = futures::future::join_all(posts)
            .await
            .into_iter()
            .filter_map(|outcome| outcome.err().map(|(failure, _)| failure))
            .collect();
        for failure in &failures {
            tracing::warn!(event = %event.id, name = %event.name, error = %failure, "webhook not accepted");
        }
        if failures.is_empty() {
            tracing::debug!(event = %event.id, name = %event.name, endpoints = targets.len(), "webhook delivered");
            Ok(())
        } else {
            Err(DeliveryError::new(failures, targets.len()).into())
        }
    }
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field(
                "endpoints",
                &self.targets.iter().map(|t| &t.endpoint).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Configures a [`WebhookNotifier`]; from [`WebhookNotifier::builder`].
#[derive(Debug, Default)]
#[must_use]
pub struct WebhookNotifierBuilder {
    endpoints: Vec<WebhookEndpoint>,
    timeout: Option<Duration>,
    addresses: AddressPolicy,
    store: Option<Arc<dyn EndpointStore>>,
    disable_after: Option<Duration>,
}

impl WebhookNotifierBuilder {
    /// Adds an endpoint. Each event goes to every endpoint.
    pub fn endpoint(mut self, endpoint: WebhookEndpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Adds several endpoints.
    pub fn endpoints(mut self, endpoints: impl IntoIterator<Item = WebhookEndpoint>) -> Self {
        self.endpoints.extend(endpoints);
        self
    }

    /// How long an endpoint has to answer, connection included
    /// ([`WebhookNotifier::DEFAULT_TIMEOUT`] unless set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Which addresses endpoints may be at: by default ([`AddressPolicy::new`]) only
    /// public ones. Re-admit a receiver on the operator's own network, or a test's on
    /// `127.0.0.1`, with [`AddressPolicy::allow`].
    pub fn address_policy(mut self, addresses: AddressPolicy) -> Self {
        self.addresses = addresses;
        self
    }

    /// Also delivers to the endpoints that environments keep in `store`, read at each
    /// delivery, so endpoints made, changed or disabled through the API apply to the next
    /// event without a restart. An event goes to the enabled endpoints of its
    /// environment that want it. An endpoint that answers `410 Gone`, or that has failed
    /// every delivery for [`disable_after`](Self::disable_after), is disabled in the
    /// store, with the reason. An endpoint given with [`endpoint`](Self::endpoint) wins
    /// over a stored one of the same id.
    pub fn endpoint_store(mut self, store: Arc<dyn EndpointStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How long a stored endpoint may fail every delivery before it is disabled
    /// ([`WebhookNotifier::DEFAULT_DISABLE_AFTER`] unless set).
    pub fn disable_after(mut self, after: Duration) -> Self {
        self.disable_after = Some(after);
        self
    }

    /// Checks the configuration and makes the HTTP client (rustls, no redirects, no
    /// proxy, names resolved through the [`AddressPolicy`]'s guard).
    ///
    /// An endpoint whose host is an IP address is checked here, once: the client never
    /// resolves such a host, and the endpoints do not change afterwards. A host name is
    /// checked at every connection, as it resolves then
    /// ([`EndpointError::Refused`] when it resolves inside the network).
    ///
    /// # Errors
    ///
    /// [`pipe_core::Error::Invalid`] if an endpoint URL is not an absolute `http` or
    /// `https` URL with a host, if its host is an address the policy refuses, or the
    /// timeout is zero; a permanent
    /// [`pipe_core::Error::Backend`] if the TLS client cannot be made.
    pub fn build(self) -> pipe_core::Result<WebhookNotifier> {
        let timeout = self.timeout.unwrap_or(WebhookNotifier::DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(pipe_core::Error::invalid(
                "webhook timeout",
                "it must be longer than zero",
            ));
        }
        let targets = self
            .endpoints
            .into_iter()
            .enumerate()
            .map(|(i, endpoint)| {
                let id = endpoint
                    .id()
                    .map_or_else(|| format!("endpoint-{}", i + 1), str::to_owned);
                Target::new(id, endpoint, &self.addresses).map_err(|why| {
                    pipe_core::Error::invalid(
                        "webhook endpoint URL",
                        format!("endpoint {}: {why}", i + 1),
                    )
                })
            })
            .collect::<pipe_core::Result<Vec<_>>>()?;
        if let Some(bad) = targets.iter().find(|t| {
            !(1..=128).contains(&t.id.len()) || !t.id.bytes().all(|b| b.is_ascii_graphic())
        }) {
            return Err(pipe_core::Error::invalid(
                "webhook endpoint id",
                format!("{:?}: 1 to 128 visible ASCII characters", bad.id),
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        if let Some(twice) = targets.iter().find(|t| !ids.insert(t.id.as_str())) {
            return Err(pipe_core::Error::invalid(
                "webhook endpoint id",
                format!("{:?} is given to two endpoints", twice.id),
            ));
        }
        let client = self
            .addresses
            .client_builder()
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| pipe_core::Error::permanent("webhook", e.without_url()))?;
        Ok(WebhookNotifier {
            client,
            targets,
            timeout,
            store: self.store,
            addresses: self.addresses,
            disable_after: self
                .disable_after
                .unwrap_or(WebhookNotifier::DEFAULT_DISABLE_AFTER),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_urls_it_cannot_post_to_without_quoting_them() {
        for url in [
            "not a url",
            "ftp://files.example.com/in",
            "mailto:ops@example.com",
            "/relative?token=abc",
        ] {
            let err = WebhookNotifier::builder()
                .endpoint(WebhookEndpoint::new(url))
                .build()
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    pipe_core::Error::Invalid {
                        what: "webhook endpoint URL",
                        ..
                    }
                ),
                "{url}: {err}"
            );
            assert!(!err.to_string().contains(url), "{err}");
        }
        let zero = WebhookNotifier::builder()
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(matches!(zero, pipe_core::Error::Invalid { .. }));
    }
}
