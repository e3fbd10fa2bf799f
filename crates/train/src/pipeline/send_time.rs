//! The send-time step: backtest a model fitted at the cutoff on the held-out engagement, and fit
//! the served model as of T with its pooling chosen on the window before.

use std::collections::BTreeMap;

use augur_data::{DAY, History};
use augur_model::SendTimeModel;

use super::windows::Windows;
use crate::error::Result;
use crate::send_time::{self, SendTimeMetrics};

/// The send-time model, its backtest, sample contacts for the report, and the engagement
/// counts as of `as_of` when the snapshot can reuse them.
pub(super) struct SendTimePart {
    pub backtest: BTreeMap<String, SendTimeMetrics>,
    pub model: SendTimeModel,
    pub samples: Vec<(String, Vec<f64>)>,
    pub as_of_counts: Option<Vec<[f32; augur_model::HOURS]>>,
    pub fallbacks: Vec<String>,
}

/// Fits the send-time model as of `as_of` and backtests one fitted at `eval_cutoff`.
pub(super) fn fit_send_time(history: &History, w: &Windows) -> Result<SendTimePart> {
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
