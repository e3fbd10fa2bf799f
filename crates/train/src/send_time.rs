//! Send time: engagement profiles, clusters of profiles (k-means, linfa), the population prior,
//! the send-to-open delay, and shrinkage strengths chosen on held-out engagement.

use augur_data::HOUR;
use augur_data::History;
use augur_data::{EmailEventKind, WebEventKind};
use augur_model::{
    EngagementWeights, HOURS, SendTimeModel, engagement_counts, history_clock, hour_of_day,
    normalize, smooth,
};
use augur_model::{is_machine_open, rows_before};
use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::Array2;
use serde::Serialize;

use crate::error::{Error, Result};

/// Profile clusters (fewer when few contacts have enough engagement).
pub const CLUSTERS: usize = 8;
/// Engagement weight a contact needs to take part in clustering.
pub const MIN_CLUSTER_WEIGHT: f64 = 5.0;

/// Held-out send-time metrics, on hours of the day (24 bins) as is usual for this task, and
/// the log-likelihood over hours of the week (168 bins), which also judges the weekday shape.
#[derive(Debug, Clone, Serialize)]
pub struct SendTimeMetrics {
    /// Which engagement was held out: `email` (human opens and clicks) or `orders_and_web`
    /// (the first line of each order and each web event, when there is no e-mail engagement).
    pub engagement: &'static str,
    /// Held-out engagements scored.
    pub n: usize,
    /// Mean log-likelihood per engagement of its hour of day (nats).
    pub log_likelihood: f64,
    /// Share of engagements in the predicted best hour of day.
    pub top1_hit_rate: f64,
    /// Share within one hour of it.
    pub within_1h_hit_rate: f64,
    /// Mean log-likelihood per engagement of its hour of the week (nats).
    pub hour_of_week_log_likelihood: f64,
}

/// Engagements in a held-out window: (contact, local hour of week), and of which kind.
#[derive(Debug, Clone, Default)]
pub struct HeldOut {
    /// The engagements, in time order.
    pub events: Vec<(u32, usize)>,
    /// `email`, `orders_and_web`, or `none` when the window holds no engagement at all.
    pub kind: &'static str,
}

/// Held-out engagements in `[from, to)`: human opens and clicks where the window has any,
/// else the contact's own shopping moments (each order once, at its first line, and web
/// events other than searches), so that send time is validated on whatever engagement a
/// shop's exports hold.
pub fn engagements_between(history: &History, from: i64, to: i64) -> HeldOut {
    let email = email_engagements_between(history, from, to);
    if !email.is_empty() {
        return HeldOut {
            events: email,
            kind: "email",
        };
    }
    let shopping = shopping_between(history, from, to);
    let kind = if shopping.is_empty() {
        "none"
    } else {
        "orders_and_web"
    };
    HeldOut {
        events: shopping,
        kind,
    }
}

/// Human opens and clicks in `[from, to)` (machine opens count zero).
fn email_engagements_between(history: &History, from: i64, to: i64) -> Vec<(u32, usize)> {
    let e = &history.email_events;
    let zone = &history.contacts.timezone;
    let clock = history_clock(history, from);
    let mut last_delivered: std::collections::HashMap<u32, i64> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for i in rows_before(&e.at, from - 7 * 24 * HOUR)..rows_before(&e.at, to) {
        let c = e.contact[i];
        match e.kind[i] {
            EmailEventKind::Delivered => {
                last_delivered.insert(c, e.at[i]);
            }
            EmailEventKind::Open | EmailEventKind::Click if e.at[i] >= from => {
                let machine = e.kind[i] == EmailEventKind::Open
                    && is_machine_open(e.machine_open[i], e.at[i], last_delivered.get(&c).copied());
                if !machine {
                    out.push((c, clock.hour_of_week(e.at[i], zone[c as usize])));
                }
            }
            _ => {}
        }
    }
    out
}

/// Orders (once each, at their first line) and web events other than searches in `[from, to)`.
fn shopping_between(history: &History, from: i64, to: i64) -> Vec<(u32, usize)> {
    let zone = &history.contacts.timezone;
    let clock = history_clock(history, to);
    let o = &history.orders;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for i in rows_before(&o.at, from)..rows_before(&o.at, to) {
        if o.quantity[i] > 0.0 && seen.insert(o.order[i]) {
            let c = o.contact[i];
            out.push((c, clock.hour_of_week(o.at[i], zone[c as usize])));
        }
    }
    let web = &history.web_events;
    for i in rows_before(&web.at, from)..rows_before(&web.at, to) {
        if web.kind[i] != WebEventKind::Search {
            let c = web.contact[i];
            out.push((c, clock.hour_of_week(web.at[i], zone[c as usize])));
        }
    }
    out
}

