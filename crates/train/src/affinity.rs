//! Product affinity: item-to-item weights (EASE) from co-purchases, repeat rates and repurchase
//! intervals, popularity per country, rankers fitted on an earlier window, and recommendation
//! metrics against popularity and the contact's own most-bought items.

use std::collections::{BTreeMap, HashMap};

use augur_data::DAY;
use augur_data::History;
use augur_model::rows_before;
use augur_model::{AffinityModel, Profile, Ranker, Rankers, Signals, best_k, profiles};
use serde::Serialize;

use crate::metrics::{RecMetrics, RecScore};
use crate::ranker::{RankWindow, RankerChoice};

/// Contacts sampled for evaluation (a third of them for fitting the rankers).
pub const EVAL_CONTACTS: usize = 30_000;

/// Per contact: distinct products bought in `[from, to)`.
pub fn bought_between(history: &History, from: i64, to: i64) -> HashMap<u32, Vec<u32>> {
    let o = &history.orders;
    let mut out: HashMap<u32, Vec<u32>> = HashMap::new();
    for i in rows_before(&o.at, from)..rows_before(&o.at, to) {
        if o.quantity[i] > 0.0 {
            let items = out.entry(o.contact[i]).or_default();
            if !items.contains(&o.product[i]) {
                items.push(o.product[i]);
            }
        }
    }
    out
}

/// Fits the model on history before `t`, given every contact's profile as of `t` (with
/// `signals`): the caller has them at hand, as the window or the snapshot needs them too.
pub fn fit_with_profiles(
    history: &History,
    t: i64,
    signals: Signals,
    profs: &[augur_model::Profile],
) -> AffinityModel {
    let n_products = history.products.len();
    // Popularity: purchases in the last 90 days (all time if none).
    let o = &history.orders;
    let end = rows_before(&o.at, t);
    let recent_start = rows_before(&o.at, t - 90 * DAY);
    let mut popularity = vec![0f32; n_products];
    let start = if (recent_start..end).any(|i| o.quantity[i] > 0.0) {
        recent_start
    } else {
        0
    };
    for i in start..end {
        if o.quantity[i] > 0.0 {
            popularity[o.product[i] as usize] += 1.0;
        }
    }
    let max = popularity.iter().copied().fold(0f32, f32::max).max(1.0);
    popularity.iter_mut().for_each(|p| *p /= max);
    let mut popularity_30d = vec![0f32; n_products];
    for i in rows_before(&o.at, t - 30 * DAY)..end {
        if o.quantity[i] > 0.0 {
            popularity_30d[o.product[i] as usize] += 1.0;
        }
    }
    let max = popularity_30d.iter().copied().fold(0f32, f32::max).max(1.0);
    popularity_30d.iter_mut().for_each(|p| *p /= max);

    // Repeat rate: buyers with two or more orders of the product.
    let mut orders_of: HashMap<(u32, u32), (u32, u32)> = HashMap::new();
    for i in 0..end {
        if o.quantity[i] > 0.0 {
            let e = orders_of
                .entry((o.contact[i], o.product[i]))
                .or_insert((u32::MAX, 0));
            if e.0 != o.order[i] {
                e.0 = o.order[i];
                e.1 += 1;
            }
        }
    }
    let mut buyers = vec![0u32; n_products];
    let mut repeaters = vec![0u32; n_products];
    for ((_, p), (_, n)) in &orders_of {
        buyers[*p as usize] += 1;
        repeaters[*p as usize] += u32::from(*n >= 2);
    }
    let repeat_rate: Vec<f32> = (0..n_products)
        .map(|p| (repeaters[p] as f32 + 0.5) / (buyers[p] as f32 + 2.0))
        .collect();
    let repurchase_days = repurchase_days(profs, n_products);

    let baskets: Vec<Vec<u32>> = profs
        .iter()
        .map(|prof| {
            prof.iter()
                .filter(|i| i.bought > 0.0)
                .map(|i| i.product)
                .collect()
        })
        .collect();
    let neighbors = crate::ease::fit(&baskets, n_products, &buyers);
    drop(baskets);

    // Popular per country ("" = everyone).
    let mut by_country: BTreeMap<String, HashMap<u32, f64>> = BTreeMap::new();
    for (c, prof) in profs.iter().enumerate() {
        let country = history.contacts.country[c].unwrap_or("").to_string();
        for &augur_model::Item {
            product: p, bought, ..
        } in prof
        {
            if bought > 0.0 {
                *by_country
                    .entry(country.clone())
                    .or_default()
                    .entry(p)
                    .or_default() += 1.0;
                if !country.is_empty() {
                    *by_country
                        .entry(String::new())
                        .or_default()
                        .entry(p)
                        .or_default() += 1.0;
                }
            }
        }
    }
    let popular_by_country = by_country
        .into_iter()
        .filter(|(_, m)| m.len() >= 10)
        .map(|(country, m)| {
            let mut v: Vec<(u32, f64)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            (country, v.into_iter().take(100).map(|(p, _)| p).collect())
        })
        .collect();

    AffinityModel {
        product_ids: history.products.ids.names().map(String::from).collect(),
        neighbors,
        popularity,
        popularity_30d,
        repeat_rate,
        repurchase_days,
        popular_by_country,
        signals,
        rankers: Rankers::default(),
        derived: Default::default(),
    }
}

