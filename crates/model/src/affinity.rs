//! Product affinity: item-to-item similarity learnt from what contacts buy together, applied to
//! each contact's own time-decayed history (purchases strongest; carts and views weaker), with
//! repeat purchases, popularity among similar contacts for newcomers, and scoring-time filters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::rows_before;
use augur_data::DAY;
use augur_data::History;
use augur_data::WebEventKind;

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

/// Names of the candidate features the ranker weighs, in [`Ranker::weights`] order. For a
/// product the contact bought: whether it did, how many orders held it, its time-decayed
/// purchase weight, the days since the last purchase, its share of the contact's most-bought
/// count, how due it is (days since the last purchase over the usual repurchase interval, the
/// contact's own when it bought the product twice or more, else the product's), and whether it
/// was bought twice or more. For every candidate: the item-to-item score from the contact's
/// history, recent popularity, the product's repeat rate and the contact's web interest in it;
/// then the item-to-item score again for the contact's own products only (what co-purchases
/// say about a product counts differently when the contact already buys it); last, the
/// popularity of the last 30 days beside that of the last 90 (what is rising now, such as the
/// season's products).
pub const RANK_FEATURES: [&str; 14] = [
    "owned",
    "ln_orders",
    "ln_bought",
    "ln_days_since_last",
    "orders_share",
    "ln_due",
    "ln_due_squared",
    "repeated",
    "item_to_item",
    "popularity",
    "repeat_rate",
    "ln_web",
    "owned_item_to_item",
    "popularity_30d",
];

/// Number of ranker features.
pub const RANK_FEATURE_COUNT: usize = RANK_FEATURES.len();

/// Linear scores over [`RANK_FEATURES`]: a candidate's score is `weights · features` (no
/// intercept: only the order matters). Fitted as a logistic regression on a window before the
/// held-out one, or one of the baselines when that window says the baseline ranks better.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ranker {
    /// What the weights are: `learned_ranker`, `own_most_bought`, `popularity` or `default`.
    pub source: String,
    /// One weight per feature, in raw (unscaled) feature units. A model written before a
    /// feature was added has fewer weights: the missing ones read as 0, which is how that model
    /// ranked.
    #[serde(deserialize_with = "weights_or_fewer")]
    pub weights: [f64; RANK_FEATURE_COUNT],
}

/// [`Ranker::weights`] from a list of at most [`RANK_FEATURE_COUNT`] numbers, zero-padded.
fn weights_or_fewer<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<[f64; RANK_FEATURE_COUNT], D::Error> {
    let given = Vec::<f64>::deserialize(deserializer)?;
    if given.len() > RANK_FEATURE_COUNT {
        return Err(serde::de::Error::invalid_length(
            given.len(),
            &"at most one weight per ranker feature",
        ));
    }
    let mut weights = [0.0; RANK_FEATURE_COUNT];
    weights[..given.len()].copy_from_slice(&given);
    Ok(weights)
}

impl Ranker {
    /// From (feature name, weight) pairs; unnamed features weigh zero.
    pub fn from_named(source: &str, named: &[(&str, f64)]) -> Self {
        let mut weights = [0.0; RANK_FEATURE_COUNT];
        for (name, w) in named {
            if let Some(i) = RANK_FEATURES.iter().position(|f| f == name) {
                weights[i] = *w;
            }
        }
        Self {
            source: source.to_string(),
            weights,
        }
    }

    /// The contact's own most-bought products (by orders, then decayed weight), then popular
    /// ones: the first baseline a data scientist tries for repeat purchases.
    pub fn own_most_bought() -> Self {
        Self::from_named(
            "own_most_bought",
            &[
                ("owned", 1e3),
                ("ln_orders", 1.0),
                ("ln_bought", 1e-3),
                ("popularity", 1e-4),
            ],
        )
    }

    /// Recent popularity alone.
    pub fn popularity() -> Self {
        Self::from_named("popularity", &[("popularity", 1.0)])
    }

    /// Weights used when the history is too short to fit any: own purchases by count, then
    /// the item-to-item score, then popularity.
    pub fn default_replenish() -> Self {
        Self::from_named(
            "default",
            &[
                ("owned", 2.0),
                ("ln_orders", 1.0),
                ("item_to_item", 0.5),
                ("popularity", 0.1),
            ],
        )
    }

    /// [`Ranker::default_replenish`] for products new to the contact.
    pub fn default_discover() -> Self {
        Self::from_named("default", &[("item_to_item", 1.0), ("popularity", 0.1)])
    }

