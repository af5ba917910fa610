//! The server's configuration: a TOML file, then environment variables over it, then
//! embedded defaults for everything left unset.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pipe_core::{BodyEncoding, EventFilter, WireFormat};
use pipe_ingest::HostAllowList;
use pipe_webhook::{AddressPolicy, IpNet};
use serde::Deserialize;

/// Everything `pipe serve` needs to know. Its `Debug` output leaves the webhook secret out.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where to listen (`PIPE_LISTEN`, default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Catalog, spool, working files and the server's own storage (`PIPE_DATA_DIR`,
    /// default `./pipe-data`).
    pub data_dir: PathBuf,
    /// The URL the server is reached at from outside, used in the links of webhooks
    /// (`PIPE_PUBLIC_URL`, default `http://<listen>`).
    pub public_url: String,
    /// Where webhooks go (`PIPE_WEBHOOK_URL`; none: no webhooks).
    pub webhook_url: Option<String>,
    /// The `whsec_…` secret of the Standard Webhooks signature (`PIPE_WEBHOOK_SECRET`).
    pub webhook_secret: Option<String>,
    /// The wire format of the webhook endpoint (`PIPE_WEBHOOK_FORMAT`: `standard`, the
    /// default, or `pipe` for receivers written for the hosted Pipe).
    pub webhook_format: WireFormat,
    /// Pipe's webhook key, which signs `X-Pipe-Signature` (`PIPE_WEBHOOK_KEY`; needed by
    /// the `pipe` format).
    pub webhook_key: Option<String>,
    /// How the JSON travels (`PIPE_WEBHOOK_CONTENT_TYPE`: `json`, the default, or `form`,
    /// Pipe's `payload=<json>`; `form` goes only with the `pipe` format).
    pub webhook_encoding: BodyEncoding,
    /// The events the endpoint gets (`PIPE_WEBHOOK_EVENTS`, comma-separated names; unset
    /// or `all`: every event of its format).
    pub webhook_events: EventFilter,
    /// Networks webhooks may be sent to although the SSRF guard refuses them: loopback,
    /// private, link-local… (`PIPE_WEBHOOK_ALLOW_ADDRESSES`, comma-separated addresses
    /// or CIDR networks such as `127.0.0.1,10.1.0.0/16`; default none: public addresses
    /// only).
    pub webhook_addresses: AddressPolicy,
    /// Hosts allowed to record (`PIPE_ALLOWED_HOSTS`, comma-separated; empty: any).
    pub allowed_hosts: HostAllowList,
    /// How long links in webhooks stay valid (`PIPE_LINK_TTL_SECS`, default 7 days).
    pub link_ttl: Duration,
    /// Job workers (`PIPE_WORKERS`, default 2).
    pub workers: usize,
    /// The largest recording or upload in bytes (`PIPE_MAX_RECORDING_BYTES`, default
    /// 2 GiB); an environment may set a lower limit.
    pub max_recording_bytes: u64,
    /// HTTP connections open at once, not counting upgraded streams
    /// (`PIPE_MAX_CONNECTIONS`, default 4096, lowered to fit the open-file limit).
    pub max_connections: usize,
    /// Time a client has to send a request's head, which is also the longest a
    /// keep-alive connection stays idle (`PIPE_HEADER_TIMEOUT_SECS`, default 20).
    pub header_timeout: Duration,
    /// Whether the spool and the server's own storage are encrypted at rest
    /// (`PIPE_ENCRYPTION`, `on` or `off`, default `on`). Keys come from
    /// `PIPE_ENCRYPTION_KEYS` (`id:base64,…`, the last current) or, when it is unset, from
    /// `<data>/keys/`, where the first start generates one.
    pub encryption: bool,
    /// A second address serving only `GET /metrics`, without an API key
    /// (`PIPE_METRICS_LISTEN`; none: metrics only at `/metrics` with a key).
    pub metrics_listen: Option<SocketAddr>,
    /// The PEM certificate chain and private key to serve HTTPS and WSS with
    /// (`PIPE_TLS_CERT` and `PIPE_TLS_KEY`, both or neither); SIGHUP reloads them.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The customer storages the first environment copies its recordings to
    /// (`PIPE_SINKS`; see [`crate::sinks`]).
    pub sinks: Vec<pipe_core::SinkSettings>,
    /// How long audit entries are kept (`PIPE_AUDIT_RETENTION_DAYS`, default 365); older
    /// ones are removed, and the removal is audited.
    pub audit_retention: Duration,
    /// Scheduled backups, when `PIPE_BACKUP_DESTINATIONS` names where to.
    pub backups: Option<BackupConfig>,
    /// The catalog on PostgreSQL, shared by every node (`PIPE_CATALOG_URL`,
    /// `postgres://user:password@host:port/database`); none: the SQLite file in the data
    /// directory.
    pub catalog_url: Option<String>,
    /// The object store every node shares (`PIPE_SHARED_STORAGE`, a sink URL: `s3://…`,
    /// or `file:///…` on a file system every node mounts): recordings in progress
    /// (`spool/`), the server's own storage (`storage/`) and converted files waiting for
    /// their copies (`staging/`). None: all three in the data directory, for one node.
    pub shared_storage: Option<pipe_storage::sink_url::SinkUrl>,
    /// The key of resume tokens and download links, the same on every node
    /// (`PIPE_SERVER_SECRET`, 64 hex digits); none: `<data>/server.secret`, made at the
    /// first start.
    pub server_secret: Option<String>,
}

