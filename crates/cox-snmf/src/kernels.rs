//! The small dense kernels shared by the fit and the projection.

use crate::Real;

/// Sets `r = G z` for one sample (`g` is `K × K`, symmetric, row-major), skipping zero codes.
#[inline(always)]
pub(crate) fn gram_times<T: Real>(z: &[T], g: &[T], r: &mut [T]) {
    let k = z.len();
    let zero = T::from_f64(0.0);
    r.iter_mut().for_each(|v| *v = zero);
    for (c, &zc) in z.iter().enumerate() {
        if zc != zero {
            for (rj, &gj) in r.iter_mut().zip(&g[c * k..(c + 1) * k]) {
                *rj += zc * gj;
            }
        }
    }
}

/// One cyclic coordinate-descent sweep of the positive Lasso
/// `min_{z ≥ 0} ½‖x − Dᵀz‖² + α‖z‖₁` for one sample, given `b = D x`, the Gram matrix `g = D Dᵀ`
/// (`K × K`, symmetric, row-major), `inv` its inverted diagonal ([`inverse_diagonal`]) and `r = g z`
/// (kept up to date here, as scikit-learn's `enet_coordinate_descent_gram` keeps `H = Q w`).
/// Coordinate k becomes `max(0, z_k + (b_k − r_k − α) / g_kk)`, the exact minimiser along that
/// coordinate; coordinates with `g_kk ≤ 0` are left as they are (as scikit-learn does). A coordinate
/// that does not move costs O(1), so sweeps over sparse codes cost O(K) rather than O(K²).
///
/// Returns `(max |Δz_k|, max |z_k|)` for the convergence test.
#[inline(always)]
pub(crate) fn sweep<T: Real>(
    z: &mut [T],
    b: &[T],
    g: &[T],
    inv: &[T],
    r: &mut [T],
    alpha: T,
) -> (T, T) {
    let k = z.len();
    debug_assert_eq!(b.len(), k);
    debug_assert_eq!(g.len(), k * k);
    debug_assert_eq!(inv.len(), k);
    let zero = T::from_f64(0.0);
    let mut max_delta = zero;
    let mut max_abs = zero;
    for c in 0..k {
        let inv_c = inv[c];
        if inv_c == zero {
            max_abs = max_abs.max_val(z[c].abs_val());
            continue;
        }
        let old = z[c];
        // A multiply by the precomputed 1/g_kk: a divide here is the sweep's critical latency.
        let new = (old + (b[c] - r[c] - alpha) * inv_c).max_val(zero);
        if new != old {
            let delta = new - old;
            z[c] = new;
            for (rj, &gj) in r.iter_mut().zip(&g[c * k..(c + 1) * k]) {
                *rj += delta * gj;
            }
            max_delta = max_delta.max_val(delta.abs_val());
        }
        max_abs = max_abs.max_val(new);
    }
    (max_delta, max_abs)
}

/// `1 / g_kk` for each diagonal entry of the `K × K` row-major `g`, and 0 where `g_kk ≤ 0` (a
/// coordinate [`sweep`] leaves alone).
pub(crate) fn inverse_diagonal<T: Real>(g: &[T], k: usize) -> Vec<T> {
    let zero = T::from_f64(0.0);
    (0..k)
        .map(|c| {
            let gcc = g[c * k + c];
            if gcc > zero {
                T::from_f64(1.0) / gcc
            } else {
                zero
            }
        })
        .collect()
}

/// `y += a x`.
#[inline(always)]
pub(crate) fn axpy<T: Real>(y: &mut [T], a: T, x: &[T]) {
    for (yj, &xj) in y.iter_mut().zip(x) {
        *yj += a * xj;
    }
}

/// `Σ_i a_i b_i` accumulated in `f64`.
#[inline]
pub(crate) fn dot_f64<T: Real>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x.to_f64() * y.to_f64()).sum()
}

/// Adds `zᵀz` of a row-major `rows × k` block to `acc` (`k × k`, row-major, f64).
pub(crate) fn add_gram_rows<T: Real>(z: &[T], k: usize, acc: &mut [f64]) {
    for row in z.chunks_exact(k) {
        for p in 0..k {
            let zp = row[p].to_f64();
            if zp == 0.0 {
                continue;
            }
            let out = &mut acc[p * k..(p + 1) * k];
            for (o, zq) in out.iter_mut().zip(row) {
                *o += zp * zq.to_f64();
            }
        }
    }
}

/// Gram matrix `UᵀU` of a column-major `n × k` matrix given as a slice, in f64 (row-major `k × k`).
pub(crate) fn gram_cols<T: Real>(u: &[T], n: usize, k: usize) -> Vec<f64> {
    let mut g = vec![0.0; k * k];
    for p in 0..k {
        for q in p..k {
            let v = dot_f64(&u[p * n..(p + 1) * n], &u[q * n..(q + 1) * n]);
            g[p * k + q] = v;
            g[q * k + p] = v;
        }
    }
    g
}
