//! Sinks written as URLs: the grammar of `PIPE_SINKS` and of an environment's sinks.
//!
//! ```text
//! <sink> = s3://<bucket>[/<folder>][?<option>[&<option>…]]
//!        | sftp://<user>@<host>[:<port>][/<folder>]?host_key=SHA256:…&<login>[&<option>…]
//!        | ftps://<user>@<host>[:<port>][/<folder>]?password_from=<name>[&<option>…]
//!        | azure://<account>/<container>[/<folder>][?<option>[&<option>…]]
//!        | dropbox:///<folder>?app_key=…&app_secret_from=<name>&refresh_token_from=<name>[&<option>…]
//!        | gcs://<bucket>[/<folder>]?<login>[&<option>…]
//!        | file:///<directory>[?<option>[&<option>…]]
//! ```
//!
//! A URL never holds a secret: an option `…_from=<name>` takes its value from a secret
//! called `<name>`. In `PIPE_SINKS` that is an environment variable of the server; in an
//! environment's settings ([`pipe_core::SinkSettings`]), a key of the sink's `secrets`,
//! which catalogs seal at rest. Each option at most once; an unknown one is an error.
//!
//! Options of every sink:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `naming` | `pipe` (`<name>.mp4`, `<name>.jpg`, `<name>_raw.<ext>` side by side, as the hosted Pipe) or `by-recording` (a folder per recording) | `pipe` |
//! | `encrypt` | `true` to store only ciphertext (Pipe's encryption at rest, with the server's keys) | `false` |
//! | `id` | the sink's name in copies and logs (`PIPE_SINKS` only: in settings the sink's `id` says it) | `<scheme>-<position>` |
//!
//! Options of `s3://`:
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `region` | the bucket's region | `us-east-1` |
//! | `endpoint` | the service's URL, for anything but AWS (`http://127.0.0.1:9000`) | AWS |
//! | `path_style` | `true` for `<endpoint>/<bucket>/<key>` requests, `false` for `<bucket>.<endpoint>` | `true` with an endpoint, else `false` |
//! | `acl` | canned ACL of new objects (`private`, `bucket-owner-full-control`, …) | the bucket's |
//! | `storage_class` | storage class of new objects (`STANDARD_IA`, …) | the bucket's |
//! | `sse` | server-side encryption: `AES256` or `aws:kms` | the bucket's |
//! | `kms_key_id` | the KMS key of `sse=aws:kms` | the account's default key |
//! | `access_key_id` | the access key to sign with | `AWS_ACCESS_KEY_ID` |
//! | `secret_key_from` | the secret that holds the access key's secret | `AWS_SECRET_ACCESS_KEY` |
//!
//! Without `access_key_id`, credentials come from AWS's standard variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or the instance's
//! role.
//!
//! Options of `sftp://`: `host_key` (required: the server's key as its SHA-256
//! fingerprint, what `ssh-keygen -lf` prints; any other key is refused), and one login:
//! `password_from=<name>`, `key_from=<name>` (an OpenSSH private key) or, in
//! `PIPE_SINKS` only, `key_file=<path>`; `key_passphrase_from=<name>` for a key that has
//! one. The folder is absolute (`/srv/x`); `/~/x` is `x` in the user's home, and no folder
//! is the home.
//!
//! Options of `ftps://` (FTP with explicit TLS; the port defaults to 21):
//! `password_from=<name>` (required), `ca_from=<name>` or, in `PIPE_SINKS` only,
//! `ca_file=<path>` (the PEM of the CA the server's certificate must chain to, for servers
//! with a certificate of their own; without it, the system's roots), `write_only=true` (a
//! drop folder that refuses downloads: copies are checked by what was sent and the size
//! the server reports, and nothing is read back). The folder reads as SFTP's. Copies are
//! told as `video_copied_ftp`, as Pipe does.
//!
//! Options of `azure://`: `access_key_from=<name>` (the account's key; without it,
//! Azure's usual variables or a managed identity), `endpoint` (another address than
//! `https://<account>.blob.core.windows.net`, such as an emulator's
//! `http://127.0.0.1:10000/<account>`). Copies are told as `video_copied_azure` (Pipe has
//! no Azure).
//!
//! Options of `dropbox://` (the folder is from the root of what the Dropbox app sees):
//! `app_key` with `app_secret_from=<name>` and `refresh_token_from=<name>` (the
//! refresh-token flow: the sink renews its access tokens), or `access_token_from=<name>`
//! (a fixed token, which Dropbox expires after 4 hours: for trials);
//! `api_endpoint` and `content_endpoint` (other base URLs than Dropbox's, both or
//! neither: a proxy, or the stand-in of the tests). Copies are told as
//! `video_copied_dbox`, as Pipe does.
//!
//! Options of `gcs://` (a bucket of Google Cloud Storage): one login,
//! `credentials_from=<name>` (the JSON key file of a service account) or, in `PIPE_SINKS`
//! only, `credentials_file=<path>`; `access_token_from=<name>` (a fixed OAuth token, which
//! expires after an hour: for trials); or `anonymous=true` (no credentials: an emulator).
//! `endpoint` is another address than `https://storage.googleapis.com` (an emulator's
//! `http://127.0.0.1:4443`). Copies are told as `video_copied_gcs`, as Pipe does.
//!
//! `file:///<directory>` is a directory on the server's disks (a mounted share, say),
//! for `PIPE_SINKS` only: settings that come through the API never reach the server's
//! files. Copies are told as `video_copied_local` (ours).
//!
//! A scheme whose sink this build lacks (its feature is off) is refused by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use pipe_core::{Error, KeyLayout, Result, SinkId, SinkKind, SinkSettings, StorageSink};

