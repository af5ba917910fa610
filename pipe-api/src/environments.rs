//! `/v1/environments`: create, read, update, delete, and every version.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::collections::BTreeMap;

use pipe_core::{
    Environment, EnvironmentId, EnvironmentSettings, EnvironmentUpdate, NewEnvironment,
    PersonalDataSettings, Role, SinkId, SinkSettings,
};
use pipe_http::{Problem, ProblemType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::JsonBody;
use crate::{Api, Caller};

/// An environment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvironmentView {
    /// Its public id (the recorder names it).
    id: String,
    /// A name for people.
    name: String,
    /// 1 when created, one higher with every update.
    version: i64,
    /// When it was created (RFC 3339).
    created: String,
    /// When it last changed (RFC 3339).
    updated: String,
    /// Its settings at this version.
    settings: SettingsView,
}

/// What an environment decides about its recordings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsView {
    /// Hosts whose pages may record, by Pipe's rules: `example.com` (any port),
    /// `*.example.com` (one level of subdomain), `*.*.example.com` (two); `localhost:8080`
    /// only on that port. Empty allows any host.
    #[serde(default)]
    allowed_hosts: Vec<String>,
    /// The longest recording in seconds; absent for the server's limit.
    #[serde(default)]
    max_recording_secs: Option<u32>,
    /// The largest recording in bytes; absent for the server's limit.
    #[serde(default)]
    max_recording_bytes: Option<u64>,
    /// Whether the recorder that made a recording may play it back (default true).
    #[serde(default = "yes")]
    client_playback: bool,
    /// The operator's storages every recording is copied to, besides the server's own.
    #[serde(default)]
    sinks: Vec<SinkView>,
    /// "Do not store": skip the server's own storage, and delete a recording's local
    /// files once every sink holds a verified copy. Needs a sink.
    #[serde(default)]
    do_not_store: bool,
    /// Retention: delete recordings (from every sink) this many hours after they began;
    /// absent keeps them. At least 30 (webhooks are retried for about 27.5 hours, and the
    /// links in them must still lead to files).
    #[serde(default)]
    retention_hours: Option<u32>,
    /// Whether retention deletes recordings whose processing failed too (default false:
    /// they stay until deleted by hand).
    #[serde(default)]
    retention_deletes_failed: bool,
    /// A recording still receiving this many hours after it began was abandoned by its
    /// client: it is finished with the bytes that arrived, or deleted if none did
    /// (default 24).
    #[serde(default = "abandoned_after_hours")]
    abandoned_after_hours: u32,
    /// Which personal data is collected about the person recording; each is off unless
    /// switched on. A field switched off never reaches the catalog, a file, a webhook or
    /// a log line.
    #[serde(default)]
    personal_data: PersonalDataView,
}

/// Which personal data an environment collects.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct PersonalDataView {
    /// The recorder's IP address (webhooks' `ip`).
    ip: bool,
    /// The browser's user agent (`ua`).
    user_agent: bool,
    /// The page the recorder was on (`httpReferer`); the recorder sends it only then.
    referer: bool,
    /// The camera's name (`cam_name`); the recorder sends it only then.
    camera_name: bool,
    /// The microphone's name (`mic_name`); the recorder sends it only then.
    microphone_name: bool,
    /// "Do not store personal metadata": erase what was collected once every sink holds
    /// the recording (the recording's `anonymized` says when).
    forget_after_copy: bool,
}

impl From<PersonalDataSettings> for PersonalDataView {
    fn from(p: PersonalDataSettings) -> Self {
        Self {
            ip: p.ip,
            user_agent: p.user_agent,
            referer: p.referer,
            camera_name: p.camera_name,
            microphone_name: p.microphone_name,
            forget_after_copy: p.forget_after_copy,
        }
    }
}

impl From<PersonalDataView> for PersonalDataSettings {
    fn from(v: PersonalDataView) -> Self {
        let mut p = PersonalDataSettings::default();
        p.ip = v.ip;
        p.user_agent = v.user_agent;
        p.referer = v.referer;
        p.camera_name = v.camera_name;
        p.microphone_name = v.microphone_name;
        p.forget_after_copy = v.forget_after_copy;
        p
    }
}

fn abandoned_after_hours() -> u32 {
    EnvironmentSettings::default().abandoned_after_hours
}

