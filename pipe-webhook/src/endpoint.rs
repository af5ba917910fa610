//! One place events are POSTed to, with the signers that sign each request.

use std::fmt;
use std::sync::Arc;

use pipe_core::Signer;

/// An operator's webhook URL and the signatures its receiver expects.
///
/// The URL is kept exactly as given: Pipe's signature covers it byte for byte. It is
/// checked when the [`WebhookNotifier`](crate::WebhookNotifier) is built. `Debug` shows
/// only its host, since URLs often carry tokens.
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
    url: String,
    signers: Vec<Arc<dyn Signer>>,
}

impl WebhookEndpoint {
    /// An endpoint at `url` (`http` or `https`), with no signer yet.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            signers: Vec::new(),
        }
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
            .field("host", &host.as_deref().unwrap_or("<not a URL>"))
            .field("signers", &self.signers)
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
    use super::*;

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
