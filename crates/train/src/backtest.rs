//! What a training run produced and measured: the backtest against the baselines, the fitted
//! models with their manifest, and the held-out curves the report draws.

use std::collections::BTreeMap;

use augur_model::{AffinityModel, ChurnModel, Manifest, SendTimeModel};
use serde::Serialize;

use crate::affinity::AffinityBacktest;
use crate::metrics::ChurnMetrics;
use crate::send_time::SendTimeMetrics;

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
    pub(crate) fn find_losses(&self) -> Vec<String> {
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
    pub churn_curves: ChurnCurves,
    /// (contact id, send-time profile) of the most engaged contacts, for the report's heatmaps.
    pub send_time_samples: Vec<(String, Vec<f64>)>,
    /// Every contact's state as of the training time, scored with the fitted models.
    pub snapshot: augur_model::Snapshot,
}

/// Held-out churn probabilities per model, with the labels, for the charts.
#[derive(Debug, Clone, Default)]
pub struct ChurnCurves {
    /// (model, probabilities).
    pub models: Vec<(String, Vec<f64>)>,
    /// Churned.
    pub labels: Vec<bool>,
}