    /// The score of one candidate's features.
    pub fn score(&self, features: &[f64; RANK_FEATURE_COUNT]) -> f64 {
        self.weights.iter().zip(features).map(|(w, x)| w * x).sum()
    }
}

/// The ranker of each mode.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rankers {
    /// Replenish mode: every product.
    pub replenish: Ranker,
    /// Discover mode: products new to the contact.
    pub discover: Ranker,
}

impl Default for Rankers {
    fn default() -> Self {
        Self {
            replenish: Ranker::default_replenish(),
            discover: Ranker::default_discover(),
        }
    }
}

/// Fitted affinity model. Product indexes refer to `product_ids`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AffinityModel {
    /// External product ids, in the model's index order.
    pub product_ids: Vec<String>,
    /// Per product: the products its purchase predicts and the item-to-item weight
    /// (EASE, Steck 2019: closed-form item–item regression over the most-bought products).
    pub neighbors: Vec<Vec<(u32, f32)>>,
    /// Recent popularity per product, max 1.
    pub popularity: Vec<f32>,
    /// Popularity over the last 30 days, max 1.
    #[serde(default)]
    pub popularity_30d: Vec<f32>,
    /// Share of a product's buyers who bought it again.
    pub repeat_rate: Vec<f32>,
    /// Per product: the median days between two purchases of it by the same contact
    /// (the median over products where unknown).
    pub repurchase_days: Vec<f32>,
    /// Most popular products per country (ISO code), best first.
    pub popular_by_country: BTreeMap<String, Vec<u32>>,
    /// Signal weights.
    pub signals: Signals,
    /// How candidates are ranked in each mode. Scores use constants derived from the rankers
    /// on first use: build a new model rather than change the rankers of one that has scored.
    pub rankers: Rankers,
    /// Constants of the rankers, derived on first use (not stored).
    #[serde(skip)]
    pub derived: Derived,
}

/// Per mode and product, the part of a candidate's score that depends on the product alone
/// (popularity and repeat rate), computed once per model.
#[derive(Clone, Default)]
pub struct Derived(std::sync::OnceLock<[Vec<f64>; 2]>);

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

impl PartialEq for Derived {
    /// Derived constants follow from the compared fields.
    fn eq(&self, _: &Self) -> bool {
        true
    }
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
    /// Index into the contact's profile of each touched product it holds (`u32::MAX`: none).
    item: Vec<u32>,
}

impl Scratch {
    fn reset(&mut self, products: usize) {
        self.products = products;
        if self.sum.len() < products {
            self.sum.resize(products, 0.0);
            self.stamp.resize(products, 0);
            self.item.resize(products, u32::MAX);
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
            self.item[i] = u32::MAX;
            self.touched.push(p);
        }
        self.sum[i] += s;
    }

