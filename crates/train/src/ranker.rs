//! The learned ranker of recommendation candidates: a weighted L2 logistic regression over
//! [`RANK_FEATURES`](augur_model::RANK_FEATURES), fitted on a window before the
//! held-out one, and kept only when it ranks better than the baseline on contacts it was not
//! fitted on.

// Small dense linear algebra (13 features): index loops read like the formulas.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;

use augur_model::{AffinityModel, Mode, Profile, RANK_FEATURE_COUNT, Ranker};
use rayon::prelude::*;
use serde::Serialize;

use crate::metrics::RecScore;

/// Candidates other than the contact's own products kept per contact for fitting: the best
/// by item-to-item score and the most popular.
const OTHER_CANDIDATES: usize = 50;
/// L2 strength on the standardized weights (the examples' weights sum to the contacts).
const L2: f64 = 1.0;
/// Newton (IRLS) iterations at most.
const MAX_ITERATIONS: usize = 30;

const N: usize = RANK_FEATURE_COUNT;

/// One candidate of one contact.
struct Example {
    features: [f64; N],
    /// 1 when the contact bought the product in the window.
    label: f64,
    /// 1 / the number of products the contact bought in the window, so that every contact
    /// counts once, as recall@k counts it.
    weight: f64,
}

/// What the choice of a ranker measured on the contacts it was not fitted on.
#[derive(Debug, Clone, Serialize)]
pub struct RankerChoice {
    /// The ranker served: `learned_ranker`, or the baseline when it ranked better.
    pub chosen: String,
    /// Recall@10 of the learned rankers, each on the half of the window's contacts it was not
    /// fitted on.
    pub learned_recall_at_10: f64,
    /// Recall@10 of the baseline on them.
    pub baseline_recall_at_10: f64,
    /// Contacts compared (those with a relevant product in the window).
    pub contacts: usize,
}

/// The window a ranker is fitted on: every contact's profile before the cutoff, what each
/// bought in `[cutoff, cutoff + horizon)`, and the contacts to use.
pub struct RankWindow<'a> {
    /// Profiles before the cutoff, by contact.
    pub profiles: &'a [Profile],
    /// Distinct products bought in the window, by contact.
    pub future: &'a HashMap<u32, Vec<u32>>,
    /// Contacts with purchases in the window (a sample).
    pub contacts: &'a [u32],
    /// Each contact's country.
    pub country: &'a [Option<&'a str>],
}

/// The products that count as relevant for `mode`: everything bought in the window, or only
/// what the contact had not bought before.
fn relevant(profile: &Profile, future: &[u32], mode: Mode) -> Vec<u32> {
    future
        .iter()
        .copied()
        .filter(|p| {
            mode == Mode::Replenish
                || profile
                    .binary_search_by_key(p, |i| i.product)
                    .map_or(true, |at| profile[at].bought <= 0.0)
        })
        .collect()
}

/// Chooses between a learned ranker of `mode` and `baseline` by two-fold cross-validation over
/// the window's contacts: a ranker fitted on each half is compared with the baseline on the
/// other half, and their recall@10 is pooled over both. When the learned rankers rank better,
/// the one served is fitted on every contact of the window.
///
/// Fitting and comparing on one split left the choice and the weights to which half a contact
/// fell in: on the Complete Journey's 2,300 window contacts, numbering them differently moved
/// recall@10 of new items on the holdout by 0.0006, half of its spread over contacts.
pub fn choose(
    model: &AffinityModel,
    window: &RankWindow<'_>,
    mode: Mode,
    baseline: Ranker,
) -> (Ranker, RankerChoice) {
    let halves: [Vec<u32>; 2] = [
        window.contacts.iter().copied().step_by(2).collect(),
        window.contacts.iter().copied().skip(1).step_by(2).collect(),
    ];
    let learned = |contacts: &[u32]| {
        fit(model, window, contacts, mode).map(|weights| Ranker {
            source: "learned_ranker".into(),
            weights,
        })
    };
    // Recall@10 pooled over both halves' contacts, each half ranked by its own ranker.
    let pooled = |rankers: [&Ranker; 2]| {
        let (a, b) = (
            recall_sum(model, window, &halves[0], mode, rankers[0]),
            recall_sum(model, window, &halves[1], mode, rankers[1]),
        );
        ((a.0 + b.0) / (a.1 + b.1).max(1) as f64, a.1 + b.1)
    };
    let folds = [learned(&halves[0]), learned(&halves[1])];
    let (baseline_recall, compared) = pooled([&baseline, &baseline]);
    let learned_recall = match &folds {
        // Each half is ranked by the ranker fitted on the other.
        [Some(a), Some(b)] => pooled([b, a]).0,
        _ => f64::NEG_INFINITY,
    };
    let choice = |chosen: &Ranker| RankerChoice {
        chosen: chosen.source.clone(),
        learned_recall_at_10: learned_recall.max(0.0),
        baseline_recall_at_10: baseline_recall,
        contacts: compared,
    };
    let served = (learned_recall > baseline_recall)
        .then(|| learned(window.contacts))
        .flatten();
    match served {
        Some(learned) => {
            let c = choice(&learned);
            (learned, c)
        }
        None => {
            let c = choice(&baseline);
            (baseline, c)
        }
    }
}