#[cfg(feature = "sink-azure")]
use crate::AzureConfig;
#[cfg(feature = "sink-ftps")]
use crate::FtpsConfig;
#[cfg(feature = "sink-dropbox")]
use crate::{DropboxAuth, DropboxConfig};
#[cfg(feature = "sink-gcs")]
use crate::{GcsAuth, GcsConfig};
#[cfg(feature = "sink-s3")]
use crate::{S3Config, S3Encryption};
#[cfg(feature = "sink-sftp")]
use crate::{SftpAuth, SftpConfig};

/// One sink URL, read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkUrl {
    /// Its `id=`, if it has one.
    pub id: Option<SinkId>,
    /// Where it is.
    pub target: SinkTarget,
    /// How files are named in it.
    pub layout: KeyLayout,
    /// Whether only ciphertext goes there.
    pub encrypt: bool,
}

/// The kinds of place a [`SinkUrl`] names (those of the features this build has).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkTarget {
    /// A bucket of S3 or of a service that speaks its API.
    #[cfg(feature = "sink-s3")]
    S3(S3Config),
    /// A folder on an SFTP server.
    #[cfg(feature = "sink-sftp")]
    Sftp(SftpConfig),
    /// A folder on an FTP server, explicit TLS.
    #[cfg(feature = "sink-ftps")]
    Ftps(FtpsConfig),
    /// A container of Azure Blob Storage.
    #[cfg(feature = "sink-azure")]
    Azure(AzureConfig),
    /// A folder of a Dropbox account.
    #[cfg(feature = "sink-dropbox")]
    Dropbox(DropboxConfig),
    /// A bucket of Google Cloud Storage.
    #[cfg(feature = "sink-gcs")]
    Gcs(GcsConfig),
    /// A directory on the server's disks.
    #[cfg(feature = "sink-local")]
    Local(std::path::PathBuf),
}

/// Where the secrets that `…_from=` options name come from, and whether `…_file=`
/// options may read the server's files.
#[derive(Clone, Copy)]
pub struct Secrets<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    files: bool,
    source: &'static str,
}

impl std::fmt::Debug for Secrets<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("files", &self.files)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl<'a> Secrets<'a> {
    /// The server's own configuration: `lookup` reads its environment variables, and
    /// `…_file=` options read its files.
    pub fn server(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            files: true,
            source: "the variable",
        }
    }

    /// An environment's sink: its `secrets`, and no files (its settings come through the
    /// API, which must not reach the server's files).
    pub fn stored(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            files: false,
            source: "the secret",
        }
    }
}

impl SinkUrl {
    /// Reads one sink URL; `Invalid` (what `"sink"`) says what is wrong.
    pub fn parse(text: &str, secrets: Secrets<'_>) -> Result<Self> {
        let url = url::Url::parse(text).map_err(|e| invalid(e.to_string()))?;
        let mut options = Options::of(&url)?;
        if url.password().is_some() {
            return Err(invalid(
                "no password in the URL (URLs end up in logs): name the secret that holds it",
            ));
        }
        let target = match url.scheme() {
            #[cfg(feature = "sink-s3")]
            "s3" => s3(&url, &mut options, secrets)?,
            #[cfg(feature = "sink-sftp")]
            "sftp" => sftp(&url, &mut options, secrets)?,
            #[cfg(feature = "sink-ftps")]
            "ftps" => ftps(&url, &mut options, secrets)?,
            #[cfg(feature = "sink-azure")]
            "azure" => azure(&url, &mut options, secrets)?,
            #[cfg(feature = "sink-dropbox")]
            "dropbox" => dropbox(&url, &mut options, secrets)?,
            #[cfg(feature = "sink-gcs")]
            "gcs" => gcs(&url, &mut options, secrets)?,
            #[cfg(feature = "sink-local")]
            "file" => local(&url, secrets)?,
            other => {
                return Err(invalid(format!(
                    "`{other}://` is not a sink this server has (it has {})",
                    SCHEMES.join(", ")
                )));
            }
        };
        let layout = match options.take("naming").as_deref() {
            None | Some("pipe") => KeyLayout::Flat,
            Some("by-recording") => KeyLayout::ByRecording,
            Some(other) => {
                return Err(invalid(format!(
                    "naming is `pipe` or `by-recording`, not {other:?}"
                )));
            }
        };
        let encrypt = options.flag("encrypt")?.unwrap_or(false);
        let id = options
            .take("id")
            .map(|id| {
                let well_formed = (1..=64).contains(&id.len())
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if well_formed {
                    Ok(SinkId::new(id))
                } else {
                    Err(invalid("id is 1 to 64 letters, digits, `-`, `_` and `.`"))
                }
            })
            .transpose()?;
        options.finish()?;
        Ok(Self {
            id,
            target,
            layout,
            encrypt,
        })
    }

    /// Reads the URL of an environment's sink, its `…_from=` options naming its
    /// `secrets`; an `id=` in the URL is refused (the sink's `id` says it).
    pub fn of_settings(sink: &SinkSettings) -> Result<Self> {
        let lookup = |name: &str| sink.secrets.get(name).cloned();
        let url = Self::parse(&sink.url, Secrets::stored(&lookup))
            .map_err(|e| invalid(format!("sink `{}`: {}", sink.id, detail(e))))?;
        if url.id.is_some() {
            return Err(invalid(format!(
                "sink `{}`: no `id=` in the URL: the sink's `id` names it",
                sink.id
            )));
        }
        Ok(url)
    }

