//! Webhook endpoints as an environment keeps them: where its events go, in which wire
//! format, signed with which secret, and whether they are sent at all.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{BodyEncoding, EnvironmentId, Error, EventFilter, Result, Timestamp, WireFormat};

/// A webhook endpoint of an environment, as an [`EndpointStore`] keeps it.
///
/// Its `Debug` output leaves the secrets out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEndpoint {
    /// Its id: the name deliveries are queued and logged under. 1 to 64 characters of
    /// `[A-Za-z0-9_.-]` ([`StoredEndpoint::generate_id`] makes `ep_…`).
    pub id: String,
    /// The environment whose events it gets.
    pub environment: EnvironmentId,
    /// Where the events are POSTed.
    pub url: String,
    /// The wire format.
    #[serde(default)]
    pub format: WireFormat,
    /// How the JSON travels.
    #[serde(default)]
    pub encoding: BodyEncoding,
    /// The events it gets.
    #[serde(default)]
    pub events: EventFilter,
    /// The signing secret: a `whsec_…` secret for the `standard` format, Pipe's webhook
    /// key for `pipe`.
    pub secret: String,
    /// A secret being rotated out, also signed with until its time runs out.
    #[serde(default)]
    pub previous_secret: Option<PreviousSecret>,
    /// Why no event is sent to it, if none is: disabled by an operator, or because it
    /// answered `410 Gone`. `None`: enabled.
    #[serde(default)]
    pub disabled: Option<String>,
    /// Since when every attempt at it has failed (the first failure after a success);
    /// `None` while it accepts events. An endpoint failing for days is disabled.
    #[serde(default)]
    pub failing_since: Option<Timestamp>,
    /// When it was created.
    pub created: Timestamp,
    /// When it last changed.
    pub updated: Timestamp,
}

/// A secret being rotated out: requests are signed with it as well until `until`, so a
/// receiver can change its secret at leisure.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    /// The old secret.
    pub secret: String,
    /// Signed with until this time.
    pub until: Timestamp,
}

impl StoredEndpoint {
    /// How long the previous secret is signed with after a rotation, unless told.
    pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

    /// An enabled endpoint of `environment` at `url`, in the `standard` format with every
    /// event, signed with `secret`, created now.
    pub fn new(
        id: impl Into<String>,
        environment: EnvironmentId,
        url: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        let now = Timestamp::now();
        Self {
            id: id.into(),
            environment,
            url: url.into(),
            format: WireFormat::default(),
            encoding: BodyEncoding::default(),
            events: EventFilter::default(),
            secret: secret.into(),
            previous_secret: None,
            disabled: None,
            failing_since: None,
            created: now,
            updated: now,
        }
    }

    /// A new random id, `ep_` and 26 base32 characters.
    pub fn generate_id() -> String {
        format!("ep_{}", crate::id::random_base32())
    }

    /// Refuses an id that is not 1 to 64 characters of `[A-Za-z0-9_.-]`.
    pub fn check_id(id: &str) -> Result<()> {
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "webhook endpoint id",
                "1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'",
            ))
        }
    }

    /// Whether events are sent to it.
    pub fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// The secrets to sign with at `now`: the current one, then the previous one while
    /// its overlap lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let Some(previous) = &self.previous_secret
            && previous.until > now
        {
            secrets.push(&previous.secret);
        }
        secrets
    }

    /// The same endpoint with `secret` as its secret from now on, and the current one
    /// signed with as well for `overlap`.
    #[must_use]
    pub fn rotated(mut self, secret: impl Into<String>, overlap: Duration) -> Self {
        let now = Timestamp::now();
        let old = std::mem::replace(&mut self.secret, secret.into());
        self.previous_secret = (!overlap.is_zero()).then(|| PreviousSecret {
            secret: old,
            until: now.plus(overlap),
        });
        self.updated = now;
        self
    }
}

impl fmt::Debug for StoredEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEndpoint")
            .field("id", &self.id)
            .field("environment", &self.environment)
            .field("format", &self.format)
            .field("encoding", &self.encoding)
            .field("events", &self.events)
            .field("secret", &"<redacted>")
            .field(
                "previous_secret_until",
                &self.previous_secret.as_ref().map(|p| p.until),
            )
            .field("disabled", &self.disabled)
            .field("failing_since", &self.failing_since)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PreviousSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreviousSecret")
            .field("secret", &"<redacted>")
            .field("until", &self.until)
            .finish()
    }
}

/// Where environments keep their webhook endpoints.
///
/// # Contract
///
/// - Ids are unique across environments: `create_endpoint` of a taken id is
///   `AlreadyExists`.
/// - What is stored comes back as it was given, secrets included (they sign requests, so
///   they cannot be kept as hashes).
/// - `endpoints` lists one environment's endpoints, oldest first.
/// - `replace_endpoint`, `delete_endpoint` and `endpoint` of an unknown id are
///   `NotFound`; `replace_endpoint` never moves an endpoint to another environment.
#[async_trait]
pub trait EndpointStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a new endpoint.
    async fn create_endpoint(&self, endpoint: StoredEndpoint) -> Result<StoredEndpoint>;

    /// The endpoint `id`.
    async fn endpoint(&self, id: &str) -> Result<StoredEndpoint>;

    /// The endpoints of `environment`, oldest first.
    async fn endpoints(&self, environment: &EnvironmentId) -> Result<Vec<StoredEndpoint>>;

    /// Replaces the endpoint of the same id (in the same environment).
    async fn replace_endpoint(&self, endpoint: StoredEndpoint) -> Result<StoredEndpoint>;

    /// Deletes the endpoint `id`. Its logged attempts stay in the delivery log.
    async fn delete_endpoint(&self, id: &str) -> Result<()>;
}

/// Says whether webhooks may be sent to a URL: the SSRF guard, asked where endpoints are
/// created so that a URL pointing inside the operator's network is refused up front.
/// (`pipe-webhook`'s `AddressPolicy` is one; delivery checks again at each connection.)
#[async_trait]
pub trait UrlGuard: Send + Sync + fmt::Debug + 'static {
    /// `Invalid`, saying why, if webhooks may not be sent to `url`.
    async fn check_url(&self, url: &str) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_signs_with_both_secrets_until_the_overlap_ends() {
        let endpoint = StoredEndpoint::new(
            "ep_1",
            EnvironmentId::default(),
            "https://hooks.example/in",
            "whsec_old",
        );
        let now = Timestamp::now();
        assert_eq!(endpoint.signing_secrets(now), ["whsec_old"]);
        let rotated = endpoint.rotated("whsec_new", Duration::from_secs(60));
        assert_eq!(rotated.signing_secrets(now), ["whsec_new", "whsec_old"]);
        assert_eq!(
            rotated.signing_secrets(now.plus(Duration::from_secs(120))),
            ["whsec_new"]
        );
        let at_once = rotated.rotated("whsec_newer", Duration::ZERO);
        assert_eq!(at_once.signing_secrets(now), ["whsec_newer"]);
        let text = format!("{at_once:?}");
        assert!(!text.contains("whsec"), "{text}");
    }

    #[test]
    fn ids_are_short_and_plain() {
        for ok in ["endpoint-1", "ep_01jzq3v8m6k2x9t4r7w5n0c1bd", "crm.v2"] {
            StoredEndpoint::check_id(ok).unwrap();
        }
        StoredEndpoint::check_id(&StoredEndpoint::generate_id()).unwrap();
        for bad in ["", "a b", "ünï", "x/y", &"x".repeat(65)] {
            assert!(StoredEndpoint::check_id(bad).is_err(), "{bad}");
        }
    }
}