/// Scores profiles (one per contact, via `profile_of`) on held-out engagements.
pub fn evaluate(
    held_out: &HeldOut,
    mut profile_of: impl FnMut(u32) -> Vec<f64>,
) -> SendTimeMetrics {
    let (kind, held_out) = (held_out.kind, &held_out.events);
    let (mut ll, mut ll_week, mut top1, mut near) = (0.0, 0.0, 0usize, 0usize);
    // One contact at a time, so that only one profile is held (a million contacts' profiles
    // would take gigabytes).
    let mut by_contact = held_out.clone();
    by_contact.sort_by_key(|(c, _)| *c);
    for group in by_contact.chunk_by(|a, b| a.0 == b.0) {
        let week = profile_of(group[0].0);
        let hod = hour_of_day(&week);
        let best = (0..24)
            .max_by(|&a, &b| hod[a].total_cmp(&hod[b]))
            .unwrap_or(0);
        for &(_, how) in group {
            let h = how % 24;
            ll += hod[h].max(1e-12).ln();
            ll_week += week.get(how).copied().unwrap_or(0.0).max(1e-12).ln();
            let d = (h as i64 - best as i64).rem_euclid(24);
            top1 += usize::from(d == 0);
            near += usize::from(d.min(24 - d) <= 1);
        }
    }
    let n = held_out.len().max(1) as f64;
    SendTimeMetrics {
        engagement: kind,
        n: held_out.len(),
        log_likelihood: ll / n,
        top1_hit_rate: top1 as f64 / n,
        within_1h_hit_rate: near as f64 / n,
        hour_of_week_log_likelihood: ll_week / n,
    }
}

/// P(human open k hours after delivery), k = 0..24, from history before `t`.
fn open_delay(history: &History, t: i64) -> Vec<f64> {
    let e = &history.email_events;
    let mut last_delivered: Vec<Option<i64>> = vec![None; history.contacts.len()];
    let mut hist = vec![0.0; 24];
    // The last year is plenty to learn the delay.
    for i in rows_before(&e.at, t - 365 * 24 * HOUR)..rows_before(&e.at, t) {
        let c = e.contact[i] as usize;
        match e.kind[i] {
            EmailEventKind::Delivered => last_delivered[c] = Some(e.at[i]),
            EmailEventKind::Open => {
                if let Some(d) = last_delivered[c]
                    && !is_machine_open(e.machine_open[i], e.at[i], Some(d))
                {
                    let k = ((e.at[i] - d) / HOUR) as usize;
                    if k < 24 {
                        hist[k] += 1.0;
                    }
                }
            }
            _ => {}
        }
    }
    if hist.iter().sum::<f64>() == 0.0 {
        hist[0] = 1.0;
    }
    normalize(&hist)
}

/// Fits clusters and the population profile on engagement counts.
fn priors(counts: &[[f32; HOURS]]) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let mut population = vec![0.0; HOURS];
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for c in counts {
        let s = smooth(c);
        let n: f64 = s.iter().sum();
        population.iter_mut().zip(&s).for_each(|(p, v)| *p += v);
        if n >= MIN_CLUSTER_WEIGHT && rows.len() < 10_000 {
            rows.push(normalize(&s));
        }
    }
    let population = normalize(&population.iter().map(|p| p + 1e-9).collect::<Vec<_>>());
    let k = CLUSTERS.min(rows.len() / 20);
    if k < 2 {
        return Ok((population, Vec::new()));
    }
    let x = Array2::from_shape_fn((rows.len(), HOURS), |(r, h)| rows[r][h]);
    let model = KMeans::params(k)
        .n_runs(1)
        .max_n_iterations(50)
        .tolerance(1e-5)
        .fit(&DatasetBase::from(x))
        .map_err(|e| Error::Fit(format!("send-time clusters: {e}")))?;
    let clusters = model
        .centroids()
        .rows()
        .into_iter()
        .map(|row| normalize(&row.iter().map(|v| v.max(0.0) + 1e-9).collect::<Vec<_>>()))
        .collect();
    Ok((population, clusters))
}

/// Pseudo-counts tried for the cluster prior (zero: no cluster) and the population prior.
const KAPPA_GRID: [f64; 10] = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
/// Pseudo-counts tried for the prior's weekday shape (see [`SendTimeModel::kappa_day`]): zero
/// keeps every engagement on its day, the last shares all of it whatever the contact's weight.
const KAPPA_DAY_GRID: [f64; 10] = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 1e9];
/// A population pseudo-count so large that the contact's own engagement no longer counts:
/// the global profile itself is one of the candidates, so the chosen model is never worse
/// than it on the selection window.
pub const GLOBAL_ONLY: f64 = 1e9;

/// Engagement counts per contact as of an instant, computed once and shared by the fits and
/// evaluations that need them (each pass reads every event before that instant).
pub struct CountsAt {
    /// The instant.
    pub t: i64,
    /// Counts per contact.
    pub counts: Vec<[f32; HOURS]>,
}

impl CountsAt {
    /// Counts as of `t` with the default engagement weights.
    pub fn new(history: &History, t: i64) -> Self {
        Self {
            t,
            counts: engagement_counts(history, t, &EngagementWeights::default()),
        }
    }
}

