//! [Standard Webhooks](https://www.standardwebhooks.com/): the symmetric (`v1`,
//! HMAC-SHA256) scheme, for senders ([`StandardWebhooks`]) and receivers ([`Verifier`]).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use pipe_core::{OutgoingWebhook, Signer};
use sha2::Sha256;

use crate::VerifyError;

type HmacSha256 = Hmac<Sha256>;

/// The header with the event's id, the same on every attempt.
pub const WEBHOOK_ID: &str = "webhook-id";
/// The header with the attempt's time, in seconds since the Unix epoch.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The header with the space-separated signatures, each `v1,<base64>`.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// How a secret is recognised: `whsec_` followed by the base64 of the key.
const SECRET_PREFIX: &str = "whsec_";
/// The key lengths the specification allows (192 to 512 bits).
const KEY_LEN: std::ops::RangeInclusive<usize> = 24..=64;
/// The key length of [`StandardWebhooks::generate_secret`]: 256 bits.
const GENERATED_KEY_LEN: usize = 32;
/// The version tag of HMAC-SHA256 signatures.
const VERSION: &str = "v1";

/// The key bytes of a `whsec_` secret. Deliberately not `Debug`.
#[derive(Clone)]
struct Key(Vec<u8>);

impl Key {
    /// Decodes `whsec_<base64>`. The error never quotes the secret.
    fn parse(secret: &str) -> Result<Self, pipe_core::Error> {
        let invalid = |detail: String| pipe_core::Error::invalid("webhook secret", detail);
        let encoded = secret
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| invalid(format!("expected `{SECRET_PREFIX}` followed by base64")))?;
        let key = BASE64.decode(encoded).map_err(|_| {
            invalid(format!(
                "the part after `{SECRET_PREFIX}` is not standard base64"
            ))
        })?;
        if !KEY_LEN.contains(&key.len()) {
            return Err(invalid(format!(
                "the key is {} bytes; Standard Webhooks keys are {} to {} bytes",
                key.len(),
                KEY_LEN.start(),
                KEY_LEN.end()
            )));
        }
        Ok(Self(key))
    }

    /// The MAC over `{id}.{timestamp}.{body}`, not yet finalised.
    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// Signs webhooks with Standard Webhooks headers: `webhook-id`, `webhook-timestamp` and
/// `webhook-signature: v1,<base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">`.
///
/// Every Standard Webhooks library (and Svix's) verifies what it signs. During a key
/// rotation it signs with the old key too ([`StandardWebhooks::with_previous_secret`]),
/// as the specification describes, so receivers can switch keys at their own pace. Its
/// `Debug` output never shows a secret.
///
/// ```
/// use pipe_core::{OutgoingWebhook, Signer};
/// use pipe_webhook::StandardWebhooks;
///
/// let signer = StandardWebhooks::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let headers = signer.sign(&OutgoingWebhook {
///     id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
///     timestamp: 1614265330,
///     url: "https://example.com/hooks",
///     body: br#"{"test": 2432232314}"#,
/// });
/// assert_eq!(headers[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
/// # Ok::<(), pipe_core::Error>(())
/// ```
#[derive(Clone)]
pub struct StandardWebhooks {
    /// The current key first, then keys being rotated out.
    keys: Vec<Key>,
}

impl StandardWebhooks {
    /// A signer for `secret`, `whsec_` followed by the standard base64 of a 24 to 64 byte
    /// key.
    ///
    /// # Errors
    ///
    /// [`pipe_core::Error::Invalid`] if the prefix is missing, the rest is not base64, or
    /// the key length is outside the specification's range. The error never quotes the
    /// secret.
    pub fn new(secret: &str) -> Result<Self, pipe_core::Error> {
        Key::parse(secret).map(|key| Self { keys: vec![key] })
    }

    /// Also signs with `previous`, a secret being rotated out: `webhook-signature` then
    /// holds one `v1` signature per secret, the current one first, and a receiver that
    /// still has the old secret keeps verifying.
    ///
    /// # Errors
    ///
    /// As [`StandardWebhooks::new`], for `previous`.
    pub fn with_previous_secret(mut self, previous: &str) -> Result<Self, pipe_core::Error> {
        self.keys.push(Key::parse(previous)?);
        Ok(self)
    }

