//! API keys: minting, the wire form, and the extractor that turns a request's credentials
//! into a [`Caller`] or a 401.
//!
//! A key reads `pk_<id>_<secret>`: `pk_` says what it is (and lets secret scanners find
//! it), the 16-character id is the public handle by which it is stored and logged, and
//! the 43-character secret is 256 random bits in base64url. The store keeps only
//! `sha256:<hex>` of the secret. A plain SHA-256 is the right hash here: a password hash
//! exists to slow the guessing of low-entropy secrets, and 256 random bits cannot be
//! guessed however fast the hash is.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pipe_core::{ApiKey, ApiKeyId, EnvironmentId, Role, Timestamp};
use pipe_http::{Problem, ProblemType};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Api;

/// The prefix of every key.
pub const KEY_PREFIX: &str = "pk_";

/// The header Pipe's REST API reads the key from; accepted beside `Authorization: Bearer`.
pub const PIPE_AUTH_HEADER: &str = "x-pipe-auth";

const SECRET_LEN: usize = 43;

/// A key just made: the record to store and the key to show once.
pub struct MintedKey {
    /// What the store keeps.
    pub record: ApiKey,
    /// The whole key, `pk_<id>_<secret>`: show it once, never store or log it.
    pub key: String,
}

impl fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Makes a new key with `role`, limited to `environments` (empty for all).
pub fn mint_key(
    label: impl Into<String>,
    role: Role,
    environments: Vec<EnvironmentId>,
) -> MintedKey {
    let id = ApiKeyId::generate();
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the operating system's random source failed");
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let record = ApiKey::new(
        id.clone(),
        label,
        role,
        environments,
        hash_secret(&secret),
        Timestamp::now(),
    );
    MintedKey {
        key: format!("{KEY_PREFIX}{id}_{secret}"),
        record,
    }
}

/// `sha256:<hex>` of a key's secret part, as the store keeps it.
pub fn hash_secret(secret: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(secret.as_bytes())))
}

/// A key's parts as presented: the id to look up and the secret to check.
#[derive(PartialEq, Eq)]
pub struct Presented<'a> {
    /// The key's id.
    pub id: ApiKeyId,
    /// The key's secret part.
    pub secret: &'a str,
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presented")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why credentials were refused, before any lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Neither `Authorization` nor `X-PIPE-AUTH` is present.
    #[error("send the API key as `Authorization: Bearer <key>` or `X-PIPE-AUTH: <key>`")]
    Missing,
    /// A header is present but does not hold a key of the form `pk_<id>_<secret>`.
    #[error("the API key is malformed: it reads pk_<16 characters>_<43 characters>")]
    Malformed,
    /// Both headers hold keys, and they differ.
    #[error("`Authorization` and `X-PIPE-AUTH` hold different keys")]
    Conflicting,
}

/// Parses a key `pk_<id>_<secret>`. Never panics, whatever the bytes.
pub fn parse_key(key: &str) -> Result<Presented<'_>, CredentialError> {
    let rest = key
        .strip_prefix(KEY_PREFIX)
        .ok_or(CredentialError::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(CredentialError::Malformed)?;
    let id: ApiKeyId = id.parse().map_err(|_| CredentialError::Malformed)?;
    if secret.len() != SECRET_LEN
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(CredentialError::Malformed);
    }
    Ok(Presented { id, secret })
}

/// Finds the key in `Authorization: Bearer <key>` or `X-PIPE-AUTH: <key>` (header values
/// as bytes). Never panics, whatever the bytes.
pub fn parse_credentials<'a>(
    authorization: Option<&'a [u8]>,
    pipe_auth: Option<&'a [u8]>,
) -> Result<Presented<'a>, CredentialError> {
    let bearer = authorization
        .map(|value| {
            let value = std::str::from_utf8(value).map_err(|_| CredentialError::Malformed)?;
            let (scheme, token) = value
                .trim()
                .split_once(' ')
                .ok_or(CredentialError::Malformed)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(CredentialError::Malformed);
            }
            parse_key(token.trim_start())
        })
        .transpose()?;
    let pipe = pipe_auth
        .map(|value| {
            let value = std::str::from_utf8(value).map_err(|_| CredentialError::Malformed)?;
            parse_key(value.trim())
        })
        .transpose()?;
    match (bearer, pipe) {
        (Some(a), Some(b)) if a != b => Err(CredentialError::Conflicting),
        (Some(key), _) | (None, Some(key)) => Ok(key),
        (None, None) => Err(CredentialError::Missing),
    }
}

/// Whether `secret` matches the stored `hash`, in constant time.
pub fn secret_matches(secret: &str, hash: &str) -> bool {
    let presented = hash_secret(secret);
    presented.len() == hash.len() && bool::from(presented.as_bytes().ct_eq(hash.as_bytes()))
}

/// The key a request was made with, checked: it exists, is not revoked, and its secret
/// matches. Extract it in a handler to require a key; call [`Caller::require`] for a role.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key.
    pub key: ApiKey,
}

impl Caller {
    /// `Forbidden` unless the key's role includes `role`.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.key.role.includes(role) {
            Ok(())
        } else {
            Err(Problem::new(
                ProblemType::Forbidden,
                format!(
                    "this needs a key with the {role} role; this key is a {}",
                    self.key.role
                ),
            ))
        }
    }

    /// `Forbidden` unless the key is an admin key for every environment (keys and
    /// environments are managed only with those).
    pub fn require_global_admin(&self) -> Result<(), Problem> {
        self.require(Role::Admin)?;
        if self.key.environments.is_empty() {
            Ok(())
        } else {
            Err(Problem::new(
                ProblemType::Forbidden,
                "this needs an admin key that is not limited to some environments",
            ))
        }
    }

    /// Whether the key may see `environment`.
    pub fn sees(&self, environment: &EnvironmentId) -> bool {
        self.key.sees(environment)
    }
}

