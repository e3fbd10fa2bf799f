//! Contact routes: one contact's predictions, its recommendations with filters, its best send
//! instant in a window, and batches of contacts.

use std::sync::Arc;

use augur_model::default_request;
use augur_model::{Filters, Mode, Request};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use chrono::Datelike as _;
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::state::{AppState, Loaded};
use crate::views::{self, Contact, Recommendation};
use augur_model::{Quiet, parse_within, ranked_slots};
use axum::response::{IntoResponse, Response};

/// Most recommendations per request.
const MAX_K: usize = 100;

/// Recommendation mode.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModeParam {
    /// Repeat purchases count.
    Replenish,
    /// Only products the contact never bought.
    Discover,
}

impl From<ModeParam> for Mode {
    fn from(m: ModeParam) -> Self {
        match m {
            ModeParam::Replenish => Mode::Replenish,
            ModeParam::Discover => Mode::Discover,
        }
    }
}

/// The model's index of contact `id`; 404 when the model does not know it or it was erased.
fn contact_index(state: &AppState, loaded: &Loaded, id: &str) -> Result<usize, ApiError> {
    let erased = state
        .preferences
        .as_ref()
        .is_some_and(|p| p.is_forgotten(id));
    let found = if erased {
        None
    } else {
        loaded.artifact.snapshot.contact(id)
    };
    found.ok_or_else(|| {
        ApiError::not_found(
            "unknown_contact",
            format!("no contact `{id}` in model {}", loaded.version()),
        )
    })
}

fn check_k(k: Option<usize>) -> Result<usize, ApiError> {
    match k {
        None => Ok(10),
        Some(k) if (1..=MAX_K).contains(&k) => Ok(k),
        Some(k) => Err(ApiError::invalid(format!("k: {k} is outside 1..={MAX_K}"))),
    }
}

/// A JSON answer that borrows from the loaded model: serialized here, while the model is held.
pub(crate) fn json_response(value: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| ApiError::internal(format!("writing the answer: {e}")))?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// Query of `GET /v1/contacts/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContactQuery {
    /// Include the 168-hour send-time profile.
    #[serde(default)]
    pub profile: bool,
}

/// Everything predicted for one contact.
#[utoipa::path(get, tag = "contacts", path = "/v1/contacts/{id}", params(("id" = String, Path, description = "Contact id"), ContactQuery),
    responses((status = 200, body = Contact<'_>), (status = 404, description = "unknown contact")), security(("api_key" = [])))]
pub async fn get_contact(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<ContactQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let Path(id) = id?;
    let loaded = state.current.load();
    let c = contact_index(&state, &loaded, &id)?;
    let live = match &state.events {
        Some(events) => events.live(&id, loaded.artifact.snapshot.as_of)?,
        None => None,
    };
    let mut request = default_request();
    if let Some(live) = &live {
        request.filters.exclude = live
            .bought
            .iter()
            .filter_map(|p| loaded.products.get(p).copied())
            .collect();
    }
    let mut contact = full_contact(&loaded, c, &request, query.profile);
    if let (Some(live), Some(churn)) = (&live, contact.churn.as_mut()) {
        rescore(&loaded, c, live, churn);
    }
    contact.live = live;
    json_response(&contact)
}

/// Moves the churn part of an answer with the orders and opt-outs posted since the as-of time
/// (unchanged when they move nothing).
fn rescore(loaded: &Loaded, c: usize, live: &views::Live, churn: &mut views::Churn) {
    let models = loaded.artifact.models();
    if let Some(now) = loaded
        .artifact
        .snapshot
        .churn_since(&models, c, &live.since)
    {
        *churn = views::Churn {
            risk: Some(now.risk),
            tier: now.tier,
            reasons: now.reasons,
            explanations: now.explanations,
            source: "live",
        };
    }
}

/// Every part of a contact's answer.
pub fn full_contact<'a>(
    loaded: &'a Loaded,
    c: usize,
    request: &Request,
    profile: bool,
) -> Contact<'a> {
    let Parts(parts) = Parts::all(profile);
    contact_parts(loaded, c, request, &parts)
}

