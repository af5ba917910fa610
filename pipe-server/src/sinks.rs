//! `PIPE_SINKS`: the customer storages every recording is copied to, as URLs.
//!
//! ```text
//! PIPE_SINKS=<sink>[,<sink>…]
//! <sink>    = s3://<bucket>[/<folder>][?<option>[&<option>…]]
//!           | sftp://<user>@<host>[:<port>][/<folder>]?host_key=SHA256:…&<login>[&<option>…]
//!           | azure://<account>/<container>[/<folder>][?<option>[&<option>…]]
//!           | ftps://<user>@<host>[:<port>][/<folder>]?password_from=<VAR>[&<option>…]
//! ```
//!
//! Options of every sink (each option at most once):
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `naming` | `pipe` (`<name>.mp4`, `<name>.jpg`, `<name>_raw.<ext>` side by side, as the hosted Pipe) or `by-recording` (a folder per recording) | `pipe` |
//! | `encrypt` | `true` to store only ciphertext (Pipe's encryption at rest, with the server's keys) | `false` |
//! | `id` | the sink's name in copies and logs | `s3-<position>`, `sftp-<position>`, `azure-<position>`, `ftps-<position>` |
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
//! | `secret_key_from` | the name of the environment variable that holds its secret (never the secret itself: URLs end up in logs) | `AWS_SECRET_ACCESS_KEY` |
//!
//! Without `access_key_id`, credentials come from AWS's standard variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or the instance's
//! role.
//!
//! Options of `sftp://`: `host_key` (required: the server's key as its SHA-256
//! fingerprint, what `ssh-keygen -lf` prints; any other key is refused), and one login:
//! `password_from=<VAR>` (the variable holding the password), `key_from=<VAR>` (the
//! variable holding an OpenSSH private key) or `key_file=<path>`, with
//! `key_passphrase_from=<VAR>` for a key that has one. The folder is absolute (`/srv/x`);
//! `/~/x` is `x` in the user's home, and no folder is the home.
//!
//! Options of `azure://`: `access_key_from=<VAR>` (the variable holding the account's key;
//! without it, Azure's usual variables or a managed identity), `endpoint` (another
//! address than `https://<account>.blob.core.windows.net`, such as an emulator's
//! `http://127.0.0.1:10000/<account>`). Copies are told as `video_copied_azure` (Pipe has
//! no Azure).
//!
//! Options of `ftps://` (FTP with explicit TLS; the port defaults to 21):
//! `password_from=<VAR>` (required: the variable holding the password), `ca_file=<path>`
//! (a PEM file of the CA the server's certificate must chain to, for servers with a
//! certificate of their own; without it, the system's roots), `write_only=true` (a drop
//! folder that refuses downloads: copies are checked by what was sent and the size the
//! server reports, and nothing is read back). The folder reads as SFTP's. Copies are told
//! as `video_copied_ftp`, as Pipe does.
//!
//! Every environment's recordings go to these sinks (per-environment sinks are to come).

use std::collections::BTreeSet;

use pipe_core::SinkId;
use pipe_lifecycle::KeyLayout;
use pipe_storage::{AzureConfig, FtpsConfig, S3Config, S3Encryption, SftpAuth, SftpConfig};

use crate::OWN_STORAGE;
use crate::config::ConfigError;

/// One sink of `PIPE_SINKS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    /// Its name.
    pub id: SinkId,
    /// Where it is.
    pub target: SinkTarget,
    /// How files are named in it.
    pub layout: KeyLayout,
    /// Whether only ciphertext goes there.
    pub encrypt: bool,
}

/// The kinds of place a [`SinkSpec`] names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkTarget {
    /// A bucket of S3 or of a service that speaks its API.
    S3(S3Config),
    /// A folder on an SFTP server.
    Sftp(SftpConfig),
    /// A container of Azure Blob Storage.
    Azure(AzureConfig),
    /// A folder on an FTP server, explicit TLS.
    Ftps(FtpsConfig),
}

const SETTING: &str = "PIPE_SINKS";

