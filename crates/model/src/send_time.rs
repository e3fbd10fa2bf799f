//! Best send time: when in the week (local time) each contact engages, as a 168-bin profile
//! (Monday 00:00 first), shrunk toward its cluster and the population, and the send hour that
//! best precedes engagement given the usual delay between send and open.
//!
//! A sparse contact's own engagement is given structure rather than 168 free bins: each
//! engagement spreads to the neighbouring hours (hours wrap around the week), and a share of
//! it goes to the same hour on every day of the week, in the proportions the contact's prior
//! gives that hour's days. The share is `κ_day / (n + κ_day)` for a contact with own weight `n`
//! ([`SendTimeModel::kappa_day`], fitted): a sparse contact keeps its own hours of the day but
//! takes its weekday shape from similar contacts, and a contact's own weekday shape shows as
//! its engagement grows. A hierarchy of hour, weekday, cluster and population.

use serde::{Deserialize, Serialize};

use crate::features::{is_machine_open, rows_before};
use augur_data::History;
use augur_data::{DAY, LocalClock};
use augur_data::{EmailEventKind, WebEventKind};

/// Hours in a week.
pub const HOURS: usize = 168;

/// How much each kind of engagement says about when a contact reads.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct EngagementWeights {
    /// A click.
    pub click: f64,
    /// A human open (machine opens count zero).
    pub open: f64,
    /// A web event.
    pub web: f64,
    /// An order (once per order, at its first line).
    pub order: f64,
    /// Half-life of an engagement's weight, in days: recent behaviour counts more.
    pub half_life_days: f64,
}

impl Default for EngagementWeights {
    fn default() -> Self {
        Self {
            click: 1.0,
            open: 0.6,
            web: 0.05,
            order: 0.2,
            half_life_days: 180.0,
        }
    }
}

/// Which prior dominated a contact's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendTimeSource {
    /// Enough own engagement.
    Own,
    /// Mostly the profile of similar contacts.
    Cluster,
    /// No engagement at all: the population profile.
    Population,
}

impl SendTimeSource {
    /// Name in outputs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Cluster => "cluster",
            Self::Population => "population",
        }
    }
}

/// Fitted send-time model. Predictions use constants derived from `population`, `clusters`
/// and `delay` on first use: build a new model (see [`SendTimeModel::new`]) rather than change
/// those fields of one that has predicted. The pseudo-counts may change at any time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SendTimeModel {
    /// Engagement weighting.
    pub weights: EngagementWeights,
    /// Population profile (sums to 1).
    pub population: Vec<f64>,
    /// Cluster profiles (each sums to 1).
    pub clusters: Vec<Vec<f64>>,
    /// Pseudo-count of the cluster prior.
    pub kappa_cluster: f64,
    /// Pseudo-count of the population prior.
    pub kappa_population: f64,
    /// P(open k hours after send), k = 0..24.
    pub delay: Vec<f64>,
    /// Pseudo-count of the prior's weekday shape: a contact with own weight `n` spreads the
    /// share `κ_day / (n + κ_day)` of each engagement over the seven days at its hour of the
    /// day (by the prior's weekday shape at that hour) rather than keeping it on its own day.
    /// Chosen on held-out engagement by hour of the week; models written before it read as 0
    /// (no sharing).
    #[serde(default)]
    pub kappa_day: f64,
    /// Constants of the fitted priors, derived on first use (not stored).
    #[serde(skip)]
    derived: Derived,
}

/// What every prediction needs from the priors, computed once per model: a contact's own
/// engagement touches a handful of hours, so the dense 168-hour work is done here, not per
/// contact. Depends on the priors and the delay only, never on the pseudo-counts, which fitting
/// tunes after the priors are set.
#[derive(Clone, Default)]
struct Derived(std::sync::OnceLock<PriorConstants>);

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

