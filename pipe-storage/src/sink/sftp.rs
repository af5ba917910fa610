//! [`SftpSink`]: a folder on an SFTP server, through russh (SSH in Rust, no OpenSSL; its
//! crypto is aws-lc-rs, as the rest of Pipe's) and russh-sftp.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use pipe_core::{
    Error, GetOptions, GetResult, ObjectKey, ObjectMeta, PutBody, PutOptions, PutReceipt, Result,
    SinkKind, SinkLocation, StorageSink,
};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::CheckedBody;
use super::leftovers::Leftovers;

const BACKEND: &str = "sftp";

/// Bytes read from the server at a time.
const READ_CHUNK: usize = 256 * 1024;

/// Ciphers offered, best first: AES-GCM before russh's default ChaCha20-Poly1305, because
/// AES-NI makes it several times cheaper for us and for the server (OpenSSH prefers it
/// too when both sides have the instructions).
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::AES_256_GCM,
    russh::cipher::AES_128_GCM,
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_192_CTR,
    russh::cipher::AES_128_CTR,
];

/// Writes in flight at once, and the bytes each carries: a window of 4 MiB keeps a fast
/// link busy (russh-sftp's default is 16 of 32 KiB) without holding much memory.
const WRITES_IN_FLIGHT: usize = 64;
const WRITE_LEN: u32 = 64 * 1024;

/// How an [`SftpSink`] logs in.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SftpAuth {
    /// A password.
    Password(String),
    /// A private key in OpenSSH's format, with its passphrase if it has one. Prefer
    /// Ed25519 (`ssh-keygen -t ed25519`): RSA keys work, but the RSA implementation has a
    /// timing side channel on private-key operations (RUSTSEC-2023-0071, no fixed
    /// version yet), which an RSA client key exposes once per connection. RSA *host*
    /// keys are only verified, a public-key operation it does not affect.
    Key {
        /// The key (`-----BEGIN OPENSSH PRIVATE KEY-----…`).
        private_key: String,
        /// Its passphrase.
        passphrase: Option<String>,
    },
}

impl fmt::Debug for SftpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::Key { .. } => f.write_str("Key(<redacted>)"),
        }
    }
}

/// Where and how an [`SftpSink`] writes.
///
/// ```
/// use pipe_storage::{SftpAuth, SftpConfig};
///
/// let config = SftpConfig::new(
///     "files.example.com",
///     "pipe",
///     SftpAuth::Password("secret".into()),
///     "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
/// )
/// .with_port(2222)
/// .with_folder("/srv/recordings");
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SftpConfig {
    /// The server's name or address.
    pub host: String,
    /// Its port (default 22).
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// How.
    pub auth: SftpAuth,
    /// The server's host key, as its SHA-256 fingerprint (`SHA256:…`).
    pub host_key: String,
    /// The folder objects go under: absolute, or relative to the user's home (default:
    /// the home).
    pub folder: String,
}