fn invalid(detail: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: SETTING,
        detail: detail.into(),
    }
}

/// Parses `PIPE_SINKS`; `env` reads the variables that options name.
pub fn parse(
    list: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<SinkSpec>, ConfigError> {
    let mut specs = Vec::new();
    let mut ids = BTreeSet::new();
    for (n, text) in list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let spec = parse_one(text, n + 1, env)?;
        if spec.id.as_str() == OWN_STORAGE || !ids.insert(spec.id.clone()) {
            return Err(invalid(format!(
                "sink id `{}` is taken: give each sink its own `id=`",
                spec.id
            )));
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// The options of one sink URL, taken one by one; what is left is unknown.
struct Options {
    position: usize,
    pairs: Vec<(String, String)>,
}

impl Options {
    fn take(&mut self, key: &str) -> Option<String> {
        let at = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(at).1)
    }

    fn flag(&mut self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.take(key)
            .map(|value| match value.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(self.error(format!("`{key}` is true or false, not {value:?}"))),
            })
            .transpose()
    }

    /// The value of the variable that option `key` names (`…_from=VAR`).
    fn secret(
        &mut self,
        key: &str,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, ConfigError> {
        self.take(key)
            .map(|var| {
                env(&var).ok_or_else(|| self.error(format!("{key} names {var}, which is not set")))
            })
            .transpose()
    }

    fn error(&self, detail: impl std::fmt::Display) -> ConfigError {
        invalid(format!("sink {}: {detail}", self.position))
    }

    fn finish(self) -> Result<(), ConfigError> {
        match self.pairs.first() {
            Some((key, _)) => Err(self.error(format!("unknown option `{key}`"))),
            None => Ok(()),
        }
    }
}

fn parse_one(
    text: &str,
    position: usize,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SinkSpec, ConfigError> {
    let url = url::Url::parse(text).map_err(|e| invalid(format!("sink {position}: {e}")))?;
    let mut options = Options {
        position,
        pairs: Vec::new(),
    };
    for (key, value) in url.query_pairs() {
        if options.pairs.iter().any(|(k, _)| *k == key) {
            return Err(options.error(format!("`{key}` given twice")));
        }
        options.pairs.push((key.into_owned(), value.into_owned()));
    }
    if url.password().is_some() {
        return Err(options.error(
            "no password in the URL (URLs end up in logs): name the variable that holds it",
        ));
    }
    let (target, default_id) = match url.scheme() {
        "s3" => (s3(&url, &mut options, env)?, format!("s3-{position}")),
        "sftp" => (sftp(&url, &mut options, env)?, format!("sftp-{position}")),
        "azure" => (azure(&url, &mut options, env)?, format!("azure-{position}")),
        "ftps" => (ftps(&url, &mut options, env)?, format!("ftps-{position}")),
        other => {
            return Err(options.error(format!(
                "`{other}://` is not a sink this server has (it has `s3://`, `sftp://`, \
                 `azure://` and `ftps://`)"
            )));
        }
    };
    let layout = match options.take("naming").as_deref() {
        None | Some("pipe") => KeyLayout::Flat,
        Some("by-recording") => KeyLayout::ByRecording,
        Some(other) => {
            return Err(options.error(format!("naming is `pipe` or `by-recording`, not {other:?}")));
        }
    };
    let encrypt = options.flag("encrypt")?.unwrap_or(false);
    let id = match options.take("id") {
        Some(id)
            if !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
        {
            id
        }
        Some(_) => return Err(options.error("id is letters, digits, `-`, `_` and `.`")),
        None => default_id,
    };
    options.finish()?;
    Ok(SinkSpec {
        id: SinkId::new(id),
        target,
        layout,
        encrypt,
    })
}

fn s3(
    url: &url::Url,
    options: &mut Options,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SinkTarget, ConfigError> {
    if !url.username().is_empty() {
        return Err(
            options.error("no credentials in the URL: use access_key_id and secret_key_from")
        );
    }
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| options.error("s3:// needs a bucket"))?;
    let mut config = S3Config::new(bucket, "us-east-1");
    let folder = url.path().trim_matches('/');
    if !folder.is_empty() {
        config = config.with_folder(folder);
    }
    if let Some(region) = options.take("region") {
        config.region = region;
    }
    if let Some(endpoint) = options.take("endpoint") {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(options.error("endpoint is an http:// or https:// URL"));
        }
        config = config.with_endpoint(endpoint);
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
            (None, Some(_)) => return Err(options.error("kms_key_id goes with sse=aws:kms")),
            (Some(other), _) => {
                return Err(options.error(format!("sse is `AES256` or `aws:kms`, not {other:?}")));
            }
        },
    );
    let access_key = options.take("access_key_id");
    let secret = options.secret("secret_key_from", env)?;
    match (access_key, secret) {
        (Some(key), Some(secret)) => config = config.with_credentials(key, secret),
        (Some(_), None) => {
            return Err(options
                .error("access_key_id needs secret_key_from, the variable that holds its secret"));
        }
        (None, Some(_)) => return Err(options.error("secret_key_from goes with access_key_id")),
        (None, None) => {}
    }
    Ok(SinkTarget::S3(config))
}

fn sftp(
    url: &url::Url,
    options: &mut Options,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SinkTarget, ConfigError> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| options.error("sftp:// needs a host"))?;
    let user = url.username();
    if user.is_empty() {
        return Err(options.error("sftp:// needs a user: sftp://user@host/folder"));
    }
    let user = percent_decode(user);
    // A query decodes `+` as a space, and base64 fingerprints hold `+` but never a space:
    // one pasted from `ssh-keygen -lf` as it is must still match.
    let host_key = options
        .take("host_key")
        .ok_or_else(|| options.error("sftp:// needs host_key=SHA256:… (ssh-keygen -lf)"))?
        .replace(' ', "+");
    if !host_key.starts_with("SHA256:") {
        return Err(options.error("host_key is a SHA-256 fingerprint, `SHA256:…`"));
    }
    let password = options.secret("password_from", env)?;
    let key = options.secret("key_from", env)?;
    let key_file = options.take("key_file");
    let passphrase = options.secret("key_passphrase_from", env)?;
    let auth = match (password, key, key_file) {
        (Some(password), None, None) => SftpAuth::Password(password),
        (None, Some(private_key), None) => SftpAuth::Key {
            private_key,
            passphrase,
        },
        (None, None, Some(path)) => SftpAuth::Key {
            private_key: std::fs::read_to_string(&path)
                .map_err(|e| options.error(format!("key_file {path}: {e}")))?,
            passphrase,
        },
        _ => {
            return Err(options.error("sftp:// takes one of password_from, key_from and key_file"));
        }
    };
    let config = SftpConfig::new(host, user, auth, host_key)
        .with_port(url.port().unwrap_or(22))
        .with_folder(login_folder(url));
    Ok(SinkTarget::Sftp(config))
}

