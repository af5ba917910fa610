use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, SinkId, Timestamp};

/// The public id of an environment (Pipe's `eid`): 1 to 64 characters of `[a-z0-9_-]`,
/// chosen by the operator (`production`, `staging`, `acme`) or generated. The recorder
/// names it, so it is not a secret.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvironmentId(String);

impl EnvironmentId {
    /// The environment a server makes on its first start, and the one a recording
    /// belongs to when its recorder names none.
    pub const DEFAULT: &'static str = "production";

    /// The default environment, `production`.
    pub fn default_environment() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    /// A new random id, `env_` and 26 base32 characters.
    pub fn generate() -> Self {
        Self(format!("env_{}", crate::id::random_base32()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn validate(s: &str) -> Result<()> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "environment id",
                "1 to 64 characters of a-z, 0-9, '_' and '-'",
            ))
        }
    }
}

impl Default for EnvironmentId {
    fn default() -> Self {
        Self::default_environment()
    }
}

impl FromStr for EnvironmentId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::validate(s)?;
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for EnvironmentId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::validate(&s)?;
        Ok(Self(s))
    }
}

impl From<EnvironmentId> for String {
    fn from(id: EnvironmentId) -> String {
        id.0
    }
}

impl fmt::Display for EnvironmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EnvironmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvironmentId({})", self.0)
    }
}

/// What an environment decides about its recordings. Stored as one versioned document;
/// fields added later default when an older document is read, so a new setting never
/// needs a migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EnvironmentSettings {
    /// Hosts whose pages may record (checked on `Origin`, `*.` wildcards, optional
    /// port); empty allows any host.
    pub allowed_hosts: Vec<String>,
    /// The longest recording in seconds; `None` for the server's limit.
    pub max_recording_secs: Option<u32>,
    /// The largest recording in bytes; `None` for the server's limit.
    pub max_recording_bytes: Option<u64>,
    /// Whether the recorder that made a recording may play it back (through a
    /// short-lived link its resume token asks for). On by default, as in Pipe.
    pub client_playback: bool,
    /// The operator's storages every recording is copied to, besides the server's own.
    pub sinks: Vec<SinkSettings>,
    /// "Do not store": the server's own storage is skipped, and once every sink holds a
    /// verified copy, the recording's local files (spool, staging, work files) are
    /// deleted. Needs at least one sink.
    pub do_not_store: bool,
    /// Retention: recordings are deleted (from every sink, as a deletion through the API
    /// is) this many hours after they began; `None` (the default) keeps them until
    /// deleted. At least [`EnvironmentSettings::MIN_RETENTION_HOURS`].
    pub retention_hours: Option<u32>,
    /// Whether retention deletes recordings whose processing failed too; off by default,
    /// so they stay until deleted by hand, for someone to look into.
    pub retention_deletes_failed: bool,
    /// A recording still `receiving` this many hours after it began was abandoned by its
    /// client (no recorder records that long): it is finished with the bytes that
    /// arrived, processed as if the client had stopped there, or deleted if none did.
    /// Default 24.
    pub abandoned_after_hours: u32,
    /// Which personal data is collected about the person recording: nothing unless
    /// switched on, field by field.
    pub personal_data: PersonalDataSettings,
}

/// Which personal data an environment collects ([`crate::PersonalData`]): each is off by
/// default, and a field switched off never reaches the catalog, a file, a webhook or a
/// log line. The recorder sends the camera's and microphone's names and the page it is on
/// only when asked to; the server reads the IP address and the user agent itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PersonalDataSettings {
    /// The recorder's IP address (Pipe's `ip`).
    pub ip: bool,
    /// The browser's user agent (Pipe's `ua`).
    pub user_agent: bool,
    /// The page the recorder was on (Pipe's `httpReferer`).
    pub referer: bool,
    /// The camera's name (Pipe's `cam_name`).
    pub camera_name: bool,
    /// The microphone's name (Pipe's `mic_name`).
    pub microphone_name: bool,
    /// "Do not store personal metadata": what is collected serves processing and the
    /// webhooks, and is erased from the catalog once every sink holds the recording.
    pub forget_after_copy: bool,
}

