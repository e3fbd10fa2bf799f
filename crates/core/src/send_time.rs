//! Best send time: when in the week (local time) each contact engages, as a 168-bin profile
//! (Monday 00:00 first), shrunk toward its cluster and the population, and the send hour that
//! best precedes engagement given the usual delay between send and open.

use serde::{Deserialize, Serialize};

use crate::contract::{EmailEventKind, WebEventKind};
use crate::features::{is_machine_open, rows_before};
use crate::history::History;
use crate::time::{DAY, LocalClock};

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
    /// An order line.
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

/// Fitted send-time model.
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
    let o = &history.orders;
    for i in 0..rows_before(&o.at, t) {
        add(o.contact[i], o.at[i], w.order);
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
    (0..HOURS)
        .map(|h| {
            let at =
                |d: isize| f64::from(counts[(h as isize + d).rem_euclid(HOURS as isize) as usize]);
            0.5 * at(0) + 0.25 * (at(-1) + at(1))
        })
        .collect()
}

impl SendTimeModel {
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

    /// The prediction for one contact's engagement counts.
    pub fn predict(&self, counts: &[f32; HOURS]) -> SendTime {
        let own = smooth(counts);
        let n: f64 = own.iter().sum();
        let cluster = if n > 0.0 {
            self.nearest_cluster(&normalize(&own))
                .map(|k| &self.clusters[k])
        } else {
            None
        };
        let kappa_c = if cluster.is_some() {
            self.kappa_cluster
        } else {
            0.0
        };
        let profile: Vec<f64> = (0..HOURS)
            .map(|h| {
                own[h]
                    + kappa_c * cluster.map_or(0.0, |c| c[h])
                    + self.kappa_population * self.population[h]
            })
            .collect();
        let profile = normalize(&profile);
        let confidence = n / (n + kappa_c + self.kappa_population);
        let source = if n <= 0.0 {
            SendTimeSource::Population
        } else if n >= kappa_c + self.kappa_population {
            SendTimeSource::Own
        } else {
            SendTimeSource::Cluster
        };
        let best_hours = self.best_send_hours(&profile, 3);
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
        let scores = self.send_scores(profile);
        // Keep the best `n` while scanning (n is a handful): no sort of all 168 hours.
        let mut best: Vec<(usize, f64)> = Vec::with_capacity(n + 1);
        for (h, s) in scores.into_iter().enumerate() {
            let at = best.partition_point(|(_, b)| b.total_cmp(&s).is_ge());
            if at < n {
                best.insert(at, (h, s));
                best.truncate(n);
            }
        }
        best.into_iter().map(|(h, _)| h).collect()
    }
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
        SendTimeModel {
            weights: EngagementWeights::default(),
            population: vec![1.0 / HOURS as f64; HOURS],
            clusters: vec![],
            kappa_cluster: 0.0,
            kappa_population: 2.0,
            delay: vec![0.7, 0.3],
        }
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
}