/// Recall@10 of `ranker` summed over the `contacts` with something relevant, and their number.
fn recall_sum(
    model: &AffinityModel,
    window: &RankWindow<'_>,
    contacts: &[u32],
    mode: Mode,
    ranker: &Ranker,
) -> (f64, usize) {
    let lists: Vec<(Vec<u32>, Vec<u32>)> = contacts
        .par_iter()
        .map(|&c| {
            let profile = &window.profiles[c as usize];
            let mut scored: Vec<(u32, f64)> = model
                .candidates(profile, mode, window.country[c as usize])
                .into_iter()
                .map(|(p, f)| (p, ranker.score(&f)))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let top = scored.into_iter().take(10).map(|(p, _)| p).collect();
            (top, relevant(profile, &window.future[&c], mode))
        })
        .collect();
    let mut score = RecScore::default();
    for (top, relevant) in &lists {
        score.add(top, relevant);
    }
    let m = score.finish();
    (m.recall_at_10 * m.contacts as f64, m.contacts)
}

/// The training examples of `contacts`: each one's own products and its best other candidates.
fn examples(
    model: &AffinityModel,
    window: &RankWindow<'_>,
    contacts: &[u32],
    mode: Mode,
) -> Vec<Example> {
    contacts
        .par_iter()
        .flat_map_iter(|&c| {
            let profile = &window.profiles[c as usize];
            let relevant = relevant(profile, &window.future[&c], mode);
            let mut candidates = if relevant.is_empty() {
                Vec::new()
            } else {
                model.candidates(profile, mode, window.country[c as usize])
            };
            // Own products (owned or seen on the web) first, then the best others.
            let (mut own, mut others): (Vec<_>, Vec<_>) = candidates
                .drain(..)
                .partition(|(_, f)| f[0] > 0.0 || f[11] > 0.0);
            others.sort_by(|a, b| b.1[8].total_cmp(&a.1[8]).then(a.0.cmp(&b.0)));
            let by_popularity = {
                let mut rest = others.split_off(OTHER_CANDIDATES.min(others.len()));
                rest.sort_by(|a, b| b.1[9].total_cmp(&a.1[9]).then(a.0.cmp(&b.0)));
                rest.truncate(OTHER_CANDIDATES / 2);
                rest
            };
            own.extend(others);
            own.extend(by_popularity);
            let weight = 1.0 / relevant.len().max(1) as f64;
            own.into_iter().map(move |(p, features)| Example {
                features,
                label: f64::from(u8::from(relevant.contains(&p))),
                weight,
            })
        })
        .collect()
}

