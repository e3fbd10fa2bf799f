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

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        sum += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

impl BgNbd {
    /// Log-likelihood of one buyer.
    pub fn ln_likelihood(&self, c: &Rfa) -> f64 {
        self.ln_likelihood_given(c, self.repeat_term(c.x))
    }

    /// The part of the log-likelihood that depends on the buyer only through its repeat count
    /// `x`: the same for every buyer with that count, and most of the cost (six ln Γ).
    fn repeat_term(&self, x: f64) -> f64 {
        let Self { r, alpha, a, b } = *self;
        ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x)
            - ln_gamma(b)
            - ln_gamma(a + b + x)
    }

    /// [`BgNbd::ln_likelihood`] with the buyer's [`BgNbd::repeat_term`] already computed.
    fn ln_likelihood_given(&self, c: &Rfa, common: f64) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let x = c.x;
        let survived = -(r + x) * (alpha + c.age).ln();
        if x > 0.0 {
            let dropped = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.t_x).ln();
            let m = survived.max(dropped);
            common + m + ((survived - m).exp() + (dropped - m).exp()).ln()
        } else {
            common + survived
        }
    }

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

    /// Maximum-likelihood fit (Nelder–Mead on log parameters); `None` with too few buyers.
    pub fn fit(buyers: &[Rfa]) -> Option<Self> {
        if buyers.len() < 20 {
            return None;
        }
        let step = buyers.len().div_ceil(50_000).max(1);
        let sample: Vec<Rfa> = buyers.iter().step_by(step).copied().collect();
        // Repeat counts are few and shared by many buyers: each evaluation computes the
        // count-only term once per distinct count.
        let mut counts: Vec<f64> = sample.iter().map(|c| c.x).collect();
        counts.sort_by(f64::total_cmp);
        counts.dedup_by(|a, b| a.total_cmp(b).is_eq());
        let count_of: Vec<usize> = sample
            .iter()
            .map(|c| counts.partition_point(|x| x.total_cmp(&c.x).is_lt()))
            .collect();
        let objective = |p: &[f64; 4]| -> f64 {
            let m = Self {
                r: p[0].exp(),
                alpha: p[1].exp(),
                a: p[2].exp(),
                b: p[3].exp(),
            };
            let terms: Vec<f64> = counts.iter().map(|&x| m.repeat_term(x)).collect();
            let ll: f64 = sample
                .iter()
                .zip(&count_of)
                .map(|(c, &i)| m.ln_likelihood_given(c, terms[i]))
                .sum();
            if ll.is_finite() { -ll } else { f64::INFINITY }
        };
        let best = nelder_mead(objective, [0.0, 1.0, 0.0, 0.0], 600);
        let m = Self {
            r: best[0].exp(),
            alpha: best[1].exp(),
            a: best[2].exp(),
            b: best[3].exp(),
        };
        [m.r, m.alpha, m.a, m.b]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
            .then_some(m)
    }
}

/// Minimizes `f` from `start` with the Nelder–Mead simplex method.
fn nelder_mead(f: impl Fn(&[f64; 4]) -> f64, start: [f64; 4], iterations: usize) -> [f64; 4] {
    let mut simplex: Vec<([f64; 4], f64)> = (0..5)
        .map(|i| {
            let mut p = start;
            if i > 0 {
                p[i - 1] += 0.5;
            }
            (p, f(&p))
        })
        .collect();
    for _ in 0..iterations {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let worst = simplex[4];
        let mut centroid = [0.0; 4];
        for (p, _) in &simplex[..4] {
            for k in 0..4 {
                centroid[k] += p[k] / 4.0;
            }
        }
        let along = |t: f64| {
            let mut p = [0.0; 4];
            for k in 0..4 {
                p[k] = centroid[k] + t * (worst.0[k] - centroid[k]);
            }
            p
        };
        let reflected = along(-1.0);
        let fr = f(&reflected);
        if fr < simplex[0].1 {
            let expanded = along(-2.0);
            let fe = f(&expanded);
            simplex[4] = if fe < fr {
                (expanded, fe)
            } else {
                (reflected, fr)
            };
        } else if fr < simplex[3].1 {
            simplex[4] = (reflected, fr);
        } else {
            let contracted = along(0.5);
            let fc = f(&contracted);
            if fc < worst.1 {
                simplex[4] = (contracted, fc);
            } else {
                let best = simplex[0].0;
                for (p, v) in simplex.iter_mut().skip(1) {
                    for k in 0..4 {
                        p[k] = best[k] + 0.5 * (p[k] - best[k]);
                    }
                    *v = f(p);
                }
            }
        }
        if (simplex[4].1 - simplex[0].1).abs() < 1e-9 * simplex[0].1.abs().max(1.0) {
            break;
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex[0].0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_reference_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-10);
    }

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
