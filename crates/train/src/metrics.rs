//! Evaluation metrics for held-out time: ranking (ROC AUC, PR AUC, lift), probability quality
//! (Brier score, log loss, reliability), recommendation hits, and send-time likelihood.

use serde::Serialize;

/// Churn metrics of one model on one held-out window.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnMetrics {
    /// Examples evaluated.
    pub n: usize,
    /// Share of positives (churned).
    pub base_rate: f64,
    /// Area under the ROC curve.
    pub roc_auc: f64,
    /// Area under the precision-recall curve (average precision).
    pub pr_auc: f64,
    /// Mean squared error of the probabilities.
    pub brier: f64,
    /// Mean negative log-likelihood (nats).
    pub log_loss: f64,
    /// Churn rate among the riskiest 10 % over the base rate.
    pub top_decile_lift: f64,
}

impl ChurnMetrics {
    /// All metrics for probabilities `p` of the positive label.
    pub fn compute(p: &[f64], labels: &[bool]) -> Self {
        let n = labels.len();
        let positives = labels.iter().filter(|l| **l).count();
        Self {
            n,
            base_rate: positives as f64 / n.max(1) as f64,
            roc_auc: roc_auc(p, labels),
            pr_auc: average_precision(p, labels),
            brier: p
                .iter()
                .zip(labels)
                .map(|(p, l)| (p - f64::from(u8::from(*l))).powi(2))
                .sum::<f64>()
                / n.max(1) as f64,
            log_loss: log_loss(p, labels),
            top_decile_lift: top_decile_lift(p, labels),
        }
    }
}

/// Indexes sorted by descending score.
fn descending(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// ROC AUC with ties counted half (Mann-Whitney U). 0.5 when a class is missing.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| labels[order[k]]).count() as f64 * mid_rank;
        i = j + 1;
    }
    let pos = labels.iter().filter(|l| **l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Average precision: the mean of precision at each positive, by descending score.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let pos = labels.iter().filter(|l| **l).count();
    if pos == 0 {
        return 0.0;
    }
    let (mut hits, mut sum) = (0usize, 0.0);
    for (rank, &i) in descending(scores).iter().enumerate() {
        if labels[i] {
            hits += 1;
            sum += hits as f64 / (rank + 1) as f64;
        }
    }
    sum / pos as f64
}

