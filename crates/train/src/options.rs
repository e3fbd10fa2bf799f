//! What a training run is asked to do.

/// The churn horizon when none is given: P(no purchase within 90 days), the usual window of
/// e-commerce churn (and the one the demo's planted truth uses).
pub const DEFAULT_HORIZON_DAYS: f64 = 90.0;

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
            horizon_days: DEFAULT_HORIZON_DAYS,
            churn_alpha: 1.0,
        }
    }
}
