//! The churn step: choose the features to serve, backtest against recency and the RFM
//! regression on the held-out window, and fit the served model as of T (or fall back to BG/NBD
//! or recency when labels cannot be had).

use std::collections::BTreeMap;

use augur_data::{DAY, History};
use augur_model::{CHURN_FEATURES, ChurnModel};

use crate::backtest::ChurnCurves;
use crate::churn::{self, ChurnPlan, Examples, RFM_COLUMNS};
use crate::error::Result;
use crate::metrics::ChurnMetrics;
use crate::options::TrainOptions;

/// The churn model, its backtest, and what the backtest chose, in words.
pub(super) struct ChurnPart {
    /// The cutoffs and label length, when the history is long enough for labels.
    pub plan: Option<ChurnPlan>,
    pub model: ChurnModel,
    /// The label length actually used, days.
    pub horizon_used: f64,
    /// The L2 strength of the served regression.
    pub alpha: f64,
    pub backtest: BTreeMap<String, ChurnMetrics>,
    pub curves: ChurnCurves,
    /// Which features are served and why.
    pub served: Option<String>,
    pub fallbacks: Vec<String>,
}

/// Plans the cutoffs, backtests and fits the churn model as of `as_of` with `horizon`-long
/// labels (seconds), shortened where the history is too short for them.
pub(super) fn fit_churn(
    history: &History,
    options: &TrainOptions,
    first: i64,
    as_of: i64,
    horizon: i64,
) -> Result<ChurnPart> {
    let mut fallbacks = Vec::new();
    let all_columns: Vec<usize> = (0..CHURN_FEATURES.len()).collect();
    let mut served_churn = None;
    let plan = churn::plan(first, as_of, horizon);
    let mut backtest_churn = BTreeMap::new();
    let mut churn_curves = ChurnCurves::default();
    let mut chosen_alpha = BASELINE_ALPHA;
    let (churn_model, horizon_used) = match &plan {
        Some(plan) => {
            if plan.horizon < horizon {
                fallbacks.push(format!(
                    "churn: history before the as-of time spans {:.0} days, too short for {:.0}-day labels; labels use {:.0}-day windows",
                    (as_of - first) as f64 / DAY as f64,
                    options.horizon_days,
                    plan.horizon as f64 / DAY as f64
                ));
            }
            let horizon_days = plan.horizon as f64 / DAY as f64;
            let columns = churn_columns(
                history,
                first,
                as_of - plan.horizon,
                plan.horizon,
                BASELINE_ALPHA,
                &all_columns,
            )?;
            let served_columns = columns.0;
            // The backtest fits every L2 strength for augur; the one that ranks the held-out
            // window best is the one the final model is fitted with.
            let backtest = churn_backtest(
                history,
                plan,
                &[
                    ("augur", &served_columns, &options.churn_alphas),
                    ("recency", &[0], &[BASELINE_ALPHA]),
                    ("rfm_logistic", &RFM_COLUMNS, &[BASELINE_ALPHA]),
                ],
                horizon_days,
            )?;
            let alpha = match &backtest {
                Some(bt) => bt.chosen_alpha,
                None => BASELINE_ALPHA,
            };
            chosen_alpha = alpha;
            served_churn = Some(match &backtest {
                Some(bt) if options.churn_alphas.len() > 1 => {
                    format!(
                        "{}; L2 strength {alpha} chosen on the held-out window ({})",
                        columns.1, bt.alpha_aucs
                    )
                }
                _ => columns.1,
            });
            let fitted = (|| -> Result<std::result::Result<ChurnModel, usize>> {
                let (train, newest, btyd) =
                    churn::stacked_examples(history, &plan.cutoffs, plan.horizon);
                if !train.enough() {
                    return Ok(Err(train.len()));
                }
                churn::fit(&train, &newest, &served_columns, alpha, horizon_days, btyd).map(Ok)
            })();
            match backtest {
                Some(bt) => (backtest_churn, churn_curves) = (bt.metrics, bt.curves),
                None => fallbacks
                    .push("churn: too few buyers before the held-out window for a backtest".into()),
            }
            match fitted? {
                Ok(model) => (model, horizon_days),
                Err(labelled) => {
                    let why = format!(
                        "churn: {labelled} labelled buyers (need {} with {} per class)",
                        churn::MIN_EXAMPLES,
                        churn::MIN_PER_CLASS
                    );
                    (
                        without_labels(history, as_of, options.horizon_days, &why, &mut fallbacks),
                        options.horizon_days,
                    )
                }
            }
        }
        None => {
            let why = "churn: under 3 weeks of history, too short for labels";
            (
                without_labels(history, as_of, options.horizon_days, why, &mut fallbacks),
                options.horizon_days,
            )
        }
    };
    Ok(ChurnPart {
        plan,
        model: churn_model,
        horizon_used,
        alpha: chosen_alpha,
        backtest: backtest_churn,
        curves: churn_curves,
        served: served_churn,
        fallbacks,
    })
}

