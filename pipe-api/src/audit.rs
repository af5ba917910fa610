//! `GET /v1/audit`: the audit log, filtered and paged (admin keys for every environment).
//! Every API call is an entry of it ([`crate::log::access`]).

use axum::Json;
use axum::extract::State;
use pipe_core::{AuditFilter, AuditRecord, EnvironmentId, Timestamp};
use pipe_http::{Problem, ProblemType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::extract::QueryParams;
use crate::{Api, Caller};

/// One entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditView {
    /// Its number: one more than the entry before.
    seq: u64,
    /// When (RFC 3339).
    at: String,
    /// Who: `key:<id>`, `link`, `system`, `cli`, `anonymous`.
    actor: String,
    /// The actor's role, if it has one.
    role: Option<String>,
    /// What: for API calls the method and route (`DELETE /v1/recordings/{id}`).
    action: String,
    /// On what: `recording:<id>`, `environment:<id>`, `key:<id>`, `webhook:<id>`, or empty.
    target: String,
    /// What came of it: the HTTP status for API calls, `ok` otherwise.
    outcome: String,
    /// The environment the target belongs to, where known.
    environment: Option<String>,
    /// The caller's IP address, only where the environment collects them.
    ip: Option<String>,
    /// A few more words (an erasure's reason, the file a link fetched).
    detail: Option<String>,
    /// The hash of the entry before it (64 zeros for the first).
    prev: String,
    /// Its own hash: SHA-256 over `prev` and its fields (see `pipe audit verify`).
    hash: String,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        Self {
            seq: r.seq,
            at: r.entry.at.to_rfc3339(),
            actor: r.entry.actor,
            role: r.entry.role,
            action: r.entry.action,
            target: r.entry.target,
            outcome: r.entry.outcome,
            environment: r.entry.environment.map(|e| e.to_string()),
            ip: r.entry.ip,
            detail: r.entry.detail,
            prev: r.prev,
            hash: r.hash,
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Oldest first.
    entries: Vec<AuditView>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_after: Option<u64>,
}

/// Filters and paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only entries after this number (the `next_after` of the previous page).
    after: Option<String>,
    /// Only this actor's (`key:<id>`, `system`, …).
    actor: Option<String>,
    /// Only this action's (`DELETE /v1/recordings/{id}`, `recording.erased`, …).
    action: Option<String>,
    /// Only about this target (`recording:<id>`, …).
    target: Option<String>,
    /// Only entries of this environment.
    environment: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    from: Option<String>,
    /// Only entries before this time (RFC 3339).
    until: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// Read the audit log.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the audit log", body = AuditPage),
        (status = 400, description = "A parameter is not valid", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin key for every environment", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "This server keeps no audit log", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests", body = crate::openapi::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(crate) async fn list(
    State(api): State<Api>,
    caller: Caller,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<AuditPage>, Problem> {
    caller.require_global_admin()?;
    let Some(log) = api.inner.audit.as_ref() else {
        return Err(Problem::new(
            ProblemType::NotFound,
            "this server keeps no audit log",
        ));
    };
    let limit = crate::extract::limit(query.limit.as_deref(), 100)?;
    let time = |field: &'static str, value: Option<&str>| -> Result<Option<Timestamp>, Problem> {
        value.map(|v| crate::extract::time(field, v)).transpose()
    };
    let mut filter = AuditFilter::default().limit(limit).between(
        time("from", query.from.as_deref())?,
        time("until", query.until.as_deref())?,
    );
    if let Some(after) = query.after.as_deref() {
        filter = filter.after(
            after
                .parse()
                .map_err(|_| Problem::invalid("after", "an entry's number (`seq`)"))?,
        );
    }
    if let Some(actor) = query.actor {
        filter = filter.actor(printable("actor", actor)?);
    }
    if let Some(action) = query.action {
        filter = filter.action(printable("action", action)?);
    }
    if let Some(target) = query.target {
        filter = filter.target(printable("target", target)?);
    }
    if let Some(environment) = query.environment.as_deref() {
        let environment: EnvironmentId = environment
            .parse()
            .map_err(|_| Problem::invalid("environment", "an environment's id"))?;
        filter = filter.environments(vec![environment]);
    }
    let entries = log.audit_entries(filter).await?;
    let next_after = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditView::from).collect(),
        next_after,
    }))
}

/// A text filter as entries hold them: printable ASCII, up to 200 characters.
fn printable(field: &'static str, value: String) -> Result<String, Problem> {
    if value.len() <= 200 && value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Ok(value)
    } else {
        Err(Problem::invalid(
            field,
            "printable ASCII, up to 200 characters, as the entries hold it",
        ))
    }
}