#[derive(Debug, Clone)]
struct PriorConstants {
    /// Squared norm of each cluster profile (nearest-cluster distances by dot products).
    cluster_norms: Vec<f64>,
    /// Each cluster profile smoothed like engagement. Smoothing spreads evenly to both sides,
    /// so a cluster's dot product with a smoothed profile is this one's with the raw weights:
    /// one product per engaged hour instead of three.
    smoothed_clusters: Vec<[f64; HOURS]>,
    /// [`SendTimeModel::send_scores`] of each cluster profile.
    cluster_scores: Vec<[f64; HOURS]>,
    /// [`SendTimeModel::send_scores`] of the population profile.
    population_scores: [f64; HOURS],
}

impl PartialEq for Derived {
    /// Derived constants follow from the compared fields.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A contact's own engagement and the prior it is shrunk toward.
struct Blend<'a> {
    /// Own engagement.
    own: Engagement<'a>,
    /// Total own weight.
    n: f64,
    /// Nearest cluster, if the contact has any engagement and the model clusters.
    cluster: Option<usize>,
    /// Pseudo-count given to the cluster (zero without one).
    kappa_c: f64,
}

/// A contact's send-time prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct SendTime {
    /// Engagement profile over the week, local time, sums to 1.
    pub profile: Vec<f64>,
    /// Best local hours of the week to send, best first.
    pub best_hours: Vec<usize>,
    /// Own evidence against the priors, in [0, 1).
    pub confidence: f64,
    /// Which prior dominated.
    pub source: SendTimeSource,
}

/// Weighted engagement per contact and local hour of week, from events before `t`.
pub fn engagement_counts(history: &History, t: i64, w: &EngagementWeights) -> Vec<[f32; HOURS]> {
    let mut counts = vec![[0f32; HOURS]; history.contacts.len()];
    let zone = &history.contacts.timezone;
    let clock = history_clock(history, t);
    let zone_index: Vec<usize> = zone
        .iter()
        .map(|z| clock.zone_index(*z).unwrap_or(usize::MAX))
        .collect();
    let decay = |at: i64| {
        (-(t - at) as f64 / (w.half_life_days * DAY as f64) * std::f64::consts::LN_2).exp()
    };
    let mut add = |c: u32, at: i64, weight: f64| {
        if weight > 0.0 {
            let (c, z) = (c as usize, zone_index[c as usize]);
            let how = if z == usize::MAX {
                clock.hour_of_week(at, zone[c])
            } else {
                clock.hour_of_week_in(at, z, zone[c])
            };
            counts[c][how] += (weight * decay(at)) as f32;
        }
    };
    let e = &history.email_events;
    let mut last_delivered: Vec<i64> = vec![i64::MIN; history.contacts.len()];
    for i in 0..rows_before(&e.at, t) {
        let c = e.contact[i];
        match e.kind[i] {
            EmailEventKind::Delivered => last_delivered[c as usize] = e.at[i],
            EmailEventKind::Open => {
                let delivered = Some(last_delivered[c as usize]).filter(|d| *d != i64::MIN);
                if !is_machine_open(e.machine_open[i], e.at[i], delivered) {
                    add(c, e.at[i], w.open);
                }
            }
            EmailEventKind::Click => add(c, e.at[i], w.click),
            _ => {}
        }
    }
    let web = &history.web_events;
    for i in 0..rows_before(&web.at, t) {
        if web.kind[i] != WebEventKind::Search {
            add(web.contact[i], web.at[i], w.web);
        }
    }
    // An order is one engagement at the moment it was placed, however many lines it has: a
    // basket of 40 lines says no more about when the contact shops than a basket of one.
    // Returns are not a moment the contact chose to shop.
    let o = &history.orders;
    let mut last_order: Vec<u32> = vec![u32::MAX; history.contacts.len()];
    for i in 0..rows_before(&o.at, t) {
        let c = o.contact[i] as usize;
        if o.quantity[i] > 0.0 && last_order[c] != o.order[i] {
            last_order[c] = o.order[i];
            add(o.contact[i], o.at[i], w.order);
        }
    }
    counts
}

/// A [`LocalClock`] for the history's zones, covering its events before `t`.
pub fn history_clock(history: &History, t: i64) -> LocalClock {
    let (first, last) = history.event_span().unwrap_or((t, t));
    let mut zones: Vec<chrono_tz::Tz> = history.contacts.timezone.clone();
    zones.sort_unstable_by_key(|z| z.name());
    zones.dedup();
    LocalClock::new(
        zones,
        first.min(t),
        t.min(last).max(first).saturating_add(DAY),
    )
}