/// Fits the model on `counts` (as of `counts.t`), choosing shrinkage on the engagements in
/// `[select.t, counts.t)` with the counts as of `select.t` (an earlier window, so the choice
/// never sees the evaluation).
pub fn fit(
    history: &History,
    counts: &CountsAt,
    select: Option<&CountsAt>,
) -> Result<SendTimeModel> {
    let weights = EngagementWeights::default();
    let t = counts.t;
    let counts = &counts.counts;
    let (population, clusters) = priors(counts)?;
    let mut model = SendTimeModel::new(
        weights,
        population,
        clusters,
        2.0,
        1.0,
        open_delay(history, t),
    );
    let Some(select) = select else {
        return Ok(model);
    };
    let earlier = &select.counts;
    let mut held_out = engagements_between(history, select.t, t).events;
    if held_out.is_empty() {
        return Ok(model);
    }
    let step = held_out.len().div_ceil(200_000).max(1);
    held_out = held_out.into_iter().step_by(step).collect();
    // Folding to hours of the day is linear, so each trial mixes precomputed 24-bin parts.
    let fold = |p: &[f64]| hour_of_day(p);
    let population_hod = fold(&model.population);
    let cluster_hod: Vec<[f64; 24]> = model.clusters.iter().map(|c| fold(c)).collect();
    let mut parts: std::collections::HashMap<u32, ([f64; 24], f64, Option<usize>)> =
        std::collections::HashMap::new();
    for &(c, _) in &held_out {
        parts.entry(c).or_insert_with(|| {
            let own = smooth(&earlier[c as usize]);
            let n: f64 = own.iter().sum();
            let cluster = if n > 0.0 {
                model.nearest_cluster(&normalize(&own))
            } else {
                None
            };
            (fold(&own), n, cluster)
        });
    }
    // What each held-out engagement reads, gathered once for all the trials: the contact's own
    // mass at that hour, its total, its cluster's share (if it has a cluster) and the population's.
    let trial_rows: Vec<(f64, f64, Option<f64>, f64)> = held_out
        .iter()
        .map(|&(c, how)| {
            let (own, n, cluster) = &parts[&c];
            let h = how % 24;
            (
                own[h],
                *n,
                cluster.map(|k| cluster_hod[k][h]),
                population_hod[h],
            )
        })
        .collect();
    drop(parts);
    let trials: Vec<(f64, f64)> = KAPPA_GRID
        .iter()
        .flat_map(|&kc| KAPPA_GRID[1..].iter().map(move |&kp| (kc, kp)))
        .chain([(0.0, GLOBAL_ONLY)])
        .collect();
    let lls: Vec<f64> = {
        use rayon::prelude::*;
        trials
            .par_iter()
            .map(|&(kc, kp)| {
                let mut ll = 0.0;
                for &(own, n, cluster, population) in &trial_rows {
                    let kc = if cluster.is_some() { kc } else { 0.0 };
                    let mass = own + kc * cluster.unwrap_or(0.0) + kp * population;
                    ll += (mass / (n + kc + kp)).max(1e-12).ln();
                }
                ll
            })
            .collect()
    };
    let mut best = (
        f64::NEG_INFINITY,
        model.kappa_cluster,
        model.kappa_population,
    );
    for (&ll, &(kc, kp)) in lls.iter().zip(&trials) {
        if ll > best.0 {
            best = (ll, kc, kp);
        }
    }
    model.kappa_cluster = best.1;
    model.kappa_population = best.2;
    model.kappa_day = choose_kappa_day(&model, earlier, &held_out);
    Ok(model)
}

/// The [`KAPPA_DAY_GRID`] value under which the held-out engagements' hours of the week are
/// likeliest, given each contact's counts before them. Sharing never changes a profile's hours
/// of the day, so it is chosen after the pooling, on the full week.
fn choose_kappa_day(
    model: &SendTimeModel,
    earlier: &[[f32; HOURS]],
    held_out: &[(u32, usize)],
) -> f64 {
    use rayon::prelude::*;
    let mut by_contact: std::collections::HashMap<u32, Vec<usize>> =
        std::collections::HashMap::new();
    for &(c, how) in held_out {
        by_contact.entry(c).or_default().push(how);
    }
    let mut by_contact: Vec<(u32, Vec<usize>)> = by_contact.into_iter().collect();
    // Summed in contact order: the same choice on every run.
    by_contact.sort_unstable_by_key(|(c, _)| *c);
    let lls: Vec<f64> = KAPPA_DAY_GRID
        .par_iter()
        .map(|&kappa| {
            let mut trial = model.clone();
            trial.kappa_day = kappa;
            let mut profile = [0f32; HOURS];
            by_contact
                .iter()
                .map(|(c, hours)| {
                    trial.profile_into(&earlier[*c as usize], &mut profile);
                    hours
                        .iter()
                        .map(|h| f64::from(profile[*h]).max(1e-12).ln())
                        .sum::<f64>()
                })
                .sum()
        })
        .collect();
    let mut best = (f64::NEG_INFINITY, 0.0);
    for (&ll, &kappa) in lls.iter().zip(&KAPPA_DAY_GRID) {
        if ll > best.0 {
            best = (ll, kappa);
        }
    }
    best.1
}
