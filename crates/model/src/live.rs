//! Churn risk that moves with what a contact did after the model's as-of time: orders and
//! opt-outs posted as they happen (`POST /v1/events`) re-score it at once, without waiting
//! for the next training.
//!
//! The snapshot keeps each contact's facts (orders, spend, first and last order, recent
//! orders and e-mail engagement), not the 27 features it was scored on. The re-score
//! therefore works on the difference: it rebuilds the contact's order state from its facts,
//! computes the churn features before and after adding what happened since, and moves the
//! stored linear score by what that changes. Features the facts do not hold (carts, web
//! recency, deliveries) are the same on both sides and cancel, so a contact with nothing new
//! keeps exactly the model's risk. The model's clock stays at its as-of time, as it does for
//! every other contact: events since are counted as if they happened then (a fresh order is
//! a recency of zero days). A contact that never bought before is scored from its facts
//! alone, an approximation until the next training.

use crate::churn::{ChurnModel, tier};
use crate::features::{ContactState, churn_features};
use crate::snapshot::{FACTS, FLAGS, Models, Snapshot};

const DAY: f64 = 86_400.0;

/// What a contact did after the as-of time that moves its churn risk.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Since {
    /// Distinct orders placed.
    pub orders: u32,
    /// Their value (quantity × unit price of purchase lines).
    pub spend: f64,
    /// Unsubscribed.
    pub unsubscribed: bool,
    /// A delivery bounced.
    pub bounced: bool,
    /// Marked a message as spam.
    pub complained: bool,
}

impl Since {
    /// Whether anything here moves the risk.
    pub fn is_empty(&self) -> bool {
        self.orders == 0 && !self.unsubscribed && !self.bounced && !self.complained
    }
}

/// A churn risk re-scored with [`Since`].
#[derive(Debug, Clone, PartialEq)]
pub struct LiveChurn {
    /// P(no purchase within the model's horizon), in (0, 1).
    pub risk: f64,
    /// Its tier.
    pub tier: &'static str,
    /// The churn features that raise it most, strongest first (`recency_days high`).
    pub reasons: Vec<&'static str>,
    /// The same reasons as sentences, quoting the contact's facts with `since` counted.
    pub explanations: Vec<String>,
}

impl Snapshot {
    /// Contact `c`'s churn risk with `since` added, or `None` when `since` moves nothing or
    /// the contact has still never bought.
    pub fn churn_since(&self, models: &Models<'_>, c: usize, since: &Since) -> Option<LiveChurn> {
        if since.is_empty() {
            return None;
        }
        let churn = models.churn;
        let before = self.order_state(c);
        let after = add(before, since, self.as_of);
        let t = self.as_of;
        let btyd = churn.btyd.as_ref();
        let x1 = churn_features(&after, t, btyd, churn.horizon_days)?;
        let x0 = churn_features(&before, t, btyd, churn.horizon_days);
        let (risk, codes) = match (self.churn_risk(c), x0) {
            (Some(p), Some(x0)) => (
                shifted(churn, p, churn.linear(&x1) - churn.linear(&x0)),
                moved_reasons(churn, self.churn_reason_codes(c), &x0, &x1),
            ),
            _ => (
                churn.probability(&x1),
                churn.reason_features(&x1, crate::snapshot::REASONS),
            ),
        };
        if !risk.is_finite() {
            return None;
        }
        // Reasons kept from the model, or raised by features the facts do not hold, may still
        // speak of a silence the new order ended.
        let direction = |j: usize| {
            let feature = churn.features.get(j).map_or("unknown", String::as_str);
            (feature, churn.weights.get(j).is_some_and(|w| *w > 0.0))
        };
        let codes: Vec<usize> = codes
            .into_iter()
            .filter(|&j| {
                let (feature, high) = direction(j);
                since.orders == 0 || !crate::explain::speaks_of_no_order(feature, high)
            })
            .collect();
        let facts = crate::explain::Facts::of(self, c).with_orders(since.orders, since.spend);
        let explanations = codes
            .iter()
            .map(|&j| {
                let (feature, high) = direction(j);
                crate::explain::sentence(feature, high, &facts)
            })
            .collect();
        Some(LiveChurn {
            risk,
            tier: tier(risk),
            reasons: codes.iter().map(|&j| churn.reason_text(j)).collect(),
            explanations,
        })
    }

    /// Contact `c`'s order and e-mail state at the as-of time, rebuilt from its facts. Counts
    /// the facts do not hold are 0, and `orders_30d` is estimated from the 90-day count.
    fn order_state(&self, c: usize) -> ContactState {
        let fact = |name: &str| {
            FACTS
                .iter()
                .position(|f| *f == name)
                .and_then(|i| self.fact(i, c))
        };
        let flag = |name: &str| {
            FLAGS
                .iter()
                .position(|f| *f == name)
                .and_then(|i| self.flag(i, c))
                .unwrap_or(false)
        };
        let ago = |days: Option<f64>| days.map(|d| self.as_of - (d * DAY).round() as i64);
        let count = |name: &str| fact(name).map_or(0, |v| v.max(0.0).round() as u32);
        let mut s = ContactState::default();
        s.orders = count("orders");
        if s.orders > 0 {
            s.first_order = ago(fact("days_since_first_order"));
            s.last_order = ago(fact("days_since_last_order"));
        }
        s.spend = fact("spend").unwrap_or(0.0);
        s.lines = s.orders;
        s.orders_90d = count("orders_90d");
        s.orders_30d = match fact("days_since_last_order") {
            Some(d) if d < 30.0 => (s.orders_90d / 3).max(1),
            _ => 0,
        };
        s.opens_90d = count("opens_90d");
        s.clicks_90d = count("clicks_90d");
        s.delivered_90d = s.opens_90d;
        s.last_open = ago(fact("days_since_open"));
        s.last_click = ago(fact("days_since_click"));
        s.web_30d = count("web_events_30d");
        s.unsubscribed = flag("unsubscribed");
        s.bounced = flag("bounced");
        s.complained = flag("complained");
        s
    }
}

