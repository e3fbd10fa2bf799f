//! Building a snapshot from the history: one pass per table as of the instant, then per
//! contact the churn risk, the facts, and the sparse product and engagement histories.

use rayon::prelude::*;

use super::{FACTS, FLAGS, NO_REASON, ProductCatalog, REASONS, Snapshot};
use crate::affinity::profiles;
use crate::error::{Error, Result};
use crate::features::{ContactState, churn_features, contact_states};
use crate::send_time::engagement_counts;
use augur_data::DAY;
use augur_data::History;
use augur_data::NONE;

use super::Models;

fn days_since(t: i64, at: Option<i64>) -> f32 {
    at.map_or(f32::NAN, |a| ((t - a) as f64 / DAY as f64).max(0.0) as f32)
}

/// Each buyer's spend as a share of buyers spending at most as much (1 = the top spender).
fn spend_percentiles(states: &[ContactState]) -> Vec<f32> {
    let mut spends: Vec<f64> = states
        .iter()
        .filter(|s| s.orders > 0)
        .map(|s| s.spend)
        .collect();
    spends.sort_unstable_by(f64::total_cmp);
    let n = spends.len().max(1) as f64;
    states
        .iter()
        .map(|s| {
            if s.orders == 0 {
                f32::NAN
            } else {
                (spends.partition_point(|x| *x <= s.spend) as f64 / n) as f32
            }
        })
        .collect()
}

/// The facts of one contact, in [`FACTS`] order.
fn facts(s: &ContactState, t: i64, created_at: Option<i64>, percentile: f32) -> [f32; 12] {
    [
        s.orders as f32,
        s.spend.max(0.0) as f32,
        percentile,
        days_since(t, s.last_order),
        days_since(t, s.first_order),
        days_since(t, created_at.filter(|c| *c < t)),
        s.orders_90d as f32,
        s.opens_90d as f32,
        s.clicks_90d as f32,
        days_since(t, s.last_open),
        days_since(t, s.last_click),
        s.web_30d as f32,
    ]
}

/// Offsets of a list of per-contact lists; fails past `u32::MAX` entries.
pub(super) fn offsets<I: Iterator<Item = usize>>(lengths: I) -> Result<Vec<u32>> {
    let mut out = vec![0u32];
    let mut total = 0usize;
    for len in lengths {
        total += len;
        out.push(u32::try_from(total).map_err(|_| {
            Error::TooLarge(
                "more than 4 billion history entries in one snapshot; score fewer contacts at once"
                    .into(),
            )
        })?);
    }
    Ok(out)
}

/// Per-contact histories as of the snapshot's instant that the caller already computed
/// (training has them at hand; each is a pass over millions of events).
#[derive(Debug, Default)]
pub struct AtHand {
    /// Engagement counts, made with the send-time model's weights.
    pub engagement: Option<Vec<[f32; crate::send_time::HOURS]>>,
    /// Product profiles (history product ids), made with the affinity model's signals.
    pub profiles: Option<Vec<crate::affinity::Profile>>,
}

/// The snapshot of `history` as of `t` (only events before `t`), scored with `models`.
pub fn build_snapshot(history: &History, t: i64, models: &Models<'_>) -> Result<Snapshot> {
    build_snapshot_with(history, t, models, AtHand::default())
}

