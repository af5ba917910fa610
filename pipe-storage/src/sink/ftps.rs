//! [`FtpsSink`]: a folder on an FTP server over explicit TLS (FTPS, RFC 4217), through
//! suppaftp on tokio with rustls.
//!
//! Why suppaftp: it is the kept FTP client of the Rust ecosystem, async on tokio, and its
//! rustls mode resumes the control connection's TLS session on each data connection,
//! which vsftpd and other hardened servers demand (`require_ssl_reuse`); TLS comes from
//! rustls on aws-lc-rs, as everywhere else in Pipe, so no OpenSSL is linked.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use pipe_core::{
    Error, GetOptions, GetResult, ObjectKey, ObjectMeta, PutBody, PutOptions, PutReceipt, Result,
    SinkCapabilities, SinkKind, SinkLocation, StorageSink,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Mode, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::CheckedBody;
use super::leftovers::Leftovers;

const BACKEND: &str = "ftps";

/// Bytes read from the server at a time.
const READ_CHUNK: usize = 256 * 1024;

type Ftp = AsyncRustlsFtpStream;

/// Where and how an [`FtpsSink`] writes.
///
/// ```
/// use pipe_storage::FtpsConfig;
///
/// let config = FtpsConfig::new("ftp.example.com", "pipe", "secret")
///     .with_port(2121)
///     .with_folder("recordings")
///     .with_ca_pem("-----BEGIN CERTIFICATE-----\n…");
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FtpsConfig {
    /// The server's name or address; the name its certificate must carry.
    pub host: String,
    /// Its control port (default 21).
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// The user's password.
    pub password: String,
    /// The folder objects go under: absolute, or relative to where the user logs in
    /// (default: there).
    pub folder: String,
    /// The certificates (PEM) that the server's must chain to, for servers with a
    /// certificate of their own CA; `None` trusts the system's roots.
    pub ca_pem: Option<String>,
    /// The server takes files but gives none back (a drop folder that refuses `RETR`):
    /// `get` and `head` are [`Error::NotSupported`] and copies are verified by the bytes
    /// sent and the size the server reports, when it reports one.
    pub write_only: bool,
    /// How long connecting, the TLS handshake and each reply may take.
    pub timeout: Duration,
}

impl fmt::Debug for FtpsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpsConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("folder", &self.folder)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<PEM>"))
            .field("write_only", &self.write_only)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl FtpsConfig {
    /// A server, a user and the user's password.
    pub fn new(
        host: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port: 21,
            user: user.into(),
            password: password.into(),
            folder: String::new(),
            ca_pem: None,
            write_only: false,
            timeout: Duration::from_secs(30),
        }
    }

    /// Connects to `port`.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Puts objects under `folder`.
    #[must_use]
    pub fn with_folder(mut self, folder: impl Into<String>) -> Self {
        let folder: String = folder.into();
        self.folder = folder.trim_end_matches('/').to_owned();
        self
    }

    /// Trusts only the certificates in `pem` (a CA file's contents).
    #[must_use]
    pub fn with_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Declares the server write-only (see [`FtpsConfig::write_only`]).
    #[must_use]
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }

    /// Waits at most `timeout` for a connection, a handshake or a reply.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// A [`StorageSink`] on an FTP server, explicit TLS on the control and every data
/// connection (`AUTH TLS`, `PROT P`), passive mode through `EPSV` (the data connection
/// goes to the address the control connection reached, so servers behind NAT work).
///
/// - **Certificates verified**, against the system's roots or the CA of
///   [`FtpsConfig::ca_pem`]; the name checked is [`FtpsConfig::host`]. Nothing is sent in
///   the clear: the password follows the handshake.
/// - **Whole or nothing.** A put stores `.<name>.<random>.part` next to the target,
///   counting and hashing the bytes, checks the size the server reports (`SIZE`), and
///   renames it into place (`RNFR`/`RNTO`); a failed put removes its temporary file.
/// - **One connection per operation**, as [`SftpSink`](crate::SftpSink): nothing stale
///   survives a server restart. TLS sessions are resumed across them.
#[derive(Clone)]
pub struct FtpsSink {
    config: Arc<FtpsConfig>,
    tls: tokio_rustls::TlsConnector,
    kind: SinkKind,
    leftovers: Leftovers,
}