/// The churn features to serve: all of them, unless the RFM regression ranked the window
/// before the held-out one clearly better (`[as_of − 2·horizon, as_of − horizon)`, with models
/// fitted on cutoffs whose labels end before it). Returns the columns and the choice in words.
fn churn_columns(
    history: &History,
    first: i64,
    select_as_of: i64,
    horizon: i64,
    alpha: f64,
    all_columns: &[usize],
) -> Result<(Vec<usize>, String)> {
    // The choice is made on the task that is served: labels as long as the served model's.
    // Where the history before the window is too short for them, shortened labels on a few
    // weeks of history would decide (on CDNOW they pick the RFM regression, which then loses
    // on the real holdout), so the regression over every feature is kept and this is said.
    let Some(plan) = churn::plan(first, select_as_of, horizon).filter(|p| p.horizon == horizon)
    else {
        return Ok((
            all_columns.to_vec(),
            "churn: the logistic regression over every feature (the history before the held-out window is too short to compare it with the RFM regression on labels of the same length)".into(),
        ));
    };
    let horizon_days = plan.horizon as f64 / DAY as f64;
    // Only the two regressions being compared are fitted.
    let alphas = [alpha];
    let candidates: [(&str, &[usize], &[f64]); 2] = [
        ("augur", all_columns, &alphas),
        ("rfm_logistic", &RFM_COLUMNS, &alphas),
    ];
    let Some(ChurnBacktest {
        metrics, curves, ..
    }) = churn_backtest(history, &plan, &candidates, horizon_days)?
    else {
        return Ok((
            all_columns.to_vec(),
            "churn: the logistic regression over every feature (too few buyers before the held-out window to compare it with the RFM regression)".into(),
        ));
    };
    let auc = |name: &str| metrics.get(name).map_or(f64::NAN, |m| m.roc_auc);
    let (full, rfm) = (auc("augur"), auc("rfm_logistic"));
    let churned = curves.labels.iter().filter(|l| **l).count();
    let stayed = curves.labels.len() - churned;
    // A difference within the noise of the window keeps the model over every feature: on a
    // window of a few hundred churners, ROC AUCs a few thousandths apart swap places from one
    // window to the next.
    let noise =
        1.645 * (auc_variance(full, churned, stayed) + auc_variance(rfm, churned, stayed)).sqrt();
    let (columns, chosen) = if rfm - full > noise {
        (RFM_COLUMNS.to_vec(), "the RFM logistic regression")
    } else {
        (
            all_columns.to_vec(),
            "the logistic regression over every feature",
        )
    };
    Ok((
        columns,
        format!(
            "churn: {chosen} (ROC AUC on the selection window: every feature {full:.4}, RFM {rfm:.4}; the RFM regression is served only when it leads by more than {noise:.4}, the one-sided 95 % noise of the two)"
        ),
    ))
}

/// The variance of a ROC AUC `a` measured on `positives` and `negatives` examples
/// (Hanley & McNeil, "The meaning and use of the area under a ROC curve", Radiology 1982).
fn auc_variance(a: f64, positives: usize, negatives: usize) -> f64 {
    let (n1, n2) = (positives as f64, negatives as f64);
    if n1 < 1.0 || n2 < 1.0 || !a.is_finite() {
        return f64::INFINITY;
    }
    let q1 = a / (2.0 - a);
    let q2 = 2.0 * a * a / (1.0 + a);
    ((a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n2 - 1.0) * (q2 - a * a)) / (n1 * n2)).max(0.0)
}

