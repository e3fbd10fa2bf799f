//! Churn risk: examples at stacked cutoffs (features before each cutoff, label = no purchase in
//! the window after it), a logistic regression fitted with linfa, Platt recalibration, and the
//! baselines a data scientist would try first (recency alone, RFM logistic regression).

use augur_data::History;
use augur_model::BgNbd;
use augur_model::ChurnModel;
use augur_model::{
    CHURN_FEATURES, ContactState, buyers_rfa, buys_between, churn_features, contact_states,
};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ShapeBuilder};

use crate::error::{Error, Result};

/// Fewer buyers than this at the training cutoffs, or fewer than [`MIN_PER_CLASS`] in either
/// class, and the churn model falls back to the recency heuristic.
pub const MIN_EXAMPLES: usize = 50;
/// See [`MIN_EXAMPLES`].
pub const MIN_PER_CLASS: usize = 10;
/// Rows of each churn fit, and of its Platt calibration, are capped (a deterministic, evenly
/// spread subsample) to keep fitting fast on large shops.
pub const MAX_TRAINING_ROWS: usize = 100_000;

/// L-BFGS iterations of every churn fit (linfa's logistic regression).
pub const MAX_ITERATIONS: u64 = 100;

/// Column indexes of the RFM baseline: recency, frequency, average order value.
pub const RFM_COLUMNS: [usize; 3] = [0, 1, 3];

/// Labelled examples: one row per (cutoff, contact that had bought before the cutoff).
#[derive(Debug, Default)]
pub struct Examples {
    /// Feature rows.
    pub rows: Vec<[f64; CHURN_FEATURES.len()]>,
    /// Churned: no purchase in the window after the cutoff.
    pub churned: Vec<bool>,
    /// Dense contact id of each row.
    pub contacts: Vec<u32>,
}

impl Examples {
    /// Examples at one cutoff with a label window of `horizon` seconds.
    pub fn at(history: &History, cutoff: i64, horizon: i64, btyd: Option<&BgNbd>) -> Self {
        Self::from_states(
            history,
            &contact_states(history, cutoff),
            cutoff,
            horizon,
            btyd,
        )
    }

    /// [`Examples::at`] with the contact states as of `cutoff` already computed.
    pub fn from_states(
        history: &History,
        states: &[ContactState],
        cutoff: i64,
        horizon: i64,
        btyd: Option<&BgNbd>,
    ) -> Self {
        let horizon_days = horizon as f64 / augur_data::DAY as f64;
        let bought = buys_between(history, cutoff, cutoff + horizon);
        let mut out = Self::default();
        for (c, state) in states.iter().enumerate() {
            if let Some(row) = churn_features(state, cutoff, btyd, horizon_days) {
                out.rows.push(row);
                out.churned.push(!bought[c]);
                out.contacts.push(c as u32);
            }
        }
        out
    }