impl SftpConfig {
    /// A server, a user, how they log in, and the server's key fingerprint.
    pub fn new(
        host: impl Into<String>,
        user: impl Into<String>,
        auth: SftpAuth,
        host_key: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            port: 22,
            user: user.into(),
            auth,
            host_key: host_key.into(),
            folder: String::new(),
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
}

/// A [`StorageSink`] on an SFTP server.
///
/// - **Host key pinned.** The config names the server's key by its SHA-256 fingerprint
///   (`SHA256:…`, what `ssh-keygen -lf` prints); any other key is refused before a
///   password or key is sent.
/// - **Whole or nothing.** A put writes `.<name>.<random>.part` next to the target,
///   counting and hashing the bytes, and renames it into place only when complete and of
///   the declared size; a failed put removes its temporary file. (SFTP v3's rename does not
///   replace, so an existing object is removed just before: for that instant the key is
///   absent, never partial.)
/// - **One connection per operation.** Each call connects, authenticates and closes; a
///   copy makes a handful of calls, and nothing stale survives a server restart.
#[derive(Debug, Clone)]
pub struct SftpSink {
    config: Arc<SftpConfig>,
    kind: SinkKind,
    leftovers: Leftovers,
}

impl SftpSink {
    /// A sink of `kind` (usually [`SinkKind::Sftp`]) on the server `config` names.
    /// Nothing is sent until the first call.
    pub fn new(config: SftpConfig, kind: SinkKind) -> Result<Self> {
        if !config.host_key.starts_with("SHA256:") {
            return Err(Error::invalid(
                "SFTP host key",
                "a SHA-256 fingerprint, `SHA256:…` (what `ssh-keygen -lf` prints)",
            ));
        }
        Ok(Self {
            config: Arc::new(config),
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

    /// A logged-in SFTP session; the SSH connection lives as long as the session.
    async fn session(&self) -> Result<Connection> {
        let config = &self.config;
        let checker = HostKey {
            expected: config.host_key.clone(),
            seen: None,
        };
        let ssh_config = Arc::new(russh::client::Config {
            preferred: russh::Preferred {
                cipher: std::borrow::Cow::Borrowed(CIPHERS),
                ..russh::Preferred::default()
            },
            ..russh::client::Config::default()
        });
        let mut handle =
            russh::client::connect(ssh_config, (config.host.as_str(), config.port), checker)
                .await
                .map_err(|e| match e {
                    HostKeyError::Mismatch { seen } => Error::permission_denied(
                        BACKEND,
                        format!(
                            "{}:{} presented the host key {seen}, not the pinned {}: refused",
                            config.host, config.port, config.host_key
                        ),
                    ),
                    HostKeyError::Ssh(e) => ssh_error(&config.host, e),
                })?;
        let authenticated = match &config.auth {
            SftpAuth::Password(password) => handle
                .authenticate_password(&config.user, password)
                .await
                .map_err(|e| ssh_error(&config.host, e))?,
            SftpAuth::Key {
                private_key,
                passphrase,
            } => {
                let key = russh::keys::decode_secret_key(private_key, passphrase.as_deref())
                    .map_err(|e| Error::invalid("SFTP private key", e))?;
                let hash = handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(|e| ssh_error(&config.host, e))?
                    .flatten();
                handle
                    .authenticate_publickey(
                        &config.user,
                        PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                    )
                    .await
                    .map_err(|e| ssh_error(&config.host, e))?
            }
        };
        if !authenticated.success() {
            return Err(Error::permission_denied(
                BACKEND,
                format!(
                    "{} refused {} and its credentials",
                    config.host, config.user
                ),
            ));
        }
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| ssh_error(&config.host, e))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| ssh_error(&config.host, e))?;
        let sftp_config = russh_sftp::client::Config {
            max_concurrent_writes: WRITES_IN_FLIGHT,
            max_write_packet_len: WRITE_LEN,
            ..russh_sftp::client::Config::default()
        };
        let sftp = SftpSession::new_with_config(channel.into_stream(), sftp_config)
            .await
            .map_err(|e| sftp_error(e, "start SFTP"))?;
        Ok(Connection { sftp, _ssh: handle })
    }
}

/// An SFTP session and the SSH connection under it.
struct Connection {
    sftp: SftpSession,
    _ssh: russh::client::Handle<HostKey>,
}

/// Checks the server's key against the pinned fingerprint.
struct HostKey {
    expected: String,
    seen: Option<String>,
}

#[derive(Debug)]
enum HostKeyError {
    Mismatch { seen: String },
    Ssh(russh::Error),
}

impl From<russh::Error> for HostKeyError {
    fn from(e: russh::Error) -> Self {
        Self::Ssh(e)
    }
}

impl russh::client::Handler for HostKey {
    type Error = HostKeyError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => cert.public_key().clone().into(),
        };
        let seen = key.fingerprint(HashAlg::Sha256).to_string();
        if seen == self.expected {
            self.seen = Some(seen);
            Ok(true)
        } else {
            Err(HostKeyError::Mismatch { seen })
        }
    }
}

fn ssh_error(host: &str, e: russh::Error) -> Error {
    match e {
        russh::Error::IO(io) => {
            let kind = io.kind();
            let detail = format!("{host}: {io}");
            if Error::is_permanent_io(kind) {
                Error::permanent(BACKEND, detail)
            } else {
                Error::temporary(BACKEND, detail)
            }
        }
        e => Error::temporary(BACKEND, format!("{host}: {e}")),
    }
}

fn sftp_error(e: russh_sftp::client::error::Error, what: &str) -> Error {
    use russh_sftp::client::error::Error as E;
    match &e {
        E::Status(status) => match status.status_code {
            StatusCode::NoSuchFile => Error::not_found(what),
            StatusCode::PermissionDenied => {
                Error::permission_denied(BACKEND, format!("{what}: {e}"))
            }
            StatusCode::OpUnsupported => Error::NotSupported {
                backend: BACKEND,
                operation: "an SFTP operation",
            },
            _ => Error::temporary(BACKEND, format!("{what}: {e}")),
        },
        _ => Error::temporary(BACKEND, format!("{what}: {e}")),
    }
}