/// Normalizes to a distribution (uniform if empty).
pub fn normalize(v: &[f64]) -> Vec<f64> {
    let total: f64 = v.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return vec![1.0 / v.len() as f64; v.len()];
    }
    v.iter().map(|x| x / total).collect()
}

/// Spreads each hour's mass a little to its neighbours (the same hour on other days is left
/// to the priors): reading at 8:10 and 7:50 is the same habit.
pub fn smooth(counts: &[f32; HOURS]) -> Vec<f64> {
    let mut out = vec![0.0; HOURS];
    for (h, v) in Engagement::Dense(counts).smoothed() {
        out[h] += v;
    }
    out
}

/// How [`smooth`] spreads an hour's weight: to the hour itself, the next and the previous.
const SPREAD: [(usize, f64); 3] = [(0, 0.5), (1, 0.25), (HOURS - 1, 0.25)];

/// A contact's weighted engagement by local hour of the week: every hour, as training counts
/// it, or only the hours with weight, as the snapshot stores it. A prediction visits only the
/// hours with weight either way.
#[derive(Debug, Clone, Copy)]
pub enum Engagement<'a> {
    /// The weight at every hour of the week.
    Dense(&'a [f32; HOURS]),
    /// The hours with weight (each below 168) and their weights, in step.
    Sparse {
        /// Local hours of the week.
        hours: &'a [u8],
        /// The weight at each of `hours`.
        weights: &'a [f32],
    },
}

impl<'a> From<&'a [f32; HOURS]> for Engagement<'a> {
    fn from(counts: &'a [f32; HOURS]) -> Self {
        Self::Dense(counts)
    }
}

impl<'a> Engagement<'a> {
    /// Each hour with a weight, and the weight.
    fn entries(self) -> impl Iterator<Item = (usize, f64)> + Clone + 'a {
        let (dense, hours, weights): (Option<&'a [f32; HOURS]>, &'a [u8], &'a [f32]) = match self {
            Self::Dense(counts) => (Some(counts), &[], &[]),
            Self::Sparse { hours, weights } => (None, hours, weights),
        };
        let dense = dense
            .into_iter()
            .flat_map(|counts| counts.iter().enumerate())
            .map(|(h, w)| (h, *w));
        let sparse = hours
            .iter()
            .zip(weights)
            .map(|(h, w)| (usize::from(*h), *w));
        dense
            .chain(sparse)
            .filter(|(h, w)| *w != 0.0 && *h < HOURS)
            .map(|(h, w)| (h, f64::from(w)))
    }

    /// Calls `f` with this engagement as the hours with weight: a dense week is gathered once,
    /// so that a prediction's several passes visit only those hours.
    fn with_sparse<R>(self, f: impl FnOnce(Engagement<'_>) -> R) -> R {
        match self {
            Self::Dense(counts) => {
                let (mut hours, mut weights, mut len) = ([0u8; HOURS], [0f32; HOURS], 0);
                for (h, w) in counts.iter().enumerate().filter(|(_, w)| **w != 0.0) {
                    hours[len] = h as u8;
                    weights[len] = *w;
                    len += 1;
                }
                f(Engagement::Sparse {
                    hours: &hours[..len],
                    weights: &weights[..len],
                })
            }
            sparse => f(sparse),
        }
    }

    /// [`smooth`]'s spread of each weight, unsummed: an hour may appear up to three times.
    fn smoothed(self) -> impl Iterator<Item = (usize, f64)> + Clone + 'a {
        self.entries()
            .flat_map(|(h, w)| SPREAD.map(|(offset, share)| ((h + offset) % HOURS, share * w)))
    }
}

/// The sum of a week of masses, by four running sums (no chain of 168 dependent additions).
fn total(mass: &[f64; HOURS]) -> f64 {
    let mut sums = [0.0; 4];
    for quad in mass.chunks_exact(4) {
        for (s, m) in sums.iter_mut().zip(quad) {
            *s += m;
        }
    }
    sums.iter().sum()
}

