//! The statistics campaigns are judged by: the two-proportion test of an uplift over the
//! holdout, and the probability that each A/B variant is the best one.

use rand::SeedableRng;
use rand_distr::{Beta, Distribution, Normal};

/// Standard normal CDF (Abramowitz & Stegun 7.1.26, error below 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Difference of two proportions with a Wald 95 % interval and a pooled z-test: `(p1 − p0,
/// [low, high], two-sided p-value)`, `None` when a group is empty.
pub fn two_proportions(x1: u64, n1: u64, x0: u64, n0: u64) -> Option<(f64, [f64; 2], f64)> {
    if n1 == 0 || n0 == 0 {
        return None;
    }
    let (p1, p0) = (x1 as f64 / n1 as f64, x0 as f64 / n0 as f64);
    let d = p1 - p0;
    let se = (p1 * (1.0 - p1) / n1 as f64 + p0 * (1.0 - p0) / n0 as f64).sqrt();
    let pooled = (x1 + x0) as f64 / (n1 + n0) as f64;
    let se0 = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n0 as f64)).sqrt();
    let p = if se0 > 0.0 {
        2.0 * (1.0 - normal_cdf((d / se0).abs()))
    } else {
        1.0
    };
    Some((d, [d - 1.96 * se, d + 1.96 * se], p))
}

/// What is believed about one variant's metric after its test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Belief {
    /// A rate with `x` successes in `n` trials: Beta(1 + x, 1 + n − x), the posterior under a
    /// uniform prior.
    Rate {
        /// Successes.
        x: u64,
        /// Trials.
        n: u64,
    },
    /// A mean per recipient (revenue per e-mail): Normal(mean, standard error), the large-sample
    /// posterior under a flat prior.
    Mean {
        /// Sample mean.
        mean: f64,
        /// Its standard error (0 when every value was the same).
        std_error: f64,
    },
}

impl Belief {
    /// A mean from `n` values with this `sum` and `sum_squares`.
    pub fn mean(sum: f64, sum_squares: f64, n: u64) -> Self {
        if n == 0 {
            return Self::Mean {
                mean: 0.0,
                std_error: f64::INFINITY,
            };
        }
        let n_f = n as f64;
        let mean = sum / n_f;
        let variance = if n > 1 {
            ((sum_squares - n_f * mean * mean) / (n_f - 1.0)).max(0.0)
        } else {
            f64::INFINITY
        };
        Self::Mean {
            mean,
            std_error: (variance / n_f).sqrt(),
        }
    }

    /// The point estimate: the posterior mean of a rate, the sample mean of a mean.
    pub fn estimate(self) -> f64 {
        match self {
            Self::Rate { x, n } => (x as f64 + 1.0) / (n as f64 + 2.0),
            Self::Mean { mean, .. } => mean,
        }
    }

    /// A sampler of the belief; `None` when there is nothing to sample (an infinite error).
    fn sampler(self) -> Option<Sampler> {
        match self {
            Self::Rate { n: 0, .. } => None,
            Self::Rate { x, n } => {
                let beta = Beta::new(x as f64 + 1.0, (n - x.min(n)) as f64 + 1.0).ok()?;
                Some(Sampler::Beta(beta))
            }
            Self::Mean { mean, std_error } if std_error.is_finite() => {
                Some(Sampler::Normal(Normal::new(mean, std_error).ok()?))
            }
            Self::Mean { .. } => None,
        }
    }
}

enum Sampler {
    Beta(Beta<f64>),
    Normal(Normal<f64>),
}

impl Sampler {
    fn sample(&self, rng: &mut rand::rngs::StdRng) -> f64 {
        match self {
            Self::Beta(b) => b.sample(rng),
            Self::Normal(n) => n.sample(rng),
        }
    }
}

/// The probability that each variant has the highest true metric, by Monte Carlo over the
/// beliefs: `draws` joint draws from a generator seeded with `seed`, so that the same evidence
/// always gives the same answer. A draw in which several variants tie shares its credit among
/// them. A belief with nothing to sample (no recipients) gets probability 0 and the others
/// share it all; with fewer than two beliefs to sample, every probability is 0.
pub fn probability_to_be_best(beliefs: &[Belief], draws: usize, seed: u64) -> Vec<f64> {
    let samplers: Vec<Option<Sampler>> = beliefs.iter().map(|b| b.sampler()).collect();
    let mut credit = vec![0.0; beliefs.len()];
    if samplers.iter().flatten().count() < 2 || draws == 0 {
        return credit;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut values = vec![f64::NEG_INFINITY; beliefs.len()];
    for _ in 0..draws {
        for (v, s) in values.iter_mut().zip(&samplers) {
            *v = s.as_ref().map_or(f64::NEG_INFINITY, |s| s.sample(&mut rng));
        }
        let best = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let tied = values.iter().filter(|v| **v == best).count() as f64;
        for (c, v) in credit.iter_mut().zip(&values) {
            if *v == best {
                *c += 1.0 / tied;
            }
        }
    }
    credit.iter().map(|c| c / draws as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_proportion_test_matches_textbook_values() {
        // 120/1000 vs 100/1000: difference 0.02, z = 1.43 (pooled), p ≈ 0.153.
        let (d, ci, p) = two_proportions(120, 1000, 100, 1000).expect("test");
        assert!((d - 0.02).abs() < 1e-12);
        assert!((p - 0.153).abs() < 0.002, "p = {p}");
        assert!(ci[0] < 0.0 && ci[1] > 0.04);
        assert!(two_proportions(1, 0, 1, 10).is_none());
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
    }

    #[test]
    fn probability_to_be_best_matches_the_normal_approximation_and_splits_ties() {
        // 120/1000 vs 100/1000: P(p1 > p0) ≈ Φ(0.02 / √(0.12·0.88/1000 + 0.1·0.9/1000)) ≈ 0.92.
        let p = probability_to_be_best(
            &[
                Belief::Rate { x: 120, n: 1000 },
                Belief::Rate { x: 100, n: 1000 },
            ],
            20_000,
            7,
        );
        assert!((p[0] - 0.92).abs() < 0.015, "{p:?}");
        assert!((p[0] + p[1] - 1.0).abs() < 1e-9);
        // Same evidence, same answer.
        let again = probability_to_be_best(
            &[
                Belief::Rate { x: 120, n: 1000 },
                Belief::Rate { x: 100, n: 1000 },
            ],
            20_000,
            7,
        );
        assert_eq!(p, again);
        // Means that are all zero tie in every draw: no variant is better.
        let zero = Belief::mean(0.0, 0.0, 500);
        let p = probability_to_be_best(&[zero, zero], 1000, 1);
        assert_eq!(p, vec![0.5, 0.5]);
        // A variant with no recipients is never best; one alone is not a comparison.
        let none = Belief::mean(0.0, 0.0, 0);
        assert_eq!(
            probability_to_be_best(&[zero, none], 100, 1),
            vec![0.0, 0.0]
        );
    }
}
