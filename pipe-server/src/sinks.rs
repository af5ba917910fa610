//! `PIPE_SINKS`: the customer storages every recording is copied to, as URLs.
//!
//! ```text
//! PIPE_SINKS=<sink>[,<sink>…]
//! <sink>    = s3://<bucket>[/<folder>][?<option>[&<option>…]]
//! ```
//!
//! Options of `s3://` (each at most once):
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
//! | `naming` | `pipe` (`<name>.mp4`, `<name>.jpg`, `<name>_raw.<ext>` side by side, as the hosted Pipe) or `by-recording` (a folder per recording) | `pipe` |
//! | `encrypt` | `true` to store only ciphertext (Pipe's encryption at rest, with the server's keys) | `false` |
//! | `id` | the sink's name in copies and logs | `s3-<position>` |
//!
//! Without `access_key_id`, credentials come from AWS's standard variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or the instance's
//! role. Every environment's recordings go to these sinks (per-environment sinks are to
//! come).

use std::collections::BTreeSet;

use pipe_core::SinkId;
use pipe_lifecycle::KeyLayout;
use pipe_storage::{S3Config, S3Encryption};

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

fn parse_one(
    text: &str,
    position: usize,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SinkSpec, ConfigError> {
    let url = url::Url::parse(text).map_err(|e| invalid(format!("sink {position}: {e}")))?;
    if url.scheme() != "s3" {
        return Err(invalid(format!(
            "sink {position}: `{}://` is not a sink this server has (it has `s3://`)",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!(
            "sink {position}: no credentials in the URL: use access_key_id and secret_key_from"
        )));
    }
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid(format!("sink {position}: s3:// needs a bucket")))?;
    let folder = url.path().trim_matches('/');
    let mut config = S3Config::new(bucket, "us-east-1");
    if !folder.is_empty() {
        config = config.with_folder(folder);
    }
    let mut id = SinkId::new(format!("s3-{position}"));
    let mut layout = KeyLayout::Flat;
    let mut encrypt = false;
    let (mut access_key, mut secret_from, mut sse, mut kms_key) = (None, None, None, None);
    let mut seen = BTreeSet::new();
    for (key, value) in url.query_pairs() {
        let (key, value) = (key.into_owned(), value.into_owned());
        if !seen.insert(key.clone()) {
            return Err(invalid(format!("sink {position}: `{key}` given twice")));
        }
        let flag = |value: &str| match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid(format!(
                "sink {position}: `{key}` is true or false, not {value:?}"
            ))),
        };
        match key.as_str() {
            "region" => config.region = value,
            "endpoint" => {
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    return Err(invalid(format!(
                        "sink {position}: endpoint is an http:// or https:// URL"
                    )));
                }
                config = config.with_endpoint(value);
            }
            "path_style" => config = config.with_path_style(flag(&value)?),
            "acl" => config = config.with_acl(value),
            "storage_class" => config = config.with_storage_class(value),
            "sse" => sse = Some(value),
            "kms_key_id" => kms_key = Some(value),
            "access_key_id" => access_key = Some(value),
            "secret_key_from" => secret_from = Some(value),
            "naming" => {
                layout = match value.as_str() {
                    "pipe" => KeyLayout::Flat,
                    "by-recording" => KeyLayout::ByRecording,
                    _ => {
                        return Err(invalid(format!(
                            "sink {position}: naming is `pipe` or `by-recording`, not {value:?}"
                        )));
                    }
                }
            }
            "encrypt" => encrypt = flag(&value)?,
            "id" => {
                if value.is_empty()
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return Err(invalid(format!(
                        "sink {position}: id is letters, digits, `-`, `_` and `.`"
                    )));
                }
                id = SinkId::new(value);
            }
            other => {
                return Err(invalid(format!(
                    "sink {position}: unknown option `{other}`"
                )));
            }
        }
    }
    config = config.with_encryption(match (sse.as_deref(), kms_key) {
        (None, None) => S3Encryption::BucketDefault,
        (Some("AES256"), None) => S3Encryption::Aes256,
        (Some("aws:kms"), key) => S3Encryption::Kms(key.unwrap_or_default()),
        (None, Some(_)) => {
            return Err(invalid(format!(
                "sink {position}: kms_key_id goes with sse=aws:kms"
            )));
        }
        (Some(other), _) => {
            return Err(invalid(format!(
                "sink {position}: sse is `AES256` or `aws:kms`, not {other:?}"
            )));
        }
    });
    match (access_key, secret_from) {
        (Some(key), Some(var)) => {
            let secret = env(&var).ok_or_else(|| {
                invalid(format!(
                    "sink {position}: secret_key_from names {var}, which is not set"
                ))
            })?;
            config = config.with_credentials(key, secret);
        }
        (Some(_), None) => {
            return Err(invalid(format!(
                "sink {position}: access_key_id needs secret_key_from, the variable that holds \
                 its secret"
            )));
        }
        (None, Some(_)) => {
            return Err(invalid(format!(
                "sink {position}: secret_key_from goes with access_key_id"
            )));
        }
        (None, None) => {}
    }
    Ok(SinkSpec {
        id,
        target: SinkTarget::S3(config),
        layout,
        encrypt,
    })
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
    fn defaults_and_several_sinks() {
        let specs = parse("s3://a, s3://b/x?region=us-west-2", &env).unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].id.as_str(), "s3-1");
        assert_eq!(specs[1].id.as_str(), "s3-2");
        assert_eq!(specs[0].layout, KeyLayout::Flat);
        assert!(!specs[0].encrypt);
        let SinkTarget::S3(b) = &specs[1].target;
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
            ("s3://", "needs a bucket"),
            ("s3://b?colour=red", "unknown option `colour`"),
            ("s3://b?region=a&region=b", "`region` given twice"),
            ("s3://b?access_key_id=A", "needs secret_key_from"),
            (
                "s3://b?access_key_id=A&secret_key_from=NOPE",
                "NOPE, which is not set",
            ),
            ("s3://user:pw@b", "no credentials in the URL"),
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