impl PersonalDataSettings {
    /// Everything collected (for tests and operators who say so).
    pub fn all() -> Self {
        Self {
            ip: true,
            user_agent: true,
            referer: true,
            camera_name: true,
            microphone_name: true,
            forget_after_copy: false,
        }
    }
}

/// One storage of the operator's: where, as a URL, and the secrets that lets the server
/// write there.
///
/// The URL's grammar is the sink URL of `pipe-storage` (`s3://bucket/folder?region=…`,
/// `sftp://user@host/folder?host_key=…&password_from=password`, …); an option
/// `…_from=<name>` takes its value from `secrets[name]`. Secrets are sealed at rest by
/// catalogs that have the server's keys, never returned by the API, and redacted in
/// `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SinkSettings {
    /// Its name in copies, events and logs: 1 to 64 of a-z, A-Z, 0-9, `-`, `_`, `.`;
    /// unique in the environment, and not `pipe` (the server's own storage).
    pub id: SinkId,
    /// Where it is.
    pub url: String,
    /// The secrets the URL's `…_from=` options name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

impl SinkSettings {
    /// A sink `id` at `url`, with no secrets yet.
    pub fn new(id: SinkId, url: impl Into<String>) -> Self {
        Self {
            id,
            url: url.into(),
            secrets: BTreeMap::new(),
        }
    }

    /// With the secret `name`.
    #[must_use]
    pub fn with_secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
    }
}

impl fmt::Debug for SinkSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkSettings")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for EnvironmentSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            max_recording_secs: None,
            max_recording_bytes: None,
            client_playback: true,
            sinks: Vec::new(),
            do_not_store: false,
            retention_hours: None,
            retention_deletes_failed: false,
            abandoned_after_hours: 24,
            personal_data: PersonalDataSettings::default(),
        }
    }
}

impl EnvironmentSettings {
    /// Allows only `hosts` to record.
    #[must_use]
    pub fn with_allowed_hosts(
        mut self,
        hosts: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// The allowed hosts, parsed; `Invalid` names the entry that is not a host pattern.
    pub fn host_allow_list(&self) -> Result<crate::HostAllowList> {
        crate::HostAllowList::from_entries(self.allowed_hosts.iter().map(String::as_str))
            .map_err(|e| Error::invalid("allowed_hosts", e))
    }

    /// Turns client playback on or off.
    #[must_use]
    pub fn with_client_playback(mut self, on: bool) -> Self {
        self.client_playback = on;
        self
    }

    /// Copies recordings to `sinks` too.
    #[must_use]
    pub fn with_sinks(mut self, sinks: impl IntoIterator<Item = SinkSettings>) -> Self {
        self.sinks = sinks.into_iter().collect();
        self
    }

    /// The shortest retention: a recording must outlive the retries of what it started.
    /// Webhook deliveries are retried for about 27.5 hours (a receiver down for a day still
    /// gets its events, and the links in them must still lead to files) and copies for
    /// well under an hour, so 30 hours. (The hosted Pipe's minimum is 75.)
    pub const MIN_RETENTION_HOURS: u32 = 30;

    /// Deletes recordings `hours` after they began (`None`: keeps them).
    #[must_use]
    pub fn with_retention_hours(mut self, hours: Option<u32>) -> Self {
        self.retention_hours = hours;
        self
    }

    /// Checks the retention settings: `Invalid` below the minimum, or for an abandonment
    /// time of 0.
    pub fn check_retention(&self) -> Result<()> {
        if let Some(hours) = self.retention_hours
            && hours < Self::MIN_RETENTION_HOURS
        {
            return Err(Error::invalid(
                "retention_hours",
                format!(
                    "{hours} is below the minimum of {}: recordings must outlive the retries \
                     of their webhooks (about 27.5 hours)",
                    Self::MIN_RETENTION_HOURS
                ),
            ));
        }
        if self.abandoned_after_hours == 0 {
            return Err(Error::invalid(
                "abandoned_after_hours",
                "at least 1 hour: 0 would finish recordings while they are made",
            ));
        }
        Ok(())
    }

    /// Turns "do not store" on or off.
    #[must_use]
    pub fn with_do_not_store(mut self, on: bool) -> Self {
        self.do_not_store = on;
        self
    }

    /// Checks what holds whatever the sinks are: sink ids are well formed and unique and
    /// none is `own` (the server's storage), and "do not store" has a sink to copy to.
    /// (Whether each URL makes a sink is for a [`crate::SinkDirectory`] to check.)
    pub fn check_sinks(&self, own: &SinkId) -> Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for sink in &self.sinks {
            let id = sink.id.as_str();
            let well_formed = (1..=64).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !well_formed {
                return Err(Error::invalid(
                    "sinks",
                    format!("sink id {id:?}: 1 to 64 of letters, digits, `-`, `_` and `.`"),
                ));
            }
            if &sink.id == own || !seen.insert(id) {
                return Err(Error::invalid(
                    "sinks",
                    format!("sink id `{id}` is taken: give each sink its own"),
                ));
            }
        }
        if self.do_not_store && self.sinks.is_empty() {
            return Err(Error::invalid(
                "do_not_store",
                "\"do not store\" needs a sink to copy recordings to, or they would be lost",
            ));
        }
        Ok(())
    }
}

