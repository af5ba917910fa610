//! The artifacts behind the links in webhooks and API answers: unguessable, signed,
//! expiring URLs that serve a sink with HTTP range requests, so a browser can seek.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pipe_core::{
    ArtifactKind, AuditEntry, AuditLog, GetOptions, GetResult, ObjectKey, ObjectMeta, PutBody,
    PutOptions, PutReceipt, Result, SinkKind, StorageSink, Timestamp, UrlOptions,
};
use pipe_http::{ByteRange, Problem, ProblemType, TokenSigner};
use serde::Deserialize;

/// The domain of download-link signatures (see [`TokenSigner`]).
const LINK_DOMAIN: &str = "files";

/// Signs and checks download links: `<base>/v1/files/<key>?expires=<unix s>&signature=<mac>`
/// where the mac is the [`TokenSigner`] token of `key` and `expires` in the domain `files`.
#[derive(Clone, Debug)]
pub struct LinkSigner {
    tokens: TokenSigner,
    base: String,
}

/// Why a link was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The signature does not match the key and expiry.
    #[error("the link's signature is not valid")]
    BadSignature,
    /// The link is past its expiry.
    #[error("the link has expired")]
    Expired,
}

impl From<LinkError> for Problem {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::BadSignature => Problem::new(ProblemType::BadSignature, e.to_string()),
            LinkError::Expired => Problem::new(ProblemType::Expired, e.to_string()),
        }
    }
}

impl LinkSigner {
    /// Signs links under `base` (the server's public URL) with `tokens`.
    pub fn new(tokens: TokenSigner, base: impl Into<String>) -> Self {
        Self {
            tokens,
            base: base.into().trim_end_matches('/').to_owned(),
        }
    }

