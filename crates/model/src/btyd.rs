//! A buy-till-you-die view of each buyer (BG/NBD, Fader, Hardie & Lee 2005): fitted once per
//! training run on the buyers' (repeat purchases, recency, age), it turns a purchase history
//! into P(still alive) and the expected purchase rate — features that a linear churn model
//! cannot build from recency and frequency alone.

use serde::{Deserialize, Serialize};

/// Weeks, the usual unit of these models.
const WEEK: f64 = 7.0 * 86_400.0;

/// BG/NBD parameters: purchase rates ~ Gamma(r, α); after each purchase a buyer drops out
/// with probability p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct BgNbd {
    /// Gamma shape of the purchase rate.
    pub r: f64,
    /// Gamma scale (weeks) of the purchase rate.
    pub alpha: f64,
    /// Beta parameter of the dropout probability.
    pub a: f64,
    /// Beta parameter of the dropout probability.
    pub b: f64,
}

/// One buyer as the model sees it: repeat purchases, weeks from first to last purchase, and
/// weeks from first purchase to now.
#[derive(Debug, Clone, Copy)]
pub struct Rfa {
    /// Repeat purchases (orders − 1).
    pub x: f64,
    /// Weeks from the first to the last purchase.
    pub t_x: f64,
    /// Weeks from the first purchase to the as-of time.
    pub age: f64,
}

impl Rfa {
    /// From purchase instants (UTC seconds) and an order count.
    pub fn new(first: i64, last: i64, orders: u32, t: i64) -> Self {
        Self {
            x: f64::from(orders.saturating_sub(1)),
            t_x: ((last - first) as f64 / WEEK).max(0.0),
            age: ((t - first) as f64 / WEEK).max(1e-3),
        }
    }
}

impl BgNbd {
    /// P(the buyer is still active).
    pub fn p_alive(&self, c: &Rfa) -> f64 {
        if c.x <= 0.0 {
            return 1.0;
        }
        let odds = (self.a / (self.b + c.x - 1.0))
            * ((self.alpha + c.age) / (self.alpha + c.t_x)).powf(self.r + c.x);
        (1.0 / (1.0 + odds)).clamp(1e-9, 1.0)
    }

    /// Posterior mean purchase rate per week, if active.
    pub fn rate(&self, c: &Rfa) -> f64 {
        (self.r + c.x) / (self.alpha + c.age)
    }

    /// P(at least one purchase within `weeks`), approximated as P(alive)·(1 − e^(−rate·weeks)).
    pub fn p_buy(&self, c: &Rfa, weeks: f64) -> f64 {
        (self.p_alive(c) * (1.0 - (-self.rate(c) * weeks).exp())).clamp(1e-9, 1.0 - 1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_alive_falls_with_silence() {
        let m = BgNbd {
            r: 0.24,
            alpha: 4.4,
            a: 0.79,
            b: 2.4,
        };
        let recent = Rfa {
            x: 3.0,
            t_x: 30.0,
            age: 32.0,
        };
        let silent = Rfa {
            x: 3.0,
            t_x: 5.0,
            age: 32.0,
        };
        assert!(m.p_alive(&recent) > m.p_alive(&silent));
        assert_eq!(
            m.p_alive(&Rfa {
                x: 0.0,
                t_x: 0.0,
                age: 10.0
            }),
            1.0
        );
    }
}
