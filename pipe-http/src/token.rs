use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Signs and checks capability tokens: `base64url(HMAC-SHA256(secret, domain ‖ " " ‖
/// field₁ ‖ " " ‖ field₂ …))`, without padding.
///
/// The domain keeps a token made for one use from being accepted for another (a resume
/// token is not a download link). Fields are joined with a space, so they must not
/// contain one: ids, object keys and numbers, which Pipe's validated types guarantee.
/// Verification is constant-time.
#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner").finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer keyed by `secret` (32 random bytes or more; keep it across restarts, or
    /// every token made before is refused).
    pub fn new(secret: Vec<u8>) -> Self {
        Self { secret }
    }

    /// The token for `fields` in `domain`.
    pub fn sign(&self, domain: &str, fields: &[&str]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(domain, fields).finalize().into_bytes())
    }

    /// Whether `token` was made by [`TokenSigner::sign`] for `fields` in `domain`.
    pub fn verify(&self, domain: &str, fields: &[&str], token: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        self.mac(domain, fields).verify_slice(&bytes).is_ok()
    }

    fn mac(&self, domain: &str, fields: &[&str]) -> Hmac<Sha256> {
        debug_assert!(
            fields.iter().all(|f| !f.contains(' ')),
            "fields hold spaces"
        );
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(domain.as_bytes());
        for field in fields {
            mac.update(b" ");
            mac.update(field.as_bytes());
        }
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_domain_fields_and_secret() {
        let signer = TokenSigner::new(b"secret".to_vec());
        let token = signer.sign("files", &["a/a.mp4", "60"]);
        assert!(signer.verify("files", &["a/a.mp4", "60"], &token));
        assert!(!signer.verify("playback", &["a/a.mp4", "60"], &token));
        assert!(!signer.verify("files", &["a/a.mp4", "61"], &token));
        assert!(!signer.verify("files", &["a/a.mp4"], &token));
        assert!(!TokenSigner::new(b"other".to_vec()).verify("files", &["a/a.mp4", "60"], &token));
        assert!(!signer.verify("files", &["a/a.mp4", "60"], "not base64!"));
        assert!(!signer.verify("files", &["a/a.mp4", "60"], ""));
    }

    #[test]
    fn the_wire_form_is_pinned() {
        // HMAC-SHA256("key", "files a 1"), so a refactor cannot invalidate the links and
        // resume tokens already handed out.
        let signer = TokenSigner::new(b"key".to_vec());
        assert_eq!(
            signer.sign("files", &["a", "1"]),
            URL_SAFE_NO_PAD.encode({
                let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
                mac.update(b"files a 1");
                mac.finalize().into_bytes()
            })
        );
    }
}
