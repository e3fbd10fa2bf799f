//! Product affinity: item-to-item similarity learnt from what contacts buy together, applied to
//! each contact's own time-decayed history (purchases strongest; carts and views weaker), with
//! repeat purchases, popularity among similar contacts for newcomers, and scoring-time filters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contract::WebEventKind;
use crate::features::rows_before;
use crate::history::History;
use crate::time::DAY;

/// Which products may be recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Repeat purchases count (refills, favourites).
    Replenish,
    /// Only products the contact never bought.
    Discover,
}

/// Scoring-time filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Only products in stock.
    pub in_stock_only: bool,
    /// Never these products (dense ids).
    pub exclude: Vec<u32>,
    /// Only these categories (dense category ids); empty = all.
    pub categories: Vec<u32>,
}

/// What to recommend.
#[derive(Debug, Clone)]
pub struct Request {
    /// Repeat purchases or only new products.
    pub mode: Mode,
    /// How many.
    pub k: usize,
    /// Filters.
    pub filters: Filters,
}

/// Per product (by model index): availability and dense category id; empty slices mean unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Catalog<'a> {
    /// In stock.
    pub in_stock: &'a [bool],
    /// Category.
    pub category: &'a [u32],
}

/// How strongly each signal counts, and how fast it fades.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Signals {
    /// A purchased unit (scaled by `ln(1 + quantity)`).
    pub purchase: f64,
    /// An add-to-cart.
    pub cart: f64,
    /// A product view.
    pub view: f64,
    /// Half-life of purchases, days.
    pub purchase_half_life_days: f64,
    /// Half-life of web signals, days.
    pub web_half_life_days: f64,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            purchase: 1.0,
            cart: 0.3,
            view: 0.08,
            purchase_half_life_days: 180.0,
            web_half_life_days: 30.0,
        }
    }
}

/// Fitted affinity model. Product indexes refer to `product_ids`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AffinityModel {
    /// External product ids, in the model's index order.
    pub product_ids: Vec<String>,
    /// Per product: the most similar products and their similarity.
    pub neighbors: Vec<Vec<(u32, f32)>>,
    /// Recent popularity per product, max 1.
    pub popularity: Vec<f32>,
    /// Share of a product's buyers who bought it again.
    pub repeat_rate: Vec<f32>,
    /// Most popular products per country (ISO code), best first.
    pub popular_by_country: BTreeMap<String, Vec<u32>>,
    /// Signal weights.
    pub signals: Signals,
    /// Weight of the contact's own past purchases (scaled by repeat rate) in replenish mode.
    pub repeat_weight: f64,
    /// Weight of popularity.
    pub popularity_weight: f64,
}

/// Per-thread sums of [`AffinityModel::scores`]: a dense array by product, with a generation
/// stamp per slot so that resetting it between contacts costs nothing.
#[derive(Default)]
struct Scratch {
    /// Products of the model being scored; larger ids are ignored.
    products: usize,
    sum: Vec<f64>,
    stamp: Vec<u32>,
    generation: u32,
    touched: Vec<u32>,
}

impl Scratch {
    fn reset(&mut self, products: usize) {
        self.products = products;
        if self.sum.len() < products {
            self.sum.resize(products, 0.0);
            self.stamp.resize(products, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        self.touched.clear();
    }

    fn add(&mut self, p: u32, s: f64) {
        let i = p as usize;
        if i >= self.products {
            return;
        }
        if self.stamp[i] != self.generation {
            self.stamp[i] = self.generation;
            self.sum[i] = 0.0;
            self.touched.push(p);
        }
        self.sum[i] += s;
    }

    fn remove(&mut self, p: u32) {
        if let Some(stamp) = self
            .stamp
            .get_mut(p as usize)
            .filter(|_| (p as usize) < self.products)
        {
            // A stale stamp: `drain` skips the slot.
            *stamp = self.generation.wrapping_sub(1);
        }
    }

    fn drain(&mut self) -> Vec<(u32, f64)> {
        self.touched
            .iter()
            .filter(|p| self.stamp[**p as usize] == self.generation)
            .map(|&p| (p, self.sum[p as usize]))
            .collect()
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// One contact's weighted history: (product, purchase weight, web weight).
pub type Profile = Vec<(u32, f64, f64)>;

/// Every contact's weighted product history before `t`.
pub fn profiles(history: &History, t: i64, signals: &Signals) -> Vec<Profile> {
    let mut out: Vec<Profile> = vec![Vec::new(); history.contacts.len()];
    let decay = |age: i64, half_life: f64| {
        (-(age as f64) / (half_life * DAY as f64) * std::f64::consts::LN_2).exp()
    };
    let o = &history.orders;
    for i in 0..rows_before(&o.at, t) {
        if o.quantity[i] > 0.0 {
            let w = signals.purchase
                * o.quantity[i].ln_1p()
                * decay(t - o.at[i], signals.purchase_half_life_days);
            out[o.contact[i] as usize].push((o.product[i], w, 0.0));
        }
    }
    let web = &history.web_events;
    for i in 0..rows_before(&web.at, t) {
        if web.product[i] == crate::ids::NONE {
            continue;
        }
        let base = match web.kind[i] {
            WebEventKind::AddToCart => signals.cart,
            WebEventKind::View => signals.view,
            _ => continue,
        };
        let w = base * decay(t - web.at[i], signals.web_half_life_days);
        out[web.contact[i] as usize].push((web.product[i], 0.0, w));
    }
    use rayon::prelude::*;
    out.par_iter_mut().for_each(|p| {
        p.sort_unstable_by_key(|(product, _, _)| *product);
        p.dedup_by(|next, kept| {
            if next.0 == kept.0 {
                kept.1 += next.1;
                kept.2 += next.2;
                true
            } else {
                false
            }
        });
    });
    out
}

impl AffinityModel {
    /// Model index by external product id.
    pub fn product_index(&self) -> rustc_hash::FxHashMap<&str, u32> {
        self.product_ids
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i as u32))
            .collect()
    }

    /// Scores every candidate for one contact, as (product, score) in no particular order.
    /// Sums go into a per-thread dense array indexed by product, so the cost is one add per
    /// (history item × neighbour) and no sort.
    pub fn scores(&self, profile: &Profile, mode: Mode, country: Option<&str>) -> Vec<(u32, f64)> {
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            scratch.reset(self.product_ids.len());
            for &(p, bought, web) in profile {
                let u = bought + web;
                if let Some(neighbors) = self.neighbors.get(p as usize) {
                    for &(q, s) in neighbors {
                        scratch.add(q, u * f64::from(s));
                    }
                }
                if mode == Mode::Replenish && bought > 0.0 {
                    let repeat = self.repeat_rate.get(p as usize).copied().unwrap_or(0.0);
                    scratch.add(p, self.repeat_weight * bought * f64::from(repeat));
                }
            }
            let popular = country
                .and_then(|c| self.popular_by_country.get(c))
                .or_else(|| self.popular_by_country.get(""));
            if let Some(popular) = popular {
                // Popularity among similar contacts: a small prior that also fills short lists.
                for (rank, &p) in popular.iter().enumerate() {
                    let popularity = self.popularity.get(p as usize).copied().unwrap_or(0.0);
                    scratch.add(
                        p,
                        self.popularity_weight * f64::from(popularity) / (1.0 + rank as f64 / 50.0),
                    );
                }
            }
            if mode == Mode::Discover {
                for &(p, bought, _) in profile {
                    if bought > 0.0 {
                        scratch.remove(p);
                    }
                }
            }
            scratch.drain()
        })
    }

