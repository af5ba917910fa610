//! Pipe's own signature, `X-Pipe-Signature`, so receivers written for the hosted Pipe
//! keep working unchanged.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use pipe_core::{OutgoingWebhook, Signer};
use sha1::Sha1;

use crate::VerifyError;

type HmacSha1 = Hmac<Sha1>;

/// The header that carries Pipe's signature.
pub const X_PIPE_SIGNATURE: &str = "X-Pipe-Signature";

/// Pipe's signature scheme: `X-Pipe-Signature` = base64 of HMAC-SHA1, keyed with the
/// account's webhook key, over the endpoint URL *exactly as configured* followed by the
/// body.
///
/// The scheme signs neither an id nor a time, so it cannot stop replays; pair it with
/// [`StandardWebhooks`](crate::StandardWebhooks) on the same endpoint and let new
/// receivers use that. Its `Debug` output never shows the key.
///
/// ```
/// use pipe_webhook::PipeSignature;
///
/// let pipe = PipeSignature::new("9f8a1c2e4b7d6f3a")?;
/// let url = "https://example.com/hooks/pipe";
/// let body = br#"{"version":"1.0","event":"video_recorded","data":{"id":"r1"}}"#;
/// let signature = pipe.signature(url, body);
/// assert_eq!(pipe.verify(url, body, &signature), Ok(()));
/// # Ok::<(), pipe_core::Error>(())
/// ```
#[derive(Clone)]
pub struct PipeSignature {
    key: Vec<u8>,
}

impl PipeSignature {
    /// A signer (and verifier) for Pipe's webhook key, used as its UTF-8 bytes.
    ///
    /// # Errors
    ///
    /// [`pipe_core::Error::Invalid`] if the key is empty.
    pub fn new(key: &str) -> Result<Self, pipe_core::Error> {
        if key.is_empty() {
            return Err(pipe_core::Error::invalid("webhook key", "it is empty"));
        }
        Ok(Self {
            key: key.as_bytes().to_vec(),
        })
    }

    fn mac(&self, url: &str, body: &[u8]) -> HmacSha1 {
        let mut mac = HmacSha1::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(url.as_bytes());
        mac.update(body);
        mac
    }

    /// The `X-Pipe-Signature` value for `body` sent to `url`.
    pub fn signature(&self, url: &str, body: &[u8]) -> String {
        BASE64.encode(self.mac(url, body).finalize().into_bytes())
    }

    /// Checks an `X-Pipe-Signature` value in constant time. `url` is the endpoint URL
    /// as the sender has it configured, byte for byte.
    ///
    /// # Errors
    ///
    /// [`VerifyError::NoMatchingSignature`] if it does not match (or is not base64).
    pub fn verify(&self, url: &str, body: &[u8], signature: &str) -> Result<(), VerifyError> {
        let tag = BASE64
            .decode(signature.trim())
            .map_err(|_| VerifyError::NoMatchingSignature)?;
        self.mac(url, body)
            .verify_slice(&tag)
            .map_err(|_| VerifyError::NoMatchingSignature)
    }
}

impl PipeSignature {
    /// Verifies a whole request as Pipe sends it and returns its JSON document: for
    /// `application/x-www-form-urlencoded`, the value of the one `payload` field (which is
    /// what the signature covers); otherwise the body itself. `content_type` is the
    /// request's `content-type` header, parameters allowed; `signature` its
    /// `X-Pipe-Signature`.
    ///
    /// ```
    /// use pipe_webhook::PipeSignature;
    ///
    /// let pipe = PipeSignature::new("9f8a1c2e4b7d6f3a")?;
    /// let url = "https://example.com/hooks/pipe";
    /// let json = br#"{"version":"1.0","event":"video_recorded","data":{"id":1}}"#;
    /// let body = format!("payload={}", form_urlencoded::byte_serialize(json).collect::<String>());
    /// let signature = pipe.signature(url, json);
    /// let got = pipe.verify_request(url, "application/x-www-form-urlencoded", body.as_bytes(), &signature);
    /// assert_eq!(got.as_deref(), Ok(&json[..]));
    /// # Ok::<(), pipe_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`VerifyError::NoPayloadField`] for a form without exactly one `payload`,
    /// [`VerifyError::NoMatchingSignature`] if the signature does not match.
    pub fn verify_request(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<Vec<u8>, VerifyError> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let json = if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            let mut payloads = form_urlencoded::parse(body).filter(|(name, _)| name == "payload");
            match (payloads.next(), payloads.next()) {
                (Some((_, value)), None) => value.into_owned().into_bytes(),
                _ => return Err(VerifyError::NoPayloadField),
            }
        } else {
            body.to_vec()
        };
        self.verify(url, &json, signature)?;
        Ok(json)
    }
}

