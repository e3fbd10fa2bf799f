//! `augur train` end to end, one step per model: plan cutoffs, backtest every model against its
//! baselines on the last held-out horizon, fit the production models as of T, and write the
//! model directory.

mod affinity;
mod churn;
mod send_time;
mod windows;

use std::collections::BTreeMap;

use augur_data::{DAY, History, format_utc};
use augur_model::{Artifact, FORMAT_VERSION, Manifest, SendTimeModel, Signals};
use sha2::{Digest, Sha256};

use crate::backtest::{Backtest, Trained};
use crate::error::{Error, Result};
use crate::options::TrainOptions;
use windows::Windows;

/// The first event and the as-of time, or why `options` cannot be used on `history`.
fn span(history: &History, options: &TrainOptions) -> Result<(i64, i64)> {
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
    Ok((first, as_of))
}

/// Trains every model on `history` as of `options.as_of`.
///
/// # Errors
/// [`Error::Options`] for a horizon under a day, an empty history or an as-of time before the
/// first event; [`Error::Fit`] when a fit fails; [`Error::Model`] when the snapshot cannot be built.
pub fn train(
    history: &History,
    options: &TrainOptions,
    version: &str,
    created_at: &str,
) -> Result<Trained> {
    let (first, as_of) = span(history, options)?;
    let horizon = (options.horizon_days * DAY as f64) as i64;
    let started = std::time::Instant::now();
    let stage = |name: &str| {
        tracing::info!(
            seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
            "{name}"
        );
    };
    let churn = churn::fit_churn(history, options, first, as_of, horizon)?;
    stage("churn model fitted and backtested");

    // Recommendations and send time are evaluated on the same held-out window as churn, and
    // read the history independently: fitted side by side.
    let windows = Windows::new(
        first,
        as_of,
        churn.plan.as_ref().map_or(horizon, |p| p.horizon),
    );
    let signals = Signals::default();
    let (affinity, send_time) = rayon::join(
        || affinity::fit_affinity(history, signals, &windows),
        || send_time::fit_send_time(history, &windows),
    );
    let send_time = send_time?;
    stage("affinity and send-time models fitted and backtested");

    let mut fallbacks = churn.fallbacks.clone();
    fallbacks.extend(affinity.fallbacks.iter().cloned());
    fallbacks.extend(send_time.fallbacks.iter().cloned());
    for fallback in &fallbacks {
        tracing::warn!("{fallback}");
    }
    let backtest = backtest(&windows, &churn, &affinity, &send_time);
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        version: version.to_string(),
        created_at: created_at.to_string(),
        as_of: format_utc(as_of),
        as_of_seconds: as_of,
        horizon_days: options.horizon_days,
        horizon_days_used: churn.horizon_used,
        data_fingerprint: fingerprint(history),
        rows: row_counts(history),
        hyperparameters: hyperparameters(options, signals, &churn, &affinity, &send_time),
        metrics: serde_json::to_value(&backtest)
            .map_err(|e| Error::serialize("the backtest", &e))?,
        fallbacks,
        files: BTreeMap::new(),
    };
    let snapshot = augur_model::build_snapshot_with(
        history,
        as_of,
        &augur_model::Models {
            churn: &churn.model,
            affinity: &affinity.model,
            send_time: &send_time.model,
        },
        augur_model::AtHand {
            engagement: send_time.as_of_counts,
            profiles: Some(affinity.as_of_profiles),
        },
    )?;
    stage("contact snapshot built");
    Ok(Trained {
        manifest,
        churn: churn.model,
        affinity: affinity.model,
        send_time: send_time.model,
        backtest,
        churn_curves: churn.curves,
        send_time_samples: send_time.samples,
        snapshot,
    })
}

/// Every model's backtest on the held-out window, what each task serves and where augur loses.
fn backtest(
    windows: &Windows,
    churn: &churn::ChurnPart,
    affinity: &affinity::AffinityPart,
    send_time: &send_time::SendTimePart,
) -> Backtest {
    let mut backtest = Backtest {
        held_out_from: format_utc(windows.eval_cutoff),
        held_out_to: format_utc(windows.as_of),
        churn: churn.backtest.clone(),
        recommendations: affinity.recommendations.clone(),
        send_time: send_time.backtest.clone(),
        served: churn
            .served
            .iter()
            .cloned()
            .chain(served(affinity.ranker_choices.as_ref(), &send_time.model))
            .collect(),
        losses: Vec::new(),
    };
    backtest.losses = backtest.find_losses();
    backtest
}