/// Scheduled backups: where to, how often, under which passphrase.
#[derive(Clone)]
pub struct BackupConfig {
    /// Each destination's name (`<scheme>-<position>`) and URL, read
    /// (`PIPE_BACKUP_DESTINATIONS`, comma-separated sink URLs, as `PIPE_SINKS`; two are
    /// recommended, in different places).
    pub destinations: Vec<(String, pipe_storage::sink_url::SinkUrl)>,
    /// The passphrase (`PIPE_BACKUP_PASSPHRASE`, at least 12 characters).
    pub passphrase: String,
    /// How often (`PIPE_BACKUP_EVERY_SECS`, default 86400: daily).
    pub every: Duration,
}

impl std::fmt::Debug for BackupConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupConfig")
            .field(
                "destinations",
                &self.destinations.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("passphrase", &"<redacted>")
            .field("every", &self.every)
            .finish()
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("public_url", &self.public_url)
            .field("webhook_url", &self.webhook_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("webhook_format", &self.webhook_format)
            .field(
                "webhook_key",
                &self.webhook_key.as_ref().map(|_| "<redacted>"),
            )
            .field("webhook_encoding", &self.webhook_encoding)
            .field("webhook_events", &self.webhook_events)
            .field("webhook_addresses", &self.webhook_addresses.allowed())
            .field("allowed_hosts", &self.allowed_hosts)
            .field("link_ttl", &self.link_ttl)
            .field("workers", &self.workers)
            .field("max_recording_bytes", &self.max_recording_bytes)
            .field("max_connections", &self.max_connections)
            .field("header_timeout", &self.header_timeout)
            .field("encryption", &self.encryption)
            .field("metrics_listen", &self.metrics_listen)
            .field("tls", &self.tls)
            .field("sinks", &self.sinks)
            .field("audit_retention", &self.audit_retention)
            .field("backups", &self.backups)
            .field(
                "catalog_url",
                &self.catalog_url.as_ref().map(|url| redact_password(url)),
            )
            .field("shared_storage", &self.shared_storage)
            .field(
                "server_secret",
                &self.server_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// `url` with its password, if any, replaced by `<redacted>`.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:<redacted>{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A configuration that could not be read; says which setting and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A setting has a value that does not parse.
    #[error("{setting}: {detail}")]
    Invalid {
        /// The setting (environment variable or file key).
        setting: &'static str,
        /// Why.
        detail: String,
    },
}

/// The TOML file's shape: the same settings as the environment, in lowercase.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    public_url: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
    webhook_format: Option<String>,
    webhook_key: Option<String>,
    webhook_content_type: Option<String>,
    webhook_events: Option<Vec<String>>,
    webhook_allow_addresses: Option<Vec<String>>,
    allowed_hosts: Option<Vec<String>>,
    link_ttl_secs: Option<u64>,
    workers: Option<usize>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    max_recording_bytes: Option<u64>,
    encryption: Option<bool>,
    metrics_listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    sinks: Option<Vec<String>>,
    audit_retention_days: Option<u64>,
    backup_destinations: Option<Vec<String>>,
    backup_passphrase: Option<String>,
    backup_every_secs: Option<u64>,
    catalog_url: Option<String>,
    shared_storage: Option<String>,
    server_secret: Option<String>,
}

impl Config {
    /// Reads `file` (if given), then the `PIPE_*` variables of `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut f = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_owned(),
                    source: Box::new(source),
                })?
            }
            None => FileConfig::default(),
        };
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let listen = env("PIPE_LISTEN")
            .or(f.listen.take())
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen.parse().map_err(|e| ConfigError::Invalid {
            setting: "PIPE_LISTEN",
            detail: format!("{listen:?}: {e}"),
        })?;
        let allowed_hosts = match env("PIPE_ALLOWED_HOSTS") {
            Some(list) => list.parse(),
            None => f.allowed_hosts.take().unwrap_or_default().join(",").parse(),
        }
        .map_err(|e: pipe_ingest::HostListError| ConfigError::Invalid {
            setting: "PIPE_ALLOWED_HOSTS",
            detail: e.to_string(),
        })?;
        let number =
            |setting: &'static str, from_file: Option<u64>| -> Result<Option<u64>, ConfigError> {
                match env(setting) {
                    Some(v) => v
                        .trim()
                        .parse()
                        .map(Some)
                        .map_err(|e| ConfigError::Invalid {
                            setting,
                            detail: format!("{v:?}: {e}"),
                        }),
                    None => Ok(from_file),
                }
            };
        let link_ttl = Duration::from_secs(
            number("PIPE_LINK_TTL_SECS", f.link_ttl_secs)?.unwrap_or(7 * 24 * 3600),
        );
        let max_connections = number("PIPE_MAX_CONNECTIONS", f.max_connections.map(|m| m as u64))?
            .unwrap_or(4096) as usize;
        let header_timeout =
            number("PIPE_HEADER_TIMEOUT_SECS", f.header_timeout_secs)?.unwrap_or(20);
        let max_recording_bytes =
            number("PIPE_MAX_RECORDING_BYTES", f.max_recording_bytes)?.unwrap_or(2 << 30);
        for (setting, value) in [
            ("PIPE_MAX_RECORDING_BYTES", max_recording_bytes),
            ("PIPE_MAX_CONNECTIONS", max_connections as u64),
            ("PIPE_HEADER_TIMEOUT_SECS", header_timeout),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    setting,
                    detail: "at least 1".into(),
                });
            }
        }
        let header_timeout = Duration::from_secs(header_timeout);
        let audit_days =
            number("PIPE_AUDIT_RETENTION_DAYS", f.audit_retention_days)?.unwrap_or(365);
        if audit_days == 0 {
            return Err(ConfigError::Invalid {
                setting: "PIPE_AUDIT_RETENTION_DAYS",
                detail: "at least 1 day".into(),
            });
        }
        let audit_retention = Duration::from_secs(audit_days.saturating_mul(24 * 3600));
        let backup_list = env("PIPE_BACKUP_DESTINATIONS")
            .or_else(|| f.backup_destinations.take().map(|list| list.join(",")))
            .unwrap_or_default();
        let backups = if backup_list.trim().is_empty() {
            None
        } else {
            let invalid =
                |setting: &'static str, detail: String| ConfigError::Invalid { setting, detail };
            let mut destinations = Vec::new();
            for (n, text) in backup_list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .enumerate()
            {
                let url = pipe_storage::sink_url::SinkUrl::parse(
                    text,
                    pipe_storage::sink_url::Secrets::server(&env),
                )
                .map_err(|e| invalid("PIPE_BACKUP_DESTINATIONS", format!("{}: {e}", n + 1)))?;
                let scheme = text.split(':').next().unwrap_or("sink");
                destinations.push((format!("{scheme}-{}", n + 1), url));
            }
            let passphrase = env("PIPE_BACKUP_PASSPHRASE")
                .or(f.backup_passphrase.take())
                .filter(|p| p.chars().count() >= 12)
                .ok_or_else(|| {
                    invalid(
                        "PIPE_BACKUP_PASSPHRASE",
                        "backups need a passphrase of at least 12 characters".into(),
                    )
                })?;
            let every = number("PIPE_BACKUP_EVERY_SECS", f.backup_every_secs)?
                .unwrap_or(24 * 3600)
                .max(1);
            Some(BackupConfig {
                destinations,
                passphrase,
                every: Duration::from_secs(every),
            })
        };
        let workers = number("PIPE_WORKERS", f.workers.map(|w| w as u64))?.unwrap_or(2) as usize;
        if workers == 0 {
            return Err(ConfigError::Invalid {
                setting: "PIPE_WORKERS",
                detail: "at least 1".into(),
            });
        }
        let webhook_url = env("PIPE_WEBHOOK_URL").or(f.webhook_url.take());
        if let Some(url) = &webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                setting: "PIPE_WEBHOOK_URL",
                detail: "an http:// or https:// URL".into(),
            });
        }
        let invalid = |setting: &'static str| {
            move |e: pipe_core::Error| ConfigError::Invalid {
                setting,
                detail: e.to_string(),
            }
        };
        let webhook_format: WireFormat = env("PIPE_WEBHOOK_FORMAT")
            .or(f.webhook_format.take())
            .map(|v| v.trim().parse())
            .transpose()
            .map_err(invalid("PIPE_WEBHOOK_FORMAT"))?
            .unwrap_or_default();
        let webhook_encoding: BodyEncoding = env("PIPE_WEBHOOK_CONTENT_TYPE")
            .or(f.webhook_content_type.take())
            .map(|v| v.trim().parse())
            .transpose()
            .map_err(invalid("PIPE_WEBHOOK_CONTENT_TYPE"))?
            .unwrap_or_default();
        let webhook_key = env("PIPE_WEBHOOK_KEY")
            .or(f.webhook_key.take())
            .filter(|k| !k.is_empty());
        if webhook_format == WireFormat::Pipe && webhook_key.is_none() && webhook_url.is_some() {
            return Err(ConfigError::Invalid {
                setting: "PIPE_WEBHOOK_KEY",
                detail: "the `pipe` format signs X-Pipe-Signature with Pipe's webhook key: \
                         set PIPE_WEBHOOK_KEY"
                    .into(),
            });
        }
        if webhook_format == WireFormat::Standard && webhook_encoding == BodyEncoding::Form {
            return Err(ConfigError::Invalid {
                setting: "PIPE_WEBHOOK_CONTENT_TYPE",
                detail: "`form` is Pipe's encoding: use it with PIPE_WEBHOOK_FORMAT=pipe".into(),
            });
        }
        let events: Vec<String> = match env("PIPE_WEBHOOK_EVENTS") {
            Some(list) => list.split(',').map(|e| e.trim().to_owned()).collect(),
            None => f.webhook_events.take().unwrap_or_default(),
        };
        let events: Vec<String> = events.into_iter().filter(|e| !e.is_empty()).collect();
        let webhook_events =
            EventFilter::from_names(events).map_err(invalid("PIPE_WEBHOOK_EVENTS"))?;
        let allowed_networks: Vec<String> = match env("PIPE_WEBHOOK_ALLOW_ADDRESSES") {
            Some(list) => list.split(',').map(|n| n.trim().to_owned()).collect(),
            None => f.webhook_allow_addresses.take().unwrap_or_default(),
        };
        let webhook_addresses = allowed_networks.iter().filter(|n| !n.is_empty()).try_fold(
            AddressPolicy::new(),
            |policy, net| {
                net.parse::<IpNet>()
                    .map(|net| policy.allow(net))
                    .map_err(|e| ConfigError::Invalid {
                        setting: "PIPE_WEBHOOK_ALLOW_ADDRESSES",
                        detail: e.to_string(),
                    })
            },
        )?;
        let encryption = match env("PIPE_ENCRYPTION") {
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        setting: "PIPE_ENCRYPTION",
                        detail: format!("{v:?}: on or off"),
                    });
                }
            },
            None => f.encryption.unwrap_or(true),
        };
        let metrics_listen = env("PIPE_METRICS_LISTEN")
            .or(f.metrics_listen.take())
            .map(|addr| {
                addr.parse::<SocketAddr>()
                    .map_err(|e| ConfigError::Invalid {
                        setting: "PIPE_METRICS_LISTEN",
                        detail: format!("{addr:?}: {e}"),
                    })
            })
            .transpose()?;
        let tls = match (
            env("PIPE_TLS_CERT")
                .map(PathBuf::from)
                .or(f.tls_cert.take()),
            env("PIPE_TLS_KEY").map(PathBuf::from).or(f.tls_key.take()),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    setting: "PIPE_TLS_CERT",
                    detail: "PIPE_TLS_CERT and PIPE_TLS_KEY go together".into(),
                });
            }
        };
        let sinks = match env("PIPE_SINKS") {
            Some(list) => crate::sinks::parse(&list, &env)?,
            None => crate::sinks::parse(&f.sinks.take().unwrap_or_default().join(","), &env)?,
        };
        let public_url = match (&tls, env("PIPE_PUBLIC_URL").or(f.public_url.take())) {
            (_, Some(url)) => url,
            (Some(_), None) => format!("https://{listen}"),
            (None, None) => format!("http://{listen}"),
        };
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                setting: "PIPE_PUBLIC_URL",
                detail: "an http:// or https:// URL".into(),
            });
        }
        let catalog_url = env("PIPE_CATALOG_URL").or(f.catalog_url.take());
        if let Some(url) = &catalog_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                setting: "PIPE_CATALOG_URL",
                detail: "a postgres:// URL (without it, the catalog is an SQLite file in the \
                         data directory)"
                    .into(),
            });
        }
        if catalog_url.is_some() && backups.is_some() {
            return Err(ConfigError::Invalid {
                setting: "PIPE_BACKUP_DESTINATIONS",
                detail: "`pipe backup` backs up the SQLite catalog; back a PostgreSQL catalog \
                         up with PostgreSQL's own tools"
                    .into(),
            });
        }
        let shared_storage = match env("PIPE_SHARED_STORAGE").or(f.shared_storage.take()) {
            Some(text) => Some(
                pipe_storage::sink_url::SinkUrl::parse(
                    &text,
                    pipe_storage::sink_url::Secrets::server(&env),
                )
                .map_err(|e| ConfigError::Invalid {
                    setting: "PIPE_SHARED_STORAGE",
                    detail: e.to_string(),
                })?,
            ),
            None => None,
        };
        let server_secret = env("PIPE_SERVER_SECRET").or(f.server_secret.take());
        if let Some(secret) = &server_secret
            && !hex::decode(secret.trim()).is_ok_and(|key| key.len() >= 32)
        {
            return Err(ConfigError::Invalid {
                setting: "PIPE_SERVER_SECRET",
                detail: "at least 64 hex digits (`openssl rand -hex 32` makes one)".into(),
            });
        }
        // Several nodes share one catalog: each must reach the same bytes, sign and check
        // the same tokens and links, and open what the others encrypted.
        if catalog_url.is_some() {
            let missing = [
                (
                    "PIPE_SHARED_STORAGE",
                    shared_storage.is_none(),
                    "the object store every node shares",
                ),
                (
                    "PIPE_SERVER_SECRET",
                    server_secret.is_none(),
                    "the key of resume tokens and download links",
                ),
                (
                    "PIPE_ENCRYPTION_KEYS",
                    encryption && env("PIPE_ENCRYPTION_KEYS").is_none(),
                    "the key-encryption keys",
                ),
            ];
            if let Some((setting, _, what)) = missing.into_iter().find(|(_, absent, _)| *absent) {
                return Err(ConfigError::Invalid {
                    setting,
                    detail: format!(
                        "{what}, the same on every node, is needed with PIPE_CATALOG_URL \
                         (several nodes); see \"Running several nodes\" in the README"
                    ),
                });
            }
        }
        Ok(Self {
            catalog_url,
            shared_storage,
            server_secret,
            sinks,
            audit_retention,
            backups,
            encryption,
            metrics_listen,
            tls,
            listen,
            data_dir: env("PIPE_DATA_DIR")
                .map(PathBuf::from)
                .or(f.data_dir.take())
                .unwrap_or_else(|| "pipe-data".into()),
            public_url: public_url.trim_end_matches('/').to_owned(),
            webhook_url,
            webhook_secret: env("PIPE_WEBHOOK_SECRET").or(f.webhook_secret.take()),
            webhook_format,
            webhook_key,
            webhook_encoding,
            webhook_events,
            webhook_addresses,
            allowed_hosts,
            link_ttl,
            workers,
            max_recording_bytes,
            max_connections,
            header_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_core::EventName;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_are_embedded() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("pipe-data"));
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert!(c.webhook_url.is_none());
        assert!(c.allowed_hosts.allows_any());
        assert!(c.encryption, "encryption at rest is on unless switched off");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nallowed_hosts = [\"a.example\"]\nworkers = 3\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[("PIPE_LISTEN", "127.0.0.1:9001")])).unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.workers, 3);
        assert!(c.allowed_hosts.allows_origin("https://a.example"));
        assert!(!c.allowed_hosts.allows_origin("https://b.example"));
    }

    #[test]
    fn debug_output_hides_the_webhook_secret() {
        let c = Config::load(
            None,
            env(&[(
                "PIPE_WEBHOOK_SECRET",
                "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
            )]),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("whsec_"));
    }

    #[test]
    fn shared_settings_are_checked_and_their_secrets_hidden() {
        let secret = "ab".repeat(32);
        let c = Config::load(
            None,
            env(&[
                (
                    "PIPE_CATALOG_URL",
                    "postgres://pipe:hunter2pass@db:5432/pipe",
                ),
                ("PIPE_SERVER_SECRET", secret.as_str()),
                ("PIPE_SHARED_STORAGE", "file:///srv/pipe"),
                ("PIPE_ENCRYPTION", "off"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.catalog_url.as_deref(),
            Some("postgres://pipe:hunter2pass@db:5432/pipe")
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2pass") && !shown.contains(&secret),
            "{shown}"
        );
        assert!(
            shown.contains("postgres://pipe:<redacted>@db:5432/pipe"),
            "{shown}"
        );
        for (setting, value, says) in [
            ("PIPE_CATALOG_URL", "mysql://x", "a postgres:// URL"),
            ("PIPE_SERVER_SECRET", "abcd", "64 hex digits"),
            ("PIPE_SHARED_STORAGE", "ftp://x/y", "PIPE_SHARED_STORAGE"),
        ] {
            let error = Config::load(None, env(&[(setting, value)]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(says), "{setting}: {error}");
        }
        let postgres = ("PIPE_CATALOG_URL", "postgres://db/pipe");
        let shared = ("PIPE_SHARED_STORAGE", "file:///srv/pipe");
        let secret = ("PIPE_SERVER_SECRET", secret.as_str());
        let keys = ("PIPE_ENCRYPTION_KEYS", "k:AAAA");
        for (vars, missing) in [
            (vec![postgres, secret, keys], "PIPE_SHARED_STORAGE"),
            (vec![postgres, shared, keys], "PIPE_SERVER_SECRET"),
            (vec![postgres, shared, secret], "PIPE_ENCRYPTION_KEYS"),
        ] {
            let error = Config::load(None, env(&vars)).unwrap_err().to_string();
            assert!(
                error.contains(missing) && error.contains("every node"),
                "{error}"
            );
        }
        Config::load(None, env(&[postgres, shared, secret, keys])).unwrap();
    }

    #[test]
    fn pipes_webhook_settings_are_read_and_checked_together() {
        let url = ("PIPE_WEBHOOK_URL", "https://hooks.example/in");
        let c = Config::load(
            None,
            env(&[
                url,
                ("PIPE_WEBHOOK_FORMAT", "pipe"),
                ("PIPE_WEBHOOK_KEY", "k3y-of-pipe"),
                ("PIPE_WEBHOOK_CONTENT_TYPE", "form"),
                (
                    "PIPE_WEBHOOK_EVENTS",
                    "video_converted, video_copied_pipe_s3",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.webhook_format, WireFormat::Pipe);
        assert_eq!(c.webhook_encoding, BodyEncoding::Form);
        assert_eq!(
            c.webhook_events,
            EventFilter::Only(vec![
                EventName::new("video_converted"),
                EventName::new("video_copied_pipe_s3")
            ])
        );
        assert!(!format!("{c:?}").contains("k3y-of-pipe"));
        let defaults = Config::load(None, env(&[url])).unwrap();
        assert_eq!(
            (
                defaults.webhook_format,
                defaults.webhook_encoding,
                defaults.webhook_events
            ),
            (WireFormat::Standard, BodyEncoding::Json, EventFilter::All)
        );

        for (bad, setting) in [
            (
                vec![url, ("PIPE_WEBHOOK_FORMAT", "pipe")],
                "PIPE_WEBHOOK_KEY",
            ),
            (
                vec![url, ("PIPE_WEBHOOK_CONTENT_TYPE", "form")],
                "PIPE_WEBHOOK_CONTENT_TYPE",
            ),
            (vec![("PIPE_WEBHOOK_FORMAT", "svix")], "PIPE_WEBHOOK_FORMAT"),
            (
                vec![("PIPE_WEBHOOK_EVENTS", "Video Converted")],
                "PIPE_WEBHOOK_EVENTS",
            ),
        ] {
            let e = Config::load(None, env(&bad)).unwrap_err();
            assert!(e.to_string().starts_with(setting), "{setting}: {e}");
        }
    }

    #[test]
    fn the_webhook_address_allow_list_is_read_as_networks() {
        let c = Config::load(
            None,
            env(&[("PIPE_WEBHOOK_ALLOW_ADDRESSES", "127.0.0.1, 10.1.0.0/16,::1")]),
        )
        .unwrap();
        let allowed: Vec<String> = c
            .webhook_addresses
            .allowed()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(allowed, ["127.0.0.1/32", "10.1.0.0/16", "::1/128"]);
        assert_eq!(
            Config::load(None, env(&[])).unwrap().webhook_addresses,
            AddressPolicy::new()
        );
        for bad in ["localhost", "10.1.0.1/16", "10.0.0.0/33"] {
            let e = Config::load(None, env(&[("PIPE_WEBHOOK_ALLOW_ADDRESSES", bad)])).unwrap_err();
            assert!(
                e.to_string().starts_with("PIPE_WEBHOOK_ALLOW_ADDRESSES")
                    && e.to_string().contains(bad),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = Config::load(None, env(&[("PIPE_LISTEN", "nowhere")])).unwrap_err();
        assert!(e.to_string().starts_with("PIPE_LISTEN"), "{e}");
        let e = Config::load(None, env(&[("PIPE_ENCRYPTION", "maybe")])).unwrap_err();
        assert!(e.to_string().starts_with("PIPE_ENCRYPTION"), "{e}");
        let e = Config::load(None, env(&[("PIPE_ALLOWED_HOSTS", "https://x.com")])).unwrap_err();
        assert!(e.to_string().starts_with("PIPE_ALLOWED_HOSTS"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe.toml");
        std::fs::write(&path, "lisen = 1\n").unwrap();
        let e = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
    }
}