/// The folder of an `sftp://` or `ftps://` URL: `/srv/x` is absolute; `/~/x` is `x` where
/// the user logs in (the home); `/` or none is there.
fn login_folder(url: &url::Url) -> String {
    let path = percent_decode(url.path());
    match path.strip_prefix("/~") {
        Some(rest) => rest.trim_start_matches('/').to_owned(),
        None if path == "/" || path.is_empty() => String::new(),
        None => path,
    }
}

fn ftps(
    url: &url::Url,
    options: &mut Options,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SinkTarget, ConfigError> {
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| options.error("ftps:// needs a host"))?;
    let user = url.username();
    if user.is_empty() {
        return Err(options.error("ftps:// needs a user: ftps://user@host/folder"));
    }
    let password = options.secret("password_from", env)?.ok_or_else(|| {
        options.error("ftps:// needs password_from, the variable that holds the password")
    })?;
    let mut config = FtpsConfig::new(host, percent_decode(user), password)
        .with_port(url.port().unwrap_or(21))
        .with_folder(login_folder(url));
    if let Some(path) = options.take("ca_file") {
        let pem = std::fs::read_to_string(&path)
            .map_err(|e| options.error(format!("ca_file {path}: {e}")))?;
        config = config.with_ca_pem(pem);
    }
    if options.flag("write_only")?.unwrap_or(false) {
        config = config.write_only();
    }
    Ok(SinkTarget::Ftps(config))
}