/// Query of `GET /v1/contacts/{id}/recommendations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecommendationQuery {
    /// How many (1–100, default 10).
    pub k: Option<usize>,
    /// `replenish` (default) or `discover`.
    pub mode: Option<ModeParam>,
    /// Only these categories (comma-separated names).
    pub category: Option<String>,
    /// Only products in stock.
    #[serde(default)]
    pub in_stock: bool,
    /// Never these product ids (comma-separated).
    pub exclude: Option<String>,
}

/// Recommendations answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendations<'a> {
    /// Contact id.
    pub contact_id: &'a str,
    /// Model version that answered.
    pub model_version: &'a str,
    /// Best first.
    pub recommendations: Vec<Recommendation<'a>>,
}

fn comma_list(raw: Option<&str>) -> impl Iterator<Item = &str> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Ranked products for one contact, with mode and filters.
#[utoipa::path(get, tag = "contacts", path = "/v1/contacts/{id}/recommendations", params(("id" = String, Path, description = "Contact id"), RecommendationQuery),
    responses((status = 200, body = Recommendations<'_>), (status = 404, description = "unknown contact"), (status = 422, description = "bad k or category")), security(("api_key" = [])))]
pub async fn get_recommendations(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<RecommendationQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let Path(id) = id?;
    let loaded = state.current.load();
    let c = contact_index(&state, &loaded, &id)?;
    let catalog = &loaded.artifact.snapshot.products;
    let categories = comma_list(query.category.as_deref())
        .map(|name| {
            catalog.category_index(name).ok_or_else(|| {
                ApiError::invalid(format!(
                    "category: no category `{name}`; categories: {}",
                    catalog.categories.join(", ")
                ))
            })
        })
        .collect::<Result<Vec<u32>, ApiError>>()?;
    // Excluding a product the model does not know changes nothing, so it is not an error.
    let exclude = comma_list(query.exclude.as_deref())
        .filter_map(|p| loaded.products.get(p).copied())
        .collect();
    let request = Request {
        mode: query.mode.map_or(Mode::Replenish, Mode::from),
        k: check_k(query.k)?,
        filters: Filters {
            in_stock_only: query.in_stock,
            exclude,
            categories,
        },
    };
    let models = loaded.artifact.models();
    let recs = loaded.artifact.snapshot.recommend(&models, c, &request);
    json_response(&Recommendations {
        contact_id: &id,
        model_version: loaded.version(),
        recommendations: views::recommendations(&models, catalog, &recs),
    })
}

/// Query of `GET /v1/contacts/{id}/send-time`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SendTimeQuery {
    /// Window start, RFC 3339 (default: now).
    pub after: Option<String>,
    /// Window length: `24h` (default), `90m`, `2d`; at most 14 days.
    pub within: Option<String>,
    /// Local quiet hours, `HH:MM-HH:MM` (e.g. `21:00-08:00`).
    pub quiet: Option<String>,
}

/// One candidate send instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendSlot {
    /// UTC, RFC 3339.
    pub send_at_utc: String,
    /// The contact's local time, RFC 3339 with offset.
    pub send_at_local: String,
    /// Local hour of the week (Monday 00:00 = 0).
    pub hour_of_week: usize,
    /// Expected engagement share from sending then.
    pub score: f64,
}

/// Best send instant answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendTime {
    /// Contact id.
    pub contact_id: String,
    /// Model version that answered.
    pub model_version: String,
    /// IANA zone of the local times.
    pub timezone: String,
    /// The best instant.
    pub best: SendSlot,
    /// The next best instants.
    pub runner_up: Vec<SendSlot>,
    /// Own evidence against the priors, 0–1.
    pub confidence: f64,
    /// Which profile dominated: `own`, `cluster` or `population`.
    pub fallback: &'static str,
}

/// The best instant to send to one contact inside a window.
#[utoipa::path(get, tag = "contacts", path = "/v1/contacts/{id}/send-time", params(("id" = String, Path, description = "Contact id"), SendTimeQuery),
    responses((status = 200, body = SendTime), (status = 404, description = "unknown contact"), (status = 422, description = "bad window, or no sendable instant in it")), security(("api_key" = [])))]
