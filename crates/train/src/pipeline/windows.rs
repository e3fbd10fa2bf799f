//! The instants the steps of a training run share.

/// The instants the recommendation and send-time fits share.
pub(super) struct Windows {
    /// The first event.
    pub first: i64,
    /// Training's as-of time.
    pub as_of: i64,
    /// Start of the held-out window the backtests score.
    pub eval_cutoff: i64,
    /// Its length.
    pub eval_horizon: i64,
    /// The earlier window hyper-parameters are chosen on, when the history is long enough.
    pub select_window: Option<(i64, i64)>,
}

impl Windows {
    /// The windows of a run as of `as_of` whose held-out window is `eval_horizon` seconds long;
    /// the selection window is the one before it, when the history reaches back that far.
    pub(super) fn new(first: i64, as_of: i64, eval_horizon: i64) -> Self {
        let eval_cutoff = as_of - eval_horizon;
        let select_from = eval_cutoff - eval_horizon;
        Self {
            first,
            as_of,
            eval_cutoff,
            eval_horizon,
            select_window: (select_from > first).then_some((select_from, eval_cutoff)),
        }
    }
}
