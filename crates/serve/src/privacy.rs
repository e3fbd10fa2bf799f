//! Data-subject rights (GDPR Articles 15, 17 and 20; CCPA's right to know and to delete):
//! `GET /v1/contacts/{id}/export` gives everything augur holds about a contact as one JSON
//! document, `DELETE /v1/contacts/{id}` erases it. Both need an admin key.
//!
//! The service holds the model's answers, the posted events and the preference store; what the
//! campaign and series stages hold (planned and sent messages, enrollments) comes from a
//! [`ContactRecords`] the binary supplies, so that this crate need not know the outbox.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;

/// What the campaign and series stages hold about a contact.
pub trait ContactRecords: Send + Sync {
    /// Sections for the contact's export (e.g. `messages`, `series`), as JSON.
    ///
    /// # Errors
    /// A store could not be read.
    fn export(&self, contact: &str) -> Result<serde_json::Map<String, Value>, String>;

    /// Erases the contact there: queued messages cancelled, personal data removed from the
    /// rows kept for reports, its address added to the erased hashes. Returns what was done.
    ///
    /// # Errors
    /// A store could not be written.
    fn forget(&self, contact: &str) -> Result<Value, String>;
}

fn erased(state: &AppState, id: &str) -> bool {
    state
        .preferences
        .as_ref()
        .is_some_and(|p| p.is_forgotten(id))
}

/// Everything augur holds about one contact, as one JSON document.
#[utoipa::path(get, tag = "privacy", path = "/v1/contacts/{id}/export", params(("id" = String, Path, description = "Contact id")),
    responses((status = 200, description = "predictions with their reasons, segments, posted events, preferences and their history, planned and sent messages"),
              (status = 404, description = "unknown or erased contact"), (status = 403, description = "not an admin key")), security(("admin_key" = [])))]
pub async fn export(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    if erased(&state, &id) {
        return Err(unknown(&id));
    }
    let state2 = state.clone();
    let doc = tokio::task::spawn_blocking(move || {
        let loaded = state2.current.load();
        let mut doc = serde_json::Map::new();
        doc.insert("contact_id".into(), json!(id));
        doc.insert("exported_at".into(), json!(chrono::Utc::now().to_rfc3339()));
        doc.insert("model_version".into(), json!(loaded.version()));
        let mut known = false;
        let prediction = loaded.artifact.snapshot.contact(&id).map(|c| {
            known = true;
            let request = augur_model::default_request();
            let contact = crate::contacts::full_contact(&loaded, c, &request, true);
            serde_json::to_value(&contact).unwrap_or(Value::Null)
        });
        doc.insert("predictions".into(), prediction.unwrap_or(Value::Null));
        if let Some(events) = &state2.events {
            let posted = events
                .store
                .lock()
                .map_err(|_| ApiError::internal("the event store failed earlier; restart"))?
                .of_contact(&id, i64::MIN, i64::MAX)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            known |= !posted.is_empty();
            let posted: Vec<Value> = posted
                .iter()
                .map(|s| serde_json::to_value(&s.event).unwrap_or(Value::Null))
                .collect();
            doc.insert("posted_events".into(), json!(posted));
        }
        if let Some(prefs) = &state2.preferences {
            let p = prefs.export(&id).map_err(ApiError::internal)?;
            known |= !p["history"].as_array().is_none_or(Vec::is_empty);
            doc.insert("preferences".into(), p);
        }
        if let Some(records) = &state2.records {
            let sections = records.export(&id).map_err(ApiError::internal)?;
            known |= sections
                .values()
                .any(|v| v.as_array().is_some_and(|a| !a.is_empty()));
            doc.extend(sections);
        }
        if !known {
            return Err(unknown(&id));
        }
        Ok(Value::Object(doc))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the export stopped: {e}")))??;
    crate::contacts::json_response(&doc)
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found("unknown_contact", format!("no contact `{id}`"))
}

/// Erases a contact: from now on every contact route answers 404 for it, no message leaves for
/// it, and its id and address are kept only as salted hashes so that no export brings it back.
#[utoipa::path(delete, tag = "privacy", path = "/v1/contacts/{id}", params(("id" = String, Path, description = "Contact id")),
    responses((status = 200, description = "erased (again: erasing twice is harmless)"), (status = 403, description = "not an admin key")), security(("admin_key" = [])))]
pub async fn forget(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let Some(prefs) = state.preferences.clone() else {
        return Err(ApiError::internal(
            "the preference store is not open, so nothing can be erased",
        ));
    };
    let state2 = state.clone();
    let answer = tokio::task::spawn_blocking(move || {
        prefs.forget(&id, None).map_err(ApiError::internal)?;
        let events = match &state2.events {
            Some(events) => events.forget(&id).map_err(ApiError::internal)?,
            None => 0,
        };
        let elsewhere = match &state2.records {
            Some(records) => records.forget(&id).map_err(ApiError::internal)?,
            None => Value::Null,
        };
        tracing::info!("a contact was erased");
        Ok::<_, ApiError>(json!({
            "contact_id": id, "erased": true, "posted_events_deleted": events, "records": elsewhere,
        }))
    })
    .await
    .map_err(|e| ApiError::internal(format!("the erasure stopped: {e}")))??;
    crate::contacts::json_response(&answer)
}