pub async fn get_send_time(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<SendTimeQuery>, QueryRejection>,
) -> Result<Json<SendTime>, ApiError> {
    let Query(query) = query?;
    let Path(id) = id?;
    let loaded = state.current.load();
    let c = contact_index(&state, &loaded, &id)?;
    let after = match query.after.as_deref() {
        None => Utc::now(),
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map_err(|e| {
                ApiError::invalid(format!(
                    "after: `{raw}` is not an RFC 3339 instant such as 2026-11-28T06:00:00Z ({e})"
                ))
            })?
            .with_timezone(&Utc),
    };
    let within =
        parse_within(query.within.as_deref().unwrap_or("24h")).map_err(ApiError::invalid)?;
    // Every answer is an RFC 3339 instant, whose year has four digits.
    let last = DateTime::<Utc>::from_naive_utc_and_offset(
        chrono::NaiveDate::from_ymd_opt(9999, 12, 30)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or_default(),
        Utc,
    );
    if after + within > last {
        return Err(ApiError::invalid(format!(
            "after: `{after}` plus `within` ends past the year 9999; ask for an instant before {last}",
        )));
    }
    // Before 1972 some zones' offsets had seconds (local mean time), which an RFC 3339 local
    // instant cannot express, and no send is planned in the past anyway.
    if after.year() < 1972 {
        return Err(ApiError::invalid(format!(
            "after: `{after}` is before 1972; ask for an instant from 1972 on"
        )));
    }
    let quiet = query
        .quiet
        .as_deref()
        .map(Quiet::parse)
        .transpose()
        .map_err(ApiError::invalid)?;
    let snapshot = &loaded.artifact.snapshot;
    let models = loaded.artifact.models();
    let predicted = models.send_time.predict(snapshot.engagement(c));
    let scores = models.send_time.send_scores(&predicted.profile);
    let zone = snapshot.timezone[c];
    let slots = ranked_slots(&scores, zone, after, within, quiet);
    let view = |s: &augur_model::Slot| SendSlot {
        send_at_utc: s.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        send_at_local: s
            .at
            .with_timezone(&zone)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        hour_of_week: s.hour_of_week,
        score: s.score,
    };
    let best = slots.first().map(view).ok_or_else(|| {
        ApiError::invalid("no instant in the window lies outside the quiet hours; widen `within` or narrow `quiet`")
    })?;
    Ok(Json(SendTime {
        contact_id: id,
        model_version: loaded.version().to_string(),
        timezone: zone.name().to_string(),
        best,
        runner_up: slots.iter().skip(1).take(3).map(view).collect(),
        confidence: predicted.confidence,
        fallback: predicted.source.name(),
    }))
}

/// A part of a contact's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Churn risk, tier and reasons.
    Churn,
    /// Recommendations.
    Recommendations,
    /// Category affinity.
    CategoryAffinity,
    /// Send-time summary.
    SendTime,
    /// Send-time summary with the 168-hour profile.
    SendTimeProfile,
    /// Segment membership.
    Segments,
}

struct Parts(Vec<Part>);

impl Parts {
    fn all(profile: bool) -> Self {
        let send = if profile {
            Part::SendTimeProfile
        } else {
            Part::SendTime
        };
        Self(vec![
            Part::Churn,
            Part::Recommendations,
            Part::CategoryAffinity,
            send,
            Part::Segments,
        ])
    }
}

fn contact_parts<'a>(
    loaded: &'a Loaded,
    c: usize,
    request: &Request,
    parts: &[Part],
) -> Contact<'a> {
    let snapshot = &loaded.artifact.snapshot;
    let models = loaded.artifact.models();
    let has = |part: Part| parts.contains(&part);
    Contact {
        contact_id: snapshot.contacts.name(c as u32),
        model_version: loaded.version(),
        as_of: &loaded.artifact.manifest.as_of,
        churn: has(Part::Churn).then(|| {
            views::churn(
                snapshot.churn(&models, c),
                snapshot.churn_explanations(&models, c),
            )
        }),
        recommendations: has(Part::Recommendations).then(|| {
            let recs = snapshot.recommend(&models, c, request);
            views::recommendations(&models, &snapshot.products, &recs)
        }),
        category_affinity: has(Part::CategoryAffinity).then(|| views::categories(snapshot, c)),
        send_time: (has(Part::SendTime) || has(Part::SendTimeProfile))
            .then(|| views::send_time(snapshot, &models, c, has(Part::SendTimeProfile))),
        segments: has(Part::Segments).then(|| loaded.segments_of(c)),
        live: None,
    }
}