/// Mean negative log-likelihood of probabilities (clamped away from 0 and 1).
pub fn log_loss(p: &[f64], labels: &[bool]) -> f64 {
    let total: f64 = p
        .iter()
        .zip(labels)
        .map(|(p, l)| {
            let p = p.clamp(1e-12, 1.0 - 1e-12);
            if *l { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / labels.len().max(1) as f64
}

/// Positive rate among the top 10 % by score, over the overall positive rate.
pub fn top_decile_lift(scores: &[f64], labels: &[bool]) -> f64 {
    let n = labels.len();
    let base = labels.iter().filter(|l| **l).count() as f64 / n.max(1) as f64;
    let top = (n / 10).max(1);
    let hits = descending(scores)
        .iter()
        .take(top)
        .filter(|&&i| labels[i])
        .count() as f64;
    if base == 0.0 {
        0.0
    } else {
        hits / top as f64 / base
    }
}

/// ROC curve points (false positive rate, true positive rate), at most `points` of them.
pub fn roc_curve(scores: &[f64], labels: &[bool], points: usize) -> Vec<(f64, f64)> {
    let pos = labels.iter().filter(|l| **l).count().max(1) as f64;
    let neg = (labels.len() as f64 - pos).max(1.0);
    let order = descending(scores);
    let step = (order.len() / points.max(1)).max(1);
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut curve = vec![(0.0, 0.0)];
    for (k, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        if k % step == 0 || k + 1 == order.len() {
            curve.push((fp / neg, tp / pos));
        }
    }
    curve
}

/// Reliability: (mean predicted, observed rate, count) in `bins` equal-width probability bins.
pub fn reliability(p: &[f64], labels: &[bool], bins: usize) -> Vec<(f64, f64, usize)> {
    let mut sums = vec![(0.0, 0.0, 0usize); bins];
    for (p, l) in p.iter().zip(labels) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sums[b].0 += p;
        sums[b].1 += f64::from(u8::from(*l));
        sums[b].2 += 1;
    }
    sums.into_iter()
        .filter(|s| s.2 > 0)
        .map(|(sp, sl, n)| (sp / n as f64, sl / n as f64, n))
        .collect()
}

/// Churn rate per score decile, riskiest first.
pub fn decile_rates(scores: &[f64], labels: &[bool]) -> Vec<f64> {
    let order = descending(scores);
    let n = order.len();
    (0..10)
        .map(|d| {
            let slice = &order[d * n / 10..(d + 1) * n / 10];
            slice.iter().filter(|&&i| labels[i]).count() as f64 / slice.len().max(1) as f64
        })
        .collect()
}

/// Recommendation metrics at 10.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RecMetrics {
    /// Contacts evaluated.
    pub contacts: usize,
    /// Mean share of the relevant items found in the top 10.
    pub recall_at_10: f64,
    /// Mean share of the top 10 that is relevant.
    pub precision_at_10: f64,
    /// Mean normalized discounted cumulative gain.
    pub ndcg_at_10: f64,
    /// Share of contacts with at least one relevant item in the top 10.
    pub hit_rate_at_10: f64,
}

/// Accumulates [`RecMetrics`].
#[derive(Default)]
pub struct RecScore {
    n: usize,
    recall: f64,
    precision: f64,
    ndcg: f64,
    hits: f64,
}

impl RecScore {
    /// Adds one contact's ranked list against its relevant set.
    pub fn add(&mut self, ranked: &[u32], relevant: &[u32]) {
        if relevant.is_empty() {
            return;
        }
        let top = &ranked[..ranked.len().min(10)];
        let found: Vec<bool> = top.iter().map(|p| relevant.contains(p)).collect();
        let hits = found.iter().filter(|f| **f).count() as f64;
        let dcg: f64 = found
            .iter()
            .enumerate()
            .filter(|(_, f)| **f)
            .map(|(r, _)| 1.0 / (r as f64 + 2.0).log2())
            .sum();
        let ideal: f64 = (0..relevant.len().min(10))
            .map(|r| 1.0 / (r as f64 + 2.0).log2())
            .sum();
        self.n += 1;
        self.recall += hits / relevant.len() as f64;
        self.precision += hits / 10.0;
        self.ndcg += dcg / ideal;
        self.hits += f64::from(u8::from(hits > 0.0));
    }

    /// The means.
    pub fn finish(&self) -> RecMetrics {
        let n = self.n.max(1) as f64;
        RecMetrics {
            contacts: self.n,
            recall_at_10: self.recall / n,
            precision_at_10: self.precision / n,
            ndcg_at_10: self.ndcg / n,
            hit_rate_at_10: self.hits / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_reference_values() {
        let labels = [true, false, true, false];
        assert!((roc_auc(&[0.9, 0.1, 0.8, 0.2], &labels) - 1.0).abs() < 1e-12);
        assert!((roc_auc(&[0.1, 0.9, 0.2, 0.8], &labels) - 0.0).abs() < 1e-12);
        assert!((roc_auc(&[0.5; 4], &labels) - 0.5).abs() < 1e-12);
        // One inversion among four pairs.
        assert!((roc_auc(&[0.9, 0.85, 0.8, 0.1], &labels) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn probability_metrics() {
        let labels = [true, false];
        let m = ChurnMetrics::compute(&[1.0, 0.0], &labels);
        assert!(m.brier < 1e-12 && m.log_loss < 1e-9);
        let m = ChurnMetrics::compute(&[0.5, 0.5], &labels);
        assert!((m.brier - 0.25).abs() < 1e-12);
        assert!((m.log_loss - std::f64::consts::LN_2).abs() < 1e-12);
        assert!(
            (average_precision(&[0.9, 0.8, 0.7], &[false, true, true]) - (0.5 + 2.0 / 3.0) / 2.0)
                .abs()
                < 1e-12
        );
    }
}