    /// The kind of place it is (which `video_copied_…` event its copies send).
    pub fn kind(&self) -> SinkKind {
        match self.target {
            #[cfg(feature = "sink-s3")]
            SinkTarget::S3(_) => SinkKind::S3,
            #[cfg(feature = "sink-sftp")]
            SinkTarget::Sftp(_) => SinkKind::Sftp,
            #[cfg(feature = "sink-ftps")]
            SinkTarget::Ftps(_) => SinkKind::Ftp,
            #[cfg(feature = "sink-azure")]
            SinkTarget::Azure(_) => SinkKind::Azure,
            #[cfg(feature = "sink-dropbox")]
            SinkTarget::Dropbox(_) => SinkKind::Dropbox,
            #[cfg(feature = "sink-gcs")]
            SinkTarget::Gcs(_) => SinkKind::Gcs,
            #[cfg(feature = "sink-local")]
            SinkTarget::Local(_) => SinkKind::Local,
        }
    }

    /// Makes the sink; `crypt` wraps it in an [`crate::EncryptedSink`] when the URL says
    /// `encrypt=true` (which without `crypt` is `Invalid`). Nothing is sent yet.
    pub fn open(&self, crypt: Option<&crate::crypt::Crypt>) -> Result<Arc<dyn StorageSink>> {
        self.open_as(self.kind(), crypt)
    }

    /// [`SinkUrl::open`], the sink telling its copies as `kind` rather than as the kind
    /// of place it is (a bucket that holds a server's own storage, say).
    pub fn open_as(
        &self,
        kind: SinkKind,
        crypt: Option<&crate::crypt::Crypt>,
    ) -> Result<Arc<dyn StorageSink>> {
        let sink: Arc<dyn StorageSink> = match &self.target {
            #[cfg(feature = "sink-s3")]
            SinkTarget::S3(s3) => Arc::new(crate::ObjectStoreSink::s3(s3, kind)?),
            #[cfg(feature = "sink-sftp")]
            SinkTarget::Sftp(sftp) => Arc::new(crate::SftpSink::new(sftp.clone(), kind)?),
            #[cfg(feature = "sink-ftps")]
            SinkTarget::Ftps(ftps) => Arc::new(crate::FtpsSink::new(ftps.clone(), kind)?),
            #[cfg(feature = "sink-azure")]
            SinkTarget::Azure(azure) => Arc::new(crate::ObjectStoreSink::azure(azure, kind)?),
            #[cfg(feature = "sink-dropbox")]
            SinkTarget::Dropbox(dropbox) => {
                Arc::new(crate::DropboxSink::new(dropbox.clone(), kind)?)
            }
            #[cfg(feature = "sink-gcs")]
            SinkTarget::Gcs(gcs) => Arc::new(crate::GcsSink::new(gcs.clone(), kind)?),
            #[cfg(feature = "sink-local")]
            SinkTarget::Local(dir) => Arc::new(crate::ObjectStoreSink::local(dir, kind)?),
        };
        match (self.encrypt, crypt) {
            (false, _) => Ok(sink),
            (true, Some(crypt)) => Ok(Arc::new(crate::EncryptedSink::new(sink, crypt.clone()))),
            (true, None) => Err(invalid(
                "encrypt=true needs encryption at rest on (the server's keys)",
            )),
        }
    }
}

impl SinkUrl {
    /// The same place one folder down (`s3://bucket/pipe` within `spool` is
    /// `s3://bucket/pipe/spool`), for parts that share one bucket or directory: an S3
    /// bucket or a local directory. [`Error::Invalid`](pipe_core::Error::Invalid) for the
    /// other kinds, and for a folder that is empty or has a `/`, `.` or `..` part.
    pub fn within(&self, folder: &str) -> Result<Self> {
        if folder.is_empty()
            || folder
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(invalid(format!("`{folder}` is not a folder name")));
        }
        let mut url = self.clone();
        match &mut url.target {
            #[cfg(feature = "sink-s3")]
            SinkTarget::S3(s3) => {
                s3.folder = Some(match s3.folder.as_deref().map(|f| f.trim_matches('/')) {
                    Some(parent) if !parent.is_empty() => format!("{parent}/{folder}"),
                    _ => folder.to_owned(),
                });
            }
            #[cfg(feature = "sink-local")]
            SinkTarget::Local(dir) => dir.push(folder),
            #[allow(unreachable_patterns)]
            _ => {
                return Err(invalid(
                    "a store divided into folders is an `s3://` or a `file://` URL",
                ));
            }
        }
        Ok(url)
    }

    /// The place this URL names as an `object_store` store, for what needs one rather than
    /// a sink ([`ObjectSpool`](crate::ObjectSpool)): an S3 bucket (and folder) or a local
    /// directory. [`Error::Invalid`](pipe_core::Error::Invalid) for the other kinds.
    pub fn object_store(&self) -> Result<Arc<dyn object_store::ObjectStore>> {
        match &self.target {
            #[cfg(feature = "sink-s3")]
            SinkTarget::S3(s3) => s3.object_store(),
            #[cfg(feature = "sink-local")]
            SinkTarget::Local(dir) => {
                std::fs::create_dir_all(dir)?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| invalid(e.to_string()))?;
                Ok(Arc::new(store))
            }
            #[allow(unreachable_patterns)]
            _ => Err(invalid(
                "an object store here is an `s3://` or a `file://` URL",
            )),
        }
    }
}

/// The schemes this build has.
const SCHEMES: &[&str] = &[
    #[cfg(feature = "sink-s3")]
    "`s3://`",
    #[cfg(feature = "sink-sftp")]
    "`sftp://`",
    #[cfg(feature = "sink-ftps")]
    "`ftps://`",
    #[cfg(feature = "sink-azure")]
    "`azure://`",
    #[cfg(feature = "sink-dropbox")]
    "`dropbox://`",
    #[cfg(feature = "sink-gcs")]
    "`gcs://`",
    #[cfg(feature = "sink-local")]
    "`file://`",
];

