//! Segment routes: the catalogue, a segment's contacts (streamed, or paged with a cursor), and
//! previews of ad-hoc rules.

use std::convert::Infallible;
use std::sync::Arc;

use augur_segment::{Matcher, Rule};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::state::{AppState, Loaded};

/// Contacts evaluated per streamed chunk: about 70 KB of JSON lines. With the channel's two
/// chunks and hyper's write buffer (about 400 KB), a client that stops reading holds well
/// under a megabyte, however large the segment.
const CHUNK: usize = 1_024;

/// Seconds a streamed listing waits for a client that reads nothing before it gives up.
const STALLED_SECONDS: u64 = 60;

/// A segment in the catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentInfo {
    /// Name (use it in `/v1/segments/{name}/contacts` and campaign files).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Built in (a configured segment of the same name replaces it).
    pub builtin: bool,
    /// The rule, in the JSON rule language.
    #[schema(value_type = Object)]
    pub rule: serde_json::Value,
    /// Contacts in it now (erased ones left out, as from its listing).
    pub contacts: usize,
}

/// The segment catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentList {
    /// Model version the counts come from.
    pub model_version: String,
    /// Contacts in the model.
    pub contacts: usize,
    /// Segments by name.
    pub segments: Vec<SegmentInfo>,
}

/// Every segment with its rule and size.
#[utoipa::path(get, tag = "segments", path = "/v1/segments", responses((status = 200, body = SegmentList)), security(("api_key" = [])))]
pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<SegmentList>, ApiError> {
    let loaded = state.current.load_full();
    let forgotten = state
        .preferences
        .as_ref()
        .map(|p| p.forgotten())
        .unwrap_or_default();
    let list = tokio::task::spawn_blocking(move || {
        let sizes = loaded.listed_segment_sizes(&forgotten);
        SegmentList {
            model_version: loaded.version().to_string(),
            contacts: loaded.artifact.snapshot.len(),
            segments: loaded
                .segments
                .iter()
                .zip(&sizes)
                .map(|(s, n)| SegmentInfo {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    builtin: s.builtin,
                    rule: serde_json::to_value(&s.rule).unwrap_or_default(),
                    contacts: *n,
                })
                .collect(),
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("counting stopped: {e}")))?;
    Ok(Json(list))
}

/// Output format of a listing.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// CSV with a header line.
    Csv,
}

/// Query of `GET /v1/segments/{name}/contacts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListingQuery {
    /// `jsonl` (default) or `csv`.
    #[serde(default)]
    pub format: Format,
    /// Page size; without it the whole segment streams in one response.
    pub limit: Option<usize>,
    /// Where to continue, from the previous page's `x-next-cursor` header.
    pub cursor: Option<String>,
}

/// One line of a JSON-lines listing.
#[derive(Serialize)]
struct ListedRow<'a> {
    contact_id: &'a str,
    churn_risk: Option<f64>,
    churn_tier: &'static str,
}

fn row(loaded: &Loaded, c: usize, format: Format, out: &mut Vec<u8>) {
    let snapshot = &loaded.artifact.snapshot;
    let id = snapshot.contacts.name(c as u32);
    let risk = snapshot.churn_risk(c);
    let tier = snapshot.churn_tier(c);
    match format {
        Format::Jsonl => {
            let line = ListedRow {
                contact_id: id,
                churn_risk: risk,
                churn_tier: tier,
            };
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &line);
        }
        Format::Csv => {
            if id.contains([',', '"', '\n', '\r']) {
                out.push(b'"');
                out.extend_from_slice(id.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(id.as_bytes());
            }
            out.push(b',');
            if let Some(r) = risk {
                out.extend_from_slice(format!("{r}").as_bytes());
            }
            out.push(b',');
            out.extend_from_slice(tier.as_bytes());
        }
    }
    out.push(b'\n');
}

/// Rows of matching contacts in `from..to`, and the next contact after the last one scanned
/// when `limit` matches were reached first.
/// Whether contact `c` is listed: in the segment, and not erased.
fn member<'a>(
    loaded: &'a Loaded,
    matcher: &'a Matcher,
    forgotten: &'a augur_consent::Forgotten,
) -> impl Fn(usize) -> bool + 'a {
    let models = loaded.artifact.models();
    let snapshot = &loaded.artifact.snapshot;
    move |c| {
        matcher.matches(&loaded.fields.record(snapshot, &models, c))
            && !forgotten.contact(snapshot.contacts.name(c as u32))
    }
}

