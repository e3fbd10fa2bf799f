//! The recommendation step: fit the rankers on the window before the held-out one, backtest a
//! model fitted at the cutoff, and fit the served model as of T.

use augur_data::History;
use augur_model::{AffinityModel, Rankers, Signals};

use super::windows::Windows;
use crate::affinity::{self, AffinityBacktest};

/// The recommendation model and its backtest.
pub(super) struct AffinityPart {
    /// What chose each mode's ranker, when the history held a selection window.
    pub ranker_choices: Option<affinity::RankerChoices>,
    pub recommendations: Option<AffinityBacktest>,
    pub as_of_profiles: Vec<augur_model::Profile>,
    pub model: AffinityModel,
    pub fallbacks: Vec<String>,
}

/// Fits the recommendation model as of `as_of` and backtests one fitted at `eval_cutoff`;
/// both rank with the rankers fitted on the window before the held-out one.
pub(super) fn fit_affinity(history: &History, signals: Signals, w: &Windows) -> AffinityPart {
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
        let window = affinity::Window::new(
            history,
            w.eval_cutoff,
            w.eval_horizon,
            &signals,
            affinity::EVAL_CONTACTS,
        );
        let bt_affinity = AffinityModel {
            rankers: rankers.clone(),
            ..affinity::fit_with_profiles(history, w.eval_cutoff, signals, window.profiles())
        };
        affinity::backtest(history, &bt_affinity, &window)
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