    /// Appends another set.
    pub fn extend(&mut self, other: Self) {
        self.rows.extend(other.rows);
        self.churned.extend(other.churned);
        self.contacts.extend(other.contacts);
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether a model can be fitted on these examples.
    pub fn enough(&self) -> bool {
        let pos = self.churned.iter().filter(|c| **c).count();
        self.len() >= MIN_EXAMPLES && pos >= MIN_PER_CLASS && self.len() - pos >= MIN_PER_CLASS
    }
}

/// Fits a logistic regression on the chosen feature columns, then Platt-recalibrates it on
/// `calibrate` (the most recent examples), and returns a model over all columns (unused
/// columns get weight 0).
pub fn fit(
    train: &Examples,
    calibrate: &Examples,
    columns: &[usize],
    alpha: f64,
    horizon_days: f64,
    btyd: Option<BgNbd>,
) -> Result<ChurnModel> {
    let rows = subsample(train.len(), MAX_TRAINING_ROWS);
    let k = columns.len();
    let mut mean = vec![0.0; k];
    let mut scale = vec![0.0; k];
    for &i in &rows {
        for (j, &c) in columns.iter().enumerate() {
            mean[j] += train.rows[i][c];
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows.len().max(1) as f64);
    for &i in &rows {
        for (j, &c) in columns.iter().enumerate() {
            scale[j] += (train.rows[i][c] - mean[j]).powi(2);
        }
    }
    scale
        .iter_mut()
        .for_each(|s| *s = (*s / rows.len().max(1) as f64).sqrt().max(1e-9));

    // Column-major, so that the gradient's `xᵀ·r` reads each feature contiguously: row-major
    // made every L-BFGS step stride across the whole matrix once per feature (3× slower).
    let x = Array2::from_shape_fn((rows.len(), k).f(), |(r, j)| {
        (train.rows[rows[r]][columns[j]] - mean[j]) / scale[j]
    });
    let y = Array1::from_iter(rows.iter().map(|&i| train.churned[i]));
    let fitted = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(MAX_ITERATIONS)
        .fit(&Dataset::new(x, y))
        .map_err(|e| Error::Fit(format!("churn logistic regression: {e}")))?;

    let mut model = ChurnModel {
        features: CHURN_FEATURES.iter().map(|s| (*s).to_string()).collect(),
        mean: vec![0.0; CHURN_FEATURES.len()],
        scale: vec![1.0; CHURN_FEATURES.len()],
        weights: vec![0.0; CHURN_FEATURES.len()],
        intercept: fitted.intercept(),
        calibration: (1.0, 0.0),
        horizon_days,
        btyd,
    };
    for (j, &c) in columns.iter().enumerate() {
        model.mean[c] = mean[j];
        model.scale[c] = scale[j];
        model.weights[c] = fitted.params()[j];
    }
    // linfa's positive class is the larger one: the staying buyers wherever churners are the
    // minority. Turn the score around then, so that it rises with churn.
    if !fitted.labels().pos.class {
        model.weights.iter_mut().for_each(|w| *w = -*w);
        model.intercept = -model.intercept;
    }
    model.calibration = platt(&model, calibrate)?;
    Ok(model)
}

/// One-dimensional logistic fit of labels on the linear score: `(a, b)` of `σ(a·z + b)`.
fn platt(model: &ChurnModel, ex: &Examples) -> Result<(f64, f64)> {
    if !ex.enough() {
        return Ok((1.0, 0.0));
    }
    let rows = subsample(ex.len(), MAX_TRAINING_ROWS);
    let x = Array2::from_shape_fn((rows.len(), 1), |(r, _)| model.linear(&ex.rows[rows[r]]));
    let y = Array1::from_iter(rows.iter().map(|&i| ex.churned[i]));
    let fitted = LogisticRegression::default()
        .alpha(1e-6)
        .max_iterations(MAX_ITERATIONS)
        .fit(&Dataset::new(x, y))
        .map_err(|e| Error::Fit(format!("churn calibration: {e}")))?;
    let (a, b) = (fitted.params()[0], fitted.intercept());
    // Fitted for linfa's positive class, the larger one: for churn when churners are the
    // minority, turn it around.
    let (a, b) = if fitted.labels().pos.class {
        (a, b)
    } else {
        (-a, -b)
    };
    // A non-positive slope would invert the ranking: keep the uncalibrated score instead.
    Ok(if a > 0.0 && a.is_finite() && b.is_finite() {
        (a, b)
    } else {
        (1.0, 0.0)
    })
}

/// All of `0..n`, or `cap` indexes spread evenly over it when there are more: a cap of 100k on
/// 138k rows keeps 100k of them (every second row would keep only 69k).
fn subsample(n: usize, cap: usize) -> Vec<usize> {
    if n <= cap {
        return (0..n).collect();
    }
    (0..cap).map(|i| i * n / cap).collect()
}

/// The fallback when there are too few buyers to fit: risk rises with recency against the
/// horizon, `σ(1.5·(ln(recency + 1) − ln(horizon)))`.
pub fn heuristic(horizon_days: f64) -> ChurnModel {
    let mut weights = vec![0.0; CHURN_FEATURES.len()];
    weights[0] = 1.5;
    ChurnModel {
        features: CHURN_FEATURES.iter().map(|s| (*s).to_string()).collect(),
        mean: vec![0.0; CHURN_FEATURES.len()],
        scale: vec![1.0; CHURN_FEATURES.len()],
        weights,
        intercept: -1.5 * (horizon_days + 1.0).ln(),
        calibration: (1.0, 0.0),
        horizon_days,
        btyd: None,
    }
}

/// The fallback without labels: a BG/NBD model fitted on the buyers as of `t`, scoring churn as
/// 1 − P(buy within the horizon). `None` with fewer than 20 buyers.
pub fn unsupervised(history: &History, t: i64, horizon_days: f64) -> Option<ChurnModel> {
    let btyd = crate::btyd::fit(&buyers_rfa(&contact_states(history, t), t))?;
    let n = CHURN_FEATURES.len();
    let column = CHURN_FEATURES.iter().position(|f| *f == "btyd_p_buy")?;
    let mut weights = vec![0.0; n];
    weights[column] = -1.0;
    Some(ChurnModel {
        features: CHURN_FEATURES.iter().map(|s| (*s).to_string()).collect(),
        mean: vec![0.0; n],
        scale: vec![1.0; n],
        weights,
        intercept: 0.0,
        calibration: (1.0, 0.0),
        horizon_days,
        btyd: Some(btyd),
    })
}

/// Probabilities of a model for a set of examples.
pub fn predict(model: &ChurnModel, ex: &Examples) -> Vec<f64> {
    ex.rows.iter().map(|r| model.probability(r)).collect()
}

/// When the churn examples are taken.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChurnPlan {
    /// Label window actually used, in seconds (shorter than asked when history is short).
    pub horizon: i64,
    /// Cutoff of the held-out backtest window `[eval_cutoff, eval_cutoff + horizon)`.
    pub eval_cutoff: i64,
    /// Cutoffs of the backtest's training examples (all labels end by `eval_cutoff`).
    pub backtest_cutoffs: Vec<i64>,
    /// Cutoffs of the production model's examples (all labels end by the as-of time).
    pub cutoffs: Vec<i64>,
}

/// Plans cutoffs: a horizon of at most a third of the history (so a backtest and a model both
/// fit), up to four stacked cutoffs half a horizon apart, each with at least 30 days of history.
pub fn plan(first_event: i64, as_of: i64, horizon: i64) -> Option<ChurnPlan> {
    let span = as_of - first_event;
    let horizon = horizon.min(span / 3);
    if horizon < 7 * augur_data::DAY {
        return None;
    }
    let earliest = first_event + 30 * augur_data::DAY;
    let stacked = |last: i64| -> Vec<i64> {
        (0..4)
            .map(|k| last - k * horizon / 2)
            .filter(|c| *c >= earliest)
            .collect()
    };
    let eval_cutoff = as_of - horizon;
    Some(ChurnPlan {
        horizon,
        eval_cutoff,
        backtest_cutoffs: stacked(eval_cutoff - horizon),
        cutoffs: stacked(as_of - horizon),
    })
}

/// Examples at several cutoffs, stacked; also returns the most recent cutoff's examples and
/// the buy-till-you-die model fitted on the buyers as of the most recent cutoff.
pub fn stacked_examples(
    history: &History,
    cutoffs: &[i64],
    horizon: i64,
) -> (Examples, Examples, Option<BgNbd>) {
    let Some((&newest_cutoff, older)) = cutoffs.split_first() else {
        return (Examples::default(), Examples::default(), None);
    };
    let states = contact_states(history, newest_cutoff);
    let btyd = crate::btyd::fit(&buyers_rfa(&states, newest_cutoff));
    let newest = Examples::from_states(history, &states, newest_cutoff, horizon, btyd.as_ref());
    drop(states);
    let mut all = Examples {
        rows: newest.rows.clone(),
        churned: newest.churned.clone(),
        contacts: newest.contacts.clone(),
    };
    // Each older cutoff is its own pass over the history: they run side by side, and are
    // stacked in cutoff order so the result does not depend on the thread count.
    use rayon::prelude::*;
    let older: Vec<Examples> = older
        .par_iter()
        .map(|&c| Examples::at(history, c, horizon, btyd.as_ref()))
        .collect();
    for examples in older {
        all.extend(examples);
    }
    (all, newest, btyd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Examples whose churn probability rises with feature 0, at a base rate of `rate`.
    fn examples(n: usize, rate: f64, seed: u64) -> Examples {
        let mut ex = Examples::default();
        let mut state = seed;
        let mut uniform = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let offset = (rate / (1.0 - rate)).ln();
        for i in 0..n {
            let x = uniform() * 4.0 - 2.0;
            let p = 1.0 / (1.0 + (-(1.5 * x + offset)).exp());
            let mut row = [0.0; CHURN_FEATURES.len()];
            row[0] = x;
            ex.rows.push(row);
            ex.churned.push(uniform() < p);
            ex.contacts.push(i as u32);
        }
        ex
    }

    #[test]
    fn risk_rises_with_churn_and_is_recalibrated_whichever_class_is_larger() {
        // The calibration examples (the newest cutoff) churn at another rate than the stacked
        // training examples: Platt scaling moves the probabilities to it.
        for (rate, newest_rate) in [(0.08, 0.15), (0.5, 0.35), (0.85, 0.7)] {
            let (train, calibrate) = (examples(6000, rate, 1), examples(4000, newest_rate, 2));
            let model = fit(&train, &calibrate, &[0], 1.0, 90.0, None).expect("fit");
            let mut low = [0.0; CHURN_FEATURES.len()];
            let mut high = low;
            (low[0], high[0]) = (-1.5, 1.5);
            assert!(
                model.probability(&high) > model.probability(&low),
                "rate {rate}: risk must rise with the churn driver"
            );
            let predicted: f64 = predict(&model, &calibrate).iter().sum::<f64>() / 4000.0;
            let observed = calibrate.churned.iter().filter(|c| **c).count() as f64 / 4000.0;
            assert!(
                (predicted - observed).abs() < 0.02,
                "rate {rate}: mean predicted {predicted:.3}, observed {observed:.3}, calibration {:?}",
                model.calibration
            );
        }
    }

    #[test]
    fn subsample_keeps_every_row_up_to_the_cap_then_exactly_the_cap_spread_out() {
        assert_eq!(subsample(5, 10), vec![0, 1, 2, 3, 4]);
        let kept = subsample(138_000, 100_000);
        assert_eq!(kept.len(), 100_000);
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(kept.first(), Some(&0));
        assert!(
            kept.last()
                .is_some_and(|&i| (137_000..138_000).contains(&i))
        );
    }
}