/// The credentials the access log names: set on the response by the extractor.
#[derive(Clone, Debug)]
pub(crate) struct LoggedKey {
    pub(crate) id: ApiKeyId,
    pub(crate) role: Role,
}

impl FromRequestParts<Api> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Problem> {
        let unauthenticated = |detail: String| Problem::new(ProblemType::Unauthenticated, detail);
        let presented = parse_credentials(
            parts
                .headers
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes()),
            parts.headers.get(PIPE_AUTH_HEADER).map(|v| v.as_bytes()),
        )
        .map_err(|e| unauthenticated(e.to_string()))?;
        let key = match api.inner.keys.api_key(&presented.id).await {
            Ok(key) => key,
            Err(e) if e.is_not_found() => {
                return Err(unauthenticated("the API key is not valid".into()));
            }
            Err(e) => {
                tracing::error!(error = %e, "could not read API keys");
                return Err(e.into());
            }
        };
        if !secret_matches(presented.secret, &key.secret_hash) {
            return Err(unauthenticated("the API key is not valid".into()));
        }
        if key.revoked.is_some() {
            return Err(unauthenticated("the API key was revoked".into()));
        }
        if let Some(slot) = parts.extensions.get::<crate::log::KeySlot>() {
            let _ = slot.0.set(LoggedKey {
                id: key.id.clone(),
                role: key.role,
            });
        }
        api.inner.limiter.check(&key.id)?;
        Ok(Caller { key })
    }
}

/// How many requests a key may make: `per_second` on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    /// The sustained rate.
    pub per_second: f64,
    /// The most requests at once, after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` on average, `burst` at once. A rate that is not a positive number
    /// becomes the smallest positive one; a burst of 0 becomes 1.
    pub fn new(per_second: f64, burst: u32) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            f64::MIN_POSITIVE
        };
        Self {
            per_second,
            burst: burst.max(1),
        }
    }
}

impl Default for RateLimit {
    /// 20 requests a second, 100 at once.
    fn default() -> Self {
        Self::new(20.0, 100)
    }
}

/// One token bucket per key, in memory (a limit per node). Written here rather than
/// taken from a crate: it is twenty lines, and the general rate-limit crates bring a
/// clock abstraction and dependencies we do not need.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<ApiKeyId, (f64, Instant)>>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`, or says how long to wait for one.
    pub(crate) fn check(&self, key: &ApiKeyId) -> Result<(), Problem> {
        let now = Instant::now();
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Keys that are full again need no entry; forget them rather than grow.
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_second < f64::from(burst)
            });
        }
        let (tokens, at) = buckets
            .entry(key.clone())
            .or_insert((f64::from(burst), now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(f64::from(burst));
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::try_from_secs_f64((1.0 - *tokens) / per_second)
            .unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
        Err(Problem::new(
            ProblemType::RateLimited,
            format!("this key may make {per_second} requests a second; wait and try again"),
        )
        .with_retry_after((wait.as_secs_f64().ceil() as u64).max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_parse_and_match_only_their_hash() {
        let minted = mint_key("test", Role::Viewer, vec![]);
        let presented = parse_key(&minted.key).unwrap();
        assert_eq!(presented.id, minted.record.id);
        assert!(secret_matches(presented.secret, &minted.record.secret_hash));
        let other = mint_key("other", Role::Viewer, vec![]);
        assert!(!secret_matches(presented.secret, &other.record.secret_hash));
        assert!(!minted.record.secret_hash.contains(presented.secret));
        assert!(!format!("{minted:?}").contains(presented.secret));
    }

    #[test]
    fn credentials_come_from_either_header() {
        let key = mint_key("k", Role::Admin, vec![]).key;
        let bearer = format!("Bearer {key}");
        let lower = format!("bearer {key}");
        assert!(parse_credentials(Some(bearer.as_bytes()), None).is_ok());
        assert!(parse_credentials(Some(lower.as_bytes()), None).is_ok());
        assert!(parse_credentials(None, Some(key.as_bytes())).is_ok());
        assert!(parse_credentials(Some(bearer.as_bytes()), Some(key.as_bytes())).is_ok());
        let other = mint_key("o", Role::Admin, vec![]).key;
        assert_eq!(
            parse_credentials(Some(bearer.as_bytes()), Some(other.as_bytes())),
            Err(CredentialError::Conflicting)
        );
        assert_eq!(parse_credentials(None, None), Err(CredentialError::Missing));
        for bad in [
            "Basic abc",
            "Bearer",
            "Bearer pk_",
            "Bearer pk_0123456789abcdef_short",
            "Bearer sk_0123456789abcdef_0000000000000000000000000000000000000000000",
        ] {
            assert_eq!(
                parse_credentials(Some(bad.as_bytes()), None),
                Err(CredentialError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            parse_credentials(Some(&[0xff, 0x00]), None),
            Err(CredentialError::Malformed)
        );
    }

    #[test]
    fn the_limiter_allows_a_burst_then_asks_to_wait() {
        let limiter = Limiter::new(RateLimit::new(1.0, 3));
        let key = ApiKeyId::generate();
        for _ in 0..3 {
            limiter.check(&key).unwrap();
        }
        let refused = limiter.check(&key).unwrap_err();
        assert_eq!(refused.status.as_u16(), 429);
        assert_eq!(refused.retry_after, Some(1));
        limiter.check(&ApiKeyId::generate()).unwrap();
    }
}