/// A week of masses as a distribution (uniform if empty), into `out`.
fn normalize_into<T>(mass: &[f64; HOURS], out: &mut [T], cast: impl Fn(f64) -> T) {
    let total = total(mass);
    let valid = total > 0.0 && total.is_finite();
    for (o, m) in out.iter_mut().zip(mass) {
        *o = cast(if valid { m / total } else { 1.0 / HOURS as f64 });
    }
}

impl SendTimeModel {
    /// A model from its fitted parts.
    pub fn new(
        weights: EngagementWeights,
        population: Vec<f64>,
        clusters: Vec<Vec<f64>>,
        kappa_cluster: f64,
        kappa_population: f64,
        delay: Vec<f64>,
    ) -> Self {
        Self {
            weights,
            population,
            clusters,
            kappa_cluster,
            kappa_population,
            delay,
            kappa_day: 0.0,
            derived: Derived::default(),
        }
    }

    fn constants(&self) -> &PriorConstants {
        self.derived.0.get_or_init(|| {
            let dense = |p: &[f64]| {
                let mut out = [0.0; HOURS];
                out.iter_mut()
                    .zip(self.send_scores(p))
                    .for_each(|(o, s)| *o = s);
                out
            };
            PriorConstants {
                cluster_norms: self
                    .clusters
                    .iter()
                    .map(|c| c.iter().map(|v| v * v).sum())
                    .collect(),
                smoothed_clusters: self
                    .clusters
                    .iter()
                    .map(|c| {
                        std::array::from_fn(|h| {
                            SPREAD
                                .iter()
                                .map(|(offset, share)| share * c[(h + offset) % HOURS])
                                .sum()
                        })
                    })
                    .collect(),
                cluster_scores: self.clusters.iter().map(|c| dense(c)).collect(),
                population_scores: dense(&self.population),
            }
        })
    }