/// A comma-separated list of sink URLs (`PIPE_SINKS`), as the settings of an
/// environment's sinks: each checked whole, named by its `id=` or `<scheme>-<position>`,
/// its `…_from=<VAR>` options' values read through `env` into its secrets, and its
/// `…_file=<path>` options read into secrets too (so that the settings need neither the
/// server's environment nor its files again).
pub fn settings_from_list(
    list: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<SinkSettings>> {
    let mut sinks = Vec::new();
    for (n, text) in list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let position = n + 1;
        let at = |e: Error| invalid(format!("sink {position}: {}", detail(e)));
        let parsed = SinkUrl::parse(text, Secrets::server(env)).map_err(at)?;
        let url = url::Url::parse(text).map_err(|e| at(invalid(e.to_string())))?;
        let mut secrets = BTreeMap::new();
        let mut pairs = Vec::new();
        for (key, value) in url.query_pairs() {
            let (key, value) = (key.into_owned(), value.into_owned());
            if key == "id" {
                continue;
            }
            if key.ends_with("_from") {
                let secret = env(&value)
                    .ok_or_else(|| at(invalid(format!("{key} names {value}, which is not set"))))?;
                secrets.insert(value.clone(), secret);
            } else if let Some(option) = key.strip_suffix("_file") {
                let contents = std::fs::read_to_string(&value)
                    .map_err(|e| at(invalid(format!("{key} {value}: {e}"))))?;
                secrets.insert(key.clone(), contents);
                pairs.push((format!("{option}_from"), key));
                continue;
            }
            pairs.push((key, value));
        }
        let mut stored = url.clone();
        if pairs.is_empty() {
            stored.set_query(None);
        } else {
            stored.query_pairs_mut().clear().extend_pairs(pairs);
        }
        let id = parsed
            .id
            .unwrap_or_else(|| SinkId::new(format!("{}-{position}", url.scheme())));
        let mut sink = SinkSettings::new(id, stored.as_str());
        sink.secrets = secrets;
        sinks.push(sink);
    }
    Ok(sinks)
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::Invalid {
        what: "sink",
        detail: detail.into(),
    }
}

/// What an `Invalid` error says, without its "invalid sink:" prefix.
fn detail(e: Error) -> String {
    match e {
        Error::Invalid { detail, .. } => detail,
        other => other.to_string(),
    }
}

/// The options of one sink URL, taken one by one; what is left is unknown.
struct Options {
    pairs: Vec<(String, String)>,
}

impl Options {
    fn of(url: &url::Url) -> Result<Self> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, value) in url.query_pairs() {
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(invalid(format!("`{key}` given twice")));
            }
            pairs.push((key.into_owned(), value.into_owned()));
        }
        Ok(Self { pairs })
    }

    fn take(&mut self, key: &str) -> Option<String> {
        let at = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(at).1)
    }

    fn flag(&mut self, key: &str) -> Result<Option<bool>> {
        self.take(key)
            .map(|value| match value.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(invalid(format!("`{key}` is true or false, not {value:?}"))),
            })
            .transpose()
    }

    /// The value of the secret that option `key` names (`…_from=<name>`).
    #[allow(dead_code)] // Unused only in a build without any sink that has secrets.
    fn secret(&mut self, key: &str, secrets: Secrets<'_>) -> Result<Option<String>> {
        self.take(key)
            .map(|name| {
                (secrets.lookup)(&name).ok_or_else(|| {
                    invalid(format!(
                        "{key} names {} {name}, which is not set",
                        secrets.source
                    ))
                })
            })
            .transpose()
    }

    /// The contents of the file that option `key` names (`…_file=<path>`), where files
    /// may be read.
    #[allow(dead_code)] // Unused only in a build without SFTP, FTPS and GCS.
    fn file(&mut self, key: &str, secrets: Secrets<'_>) -> Result<Option<String>> {
        let Some(path) = self.take(key) else {
            return Ok(None);
        };
        if !secrets.files {
            return Err(invalid(format!(
                "{key} reads a file of the server, which only its own configuration may: \
                 give the contents as a secret instead"
            )));
        }
        std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| invalid(format!("{key} {path}: {e}")))
    }

    fn finish(self) -> Result<()> {
        match self.pairs.first() {
            Some((key, _)) => Err(invalid(format!("unknown option `{key}`"))),
            None => Ok(()),
        }
    }
}

#[cfg(feature = "sink-s3")]
fn s3(url: &url::Url, options: &mut Options, secrets: Secrets<'_>) -> Result<SinkTarget> {
    if !url.username().is_empty() {
        return Err(invalid(
            "no credentials in the URL: use access_key_id and secret_key_from",
        ));
    }
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid("s3:// needs a bucket"))?;
    let mut config = S3Config::new(bucket, "us-east-1");
    let folder = percent_decode(url.path());
    let folder = folder.trim_matches('/');
    if !folder.is_empty() {
        config = config.with_folder(folder);
    }
    if let Some(region) = options.take("region") {
        config.region = region;
    }
    if let Some(endpoint) = options.take("endpoint") {
        config = config.with_endpoint(http_url(endpoint)?);
    }
    if let Some(path_style) = options.flag("path_style")? {
        config = config.with_path_style(path_style);
    }
    if let Some(acl) = options.take("acl") {
        config = config.with_acl(acl);
    }
    if let Some(class) = options.take("storage_class") {
        config = config.with_storage_class(class);
    }
    config = config.with_encryption(
        match (options.take("sse").as_deref(), options.take("kms_key_id")) {
            (None, None) => S3Encryption::BucketDefault,
            (Some("AES256"), None) => S3Encryption::Aes256,
            (Some("aws:kms"), key) => S3Encryption::Kms(key.unwrap_or_default()),
            (None, Some(_)) => return Err(invalid("kms_key_id goes with sse=aws:kms")),
            (Some(other), _) => {
                return Err(invalid(format!(
                    "sse is `AES256` or `aws:kms`, not {other:?}"
                )));
            }
        },
    );
    let access_key = options.take("access_key_id");
    let secret = options.secret("secret_key_from", secrets)?;
    match (access_key, secret) {
        (Some(key), Some(secret)) => config = config.with_credentials(key, secret),
        (Some(_), None) => {
            return Err(invalid(
                "access_key_id needs secret_key_from, the secret that holds its secret",
            ));
        }
        (None, Some(_)) => return Err(invalid("secret_key_from goes with access_key_id")),
        (None, None) => {}
    }
    Ok(SinkTarget::S3(config))
}