/// `s` with `since` counted as of `t`.
fn add(mut s: ContactState, since: &Since, t: i64) -> ContactState {
    if since.orders > 0 {
        s.orders += since.orders;
        s.lines += since.orders;
        s.orders_30d += since.orders;
        s.orders_90d += since.orders;
        s.spend += since.spend.max(0.0);
        s.first_order.get_or_insert(t);
        s.last_order = Some(t);
    }
    s.unsubscribed |= since.unsubscribed;
    s.bounced |= since.bounced;
    s.complained |= since.complained;
    s
}

/// The stored reasons moved by what changed between `x0` and `x1`: a reason whose feature
/// changed and no longer raises the risk goes, a changed feature that now raises it comes
/// first (strongest first), the other stored reasons keep their order.
///
/// The stored reasons were ranked on all features at training; the features the facts do
/// not hold are placeholders here (the same in `x0` and `x1`), so only the changed ones are
/// ranked again.
fn moved_reasons(
    churn: &ChurnModel,
    stored: impl Iterator<Item = usize>,
    x0: &[f64],
    x1: &[f64],
) -> Vec<usize> {
    let changed = |j: usize| x0.get(j) != x1.get(j);
    let raises = |j: usize| churn.contribution(x1, j) > crate::churn::REASON_FLOOR;
    let mut fresh: Vec<usize> = (0..x1.len()).filter(|&j| changed(j) && raises(j)).collect();
    fresh.sort_by(|&a, &b| {
        churn
            .contribution(x1, b)
            .total_cmp(&churn.contribution(x1, a))
    });
    let kept: Vec<usize> = stored
        .filter(|&j| !changed(j) && !fresh.contains(&j))
        .collect();
    fresh
        .into_iter()
        .chain(kept)
        .take(crate::snapshot::REASONS)
        .collect()
}

/// The probability whose calibrated linear score is `p`'s moved by `delta`.
fn shifted(churn: &ChurnModel, p: f64, delta: f64) -> f64 {
    // p = σ(a·linear + b), so moving `linear` by `delta` moves the logit by a·delta.
    let (a, _) = churn.calibration;
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    let z = (p / (1.0 - p)).ln() + a * delta;
    (1.0 / (1.0 + (-z).exp())).clamp(1e-6, 1.0 - 1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ChurnModel {
        ChurnModel {
            features: vec!["recency_days".into()],
            mean: vec![0.0],
            scale: vec![1.0],
            weights: vec![1.0],
            intercept: 0.0,
            calibration: (0.5, -1.0),
            horizon_days: 90.0,
            btyd: None,
        }
    }

    #[test]
    fn a_shift_of_the_linear_score_moves_the_calibrated_risk_the_same_way() {
        let m = model();
        for x in [-3.0, 0.0, 2.5] {
            let p = m.probability(&[x]);
            assert!(
                (shifted(&m, p, 0.0) - p).abs() < 1e-9,
                "no change, same risk"
            );
            let moved = shifted(&m, p, -1.5);
            assert!((moved - m.probability(&[x - 1.5])).abs() < 1e-9);
        }
    }

    #[test]
    fn only_the_changed_features_are_ranked_again() {
        let m = ChurnModel {
            features: vec!["a".into(), "b".into(), "c".into()],
            mean: vec![0.0; 3],
            scale: vec![1.0; 3],
            weights: vec![1.0, 1.0, -1.0],
            ..model()
        };
        let x0 = [2.0, 1.0, 0.0];
        // `a` changed and now lowers the risk: it goes, `b` stays.
        assert_eq!(
            moved_reasons(&m, [0, 1].into_iter(), &x0, &[-1.0, 1.0, 0.0]),
            [1]
        );
        // `c` changed and now raises it: it comes first, the stored ones keep their order.
        assert_eq!(
            moved_reasons(&m, [0, 1].into_iter(), &x0, &[2.0, 1.0, -3.0]),
            [2, 0, 1]
        );
        // A placeholder feature that did not change is not ranked, however high it looks.
        assert_eq!(
            moved_reasons(&m, [1].into_iter(), &[9.0, 1.0, 0.0], &[9.0, 1.0, 0.0]),
            [1]
        );
    }

    #[test]
    fn orders_since_count_as_placed_at_the_as_of_time() {
        let mut before = ContactState::default();
        before.first_order = Some(0);
        before.last_order = Some(100);
        before.orders = 2;
        before.spend = 30.0;
        let since = Since {
            orders: 1,
            spend: 12.0,
            ..Since::default()
        };
        let after = add(before, &since, 1_000);
        assert_eq!(
            (
                after.orders,
                after.orders_30d,
                after.last_order,
                after.first_order
            ),
            (3, 1, Some(1_000), Some(0))
        );
        assert!((after.spend - 42.0).abs() < 1e-9);
        let first = add(ContactState::default(), &since, 1_000);
        assert_eq!(
            (first.first_order, first.last_order),
            (Some(1_000), Some(1_000))
        );
        assert!(Since::default().is_empty());
        let bounce = Since {
            bounced: true,
            ..Since::default()
        };
        let after = add(before, &bounce, 1_000);
        assert!(!bounce.is_empty() && after.bounced && !after.unsubscribed && !after.complained);
    }
}
