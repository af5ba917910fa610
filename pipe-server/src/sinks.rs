//! `PIPE_SINKS`: the customer storages the first environment copies its recordings to, as
//! URLs.
//!
//! ```text
//! PIPE_SINKS=<sink>[,<sink>…]
//! ```
//!
//! Each `<sink>` is a sink URL of `pipe-storage` (`s3://…`, `sftp://…`, `ftps://…`,
//! `azure://…`, `file:///…`; [`pipe_storage::sink_url`] documents every option), its
//! `…_from=<VAR>` options naming environment variables of the server, its `…_file=<path>`
//! options files of the server, and `id=` naming it (default `<scheme>-<position>`).
//!
//! When the server creates its first environment (`production`, at the first start on a
//! data directory), these become that environment's sinks: the values of the variables
//! and files they name are read then and kept with the environment, sealed under the
//! server's keys. From then on the environment's settings decide (change them through the
//! API, `PATCH /v1/environments/production`); a later `PIPE_SINKS` that differs is
//! reported in the log and not applied, as `PIPE_ALLOWED_HOSTS` is.

use pipe_core::{EnvironmentSettings, SinkId, SinkSettings};

use crate::OWN_STORAGE;
use crate::config::ConfigError;

/// Parses `PIPE_SINKS` into the settings of sinks; `env` reads the variables that options
/// name.
pub fn parse(
    list: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<SinkSettings>, ConfigError> {
    let invalid = |e: pipe_core::Error| ConfigError::Invalid {
        setting: "PIPE_SINKS",
        detail: match e {
            pipe_core::Error::Invalid { detail, .. } => detail,
            other => other.to_string(),
        },
    };
    let sinks = pipe_storage::sink_url::settings_from_list(list, env).map_err(invalid)?;
    EnvironmentSettings::default()
        .with_sinks(sinks.clone())
        .check_sinks(&SinkId::new(OWN_STORAGE))
        .map_err(invalid)?;
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "BUCKET_SECRET").then(|| "s3cr3t".to_owned())
    }

    #[test]
    fn a_list_becomes_sinks_with_their_secrets() {
        let sinks = parse(
            "s3://a?access_key_id=AK&secret_key_from=BUCKET_SECRET&id=archive, \
             ftps://u@h/~/in?password_from=BUCKET_SECRET",
            &env,
        )
        .unwrap();
        assert_eq!(sinks[0].id.as_str(), "archive");
        assert_eq!(sinks[1].id.as_str(), "ftps-2");
        assert_eq!(sinks[1].secrets["BUCKET_SECRET"], "s3cr3t");
        assert!(
            !format!("{sinks:?}").contains("s3cr3t"),
            "Debug shows a secret"
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (list, says) in [
            ("ftp://host/x", "sink 1: `ftp://` is not a sink"),
            ("s3://b?colour=red", "unknown option `colour`"),
            ("s3://a?id=x,s3://b?id=x", "`x` is taken"),
            ("s3://a?id=pipe", "`pipe` is taken"),
            (
                "s3://b?access_key_id=A&secret_key_from=NOPE",
                "NOPE, which is not set",
            ),
        ] {
            let error = parse(list, &env).unwrap_err().to_string();
            assert!(error.contains(says), "{list}: {error}");
            assert!(error.starts_with("PIPE_SINKS"), "{error}");
        }
    }
}