/// One storage of the operator's.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SinkView {
    /// Its name in copies and events (`archive`, `s3-eu`): letters, digits, `-`, `_`,
    /// `.`; not `pipe`.
    id: String,
    /// Where it is: `s3://bucket/folder?region=…`, `sftp://user@host/folder?host_key=…`,
    /// `ftps://user@host/folder?…`, `azure://account/container/folder?…`, as `PIPE_SINKS`
    /// (pipe-storage's `sink_url` documents the grammar). An option `…_from=<name>` takes
    /// its value from `secrets[name]`; no secret goes in the URL.
    url: String,
    /// The secrets the URL names. Written as values; read back as names with `null`
    /// values: a secret is never returned. In an update, `null` keeps the value the sink
    /// of this id has.
    #[serde(default)]
    secrets: BTreeMap<String, Option<String>>,
}

fn yes() -> bool {
    true
}

/// What an environment created without settings gets: the defaults of
/// [`EnvironmentSettings`] (client playback on, as in Pipe).
impl Default for SettingsView {
    fn default() -> Self {
        Self::from(&EnvironmentSettings::default())
    }
}

impl From<&EnvironmentSettings> for SettingsView {
    fn from(s: &EnvironmentSettings) -> Self {
        Self {
            allowed_hosts: s.allowed_hosts.clone(),
            max_recording_secs: s.max_recording_secs,
            max_recording_bytes: s.max_recording_bytes,
            client_playback: s.client_playback,
            sinks: s
                .sinks
                .iter()
                .map(|sink| SinkView {
                    id: sink.id.to_string(),
                    url: sink.url.clone(),
                    secrets: sink
                        .secrets
                        .keys()
                        .map(|name| (name.clone(), None))
                        .collect(),
                })
                .collect(),
            do_not_store: s.do_not_store,
            retention_hours: s.retention_hours,
            retention_deletes_failed: s.retention_deletes_failed,
            abandoned_after_hours: s.abandoned_after_hours,
            personal_data: s.personal_data.into(),
        }
    }
}

impl SettingsView {
    /// The settings, checked; a secret given as `null` keeps its value in `current`.
    fn into_settings(
        self,
        api: &Api,
        current: Option<&EnvironmentSettings>,
    ) -> Result<EnvironmentSettings, Problem> {
        let mut sinks = Vec::with_capacity(self.sinks.len());
        for view in self.sinks {
            let id = SinkId::new(view.id);
            let mut sink = SinkSettings::new(id.clone(), view.url);
            for (name, value) in view.secrets {
                let value = match value {
                    Some(value) => value,
                    None => current
                        .and_then(|c| c.sinks.iter().find(|s| s.id == id))
                        .and_then(|s| s.secrets.get(&name))
                        .cloned()
                        .ok_or_else(|| {
                            Problem::invalid(
                                "settings.sinks",
                                format!(
                                    "sink `{id}`: secret `{name}` is null, and the sink has no \
                                     value of it to keep: give its value"
                                ),
                            )
                        })?,
                };
                sink = sink.with_secret(name, value);
            }
            sinks.push(sink);
        }
        let mut settings = EnvironmentSettings::default()
            .with_allowed_hosts(self.allowed_hosts)
            .with_client_playback(self.client_playback)
            .with_sinks(sinks)
            .with_do_not_store(self.do_not_store)
            .with_retention_hours(self.retention_hours);
        settings.retention_deletes_failed = self.retention_deletes_failed;
        settings.abandoned_after_hours = self.abandoned_after_hours;
        settings.personal_data = self.personal_data.into();
        settings.check_retention().map_err(|e| match e {
            pipe_core::Error::Invalid { what, detail } => {
                Problem::invalid(format!("settings.{what}"), detail)
            }
            other => other.into(),
        })?;
        settings.max_recording_secs = self.max_recording_secs;
        settings.max_recording_bytes = self.max_recording_bytes;
        settings
            .host_allow_list()
            .map_err(|e| Problem::invalid("settings.allowed_hosts", e.to_string()))?;
        if settings.max_recording_secs == Some(0) || settings.max_recording_bytes == Some(0) {
            return Err(Problem::invalid(
                "settings",
                "a maximum recording time or size must be above 0",
            ));
        }
        let checked = match &api.inner.directory {
            Some(directory) => directory.check(&settings),
            None if settings.sinks.is_empty() && !settings.do_not_store => Ok(()),
            None => Err(pipe_core::Error::invalid(
                "sinks",
                "this server takes no sinks per environment",
            )),
        };
        checked.map_err(|e| match e {
            pipe_core::Error::Invalid { what, detail } => {
                Problem::invalid(format!("settings.{what}"), detail)
            }
            other => other.into(),
        })?;
        Ok(settings)
    }
}

