//! `/v1/keys`: create (the key is shown once), list, revoke.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use pipe_core::{ApiKey, ApiKeyId, EnvironmentId, Role, Timestamp};
use pipe_http::Problem;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::JsonBody;
use crate::{Api, Caller, mint_key};

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyView {
    /// Its public id (the part after `pk_`).
    id: String,
    /// What it is for.
    label: String,
    /// `viewer`, `editor` or `admin`.
    role: &'static str,
    /// The environments it may see; empty for all.
    environments: Vec<String>,
    /// When it was made (RFC 3339).
    created: String,
    /// When it was revoked (RFC 3339), if it was.
    revoked: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            label: k.label.clone(),
            role: k.role.as_str(),
            environments: k.environments.iter().map(ToString::to_string).collect(),
            created: k.created.to_rfc3339(),
            revoked: k.revoked.map(Timestamp::to_rfc3339),
        }
    }
}

/// A key just made, with its secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedKey {
    /// The key to send as `Authorization: Bearer <key>`; it cannot be shown again.
    key: String,
    #[serde(flatten)]
    record: KeyView,
}

/// A new key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// `viewer`, `editor` or `admin`.
    role: String,
    /// What it is for (up to 200 characters).
    label: Option<String>,
    /// Limit it to these environments (default: all).
    #[serde(default)]
    environments: Vec<String>,
}

/// Every key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyList {
    /// Oldest first, revoked ones too.
    keys: Vec<KeyView>,
}

/// Create a key (admin keys for every environment).
#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "keys",
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created; the key is in the answer and nowhere else", body = CreatedKey),
        (status = 400, description = "The body is not valid", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The key may not manage keys", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn create(
    State(api): State<Api>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), Problem> {
    caller.require_global_admin()?;
    let role: Role = body
        .role
        .parse()
        .map_err(|_| Problem::invalid("role", "one of admin, editor, viewer"))?;
    let label = body.label.unwrap_or_default();
    if label.len() > 200 {
        return Err(Problem::invalid("label", "at most 200 characters"));
    }
    let mut environments = Vec::with_capacity(body.environments.len());
    for env in &body.environments {
        let id: EnvironmentId = env.parse().map_err(|_| {
            Problem::invalid("environments", format!("{env:?} is not an environment id"))
        })?;
        match api.inner.environments.environment(&id).await {
            Ok(_) => environments.push(id),
            Err(e) if e.is_not_found() => {
                return Err(Problem::invalid(
                    "environments",
                    format!("there is no environment {env}"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let minted = mint_key(label, role, environments);
    let stored = api.inner.keys.create_api_key(minted.record).await?;
    tracing::info!(new_key = %stored.id, role = %stored.role, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: minted.key,
            record: KeyView::from(&stored),
        }),
    ))
}

/// List every key (admin keys for every environment).
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    responses(
        (status = 200, description = "Every key", body = KeyList),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The key may not manage keys", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(State(api): State<Api>, caller: Caller) -> Result<Json<KeyList>, Problem> {
    caller.require_global_admin()?;
    let keys = api.inner.keys.list_api_keys().await?;
    Ok(Json(KeyList {
        keys: keys.iter().map(KeyView::from).collect(),
    }))
}

/// Revoke a key; it is refused from the next request on.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "Revoked", body = KeyView),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "The key may not manage keys", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn revoke(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, Problem> {
    caller.require_global_admin()?;
    let id: ApiKeyId = id
        .parse()
        .map_err(|_| Problem::not_found(format_args!("key {id}")))?;
    let revoked = api.inner.keys.revoke_api_key(&id, Timestamp::now()).await?;
    tracing::info!(revoked_key = %revoked.id, "API key revoked");
    Ok(Json(KeyView::from(&revoked)))
}