fn scan(
    loaded: &Loaded,
    member: &dyn Fn(usize) -> bool,
    from: usize,
    to: usize,
    format: Format,
    limit: usize,
    out: &mut Vec<u8>,
) -> (usize, Option<usize>) {
    let mut found = 0;
    for c in from..to {
        if member(c) {
            row(loaded, c, format, out);
            found += 1;
            if found == limit {
                return (found, Some(c + 1).filter(|next| *next < to));
            }
        }
    }
    (found, None)
}

fn parse_cursor(raw: &str, loaded: &Loaded) -> Result<usize, ApiError> {
    let (version, index) = raw.split_once('.').ok_or_else(|| {
        ApiError::invalid(format!(
            "cursor: `{raw}` is not a cursor from x-next-cursor"
        ))
    })?;
    let index: usize = index.parse().map_err(|_| {
        ApiError::invalid(format!(
            "cursor: `{raw}` is not a cursor from x-next-cursor"
        ))
    })?;
    if version != loaded.version() {
        return Err(ApiError::conflict(format!(
            "the cursor belongs to model {version}; model {} answers now; start the listing again",
            loaded.version()
        )));
    }
    Ok(index.min(loaded.artifact.snapshot.len()))
}

/// The contacts of a segment: streamed whole, or one page at a time with `limit` and `cursor`.
#[utoipa::path(get, tag = "segments", path = "/v1/segments/{name}/contacts", params(("name" = String, Path, description = "Segment name"), ListingQuery),
    responses((status = 200, description = "JSON lines or CSV: contact_id, churn_risk, churn_tier; `x-next-cursor` when more pages follow"),
        (status = 404, description = "unknown segment"), (status = 409, description = "cursor from an older model")), security(("api_key" = [])))]
pub async fn contacts(
    State(state): State<Arc<AppState>>,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<ListingQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let Path(name) = name?;
    let loaded = state.current.load_full();
    // Erased contacts are left out of every listing.
    let forgotten = state
        .preferences
        .as_ref()
        .map(|p| p.forgotten())
        .unwrap_or_default();
    let Some(index) = loaded.segments.iter().position(|s| s.name == name) else {
        let names: Vec<&str> = loaded.segments.iter().map(|s| s.name.as_str()).collect();
        return Err(ApiError::not_found(
            "unknown_segment",
            format!("no segment `{name}`; segments: {}", names.join(", ")),
        ));
    };
    let start = query
        .cursor
        .as_deref()
        .map(|c| parse_cursor(c, &loaded))
        .transpose()?
        .unwrap_or(0);
    let format = query.format;
    let content_type = match format {
        Format::Jsonl => "application/x-ndjson",
        Format::Csv => "text/csv; charset=utf-8",
    };
    let header_line: &[u8] = match format {
        Format::Csv => b"contact_id,churn_risk,churn_tier\n",
        Format::Jsonl => b"",
    };
    let n = loaded.artifact.snapshot.len();
    if let Some(limit) = query.limit {
        if limit == 0 || limit > state.config.max_page {
            return Err(ApiError::invalid(format!(
                "limit: {limit} is outside 1..={} (serve.max_page)",
                state.config.max_page
            )));
        }
        let (body, next) = tokio::task::spawn_blocking(move || {
            let mut out = header_line.to_vec();
            let member = member(&loaded, &loaded.segments[index].matcher, &forgotten);
            let (_, next) = scan(&loaded, &member, start, n, format, limit, &mut out);
            (out, next.map(|c| format!("{}.{c}", loaded.version())))
        })
        .await
        .map_err(|e| ApiError::internal(format!("listing stopped: {e}")))?;
        let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
        if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert("x-next-cursor", next);
        }
        return Ok(response);
    }
    // The whole segment, chunk by chunk: a bounded channel holds at most two chunks, so a
    // million-contact audience streams in constant memory at the client's pace.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    tokio::task::spawn_blocking(move || {
        // A client that takes no chunk for STALLED_SECONDS is let go: its listing ends there
        // (an unfinished chunked body, which its HTTP client reports), and the thread is freed.
        let runtime = tokio::runtime::Handle::current();
        let stalled = std::time::Duration::from_secs(STALLED_SECONDS);
        let send = |chunk: Bytes| runtime.block_on(tx.send_timeout(chunk, stalled)).is_ok();
        if !header_line.is_empty() && !send(Bytes::from_static(header_line)) {
            return;
        }
        let member = member(&loaded, &loaded.segments[index].matcher, &forgotten);
        let mut from = start;
        while from < n {
            let to = (from + CHUNK).min(n);
            let mut out = Vec::new();
            scan(&loaded, &member, from, to, format, usize::MAX, &mut out);
            if !out.is_empty() && !send(Bytes::from(out)) {
                return; // the client went away or stopped reading
            }
            from = to;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Body of `POST /v1/segments/preview`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// A rule in the JSON rule language (see `docs/segments.md`).
    #[schema(value_type = Object)]
    pub rule: Rule,
    /// Contacts to return as a sample (0–100, default 10).
    pub sample: Option<usize>,
}