impl From<&Environment> for EnvironmentView {
    fn from(e: &Environment) -> Self {
        Self {
            id: e.id.to_string(),
            name: e.name.clone(),
            version: e.version,
            created: e.created.to_rfc3339(),
            updated: e.updated.to_rfc3339(),
            settings: SettingsView::from(&e.settings),
        }
    }
}

/// A new environment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEnvironment {
    /// Its id: 1 to 64 characters of a-z, 0-9, `_` and `-`; generated when absent.
    id: Option<String>,
    /// A name for people (defaults to the id).
    name: Option<String>,
    /// Its settings (defaults for what is absent).
    settings: Option<SettingsView>,
}

/// A change to an environment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateEnvironment {
    /// A new name.
    name: Option<String>,
    /// New settings, replacing the old as a whole.
    settings: Option<SettingsView>,
    /// Refuse the change (412) unless the environment is at this version.
    expect_version: Option<i64>,
}

/// Environments and their list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvironmentList {
    /// By id.
    environments: Vec<EnvironmentView>,
}

/// Every version of an environment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EnvironmentVersions {
    /// Oldest first.
    versions: Vec<EnvironmentView>,
}

fn name(name: Option<String>) -> Result<Option<String>, Problem> {
    match name {
        Some(n) if n.trim().is_empty() || n.len() > 200 => {
            Err(Problem::invalid("name", "1 to 200 characters"))
        }
        other => Ok(other),
    }
}

/// The environment `id` if the caller may see it; 404 as if it did not exist otherwise.
pub(crate) async fn visible(api: &Api, caller: &Caller, id: &str) -> Result<Environment, Problem> {
    let not_found = || Problem::not_found(format_args!("environment {id}"));
    let id: EnvironmentId = id.parse().map_err(|_| not_found())?;
    if !caller.sees(&id) {
        return Err(not_found());
    }
    api.inner.environments.environment(&id).await.map_err(|e| {
        if e.is_not_found() {
            not_found()
        } else {
            e.into()
        }
    })
}