impl Connection {
    /// Makes every missing directory of `path`'s parent.
    async fn make_parents(&self, path: &str) -> Result<()> {
        let Some((parent, _)) = path.rsplit_once('/') else {
            return Ok(());
        };
        let mut built = String::new();
        for part in parent.split('/') {
            if part.is_empty() {
                built.push('/');
                continue;
            }
            if !built.is_empty() && !built.ends_with('/') {
                built.push('/');
            }
            built.push_str(part);
            match self.sftp.metadata(built.clone()).await {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => {
                    return Err(Error::precondition(format_args!(
                        "{built} exists on the server and is not a directory"
                    )));
                }
                Err(_) => {}
            }
            if let Err(e) = self.sftp.create_dir(built.clone()).await {
                // Another put may have made it meanwhile.
                let made = self
                    .sftp
                    .metadata(built.clone())
                    .await
                    .is_ok_and(|m| m.is_dir());
                if !made {
                    return Err(sftp_error(e, &built));
                }
            }
        }
        Ok(())
    }

    async fn size(&self, path: &str, key: &ObjectKey) -> Result<u64> {
        let meta = self
            .sftp
            .metadata(path.to_owned())
            .await
            .map_err(|e| sftp_error(e, &format!("object {key}")))?;
        Ok(meta.size.unwrap_or(0))
    }
}

#[async_trait]
impl StorageSink for SftpSink {
    fn kind(&self) -> SinkKind {
        self.kind
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
        let conn = self.session().await?;
        for stale in self.leftovers.take() {
            if let Err(e) = conn.sftp.remove_file(stale.clone()).await
                && !sftp_error(e, &stale).is_not_found()
            {
                self.leftovers.note(stale);
            }
        }
        let path = self.path(key);
        conn.make_parents(&path).await?;
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
        let written = write_all(&conn, &temp, body, key).await;
        let receipt = match written {
            Ok(receipt) => receipt,
            Err(e) => {
                if conn.sftp.remove_file(temp.clone()).await.is_err() {
                    self.leftovers.note(temp);
                }
                return Err(e);
            }
        };
        // SFTP v3 does not rename over an existing file.
        match conn.sftp.remove_file(path.clone()).await {
            Ok(()) => {}
            Err(e) => {
                let e = sftp_error(e, &format!("object {key}"));
                if !e.is_not_found() {
                    let _ = conn.sftp.remove_file(temp.clone()).await;
                    return Err(e);
                }
            }
        }
        if let Err(e) = conn.sftp.rename(temp.clone(), path.clone()).await {
            let _ = conn.sftp.remove_file(temp).await;
            return Err(sftp_error(e, &format!("object {key}")));
        }
        Ok(receipt)
    }

    async fn get(&self, key: &ObjectKey, options: GetOptions) -> Result<GetResult> {
        let conn = self.session().await?;
        let path = self.path(key);
        let size = conn.size(&path, key).await?;
        let range: Range<u64> = match options.range {
            None => 0..size,
            Some(r) if r.start >= size && !(r.start == 0 && size == 0) => {
                return Err(Error::invalid(
                    "range",
                    format!(
                        "{}..{} starts at or past the end ({size} bytes)",
                        r.start, r.end
                    ),
                ));
            }
            Some(r) => r.start..r.end.min(size),
        };
        let mut file = conn
            .sftp
            .open_with_flags(path, OpenFlags::READ)
            .await
            .map_err(|e| sftp_error(e, &format!("object {key}")))?;
        file.seek(std::io::SeekFrom::Start(range.start))
            .await
            .map_err(Error::from)?;
        let left = range.end - range.start;
        let stream = stream::unfold((conn, file, left), |(conn, mut file, left)| async move {
            if left == 0 {
                return None;
            }
            let want = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the object ended early",
                    )),
                    (conn, file, 0),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (conn, file, left - n as u64)))
                }
                Err(e) => Some((Err(e), (conn, file, 0))),
            }
        });
        Ok(GetResult::new(
            ObjectMeta::new(key.clone(), size, None),
            range,
            stream.boxed(),
        ))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        let conn = self.session().await?;
        let size = conn.size(&self.path(key), key).await?;
        Ok(ObjectMeta::new(key.clone(), size, None))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let conn = self.session().await?;
        match conn.sftp.remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = sftp_error(e, &format!("object {key}"));
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
    }
}

/// Streams `body` into a new file at `path`, counting and hashing it.
async fn write_all(
    conn: &Connection,
    path: &str,
    body: PutBody,
    key: &ObjectKey,
) -> Result<PutReceipt> {
    let mut file = conn
        .sftp
        .open_with_flags(
            path.to_owned(),
            OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
        )
        .await
        .map_err(|e| sftp_error(e, &format!("object {key}")))?;
    let mut body = CheckedBody::new(body);
    while let Some(chunk) = body.next().await? {
        file.write_all(&chunk).await.map_err(Error::from)?;
    }
    body.finish()?;
    file.shutdown().await.map_err(Error::from)?;
    Ok(body.receipt())
}