#[cfg(feature = "sink-sftp")]
fn sftp(url: &url::Url, options: &mut Options, secrets: Secrets<'_>) -> Result<SinkTarget> {
    let (host, user) = host_and_user(url, "sftp")?;
    // A query decodes `+` as a space, and base64 fingerprints hold `+` but never a space:
    // one pasted from `ssh-keygen -lf` as it is must still match.
    let host_key = options
        .take("host_key")
        .ok_or_else(|| invalid("sftp:// needs host_key=SHA256:… (ssh-keygen -lf)"))?
        .replace(' ', "+");
    if !host_key.starts_with("SHA256:") {
        return Err(invalid("host_key is a SHA-256 fingerprint, `SHA256:…`"));
    }
    let password = options.secret("password_from", secrets)?;
    let key = options.secret("key_from", secrets)?;
    let key_file = options.file("key_file", secrets)?;
    let passphrase = options.secret("key_passphrase_from", secrets)?;
    let auth = match (password, key.or(key_file)) {
        (Some(password), None) => SftpAuth::Password(password),
        (None, Some(private_key)) => SftpAuth::Key {
            private_key,
            passphrase,
        },
        _ => {
            return Err(invalid(
                "sftp:// takes one of password_from, key_from and key_file",
            ));
        }
    };
    let config = SftpConfig::new(host, user, auth, host_key)
        .with_port(url.port().unwrap_or(22))
        .with_folder(login_folder(url));
    Ok(SinkTarget::Sftp(config))
}

#[cfg(feature = "sink-ftps")]
fn ftps(url: &url::Url, options: &mut Options, secrets: Secrets<'_>) -> Result<SinkTarget> {
    let (host, user) = host_and_user(url, "ftps")?;
    let password = options.secret("password_from", secrets)?.ok_or_else(|| {
        invalid("ftps:// needs password_from, the secret that holds the password")
    })?;
    let mut config = FtpsConfig::new(host, user, password)
        .with_port(url.port().unwrap_or(21))
        .with_folder(login_folder(url));
    let ca = options.secret("ca_from", secrets)?;
    let ca_file = options.file("ca_file", secrets)?;
    match (ca, ca_file) {
        (Some(_), Some(_)) => return Err(invalid("ftps:// takes ca_from or ca_file, not both")),
        (Some(pem), None) | (None, Some(pem)) => config = config.with_ca_pem(pem),
        (None, None) => {}
    }
    if options.flag("write_only")?.unwrap_or(false) {
        config = config.write_only();
    }
    Ok(SinkTarget::Ftps(config))
}

#[cfg(feature = "sink-azure")]
fn azure(url: &url::Url, options: &mut Options, secrets: Secrets<'_>) -> Result<SinkTarget> {
    if !url.username().is_empty() {
        return Err(invalid("no credentials in the URL: use access_key_from"));
    }
    let account = url
        .host_str()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid("azure:// needs an account: azure://<account>/<container>"))?;
    let path = percent_decode(url.path());
    let mut parts = path.trim_matches('/').splitn(2, '/');
    let container = parts
        .next()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid("azure:// needs a container: azure://<account>/<container>"))?;
    let mut config = AzureConfig::new(account, container);
    if let Some(folder) = parts.next() {
        config = config.with_folder(folder);
    }
    if let Some(key) = options.secret("access_key_from", secrets)? {
        config = config.with_access_key(key);
    }
    if let Some(endpoint) = options.take("endpoint") {
        config = config.with_endpoint(http_url(endpoint)?);
    }
    Ok(SinkTarget::Azure(config))
}

#[cfg(feature = "sink-dropbox")]
fn dropbox(url: &url::Url, options: &mut Options, secrets: Secrets<'_>) -> Result<SinkTarget> {
    if !url.username().is_empty() || url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(invalid(
            "dropbox:// takes a folder, dropbox:///recordings, and no credentials in the URL",
        ));
    }
    let app_key = options.take("app_key");
    let app_secret = options.secret("app_secret_from", secrets)?;
    let refresh_token = options.secret("refresh_token_from", secrets)?;
    let access_token = options.secret("access_token_from", secrets)?;
    let auth = match (app_key, app_secret, refresh_token, access_token) {
        (Some(key), Some(secret), Some(refresh), None) => {
            DropboxAuth::refresh_token(key, secret, refresh)
        }
        (None, None, None, Some(token)) => DropboxAuth::AccessToken(token),
        _ => {
            return Err(invalid(
                "dropbox:// takes app_key, app_secret_from and refresh_token_from (or only \
                 access_token_from)",
            ));
        }
    };
    let mut config = DropboxConfig::new(auth).with_folder(percent_decode(url.path()));
    match (
        options.take("api_endpoint"),
        options.take("content_endpoint"),
    ) {
        (Some(api), Some(content)) => {
            config = config.with_endpoints(http_url(api)?, http_url(content)?);
        }
        (None, None) => {}
        _ => return Err(invalid("api_endpoint and content_endpoint go together")),
    }
    Ok(SinkTarget::Dropbox(config))
}

