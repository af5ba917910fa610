//! The artifacts behind the links in webhooks: unguessable, signed, expiring URLs that
//! serve the server's own storage with HTTP range requests, so a browser can seek.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use hmac::{Hmac, Mac};
use pipe_core::{
    GetOptions, GetResult, ObjectKey, ObjectMeta, PutBody, PutOptions, PutReceipt, Result,
    SinkKind, StorageSink, Timestamp, UrlOptions,
};
use serde::Deserialize;
use sha2::Sha256;

/// Signs and checks download links: `<base>/v1/files/<key>?expires=<unix s>&signature=<mac>`
/// where the mac is base64url(HMAC-SHA256(secret, "files " ‖ key ‖ " " ‖ expires)).
#[derive(Clone)]
pub struct LinkSigner {
    secret: Vec<u8>,
    base: String,
}

impl fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkSigner")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Why a link was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkError {
    /// The signature does not match the key and expiry.
    BadSignature,
    /// The link is past its expiry.
    Expired,
}

impl LinkSigner {
    /// Signs links under `base` (the server's public URL) with `secret`.
    pub fn new(secret: Vec<u8>, base: impl Into<String>) -> Self {
        Self {
            secret,
            base: base.into(),
        }
    }

    /// A link to `key` valid until `now + ttl`.
    pub fn url(&self, key: &ObjectKey, ttl: Duration, now: Timestamp) -> String {
        let expires = now.plus(ttl).as_secs();
        format!(
            "{}/v1/files/{key}?expires={expires}&signature={}",
            self.base,
            self.signature(key.as_str(), expires)
        )
    }

    /// Checks a link's key, expiry and signature at `now`.
    pub fn verify(
        &self,
        key: &str,
        expires: i64,
        signature: &str,
        now: Timestamp,
    ) -> Result<(), LinkError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::BadSignature)?;
        self.mac(key, expires)
            .verify_slice(&bytes)
            .map_err(|_| LinkError::BadSignature)?;
        if now.as_secs() > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    fn signature(&self, key: &str, expires: i64) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.mac(key, expires).finalize().into_bytes())
    }

    fn mac(&self, key: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(b"files ");
        mac.update(key.as_bytes());
        mac.update(format!(" {expires}").as_bytes());
        mac
    }
}

/// A layer over the server's own storage whose `url` is a signed link to this server.
#[derive(Debug)]
pub struct ServedSink {
    inner: Arc<dyn StorageSink>,
    links: LinkSigner,
}

impl ServedSink {
    /// Serves `inner` through links signed by `links`.
    pub fn new(inner: Arc<dyn StorageSink>, links: LinkSigner) -> Self {
        Self { inner, links }
    }
}

#[async_trait]
impl StorageSink for ServedSink {
    fn kind(&self) -> SinkKind {
        self.inner.kind()
    }

    async fn put(&self, key: &ObjectKey, body: PutBody, options: PutOptions) -> Result<PutReceipt> {
        self.inner.put(key, body, options).await
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        self.inner.get(key, options).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.inner.head(key).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.inner.delete(key).await
    }

    async fn url(&self, key: &ObjectKey, options: UrlOptions) -> Result<Option<String>> {
        Ok(Some(self.links.url(
            key,
            options.expires_in,
            Timestamp::now(),
        )))
    }
}

#[derive(Clone, Debug)]
struct Files {
    sink: Arc<dyn StorageSink>,
    links: LinkSigner,
}

/// `GET /v1/files/{*key}`: the objects of `sink`, behind links signed by `links`.
pub fn router<S>(sink: Arc<dyn StorageSink>, links: LinkSigner) -> Router<S> {
    Router::new()
        .route("/v1/files/{*key}", get(download))
        .with_state(Files { sink, links })
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    expires: Option<i64>,
    signature: Option<String>,
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{detail}\n"),
    )
        .into_response()
}