    /// A new random secret (256 bits from the operating system), in the `whsec_` form
    /// that [`StandardWebhooks::new`] and [`Verifier::new`] take.
    pub fn generate_secret() -> String {
        let mut key = [0u8; GENERATED_KEY_LEN];
        getrandom::fill(&mut key).expect("the operating system's random source failed");
        format!("{SECRET_PREFIX}{}", BASE64.encode(key))
    }

    /// The `webhook-signature` value for one request: `v1,<base64>`, or several such
    /// separated by spaces when rotating keys.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let signatures = self.keys.iter().map(|key| {
            let tag = key.mac(id, timestamp, body).finalize().into_bytes();
            format!("{VERSION},{}", BASE64.encode(tag))
        });
        signatures.collect::<Vec<_>>().join(" ")
    }
}

impl Signer for StandardWebhooks {
    fn sign(&self, request: &OutgoingWebhook<'_>) -> Vec<(String, String)> {
        vec![
            (WEBHOOK_ID.to_owned(), request.id.to_owned()),
            (WEBHOOK_TIMESTAMP.to_owned(), request.timestamp.to_string()),
            (
                WEBHOOK_SIGNATURE.to_owned(),
                self.signature(request.id, request.timestamp, request.body),
            ),
        ]
    }
}

impl fmt::Debug for StandardWebhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardWebhooks")
            .field("secrets", &format_args!("<{} redacted>", self.keys.len()))
            .finish()
    }
}

/// Checks Standard Webhooks requests on the receiving side.
///
/// A request verifies when its `webhook-timestamp` is within the tolerance of `now`
/// (5 minutes unless [`Verifier::with_tolerance`] says otherwise) and at least one `v1`
/// signature in `webhook-signature` matches, compared in constant time. Signatures of
/// other versions (`v1a`, later ones) are skipped, so a sender may add them freely.
///
/// ```
/// use pipe_webhook::{Verifier, VerifyError};
///
/// let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let headers = [
///     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
///     ("webhook-timestamp", "1614265330"),
///     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
/// ];
/// let body = br#"{"test": 2432232314}"#;
/// assert_eq!(verifier.verify(&headers, body, 1614265330 + 10), Ok(()));
/// assert!(matches!(
///     verifier.verify(&headers, body, 1614265330 + 3600),
///     Err(VerifyError::TooOld { .. })
/// ));
/// # Ok::<(), pipe_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    key: Key,
    tolerance: Duration,
}

impl Verifier {
    /// How far `webhook-timestamp` may be from now, either way, unless configured.
    pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

    /// A verifier for `secret` (the same `whsec_…` the sender signs with).
    ///
    /// # Errors
    ///
    /// As [`StandardWebhooks::new`].
    pub fn new(secret: &str) -> Result<Self, pipe_core::Error> {
        Key::parse(secret).map(|key| Self {
            key,
            tolerance: Self::DEFAULT_TOLERANCE,
        })
    }