#[cfg(feature = "sink-gcs")]
fn gcs(url: &url::Url, options: &mut Options, secrets: Secrets<'_>) -> Result<SinkTarget> {
    if !url.username().is_empty() {
        return Err(invalid(
            "no credentials in the URL: use credentials_from or access_token_from",
        ));
    }
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid("gcs:// needs a bucket: gcs://<bucket>[/<folder>]"))?;
    let key = match (
        options.secret("credentials_from", secrets)?,
        options.file("credentials_file", secrets)?,
    ) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "gcs:// takes credentials_from or credentials_file, not both",
            ));
        }
        (from, file) => from.or(file),
    };
    let token = options.secret("access_token_from", secrets)?;
    let anonymous = options.flag("anonymous")?.unwrap_or(false);
    let auth = match (key, token, anonymous) {
        (Some(key), None, false) => GcsAuth::ServiceAccount(key),
        (None, Some(token), false) => GcsAuth::AccessToken(token),
        (None, None, true) => GcsAuth::Anonymous,
        _ => {
            return Err(invalid(
                "gcs:// takes one login: credentials_from (a service account's key), \
                 credentials_file, access_token_from or anonymous=true",
            ));
        }
    };
    let mut config = GcsConfig::new(bucket, auth).with_folder(percent_decode(url.path()));
    if let Some(endpoint) = options.take("endpoint") {
        config = config.with_endpoint(http_url(endpoint)?);
    }
    Ok(SinkTarget::Gcs(config))
}

#[cfg(feature = "sink-local")]
fn local(url: &url::Url, secrets: Secrets<'_>) -> Result<SinkTarget> {
    if !secrets.files {
        return Err(invalid(
            "file:// writes to the server's disks, which only its own configuration may",
        ));
    }
    if url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(invalid("file:// takes a path, file:///srv/recordings"));
    }
    let dir = percent_decode(url.path());
    if dir.is_empty() || dir == "/" {
        return Err(invalid("file:// needs a directory, file:///srv/recordings"));
    }
    Ok(SinkTarget::Local(dir.into()))
}

#[allow(dead_code)] // Unused only in a build without S3, Azure, Dropbox and GCS.
fn http_url(endpoint: String) -> Result<String> {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        Ok(endpoint)
    } else {
        Err(invalid("endpoint is an http:// or https:// URL"))
    }
}

/// The host and the user of a URL that needs both.
#[allow(dead_code)] // Unused only in a build without SFTP and FTPS.
fn host_and_user(url: &url::Url, scheme: &str) -> Result<(String, String)> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid(format!("{scheme}:// needs a host")))?;
    let user = url.username();
    if user.is_empty() {
        return Err(invalid(format!(
            "{scheme}:// needs a user: {scheme}://user@host/folder"
        )));
    }
    Ok((host.to_owned(), percent_decode(user)))
}

