//! Fitting the BG/NBD buy-till-you-die model (Fader, Hardie & Lee 2005, "Counting your customers
//! the easy way") by maximum likelihood. The fitted parameters are applied by
//! `augur_model::BgNbd`; only training needs the likelihood.

use augur_model::{BgNbd, Rfa};

/// Maximum-likelihood fit (Nelder–Mead on log parameters); `None` with fewer than 20 buyers or
/// when the optimum is not a usable parameter set.
///
/// At most ~50,000 buyers (an even subsample) enter the likelihood: the four parameters are
/// pinned down long before that, and the fit stays well under a second on a million contacts.
pub fn fit(buyers: &[Rfa]) -> Option<BgNbd> {
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
        let m = from_log(p);
        let terms: Vec<f64> = counts.iter().map(|&x| repeat_term(&m, x)).collect();
        let ll: f64 = sample
            .iter()
            .zip(&count_of)
            .map(|(c, &i)| ln_likelihood_given(&m, c, terms[i]))
            .sum();
        if ll.is_finite() { -ll } else { f64::INFINITY }
    };
    let m = from_log(&nelder_mead(objective, [0.0, 1.0, 0.0, 0.0], 600));
    [m.r, m.alpha, m.a, m.b]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0)
        .then_some(m)
}

/// Parameters from their logarithms (the fit searches in log space, where all are unbounded).
fn from_log(p: &[f64; 4]) -> BgNbd {
    BgNbd {
        r: p[0].exp(),
        alpha: p[1].exp(),
        a: p[2].exp(),
        b: p[3].exp(),
    }
}

/// The part of the log-likelihood that depends on the buyer only through its repeat count
/// `x`: the same for every buyer with that count, and most of the cost (six ln Γ).
fn repeat_term(m: &BgNbd, x: f64) -> f64 {
    let BgNbd { r, alpha, a, b } = *m;
    ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x)
        - ln_gamma(b)
        - ln_gamma(a + b + x)
}

/// Log-likelihood of one buyer under `m`, given its [`repeat_term`] (`common`).
fn ln_likelihood_given(m: &BgNbd, c: &Rfa, common: f64) -> f64 {
    let BgNbd { r, alpha, a, b } = *m;
    let x = c.x;
    let survived = -(r + x) * (alpha + c.age).ln();
    if x > 0.0 {
        let dropped = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.t_x).ln();
        let top = survived.max(dropped);
        common + top + ((survived - top).exp() + (dropped - top).exp()).ln()
    } else {
        common + survived
    }
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7).
fn ln_gamma(x: f64) -> f64 {
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
}