fn azure(
    url: &url::Url,
    options: &mut Options,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SinkTarget, ConfigError> {
    if !url.username().is_empty() {
        return Err(options.error("no credentials in the URL: use access_key_from"));
    }
    let account = url
        .host_str()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| options.error("azure:// needs an account: azure://<account>/<container>"))?;
    let path = percent_decode(url.path());
    let mut parts = path.trim_matches('/').splitn(2, '/');
    let container = parts.next().filter(|c| !c.is_empty()).ok_or_else(|| {
        options.error("azure:// needs a container: azure://<account>/<container>")
    })?;
    let mut config = AzureConfig::new(account, container);
    if let Some(folder) = parts.next() {
        config = config.with_folder(folder);
    }
    if let Some(key) = options.secret("access_key_from", env)? {
        config = config.with_access_key(key);
    }
    if let Some(endpoint) = options.take("endpoint") {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(options.error("endpoint is an http:// or https:// URL"));
        }
        config = config.with_endpoint(endpoint);
    }
    Ok(SinkTarget::Azure(config))
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "BUCKET_SECRET").then(|| "s3cr3t".to_owned())
    }

    #[test]
    fn a_full_s3_url_reads_every_option() {
        let specs = parse(
            "s3://recordings/pipe/prod?region=eu-west-1&endpoint=http://127.0.0.1:9000\
             &path_style=true&acl=private&storage_class=STANDARD_IA&sse=aws:kms&kms_key_id=k1\
             &access_key_id=AKIA1&secret_key_from=BUCKET_SECRET&naming=by-recording\
             &encrypt=true&id=archive",
            &env,
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
            specs,
            [SinkSpec {
                id: SinkId::new("archive"),
                target: SinkTarget::S3(expected),
                layout: KeyLayout::ByRecording,
                encrypt: true,
            }]
        );
        assert!(
            !format!("{specs:?}").contains("s3cr3t"),
            "Debug shows the secret"
        );
    }

    #[test]
    fn an_sftp_url_reads_its_login_host_key_and_folder() {
        let specs = parse(
            "sftp://pipe%40corp@files.example.com:2222/srv/rec?host_key=SHA256:a+b/c\
             &password_from=BUCKET_SECRET,\
             sftp://u@h/~/inbox?host_key=SHA256:def&key_from=BUCKET_SECRET&id=inbox",
            &env,
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
        assert_eq!(specs[0].target, SinkTarget::Sftp(expected));
        assert_eq!(specs[0].id.as_str(), "sftp-1");
        let SinkTarget::Sftp(inbox) = &specs[1].target else {
            panic!("not SFTP: {specs:?}");
        };
        assert_eq!((inbox.port, inbox.folder.as_str()), (22, "inbox"));
        assert!(
            matches!(&inbox.auth, SftpAuth::Key { private_key, .. } if private_key == "s3cr3t")
        );
        assert!(
            !format!("{specs:?}").contains("s3cr3t"),
            "Debug shows a secret"
        );
    }

    #[test]
    fn an_azure_url_reads_account_container_folder_and_key() {
        let specs = parse(
            "azure://pipeacct/recordings/prod/eu?access_key_from=BUCKET_SECRET\
             &endpoint=http://127.0.0.1:10000/pipeacct",
            &env,
        )
        .unwrap();
        let expected = AzureConfig::new("pipeacct", "recordings")
            .with_folder("prod/eu")
            .with_access_key("s3cr3t")
            .with_endpoint("http://127.0.0.1:10000/pipeacct");
        assert_eq!(specs[0].target, SinkTarget::Azure(expected));
        assert_eq!(specs[0].id.as_str(), "azure-1");
        for (list, says) in [
            ("azure://acct", "needs a container"),
            ("azure://u@acct/c", "no credentials in the URL"),
        ] {
            let error = parse(list, &env).unwrap_err().to_string();
            assert!(error.contains(says), "{list}: {error}");
        }
    }

    #[test]
    fn an_ftps_url_reads_its_login_folder_and_options() {
        let ca = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca.path(), "-----BEGIN CERTIFICATE-----\n").unwrap();
        let list = format!(
            "ftps://pipe@ftp.example.com:2121/~/drop?password_from=BUCKET_SECRET\
             &ca_file={}&write_only=true,ftps://u@h?password_from=BUCKET_SECRET",
            ca.path().display()
        );
        let specs = parse(&list, &env).unwrap();
        let expected = FtpsConfig::new("ftp.example.com", "pipe", "s3cr3t")
            .with_port(2121)
            .with_folder("drop")
            .with_ca_pem("-----BEGIN CERTIFICATE-----\n")
            .write_only();
        assert_eq!(specs[0].target, SinkTarget::Ftps(expected));
        assert_eq!(specs[0].id.as_str(), "ftps-1");
        let SinkTarget::Ftps(plain) = &specs[1].target else {
            panic!("not FTPS: {specs:?}");
        };
        assert_eq!((plain.port, plain.folder.as_str()), (21, ""));
        assert!(!plain.write_only && plain.ca_pem.is_none());
        assert!(
            !format!("{specs:?}").contains("s3cr3t"),
            "Debug shows the password"
        );
        for (list, says) in [
            ("ftps://h/x?password_from=BUCKET_SECRET", "needs a user"),
            ("ftps://u@h/x", "needs password_from"),
            (
                "ftps://u:pw@h/x?password_from=BUCKET_SECRET",
                "no password in the URL",
            ),
            (
                "ftps://u@h/x?password_from=BUCKET_SECRET&ca_file=/nonexistent/ca.pem",
                "ca_file /nonexistent/ca.pem",
            ),
        ] {
            let error = parse(list, &env).unwrap_err().to_string();
            assert!(error.contains(says), "{list}: {error}");
        }
    }

    #[test]
    fn defaults_and_several_sinks() {
        let specs = parse("s3://a, s3://b/x?region=us-west-2", &env).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].id.as_str(), "s3-1");
        assert_eq!(specs[1].id.as_str(), "s3-2");
        assert_eq!(specs[0].layout, KeyLayout::Flat);
        assert!(!specs[0].encrypt);
        let SinkTarget::S3(b) = &specs[1].target else {
            panic!("not S3: {specs:?}");
        };
        assert_eq!((b.bucket.as_str(), b.region.as_str()), ("b", "us-west-2"));
        assert_eq!(b.folder.as_deref(), Some("x"));
        assert_eq!(
            b.credentials, None,
            "AWS's variables, read by the S3 client"
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (list, says) in [
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
            ("s3://", "needs a bucket"),
            ("s3://b?colour=red", "unknown option `colour`"),
            ("s3://b?region=a&region=b", "`region` given twice"),
            ("s3://b?access_key_id=A", "needs secret_key_from"),
            (
                "s3://b?access_key_id=A&secret_key_from=NOPE",
                "NOPE, which is not set",
            ),
            ("s3://user@b", "no credentials in the URL"),
            ("s3://b?sse=rot13", "sse is `AES256` or `aws:kms`"),
            ("s3://b?path_style=yes", "true or false"),
            ("s3://a?id=x,s3://b?id=x", "`x` is taken"),
            ("s3://a?id=pipe", "`pipe` is taken"),
            ("s3://a?endpoint=127.0.0.1", "http:// or https://"),
        ] {
            let error = parse(list, &env).unwrap_err().to_string();
            assert!(error.contains(says), "{list}: {error}");
            assert!(error.starts_with("PIPE_SINKS"), "{error}");
        }
    }
}
