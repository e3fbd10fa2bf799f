//! EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): the
//! closed-form item–item regression B = I − P·diag(1/diag(P)), P = (XᵀX + λI)⁻¹, over a binary
//! contact × product purchase matrix X restricted to the most-bought products. Strong for
//! products new to a contact, and small: one Gram matrix and one inverse.

use rayon::prelude::*;

/// Products in the regression (the most bought); its cost grows with their cube.
pub const EASE_PRODUCTS: usize = 1_000;
/// Item-to-item weights kept per product (the largest positive ones).
pub const EASE_NEIGHBORS: usize = 50;
/// L2 strength λ as a share of the mean diagonal of XᵀX (the mean number of buyers of a
/// product in the regression), so that it scales with the size of the history.
pub const LAMBDA_SHARE: f64 = 0.5;

/// Item-to-item weights from contacts' bought products: `baskets` lists each contact's distinct
/// bought products (product indexes below `n_products`), `buyers` counts each product's buyers.
/// Returns per product the largest positive weights toward other products, best first.
pub fn fit(baskets: &[Vec<u32>], n_products: usize, buyers: &[u32]) -> Vec<Vec<(u32, f32)>> {
    let mut ranked: Vec<u32> = (0..n_products as u32)
        .filter(|&p| buyers[p as usize] > 0)
        .collect();
    ranked.sort_by(|a, b| buyers[*b as usize].cmp(&buyers[*a as usize]).then(a.cmp(b)));
    ranked.truncate(EASE_PRODUCTS);
    let m = ranked.len();
    let mut out = vec![Vec::new(); n_products];
    if m < 2 {
        return out;
    }
    let mut slot = vec![u32::MAX; n_products];
    for (s, &p) in ranked.iter().enumerate() {
        slot[p as usize] = s as u32;
    }
    let mut gram = gram(baskets, &slot, m);
    let mean_diagonal = (0..m).map(|i| gram[i * m + i]).sum::<f64>() / m as f64;
    let lambda = (LAMBDA_SHARE * mean_diagonal).max(1.0);
    for i in 0..m {
        gram[i * m + i] += lambda;
    }
    invert_spd(&mut gram, m);
    let p = gram;
    // B[i][j] = −P[i][j] / P[j][j]: what buying i says about j.
    let rows: Vec<Vec<(u32, f32)>> = (0..m)
        .into_par_iter()
        .map(|i| {
            let mut row: Vec<(u32, f32)> = (0..m)
                .filter(|&j| j != i)
                .map(|j| (ranked[j], (-p[i * m + j] / p[j * m + j]) as f32))
                .filter(|(_, w)| *w > 0.0 && w.is_finite())
                .collect();
            row.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            row.truncate(EASE_NEIGHBORS);
            row
        })
        .collect();
    for (i, row) in rows.into_iter().enumerate() {
        out[ranked[i] as usize] = row;
    }
    out
}

/// XᵀX over the products with a slot, row-major m × m. One accumulator per thread: an m × m
/// matrix is megabytes, and a fold would zero one for every piece that rayon splits off.
fn gram(baskets: &[Vec<u32>], slot: &[u32], m: usize) -> Vec<f64> {
    let per_thread = baskets.len().div_ceil(rayon::current_num_threads()).max(1);
    baskets
        .par_chunks(per_thread)
        .map(|chunk| {
            chunk.iter().fold(vec![0f64; m * m], |mut g, basket| {
                let items: Vec<usize> = basket
                    .iter()
                    .filter_map(|p| slot.get(*p as usize).copied())
                    .filter(|s| *s != u32::MAX)
                    .map(|s| s as usize)
                    .collect();
                for &i in &items {
                    let row = &mut g[i * m..(i + 1) * m];
                    for &j in &items {
                        row[j] += 1.0;
                    }
                }
                g
            })
        })
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
            a
        })
        .unwrap_or_else(|| vec![0f64; m * m])
}

/// Pivots swept per pass over the matrix by [`invert_spd`]: their rows (the panel, `BLOCK × n`)
/// stay in cache while every other row is updated once for all of them.
const BLOCK: usize = 32;