impl fmt::Debug for FtpsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpsSink")
            .field("config", &self.config)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl FtpsSink {
    /// A sink of `kind` (usually [`SinkKind::Ftp`]) on the server `config` names. Fails
    /// only on a CA file that holds no certificate; nothing is sent until the first call.
    pub fn new(config: FtpsConfig, kind: SinkKind) -> Result<Self> {
        let tls = tls_config(config.ca_pem.as_deref())?;
        Ok(Self {
            config: Arc::new(config),
            tls: tokio_rustls::TlsConnector::from(tls),
            kind,
            leftovers: Leftovers::default(),
        })
    }

    /// The path of `key` on the server.
    fn path(&self, key: &ObjectKey) -> String {
        if self.config.folder.is_empty() {
            key.as_str().to_owned()
        } else {
            format!("{}/{}", self.config.folder, key.as_str())
        }
    }

    /// `future`, failing as a timeout after the configured time.
    async fn timed<T>(
        &self,
        what: &str,
        future: impl Future<Output = std::result::Result<T, FtpError>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.config.timeout, future).await {
            Ok(result) => result.map_err(|e| ftp_error(e, what)),
            Err(_) => Err(Error::temporary(
                BACKEND,
                format!(
                    "{what}: {}:{} did not answer within {:?}",
                    self.config.host, self.config.port, self.config.timeout
                ),
            )),
        }
    }

    /// A logged-in control connection, in binary mode.
    async fn session(&self) -> Result<Ftp> {
        let config = &self.config;
        let connect = async {
            let ftp = Ftp::connect((config.host.as_str(), config.port)).await?;
            let mut ftp = ftp
                .into_secure(AsyncRustlsConnector::from(self.tls.clone()), &config.host)
                .await?;
            ftp.set_mode(Mode::ExtendedPassive);
            Ok(ftp)
        };
        let what = format!("connect to {}:{}", config.host, config.port);
        let mut ftp = self.timed(&what, connect).await?;
        let login = self.timed("log in", ftp.login(&config.user, &config.password));
        match login.await {
            Ok(()) => {}
            Err(e) if e.is_permission_denied() => {
                return Err(Error::permission_denied(
                    BACKEND,
                    format!("{} refused {} and its password", config.host, config.user),
                ));
            }
            Err(e) => return Err(e),
        }
        self.timed("binary mode", ftp.transfer_type(FileType::Binary))
            .await?;
        Ok(ftp)
    }

    /// Makes every missing directory of `path`'s parent. A `MKD` of one that exists
    /// fails; whether the parent is there shows when the file is stored.
    async fn make_parents(&self, ftp: &mut Ftp, path: &str) -> Result<()> {
        let Some((parent, _)) = path.rsplit_once('/') else {
            return Ok(());
        };
        let mut built = String::new();
        for part in parent.split('/') {
            if !built.is_empty() || path.starts_with('/') {
                built.push('/');
            }
            built.push_str(part);
            if part.is_empty() {
                continue;
            }
            match self.timed(&built, ftp.mkdir(&built)).await {
                Ok(()) => {}
                Err(e) if e.is_retryable() => return Err(e),
                Err(_exists_or_refused) => {}
            }
        }
        Ok(())
    }

    /// Stores `body` under `temp`, returning the receipt of what was sent.
    async fn store(
        &self,
        ftp: &mut Ftp,
        temp: &str,
        body: PutBody,
        key: &ObjectKey,
    ) -> Result<PutReceipt> {
        let mut data = self
            .timed(&format!("object {key}"), ftp.put_with_stream(temp))
            .await?;
        let mut body = CheckedBody::new(body);
        while let Some(chunk) = body.next().await? {
            data.write_all(&chunk).await.map_err(Error::from)?;
        }
        body.finish()?;
        let size = body.count();
        let data = DrainOnShutdown {
            inner: data,
            shut: false,
        };
        self.timed(&format!("object {key}"), ftp.finalize_put_stream(data))
            .await?;
        // The server's count, where it gives one (a drop folder may refuse to).
        match self.timed(temp, ftp.size(temp)).await {
            Ok(stored) if stored as u64 != size => {
                return Err(Error::Integrity {
                    detail: format!("{key}: sent {size} bytes, the server stored {stored}"),
                });
            }
            Ok(_) => {}
            Err(e) if self.config.write_only && !e.is_retryable() => {}
            Err(e) => return Err(e),
        }
        Ok(body.receipt())
    }

    /// Removes `path` on a connection of its own, after a put on the first failed
    /// midway (its control connection is in no state to go on); if the server cannot be
    /// reached, a later put removes it.
    async fn remove_quietly(&self, path: &str) {
        match self.session().await {
            Ok(mut ftp) => {
                self.remove_or_note(&mut ftp, path.to_owned()).await;
                let _ = ftp.quit().await;
            }
            Err(_) => self.leftovers.note(path.to_owned()),
        }
    }

    /// Removes `path`, or notes it for later if the server refuses for now.
    async fn remove_or_note(&self, ftp: &mut Ftp, path: String) {
        if let Err(e) = self.timed(&path, ftp.rm(&path)).await
            && !e.is_not_found()
        {
            self.leftovers.note(path);
        }
    }

    fn refuse_reads(&self) -> Result<()> {
        if self.config.write_only {
            Err(Error::NotSupported {
                backend: BACKEND,
                operation: "reading from a write-only FTP folder",
            })
        } else {
            Ok(())
        }
    }

    async fn size(&self, ftp: &mut Ftp, path: &str, key: &ObjectKey) -> Result<u64> {
        let size = self.timed(&format!("object {key}"), ftp.size(path)).await?;
        Ok(size as u64)
    }
}

