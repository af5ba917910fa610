//! The receivers' side of pipe-webhook (`Verifier`, `PipeSignature::verify_request`) on
//! arbitrary headers and bodies: never a panic; a request is accepted only when one of its
//! `v1` signatures is the genuine one for its id, timestamp and body and the timestamp is
//! within the tolerance; a genuinely signed request is accepted, also among other
//! signatures (key rotation) and with header names in any case, and no longer once one
//! byte of its body changes; Pipe's form-encoded requests give back exactly the signed
//! JSON.
//!
//! Input: 8 bytes of clock skew, then `id`, `webhook-timestamp`, `webhook-signature` and
//! a content type, separated by `\n`, then the body. Run: `cargo fuzz run
//! webhook_verifier` (from the repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipe_webhook::{PipeSignature, StandardWebhooks, Verifier, VerifyError};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
const NOW: i64 = 1_767_225_600;
const TOLERANCE: i64 = 300;
const URL: &str = "https://app.example/pipe/webhook";

fuzz_target!(|data: &[u8]| {
    let Some((skew, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let skew = i64::from_le_bytes(*skew);
    let mut fields = rest.splitn(5, |&b| b == b'\n');
    let mut text = || String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let (id, timestamp, signatures, content_type) = (text(), text(), text(), text());
    let body = fields.next().unwrap_or_default();

    let signer = StandardWebhooks::new(SECRET).unwrap();
    let verifier = Verifier::new(SECRET).unwrap();

    // Arbitrary headers: accepted only with a genuine signature on time.
    let headers = [
        ("webhook-id", id.as_str()),
        ("webhook-timestamp", timestamp.as_str()),
        ("webhook-signature", signatures.as_str()),
    ];
    let verdict = verifier.verify(&headers, body, NOW);
    assert_eq!(verifier.verify(&headers, body, NOW), verdict, "deterministic");
    let shouted = headers.map(|(name, value)| (name.to_ascii_uppercase(), value));
    assert_eq!(verifier.verify(&shouted, body, NOW), verdict, "header case");
    if verdict.is_ok() {
        let at: i64 = timestamp.trim().parse().expect("accepted with a number");
        assert!((NOW - at).abs() <= TOLERANCE, "accepted at {at}");
        let genuine = signer.signature(&id, at, body);
        assert!(
            signatures.split_ascii_whitespace().any(|s| s == genuine),
            "accepted {signatures:?} without {genuine:?}"
        );
    }

    // A genuine signature, made `skew` seconds from now (bounded to ±2 tolerances).
    let at = NOW + skew % (2 * TOLERANCE);
    let genuine = signer.signature(&id, at, body);
    let on_time = (NOW - at).abs() <= TOLERANCE;
    let timestamp = at.to_string();
    let verify = |signatures: &str, body: &[u8]| {
        verifier.verify(
            &[
                ("Webhook-Id", id.as_str()),
                ("Webhook-Timestamp", timestamp.as_str()),
                ("Webhook-Signature", signatures),
            ],
            body,
            NOW,
        )
    };
    let ok = verify(&genuine, body);
    if on_time {
        assert_eq!(ok, Ok(()), "{id:?} {at}");
        // Among other signatures, before or after: as a receiver sees during a rotation.
        let other = StandardWebhooks::new(OTHER_SECRET)
            .unwrap()
            .signature(&id, at, body);
        let junk = signatures.replace(char::is_whitespace, "");
        assert_eq!(verify(&format!("{other} {genuine}"), body), Ok(()));
        assert_eq!(verify(&format!("{genuine} v1a,{junk}"), body), Ok(()));
        assert_eq!(
            verify(&other, body),
            Err(VerifyError::NoMatchingSignature),
            "another secret's signature"
        );
        // One byte of the body changed, or one more byte: refused.
        let mut tampered = body.to_vec();
        match tampered.first_mut() {
            Some(b) => *b ^= 1 << (skew.unsigned_abs() % 8),
            None => tampered.push(0),
        }
        assert_eq!(
            verify(&genuine, &tampered),
            Err(VerifyError::NoMatchingSignature)
        );
        tampered = body.to_vec();
        tampered.push(b' ');
        assert_eq!(
            verify(&genuine, &tampered),
            Err(VerifyError::NoMatchingSignature)
        );
    } else {
        assert!(
            matches!(ok, Err(VerifyError::TooOld { .. } | VerifyError::TooNew { .. })),
            "{at}: {ok:?}"
        );
    }

    // Pipe's signature over URL + JSON, on an arbitrary request.
    let pipe = PipeSignature::new("pipe-account-webhook-key").unwrap();
    if let Ok(json) = pipe.verify_request(URL, &content_type, body, &signatures) {
        assert_eq!(pipe.verify(URL, &json, &signatures), Ok(()));
        assert_eq!(pipe.signature(URL, &json), signatures.trim());
    }
    // A genuine form-encoded request gives back the JSON it signed; as JSON, the body.
    let signature = pipe.signature(URL, body);
    let form = format!(
        "payload={}",
        form_urlencoded::byte_serialize(body).collect::<String>()
    );
    let from_form = pipe.verify_request(
        URL,
        "application/x-www-form-urlencoded; charset=UTF-8",
        form.as_bytes(),
        &signature,
    );
    if std::str::from_utf8(body).is_ok() {
        assert_eq!(from_form.as_deref(), Ok(body));
    }
    assert_eq!(
        pipe.verify_request(URL, "application/json", body, &signature)
            .as_deref(),
        Ok(body)
    );
    assert_eq!(
        pipe.verify_request(&format!("{URL}/"), "application/json", body, &signature),
        Err(VerifyError::NoMatchingSignature),
        "the URL is signed"
    );
});