/// Per product, the median over its repeat buyers of their mean days between two purchases of
/// it; products without repeat buyers get the median over the products that have them.
fn repurchase_days(profs: &[Profile], n_products: usize) -> Vec<f32> {
    let mut gaps: Vec<Vec<f32>> = vec![Vec::new(); n_products];
    for item in profs.iter().flatten().filter(|i| i.orders >= 2.0) {
        let gap = (item.days_since_first - item.days_since_last) / (item.orders - 1.0);
        gaps[item.product as usize].push(gap);
    }
    let median = |v: &mut Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let mut per_product: Vec<Option<f32>> = gaps.iter_mut().map(median).collect();
    let mut known: Vec<f32> = per_product.iter().flatten().copied().collect();
    let fallback = median(&mut known).unwrap_or(30.0);
    per_product
        .iter_mut()
        .map(|g| g.take().unwrap_or(fallback))
        .collect()
}

/// Held-out recommendation metrics of augur and the baselines.
#[derive(Debug, Clone, Serialize)]
pub struct AffinityBacktest {
    /// All items bought in the window; augur in replenish mode.
    pub all_items: BTreeMap<String, RecMetrics>,
    /// Items new to the contact; augur in discover mode.
    pub new_items: BTreeMap<String, RecMetrics>,
}

/// What a held-out window needs, computed once: profiles before the cutoff and purchases after.
pub struct Window {
    profiles: Vec<Profile>,
    future: HashMap<u32, Vec<u32>>,
    contacts: Vec<u32>,
}

impl Window {
    /// Every contact's profile before the cutoff.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// The window as the ranker fit reads it.
    fn rank_window<'a>(&'a self, country: &'a [Option<&'a str>]) -> RankWindow<'a> {
        RankWindow {
            profiles: &self.profiles,
            future: &self.future,
            contacts: &self.contacts,
            country,
        }
    }
}

impl Window {
    /// The window `[cutoff, cutoff + horizon)`, with at most `max_contacts` contacts (an even sample).
    pub fn new(
        history: &History,
        cutoff: i64,
        horizon: i64,
        signals: &Signals,
        max_contacts: usize,
    ) -> Self {
        let future = bought_between(history, cutoff, cutoff + horizon);
        let mut contacts: Vec<u32> = future.keys().copied().collect();
        contacts.sort_unstable();
        let step = contacts.len().div_ceil(max_contacts).max(1);
        let contacts = contacts.into_iter().step_by(step).collect();
        Self {
            profiles: profiles(history, cutoff, signals),
            future,
            contacts,
        }
    }
}