async fn download(
    State(files): State<Files>,
    Path(key): Path<String>,
    Query(query): Query<LinkQuery>,
    headers: HeaderMap,
) -> Response {
    let (Some(expires), Some(signature)) = (query.expires, query.signature.as_deref()) else {
        return problem(
            StatusCode::FORBIDDEN,
            "this link needs its expires and signature parameters",
        );
    };
    match files
        .links
        .verify(&key, expires, signature, Timestamp::now())
    {
        Ok(()) => {}
        Err(LinkError::BadSignature) => {
            return problem(StatusCode::FORBIDDEN, "this link's signature is not valid");
        }
        Err(LinkError::Expired) => return problem(StatusCode::GONE, "this link has expired"),
    }
    let Ok(key) = ObjectKey::new(key) else {
        return problem(StatusCode::NOT_FOUND, "no such file");
    };
    let meta = match files.sink.head(&key).await {
        Ok(meta) => meta,
        Err(e) if e.is_not_found() => return problem(StatusCode::NOT_FOUND, "no such file"),
        Err(e) => {
            tracing::error!(%key, error = %e, "could not read from the server's storage");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable, try again",
            );
        }
    };
    let range = match headers
        .get(header::RANGE)
        .map(|v| parse_range(v.as_bytes(), meta.size))
    {
        None => None,
        Some(Ok(range)) => range,
        Some(Err(())) => {
            let mut response = problem(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "the range is outside the file",
            );
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{}", meta.size)),
            );
            return response;
        }
    };
    let options = match &range {
        Some(r) => GetOptions::default().with_range(r.clone()),
        None => GetOptions::default(),
    };
    let got = match files.sink.get(&key, options).await {
        Ok(got) => got,
        Err(e) => {
            tracing::error!(%key, error = %e, "could not read from the server's storage");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable, try again",
            );
        }
    };
    let content_type = meta
        .content_type
        .clone()
        .unwrap_or_else(|| content_type_of(key.as_str()).to_owned());
    let mut response = Response::new(Body::from_stream(got.stream));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(&content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    h.insert(
        header::CONTENT_LENGTH,
        header_value(&(got.range.end - got.range.start).to_string()),
    );
    if range.is_some() {
        let r = &got.range;
        h.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size)),
        );
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    response
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

fn content_type_of(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("mp4") => "video/mp4",
        Some("jpg") => "image/jpeg",
        Some("webm") => "video/webm",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

/// One `bytes=` range of RFC 9110 against a file of `size` bytes: `Ok(None)` to serve the
/// whole file (several ranges, or a header we do not understand, which the RFC lets a
/// server ignore), `Err(())` for 416.
fn parse_range(header: &[u8], size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = std::str::from_utf8(header)
        .ok()
        .and_then(|h| h.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let Ok(suffix) = last.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 {
            return Err(());
        }
        size.saturating_sub(suffix)..size
    } else {
        let Ok(start) = first.parse::<u64>() else {
            return Ok(None);
        };
        let end = if last.is_empty() {
            size
        } else {
            let Ok(last) = last.parse::<u64>() else {
                return Ok(None);
            };
            if last < start {
                return Ok(None);
            }
            last.saturating_add(1).min(size)
        };
        start..end
    };
    if range.start >= size {
        Err(())
    } else {
        Ok(Some(range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(b"bytes=0-99", 1000), Ok(Some(0..100)));
        assert_eq!(parse_range(b"bytes=900-", 1000), Ok(Some(900..1000)));
        assert_eq!(parse_range(b"bytes=-100", 1000), Ok(Some(900..1000)));
        assert_eq!(parse_range(b"bytes=-5000", 1000), Ok(Some(0..1000)));
        assert_eq!(parse_range(b"bytes=990-2000", 1000), Ok(Some(990..1000)));
        assert_eq!(parse_range(b"bytes=1000-", 1000), Err(()));
        assert_eq!(parse_range(b"bytes=-0", 1000), Err(()));
        assert_eq!(parse_range(b"bytes=0-1,5-6", 1000), Ok(None));
        assert_eq!(parse_range(b"items=0-1", 1000), Ok(None));
        assert_eq!(parse_range(b"bytes=5-1", 1000), Ok(None));
    }

    #[test]
    fn links_are_signed_and_expire() {
        let signer = LinkSigner::new(b"secret".to_vec(), "http://h");
        let key = ObjectKey::new("a/a.mp4").unwrap();
        let now = Timestamp::from_millis(1_000_000);
        let url = signer.url(&key, Duration::from_secs(60), now);
        let query = url.split_once('?').unwrap().1;
        let expires: i64 = query
            .split('&')
            .next()
            .unwrap()
            .strip_prefix("expires=")
            .unwrap()
            .parse()
            .unwrap();
        let sig = query.split("signature=").nth(1).unwrap();
        assert_eq!(signer.verify("a/a.mp4", expires, sig, now), Ok(()));
        assert_eq!(
            signer.verify("a/a.jpg", expires, sig, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            signer.verify("a/a.mp4", expires + 1, sig, now),
            Err(LinkError::BadSignature)
        );
        assert_eq!(
            signer.verify("a/a.mp4", expires, sig, now.plus(Duration::from_secs(61))),
            Err(LinkError::Expired)
        );
        let other = LinkSigner::new(b"other".to_vec(), "http://h");
        assert_eq!(
            other.verify("a/a.mp4", expires, sig, now),
            Err(LinkError::BadSignature)
        );
    }
}