    /// The nearest cluster of a (smoothed, normalized) profile, by squared distance.
    pub fn nearest_cluster(&self, profile: &[f64]) -> Option<usize> {
        self.clusters
            .iter()
            .enumerate()
            .map(|(k, c)| {
                (
                    k,
                    c.iter()
                        .zip(profile)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f64>(),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k)
    }

    /// The contact's own engagement and its nearest cluster. The distance to a cluster c from
    /// the normalized, smoothed profile p is |c|² − 2 c·p + |p|²; the last term is the same for
    /// every cluster and c·p only needs the hours the contact engaged in.
    fn blend<'a>(&self, own: Engagement<'a>) -> Blend<'a> {
        let n: f64 = own.entries().map(|(_, w)| w).sum();
        let cluster = if n > 0.0 {
            let k = self.constants();
            k.smoothed_clusters
                .iter()
                .zip(&k.cluster_norms)
                .map(|(c, norm)| {
                    let dot: f64 = own.entries().map(|(h, w)| c[h] * w).sum();
                    norm - 2.0 * dot / n
                })
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(k, _)| k)
        } else {
            None
        };
        let kappa_c = if cluster.is_some() {
            self.kappa_cluster
        } else {
            0.0
        };
        Blend {
            own,
            n,
            cluster,
            kappa_c,
        }
    }

    /// The priors' pseudo-counts at every hour.
    fn prior_mass(&self, b: &Blend<'_>) -> [f64; HOURS] {
        let population = &self.population[..HOURS];
        match b.cluster.map(|k| &self.clusters[k][..HOURS]) {
            Some(c) => {
                std::array::from_fn(|h| b.kappa_c * c[h] + self.kappa_population * population[h])
            }
            None => std::array::from_fn(|h| self.kappa_population * population[h]),
        }
    }

    /// Calls `add(hour of week, mass)` with the contact's own engagement: smoothed, and with
    /// the share [`SendTimeModel::day_share`] of it spread over the days at the same hour of
    /// the day as `prior` spreads that hour (evenly where the prior is empty there).
    fn each_own(&self, b: &Blend<'_>, prior: &[f64; HOURS], mut add: impl FnMut(usize, f64)) {
        let share = self.day_share(b.n);
        if share <= 0.0 {
            b.own.smoothed().for_each(|(h, v)| add(h, v));
            return;
        }
        // What stays on its day, and the rest summed by hour of the day, then spread once.
        let mut own_by_hour = [0.0; 24];
        for (h, v) in b.own.smoothed() {
            add(h, (1.0 - share) * v);
            own_by_hour[h % 24] += share * v;
        }
        for (hour, v) in own_by_hour
            .into_iter()
            .enumerate()
            .filter(|(_, v)| *v > 0.0)
        {
            let prior_at_hour: f64 = (0..7).map(|day| prior[day * 24 + hour]).sum();
            for day in 0..7 {
                let at = day * 24 + hour;
                let weekday = if prior_at_hour > 0.0 {
                    prior[at] / prior_at_hour
                } else {
                    1.0 / 7.0
                };
                add(at, v * weekday);
            }
        }
    }

    /// The share of own engagement of weight `n` spread over the days: `κ_day / (n + κ_day)`.
    pub fn day_share(&self, n: f64) -> f64 {
        if self.kappa_day > 0.0 && self.kappa_day.is_finite() {
            (self.kappa_day / (n.max(0.0) + self.kappa_day)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Unnormalized profile mass at every hour: the priors' pseudo-counts plus own engagement.
    fn mass(&self, b: &Blend<'_>) -> [f64; HOURS] {
        let prior = self.prior_mass(b);
        let mut mass = prior;
        self.each_own(b, &prior, |h, v| mass[h] += v);
        mass
    }

    /// How sure the profile is and which prior dominated it.
    fn confidence_and_source(&self, b: &Blend<'_>) -> (f64, SendTimeSource) {
        let prior = b.kappa_c + self.kappa_population;
        let source = if b.n <= 0.0 {
            SendTimeSource::Population
        } else if b.n >= prior {
            SendTimeSource::Own
        } else {
            SendTimeSource::Cluster
        };
        (b.n / (b.n + prior), source)
    }

    /// The contact's profile (sums to 1).
    pub fn profile<'a>(&self, engagement: impl Into<Engagement<'a>>) -> Vec<f64> {
        let mut out = vec![0.0; HOURS];
        engagement.into().with_sparse(|own| {
            normalize_into(&self.mass(&self.blend(own)), &mut out, |p| p);
        });
        out
    }

    /// [`SendTimeModel::profile`] as `f32`, written into `out` (168 values) without allocating:
    /// what batch scoring stores.
    pub fn profile_into<'a>(&self, engagement: impl Into<Engagement<'a>>, out: &mut [f32]) {
        debug_assert_eq!(out.len(), HOURS);
        engagement.into().with_sparse(|own| {
            normalize_into(&self.mass(&self.blend(own)), out, |p| p as f32);
        });
    }

    /// The prediction for one contact's engagement.
    pub fn predict<'a>(&self, engagement: impl Into<Engagement<'a>>) -> SendTime {
        engagement
            .into()
            .with_sparse(|own| self.predict_sparse(own))
    }

    fn predict_sparse(&self, own: Engagement<'_>) -> SendTime {
        let b = self.blend(own);
        let prior = self.prior_mass(&b);
        let mut mass = prior;
        self.each_own(&b, &prior, |h, v| mass[h] += v);
        let mut profile = vec![0.0; HOURS];
        normalize_into(&mass, &mut profile, |p| p);
        let (confidence, source) = self.confidence_and_source(&b);
        // Send scores are linear in the profile: the priors' are precomputed, the contact's
        // own hours add their delayed engagement.
        let k = self.constants();
        let mut scores = [0.0; HOURS];
        for (h, s) in scores.iter_mut().enumerate() {
            *s = self.kappa_population * k.population_scores[h]
                + b.cluster
                    .map_or(0.0, |c| b.kappa_c * k.cluster_scores[c][h]);
        }
        self.each_own(&b, &prior, |j, v| {
            for (d, p) in self.delay.iter().enumerate() {
                scores[(j + HOURS - d % HOURS) % HOURS] += p * v;
            }
        });
        let best_hours = top_hours(&scores, 3);
        SendTime {
            profile,
            best_hours,
            confidence,
            source,
        }
    }

    /// The engagement a send at each local hour of the week leads to: the profile over the
    /// following hours, weighted by the delay between send and open.
    pub fn send_scores(&self, profile: &[f64]) -> Vec<f64> {
        (0..HOURS)
            .map(|h| {
                self.delay
                    .iter()
                    .enumerate()
                    .map(|(k, d)| d * profile[(h + k) % HOURS])
                    .sum::<f64>()
            })
            .collect()
    }

    /// Send hours ranked by [`SendTimeModel::send_scores`], best first (ties: earlier hour).
    pub fn best_send_hours(&self, profile: &[f64], n: usize) -> Vec<usize> {
        top_hours(&self.send_scores(profile), n)
    }
}

