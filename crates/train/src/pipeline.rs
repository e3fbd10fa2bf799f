//! `augur train` end to end: plan cutoffs, backtest every model against its baselines on the
//! last held-out horizon, fit the production models as of T, and write the model directory.

use std::collections::BTreeMap;

use augur_data::History;
use augur_data::{DAY, format_utc};
use augur_model::CHURN_FEATURES;
use augur_model::ChurnModel;
use augur_model::SendTimeModel;
use augur_model::{AffinityModel, Rankers, Signals};
use augur_model::{Artifact, FORMAT_VERSION, Manifest};
use serde::Serialize;

use crate::affinity::{self, AffinityBacktest};
use crate::churn::{self, Examples, RFM_COLUMNS};
use crate::error::{Error, Result};
use crate::metrics::ChurnMetrics;
use crate::send_time::{self, SendTimeMetrics};

/// Training options.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Only events before this instant are used (default: just after the latest event).
    pub as_of: Option<i64>,
    /// Churn horizon, days.
    pub horizon_days: f64,
    /// L2 strength of the churn logistic regression.
    pub churn_alpha: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            as_of: None,
            horizon_days: 90.0,
            churn_alpha: 1.0,
        }
    }
}

/// Everything the backtest measured, for `metrics.json` and the report.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    /// Start of the held-out window (RFC 3339).
    pub held_out_from: String,
    /// End of the held-out window.
    pub held_out_to: String,
    /// Churn: augur, recency alone, RFM logistic regression.
    pub churn: BTreeMap<String, ChurnMetrics>,
    /// Recommendations.
    pub recommendations: Option<AffinityBacktest>,
    /// Send time: augur, global profile.
    pub send_time: BTreeMap<String, SendTimeMetrics>,
    /// What each task serves and why, in words (chosen on the window before the held-out one).
    pub served: Vec<String>,
    /// Where augur ranks below a baseline on the held-out window, in words.
    pub losses: Vec<String>,
}

impl Backtest {
    /// Each task's primary metric where augur is below a baseline (higher is better for all).
    fn find_losses(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut compare = |task: &str, metric: &str, table: Vec<(&String, f64)>| {
            let Some(augur) = table.iter().find(|(n, _)| *n == "augur").map(|(_, v)| *v) else {
                return;
            };
            for (name, value) in table.iter().filter(|(n, _)| *n != "augur") {
                if *value > augur + 1e-9 {
                    out.push(format!(
                        "{task}: augur's {metric} {augur:.4} is below {name}'s {value:.4} on the held-out window"
                    ));
                }
            }
        };
        compare(
            "churn",
            "ROC AUC",
            self.churn.iter().map(|(n, m)| (n, m.roc_auc)).collect(),
        );
        if let Some(recs) = &self.recommendations {
            for (task, table) in [
                ("recommendations, all items", &recs.all_items),
                ("recommendations, new items", &recs.new_items),
            ] {
                compare(
                    task,
                    "recall@10",
                    table.iter().map(|(n, m)| (n, m.recall_at_10)).collect(),
                );
            }
        }
        compare(
            "send time",
            "log-likelihood",
            self.send_time
                .iter()
                .map(|(n, m)| (n, m.log_likelihood))
                .collect(),
        );
        out
    }
}

/// A finished training run.
pub struct Trained {
    /// The manifest.
    pub manifest: Manifest,
    /// Churn model.
    pub churn: ChurnModel,
    /// Affinity model.
    pub affinity: AffinityModel,
    /// Send-time model.
    pub send_time: SendTimeModel,
    /// Backtest.
    pub backtest: Backtest,
    /// Held-out churn probabilities, for the report's charts.
    pub churn_curves: crate::report::ChurnCurves,
    /// (contact id, send-time profile) of the most engaged contacts, for the report's heatmaps.
    pub send_time_samples: Vec<(String, Vec<f64>)>,
    /// Every contact's state as of the training time, scored with the fitted models.
    pub snapshot: augur_model::Snapshot,
}