/// What the recommendation and send-time tasks serve, in words.
fn served(choices: Option<&crate::affinity::RankerChoices>, send: &SendTimeModel) -> Vec<String> {
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
    out.push(if send.kappa_population >= crate::send_time::GLOBAL_ONLY {
        "send time: the global profile (it predicted the selection window best)".to_string()
    } else {
        format!(
            "send time: own engagement pooled toward its cluster (pseudo-count {}) and the population ({}); its weekday shape toward theirs ({})",
            send.kappa_cluster,
            send.kappa_population,
            send.kappa_day
        )
    });
    out
}

/// Rows per table, for the manifest.
fn row_counts(history: &History) -> BTreeMap<String, u64> {
    BTreeMap::from([
        ("contacts".to_string(), history.contacts.len() as u64),
        ("products".to_string(), history.products.len() as u64),
        ("orders".to_string(), history.orders.len() as u64),
        (
            "email_events".to_string(),
            history.email_events.len() as u64,
        ),
        ("web_events".to_string(), history.web_events.len() as u64),
    ])
}

/// Every setting the fits used, for the manifest.
fn hyperparameters(
    options: &TrainOptions,
    signals: Signals,
    churn: &churn::ChurnPart,
    affinity: &affinity::AffinityPart,
    send_time: &send_time::SendTimePart,
) -> serde_json::Value {
    use crate::churn::{MAX_ITERATIONS, MAX_TRAINING_ROWS};
    use crate::ease::{EASE_NEIGHBORS, EASE_PRODUCTS, LAMBDA_SHARE};
    let cutoffs = churn
        .plan
        .as_ref()
        .map(|p| p.cutoffs.iter().map(|c| format_utc(*c)).collect::<Vec<_>>());
    let (rankers, ranker_choices) = (&affinity.model.rankers, &affinity.ranker_choices);
    let send = &send_time.model;
    serde_json::json!({
        "churn": { "model": "logistic_regression", "alpha": churn.alpha, "alphas_tried": options.churn_alphas, "features": augur_model::CHURN_FEATURES, "cutoffs": cutoffs, "calibration": "platt", "max_training_rows": MAX_TRAINING_ROWS, "max_iterations": MAX_ITERATIONS },
        "affinity": { "item_to_item": "ease", "ease_products": EASE_PRODUCTS, "ease_neighbors": EASE_NEIGHBORS, "ease_lambda_share": LAMBDA_SHARE, "signals": signals, "rank_features": augur_model::RANK_FEATURES, "rankers": rankers, "ranker_choices": ranker_choices },
        "send_time": { "clusters": send.clusters.len(), "kappa_cluster": send.kappa_cluster, "kappa_population": send.kappa_population, "kappa_day": send.kappa_day, "weights": send.weights },
    })
}

/// Counts and time ranges of every table, hashed with SHA-256 (the first 8 bytes, in hex): equal
/// inputs give equal fingerprints, on every platform and with every Rust release.
fn fingerprint(history: &History) -> String {
    let mut h = Sha256::new();
    let mut add = |v: i64| h.update(v.to_le_bytes());
    add(history.contacts.len() as i64);
    add(history.products.len() as i64);
    for at in [
        &history.orders.at,
        &history.email_events.at,
        &history.web_events.at,
    ] {
        add(at.len() as i64);
        add(at.first().copied().unwrap_or(i64::MIN));
        add(at.last().copied().unwrap_or(i64::MIN));
        at.iter()
            .step_by((at.len() / 1000).max(1))
            .for_each(|t| add(*t));
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a finished run into `root/<version>` (models, manifest, `report.html`) and moves
/// `root/current`.
///
/// The version may get a `-2`, `-3`… suffix when its name is taken; `trained.manifest` becomes
/// the manifest as written (final version, file checks).
pub fn write_model(root: &std::path::Path, trained: &mut Trained) -> Result<std::path::PathBuf> {
    let report = crate::report::render(trained);
    let models = augur_model::Models {
        churn: &trained.churn,
        affinity: &trained.affinity,
        send_time: &trained.send_time,
    };
    let (dir, manifest) = Artifact::write(
        root,
        &trained.manifest,
        &models,
        &trained.snapshot,
        &[("report.html", &report)],
    )?;
    trained.manifest = manifest;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint of an empty history is fixed forever: SHA-256 over eleven little-endian
    /// i64 (two zero counts, then for each of three event tables a zero length and `i64::MIN`
    /// twice), as `python3 -c "import hashlib,struct; print(hashlib.sha256(struct.pack('<11q',
    /// 0, 0, *[0, -2**63, -2**63] * 3)).hexdigest()[:16])"` computes it.
    #[test]
    fn the_fingerprint_does_not_depend_on_the_rust_release() {
        assert_eq!(fingerprint(&History::default()), "d66a1ebe4c7618d8");
    }
}