    /// Makes the contact's own product `p` (at `index` in its profile) a candidate.
    fn own(&mut self, p: u32, index: usize) {
        self.add(p, 0.0);
        if let Some(slot) = self
            .item
            .get_mut(p as usize)
            .filter(|_| (p as usize) < self.products)
        {
            *slot = index as u32;
        }
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

    /// Each live candidate: (product, summed item-to-item weight, profile index or `u32::MAX`).
    fn drain(&mut self) -> Vec<(u32, f64, u32)> {
        self.touched
            .iter()
            .filter(|p| self.stamp[**p as usize] == self.generation)
            .map(|&p| (p, self.sum[p as usize], self.item[p as usize]))
            .collect()
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// One product in a contact's history as of the profile's instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Item {
    /// Product index.
    pub product: u32,
    /// Time-decayed purchase weight: Σ `signals.purchase · ln(1 + quantity) · decay`.
    pub bought: f64,
    /// Time-decayed web weight (carts and views).
    pub web: f64,
    /// Distinct orders that held the product (0: only seen on the web).
    pub orders: f32,
    /// Days from the latest purchase of it to the instant (0 when never bought).
    pub days_since_last: f32,
    /// Days from the first purchase of it to the instant (0 when never bought).
    pub days_since_first: f32,
}

/// One contact's history, one [`Item`] per product, ordered by product.
pub type Profile = Vec<Item>;

/// A purchase or web signal before it is merged into the contact's [`Item`] of the product.
#[derive(Clone, Copy)]
struct Signal {
    product: u32,
    /// Order index (`u32::MAX` for web signals).
    order: u32,
    at: i64,
    bought: f64,
    web: f64,
}

/// Every contact's weighted product history before `t`.
pub fn profiles(history: &History, t: i64, signals: &Signals) -> Vec<Profile> {
    let mut raw: Vec<Vec<Signal>> = vec![Vec::new(); history.contacts.len()];
    let decay = |age: i64, half_life: f64| {
        (-(age as f64) / (half_life * DAY as f64) * std::f64::consts::LN_2).exp()
    };
    let o = &history.orders;
    for i in 0..rows_before(&o.at, t) {
        if o.quantity[i] > 0.0 {
            let w = signals.purchase
                * o.quantity[i].ln_1p()
                * decay(t - o.at[i], signals.purchase_half_life_days);
            raw[o.contact[i] as usize].push(Signal {
                product: o.product[i],
                order: o.order[i],
                at: o.at[i],
                bought: w,
                web: 0.0,
            });
        }
    }
    let web = &history.web_events;
    for i in 0..rows_before(&web.at, t) {
        if web.product[i] == augur_data::NONE {
            continue;
        }
        let base = match web.kind[i] {
            WebEventKind::AddToCart => signals.cart,
            WebEventKind::View => signals.view,
            _ => continue,
        };
        let w = base * decay(t - web.at[i], signals.web_half_life_days);
        raw[web.contact[i] as usize].push(Signal {
            product: web.product[i],
            order: u32::MAX,
            at: web.at[i],
            bought: 0.0,
            web: w,
        });
    }
    use rayon::prelude::*;
    raw.into_par_iter()
        .map(|mut signals| merge(&mut signals, t))
        .collect()
}

/// One [`Item`] per product from a contact's signals.
fn merge(signals: &mut [Signal], t: i64) -> Profile {
    signals.sort_unstable_by_key(|s| (s.product, s.order, s.at));
    let days = |at: i64| ((t - at) as f64 / DAY as f64) as f32;
    let mut out: Profile = Vec::new();
    let mut last_order = u32::MAX;
    for s in signals.iter() {
        if out.last().is_none_or(|item| item.product != s.product) {
            out.push(Item {
                product: s.product,
                ..Item::default()
            });
            last_order = u32::MAX;
        }
        let Some(item) = out.last_mut() else { continue };
        item.bought += s.bought;
        item.web += s.web;
        if s.order != u32::MAX {
            let age = days(s.at);
            if item.orders == 0.0 {
                item.days_since_first = age;
                item.days_since_last = age;
            } else {
                item.days_since_first = item.days_since_first.max(age);
                item.days_since_last = item.days_since_last.min(age);
            }
            if s.order != last_order {
                item.orders += 1.0;
                last_order = s.order;
            }
        }
    }
    out
}

/// The contact's most-bought count (orders of its most-ordered product).
fn max_orders(profile: &Profile) -> f32 {
    profile.iter().map(|i| i.orders).fold(0.0, f32::max)
}

/// The ranker features of one candidate: `item` when the contact has the product in its
/// history, `item_to_item` its summed item-to-item weight, `max_orders` the contact's
/// most-bought count (see [`RANK_FEATURES`]).
pub fn rank_features(
    model: &AffinityModel,
    product: u32,
    item: Option<&Item>,
    item_to_item: f64,
    max_orders: f32,
) -> [f64; RANK_FEATURE_COUNT] {
    let p = product as usize;
    let popularity = f64::from(model.popularity.get(p).copied().unwrap_or(0.0));
    let repeat_rate = f64::from(model.repeat_rate.get(p).copied().unwrap_or(0.0));
    let i2i = item_to_item.max(0.0).ln_1p();
    let mut f = [0.0; RANK_FEATURE_COUNT];
    f[8] = i2i;
    f[9] = (100.0 * popularity).ln_1p();
    f[13] = (100.0 * f64::from(model.popularity_30d.get(p).copied().unwrap_or(0.0))).ln_1p();
    f[10] = repeat_rate;
    if let Some(item) = item {
        f[11] = item.web.ln_1p();
        if item.orders > 0.0 {
            let orders = f64::from(item.orders);
            let since_last = f64::from(item.days_since_last);
            let interval = if item.orders >= 2.0 {
                f64::from(item.days_since_first - item.days_since_last) / (orders - 1.0)
            } else {
                f64::from(model.repurchase_days.get(p).copied().unwrap_or(30.0))
            };
            let due = ((since_last + 1.0) / (interval.max(0.0) + 1.0))
                .ln()
                .clamp(-5.0, 5.0);
            f[0] = 1.0;
            f[1] = orders.ln_1p();
            f[2] = item.bought.ln_1p();
            f[3] = since_last.ln_1p();
            f[4] = orders / f64::from(max_orders.max(1.0));
            f[5] = due;
            f[6] = due * due;
            f[7] = f64::from(u8::from(item.orders >= 2.0));
            f[12] = i2i;
        }
    }
    f
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
    /// Candidates are the products in its history, those its history predicts through the
    /// item-to-item weights, and the popular ones of its country; each is scored by the mode's
    /// [`Ranker`]. Item-to-item sums go into a per-thread dense array indexed by product, so
    /// the cost is one add per (history item × neighbour) and no sort.
    pub fn scores(&self, profile: &Profile, mode: Mode, country: Option<&str>) -> Vec<(u32, f64)> {
        let score = self.scorer(profile, mode);
        let mut out = Vec::new();
        self.each_candidate(profile, mode, country, |p, i2i, item| {
            out.push((p, score(p, i2i, item)));
        });
        out
    }

    /// [`AffinityModel::scores`] in both modes, `[replenish, discover]`: the candidates of
    /// discover mode are those of replenish mode less the products the contact bought, so its
    /// item-to-item sums are found once for both.
    pub fn scores_by_mode(&self, profile: &Profile, country: Option<&str>) -> [Vec<(u32, f64)>; 2] {
        let (replenish, discover) = (
            self.scorer(profile, Mode::Replenish),
            self.scorer(profile, Mode::Discover),
        );
        let mut out: [Vec<(u32, f64)>; 2] = Default::default();
        self.each_candidate(profile, Mode::Replenish, country, |p, i2i, item| {
            out[0].push((p, replenish(p, i2i, item)));
            if new_to_contact(item) {
                out[1].push((p, discover(p, i2i, item)));
            }
        });
        out
    }

    /// The score of one candidate in `mode`. A candidate outside the contact's history has
    /// only the item-to-item score of its own; the rest of its score depends on the product
    /// alone and is computed once per model.
    fn scorer<'a>(
        &'a self,
        profile: &Profile,
        mode: Mode,
    ) -> impl Fn(u32, f64, Option<&Item>) -> f64 + 'a {
        let ranker = self.ranker(mode);
        let product_part = &self.product_parts()[mode as usize];
        let w_item_to_item = ranker.weights[8];
        let max_orders = max_orders(profile);
        move |p, i2i, item| match item {
            Some(item) => ranker.score(&rank_features(self, p, Some(item), i2i, max_orders)),
            None => {
                product_part.get(p as usize).copied().unwrap_or(0.0)
                    + w_item_to_item * i2i.max(0.0).ln_1p()
            }
        }
    }

