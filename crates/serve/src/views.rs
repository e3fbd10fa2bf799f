//! The JSON shapes of answers (also the OpenAPI schemas). Answers borrow their text from the
//! loaded model (ids, names, reasons) instead of copying it: a contact lookup is mostly
//! serialization, so every allocation saved shows in requests per second.

use std::sync::LazyLock;

use augur_model::HOURS;
use augur_model::{Models, ProductCatalog, Snapshot};
use serde::Serialize;
use utoipa::ToSchema;

/// Churn risk of a contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct Churn {
    /// P(no purchase within the model's horizon); null when the contact never bought.
    pub risk: Option<f64>,
    /// `low`, `medium`, `high`, `critical` or `not_scored`.
    pub tier: &'static str,
    /// The features that raise the risk most (or why it is not scored).
    pub reasons: Vec<&'static str>,
    /// The same reasons as sentences, in the same order: what the contact did, in its own
    /// numbers (e.g. `no order for 7 months, 3× longer than usual`).
    pub explanations: Vec<String>,
    /// `model` (as trained), or `live`: re-scored with the orders and opt-outs posted since
    /// the as-of time, counted as if they happened then (see `docs/flows.md`).
    pub source: &'static str,
}

/// A recommended product.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendation<'a> {
    /// Product id.
    pub product_id: &'a str,
    /// Display name (null when the products table gives none).
    pub name: Option<&'a str>,
    /// Category (null when the product has none).
    pub category: Option<&'a str>,
    /// Price in the shop's currency, as the products table or the latest order gives it.
    pub price: Option<f64>,
    /// Affinity score (higher is better; comparable within one contact). Stored as a 32-bit
    /// float, as in `augur score`'s output.
    pub score: f32,
}

/// Interest in a category.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryShare<'a> {
    /// Category name.
    pub category: &'a str,
    /// Share of the contact's product interest (32-bit float, as in `augur score`'s output).
    pub share: f32,
}

/// When a contact engages.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendTimeSummary {
    /// IANA zone the hours are in.
    pub timezone: &'static str,
    /// Best local hours of the week to send (Monday 00:00 = 0), best first.
    pub best_hours_of_week: Vec<usize>,
    /// The same hours in words, e.g. `Tue 19:00`.
    pub best_hours: Vec<&'static str>,
    /// Own evidence against the priors, 0–1.
    pub confidence: f64,
    /// Which profile dominated: `own`, `cluster` or `population`.
    pub fallback: &'static str,
    /// The 168-hour engagement profile (only when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<f64>>,
}

/// Everything known about one contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct Contact<'a> {
    /// Contact id.
    pub contact_id: &'a str,
    /// Model version that answered.
    pub model_version: &'a str,
    /// Scores are as of this instant.
    pub as_of: &'a str,
    /// Churn risk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<Churn>,
    /// Recommended products, best first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendations: Option<Vec<Recommendation<'a>>>,
    /// Category affinity, highest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_affinity: Option<Vec<CategoryShare<'a>>>,
    /// Send-time summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_time: Option<SendTimeSummary>,
    /// Predictive segments the contact belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<&'a str>>,
    /// What the contact did since the model's as-of time, from the events posted to
    /// `POST /v1/events` (absent when nothing was posted about it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<Live>,
}

/// A contact's posted events since the model's as-of time. They move at once, with the churn
/// risk of the same answer (re-scored from the orders and opt-outs); segments and the other
/// scores move with the next training.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct Live {
    /// Events about the contact posted since the as-of time.
    pub events: usize,
    /// Distinct orders among them.
    pub orders: usize,
    /// Their revenue (quantity × unit price).
    pub revenue: f64,
    /// The latest order, RFC 3339: the contact's live recency.
    pub last_order_at: Option<String>,
    /// Products put in the cart since, and neither removed nor bought since.
    pub cart: Vec<String>,
    /// Products bought since: left out of `recommendations`.
    pub bought: Vec<String>,
    /// Unsubscribed, bounced, complained or withdrew consent since.
    pub opted_out: bool,
    /// The same orders and the opt-outs, as the churn re-score counts them.
    #[serde(skip)]
    pub since: augur_model::Since,
}

/// `Tue 19:00` for hour of week 43.
pub fn hour_name(h: usize) -> &'static str {
    static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        (0..HOURS)
            .map(|h| format!("{} {:02}:00", DAYS[h / 24], h % 24))
            .collect()
    });
    NAMES.get(h % HOURS).map_or("", String::as_str)
}

/// The churn part of an answer.
pub fn churn(
    (risk, tier, reasons): (Option<f64>, &'static str, Vec<&'static str>),
    explanations: Vec<String>,
) -> Churn {
    Churn {
        risk,
        tier,
        reasons,
        explanations,
        source: "model",
    }
}

/// The recommendations part of an answer.
pub fn recommendations<'a>(
    models: &Models<'a>,
    catalog: &'a ProductCatalog,
    recs: &[(u32, f64)],
) -> Vec<Recommendation<'a>> {
    recs.iter()
        .map(|&(p, s)| {
            let p = p as usize;
            Recommendation {
                product_id: models.affinity.product_ids[p].as_str(),
                name: catalog.name.get(p).and_then(Option::as_deref),
                category: catalog
                    .category
                    .get(p)
                    .and_then(|&c| catalog.categories.get(c as usize))
                    .map(String::as_str),
                price: catalog.price.get(p).copied().flatten(),
                score: s as f32,
            }
        })
        .collect()
}

/// The category-affinity part of an answer.
pub fn categories(snapshot: &Snapshot, c: usize) -> Vec<CategoryShare<'_>> {
    snapshot
        .category_affinity(c)
        .into_iter()
        .filter_map(|(k, share)| {
            Some(CategoryShare {
                category: snapshot.products.categories.get(k as usize)?.as_str(),
                share: share as f32,
            })
        })
        .collect()
}

/// The send-time part of an answer; the 168-hour profile only when asked for.
pub fn send_time(
    snapshot: &Snapshot,
    models: &Models<'_>,
    c: usize,
    with_profile: bool,
) -> SendTimeSummary {
    let summary = snapshot.send_time_summary(models, c);
    SendTimeSummary {
        timezone: snapshot.timezone[c].name(),
        best_hours: summary.best_hours.iter().map(|h| hour_name(*h)).collect(),
        best_hours_of_week: summary.best_hours,
        confidence: summary.confidence,
        fallback: summary.source,
        profile: with_profile.then(|| models.send_time.profile(snapshot.engagement(c))),
    }
}
