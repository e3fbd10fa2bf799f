//! The learned ranker of recommendation candidates: a weighted L2 logistic regression over
//! [`RANK_FEATURES`](augur_model::RANK_FEATURES), fitted on a window before the
//! held-out one, and kept only when it ranks better than the baseline on contacts it was not
//! fitted on.

// Small dense linear algebra (13 features): index loops read like the formulas.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;

use augur_model::{AffinityModel, Mode, Profile, RANK_FEATURE_COUNT, Ranker, best_k};
use rayon::prelude::*;
use serde::Serialize;

use crate::metrics::RecScore;

/// Candidates other than the contact's own products kept per contact for fitting: the best
/// by item-to-item score and half as many of the most popular.
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

/// The two modes, in the order of every per-mode array here.
const MODES: [Mode; 2] = [Mode::Replenish, Mode::Discover];

/// One contact's candidates in each of [`MODES`], listed once for both.
fn candidates_by_mode(
    model: &AffinityModel,
    window: &RankWindow<'_>,
    c: u32,
) -> [Vec<(u32, [f64; N])>; 2] {
    let profile = &window.profiles[c as usize];
    model.candidates_by_mode(profile, window.country[c as usize])
}

/// Chooses, for each of [`MODES`], between a learned ranker and that mode's baseline by
/// two-fold cross-validation over the window's contacts: a ranker fitted on each half is
/// compared with the baseline on the other half, and their recall@10 is pooled over both.
/// When the learned rankers rank better, the one served is fitted on every contact of the
/// window.
///
/// Fitting and comparing on one split left the choice and the weights to which half a contact
/// fell in: on the Complete Journey's 2,300 window contacts, numbering them differently moved
/// recall@10 of new items on the holdout by 0.0006, half of its spread over contacts.
pub fn choose(
    model: &AffinityModel,
    window: &RankWindow<'_>,
    baselines: &[Ranker; 2],
) -> [(Ranker, RankerChoice); 2] {
    let halves: [Vec<u32>; 2] = [
        window.contacts.iter().copied().step_by(2).collect(),
        window.contacts.iter().copied().skip(1).step_by(2).collect(),
    ];
    let learned = |fitted: &Option<Fitted>| {
        fitted.as_ref().map(|f| Ranker {
            source: "learned_ranker".into(),
            weights: f.weights,
        })
    };
    // Listing candidates costs the most: each half's are listed once for fitting (the served
    // ranker is fitted on both halves' examples) and once for ranking by the baseline and the
    // ranker fitted on the other half, for both modes at a time.
    let [examples_0, examples_1] = halves.each_ref().map(|half| examples(model, window, half));
    // Each fit starts where the one before it of the same mode ended: the halves are alike,
    // so Newton's method needs a few steps instead of a dozen.
    let first: [Option<Fitted>; 2] = [0, 1].map(|m| fit(&examples_0[m], None));
    let second: [Option<Fitted>; 2] =
        [0, 1].map(|m| fit(&examples_1[m], first[m].as_ref().map(|f| f.beta)));
    let folds: [[Option<Ranker>; 2]; 2] =
        [&first, &second].map(|f| [learned(&f[0]), learned(&f[1])]);
    let recalls = [(0, 1), (1, 0)].map(|(h, other)| {
        let rankers: [Vec<&Ranker>; 2] = [0, 1].map(|m| {
            std::iter::once(&baselines[m])
                .chain(&folds[other][m])
                .collect()
        });
        recall_sums(model, window, &halves[h], &rankers)
    });
    let mut examples = [examples_0, examples_1];
    let [replenish, discover] = [0, 1].map(|m| {
        let compared = recalls[0][m].1 + recalls[1][m].1;
        let pooled = |r: usize| match (recalls[0][m].0.get(r), recalls[1][m].0.get(r)) {
            (Some(a), Some(b)) => (a + b) / compared.max(1) as f64,
            _ => f64::NEG_INFINITY,
        };
        let (baseline_recall, learned_recall) = (pooled(0), pooled(1));
        let served = (learned_recall > baseline_recall)
            .then(|| {
                let mut all = std::mem::take(&mut examples[0][m]);
                all.append(&mut examples[1][m]);
                let start = match (&first[m], &second[m]) {
                    (Some(a), Some(b)) => {
                        Some(std::array::from_fn(|j| (a.beta[j] + b.beta[j]) / 2.0))
                    }
                    _ => None,
                };
                learned(&fit(&all, start))
            })
            .flatten()
            .unwrap_or_else(|| baselines[m].clone());
        let choice = RankerChoice {
            chosen: served.source.clone(),
            learned_recall_at_10: learned_recall.max(0.0),
            baseline_recall_at_10: baseline_recall,
            contacts: compared,
        };
        (served, choice)
    });
    [replenish, discover]
}