/// An operator's site or stage: it owns its recordings and its settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Environment {
    /// Its public id.
    pub id: EnvironmentId,
    /// A name for people.
    pub name: String,
    /// 1 when created, one higher with every update.
    pub version: i64,
    /// When it was created.
    pub created: Timestamp,
    /// When it last changed.
    pub updated: Timestamp,
    /// Its settings at this version.
    pub settings: EnvironmentSettings,
}

impl Environment {
    /// An environment as a store holds it.
    pub fn new(
        id: EnvironmentId,
        name: impl Into<String>,
        version: i64,
        created: Timestamp,
        updated: Timestamp,
        settings: EnvironmentSettings,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            version,
            created,
            updated,
            settings,
        }
    }
}

/// A new environment; see [`EnvironmentStore::create_environment`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct NewEnvironment {
    /// Its id.
    pub id: EnvironmentId,
    /// Its name (defaults to the id).
    pub name: String,
    /// Its settings.
    pub settings: EnvironmentSettings,
}

impl NewEnvironment {
    /// An environment `id` named after itself, with default settings.
    pub fn new(id: EnvironmentId) -> Self {
        Self {
            name: id.as_str().to_owned(),
            id,
            settings: EnvironmentSettings::default(),
        }
    }

    /// Names it.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Gives it `settings`.
    #[must_use]
    pub fn with_settings(mut self, settings: EnvironmentSettings) -> Self {
        self.settings = settings;
        self
    }
}

/// A change to an environment; see [`EnvironmentStore::update_environment`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct EnvironmentUpdate {
    /// A new name.
    pub name: Option<String>,
    /// New settings, replacing the old as a whole.
    pub settings: Option<EnvironmentSettings>,
    /// Precondition: the environment is at this version.
    pub expect_version: Option<i64>,
}