    /// The top `request.k` products (model indexes) with scores, best first, after filters.
    pub fn recommend(
        &self,
        profile: &Profile,
        country: Option<&str>,
        request: &Request,
        catalog: &Catalog<'_>,
    ) -> Vec<(u32, f64)> {
        let filters = &request.filters;
        let mut scored: Vec<(u32, f64)> = self
            .scores(profile, request.mode, country)
            .into_iter()
            .filter(|(p, s)| {
                let i = *p as usize;
                s.is_finite()
                    && (!filters.in_stock_only || catalog.in_stock.get(i).copied().unwrap_or(true))
                    && !filters.exclude.contains(p)
                    && (filters.categories.is_empty()
                        || catalog
                            .category
                            .get(i)
                            .is_some_and(|c| filters.categories.contains(c)))
            })
            .collect();
        let best_first = |a: &(u32, f64), b: &(u32, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > request.k && request.k > 0 {
            scored.select_nth_unstable_by(request.k - 1, best_first);
            scored.truncate(request.k);
        }
        scored.sort_by(best_first);
        scored.truncate(request.k);
        // The candidates list can be thousands long; a kept answer should not carry its capacity.
        scored.shrink_to_fit();
        scored
    }
}

/// Category affinity: each category's share of the (purchase + web) weight of a contact's
/// products, highest first (ties: lower category index). `weights` gives each product once.
/// A contact touches a handful of categories, so a short list beats a map here.
pub fn category_affinity(
    weights: impl IntoIterator<Item = (u32, f64)>,
    category: &[u32],
) -> Vec<(u32, f64)> {
    let mut by: Vec<(u32, f64)> = Vec::new();
    for (p, weight) in weights {
        if let Some(&c) = category.get(p as usize).filter(|c| **c != crate::ids::NONE) {
            match by.iter_mut().find(|(k, _)| *k == c) {
                Some((_, w)) => *w += weight,
                None => by.push((c, weight)),
            }
        }
    }
    // Summed in category order, so the shares do not depend on which came first.
    by.sort_unstable_by_key(|(c, _)| *c);
    let total: f64 = by.iter().map(|(_, w)| w).sum();
    for (_, w) in &mut by {
        *w = if total > 0.0 { *w / total } else { 0.0 };
    }
    by.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    by
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_shares_sum_purchases_and_views_per_category() {
        // Products 0 and 1 in category 7, product 2 in category 3, product 3 uncategorized.
        let category = [7, 7, 3, crate::ids::NONE];
        let shares = category_affinity([(0, 1.0), (2, 2.0), (1, 1.0), (3, 5.0)], &category);
        assert_eq!(
            shares,
            vec![(3, 0.5), (7, 0.5)],
            "ties: lower category first"
        );
        let shares = category_affinity([(0, 3.0), (2, 1.0)], &category);
        assert_eq!(shares, vec![(7, 0.75), (3, 0.25)]);
        assert!(category_affinity([(3, 1.0)], &category).is_empty());
        assert_eq!(category_affinity([(0, 0.0)], &category), vec![(7, 0.0)]);
    }
}
