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
    /// L2 strengths the churn logistic regression is fitted with on the backtest window; the
    /// one that ranks that window's churners best is served. The penalty adds to the summed
    /// (not averaged) log loss, so a given strength shrinks less the more examples there are.
    pub churn_alphas: Vec<f64>,
}

/// The L2 strengths tried by default: from almost none to a strong pull toward the base rate.
pub const DEFAULT_CHURN_ALPHAS: [f64; 5] = [1.0, 10.0, 30.0, 100.0, 300.0];

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            as_of: None,
            horizon_days: DEFAULT_HORIZON_DAYS,
            churn_alphas: DEFAULT_CHURN_ALPHAS.to_vec(),
        }
    }
}