/// [`build_snapshot`], reusing what is [`AtHand`].
pub fn build_snapshot_with(
    history: &History,
    t: i64,
    models: &Models<'_>,
    at_hand: AtHand,
) -> Result<Snapshot> {
    let contacts = &history.contacts;
    let n = contacts.len();
    let states = contact_states(history, t);
    let churn = models.churn;
    let scored: Vec<(f64, [u8; REASONS])> = states
        .par_iter()
        .map(
            |s| match churn_features(s, t, churn.btyd.as_ref(), churn.horizon_days) {
                Some(row) => {
                    let mut reasons = [NO_REASON; REASONS];
                    for (slot, j) in reasons.iter_mut().zip(churn.reason_features(&row, REASONS)) {
                        *slot = j as u8;
                    }
                    (churn.probability(&row), reasons)
                }
                None => (f64::NAN, [NO_REASON; REASONS]),
            },
        )
        .collect();
    let percentiles = spend_percentiles(&states);
    let mut facts_by_column = vec![Vec::with_capacity(n); FACTS.len()];
    for (c, s) in states.iter().enumerate() {
        let row = facts(s, t, contacts.created_at[c], percentiles[c]);
        for (column, v) in facts_by_column.iter_mut().zip(row) {
            column.push(v);
        }
    }
    let flags: Vec<Vec<Option<bool>>> = FLAGS
        .iter()
        .map(|name| match *name {
            "email_consent" => contacts.email_consent.clone(),
            "unsubscribed" => states.iter().map(|s| Some(s.unsubscribed)).collect(),
            "bounced" => states.iter().map(|s| Some(s.bounced)).collect(),
            _ => states.iter().map(|s| Some(s.complained)).collect(),
        })
        .collect();
    drop(states);

    // Products by affinity-model index: the history's dense ids may differ from training's.
    let affinity = models.affinity;
    let model_index = affinity.product_index();
    let to_model: Vec<u32> = history
        .products
        .ids
        .names()
        .map(|p| model_index.get(p).copied().unwrap_or(NONE))
        .collect();
    let mut catalog = ProductCatalog {
        name: vec![None; affinity.product_ids.len()],
        price: vec![None; affinity.product_ids.len()],
        in_stock: vec![true; affinity.product_ids.len()],
        category: vec![NONE; affinity.product_ids.len()],
        categories: Vec::new(),
    };
    for (p, &m) in to_model.iter().enumerate() {
        if m != NONE {
            catalog.name[m as usize].clone_from(&history.products.name[p]);
            catalog.price[m as usize] = history.products.price[p].filter(|v| v.is_finite());
            catalog.in_stock[m as usize] = history.products.in_stock[p];
            catalog.category[m as usize] = history.products.category[p];
        }
    }
    // Categories renumbered in order of first appearance among the model's products, the order
    // a reader of the written snapshot recovers.
    let mut renumber = rustc_hash::FxHashMap::default();
    for c in catalog.category.iter_mut().filter(|c| **c != NONE) {
        let name = history.products.categories.name(*c);
        *c = *renumber.entry(*c).or_insert_with(|| {
            catalog.categories.push(name.to_string());
            catalog.categories.len() as u32 - 1
        });
    }
    let mut product_history = at_hand
        .profiles
        .filter(|p| p.len() == n)
        .unwrap_or_else(|| profiles(history, t, &affinity.signals));
    product_history.par_iter_mut().for_each(|profile| {
        profile.retain_mut(|item| {
            item.product = to_model.get(item.product as usize).copied().unwrap_or(NONE);
            item.product != NONE
        });
        profile.sort_unstable_by_key(|item| item.product);
    });
    let profile_offsets = offsets(product_history.iter().map(Vec::len))?;
    let entries = product_history.iter().flatten();
    let profile_product = entries.clone().map(|e| e.product).collect();
    let profile_bought = entries.clone().map(|e| e.bought as f32).collect();
    let profile_web = entries.clone().map(|e| e.web as f32).collect();
    let profile_orders = entries.clone().map(|e| e.orders).collect();
    let profile_days_since_last = entries.clone().map(|e| e.days_since_last).collect();
    let profile_days_since_first = entries.map(|e| e.days_since_first).collect();
    drop(product_history);

    let counts = at_hand
        .engagement
        .filter(|c| c.len() == n)
        .unwrap_or_else(|| engagement_counts(history, t, &models.send_time.weights));
    let engagement_offsets = offsets(
        counts
            .iter()
            .map(|row| row.iter().filter(|w| **w > 0.0).count()),
    )?;
    let nonzero = || {
        counts.iter().flat_map(|row| {
            row.iter()
                .enumerate()
                .filter(|(_, w)| **w > 0.0)
                .map(|(h, w)| (h as u8, *w))
        })
    };
    let engagement_hour = nonzero().map(|(h, _)| h).collect();
    let engagement_weight = nonzero().map(|(_, w)| w).collect();
    drop(counts);

    let mut snapshot = Snapshot {
        as_of: t,
        contacts: contacts.ids.clone(),
        country: contacts.country.clone(),
        timezone: contacts.timezone.clone(),
        churn_risk: scored.iter().map(|(p, _)| *p).collect(),
        churn_reasons: scored.iter().map(|(_, r)| *r).collect(),
        facts: facts_by_column,
        flags,
        attributes: contacts.attributes.clone(),
        profile_offsets,
        profile_product,
        profile_bought,
        profile_web,
        profile_orders,
        profile_days_since_last,
        profile_days_since_first,
        engagement_offsets,
        engagement_hour,
        engagement_weight,
        defaults: super::Defaults::default(),
        products: catalog,
    };
    snapshot.compute_defaults(models)?;
    Ok(snapshot)
}
