//! The contact snapshot: every contact's state as of one instant, reduced to what scoring needs
//! (churn risk and reasons, the facts segments select on, the weighted product history, the
//! engagement counts by local hour). Training writes the snapshot as of its as-of time next to the
//! models, so batch scoring, the HTTP service and campaigns answer from it without reading the
//! history again; scoring at another instant builds one from the history first. Either way every
//! prediction is computed from a snapshot by [`Snapshot::predict`], so all of them agree.

mod build;
mod fields;
mod file;

use std::collections::BTreeMap;

use arrow::buffer::ScalarBuffer;

use crate::affinity::{AffinityModel, Catalog, Item, Mode, Profile, Request, category_affinity};
use crate::churn::{ChurnModel, tier};
use crate::send_time::{Engagement, HOURS, SendTimeModel};
use augur_data::AttributeColumn;
use augur_data::IdIndex;
use augur_data::Tz;

pub use build::{AtHand, build_snapshot, build_snapshot_with};
pub use fields::Fields;

/// Numeric facts about each contact that segment rules select on (missing: `NaN` inside,
/// `None` through [`Snapshot::fact`]). Days are fractional days before the as-of time.
pub const FACTS: [&str; 12] = [
    "orders",
    "spend",
    "spend_percentile",
    "days_since_last_order",
    "days_since_first_order",
    "days_since_signup",
    "orders_90d",
    "opens_90d",
    "clicks_90d",
    "days_since_open",
    "days_since_click",
    "web_events_30d",
];

/// Yes/no facts about each contact (missing when the export does not say).
pub const FLAGS: [&str; 4] = ["email_consent", "unsubscribed", "bounced", "complained"];

/// "No reason" in [`Snapshot::churn_reasons`].
const NO_REASON: u8 = u8::MAX;
/// The churn reason of a contact that is not scored.
pub const NOT_SCORED_REASON: &str = "no purchase before the as-of time";
/// Reason codes kept per contact.
pub const REASONS: usize = 3;

/// Every contact's state as of `as_of`. Contacts are dense indexes `0..len()`. The long
/// per-entry columns are Arrow buffers, so a snapshot read from disk uses the file's buffers as
/// they are instead of copying them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Only events before this instant (UTC seconds) were used.
    pub as_of: i64,
    /// External contact ids.
    pub contacts: IdIndex,
    /// ISO 3166-1 alpha-2 country.
    pub country: Vec<Option<&'static str>>,
    /// Time zone the contact's local hours are read in.
    pub timezone: Vec<Tz>,
    /// Probability of no purchase within the horizon (`NaN`: never bought, not scored).
    churn_risk: Vec<f64>,
    /// Indexes of the churn features that raise the risk most ([`NO_REASON`] pads).
    churn_reasons: Vec<[u8; REASONS]>,
    /// One column per [`FACTS`] entry.
    facts: Vec<Vec<f32>>,
    /// One column per [`FLAGS`] entry.
    flags: Vec<Vec<Option<bool>>>,
    /// Extra contact columns of the export, typed.
    pub attributes: BTreeMap<String, AttributeColumn>,
    /// Product history: contact `c` owns entries `profile_offsets[c]..profile_offsets[c + 1]`.
    profile_offsets: Vec<u32>,
    /// Product (affinity model index) of each entry.
    profile_product: ScalarBuffer<u32>,
    /// Time-decayed purchase weight of each entry.
    profile_bought: ScalarBuffer<f32>,
    /// Time-decayed web weight (views, carts) of each entry.
    profile_web: ScalarBuffer<f32>,
    /// Distinct orders that held each entry's product.
    profile_orders: ScalarBuffer<f32>,
    /// Days from the latest purchase of each entry's product to the snapshot's instant.
    profile_days_since_last: ScalarBuffer<f32>,
    /// Days from the first purchase of each entry's product to the snapshot's instant.
    profile_days_since_first: ScalarBuffer<f32>,
    /// Engagement by local hour of week: contact `c` owns `engagement_offsets[c]..[c + 1]`.
    engagement_offsets: Vec<u32>,
    /// Hour of week of each entry.
    engagement_hour: ScalarBuffer<u8>,
    /// Time-decayed engagement weight of each entry.
    engagement_weight: ScalarBuffer<f32>,
    /// The answers to the most common questions, computed when the snapshot is built so that a
    /// contact lookup is a read: the default recommendations and the send-time summary.
    defaults: Defaults,
    /// The catalogue as the affinity model indexes it.
    pub products: ProductCatalog,
}

