//! `POST /v1/events`: events as they happen, checked one by one against the data contract and
//! appended to the event store before the answer, so that `augur flows` can act on them.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;
use crate::views::Live;

/// The store and its settings, shared by the requests.
#[derive(Debug)]
pub struct Events {
    /// Settings (`[events]`).
    pub config: augur_events::EventsConfig,
    /// The store; one batch is appended at a time.
    pub store: Mutex<augur_events::EventStore>,
    /// Contacts with posted events: a contact lookup reads the store only for these, so the
    /// lookups of everyone else cost one set lookup.
    pub contacts: std::sync::RwLock<std::collections::HashSet<String>>,
}

impl Events {
    /// Opens the store and reads which contacts it holds events of.
    ///
    /// # Errors
    /// The store cannot be opened or read.
    pub fn open(config: augur_events::EventsConfig) -> Result<Self, augur_events::Error> {
        let store = augur_events::EventStore::open(&config.store)?;
        let contacts = store.contacts()?.into_iter().collect();
        Ok(Self {
            config,
            store: Mutex::new(store),
            contacts: std::sync::RwLock::new(contacts),
        })
    }

    /// What `contact` did after `as_of` (Unix seconds), by its posted events; `None` when
    /// nothing was posted about it since.
    pub fn live(&self, contact: &str, as_of: i64) -> Result<Option<Live>, ApiError> {
        let known = self
            .contacts
            .read()
            .map_or(true, |set| set.contains(contact));
        if !known {
            return Ok(None);
        }
        let events = self
            .store
            .lock()
            .map_err(|_| ApiError::internal("the event store failed earlier; restart"))?
            .of_contact(contact, as_of, i64::MAX)
            .map_err(|e| {
                tracing::error!(error = %e, "event store not readable");
                ApiError::internal("the event store could not be read")
            })?;
        Ok((!events.is_empty()).then(|| live_view(&events)))
    }
}

impl Events {
    /// Deletes every event of `contact`; returns how many.
    ///
    /// # Errors
    /// The store cannot be written.
    pub fn forget(&self, contact: &str) -> Result<usize, String> {
        let n = self
            .store
            .lock()
            .map_err(|_| "the event store failed earlier; restart")?
            .forget(contact)
            .map_err(|e| e.to_string())?;
        if let Ok(mut contacts) = self.contacts.write() {
            contacts.remove(contact);
        }
        Ok(n)
    }
}

/// The live part of a contact's answer, from its events (oldest first).
fn live_view(events: &[augur_events::Stored]) -> Live {
    use augur_data::{EmailEventKind, WebEventKind};
    use augur_events::Body;
    let mut live = Live {
        events: events.len(),
        ..Live::default()
    };
    let mut orders = std::collections::HashSet::new();
    let mut cart: Vec<String> = Vec::new();
    let mut last_order = None;
    for s in events {
        let e = &s.event;
        match &e.body {
            Body::Order {
                order_id,
                product_id,
                quantity,
                unit_price,
            } => {
                live.revenue += quantity * unit_price;
                // A return line (negative quantity) is no order and buys nothing: training
                // skips it too.
                if *quantity > 0.0 {
                    orders.insert(
                        order_id
                            .clone()
                            .unwrap_or_else(|| e.occurred_at.to_string()),
                    );
                    last_order = last_order.max(Some(e.occurred_at));
                    cart.retain(|p| p != product_id);
                    if !live.bought.contains(product_id) {
                        live.bought.push(product_id.clone());
                    }
                }
            }
            Body::Web {
                event: WebEventKind::AddToCart,
                product_id: Some(p),
            } if !cart.contains(p) => cart.push(p.clone()),
            Body::Web {
                event: WebEventKind::RemoveFromCart,
                product_id: Some(p),
            } => cart.retain(|q| q != p),
            Body::Email { event, .. } => {
                let flags = &mut live.since;
                flags.unsubscribed |= *event == EmailEventKind::Unsubscribe;
                flags.bounced |= *event == EmailEventKind::Bounce;
                flags.complained |= *event == EmailEventKind::Complaint;
                live.opted_out |= matches!(
                    event,
                    EmailEventKind::Unsubscribe
                        | EmailEventKind::Bounce
                        | EmailEventKind::Complaint
                );
            }
            Body::Contact {
                email_consent: Some(false),
                ..
            } => live.opted_out = true,
            _ => {}
        }
    }
    // Sums of prices carry binary noise (30.979999999999997): a millionth is finer than any
    // currency's unit.
    live.revenue = (live.revenue * 1e6).round() / 1e6;
    live.orders = orders.len();
    live.since.orders = u32::try_from(orders.len()).unwrap_or(u32::MAX);
    live.since.spend = live.revenue.max(0.0);
    live.cart = cart;
    live.last_order_at = last_order
        .and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    live
}