/// Per mode, recall@10 of each of that mode's `rankers` summed over the `contacts` with
/// something relevant, and their number.
fn recall_sums(
    model: &AffinityModel,
    window: &RankWindow<'_>,
    contacts: &[u32],
    rankers: &[Vec<&Ranker>; 2],
) -> [(Vec<f64>, usize); 2] {
    // Per contact and mode: each ranker's top 10, and the relevant products.
    type Ranked = (Vec<Vec<u32>>, Vec<u32>);
    let lists: Vec<[Ranked; 2]> = contacts
        .par_iter()
        .map(|&c| {
            let profile = &window.profiles[c as usize];
            let by_mode = candidates_by_mode(model, window, c);
            [0, 1].map(|m| {
                let tops = rankers[m]
                    .iter()
                    .map(|ranker| top_10(&by_mode[m], ranker))
                    .collect();
                (tops, relevant(profile, &window.future[&c], MODES[m]))
            })
        })
        .collect();
    [0, 1].map(|m| {
        let mut scores: Vec<RecScore> = rankers[m].iter().map(|_| RecScore::default()).collect();
        for by_mode in &lists {
            let (tops, relevant) = &by_mode[m];
            for (score, top) in scores.iter_mut().zip(tops) {
                score.add(top, relevant);
            }
        }
        let finished: Vec<_> = scores.iter().map(RecScore::finish).collect();
        let compared = finished.first().map_or(0, |m| m.contacts);
        let sums = finished
            .iter()
            .map(|m| m.recall_at_10 * m.contacts as f64)
            .collect();
        (sums, compared)
    })
}

/// The ten candidates `ranker` scores highest, best first.
fn top_10(candidates: &[(u32, [f64; N])], ranker: &Ranker) -> Vec<u32> {
    let scored = candidates
        .iter()
        .map(|(p, f)| (*p, ranker.score(f)))
        .collect();
    best_k(scored, 10).into_iter().map(|(p, _)| p).collect()
}

/// The training examples of `contacts` in each of [`MODES`]: each contact's own products and
/// its best other candidates.
fn examples(model: &AffinityModel, window: &RankWindow<'_>, contacts: &[u32]) -> [Vec<Example>; 2] {
    let per_contact: Vec<[Vec<Example>; 2]> = contacts
        .par_iter()
        .map(|&c| {
            let profile = &window.profiles[c as usize];
            let [all, new] = candidates_by_mode(model, window, c);
            [(all, MODES[0]), (new, MODES[1])].map(|(candidates, mode)| {
                let relevant = relevant(profile, &window.future[&c], mode);
                if relevant.is_empty() {
                    return Vec::new();
                }
                contact_examples(candidates, &relevant)
            })
        })
        .collect();
    // Sized once: grown by doubling, the copies and fresh pages cost as much as the fit.
    let mut out: [Vec<Example>; 2] =
        [0, 1].map(|m| Vec::with_capacity(per_contact.iter().map(|e| e[m].len()).sum()));
    for [replenish, discover] in per_contact {
        out[0].extend(replenish);
        out[1].extend(discover);
    }
    out
}

/// One contact's examples: its own products (owned or seen on the web) first, then the best
/// others by item-to-item score, and by popularity.
fn contact_examples(mut candidates: Vec<(u32, [f64; N])>, relevant: &[u32]) -> Vec<Example> {
    let (mut own, mut others): (Vec<_>, Vec<_>) = candidates
        .drain(..)
        .partition(|(_, f)| f[0] > 0.0 || f[11] > 0.0);
    let mut kept = Vec::new();
    for (feature, keep) in [(8, OTHER_CANDIDATES), (9, OTHER_CANDIDATES / 2)] {
        others.sort_by(|a, b| b.1[feature].total_cmp(&a.1[feature]).then(a.0.cmp(&b.0)));
        let rest = others.split_off(keep.min(others.len()));
        kept.append(&mut others);
        others = rest;
    }
    own.append(&mut kept);
    let weight = 1.0 / relevant.len().max(1) as f64;
    own.into_iter()
        .map(|(p, features)| Example {
            features,
            label: f64::from(u8::from(relevant.contains(&p))),
            weight,
        })
        .collect()
}

/// A fitted ranker: its weights in raw feature units, and the standardized weights and
/// intercept the fit ended at.
struct Fitted {
    weights: [f64; N],
    beta: [f64; N + 1],
}

/// Fits the weights on `rows` (standardized features, IRLS) from `start` (standardized
/// weights and intercept; zero when `None`); `None` without both labels.
fn fit(rows: &[Example], start: Option<[f64; N + 1]>) -> Option<Fitted> {
    let positive: f64 = rows.iter().map(|r| r.weight * r.label).sum();
    let total: f64 = rows.iter().map(|r| r.weight).sum();
    if positive <= 0.0 || positive >= total {
        return None;
    }
    let (mean, scale) = standardization(rows, total);
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
    let mut beta = start.unwrap_or([0.0; N + 1]);
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
    weights
        .iter()
        .all(|w| w.is_finite())
        .then_some(Fitted { weights, beta })
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