/// Per contact, precomputed by [`Snapshot::predict`]'s own code: the default recommendations
/// ([`default_request`]) and the send-time summary.
#[derive(Debug, Clone, Default)]
struct Defaults {
    /// Contact `c` owns `recommended_offsets[c]..[c + 1]`.
    recommended_offsets: Vec<u32>,
    /// Product (affinity-model index), best first.
    recommended_product: ScalarBuffer<u32>,
    /// Its score.
    recommended_score: ScalarBuffer<f32>,
    /// Best local hours of the week, best first (up to [`BEST_HOURS`]; 255 pads).
    best_hours: Vec<[u8; BEST_HOURS]>,
    /// Confidence of the send-time profile.
    send_time_confidence: Vec<f64>,
    /// Which send-time prior dominated (index into [`SEND_TIME_SOURCES`]).
    send_time_source: Vec<u8>,
}

/// Best send hours kept per contact.
pub const BEST_HOURS: usize = 3;

/// Send-time sources by code.
const SEND_TIME_SOURCES: [crate::send_time::SendTimeSource; 3] = [
    crate::send_time::SendTimeSource::Own,
    crate::send_time::SendTimeSource::Cluster,
    crate::send_time::SendTimeSource::Population,
];

/// A contact's send-time summary: best hours, confidence, and which prior dominated.
#[derive(Debug, Clone, PartialEq)]
pub struct SendTimeSummary {
    /// Best local hours of the week, best first.
    pub best_hours: Vec<usize>,
    /// Own evidence against the priors.
    pub confidence: f64,
    /// `own`, `cluster` or `population`.
    pub source: &'static str,
}

/// Availability and category of each product of the affinity model (same index).
#[derive(Debug, Clone, Default)]
pub struct ProductCatalog {
    /// Display name, as the products table gives it.
    pub name: Vec<Option<Box<str>>>,
    /// Price in the shop's currency (the table's, else the latest positive unit price seen in
    /// orders).
    pub price: Vec<Option<f64>>,
    /// In stock.
    pub in_stock: Vec<bool>,
    /// Index into `categories`, or [`augur_data::NONE`].
    pub category: Vec<u32>,
    /// Category names.
    pub categories: Vec<String>,
}

impl ProductCatalog {
    /// The category index of a name.
    pub fn category_index(&self, name: &str) -> Option<u32> {
        self.categories
            .iter()
            .position(|c| c == name)
            .map(|i| i as u32)
    }
}

/// One contact's predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Probability of no purchase within the horizon; `None` for contacts that never bought.
    pub churn_risk: Option<f64>,
    /// Tier of the risk, or `not_scored`.
    pub churn_tier: &'static str,
    /// Why the risk is what it is (or why it is not scored).
    pub churn_reasons: Vec<&'static str>,
    /// Recommended products (affinity model indexes), best first, with scores.
    pub recommendations: Vec<(u32, f64)>,
    /// Category (index into the catalogue's names) → share of the contact's product interest,
    /// highest first.
    pub category_affinity: Vec<(u32, f64)>,
    /// Engagement profile over the 168 local hours of the week (Monday 00:00 first), sums to 1.
    pub send_time_profile: Vec<f64>,
    /// Best local hours of the week to send, best first.
    pub best_send_hours: Vec<usize>,
    /// Confidence of the profile.
    pub send_time_confidence: f64,
    /// Which send-time prior dominated.
    pub send_time_source: &'static str,
}

/// The fitted models a snapshot is scored with.
#[derive(Debug, Clone, Copy)]
pub struct Models<'a> {
    /// Churn model (for reason names).
    pub churn: &'a ChurnModel,
    /// Affinity model.
    pub affinity: &'a AffinityModel,
    /// Send-time model.
    pub send_time: &'a SendTimeModel,
}

impl Snapshot {
    /// Number of contacts.
    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    /// Whether there are no contacts.
    pub fn is_empty(&self) -> bool {
        self.contacts.len() == 0
    }

    /// The dense index of an external contact id.
    pub fn contact(&self, id: &str) -> Option<usize> {
        self.contacts.get(id).map(|c| c as usize)
    }

    /// Churn risk of contact `c` (`None`: never bought).
    pub fn churn_risk(&self, c: usize) -> Option<f64> {
        Some(self.churn_risk[c]).filter(|p| p.is_finite())
    }