    /// [`Derived`]: per mode (replenish, discover) and product, the popularity and repeat-rate
    /// part of the score, as [`rank_features`] and [`Ranker::score`] compute it.
    fn product_parts(&self) -> &[Vec<f64>; 2] {
        self.derived.0.get_or_init(|| {
            [Mode::Replenish, Mode::Discover].map(|mode| {
                let w = &self.ranker(mode).weights;
                (0..self.product_ids.len() as u32)
                    .map(|p| {
                        let f = rank_features(self, p, None, 0.0, 0.0);
                        w[9] * f[9] + w[10] * f[10] + w[13] * f[13]
                    })
                    .collect()
            })
        })
    }

    /// The ranker of a mode.
    fn ranker(&self, mode: Mode) -> &Ranker {
        match mode {
            Mode::Replenish => &self.rankers.replenish,
            Mode::Discover => &self.rankers.discover,
        }
    }

    /// Every candidate of [`AffinityModel::scores`] with its ranker features, in both modes,
    /// `[replenish, discover]`, found once as in [`AffinityModel::scores_by_mode`].
    pub fn candidates_by_mode(
        &self,
        profile: &Profile,
        country: Option<&str>,
    ) -> [Vec<(u32, [f64; RANK_FEATURE_COUNT])>; 2] {
        let max_orders = max_orders(profile);
        let mut out: [Vec<_>; 2] = Default::default();
        self.each_candidate(profile, Mode::Replenish, country, |p, i2i, item| {
            let features = rank_features(self, p, item, i2i, max_orders);
            if new_to_contact(item) {
                out[1].push((p, features));
            }
            out[0].push((p, features));
        });
        out
    }