/// Body of `POST /v1/events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsBody {
    /// Events (at most `events.max_batch`, default 1,000), each an object with `type` (`order`,
    /// `web`, `email` or `contact`), `contact_id`, `occurred_at` (RFC 3339 or Unix seconds),
    /// an optional `event_id`, and the fields of its table (docs/flows.md).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
}

/// Answer of `POST /v1/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsAnswer {
    /// Valid events in the batch.
    pub accepted: usize,
    /// Of those, stored now.
    pub stored: usize,
    /// Of those, stored before (same `event_id`, or same content without one).
    pub duplicates: usize,
    /// Refused events, by index, with the reason; the others were stored.
    #[schema(value_type = Vec<Object>)]
    pub rejected: Vec<augur_events::Rejected>,
}

/// Stores a batch of events: 202 when every event was valid, 207 when some were refused (the
/// valid ones are stored, the refused ones listed by index). Stored durably before answering.
#[utoipa::path(post, tag = "events", path = "/v1/events", request_body = EventsBody,
    responses((status = 202, body = EventsAnswer, description = "all stored (or stored before)"),
              (status = 207, body = EventsAnswer, description = "the valid events stored; the others listed with their reasons"),
              (status = 413, description = "more events than events.max_batch"), (status = 422, description = "no events")),
    security(("api_key" = [])))]
pub async fn post_events(
    State(state): State<Arc<AppState>>,
    body: Result<Json<EventsBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let Some(events) = state.events.clone() else {
        return Err(ApiError::internal("the event store is not open"));
    };
    let max = events.config.max_batch;
    if body.events.len() > max {
        return Err(ApiError::too_large(format!(
            "{} events; at most {max} per request (events.max_batch)",
            body.events.len()
        )));
    }
    if body.events.is_empty() {
        return Err(ApiError::invalid(
            "`events` is empty; send 1 or more events",
        ));
    }
    let answer = tokio::task::spawn_blocking(move || {
        let now = chrono::Utc::now().timestamp();
        let posted = body.events.len();
        // An erased contact stays erased: nothing new is stored about it.
        let forgotten = state.preferences.as_ref().map(|p| p.forgotten());
        let (valid, mut rejected) = augur_events::check_batch_refusing(
            body.events,
            now,
            events.config.max_future_seconds,
            |e| {
                forgotten
                    .as_ref()
                    .is_some_and(|f| f.contact(&e.contact_id))
                    .then(|| "the contact was erased (DELETE /v1/contacts/{id}); nothing more is kept about it".to_string())
            },
        );
        let mut store = events
            .store
            .lock()
            .map_err(|_| ApiError::internal("the event store failed earlier; restart"))?;
        let appended = store.append(&valid, now).map_err(|e| {
            tracing::error!(error = %e, "events not stored");
            ApiError::internal("the event store could not be written; retry the batch")
        })?;
        drop(store);
        // A reused id is refused by its index in the batch, as a check is.
        let refused: std::collections::HashSet<usize> = rejected.iter().map(|r| r.index).collect();
        let index_of: Vec<usize> = (0..posted).filter(|i| !refused.contains(i)).collect();
        for &position in &appended.conflicts {
            let e = &valid[position];
            rejected.push(augur_events::Rejected {
                index: index_of.get(position).copied().unwrap_or(position),
                reason: format!(
                    "`event_id` `{}` was stored before with other content (contact, time or fields); a new event needs a new id",
                    e.event_id
                ),
            });
        }
        rejected.sort_by_key(|r| r.index);
        let valid: Vec<augur_events::Event> = if appended.conflicts.is_empty() {
            valid
        } else {
            valid
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !appended.conflicts.contains(i))
                .map(|(_, e)| e)
                .collect()
        };
        if let Ok(mut contacts) = events.contacts.write() {
            contacts.extend(valid.iter().map(|e| e.contact_id.clone()));
        }
        // A `mailto:` reply or a feedback loop's complaint is an unsubscribe from everything in
        // the preference store too, so that the contact's export shows it with the rest.
        if let Some(prefs) = &state.preferences {
            prefs.record_opt_outs(&valid);
        }
        Ok::<_, ApiError>(EventsAnswer {
            accepted: valid.len(),
            stored: appended.stored,
            duplicates: appended.duplicates,
            rejected,
        })
    })
    .await
    .map_err(|_| ApiError::internal("storing the events failed"))??;
    let status = if answer.rejected.is_empty() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((status, Json(answer)).into_response())
}
