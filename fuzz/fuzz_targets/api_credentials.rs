//! API key credentials (pipe-api's `auth`) on arbitrary header bytes: never a panic; what
//! is accepted is a well-formed key that writes out and parses back to itself; two headers
//! give what each gives alone, or `Conflicting` when both hold different keys; and
//! checking a secret against any hash never panics and matches only its own hash.
//!
//! Input: byte 0 says which headers are present (bit 0 `Authorization`, bit 1
//! `X-PIPE-AUTH`), byte 1 is the length of the `Authorization` value, and the rest is the
//! two values one after the other. Run: `cargo fuzz run api_credentials` (from the
//! repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipe_api::auth::{
    CredentialError, Presented, hash_secret, parse_credentials, parse_key, secret_matches,
};

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, split], rest)) = data.split_first_chunk::<2>() else { return };
    let (authorization, pipe_auth) = rest.split_at(usize::from(split).min(rest.len()));
    let authorization = (flags & 1 != 0).then_some(authorization);
    let pipe_auth = (flags & 2 != 0).then_some(pipe_auth);

    let both = parse_credentials(authorization, pipe_auth);
    assert_eq!(
        parse_credentials(authorization, pipe_auth),
        both,
        "deterministic"
    );
    if let Ok(presented) = &both {
        well_formed(presented);
    }

    // Each header alone, and the two together as each alone says.
    let alone_a = authorization.map(|a| parse_credentials(Some(a), None));
    let alone_p = pipe_auth.map(|p| parse_credentials(None, Some(p)));
    let expected = match (alone_a, alone_p) {
        (None, None) => Err(CredentialError::Missing),
        (Some(Err(e)), _) | (_, Some(Err(e))) => {
            assert_eq!(e, CredentialError::Malformed);
            Err(e)
        }
        (Some(Ok(a)), Some(Ok(p))) if a != p => Err(CredentialError::Conflicting),
        (Some(Ok(key)), _) | (None, Some(Ok(key))) => Ok(key),
    };
    assert_eq!(both, expected);

    // The key parser on its own, over all the bytes as text.
    let text = String::from_utf8_lossy(rest);
    if let Ok(presented) = parse_key(&text) {
        well_formed(&presented);
        assert_eq!(
            parse_credentials(None, Some(text.as_bytes())),
            Ok(presented)
        );
    }

    // Secrets against arbitrary hashes: no panic, and only a secret's own hash matches.
    let (a, b) = rest.split_at(rest.len() / 2);
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    secret_matches(&a, &b);
    secret_matches(&b, &a);
    assert!(secret_matches(&a, &hash_secret(&a)));
    assert_eq!(secret_matches(&a, &hash_secret(&b)), a == b);
});

/// An accepted key: a 16-character id of a-z0-9, a 43-character base64url secret, and
/// `pk_<id>_<secret>` parses back to the same key, whose secret matches its own hash.
fn well_formed(presented: &Presented<'_>) {
    let id = presented.id.as_str();
    assert_eq!(id.len(), 16, "{id:?}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
        "{id:?}"
    );
    let secret = presented.secret;
    assert_eq!(secret.len(), 43);
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );

    let key = format!("pk_{id}_{secret}");
    assert_eq!(parse_key(&key).as_ref(), Ok(presented));
    assert!(secret_matches(secret, &hash_secret(secret)));
}