    /// A link to `key` valid until `now + ttl`.
    pub fn url(&self, key: &ObjectKey, ttl: Duration, now: Timestamp) -> String {
        let expires = now.plus(ttl).as_secs().to_string();
        format!(
            "{}/v1/files/{key}?expires={expires}&signature={}",
            self.base,
            self.tokens.sign(LINK_DOMAIN, &[key.as_str(), &expires])
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
        if key.contains(' ')
            || !self
                .tokens
                .verify(LINK_DOMAIN, &[key, &expires.to_string()], signature)
        {
            return Err(LinkError::BadSignature);
        }
        if now.as_secs() > expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

/// A layer over a sink whose `url` is a signed link to this server's `/v1/files/…`.
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
#[deny(clippy::missing_trait_methods)]
impl StorageSink for ServedSink {
    fn kind(&self) -> SinkKind {
        self.inner.kind()
    }

    fn location(&self) -> pipe_core::SinkLocation {
        self.inner.location()
    }

    fn capabilities(&self) -> pipe_core::SinkCapabilities {
        self.inner.capabilities()
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
    audit: Option<Arc<dyn AuditLog>>,
}

/// `GET /v1/files/{*key}`: the objects of `sink`, behind links signed by `links`.
pub fn router<S>(sink: Arc<dyn StorageSink>, links: LinkSigner) -> Router<S> {
    Router::new()
        .route("/v1/files/{*key}", get(download))
        .with_state(Files {
            sink,
            links,
            audit: None,
        })
}

/// [`router`], appending every download through a valid link to `audit`: actor `link`,
/// action `files.download`, target `recording:<id>` (the key's first segment), the file's
/// name and the bytes sent as detail, the status as outcome. No IP address is kept.
pub fn audited_router<S>(
    sink: Arc<dyn StorageSink>,
    links: LinkSigner,
    audit: Arc<dyn AuditLog>,
) -> Router<S> {
    Router::new()
        .route("/v1/files/{*key}", get(download))
        .with_state(Files {
            sink,
            links,
            audit: Some(audit),
        })
}

#[derive(Debug, Deserialize)]
struct LinkQuery {
    expires: Option<String>,
    signature: Option<String>,
}

fn unavailable(key: &ObjectKey, e: &pipe_core::Error) -> Problem {
    tracing::error!(%key, error = %e, "could not read from storage");
    Problem::new(ProblemType::Unavailable, "storage unavailable, try again").with_retry_after(1)
}

async fn download(
    State(files): State<Files>,
    Path(key): Path<String>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let query = query.map(|Query(q)| q).unwrap_or(LinkQuery {
        expires: None,
        signature: None,
    });
    let expires = query.expires.as_deref().and_then(|e| e.parse::<i64>().ok());
    let (Some(expires), Some(signature)) = (expires, query.signature.as_deref()) else {
        return Err(Problem::new(
            ProblemType::BadSignature,
            "this link needs its expires and signature parameters",
        ));
    };
    files
        .links
        .verify(&key, expires, signature, Timestamp::now())?;
    let key = ObjectKey::new(key).map_err(|_| Problem::not_found("file"))?;
    let meta = match files.sink.head(&key).await {
        Ok(meta) => meta,
        Err(e) if e.is_not_found() => return Err(Problem::not_found("file")),
        Err(e) => return Err(unavailable(&key, &e)),
    };
    let range = match headers.get(header::RANGE) {
        None => ByteRange::Whole,
        Some(value) => ByteRange::parse(value.as_bytes(), meta.size),
    };
    let options = match &range {
        ByteRange::Part(r) => GetOptions::default().with_range(r.clone()),
        ByteRange::Whole => GetOptions::default(),
        ByteRange::Unsatisfiable => {
            let mut response = Problem::new(
                ProblemType::RangeNotSatisfiable,
                format!("the file has {} bytes", meta.size),
            )
            .into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{}", meta.size)),
            );
            return Ok(response);
        }
    };
    let got = files
        .sink
        .get(&key, options)
        .await
        .map_err(|e| unavailable(&key, &e))?;
    let content_type = meta
        .content_type
        .clone()
        .unwrap_or_else(|| content_type_of(&key).to_owned());
    if let Some(audit) = &files.audit {
        let (recording, name) = key.as_str().split_once('/').unwrap_or(("", key.as_str()));
        let status = if matches!(range, ByteRange::Part(_)) {
            206
        } else {
            200
        };
        let entry = AuditEntry::new(
            "link",
            "files.download",
            format!("recording:{recording}"),
            status.to_string(),
        )
        .with_detail(format!(
            "{name}, bytes {}-{}",
            got.range.start,
            got.range.end.saturating_sub(1)
        ));
        if let Err(e) = audit.append_audit(entry).await {
            tracing::error!(%key, error = %e, "the download could not be audited");
        }
    }
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
    if let ByteRange::Part(_) = range {
        let r = &got.range;
        h.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size)),
        );
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// The type of a stored file whose sink kept none: from its artifact kind, which the
/// key's extension names.
fn content_type_of(key: &ObjectKey) -> &'static str {
    match key.as_str().rsplit('.').next() {
        Some("mp4") => ArtifactKind::Mp4.content_type(),
        Some("jpg") => ArtifactKind::Snapshot.content_type(),
        Some("webm") => "video/webm",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        _ => ArtifactKind::Original.content_type(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_signed_and_expire() {
        let signer = LinkSigner::new(TokenSigner::new(b"secret".to_vec()), "http://h/");
        let key = ObjectKey::new("a/a.mp4").unwrap();
        let now = Timestamp::from_millis(1_000_000);
        let url = signer.url(&key, Duration::from_secs(60), now);
        assert!(url.starts_with("http://h/v1/files/a/a.mp4?"), "{url}");
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
        let other = LinkSigner::new(TokenSigner::new(b"other".to_vec()), "http://h");
        assert_eq!(
            other.verify("a/a.mp4", expires, sig, now),
            Err(LinkError::BadSignature)
        );
    }
}