/// The folder of an `sftp://` or `ftps://` URL: `/srv/x` is absolute; `/~/x` is `x` where
/// the user logs in (the home); `/` or none is there.
#[allow(dead_code)] // Unused only in a build without SFTP and FTPS.
fn login_folder(url: &url::Url) -> String {
    let path = percent_decode(url.path());
    match path.strip_prefix("/~") {
        Some(rest) => rest.trim_start_matches('/').to_owned(),
        None if path == "/" || path.is_empty() => String::new(),
        None => path,
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(all(test, feature = "test-servers"))]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "BUCKET_SECRET").then(|| "s3cr3t".to_owned())
    }

    fn parse(text: &str) -> Result<SinkUrl> {
        SinkUrl::parse(text, Secrets::server(&env))
    }

    #[test]
    fn a_full_s3_url_reads_every_option() {
        let url = parse(
            "s3://recordings/pipe/prod?region=eu-west-1&endpoint=http://127.0.0.1:9000\
             &path_style=true&acl=private&storage_class=STANDARD_IA&sse=aws:kms&kms_key_id=k1\
             &access_key_id=AKIA1&secret_key_from=BUCKET_SECRET&naming=by-recording\
             &encrypt=true&id=archive",
        )
        .unwrap();
        let expected = S3Config::new("recordings", "eu-west-1")
            .with_folder("pipe/prod")
            .with_endpoint("http://127.0.0.1:9000")
            .with_path_style(true)
            .with_acl("private")
            .with_storage_class("STANDARD_IA")
            .with_encryption(S3Encryption::Kms("k1".into()))
            .with_credentials("AKIA1", "s3cr3t");
        assert_eq!(
            url,
            SinkUrl {
                id: Some(SinkId::new("archive")),
                target: SinkTarget::S3(expected),
                layout: KeyLayout::ByRecording,
                encrypt: true,
            }
        );
        assert!(
            !format!("{url:?}").contains("s3cr3t"),
            "Debug shows the secret"
        );
    }

    #[test]
    fn within_names_a_folder_of_the_same_bucket_or_directory() {
        let folder = |url: &SinkUrl| match &url.target {
            SinkTarget::S3(s3) => s3.folder.clone(),
            other => panic!("not S3: {other:?}"),
        };
        let bucket = parse("s3://shared?region=eu-west-1").unwrap();
        assert_eq!(
            folder(&bucket.within("spool").unwrap()).as_deref(),
            Some("spool")
        );
        let nested = parse("s3://shared/pipe/prod/").unwrap();
        let staging = nested.within("staging").unwrap();
        assert_eq!(folder(&staging).as_deref(), Some("pipe/prod/staging"));
        assert_eq!(staging.kind(), SinkKind::S3);
        let dir = parse("file:///srv/pipe")
            .unwrap()
            .within("storage")
            .unwrap();
        assert_eq!(dir.target, SinkTarget::Local("/srv/pipe/storage".into()));
        for bad in ["", "..", "a//b", "a/./b"] {
            assert!(
                matches!(bucket.within(bad), Err(Error::Invalid { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_sftp_url_reads_its_login_host_key_and_folder() {
        let url = parse(
            "sftp://pipe%40corp@files.example.com:2222/srv/rec?host_key=SHA256:a+b/c\
             &password_from=BUCKET_SECRET",
        )
        .unwrap();
        let expected = SftpConfig::new(
            "files.example.com",
            "pipe@corp",
            SftpAuth::Password("s3cr3t".into()),
            "SHA256:a+b/c",
        )
        .with_port(2222)
        .with_folder("/srv/rec");
        assert_eq!(url.target, SinkTarget::Sftp(expected));
        let inbox = parse("sftp://u@h/~/inbox?host_key=SHA256:def&key_from=BUCKET_SECRET").unwrap();
        let SinkTarget::Sftp(inbox) = &inbox.target else {
            panic!("not SFTP: {inbox:?}");
        };
        assert_eq!((inbox.port, inbox.folder.as_str()), (22, "inbox"));
        assert!(
            matches!(&inbox.auth, SftpAuth::Key { private_key, .. } if private_key == "s3cr3t")
        );
    }

    #[test]
    fn an_ftps_url_reads_its_login_folder_and_options() {
        let ca = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca.path(), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let url = parse(&format!(
            "ftps://pipe@ftp.example.com:2121/~/drop?password_from=BUCKET_SECRET\
             &ca_file={}&write_only=true",
            ca.path().display()
        ))
        .unwrap();
        let expected = FtpsConfig::new("ftp.example.com", "pipe", "s3cr3t")
            .with_port(2121)
            .with_folder("drop")
            .with_ca_pem("-----BEGIN CERTIFICATE-----\n")
            .write_only();
        assert_eq!(url.target, SinkTarget::Ftps(expected));
        assert_eq!(url.kind(), SinkKind::Ftp);
        let plain = parse("ftps://u@h?password_from=BUCKET_SECRET").unwrap();
        let SinkTarget::Ftps(plain) = &plain.target else {
            panic!("not FTPS: {plain:?}");
        };
        assert_eq!((plain.port, plain.folder.as_str()), (21, ""));
        assert!(!plain.write_only && plain.ca_pem.is_none());
    }

    #[test]
    fn an_azure_url_reads_account_container_folder_and_key() {
        let url = parse(
            "azure://pipeacct/recordings/prod/eu?access_key_from=BUCKET_SECRET\
             &endpoint=http://127.0.0.1:10000/pipeacct",
        )
        .unwrap();
        let expected = AzureConfig::new("pipeacct", "recordings")
            .with_folder("prod/eu")
            .with_access_key("s3cr3t")
            .with_endpoint("http://127.0.0.1:10000/pipeacct");
        assert_eq!(url.target, SinkTarget::Azure(expected));
        assert_eq!(url.layout, KeyLayout::Flat);
        assert!(!url.encrypt);
    }

    #[test]
    fn a_dropbox_url_reads_its_app_and_tokens() {
        let url = parse(
            "dropbox:///Apps/Pipe?app_key=k1&app_secret_from=BUCKET_SECRET\
             &refresh_token_from=BUCKET_SECRET&api_endpoint=http://127.0.0.1:1\
             &content_endpoint=http://127.0.0.1:2",
        )
        .unwrap();
        let expected = DropboxConfig::new(DropboxAuth::refresh_token("k1", "s3cr3t", "s3cr3t"))
            .with_folder("/Apps/Pipe")
            .with_endpoints("http://127.0.0.1:1", "http://127.0.0.1:2");
        assert_eq!(url.target, SinkTarget::Dropbox(expected));
        assert_eq!(url.kind(), SinkKind::Dropbox);
        for (text, says) in [
            ("dropbox:///x?app_key=k", "takes app_key, app_secret_from"),
            (
                "dropbox://host/x?access_token_from=BUCKET_SECRET",
                "takes a folder",
            ),
            (
                "dropbox:///x?access_token_from=BUCKET_SECRET&api_endpoint=http://a",
                "go together",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn a_gcs_url_reads_bucket_folder_login_and_endpoint() {
        let url = parse(
            "gcs://pipe-recordings/prod/eu?credentials_from=BUCKET_SECRET\
             &endpoint=http://127.0.0.1:4443&naming=by-recording",
        )
        .unwrap();
        let expected = GcsConfig::new("pipe-recordings", GcsAuth::ServiceAccount("s3cr3t".into()))
            .with_folder("prod/eu")
            .with_endpoint("http://127.0.0.1:4443");
        assert_eq!(url.target, SinkTarget::Gcs(expected));
        assert_eq!(url.kind(), SinkKind::Gcs);
        assert_eq!(url.layout, KeyLayout::ByRecording);
        assert!(
            !format!("{url:?}").contains("s3cr3t"),
            "Debug shows the secret"
        );

        let token = parse("gcs://b?access_token_from=BUCKET_SECRET").unwrap();
        let expected = GcsConfig::new("b", GcsAuth::AccessToken("s3cr3t".into()));
        assert_eq!(token.target, SinkTarget::Gcs(expected));

        let emulator = parse("gcs://b/?anonymous=true&endpoint=http://127.0.0.1:4443").unwrap();
        let SinkTarget::Gcs(config) = &emulator.target else {
            panic!("not GCS: {emulator:?}");
        };
        assert_eq!(
            (
                &config.auth,
                config.folder.as_deref(),
                config.endpoint.as_str()
            ),
            (&GcsAuth::Anonymous, None, "http://127.0.0.1:4443")
        );
        let sink = emulator.open(None).unwrap();
        assert_eq!(sink.kind(), SinkKind::Gcs);
        assert_eq!(sink.location(), pipe_core::SinkLocation::bucket("b"));

        let key = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key.path(), r#"{"type": "service_account"}"#).unwrap();
        let from_file = parse(&format!(
            "gcs://b?credentials_file={}",
            key.path().display()
        ))
        .unwrap();
        let expected = GcsConfig::new(
            "b",
            GcsAuth::ServiceAccount(r#"{"type": "service_account"}"#.into()),
        );
        assert_eq!(from_file.target, SinkTarget::Gcs(expected));
        // In settings, the file's contents travel as a secret.
        let sinks = settings_from_list(
            &format!("gcs://b/f?credentials_file={}", key.path().display()),
            &env,
        )
        .unwrap();
        assert_eq!(sinks[0].id.as_str(), "gcs-1");
        assert_eq!(sinks[0].url, "gcs://b/f?credentials_from=credentials_file");
        SinkUrl::of_settings(&sinks[0]).unwrap();

        for (text, says) in [
            ("gcs://", "needs a bucket"),
            ("gcs://b", "takes one login"),
            (
                "gcs://b?anonymous=true&access_token_from=BUCKET_SECRET",
                "takes one login",
            ),
            (
                "gcs://b?credentials_from=BUCKET_SECRET&credentials_file=/nonexistent",
                "credentials_file /nonexistent",
            ),
            ("gcs://u@b?anonymous=true", "no credentials in the URL"),
            ("gcs://b?anonymous=yes", "true or false"),
            (
                "gcs://b?anonymous=true&endpoint=127.0.0.1",
                "http:// or https://",
            ),
            (
                "gcs://b?anonymous=true&region=eu",
                "unknown option `region`",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
        let stored = SinkSettings::new(SinkId::new("g"), "gcs://b?credentials_file=/etc/key.json");
        let error = SinkUrl::of_settings(&stored).unwrap_err().to_string();
        assert!(error.contains("reads a file of the server"), "{error}");
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("ftp://host/x", "`ftp://` is not a sink"),
            (
                "sftp://host/x?host_key=SHA256:x&password_from=BUCKET_SECRET",
                "needs a user",
            ),
            (
                "sftp://u@host/x?password_from=BUCKET_SECRET",
                "needs host_key",
            ),
            ("sftp://u@host/x?host_key=SHA256:x", "one of password_from"),
            (
                "sftp://u:pw@host/x?host_key=SHA256:x",
                "no password in the URL",
            ),
            ("ftps://h/x?password_from=BUCKET_SECRET", "needs a user"),
            ("ftps://u@h/x", "needs password_from"),
            (
                "ftps://u@h/x?password_from=BUCKET_SECRET&ca_file=/nonexistent/ca.pem",
                "ca_file /nonexistent/ca.pem",
            ),
            ("azure://acct", "needs a container"),
            ("azure://u@acct/c", "no credentials in the URL"),
            ("s3://", "needs a bucket"),
            ("s3://b?colour=red", "unknown option `colour`"),
            ("s3://b?region=a&region=b", "`region` given twice"),
            ("s3://b?access_key_id=A", "needs secret_key_from"),
            (
                "s3://b?access_key_id=A&secret_key_from=NOPE",
                "the variable NOPE, which is not set",
            ),
            ("s3://user@b", "no credentials in the URL"),
            ("s3://b?sse=rot13", "sse is `AES256` or `aws:kms`"),
            ("s3://b?path_style=yes", "true or false"),
            ("s3://a?id=a/b", "id is 1 to 64"),
            ("s3://a?endpoint=127.0.0.1", "http:// or https://"),
            ("file:///", "needs a directory"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn settings_take_secrets_from_their_own_map_and_never_read_files() {
        let sink = SinkSettings::new(SinkId::new("drop"), "ftps://u@h/x?password_from=password")
            .with_secret("password", "from-the-map");
        let url = SinkUrl::of_settings(&sink).unwrap();
        let SinkTarget::Ftps(ftps) = &url.target else {
            panic!("not FTPS: {url:?}");
        };
        assert_eq!(ftps.password, "from-the-map");
        for (text, says) in [
            (
                "sftp://u@h/x?host_key=SHA256:x&key_file=/etc/shadow",
                "key_file reads a file of the server",
            ),
            (
                "ftps://u@h/x?password_from=missing",
                "the secret missing, which is not set",
            ),
            ("s3://b?id=other", "no `id=` in the URL"),
            ("file:///srv/x", "only its own configuration"),
        ] {
            let error = SinkUrl::of_settings(&SinkSettings::new(SinkId::new("s"), text))
                .unwrap_err()
                .to_string();
            assert!(error.contains(says), "{text}: {error}");
            assert!(error.contains("sink `s`"), "{error}");
        }
    }

    #[test]
    fn a_list_becomes_settings_with_its_secrets_and_files_inside() {
        let key = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(key.path(), "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
        let list = format!(
            "s3://a/f?access_key_id=AK&secret_key_from=BUCKET_SECRET&id=archive, \
             sftp://u@h/x?host_key=SHA256:x&key_file={}",
            key.path().display()
        );
        let sinks = settings_from_list(&list, &env).unwrap();
        assert_eq!(sinks[0].id.as_str(), "archive");
        assert_eq!(
            sinks[0].url,
            "s3://a/f?access_key_id=AK&secret_key_from=BUCKET_SECRET"
        );
        assert_eq!(sinks[0].secrets["BUCKET_SECRET"], "s3cr3t");
        assert_eq!(sinks[1].id.as_str(), "sftp-2");
        assert_eq!(
            sinks[1].url,
            "sftp://u@h/x?host_key=SHA256%3Ax&key_from=key_file"
        );
        assert_eq!(
            sinks[1].secrets["key_file"],
            "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        );
        // What was made reads back as settings, without the server's variables or files.
        for sink in &sinks {
            SinkUrl::of_settings(sink).unwrap();
        }
        let error = settings_from_list("s3://a, s3://b?colour=red", &env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("sink 2: unknown option `colour`"), "{error}");
    }
}