impl EnvironmentUpdate {
    /// Renames it.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Replaces its settings.
    #[must_use]
    pub fn with_settings(mut self, settings: EnvironmentSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Requires it to be at `version`.
    #[must_use]
    pub fn expect_version(mut self, version: i64) -> Self {
        self.expect_version = Some(version);
        self
    }
}

/// Environments and their versioned settings.
///
/// # Contract
///
/// - **Durable.** Once a call returns `Ok`, its effect survives a crash of the process.
/// - **Versioned.** A created environment is at version 1; every successful
///   [`update_environment`](EnvironmentStore::update_environment) adds one and keeps the
///   version it replaced, so [`environment_history`](EnvironmentStore::environment_history)
///   returns every version ever stored, oldest first. A failed `expect_version` is
///   `Precondition` and changes nothing.
/// - **Read after write.** A read that starts after a write returned sees it: settings
///   changed through the API apply to the next connection without a restart.
/// - **Errors.** `AlreadyExists` when creating an id that exists, `NotFound` for an id
///   that does not, `Precondition` when deleting one that still holds recordings.
#[async_trait]
pub trait EnvironmentStore: Send + Sync + fmt::Debug + 'static {
    /// Creates an environment at version 1.
    async fn create_environment(&self, new: NewEnvironment) -> Result<Environment>;

    /// The environment with `id`, or `NotFound`.
    async fn environment(&self, id: &EnvironmentId) -> Result<Environment>;

    /// Every environment, by id.
    async fn list_environments(&self) -> Result<Vec<Environment>>;

    /// Applies `update` and returns the new version.
    async fn update_environment(
        &self,
        id: &EnvironmentId,
        update: EnvironmentUpdate,
    ) -> Result<Environment>;

    /// Deletes the environment and its history; `Precondition` while any recording
    /// belongs to it.
    async fn delete_environment(&self, id: &EnvironmentId) -> Result<()>;

    /// Every version of the environment, oldest first.
    async fn environment_history(&self, id: &EnvironmentId) -> Result<Vec<Environment>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_slugs() {
        assert!("production".parse::<EnvironmentId>().is_ok());
        assert!("acme-staging_2".parse::<EnvironmentId>().is_ok());
        for bad in ["", "Prod", "a/b", "a b", "../x", &"x".repeat(65)] {
            assert!(bad.parse::<EnvironmentId>().is_err(), "{bad:?} accepted");
        }
        let generated = EnvironmentId::generate();
        assert_eq!(
            generated.as_str().parse::<EnvironmentId>().unwrap(),
            generated
        );
    }

    #[test]
    fn settings_written_before_a_field_existed_still_read() {
        let old: EnvironmentSettings = serde_json::from_str(r#"{"allowed_hosts":["a.com"]}"#)
            .expect("an older document reads");
        assert_eq!(old.allowed_hosts, ["a.com"]);
        assert!(old.client_playback);
        assert!(serde_json::from_str::<EnvironmentSettings>(r#"{"alowed_hosts":[]}"#).is_err());
        assert!(old.sinks.is_empty() && !old.do_not_store);
    }

    #[test]
    fn sink_ids_are_checked_and_do_not_store_needs_a_sink() {
        let own = SinkId::new("pipe");
        let sink = |id: &str| SinkSettings::new(SinkId::new(id), "s3://bucket");
        let ok = EnvironmentSettings::default()
            .with_sinks([sink("archive"), sink("s3-2")])
            .with_do_not_store(true);
        ok.check_sinks(&own).unwrap();
        for (settings, says) in [
            (
                EnvironmentSettings::default().with_do_not_store(true),
                "needs a sink",
            ),
            (
                EnvironmentSettings::default().with_sinks([sink("a"), sink("a")]),
                "`a` is taken",
            ),
            (
                EnvironmentSettings::default().with_sinks([sink("pipe")]),
                "`pipe` is taken",
            ),
            (
                EnvironmentSettings::default().with_sinks([sink("a/b")]),
                "letters, digits",
            ),
        ] {
            let error = settings.check_sinks(&own).unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn sink_secrets_never_show_in_debug() {
        let sink = SinkSettings::new(SinkId::new("ftp"), "ftps://u@h?password_from=pw")
            .with_secret("pw", "hunter2");
        let shown = format!("{sink:?}");
        assert!(
            shown.contains("pw") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
