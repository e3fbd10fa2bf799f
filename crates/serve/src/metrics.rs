//! Prometheus metrics: requests and latency by route and status, and the model answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    version: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs … 3.3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// The registry and its metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    model: Family<ModelLabels, Gauge>,
    contacts: Gauge,
    model_created: Gauge<i64, AtomicI64>,
    model_age: Gauge<f64, AtomicU64>,
    preferences: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Counts a `/u/{token}` request's outcome.
    pub fn preference(&self, outcome: &'static str) {
        self.preferences
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// An empty registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("augur");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let model = Family::<ModelLabels, Gauge>::default();
        let preferences = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "preference_requests",
            "Requests to /u/{token} by outcome (choices, saved, unsubscribed, a refused token's reason, rate_limited)",
            preferences.clone(),
        );
        let contacts = Gauge::default();
        let model_created = Gauge::<i64, AtomicI64>::default();
        let model_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route",
            latency.clone(),
        );
        registry.register(
            "model_info",
            "The model version answering (value 1)",
            model.clone(),
        );
        registry.register(
            "contacts_loaded",
            "Contacts in the loaded model",
            contacts.clone(),
        );
        registry.register(
            "model_created_timestamp_seconds",
            "When the loaded model was trained (Unix seconds)",
            model_created.clone(),
        );
        registry.register(
            "model_age_seconds",
            "Seconds since the loaded model was trained",
            model_age.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            model,
            contacts,
            model_created,
            model_age,
            preferences,
        }
    }

    /// Records a newly loaded model: its version, its contacts and when it was trained
    /// (RFC 3339, from the manifest).
    pub fn model_loaded(&self, version: &str, contacts: usize, created_at: &str) {
        self.model.clear();
        self.model
            .get_or_create(&ModelLabels {
                version: version.to_string(),
            })
            .set(1);
        self.contacts.set(contacts as i64);
        let created = chrono::DateTime::parse_from_rfc3339(created_at).map_or(0, |t| t.timestamp());
        self.model_created.set(created);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let created = self.model_created.get();
        if created > 0 {
            self.model_age
                .set((chrono::Utc::now().timestamp() - created).max(0) as f64);
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    fn observe(&self, route: &'static str, status: u16, seconds: f64) {
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
    }
}

/// Middleware counting every request by its route pattern (never the raw path, which holds
/// contact ids) and status.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| crate::routes::ALL.iter().find(|r| **r == m.as_str()))
        .copied()
        .unwrap_or("unmatched");
    let response = next.run(request).await;
    metrics.observe(
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