/// The L2 strength of the baselines (a data scientist's default) and of the feature selection.
const BASELINE_ALPHA: f64 = 1.0;

/// What [`churn_backtest`] measured.
struct ChurnBacktest {
    /// Each candidate's metrics on the held-out window (augur's at its chosen strength).
    metrics: BTreeMap<String, ChurnMetrics>,
    curves: ChurnCurves,
    /// The L2 strength of augur's best ROC AUC on the window (the smallest of equals).
    chosen_alpha: f64,
    /// Every strength tried with its ROC AUC, in words.
    alpha_aucs: String,
}

/// The churn backtest: each candidate (name, feature columns, L2 strengths) fitted at the
/// backtest cutoffs, every strength side by side, and scored on the held-out window; a
/// candidate with several strengths reports its best. `None` when too few buyers for one.
fn churn_backtest(
    history: &History,
    plan: &ChurnPlan,
    candidates: &[(&str, &[usize], &[f64])],
    horizon_days: f64,
) -> Result<Option<ChurnBacktest>> {
    use rayon::prelude::*;
    let (train, newest, btyd) =
        churn::stacked_examples(history, &plan.backtest_cutoffs, plan.horizon);
    let eval = Examples::at(history, plan.eval_cutoff, plan.horizon, btyd.as_ref());
    if !(train.enough() && eval.enough()) {
        return Ok(None);
    }
    let fits: Vec<(&str, &[usize], f64)> = candidates
        .iter()
        .flat_map(|&(name, columns, alphas)| alphas.iter().map(move |&a| (name, columns, a)))
        .collect();
    let predictions = fits
        .par_iter()
        .map(|&(name, columns, alpha)| {
            let m = churn::fit(&train, &newest, columns, alpha, horizon_days, btyd)?;
            let p = churn::predict(&m, &eval);
            let metrics = ChurnMetrics::compute(&p, &eval.churned);
            Ok((name, alpha, metrics, p))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut best: BTreeMap<&str, (f64, ChurnMetrics, Vec<f64>)> = BTreeMap::new();
    let mut alpha_aucs = Vec::new();
    // In fit order (strengths ascending as given): a strictly better AUC replaces the kept one.
    for (name, alpha, metrics, p) in predictions {
        if name == "augur" {
            alpha_aucs.push(format!("{alpha}: {:.4}", metrics.roc_auc));
        }
        let better = best
            .get(name)
            .is_none_or(|(_, kept, _)| metrics.roc_auc > kept.roc_auc);
        if better {
            best.insert(name, (alpha, metrics, p));
        }
    }
    let chosen_alpha = best.get("augur").map_or(BASELINE_ALPHA, |(a, _, _)| *a);
    let mut metrics = BTreeMap::new();
    let mut models = Vec::new();
    for (name, (_, m, p)) in best {
        metrics.insert(name.to_string(), m);
        models.push((name.to_string(), p));
    }
    Ok(Some(ChurnBacktest {
        metrics,
        curves: ChurnCurves {
            models,
            labels: eval.churned,
        },
        chosen_alpha,
        alpha_aucs: format!("ROC AUC by strength: {}", alpha_aucs.join(", ")),
    }))
}

/// The churn model when labels cannot be had: BG/NBD fitted on the buyers if there are enough,
/// else the recency heuristic; the fallback is named either way.
fn without_labels(
    history: &History,
    as_of: i64,
    horizon_days: f64,
    why: &str,
    fallbacks: &mut Vec<String>,
) -> ChurnModel {
    match churn::unsupervised(history, as_of, horizon_days) {
        Some(model) => {
            fallbacks.push(format!(
                "{why}; using a BG/NBD buy-till-you-die model fitted without labels"
            ));
            model
        }
        None => {
            fallbacks.push(format!(
                "{why}; under 20 buyers for BG/NBD, using the recency heuristic"
            ));
            churn::heuristic(horizon_days)
        }
    }
}