/// Fits the weights on `contacts` (standardized features, IRLS), in raw feature units;
/// `None` without both labels.
fn fit(
    model: &AffinityModel,
    window: &RankWindow<'_>,
    contacts: &[u32],
    mode: Mode,
) -> Option<[f64; N]> {
    let rows = examples(model, window, contacts, mode);
    let positive: f64 = rows.iter().map(|r| r.weight * r.label).sum();
    let total: f64 = rows.iter().map(|r| r.weight).sum();
    if positive <= 0.0 || positive >= total {
        return None;
    }
    let (mean, scale) = standardization(&rows, total);
    let z = |r: &Example| -> [f64; N] {
        std::array::from_fn(|j| {
            if scale[j] > 0.0 {
                (r.features[j] - mean[j]) / scale[j]
            } else {
                0.0
            }
        })
    };
    // β[0..N] the standardized weights, β[N] the intercept.
    let mut beta = [0.0; N + 1];
    for _ in 0..MAX_ITERATIONS {
        // Sums over fixed chunks, added in chunk order: the same weights on every run,
        // whatever the thread count (rayon's fold would split where work is stolen).
        let partial: Vec<([f64; N + 1], [[f64; N + 1]; N + 1])> = rows
            .par_chunks(4096)
            .map(|chunk| {
                let (mut g, mut h) = ([0.0; N + 1], [[0.0; N + 1]; N + 1]);
                for r in chunk {
                    let mut x = [1.0; N + 1];
                    x[..N].copy_from_slice(&z(r));
                    let eta: f64 = x.iter().zip(&beta).map(|(a, b)| a * b).sum();
                    let p = 1.0 / (1.0 + (-eta).exp());
                    let residual = r.weight * (p - r.label);
                    let curvature = r.weight * p * (1.0 - p);
                    for i in 0..=N {
                        g[i] += residual * x[i];
                        for j in 0..=i {
                            h[i][j] += curvature * x[i] * x[j];
                        }
                    }
                }
                (g, h)
            })
            .collect();
        let (mut gradient, mut hessian) = ([0.0; N + 1], [[0.0; N + 1]; N + 1]);
        for (g2, h2) in &partial {
            for i in 0..=N {
                gradient[i] += g2[i];
                for j in 0..=N {
                    hessian[i][j] += h2[i][j];
                }
            }
        }
        let mut g = gradient;
        let mut h = hessian;
        for i in 0..=N {
            for j in 0..i {
                h[j][i] = h[i][j];
            }
        }
        for j in 0..N {
            g[j] += L2 * beta[j];
            h[j][j] += L2;
        }
        h[N][N] += 1e-9;
        let step = solve(h, g)?;
        beta.iter_mut().zip(&step).for_each(|(b, s)| *b -= s);
        if step.iter().all(|s| s.abs() < 1e-7) {
            break;
        }
    }
    let weights: [f64; N] = std::array::from_fn(|j| {
        if scale[j] > 0.0 {
            beta[j] / scale[j]
        } else {
            0.0
        }
    });
    weights.iter().all(|w| w.is_finite()).then_some(weights)
}

/// Weighted mean and standard deviation of each feature (0 for a constant one).
fn standardization(rows: &[Example], total: f64) -> ([f64; N], [f64; N]) {
    let mut mean = [0.0; N];
    for r in rows {
        for j in 0..N {
            mean[j] += r.weight * r.features[j];
        }
    }
    mean.iter_mut().for_each(|m| *m /= total);
    let mut var = [0.0; N];
    for r in rows {
        for j in 0..N {
            var[j] += r.weight * (r.features[j] - mean[j]).powi(2);
        }
    }
    let scale = std::array::from_fn(|j| {
        let sd = (var[j] / total).sqrt();
        if sd > 1e-12 { sd } else { 0.0 }
    });
    (mean, scale)
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve<const M: usize>(mut a: [[f64; M]; M], mut b: [f64; M]) -> Option<[f64; M]> {
    for k in 0..M {
        let pivot = (k..M).max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs()))?;
        if a[pivot][k].abs() < 1e-300 {
            return None;
        }
        a.swap(k, pivot);
        b.swap(k, pivot);
        for i in k + 1..M {
            let f = a[i][k] / a[k][k];
            for j in k..M {
                a[i][j] -= f * a[k][j];
            }
            b[i] -= f * b[k];
        }
    }
    let mut x = [0.0; M];
    for k in (0..M).rev() {
        let s: f64 = (k + 1..M).map(|j| a[k][j] * x[j]).sum();
        x[k] = (b[k] - s) / a[k][k];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solve_recovers_a_known_solution() {
        let a = [[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]];
        let x = [1.0, -2.0, 0.5];
        let b: [f64; 3] = std::array::from_fn(|i| (0..3).map(|j| a[i][j] * x[j]).sum());
        let got = solve(a, b).expect("regular");
        for (g, w) in got.iter().zip(&x) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert!(solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0]).is_none());
    }
}