impl Signer for PipeSignature {
    fn sign(&self, request: &OutgoingWebhook<'_>) -> Vec<(String, String)> {
        vec![(
            X_PIPE_SIGNATURE.to_owned(),
            self.signature(request.url, request.body),
        )]
    }
}

impl fmt::Debug for PipeSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeSignature")
            .field("key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently of this crate:
    //   printf '%s' "$URL$BODY" | openssl dgst -sha1 -hmac "$KEY" -binary | base64
    // (the same as Pipe's documented PHP: base64_encode(hash_hmac('sha1', $url . $json, $key, true))).
    const KEY: &str = "9f8a1c2e4b7d6f3a";
    const URL: &str = "https://example.com/hooks/pipe";
    const BODY: &[u8] = br#"{"version":"1.0","event":"video_recorded","data":{"id":"r1"}}"#;
    const SIGNATURE: &str = "Axj/IboZehJsQKzBBfkBVHFD+0o=";

    #[test]
    fn signs_the_pinned_vector() {
        let pipe = PipeSignature::new(KEY).unwrap();
        assert_eq!(pipe.signature(URL, BODY), SIGNATURE);
        let request = OutgoingWebhook {
            id: "msg_1",
            timestamp: 1,
            url: URL,
            body: BODY,
        };
        assert_eq!(
            pipe.sign(&request),
            vec![(X_PIPE_SIGNATURE.to_owned(), SIGNATURE.to_owned())]
        );
    }

    #[test]
    fn verifies_and_refuses_changes() {
        let pipe = PipeSignature::new(KEY).unwrap();
        assert_eq!(pipe.verify(URL, BODY, SIGNATURE), Ok(()));
        let refused = Err(VerifyError::NoMatchingSignature);
        assert_eq!(
            pipe.verify(URL, br#"{"version":"1.0"}"#, SIGNATURE),
            refused
        );
        assert_eq!(
            pipe.verify("https://example.com/hooks/pipe/", BODY, SIGNATURE),
            refused
        );
        assert_eq!(
            PipeSignature::new("another key")
                .unwrap()
                .verify(URL, BODY, SIGNATURE),
            refused
        );
        assert_eq!(pipe.verify(URL, BODY, "not base64!"), refused);
        assert_eq!(pipe.verify(URL, BODY, ""), refused);
    }

    #[test]
    fn form_requests_verify_over_the_payload_value() {
        let pipe = PipeSignature::new(KEY).unwrap();
        let form = format!(
            "payload={}",
            form_urlencoded::byte_serialize(BODY).collect::<String>()
        );
        let form_type = "application/x-www-form-urlencoded; charset=UTF-8";
        assert_eq!(
            pipe.verify_request(URL, form_type, form.as_bytes(), SIGNATURE),
            Ok(BODY.to_vec())
        );
        assert_eq!(
            pipe.verify_request(URL, "application/json", BODY, SIGNATURE),
            Ok(BODY.to_vec())
        );
        // The signature covers the payload value, not the encoded body.
        let over_body = pipe.signature(URL, form.as_bytes());
        assert_eq!(
            pipe.verify_request(URL, form_type, form.as_bytes(), &over_body),
            Err(VerifyError::NoMatchingSignature)
        );
        for bad in [
            "other=1".to_owned(),
            format!("{form}&{form}"),
            String::new(),
        ] {
            assert_eq!(
                pipe.verify_request(URL, form_type, bad.as_bytes(), SIGNATURE),
                Err(VerifyError::NoPayloadField),
                "{bad}"
            );
        }
    }

    #[test]
    fn empty_key_is_refused_and_debug_hides_the_key() {
        assert!(PipeSignature::new("").is_err());
        let text = format!("{:?}", PipeSignature::new(KEY).unwrap());
        assert!(!text.contains(KEY), "{text}");
    }
}