/// Trains every model on `history` as of `options.as_of`.
pub fn train(
    history: &History,
    options: &TrainOptions,
    version: &str,
    created_at: &str,
) -> Result<Trained> {
    if options.horizon_days.is_nan() || options.horizon_days < 1.0 {
        return Err(Error::Options(format!(
            "horizon must be at least 1 day, got {}",
            options.horizon_days
        )));
    }
    let Some((first, last)) = history.event_span() else {
        return Err(Error::Options("no events to learn from".into()));
    };
    let as_of = options.as_of.unwrap_or(last + 1);
    if as_of <= first {
        return Err(Error::Options(format!(
            "--as-of {} is before the first event ({})",
            format_utc(as_of),
            format_utc(first)
        )));
    }
    let horizon = (options.horizon_days * DAY as f64) as i64;
    let mut fallbacks = Vec::new();
    let started = std::time::Instant::now();
    let stage = |name: &str| {
        tracing::info!(
            seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
            "{name}"
        );
    };
    let all_columns: Vec<usize> = (0..CHURN_FEATURES.len()).collect();
    let mut served_churn = None;

    // Churn.
    let plan = churn::plan(first, as_of, horizon);
    let mut backtest_churn = BTreeMap::new();
    let mut churn_curves = crate::report::ChurnCurves::default();
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
                options.churn_alpha,
                &all_columns,
            )?;
            served_churn = Some(columns.1);
            let served_columns = columns.0;
            // The backtest's fits and the final fit read the history independently: they run
            // side by side (the logistic fits are most of the churn work).
            let (backtest, fitted) = rayon::join(
                || {
                    churn_backtest(
                        history,
                        plan,
                        &[
                            ("augur", &served_columns),
                            ("recency", &[0]),
                            ("rfm_logistic", &RFM_COLUMNS),
                        ],
                        options.churn_alpha,
                        horizon_days,
                    )
                },
                || -> Result<std::result::Result<ChurnModel, usize>> {
                    let (train, newest, btyd) =
                        churn::stacked_examples(history, &plan.cutoffs, plan.horizon);
                    if !train.enough() {
                        return Ok(Err(train.len()));
                    }
                    churn::fit(
                        &train,
                        &newest,
                        &served_columns,
                        options.churn_alpha,
                        horizon_days,
                        btyd,
                    )
                    .map(Ok)
                },
            );
            match backtest? {
                Some((metrics, curves)) => (backtest_churn, churn_curves) = (metrics, curves),
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

    stage("churn model fitted and backtested");

    // Recommendations and send time: evaluated on the same held-out window as churn.
    let eval_horizon = plan.as_ref().map_or(horizon, |p| p.horizon);
    let eval_cutoff = as_of - eval_horizon;
    let select_window =
        (eval_cutoff - eval_horizon > first).then_some((eval_cutoff - eval_horizon, eval_cutoff));
    let signals = Signals::default();
    // Recommendations and send time read the history independently: fitted side by side.
    let windows = Windows {
        first,
        as_of,
        eval_cutoff,
        eval_horizon,
        select_window,
    };
    let (affinity_part, send_part) = rayon::join(
        || fit_affinity(history, signals, &windows),
        || fit_send_time(history, &windows),
    );
    let AffinityPart {
        ranker_choices,
        recommendations,
        as_of_profiles,
        model: affinity_model,
        fallbacks: affinity_fallbacks,
    } = affinity_part;
    let SendTimePart {
        backtest: backtest_send,
        model: send_model,
        samples: send_time_samples,
        as_of_counts,
        fallbacks: send_fallbacks,
    } = send_part?;
    fallbacks.extend(affinity_fallbacks);
    fallbacks.extend(send_fallbacks);

    stage("affinity and send-time models fitted and backtested");
    let mut backtest = Backtest {
        held_out_from: format_utc(eval_cutoff),
        held_out_to: format_utc(as_of),
        churn: backtest_churn,
        recommendations,
        send_time: backtest_send,
        served: served_churn
            .into_iter()
            .chain(served(ranker_choices.as_ref(), &send_model))
            .collect(),
        losses: Vec::new(),
    };
    backtest.losses = backtest.find_losses();
    let rows = BTreeMap::from([
        ("contacts".to_string(), history.contacts.len() as u64),
        ("products".to_string(), history.products.len() as u64),
        ("orders".to_string(), history.orders.len() as u64),
        (
            "email_events".to_string(),
            history.email_events.len() as u64,
        ),
        ("web_events".to_string(), history.web_events.len() as u64),
    ]);
    let fingerprint = fingerprint(history);
    let hyperparameters = serde_json::json!({
        "churn": { "model": "logistic_regression", "alpha": options.churn_alpha, "features": CHURN_FEATURES, "cutoffs": plan.as_ref().map(|p| p.cutoffs.iter().map(|c| format_utc(*c)).collect::<Vec<_>>()), "calibration": "platt", "max_training_rows": churn::MAX_TRAINING_ROWS, "max_iterations": churn::MAX_ITERATIONS },
        "affinity": { "item_to_item": "ease", "ease_products": crate::ease::EASE_PRODUCTS, "ease_neighbors": crate::ease::EASE_NEIGHBORS, "ease_lambda_share": crate::ease::LAMBDA_SHARE, "signals": signals, "rank_features": augur_model::RANK_FEATURES, "rankers": affinity_model.rankers, "ranker_choices": ranker_choices },
        "send_time": { "clusters": send_model.clusters.len(), "kappa_cluster": send_model.kappa_cluster, "kappa_population": send_model.kappa_population, "weights": send_model.weights },
    });
    let metrics =
        serde_json::to_value(&backtest).map_err(|e| Error::serialize("the backtest", &e))?;
    for fallback in &fallbacks {
        tracing::warn!("{fallback}");
    }
    let snapshot = augur_model::build_snapshot_with(
        history,
        as_of,
        &augur_model::Models {
            churn: &churn_model,
            affinity: &affinity_model,
            send_time: &send_model,
        },
        augur_model::AtHand {
            engagement: as_of_counts,
            profiles: Some(as_of_profiles),
        },
    )?;
    stage("contact snapshot built");
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        version: version.to_string(),
        created_at: created_at.to_string(),
        as_of: format_utc(as_of),
        as_of_seconds: as_of,
        horizon_days: options.horizon_days,
        horizon_days_used: horizon_used,
        data_fingerprint: fingerprint,
        rows,
        hyperparameters,
        metrics,
        fallbacks,
    };
    Ok(Trained {
        manifest,
        churn: churn_model,
        affinity: affinity_model,
        send_time: send_model,
        backtest,
        churn_curves,
        send_time_samples,
        snapshot,
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
    let candidates: [(&str, &[usize]); 2] =
        [("augur", all_columns), ("rfm_logistic", &RFM_COLUMNS)];
    let Some((metrics, curves)) = churn_backtest(history, &plan, &candidates, alpha, horizon_days)?
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

/// What the recommendation and send-time tasks serve, in words.
fn served(choices: Option<&affinity::RankerChoices>, send: &SendTimeModel) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(choices) = choices {
        for (task, baseline, c) in [
            ("all items", "own most-bought", &choices.all_items),
            ("new items", "popularity", &choices.new_items),
        ] {
            out.push(format!(
                "recommendations, {task}: {} (recall@10 on the selection window: learned ranker {:.4}, {baseline} {:.4}, {} contacts)",
                c.chosen.replace('_', " "),
                c.learned_recall_at_10,
                c.baseline_recall_at_10,
                c.contacts
            ));
        }
    }
    out.push(if send.kappa_population >= send_time::GLOBAL_ONLY {
        "send time: the global profile (it predicted the selection window best)".to_string()
    } else {
        format!(
            "send time: own engagement pooled toward its cluster (pseudo-count {}) and the population ({})",
            send.kappa_cluster, send.kappa_population
        )
    });
    out
}

/// The churn backtest: each candidate (name, feature columns) fitted at the backtest cutoffs
/// (side by side) and scored on the held-out window; `None` when too few buyers for one.
fn churn_backtest(
    history: &History,
    plan: &churn::ChurnPlan,
    candidates: &[(&str, &[usize])],
    alpha: f64,
    horizon_days: f64,
) -> Result<Option<(BTreeMap<String, ChurnMetrics>, crate::report::ChurnCurves)>> {
    use rayon::prelude::*;
    let (train, newest, btyd) =
        churn::stacked_examples(history, &plan.backtest_cutoffs, plan.horizon);
    let eval = Examples::at(history, plan.eval_cutoff, plan.horizon, btyd.as_ref());
    if !(train.enough() && eval.enough()) {
        return Ok(None);
    }
    let predictions = candidates
        .par_iter()
        .map(|&(name, columns)| {
            let m = churn::fit(&train, &newest, columns, alpha, horizon_days, btyd)?;
            Ok((name.to_string(), churn::predict(&m, &eval)))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut metrics = BTreeMap::new();
    for (name, p) in &predictions {
        metrics.insert(name.clone(), ChurnMetrics::compute(p, &eval.churned));
    }
    let curves = crate::report::ChurnCurves {
        models: predictions,
        labels: eval.churned,
    };
    Ok(Some((metrics, curves)))
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

/// Counts and time ranges of every table, hashed: equal inputs give equal fingerprints.
fn fingerprint(history: &History) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    history.contacts.len().hash(&mut h);
    history.products.len().hash(&mut h);
    for at in [
        &history.orders.at,
        &history.email_events.at,
        &history.web_events.at,
    ] {
        at.len().hash(&mut h);
        at.first().hash(&mut h);
        at.last().hash(&mut h);
        at.iter()
            .step_by((at.len() / 1000).max(1))
            .for_each(|t| t.hash(&mut h));
    }
    format!("{:016x}", h.finish())
}

/// The instants the recommendation and send-time fits share.
struct Windows {
    /// The first event.
    first: i64,
    /// Training's as-of time.
    as_of: i64,
    /// Start of the held-out window the backtests score.
    eval_cutoff: i64,
    /// Its length.
    eval_horizon: i64,
    /// The earlier window hyper-parameters are chosen on, when the history is long enough.
    select_window: Option<(i64, i64)>,
}

/// The recommendation model and its backtest.
struct AffinityPart {
    /// What chose each mode's ranker, when the history held a selection window.
    ranker_choices: Option<affinity::RankerChoices>,
    recommendations: Option<AffinityBacktest>,
    as_of_profiles: Vec<augur_model::Profile>,
    model: AffinityModel,
    fallbacks: Vec<String>,
}

/// Fits the recommendation model as of `as_of` and backtests one fitted at `eval_cutoff`;
/// both rank with the rankers fitted on the window before the held-out one.
fn fit_affinity(history: &History, signals: Signals, w: &Windows) -> AffinityPart {
    let mut fallbacks = Vec::new();
    let (rankers, ranker_choices) = match w.select_window {
        Some((from, _)) => {
            let (rankers, choices) = affinity::fit_rankers(history, from, w.eval_horizon, signals);
            (rankers, Some(choices))
        }
        None => {
            fallbacks.push(
                "recommendations: history too short to fit the rankers; default weights used"
                    .into(),
            );
            (Rankers::default(), None)
        }
    };
    let recommendations = (w.eval_cutoff > w.first).then(|| {
        let bt_affinity = AffinityModel {
            rankers: rankers.clone(),
            ..affinity::fit_at(history, w.eval_cutoff, signals)
        };
        affinity::backtest(
            history,
            &bt_affinity,
            &affinity::Window::new(
                history,
                w.eval_cutoff,
                w.eval_horizon,
                &signals,
                affinity::EVAL_CONTACTS,
            ),
        )
    });
    // The profiles as of T serve the fit and, later, the contact snapshot.
    let as_of_profiles = augur_model::profiles(history, w.as_of, &signals);
    let affinity_model = AffinityModel {
        rankers,
        ..affinity::fit_with_profiles(history, w.as_of, signals, &as_of_profiles)
    };

    AffinityPart {
        ranker_choices,
        recommendations,
        as_of_profiles,
        model: affinity_model,
        fallbacks,
    }
}

/// The send-time model, its backtest, sample contacts for the report, and the engagement
/// counts as of `as_of` when the snapshot can reuse them.
struct SendTimePart {
    backtest: BTreeMap<String, SendTimeMetrics>,
    model: SendTimeModel,
    samples: Vec<(String, Vec<f64>)>,
    as_of_counts: Option<Vec<[f32; augur_model::HOURS]>>,
    fallbacks: Vec<String>,
}

/// Fits the send-time model as of `as_of` and backtests one fitted at `eval_cutoff`.
fn fit_send_time(history: &History, w: &Windows) -> Result<SendTimePart> {
    let mut fallbacks = Vec::new();
    // The counts at the two earlier instants are independent passes over the history: side by side.
    let (select_counts, eval_counts) = rayon::join(
        || {
            w.select_window
                .filter(|(from, _)| *from > w.first)
                .map(|(from, _)| send_time::CountsAt::new(history, from))
        },
        || (w.eval_cutoff > w.first).then(|| send_time::CountsAt::new(history, w.eval_cutoff)),
    );
    if w.eval_cutoff <= w.first {
        fallbacks.push(format!(
            "recommendations and send time: history shorter than the {:.0}-day held-out window; fitted but not backtested",
            w.eval_horizon as f64 / DAY as f64
        ));
    }
    let mut backtest_send = BTreeMap::new();
    if let Some(eval_counts) = &eval_counts {
        let bt_send = send_time::fit(history, eval_counts, select_counts.as_ref())?;
        let held_out = send_time::engagements_between(history, w.eval_cutoff, w.as_of);
        if held_out.events.is_empty() {
            fallbacks.push(
                "send time: no e-mail, order or web engagement in the held-out window; not backtested".into(),
            );
        } else {
            let predicted = |c: u32| bt_send.predict(&eval_counts.counts[c as usize]).profile;
            backtest_send.insert(
                "augur".to_string(),
                send_time::evaluate(&held_out, predicted),
            );
            backtest_send.insert(
                "global_profile".to_string(),
                send_time::evaluate(&held_out, |_| bt_send.population.clone()),
            );
        }
    }
    drop(select_counts);
    let as_of_counts = send_time::CountsAt::new(history, w.as_of);
    let send_model = send_time::fit(history, &as_of_counts, eval_counts.as_ref())?;
    let send_time_samples = most_engaged(history, &as_of_counts.counts, &send_model, 3);
    // Kept for the snapshot, which needs the same counts (same weights, same instant).
    let as_of_counts = (send_model.weights == augur_model::EngagementWeights::default())
        .then_some(as_of_counts.counts);
    if send_model.clusters.is_empty() {
        fallbacks.push("send time: too few engaged contacts for profile clusters; sparse contacts shrink to the population".into());
    }

    Ok(SendTimePart {
        backtest: backtest_send,
        model: send_model,
        samples: send_time_samples,
        as_of_counts,
        fallbacks,
    })
}

/// The `n` contacts with the most engagement and their predicted profiles.
fn most_engaged(
    history: &History,
    counts: &[[f32; augur_model::HOURS]],
    model: &SendTimeModel,
    n: usize,
) -> Vec<(String, Vec<f64>)> {
    let mut totals: Vec<(f32, usize)> = counts
        .iter()
        .enumerate()
        .map(|(c, h)| (h.iter().sum::<f32>(), c))
        .collect();
    totals.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    totals
        .iter()
        .take(n)
        .filter(|(total, _)| *total > 0.0)
        .map(|&(_, c)| {
            (
                history.contacts.ids.name(c as u32).to_string(),
                model.predict(&counts[c]).profile,
            )
        })
        .collect()
}

/// Writes a finished run into `root/<version>` (models, manifest, `report.html`) and moves
/// `root/current`.
pub fn write_model(root: &std::path::Path, trained: &Trained) -> Result<std::path::PathBuf> {
    let dir = Artifact::write(
        root,
        &trained.manifest,
        &trained.churn,
        &trained.affinity,
        &trained.send_time,
        &trained.snapshot,
    )?;
    let path = dir.join("report.html");
    std::fs::write(&path, crate::report::render(trained))
        .map_err(|source| Error::Io { path, source })?;
    Ok(dir)
}