/// Most contacts matched between two checks whether the request is still wanted.
const PREVIEW_CHUNK: usize = 16_384;

/// Node evaluations per preview chunk (see [`augur_segment::Matcher::nodes`]).
const PREVIEW_CHUNK_WORK: usize = 1 << 22;

/// Sets its flag when dropped: a request's future is dropped when its client goes away or its
/// time runs out, and blocking work it started watches the flag.
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A sampled contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct SampleRow {
    /// Contact id.
    pub contact_id: String,
    /// Churn risk (null: never bought).
    pub churn_risk: Option<f64>,
    /// Churn tier.
    pub churn_tier: &'static str,
}

/// Preview answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    /// Model version the count comes from.
    pub model_version: String,
    /// Contacts matching the rule.
    pub count: usize,
    /// Contacts in the model.
    pub contacts: usize,
    /// The first matching contacts.
    pub sample: Vec<SampleRow>,
}

/// Count and sample of an ad-hoc rule, before naming it in the configuration.
#[utoipa::path(post, tag = "segments", path = "/v1/segments/preview", request_body = PreviewBody,
    responses((status = 200, body = Preview), (status = 422, description = "the rule does not parse or names an unknown field")), security(("api_key" = [])))]
pub async fn preview(
    State(state): State<Arc<AppState>>,
    body: Result<Json<PreviewBody>, JsonRejection>,
) -> Result<Json<Preview>, ApiError> {
    let Json(body) = body?;
    let sample = body.sample.unwrap_or(10);
    if sample > 100 {
        return Err(ApiError::invalid(format!(
            "sample: {sample} is more than 100"
        )));
    }
    let loaded = state.current.load_full();
    let forgotten = state
        .preferences
        .as_ref()
        .map(|p| p.forgotten())
        .unwrap_or_default();
    let budget = state.config.max_rule_work;
    // Set when this request ends early (the client went away, or its time ran out and the
    // timeout layer dropped it): the work stops at the next chunk instead of running on.
    let abandoned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(abandoned.clone());
    let preview = tokio::task::spawn_blocking(move || {
        let matcher = body.rule.compile(&loaded.fields.schema)?;
        let snapshot = &loaded.artifact.snapshot;
        let work = matcher.nodes().saturating_mul(snapshot.len());
        if work > budget {
            return Err(ApiError::invalid(format!(
                "the rule's {} conditions over {} contacts are more work than serve.max_rule_work ({budget}); \
                 combine conditions on one field into an `in` list",
                matcher.nodes(),
                snapshot.len()
            )));
        }
        let models = loaded.artifact.models();
        let hits = |c: &usize| {
            matcher.matches(&loaded.fields.record(snapshot, &models, *c))
                && !forgotten.contact(snapshot.contacts.name(*c as u32))
        };
        let ended = || abandoned.load(std::sync::atomic::Ordering::Relaxed);
        // Chunks of about the same work, however costly the rule: an abandoned preview stops
        // within a fraction of a second.
        let chunk = (PREVIEW_CHUNK_WORK / matcher.nodes().max(1)).clamp(64, PREVIEW_CHUNK);
        let mut count = 0;
        for start in (0..snapshot.len()).step_by(chunk) {
            if ended() {
                return Err(ApiError::overloaded("the request ended before the preview finished"));
            }
            let end = (start + chunk).min(snapshot.len());
            count += (start..end).into_par_iter().filter(hits).count();
        }
        let sample = (0..snapshot.len())
            .take_while(|c| c % chunk != 0 || !ended())
            .filter(hits)
            .take(sample)
            .map(|c| SampleRow {
                contact_id: snapshot.contacts.name(c as u32).to_string(),
                churn_risk: snapshot.churn_risk(c),
                churn_tier: snapshot.churn_tier(c),
            })
            .collect();
        Ok::<_, ApiError>(Preview {
            model_version: loaded.version().to_string(),
            count,
            contacts: snapshot.len(),
            sample,
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("preview stopped: {e}")))??;
    Ok(Json(preview))
}