/// A data connection that, once shut down, reads what the server still sends (its TLS
/// session tickets, its own `close_notify`) until the server closes. Closing a socket
/// with unread bytes makes the kernel reset the connection, and a reset throws away
/// whatever the server has not read yet: the tail of the upload, and a `426` instead
/// of a `226`.
struct DrainOnShutdown<S> {
    inner: S,
    shut: bool,
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite
    for DrainOnShutdown<S>
{
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        if !self.shut {
            std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.shut = true;
        }
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = tokio::io::ReadBuf::new(&mut scratch);
            match std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => {}
                // The server closed without ceremony: nothing more to wait for.
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

/// rustls settings: the CA of `ca_pem` if given, else the system's roots (through
/// rustls-platform-verifier, which reqwest brings into the tree already).
fn tls_config(ca_pem: Option<&str>) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::permanent(BACKEND, e.to_string()))?;
    let config = match ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| Error::invalid("FTPS CA certificate", e))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::invalid("FTPS CA certificate", e))?;
            }
            if roots.is_empty() {
                return Err(Error::invalid(
                    "FTPS CA certificate",
                    "the PEM holds no certificate",
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| Error::permanent(BACKEND, e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// An FTP error of `what` as an [`Error`] a caller can act on: replies in 4xx are
/// transient, 5xx permanent; `530` is the credentials; `550` is a missing file unless the
/// server says it is permission.
fn ftp_error(e: FtpError, what: &str) -> Error {
    match e {
        FtpError::ConnectionError(io) => {
            let detail = format!("{what}: {io}");
            if Error::is_permanent_io(io.kind()) {
                Error::permanent(BACKEND, detail)
            } else {
                Error::temporary(BACKEND, detail)
            }
        }
        // A certificate the server should not have (or we cannot check) is a setting to
        // fix; a handshake cut short is the network's.
        FtpError::SecureError(detail) if detail.contains("certificate") => {
            Error::permission_denied(BACKEND, format!("{what}: TLS: {detail}"))
        }
        FtpError::UnexpectedResponse(response) => {
            let text = response.as_string().unwrap_or_default();
            let text = text.trim();
            let detail = format!("{what}: the server said {text}");
            match response.status {
                Status::NotLoggedIn
                | Status::InvalidCredentials
                | Status::LoginNeedAccount
                | Status::StoringNeedAccount => Error::permission_denied(BACKEND, detail),
                Status::FileUnavailable if text.to_lowercase().contains("permission") => {
                    Error::permission_denied(BACKEND, detail)
                }
                Status::FileUnavailable => Error::not_found(what),
                Status::NotImplemented | Status::CommandNotImplemented => Error::NotSupported {
                    backend: BACKEND,
                    operation: "an FTP command",
                },
                status if (400..500).contains(&status.code()) => Error::temporary(BACKEND, detail),
                _ => Error::permanent(BACKEND, detail),
            }
        }
        e => Error::temporary(BACKEND, format!("{what}: {e}")),
    }
}

#[async_trait]
impl StorageSink for FtpsSink {
    fn kind(&self) -> SinkKind {
        self.kind
    }

    fn capabilities(&self) -> SinkCapabilities {
        if self.config.write_only {
            SinkCapabilities::WRITE_ONLY
        } else {
            SinkCapabilities::ALL
        }
    }

    fn location(&self) -> SinkLocation {
        SinkLocation::bucket(self.config.host.clone())
            .with_folder((!self.config.folder.is_empty()).then(|| self.config.folder.clone()))
    }

    async fn put(
        &self,
        key: &ObjectKey,
        body: PutBody,
        _options: PutOptions,
    ) -> Result<PutReceipt> {
        let mut ftp = self.session().await?;
        for stale in self.leftovers.take() {
            self.remove_or_note(&mut ftp, stale).await;
        }
        let path = self.path(key);
        self.make_parents(&mut ftp, &path).await?;
        let (dir, name) = path
            .rsplit_once('/')
            .map_or(("", path.as_str()), |(d, n)| (d, n));
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| Error::temporary(BACKEND, e.to_string()))?;
        let temp_name = format!(".{name}.{}.part", hex::encode(random));
        let temp = if dir.is_empty() {
            temp_name
        } else {
            format!("{dir}/{temp_name}")
        };
        let receipt = match self.store(&mut ftp, &temp, body, key).await {
            Ok(receipt) => receipt,
            Err(e) => {
                drop(ftp);
                self.remove_quietly(&temp).await;
                return Err(e);
            }
        };
        let what = format!("object {key}");
        if let Err(e) = self.timed(&what, ftp.rename(&temp, &path)).await {
            // Servers that do not rename over a file (RFC 959 leaves it open): remove
            // the old object, then rename.
            let replaced = async {
                match self.timed(&what, ftp.rm(&path)).await {
                    Err(e) if !e.is_not_found() => return Err(e),
                    _ => {}
                }
                self.timed(&what, ftp.rename(&temp, &path)).await
            };
            if let Err(again) = replaced.await {
                tracing::debug!(first = %e, "renaming into place failed twice");
                let _ = self.timed(&temp, ftp.rm(&temp)).await;
                return Err(again);
            }
        }
        let _ = ftp.quit().await;
        Ok(receipt)
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        self.refuse_reads()?;
        let mut ftp = self.session().await?;
        let path = self.path(key);
        let size = self.size(&mut ftp, &path, key).await?;
        let range: Range<u64> = match options.range {
            None => 0..size,
            Some(r) if r.start >= r.end => {
                return Err(Error::invalid("range", format!("{r:?} holds no bytes")));
            }
            Some(r) if r.start >= size => {
                return Err(Error::invalid(
                    "range",
                    format!("{r:?} starts at or past the end ({size} bytes)"),
                ));
            }
            Some(r) => r.start..r.end.min(size),
        };
        let what = format!("object {key}");
        if range.start > 0 {
            let offset = usize::try_from(range.start)
                .map_err(|_| Error::invalid("range", "beyond this platform's usize"))?;
            self.timed(&what, ftp.resume_transfer(offset)).await?;
        }
        let data = self.timed(&what, ftp.retr_as_stream(&path)).await?;
        let left = range.end - range.start;
        let to_end = range.end == size;
        let stream = stream::unfold(Some((ftp, data, left)), move |state| async move {
            let (mut ftp, mut data, left) = state?;
            if left == 0 {
                if to_end {
                    // The whole rest was read: the server's reply says it sent it all.
                    if let Err(e) = ftp.finalize_retr_stream(data).await {
                        let e = std::io::Error::other(format!("after the last byte: {e}"));
                        return Some((Err(e), None));
                    }
                    let _ = ftp.quit().await;
                }
                // Otherwise the range ended early: dropping the connection ends the
                // transfer.
                return None;
            }
            let want = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            match data.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the object ended early",
                    )),
                    None,
                )),
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some((ftp, data, left - n as u64))))
                }
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok(GetResult::new(
            ObjectMeta::new(key.clone(), size, None),
            range,
            stream.boxed(),
        ))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.refuse_reads()?;
        let mut ftp = self.session().await?;
        let size = self.size(&mut ftp, &self.path(key), key).await?;
        let _ = ftp.quit().await;
        Ok(ObjectMeta::new(key.clone(), size, None))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let mut ftp = self.session().await?;
        let path = self.path(key);
        let what = format!("object {key}");
        let result = match self.timed(&what, ftp.rm(&path)).await {
            Ok(()) => Ok(()),
            // A `550` to `DELE` does not say whether the file is missing: ask.
            Err(e) if e.is_not_found() => match self.timed(&what, ftp.size(&path)).await {
                Ok(_) => Err(Error::permission_denied(
                    BACKEND,
                    format!("{what}: the server keeps it and refuses to delete it"),
                )),
                Err(gone) if gone.is_not_found() => Ok(()),
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        };
        let _ = ftp.quit().await;
        result
    }
}
