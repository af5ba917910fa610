//! One place events are POSTed to, with the signers that sign each request.

use std::fmt;
use std::sync::Arc;

use pipe_core::{BodyEncoding, Event, EventFilter, Signer, WireFormat};

/// An operator's webhook URL, the events it is subscribed to, the wire format its
/// receiver speaks and the signatures it expects.
///
/// The URL is kept exactly as given: Pipe's signature covers it byte for byte. It is
/// checked when the [`WebhookNotifier`](crate::WebhookNotifier) is built. `Debug` shows
/// only its host, since URLs often carry tokens.
///
/// By default an endpoint gets every event in our own format ([`WireFormat::Standard`]) as
/// `application/json`. A receiver written for the hosted Pipe wants
/// [`WireFormat::Pipe`], often form-encoded ([`BodyEncoding::Form`]), signed with
/// [`PipeSignature`](crate::PipeSignature).
///
/// ```
/// use std::sync::Arc;
/// use pipe_webhook::{PipeSignature, StandardWebhooks, WebhookEndpoint};
///
/// let endpoint = WebhookEndpoint::new("https://example.com/hooks/pipe")
///     .with_signer(Arc::new(StandardWebhooks::new(&StandardWebhooks::generate_secret())?))
///     .with_signer(Arc::new(PipeSignature::new("account webhook key")?));
/// assert_eq!(endpoint.url(), "https://example.com/hooks/pipe");
/// # Ok::<(), pipe_core::Error>(())
/// ```
#[derive(Clone)]
pub struct WebhookEndpoint {
    id: Option<String>,
    url: String,
    signers: Vec<Arc<dyn Signer>>,
    format: WireFormat,
    encoding: BodyEncoding,
    events: EventFilter,
}

impl WebhookEndpoint {
    /// An endpoint at `url` (`http` or `https`), with no signer yet, subscribed to every
    /// event in the standard format as JSON.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            id: None,
            url: url.into(),
            signers: Vec::new(),
            format: WireFormat::default(),
            encoding: BodyEncoding::default(),
            events: EventFilter::default(),
        }
    }

    /// Names the endpoint. Deliveries are queued per endpoint id, so an id must stay the
    /// same across restarts for queued deliveries to find their endpoint again. Unnamed
    /// endpoints are `endpoint-1`, `endpoint-2`, … in the order given to the builder.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The id, if one was given.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Speaks `format`.
    #[must_use]
    pub fn with_format(mut self, format: WireFormat) -> Self {
        self.format = format;
        self
    }

    /// Sends the JSON document as `encoding`. Form encoding is Pipe's: it is refused with
    /// the standard format when the notifier is built.
    #[must_use]
    pub fn with_encoding(mut self, encoding: BodyEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Gets only the events `filter` accepts.
    #[must_use]
    pub fn with_events(mut self, filter: EventFilter) -> Self {
        self.events = filter;
        self
    }

    /// The wire format.
    pub fn format(&self) -> WireFormat {
        self.format
    }

    /// The body encoding.
    pub fn encoding(&self) -> BodyEncoding {
        self.encoding
    }

    /// The subscription.
    pub fn events(&self) -> &EventFilter {
        &self.events
    }

    /// Whether this endpoint gets `event`.
    pub fn wants(&self, event: &Event) -> bool {
        self.events.accepts(event, self.format)
    }

    /// The request body for `event` and the JSON document it carries (what signatures
    /// cover): the same bytes for JSON, `payload=<the JSON, form-encoded>` for forms.
    pub fn body(&self, event: &Event) -> (Vec<u8>, Vec<u8>) {
        let json = event.envelope_for(self.format).to_bytes();
        let body = match self.encoding {
            BodyEncoding::Json => json.clone(),
            BodyEncoding::Form => form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", &String::from_utf8_lossy(&json))
                .finish()
                .into_bytes(),
        };
        (body, json)
    }

    /// Adds a signer; every request to this endpoint carries the headers of every signer,
    /// in the order added. Add at most one signer per scheme: to sign with two Standard
    /// Webhooks secrets while rotating, use
    /// [`StandardWebhooks::with_previous_secret`](crate::StandardWebhooks::with_previous_secret).
    #[must_use]
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> Self {
        self.signers.push(signer);
        self
    }

    /// The URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The signers, in the order added.
    pub fn signers(&self) -> &[Arc<dyn Signer>] {
        &self.signers
    }
}

impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = reqwest::Url::parse(&self.url).ok().map(|url| host_of(&url));
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("host", &host.as_deref().unwrap_or("<not a URL>"))
            .field("signers", &self.signers)
            .field("format", &self.format)
            .field("encoding", &self.encoding)
            .field("events", &self.events)
            .finish()
    }
}

/// `host` or `host:port`: how errors and logs name an endpoint without its path or query.
pub(crate) fn host_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("<no host>");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use pipe_core::{EventName, PipeEvent};

    use super::*;

    fn event() -> Event {
        Event::new(
            "video_copied_pipe_storage",
            "r1".parse().unwrap(),
            serde_json::json!({"id": "r1"}),
        )
        .with_pipe(PipeEvent::new(
            "video_copied_pipe_s3",
            serde_json::json!({"id": 7, "payload": "a&b=c d"}),
        ))
    }

    #[test]
    fn a_form_body_holds_the_json_in_payload_and_a_json_body_is_the_json() {
        let pipe = WebhookEndpoint::new("https://x.example/in")
            .with_format(WireFormat::Pipe)
            .with_encoding(BodyEncoding::Form);
        let (body, json) = pipe.body(&event());
        assert_eq!(
            json,
            br#"{"version":"1.0","event":"video_copied_pipe_s3","data":{"id":7,"payload":"a&b=c d"}}"#
        );
        let fields: Vec<_> = form_urlencoded::parse(&body).collect();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].0, "payload");
        assert_eq!(fields[0].1.as_bytes(), json.as_slice());

        let standard = WebhookEndpoint::new("https://x.example/in");
        let (body, json) = standard.body(&event());
        assert_eq!(body, json);
        assert!(body.starts_with(br#"{"version":"1.0","event":"video_copied_pipe_storage""#));
    }

    #[test]
    fn subscriptions_choose_the_events() {
        let only_failed = WebhookEndpoint::new("https://x.example/in")
            .with_events(EventFilter::Only(vec![EventName::new("video_failed")]));
        assert!(!only_failed.wants(&event()));
        assert!(WebhookEndpoint::new("https://x.example/in").wants(&event()));
    }

    #[test]
    fn debug_shows_the_host_but_not_the_path_query_or_secrets() {
        let endpoint =
            WebhookEndpoint::new("https://user:pw@hooks.example.com:8443/in?token=t0k3n")
                .with_signer(Arc::new(crate::PipeSignature::new("s3cr3t-key").unwrap()));
        let text = format!("{endpoint:?}");
        assert!(text.contains("hooks.example.com:8443"), "{text}");
        for secret in ["t0k3n", "pw", "/in", "s3cr3t-key"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