    /// Accepts timestamps up to `tolerance` away from now (whole seconds count).
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Verifies a request given its headers (names compared case-insensitively, as HTTP
    /// does), its exact body bytes, and the receiver's time in seconds since the epoch.
    ///
    /// Several `webhook-signature` headers are read as one space-separated list.
    ///
    /// # Errors
    ///
    /// The [`VerifyError`] that says why the request is refused.
    pub fn verify<K, V>(&self, headers: &[(K, V)], body: &[u8], now: i64) -> Result<(), VerifyError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let values = |name: &'static str| {
            headers
                .iter()
                .filter(move |(k, _)| k.as_ref().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_ref())
        };
        let id = values(WEBHOOK_ID)
            .next()
            .ok_or(VerifyError::MissingHeader(WEBHOOK_ID))?;
        let timestamp = values(WEBHOOK_TIMESTAMP)
            .next()
            .ok_or(VerifyError::MissingHeader(WEBHOOK_TIMESTAMP))?;
        let signatures = values(WEBHOOK_SIGNATURE).collect::<Vec<_>>();
        if signatures.is_empty() {
            return Err(VerifyError::MissingHeader(WEBHOOK_SIGNATURE));
        }
        self.verify_parts(id, timestamp, &signatures.join(" "), body, now)
    }

    /// Verifies a request given the three header values directly, for frameworks whose
    /// header maps are easier to read one by one.
    ///
    /// # Errors
    ///
    /// The [`VerifyError`] that says why the request is refused.
    pub fn verify_parts(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::MalformedTimestamp)?;
        let tolerance = i64::try_from(self.tolerance.as_secs()).unwrap_or(i64::MAX);
        let age = now.saturating_sub(timestamp);
        if age > tolerance {
            return Err(VerifyError::TooOld { age, tolerance });
        }
        if age < tolerance.saturating_neg() {
            return Err(VerifyError::TooNew {
                ahead: timestamp.saturating_sub(now),
                tolerance,
            });
        }

        let expected = self.key.mac(id, timestamp, body);
        let matches = signatures
            .split_ascii_whitespace()
            .filter_map(|entry| entry.split_once(','))
            .filter(|(version, _)| *version == VERSION)
            .filter_map(|(_, signature)| BASE64.decode(signature).ok())
            .any(|tag| expected.clone().verify_slice(&tag).is_ok());
        if matches {
            Ok(())
        } else {
            Err(VerifyError::NoMatchingSignature)
        }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &"<redacted>")
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published test vector (also in Svix's and
    // every reference library's tests).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, timestamp: i64, signature: &str) -> Vec<(String, String)> {
        vec![
            (WEBHOOK_ID.into(), id.into()),
            (WEBHOOK_TIMESTAMP.into(), timestamp.to_string()),
            (WEBHOOK_SIGNATURE.into(), signature.into()),
        ]
    }

    #[test]
    fn signs_the_specification_test_vector() {
        let signer = StandardWebhooks::new(SECRET).unwrap();
        assert_eq!(signer.signature(ID, TIMESTAMP, BODY), SIGNATURE);
        let request = OutgoingWebhook {
            id: ID,
            timestamp: TIMESTAMP,
            url: "https://x.test/",
            body: BODY,
        };
        assert_eq!(signer.sign(&request), headers(ID, TIMESTAMP, SIGNATURE));
    }

    #[test]
    fn verifies_the_specification_test_vector() {
        let verifier = Verifier::new(SECRET).unwrap();
        assert_eq!(
            verifier.verify(&headers(ID, TIMESTAMP, SIGNATURE), BODY, TIMESTAMP),
            Ok(())
        );
    }

    #[test]
    fn refuses_a_changed_body_id_timestamp_or_secret() {
        let verifier = Verifier::new(SECRET).unwrap();
        let changed_body = br#"{"test": 2432232315}"#;
        assert_eq!(
            verifier.verify(&headers(ID, TIMESTAMP, SIGNATURE), changed_body, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            verifier.verify(
                &headers("msg_p5jXN8AQM9LWM0D4loKWxJeK", TIMESTAMP, SIGNATURE),
                BODY,
                TIMESTAMP
            ),
            Err(VerifyError::NoMatchingSignature)
        );
        // A fresh timestamp on an old signature: within tolerance, but not what was signed.
        assert_eq!(
            verifier.verify(&headers(ID, TIMESTAMP + 1, SIGNATURE), BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        let other = Verifier::new(&StandardWebhooks::generate_secret()).unwrap();
        assert_eq!(
            other.verify(&headers(ID, TIMESTAMP, SIGNATURE), BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn enforces_the_timestamp_tolerance_both_ways() {
        let verifier = Verifier::new(SECRET).unwrap();
        let h = headers(ID, TIMESTAMP, SIGNATURE);
        assert_eq!(verifier.verify(&h, BODY, TIMESTAMP + 300), Ok(()));
        assert_eq!(verifier.verify(&h, BODY, TIMESTAMP - 300), Ok(()));
        assert_eq!(
            verifier.verify(&h, BODY, TIMESTAMP + 301),
            Err(VerifyError::TooOld {
                age: 301,
                tolerance: 300
            })
        );
        assert_eq!(
            verifier.verify(&h, BODY, TIMESTAMP - 301),
            Err(VerifyError::TooNew {
                ahead: 301,
                tolerance: 300
            })
        );
        let strict = verifier.with_tolerance(Duration::from_secs(10));
        assert!(matches!(
            strict.verify(&h, BODY, TIMESTAMP + 11),
            Err(VerifyError::TooOld { .. })
        ));
        assert_eq!(strict.verify(&h, BODY, TIMESTAMP + 10), Ok(()));
        // Extreme values do not overflow.
        assert!(strict.verify(&h, BODY, i64::MAX).is_err());
        assert!(
            strict
                .verify(&headers(ID, i64::MIN, SIGNATURE), BODY, i64::MAX)
                .is_err()
        );
    }

    #[test]
    fn accepts_any_of_several_signatures_and_skips_unknown_versions() {
        let verifier = Verifier::new(SECRET).unwrap();
        let wrong = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let good = SIGNATURE.strip_prefix("v1,").unwrap();
        let list = format!("{wrong} v1a,{good} v2,{good} garbage v1,not-base64! {SIGNATURE}");
        assert_eq!(
            verifier.verify(&headers(ID, TIMESTAMP, &list), BODY, TIMESTAMP),
            Ok(())
        );
        // The right bytes under an unknown version tag do not count.
        let only_unknown = format!("v1a,{good} v2,{good}");
        assert_eq!(
            verifier.verify(&headers(ID, TIMESTAMP, &only_unknown), BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn reads_headers_case_insensitively_and_joins_repeated_signatures() {
        let verifier = Verifier::new(SECRET).unwrap();
        let ts = TIMESTAMP.to_string();
        let h = [
            ("Webhook-Id", ID),
            ("WEBHOOK-TIMESTAMP", ts.as_str()),
            ("webhook-signature", "v1,AAAA"),
            ("Webhook-Signature", SIGNATURE),
        ];
        assert_eq!(verifier.verify(&h, BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn names_what_is_missing_or_malformed() {
        let verifier = Verifier::new(SECRET).unwrap();
        let full = headers(ID, TIMESTAMP, SIGNATURE);
        for (i, name) in [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE]
            .into_iter()
            .enumerate()
        {
            let mut h = full.clone();
            h.remove(i);
            assert_eq!(
                verifier.verify(&h, BODY, TIMESTAMP),
                Err(VerifyError::MissingHeader(name))
            );
        }
        let mut h = full;
        h[1].1 = "yesterday".into();
        assert_eq!(
            verifier.verify(&h, BODY, TIMESTAMP),
            Err(VerifyError::MalformedTimestamp)
        );
    }

    #[test]
    fn bad_secrets_are_refused_without_being_quoted() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",       // no prefix
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", // not base64
            "whsec_c2hvcnQ=",                         // 5 bytes
            "whsec_",                                 // empty
        ] {
            let err = StandardWebhooks::new(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    pipe_core::Error::Invalid {
                        what: "webhook secret",
                        ..
                    }
                ),
                "{bad}"
            );
            let key_part = bad.trim_start_matches("whsec_");
            if !key_part.is_empty() {
                assert!(!err.to_string().contains(key_part), "{err}");
            }
            assert!(Verifier::new(bad).is_err());
        }
    }

    #[test]
    fn generated_secrets_are_valid_distinct_and_round_trip() {
        let (a, b) = (
            StandardWebhooks::generate_secret(),
            StandardWebhooks::generate_secret(),
        );
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        let signer = StandardWebhooks::new(&a).unwrap();
        let signature = signer.signature(ID, TIMESTAMP, BODY);
        let verifier = Verifier::new(&a).unwrap();
        assert_eq!(
            verifier.verify(&headers(ID, TIMESTAMP, &signature), BODY, TIMESTAMP),
            Ok(())
        );
    }

    #[test]
    fn a_rotating_signer_satisfies_receivers_with_either_secret() {
        let new_secret = StandardWebhooks::generate_secret();
        let signer = StandardWebhooks::new(&new_secret)
            .unwrap()
            .with_previous_secret(SECRET)
            .unwrap();
        let signature = signer.signature(ID, TIMESTAMP, BODY);
        let (current, previous) = signature.split_once(' ').expect("two signatures");
        assert_eq!(previous, SIGNATURE, "the old key signs as before");
        assert_eq!(
            current,
            StandardWebhooks::new(&new_secret)
                .unwrap()
                .signature(ID, TIMESTAMP, BODY)
        );
        for secret in [new_secret.as_str(), SECRET] {
            let verifier = Verifier::new(secret).unwrap();
            assert_eq!(
                verifier.verify(&headers(ID, TIMESTAMP, &signature), BODY, TIMESTAMP),
                Ok(())
            );
        }
        assert!(
            StandardWebhooks::new(SECRET)
                .unwrap()
                .with_previous_secret("whsec_bad")
                .is_err()
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key_part = SECRET.trim_start_matches("whsec_");
        let signer = format!("{:?}", StandardWebhooks::new(SECRET).unwrap());
        let verifier = format!("{:?}", Verifier::new(SECRET).unwrap());
        for text in [signer, verifier] {
            assert!(!text.contains(key_part), "{text}");
            assert!(text.contains("redacted>"), "{text}");
        }
    }
}
