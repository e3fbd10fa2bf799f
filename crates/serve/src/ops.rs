//! Operations routes: liveness, readiness, metrics, the OpenAPI document and model reloads.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::error::ApiError;
use crate::state::AppState;

/// Alive (the process answers).
#[utoipa::path(get, tag = "operations", path = "/healthz", responses((status = 200, description = "alive")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Whether to send traffic here: false while shutting down (see
    /// `serve.shutdown_delay_seconds`) or when the model holds no contact.
    pub ready: bool,
    /// Why not, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Why the newest model in the models directory did not load, when it did not; the model
    /// named by `model_version` keeps answering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_error: Option<String>,
    /// Model version answering.
    pub model_version: String,
    /// Contacts loaded.
    pub contacts: usize,
}

/// Ready: a model with contacts is loaded and the service is not shutting down (503 otherwise).
#[utoipa::path(get, tag = "operations", path = "/readyz", responses((status = 200, body = Ready), (status = 503, body = Ready, description = "shutting down, or the model holds no contact")))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Ready>) {
    let loaded = state.current.load();
    let reason = state.not_ready_because();
    let status = if reason.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let ready = Ready {
        ready: reason.is_none(),
        reason,
        reload_error: state.reload_error(),
        model_version: loaded.version().to_string(),
        contacts: loaded.artifact.snapshot.len(),
    };
    (status, Json(ready))
}

/// Prometheus metrics.
#[utoipa::path(get, tag = "operations", path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Reload answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reloaded {
    /// Whether a different model was swapped in.
    pub reloaded: bool,
    /// Model version answering now.
    pub model_version: String,
}

/// Loads the model `models/current` names now and swaps it in atomically; requests in flight
/// finish on the old one.
#[utoipa::path(post, tag = "operations", path = "/v1/admin/reload", responses((status = 200, body = Reloaded), (status = 403, description = "not an admin key")), security(("admin_key" = [])))]
pub async fn reload(State(state): State<Arc<AppState>>) -> Result<Json<Reloaded>, ApiError> {
    let reloaded = state.reload().await.map_err(|e| {
        ApiError::internal(format!(
            "the newer model could not be loaded; still serving the current one: {e}"
        ))
    })?;
    Ok(Json(Reloaded {
        reloaded: reloaded.is_some(),
        model_version: state.current.load().version().to_string(),
    }))
}

/// The OpenAPI document, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "augur", description = "Churn risk, product affinity, best send time and predictive segments per contact."),
    paths(
        healthz, readyz, metrics, openapi, reload,
        crate::contacts::get_contact, crate::contacts::get_recommendations,
        crate::contacts::get_send_time, crate::contacts::post_score,
        crate::segments::list, crate::segments::contacts, crate::segments::preview,
        crate::events::post_events,
        crate::privacy::export, crate::privacy::forget,
        crate::preferences::page, crate::preferences::post,
    ),
    // Schemas that only query parameters reference are not collected from the paths.
    components(schemas(crate::segments::Format)),
    tags(
        (name = "contacts", description = "One contact's or a batch's predictions: churn, recommendations, send time, segments."),
        (name = "segments", description = "Predictive segments: the list, their members, and ad-hoc previews."),
        (name = "events", description = "Events as they happen (orders, web and e-mail events, contact changes), for triggered series."),
        (name = "privacy", description = "Data-subject rights: a contact's export and its erasure (admin key)."),
        (name = "preferences", description = "The links in every message: RFC 8058 one-click unsubscribe and the preference page (the token is the credential)."),
        (name = "operations", description = "Health, readiness, metrics, this document and model reloads."),
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["api_key", "admin_key"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, tag = "operations", path = "/openapi.json", responses((status = 200, description = "the OpenAPI document of the service")))]
pub async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