/// Inverts a symmetric positive-definite matrix (row-major n × n) in place by Gauss–Jordan
/// elimination without pivoting (the sweep operator), which is stable for such matrices.
///
/// Sweeping pivots one at a time streams the whole matrix once per pivot, and at a thousand
/// products the matrix (8 MB) does not fit in cache. Sweeps compose, so a block K of pivots is
/// swept at once: first within its own rows, which then hold `[A_KK⁻¹ | A_KK⁻¹·A_KJ]`; then
/// every other row i becomes `A_iJ − A_iK·A_KK⁻¹·A_KJ` and, in K, `−A_iK·A_KK⁻¹`, that is,
/// its K entries zeroed and `A_iK` times the panel subtracted. Rows are updated in parallel.
pub fn invert_spd(a: &mut [f64], n: usize) {
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        sweep_panel(&mut a[start * n..end * n], n, start);
        let (before, rest) = a.split_at_mut(start * n);
        let (panel, after) = rest.split_at_mut((end - start) * n);
        let panel: &[f64] = panel;
        before
            .par_chunks_mut(n)
            .chain(after.par_chunks_mut(n))
            .for_each(|row| {
                let c: Vec<f64> = row[start..end].to_vec();
                row[start..end].fill(0.0);
                for (f, pivot_row) in c.iter().zip(panel.chunks_exact(n)) {
                    if *f != 0.0 {
                        for (x, p) in row.iter_mut().zip(pivot_row) {
                            *x -= f * p;
                        }
                    }
                }
            });
    }
}

/// Sweeps the pivots `start..start + rows` within their own rows (`panel`, row-major,
/// `rows × n`).
fn sweep_panel(panel: &mut [f64], n: usize, start: usize) {
    let rows = panel.len() / n;
    let mut pivot_row = vec![0.0; n];
    for r in 0..rows {
        let k = start + r;
        let inv = 1.0 / panel[r * n + k];
        panel[r * n + k] = 1.0;
        for v in &mut panel[r * n..(r + 1) * n] {
            *v *= inv;
        }
        pivot_row.copy_from_slice(&panel[r * n..(r + 1) * n]);
        for (i, row) in panel.chunks_exact_mut(n).enumerate() {
            let f = row[k];
            if i != r && f != 0.0 {
                row[k] = 0.0;
                for (x, p) in row.iter_mut().zip(&pivot_row) {
                    *x -= f * p;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_times_matrix_is_identity() {
        // Smaller than one block, and spanning several with a partial last one.
        for n in [5, 2 * BLOCK + 7] {
            inverse_times_matrix_is_identity_at(n);
        }
    }

    fn inverse_times_matrix_is_identity_at(n: usize) {
        // A = MᵀM + I is symmetric positive definite.
        let m: Vec<f64> = (0..n * n)
            .map(|i| ((i * 7 + 3) % 11) as f64 - 5.0)
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[k * n + i] * m[k * n + j]).sum::<f64>()
                    + f64::from(u8::from(i == j));
            }
        }
        let original = a.clone();
        invert_spd(&mut a, n);
        for i in 0..n {
            for j in 0..n {
                let v: f64 = (0..n).map(|k| original[i * n + k] * a[k * n + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-9, "({i},{j}) = {v}");
            }
        }
    }

    #[test]
    fn products_bought_together_predict_each_other() {
        // Products 0 and 1 always together, 2 and 3 together, 4 alone.
        let mut baskets = Vec::new();
        for _ in 0..30 {
            baskets.push(vec![0, 1]);
            baskets.push(vec![2, 3]);
            baskets.push(vec![4]);
        }
        let buyers = [30, 30, 30, 30, 30];
        let weights = fit(&baskets, 5, &buyers);
        assert_eq!(weights[0].first().map(|w| w.0), Some(1));
        assert_eq!(weights[2].first().map(|w| w.0), Some(3));
        assert!(weights[0].iter().all(|(q, _)| *q == 1), "{:?}", weights[0]);
        assert!(weights[4].is_empty(), "{:?}", weights[4]);
    }
}