    /// Calls `visit` with every candidate, its summed item-to-item weight and the contact's
    /// own history item of it, if any.
    fn each_candidate(
        &self,
        profile: &Profile,
        mode: Mode,
        country: Option<&str>,
        mut visit: impl FnMut(u32, f64, Option<&Item>),
    ) {
        let summed = SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            scratch.reset(self.product_ids.len());
            for (index, item) in profile.iter().enumerate() {
                let u = if item.bought > 0.0 {
                    1.0
                } else {
                    item.web.min(1.0)
                };
                if let Some(neighbors) = self.neighbors.get(item.product as usize) {
                    for &(q, s) in neighbors {
                        scratch.add(q, u * f64::from(s));
                    }
                }
                scratch.own(item.product, index);
            }
            let popular = country
                .and_then(|c| self.popular_by_country.get(c))
                .or_else(|| self.popular_by_country.get(""));
            for &p in popular.into_iter().flatten() {
                scratch.add(p, 0.0);
            }
            if mode == Mode::Discover {
                for item in profile.iter().filter(|i| i.bought > 0.0) {
                    scratch.remove(item.product);
                }
            }
            scratch.drain()
        });
        for (p, i2i, index) in summed {
            visit(p, i2i, profile.get(index as usize));
        }
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
        let scored: Vec<(u32, f64)> = self
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
        best_k(scored, request.k)
    }
}

/// Whether a candidate with this history item (if any) may be recommended in discover mode:
/// the contact never bought it.
fn new_to_contact(item: Option<&Item>) -> bool {
    item.is_none_or(|i| i.bought <= 0.0)
}

/// The `k` best of `scored`, best first (ties: lower product index first).
pub fn best_k(mut scored: Vec<(u32, f64)>, k: usize) -> Vec<(u32, f64)> {
    let best_first = |a: &(u32, f64), b: &(u32, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if scored.len() > k && k > 0 {
        scored.select_nth_unstable_by(k - 1, best_first);
        scored.truncate(k);
    }
    scored.sort_by(best_first);
    scored.truncate(k);
    // The candidates list can be thousands long; a kept answer should not carry its capacity.
    scored.shrink_to_fit();
    scored
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
        if let Some(&c) = category.get(p as usize).filter(|c| **c != augur_data::NONE) {
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
    fn a_ranker_written_with_fewer_features_reads_with_zero_weights_for_the_new_ones() {
        let old: Ranker =
            serde_json::from_str(r#"{"source": "learned_ranker", "weights": [1.0, 2.0, 3.0]}"#)
                .expect("an older ranker reads");
        assert_eq!(&old.weights[..3], &[1.0, 2.0, 3.0]);
        assert!(old.weights[3..].iter().all(|w| *w == 0.0));
        let too_many = format!(
            r#"{{"source": "x", "weights": {:?}}}"#,
            vec![1.0; RANK_FEATURE_COUNT + 1]
        );
        assert!(serde_json::from_str::<Ranker>(&too_many).is_err());
    }

    #[test]
    fn both_modes_at_once_score_as_each_mode_alone() {
        let n = 6;
        let model = AffinityModel {
            product_ids: (0..n).map(|p| format!("p{p}")).collect(),
            // Buying 0 predicts 2 and 3; buying 1 predicts 0 and 4.
            neighbors: vec![
                vec![(2, 0.5), (3, 0.2)],
                vec![(0, 0.4), (4, 0.1)],
                Vec::new(),
                Vec::new(),
                Vec::new(),
                Vec::new(),
            ],
            popularity: vec![1.0, 0.2, 0.5, 0.1, 0.0, 0.3],
            popularity_30d: vec![0.5; n],
            repeat_rate: vec![0.2; n],
            repurchase_days: vec![30.0; n],
            popular_by_country: BTreeMap::from([(String::new(), vec![0, 5])]),
            signals: Signals::default(),
            rankers: Rankers::default(),
            derived: Derived::default(),
        };
        // Bought 0 and 1; only viewed 4.
        let item = |product, bought, orders| Item {
            product,
            bought,
            web: 0.3,
            orders,
            days_since_last: 12.0,
            days_since_first: 40.0,
        };
        let profile = vec![item(0, 1.2, 2.0), item(1, 0.7, 1.0), item(4, 0.0, 0.0)];
        let sorted = |mut v: Vec<(u32, f64)>| {
            v.sort_by_key(|(p, _)| *p);
            v
        };
        let [replenish, discover] = model.scores_by_mode(&profile, None);
        for (both, mode) in [(replenish, Mode::Replenish), (discover, Mode::Discover)] {
            assert_eq!(
                sorted(both),
                sorted(model.scores(&profile, mode, None)),
                "{mode:?}"
            );
        }
        let [_, discover] = model.scores_by_mode(&profile, None);
        let products: Vec<u32> = sorted(discover).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            products,
            vec![2, 3, 4, 5],
            "discover leaves out what was bought"
        );
    }

    #[test]
    fn category_shares_sum_purchases_and_views_per_category() {
        // Products 0 and 1 in category 7, product 2 in category 3, product 3 uncategorized.
        let category = [7, 7, 3, augur_data::NONE];
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