/// The `n` best hours by score, best first (ties: earlier hour). Keeps the best while
/// scanning (n is a handful): no sort of all 168 hours.
fn top_hours(scores: &[f64], n: usize) -> Vec<usize> {
    let mut best: Vec<(usize, f64)> = Vec::with_capacity(n + 1);
    for (h, &s) in scores.iter().enumerate() {
        let at = best.partition_point(|(_, b)| b.total_cmp(&s).is_ge());
        if at < n {
            best.insert(at, (h, s));
            best.truncate(n);
        }
    }
    best.into_iter().map(|(h, _)| h).collect()
}

/// Folds a week profile into hours of the day.
pub fn hour_of_day(profile: &[f64]) -> [f64; 24] {
    let mut out = [0.0; 24];
    for (h, p) in profile.iter().enumerate() {
        out[h % 24] += p;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> SendTimeModel {
        SendTimeModel::new(
            EngagementWeights::default(),
            vec![1.0 / HOURS as f64; HOURS],
            vec![],
            0.0,
            2.0,
            vec![0.7, 0.3],
        )
    }

    #[test]
    fn sparse_contacts_fall_back_and_profiles_sum_to_one() {
        let m = model();
        let empty = m.predict(&[0.0; HOURS]);
        assert_eq!(empty.source, SendTimeSource::Population);
        assert!((empty.profile.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let mut counts = [0f32; HOURS];
        counts[8] = 20.0;
        let p = m.predict(&counts);
        assert_eq!(p.source, SendTimeSource::Own);
        assert_eq!(
            p.best_hours[0], 8,
            "send at the reading hour when most opens come within the hour"
        );
        assert!(p.confidence > 0.9);
    }

    /// The dense computation the sparse one replaces: smooth, nearest cluster by full
    /// distance, share over the days by the prior's weekday shape, blend, normalize, rank by
    /// send scores of the whole profile.
    fn dense(m: &SendTimeModel, counts: &[f32; HOURS]) -> (Vec<f64>, Vec<usize>) {
        let mut own = vec![0.0; HOURS];
        for (h, c) in counts.iter().enumerate() {
            let c = f64::from(*c);
            own[h] += 0.5 * c;
            own[(h + 1) % HOURS] += 0.25 * c;
            own[(h + HOURS - 1) % HOURS] += 0.25 * c;
        }
        assert_eq!(
            own,
            smooth(counts),
            "smoothing spreads half to each neighbour"
        );
        let n: f64 = own.iter().sum();
        let cluster = (n > 0.0)
            .then(|| m.nearest_cluster(&normalize(&own)))
            .flatten();
        let kappa_c = if cluster.is_some() {
            m.kappa_cluster
        } else {
            0.0
        };
        let prior: Vec<f64> = (0..HOURS)
            .map(|h| {
                kappa_c * cluster.map_or(0.0, |k| m.clusters[k][h])
                    + m.kappa_population * m.population[h]
            })
            .collect();
        let (own_by_hour, prior_by_hour) = (hour_of_day(&own), hour_of_day(&prior));
        let s = m.day_share(counts.iter().map(|c| f64::from(*c)).sum());
        let mass: Vec<f64> = (0..HOURS)
            .map(|h| {
                let weekday = prior[h] / prior_by_hour[h % 24];
                (1.0 - s) * own[h] + s * weekday * own_by_hour[h % 24] + prior[h]
            })
            .collect();
        let profile = normalize(&mass);
        let best = m.best_send_hours(&profile, 3);
        (profile, best)
    }

    #[test]
    fn sparse_profiles_and_send_hours_equal_the_dense_computation() {
        // A deterministic pseudo-random stream, so the test needs no extra crate.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut profile = |peak: usize, width: f64| {
            normalize(
                &(0..HOURS)
                    .map(|h| {
                        let d = (h as f64 - peak as f64)
                            .abs()
                            .min(HOURS as f64 - (h as f64 - peak as f64).abs());
                        (-(d / width).powi(2)).exp() + 0.01 * next()
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let clusters = vec![
            profile(8, 3.0),
            profile(44, 5.0),
            profile(140, 2.0),
            profile(100, 20.0),
        ];
        let population = profile(60, 40.0);
        let mut m = SendTimeModel::new(
            EngagementWeights::default(),
            population,
            clusters,
            1.7,
            0.6,
            vec![0.5, 0.25, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01],
        );
        for trial in 0..500 {
            m.kappa_day = [0.0, 0.4, 3.0, 1e9][trial % 4];
            let mut counts = [0f32; HOURS];
            for _ in 0..(trial % 12) {
                let h = (next() * HOURS as f64) as usize % HOURS;
                counts[h] += (0.1 + 3.0 * next()) as f32;
            }
            let sparse = m.predict(&counts);
            let (profile, best) = dense(&m, &counts);
            let gap = sparse
                .profile
                .iter()
                .zip(&profile)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(gap < 1e-9, "trial {trial}: profiles differ by {gap}");
            assert_eq!(sparse.best_hours, best, "trial {trial}");
            assert_eq!(m.profile(&counts), sparse.profile);
            // The snapshot's form: only the hours with weight.
            let hours: Vec<u8> = (0..HOURS as u8)
                .filter(|h| counts[*h as usize] != 0.0)
                .collect();
            let weights: Vec<f32> = hours.iter().map(|h| counts[*h as usize]).collect();
            let stored = Engagement::Sparse {
                hours: &hours,
                weights: &weights,
            };
            assert_eq!(m.predict(stored), sparse, "trial {trial}");
            let mut out = [0f32; HOURS];
            m.profile_into(&counts, &mut out);
            assert!(
                out.iter()
                    .zip(&sparse.profile)
                    .all(|(a, b)| *a == *b as f32)
            );
        }
    }

    #[test]
    fn day_sharing_carries_a_contacts_hour_to_other_days_and_keeps_its_hours_of_the_day() {
        // The population reads mostly at weekends, at every hour alike.
        let population = normalize(
            &(0..HOURS)
                .map(|h| if h / 24 >= 5 { 3.0 } else { 1.0 })
                .collect::<Vec<_>>(),
        );
        let mut m = SendTimeModel::new(
            EngagementWeights::default(),
            population,
            vec![],
            0.0,
            2.0,
            vec![1.0],
        );
        // Two opens, both on Tuesday at 8:00.
        let mut counts = [0f32; HOURS];
        counts[24 + 8] = 2.0;
        let apart = m.predict(&counts).profile;
        m.kappa_day = 2.0;
        let shared = m.predict(&counts).profile;
        let (thursday_8, thursday_14, saturday_8) = (3 * 24 + 8, 3 * 24 + 14, 5 * 24 + 8);
        assert!(
            (apart[thursday_8] - apart[thursday_14]).abs() < 1e-12,
            "without sharing Thursday knows nothing of the habit"
        );
        assert!(shared[thursday_8] > 2.0 * shared[thursday_14], "{shared:?}");
        assert!(
            shared[saturday_8] > shared[thursday_8],
            "the weekday shape is the prior's"
        );
        assert!(shared[24 + 8] < apart[24 + 8]);
        let (a, b) = (hour_of_day(&apart), hour_of_day(&shared));
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12),
            "sharing moves mass between days, never between hours of the day"
        );
    }
}