    /// Churn tier of contact `c`.
    pub fn churn_tier(&self, c: usize) -> &'static str {
        self.churn_risk(c).map_or("not_scored", tier)
    }

    /// A per-contact fact of contact `c` (`fact` indexes the snapshot's fact columns).
    pub fn fact(&self, fact: usize, c: usize) -> Option<f64> {
        Some(f64::from(self.facts[fact][c])).filter(|v| v.is_finite())
    }

    /// A per-contact flag of contact `c` (`flag` indexes the snapshot's flag columns).
    pub fn flag(&self, flag: usize, c: usize) -> Option<bool> {
        self.flags[flag][c]
    }

    /// Contact `c`'s weighted product history.
    pub fn profile(&self, c: usize) -> Profile {
        self.profile_entries(c).collect()
    }

    /// Contact `c`'s history items, read in place.
    fn profile_entries(&self, c: usize) -> impl Iterator<Item = Item> + '_ {
        let range = self.profile_offsets[c] as usize..self.profile_offsets[c + 1] as usize;
        range.map(|i| Item {
            product: self.profile_product[i],
            bought: f64::from(self.profile_bought[i]),
            web: f64::from(self.profile_web[i]),
            orders: self.profile_orders[i],
            days_since_last: self.profile_days_since_last[i],
            days_since_first: self.profile_days_since_first[i],
        })
    }

    /// Contact `c`'s weighted engagement by local hour of week: the hours it engaged in.
    pub fn engagement(&self, c: usize) -> Engagement<'_> {
        let range = self.engagement_offsets[c] as usize..self.engagement_offsets[c + 1] as usize;
        Engagement::Sparse {
            hours: &self.engagement_hour[range.clone()],
            weights: &self.engagement_weight[range],
        }
    }

    /// The catalogue view the affinity model filters with.
    pub fn catalog(&self) -> Catalog<'_> {
        Catalog {
            in_stock: &self.products.in_stock,
            category: &self.products.category,
        }
    }

    /// Churn tier, risk and reasons of contact `c`.
    pub fn churn(
        &self,
        models: &Models<'_>,
        c: usize,
    ) -> (Option<f64>, &'static str, Vec<&'static str>) {
        match self.churn_risk(c) {
            Some(p) => (
                Some(p),
                tier(p),
                self.churn_reason_codes(c)
                    .map(|j| models.churn.reason_text(j))
                    .collect(),
            ),
            None => (None, "not_scored", vec![NOT_SCORED_REASON]),
        }
    }

    /// Contact `c`'s churn reasons as sentences, in the order of [`Snapshot::churn`]'s codes:
    /// `no order for 7 months, 3× longer than usual` beside `recency_days high`.
    pub fn churn_explanations(&self, models: &Models<'_>, c: usize) -> Vec<String> {
        if self.churn_risk(c).is_none() {
            return vec![NOT_SCORED_REASON.to_string()];
        }
        let churn = models.churn;
        let facts = crate::explain::Facts::of(self, c);
        self.churn_reason_codes(c)
            .map(|j| {
                let feature = churn.features.get(j).map_or("unknown", String::as_str);
                let high = churn.weights.get(j).is_some_and(|w| *w > 0.0);
                crate::explain::sentence(feature, high, &facts)
            })
            .collect()
    }

    /// The churn features (indexes into the churn model's features) that raise contact `c`'s
    /// risk most, strongest first.
    pub fn churn_reason_codes(&self, c: usize) -> impl Iterator<Item = usize> + '_ {
        self.churn_reasons[c]
            .iter()
            .filter(|j| **j != NO_REASON)
            .map(|&j| usize::from(j))
    }

    /// Recommendations of contact `c`. An unfiltered replenish request for at most the stored
    /// count reads the stored list (rankings are a total order, so the best k are its first k);
    /// any other request is computed.
    pub fn recommend(&self, models: &Models<'_>, c: usize, request: &Request) -> Vec<(u32, f64)> {
        let stored = default_request();
        if is_unfiltered_replenish(request)
            && request.k <= stored.k
            && !self.defaults.recommended_offsets.is_empty()
        {
            let d = &self.defaults;
            let range = d.recommended_offsets[c] as usize..d.recommended_offsets[c + 1] as usize;
            return range
                .take(request.k)
                .map(|i| (d.recommended_product[i], f64::from(d.recommended_score[i])))
                .collect();
        }
        self.compute_recommendations(models, c, request)
    }

    fn compute_recommendations(
        &self,
        models: &Models<'_>,
        c: usize,
        request: &Request,
    ) -> Vec<(u32, f64)> {
        models
            .affinity
            .recommend(&self.profile(c), self.country[c], request, &self.catalog())
            .into_iter()
            // Scores are kept as f32 in the snapshot: every path rounds the same way.
            .map(|(p, s)| (p, f64::from(s as f32)))
            .collect()
    }

    /// Contact `c`'s send-time summary (read, not computed, once the snapshot is built).
    pub fn send_time_summary(&self, models: &Models<'_>, c: usize) -> SendTimeSummary {
        let d = &self.defaults;
        match (
            d.best_hours.get(c),
            d.send_time_confidence.get(c),
            d.send_time_source.get(c),
        ) {
            (Some(hours), Some(confidence), Some(source)) => SendTimeSummary {
                best_hours: hours
                    .iter()
                    .filter(|h| usize::from(**h) < HOURS)
                    .map(|h| usize::from(*h))
                    .collect(),
                confidence: *confidence,
                source: SEND_TIME_SOURCES
                    .get(usize::from(*source))
                    .map_or("population", |s| s.name()),
            },
            _ => {
                let st = models.send_time.predict(self.engagement(c));
                SendTimeSummary {
                    best_hours: st.best_hours,
                    confidence: st.confidence,
                    source: st.source.name(),
                }
            }
        }
    }

    /// Computes the [`Defaults`] of every contact (on all cores).
    fn compute_defaults(&mut self, models: &Models<'_>) -> crate::Result<()> {
        use rayon::prelude::*;
        let request = default_request();
        // (recommendations, best hours, confidence, source code) per contact.
        type Computed = (Vec<(u32, f64)>, [u8; BEST_HOURS], f64, u8);
        let computed: Vec<Computed> = (0..self.len())
            .into_par_iter()
            .map(|c| {
                let st = models.send_time.predict(self.engagement(c));
                let mut hours = [u8::MAX; BEST_HOURS];
                for (slot, h) in hours.iter_mut().zip(&st.best_hours) {
                    *slot = *h as u8;
                }
                let source = SEND_TIME_SOURCES
                    .iter()
                    .position(|s| *s == st.source)
                    .unwrap_or(2) as u8;
                (
                    self.compute_recommendations(models, c, &request),
                    hours,
                    st.confidence,
                    source,
                )
            })
            .collect();
        let offsets = build::offsets(computed.iter().map(|(r, ..)| r.len()))?;
        self.defaults = Defaults {
            recommended_offsets: offsets,
            recommended_product: computed
                .iter()
                .flat_map(|(r, ..)| r.iter().map(|x| x.0))
                .collect(),
            recommended_score: computed
                .iter()
                .flat_map(|(r, ..)| r.iter().map(|x| x.1 as f32))
                .collect(),
            best_hours: computed.iter().map(|x| x.1).collect(),
            send_time_confidence: computed.iter().map(|x| x.2).collect(),
            send_time_source: computed.iter().map(|x| x.3).collect(),
        };
        Ok(())
    }

    /// Everything predicted for contact `c`.
    pub fn predict(&self, models: &Models<'_>, c: usize, request: &Request) -> Prediction {
        let (churn_risk, churn_tier, churn_reasons) = self.churn(models, c);
        let summary = self.send_time_summary(models, c);
        Prediction {
            churn_risk,
            churn_tier,
            churn_reasons,
            recommendations: self.recommend(models, c, request),
            category_affinity: self.category_affinity(c),
            send_time_profile: models.send_time.profile(self.engagement(c)),
            best_send_hours: summary.best_hours,
            send_time_confidence: summary.confidence,
            send_time_source: summary.source,
        }
    }

    /// Category → share of contact `c`'s product interest, highest first.
    pub fn category_affinity(&self, c: usize) -> Vec<(u32, f64)> {
        let weights = self
            .profile_entries(c)
            .map(|item| (item.product, item.bought + item.web));
        category_affinity(weights, &self.products.category)
    }
}

/// Whether a request is replenish mode without filters (what the stored lists answer).
fn is_unfiltered_replenish(request: &Request) -> bool {
    let f = &request.filters;
    request.mode == Mode::Replenish
        && !f.in_stock_only
        && f.exclude.is_empty()
        && f.categories.is_empty()
}

/// The default recommendation request: replenish, 10 products, no filters.
pub fn default_request() -> Request {
    Request {
        mode: Mode::Replenish,
        k: 10,
        filters: crate::affinity::Filters::default(),
    }
}