/// Evaluates a model fitted before the window's cutoff on the purchases in the window.
pub fn backtest(history: &History, model: &AffinityModel, window: &Window) -> AffinityBacktest {
    use rayon::prelude::*;
    let popular: Vec<u32> = model
        .popular_by_country
        .get("")
        .cloned()
        .unwrap_or_default();
    let per_contact: Vec<[(Vec<u32>, Vec<u32>); 6]> = window
        .contacts
        .par_iter()
        .map(|&c| {
            let prof = &window.profiles[c as usize];
            let owned: Vec<u32> = prof
                .iter()
                .filter(|i| i.bought > 0.0)
                .map(|i| i.product)
                .collect();
            let relevant = window.future[&c].clone();
            let new: Vec<u32> = relevant
                .iter()
                .copied()
                .filter(|p| !owned.contains(p))
                .collect();
            let country = history.contacts.country[c as usize];
            // What `recommend` gives without filters, with the candidates found once.
            let [replenish, discover] = model
                .scores_by_mode(prof, country)
                .map(|scored| best_k(scored, 10).into_iter().map(|(p, _)| p).collect());
            let popular_new: Vec<u32> = popular
                .iter()
                .copied()
                .filter(|p| !owned.contains(p))
                .take(10)
                .collect();
            // The contact's own most-bought items (by orders, then weight), then popular ones.
            let mut own: Vec<(u32, f32, f64)> = prof
                .iter()
                .filter(|i| i.bought > 0.0)
                .map(|i| (i.product, i.orders, i.bought))
                .collect();
            own.sort_by(|a, b| {
                b.1.total_cmp(&a.1)
                    .then(b.2.total_cmp(&a.2))
                    .then(a.0.cmp(&b.0))
            });
            let mut own: Vec<u32> = own.into_iter().map(|(p, _, _)| p).take(10).collect();
            own.extend(popular_new.iter().copied());
            [
                (replenish, relevant.clone()),
                (discover, new.clone()),
                (popular.iter().copied().take(10).collect(), relevant.clone()),
                (popular_new.clone(), new.clone()),
                (own, relevant),
                (popular_new, new),
            ]
        })
        .collect();
    let mut scores: [RecScore; 6] = Default::default();
    for row in &per_contact {
        for (score, (ranked, relevant)) in scores.iter_mut().zip(row) {
            score.add(ranked, relevant);
        }
    }
    let pack = |a: &RecScore, p: &RecScore, o: &RecScore| {
        BTreeMap::from([
            ("augur".to_string(), a.finish()),
            ("popularity".to_string(), p.finish()),
            ("own_most_bought".to_string(), o.finish()),
        ])
    };
    AffinityBacktest {
        all_items: pack(&scores[0], &scores[2], &scores[4]),
        new_items: pack(&scores[1], &scores[3], &scores[5]),
    }
}

/// What the choice of each mode's ranker measured on the selection window.
#[derive(Debug, Clone, Serialize)]
pub struct RankerChoices {
    /// Replenish mode, against the contact's own most-bought products.
    pub all_items: RankerChoice,
    /// Discover mode, against popularity.
    pub new_items: RankerChoice,
}

/// Fits each mode's ranker on the window `[cutoff, cutoff + horizon)` with a model fitted
/// before `cutoff`, keeping the baseline where it ranks better (see [`crate::ranker::choose`]).
pub fn fit_rankers(
    history: &History,
    cutoff: i64,
    horizon: i64,
    signals: Signals,
) -> (Rankers, RankerChoices) {
    let window = Window::new(history, cutoff, horizon, &signals, EVAL_CONTACTS / 3);
    let model = fit_with_profiles(history, cutoff, signals, &window.profiles);
    let country = &history.contacts.country;
    let rank_window = window.rank_window(country);
    let [(replenish, all_items), (discover, new_items)] = crate::ranker::choose(
        &model,
        &rank_window,
        &[Ranker::own_most_bought(), Ranker::popularity()],
    );
    (
        Rankers {
            replenish,
            discover,
        },
        RankerChoices {
            all_items,
            new_items,
        },
    )
}