/// Body of `POST /v1/score`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBody {
    /// Contact ids (at most `serve.max_batch`, default 10,000).
    pub ids: Vec<String>,
    /// Parts wanted (default: all but the send-time profile).
    #[serde(default)]
    pub fields: Vec<Part>,
    /// Recommendations per contact (1–100, default 10).
    pub k: Option<usize>,
    /// Recommendation mode.
    pub mode: Option<ModeParam>,
}

/// Answer of `POST /v1/score`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scores<'a> {
    /// Model version that answered.
    pub model_version: &'a str,
    /// One entry per known id, in request order.
    pub contacts: Vec<Contact<'a>>,
    /// Ids the model does not know, in request order.
    pub unknown_ids: Vec<&'a str>,
}

/// Most recommendations one `POST /v1/score` answer carries (distinct ids × `k`): 10,000 ids at
/// the default `k` of 10. Bounds the memory of an answer, which is built whole.
pub const MAX_SCORE_RECOMMENDATIONS: usize = 100_000;

/// Predictions for many contacts at once; unknown ids are listed, not fatal.
#[utoipa::path(post, tag = "contacts", path = "/v1/score", request_body = ScoreBody,
    responses((status = 200, body = Scores<'_>), (status = 413, description = "more ids than serve.max_batch, or more than 100,000 recommendations (distinct ids × k)"), (status = 422, description = "bad body"), (status = 503, description = "4 batch scorings already running")), security(("api_key" = [])))]
pub async fn post_score(
    State(state): State<Arc<AppState>>,
    body: Result<Json<ScoreBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(mut body) = body?;
    if body.ids.len() > state.config.max_batch {
        return Err(ApiError::too_large(format!(
            "{} ids; at most {} per request (serve.max_batch)",
            body.ids.len(),
            state.config.max_batch
        )));
    }
    // An id asked twice is answered once.
    let mut seen = std::collections::HashSet::with_capacity(body.ids.len());
    body.ids.retain(|id| seen.insert(id.clone()));
    let request = Request {
        mode: body.mode.map_or(Mode::Replenish, Mode::from),
        k: check_k(body.k)?,
        filters: Filters::default(),
    };
    let parts = if body.fields.is_empty() {
        Parts::all(false).0
    } else {
        body.fields
    };
    let wanted = body.ids.len() * request.k;
    if parts.contains(&Part::Recommendations) && wanted > MAX_SCORE_RECOMMENDATIONS {
        return Err(ApiError::too_large(format!(
            "{} ids × k {} = {wanted} recommendations; at most {MAX_SCORE_RECOMMENDATIONS} per request: ask for fewer ids or a smaller k",
            body.ids.len(),
            request.k
        )));
    }
    let Ok(_slot) = state.scoring.try_acquire() else {
        return Err(ApiError::overloaded(format!(
            "{} batch scorings are running; retry shortly",
            crate::state::SCORING_SLOTS
        )));
    };
    let loaded = state.current.load_full();
    let forgotten = state.preferences.as_ref().map(|p| p.forgotten());
    tokio::task::spawn_blocking(move || {
        let snapshot = &loaded.artifact.snapshot;
        let found: Vec<Option<Contact<'_>>> = body
            .ids
            .par_iter()
            .map(|id| {
                snapshot
                    .contact(id)
                    .filter(|_| !forgotten.as_ref().is_some_and(|f| f.contact(id)))
                    .map(|c| contact_parts(&loaded, c, &request, &parts))
            })
            .collect();
        let unknown_ids = body
            .ids
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(id, _)| id.as_str())
            .collect();
        json_response(&Scores {
            model_version: loaded.version(),
            contacts: found.into_iter().flatten().collect(),
            unknown_ids,
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("scoring stopped: {e}")))?
}