/// List the environments the key may see.
#[utoipa::path(
    get,
    path = "/v1/environments",
    tag = "environments",
    responses(
        (status = 200, description = "The environments", body = EnvironmentList),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<EnvironmentList>, Problem> {
    caller.require(Role::Viewer)?;
    let all = api.inner.environments.list_environments().await?;
    Ok(Json(EnvironmentList {
        environments: all
            .iter()
            .filter(|e| caller.sees(&e.id))
            .map(EnvironmentView::from)
            .collect(),
    }))
}

/// Create an environment (admin keys for every environment).
#[utoipa::path(
    post,
    path = "/v1/environments",
    tag = "environments",
    request_body = CreateEnvironment,
    responses(
        (status = 201, description = "Created", body = EnvironmentView),
        (status = 400, description = "The body is not valid", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The key may not manage environments", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    State(api): State<Api>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateEnvironment>,
) -> Result<(StatusCode, Json<EnvironmentView>), Problem> {
    caller.require_global_admin()?;
    let id = match body.id {
        Some(id) => id
            .parse::<EnvironmentId>()
            .map_err(|_| Problem::invalid("id", "1 to 64 characters of a-z, 0-9, '_' and '-'"))?,
        None => EnvironmentId::generate(),
    };
    let settings = body
        .settings
        .unwrap_or_default()
        .into_settings(&api, None)?;
    let mut new = NewEnvironment::new(id).with_settings(settings);
    if let Some(name) = name(body.name)? {
        new = new.with_name(name);
    }
    let created = api.inner.environments.create_environment(new).await?;
    tracing::info!(environment = %created.id, "environment created");
    Ok((StatusCode::CREATED, Json(EnvironmentView::from(&created))))
}

/// Get an environment.
#[utoipa::path(
    get,
    path = "/v1/environments/{id}",
    tag = "environments",
    params(("id" = String, Path, description = "The environment's id")),
    responses(
        (status = 200, description = "The environment", body = EnvironmentView),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such environment, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn get(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EnvironmentView>, Problem> {
    caller.require(Role::Viewer)?;
    Ok(Json(EnvironmentView::from(
        &visible(&api, &caller, &id).await?,
    )))
}

/// Every version of an environment, oldest first.
#[utoipa::path(
    get,
    path = "/v1/environments/{id}/versions",
    tag = "environments",
    params(("id" = String, Path, description = "The environment's id")),
    responses(
        (status = 200, description = "Every version", body = EnvironmentVersions),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such environment, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn versions(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EnvironmentVersions>, Problem> {
    caller.require(Role::Viewer)?;
    let env = visible(&api, &caller, &id).await?;
    let versions = api.inner.environments.environment_history(&env.id).await?;
    Ok(Json(EnvironmentVersions {
        versions: versions.iter().map(EnvironmentView::from).collect(),
    }))
}

/// Change an environment's name or settings; applies to the next connection.
#[utoipa::path(
    patch,
    path = "/v1/environments/{id}",
    tag = "environments",
    params(("id" = String, Path, description = "The environment's id")),
    request_body = UpdateEnvironment,
    responses(
        (status = 200, description = "The new version", body = EnvironmentView),
        (status = 400, description = "The body is not valid", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The key is not an admin key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such environment, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "`expect_version` is not the current version", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn update(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateEnvironment>,
) -> Result<Json<EnvironmentView>, Problem> {
    caller.require(Role::Viewer)?;
    let env = visible(&api, &caller, &id).await?;
    caller.require(Role::Admin)?;
    let mut update = EnvironmentUpdate::default();
    if let Some(name) = name(body.name)? {
        update = update.with_name(name);
    }
    if let Some(settings) = body.settings {
        update = update.with_settings(settings.into_settings(&api, Some(&env.settings))?);
    }
    if let Some(version) = body.expect_version {
        update = update.expect_version(version);
    }
    let updated = api
        .inner
        .environments
        .update_environment(&env.id, update)
        .await
        .map_err(|e| match e {
            pipe_core::Error::Precondition { detail } => {
                Problem::new(ProblemType::PreconditionFailed, detail)
            }
            other => other.into(),
        })?;
    tracing::info!(environment = %updated.id, version = updated.version, "environment updated");
    Ok(Json(EnvironmentView::from(&updated)))
}

/// Delete an environment; refused (409) while it holds recordings or webhook endpoints,
/// or valid keys are limited to it.
#[utoipa::path(
    delete,
    path = "/v1/environments/{id}",
    tag = "environments",
    params(("id" = String, Path, description = "The environment's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The key may not manage environments", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such environment, or the key may not see it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "It still holds recordings or webhook endpoints, or valid keys are limited to it", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Viewer)?;
    let env = visible(&api, &caller, &id).await?;
    caller.require_global_admin()?;
    // A key limited to this environment would see whatever is made later under its id.
    let naming: Vec<String> = api
        .inner
        .keys
        .list_api_keys()
        .await?
        .into_iter()
        .filter(|k| k.revoked.is_none() && k.environments.contains(&env.id))
        .map(|k| k.id.to_string())
        .collect();
    if !naming.is_empty() {
        return Err(Problem::new(
            ProblemType::Conflict,
            format!(
                "keys limited to environment {} are still valid ({}); revoke them first",
                env.id,
                naming.join(", ")
            ),
        ));
    }
    if let Some(store) = &api.inner.endpoints {
        let endpoints = store.endpoints(&env.id).await?;
        if !endpoints.is_empty() {
            let ids: Vec<&str> = endpoints.iter().map(|e| e.id.as_str()).collect();
            return Err(Problem::new(
                ProblemType::Conflict,
                format!(
                    "environment {} still has webhook endpoints ({}); delete them first",
                    env.id,
                    ids.join(", ")
                ),
            ));
        }
    }
    api.inner.environments.delete_environment(&env.id).await?;
    tracing::info!(environment = %env.id, "environment deleted");
    Ok(StatusCode::NO_CONTENT)
}
