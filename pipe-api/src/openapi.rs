//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::{audit, deliveries, environments, keys, recordings, webhooks};

/// An error (RFC 9457), answered with `Content-Type: application/problem+json`.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documents pipe_http::Problem's wire form; never built
pub(crate) struct ProblemDoc {
    /// A stable URI per kind of problem, `urn:pipe:problem:<slug>`.
    #[serde(rename = "type")]
    kind: String,
    /// A summary of the kind of problem.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What happened, and what to do about it.
    detail: String,
    /// For bad input: the field at fault.
    field: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pipe API",
        description = "The operator's API of a self-hosted Pipe server: recordings, environments, API keys and webhook deliveries.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0")
    ),
    paths(
        recordings::list,
        recordings::get,
        recordings::delete,
        deliveries::of_recording,
        deliveries::log,
        deliveries::redeliver,
        environments::list,
        environments::create,
        environments::get,
        environments::update,
        environments::delete,
        environments::versions,
        webhooks::list,
        webhooks::create,
        webhooks::get,
        webhooks::update,
        webhooks::delete,
        webhooks::rotate,
        webhooks::test,
        keys::list,
        keys::create,
        keys::revoke,
        audit::list,
    ),
    modifiers(&Security),
    tags(
        (name = "recordings", description = "Recordings and their files"),
        (name = "environments", description = "An operator's sites or stages and their settings"),
        (name = "keys", description = "API keys"),
        (name = "audit", description = "The audit log: every API call, download through a link, erasure and retention deletion, chained by SHA-256"),
        (name = "webhooks", description = "Webhook endpoints of environments, the log of every delivery attempt, and redelivery"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pk_<id>_<secret>")
                    .description(Some("An API key; `X-PIPE-AUTH: <key>` is accepted too."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "pipe_auth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-PIPE-AUTH"))),
        );
    }
}

/// The API's OpenAPI 3.1 document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /v1/openapi.json`.
pub(crate) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
