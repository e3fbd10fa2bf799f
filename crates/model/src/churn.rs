//! Fitted models as plain numbers, and the one scoring path that turns features into predictions.
//! Training (in `augur-train`) fills these structs; scoring needs nothing but them.

use serde::{Deserialize, Serialize};

use crate::features::CHURN_FEATURES;

/// The least [`ChurnModel::contribution`] a feature needs to count as a reason.
pub const REASON_FLOOR: f64 = 0.05;

/// Logistic churn model over standardized features, with Platt recalibration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChurnModel {
    /// Feature names, in column order.
    pub features: Vec<String>,
    /// Per-feature mean used for standardizing.
    pub mean: Vec<f64>,
    /// Per-feature standard deviation used for standardizing (never zero).
    pub scale: Vec<f64>,
    /// Weight per standardized feature.
    pub weights: Vec<f64>,
    /// Intercept.
    pub intercept: f64,
    /// Platt scaling of the linear score: `p = σ(a·z + b)`.
    pub calibration: (f64, f64),
    /// Days of the window the probability refers to.
    pub horizon_days: f64,
    /// The buy-till-you-die model behind the `btyd_*` features (absent: neutral features).
    #[serde(default)]
    pub btyd: Option<crate::btyd::BgNbd>,
}

/// Churn risk tiers by probability of not buying within the horizon.
pub const TIERS: [(&str, f64); 4] = [
    ("low", 0.0),
    ("medium", 0.4),
    ("high", 0.7),
    ("critical", 0.9),
];

/// The tier of a probability.
pub fn tier(p: f64) -> &'static str {
    TIERS
        .iter()
        .rev()
        .find(|(_, from)| p >= *from)
        .map_or("low", |(name, _)| name)
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl ChurnModel {
    /// The linear score of one feature row.
    pub fn linear(&self, x: &[f64]) -> f64 {
        self.intercept
            + x.iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .zip(&self.weights)
                .map(|(((v, m), s), w)| w * (v - m) / s)
                .sum::<f64>()
    }

    /// Calibrated probability of not buying within the horizon; always in (0, 1).
    pub fn probability(&self, x: &[f64]) -> f64 {
        let (a, b) = self.calibration;
        sigmoid(a * self.linear(x) + b).clamp(1e-6, 1.0 - 1e-6)
    }

    /// The features that push this contact's risk up most, strongest first (at most `n`).
    pub fn reasons(&self, x: &[f64], n: usize) -> Vec<&'static str> {
        self.reason_features(x, n)
            .into_iter()
            .map(|j| self.reason_text(j))
            .collect()
    }

    /// Feature `j`'s share of the linear score: weight × standardized value (0 for a feature
    /// the model does not have).
    pub fn contribution(&self, x: &[f64], j: usize) -> f64 {
        match (
            x.get(j),
            self.weights.get(j),
            self.mean.get(j),
            self.scale.get(j),
        ) {
            (Some(v), Some(w), Some(m), Some(s)) => w * (v - m) / s,
            _ => 0.0,
        }
    }

    /// Indexes of the features that push this contact's risk up most, strongest first.
    pub fn reason_features(&self, x: &[f64], n: usize) -> Vec<usize> {
        let mut contributions: Vec<(f64, usize)> = (0..x.len())
            .map(|j| (self.contribution(x, j), j))
            .filter(|(c, _)| *c > REASON_FLOOR)
            .collect();
        contributions.sort_by(|a, b| b.0.total_cmp(&a.0));
        contributions.into_iter().take(n).map(|(_, j)| j).collect()
    }

    /// A reason in words: the feature and the direction that raises the risk, e.g.
    /// `recency_days high` (`unknown` for a feature this build does not compute). Static text,
    /// so answers carry reasons without allocating.
    pub fn reason_text(&self, j: usize) -> &'static str {
        static TEXTS: std::sync::LazyLock<Vec<[String; 2]>> = std::sync::LazyLock::new(|| {
            CHURN_FEATURES
                .iter()
                .map(|f| [format!("{f} high"), format!("{f} low")])
                .collect()
        });
        let low = !self.weights.get(j).is_some_and(|w| *w > 0.0);
        // Loaded models list exactly CHURN_FEATURES, so the name is almost always at `j`.
        self.features
            .get(j)
            .and_then(|name| {
                if CHURN_FEATURES.get(j) == Some(&name.as_str()) {
                    Some(j)
                } else {
                    CHURN_FEATURES.iter().position(|f| f == name)
                }
            })
            .and_then(|i| TEXTS.get(i))
            .map_or("unknown", |t| t[usize::from(low)].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_and_reasons() {
        let m = ChurnModel {
            features: vec!["recency_days".into(), "frequency".into()],
            mean: vec![1.0, 1.0],
            scale: vec![1.0, 1.0],
            weights: vec![2.0, -1.0],
            intercept: 0.0,
            calibration: (1.0, 0.0),
            horizon_days: 90.0,
            btyd: None,
        };
        let risky = [3.0, 0.0];
        assert!(m.probability(&risky) > 0.9);
        assert_eq!(
            m.reasons(&risky, 3),
            vec!["recency_days high", "frequency low"]
        );
        assert_eq!(tier(m.probability(&risky)), "critical");
        assert!((m.probability(&[1.0, 1.0]) - 0.5).abs() < 1e-12);
    }
}
