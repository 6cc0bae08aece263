//! Top-K singular value decomposition of the data matrix, with scikit-learn's sign convention.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::{Error, Real, Result, SamplesRef, SvdMethod};

/// The `k` leading singular triplets of an `M × B` matrix `X ≈ U·diag(S)·Vᵀ`.
#[derive(Debug, Clone)]
pub struct TopSvd<T> {
    /// Left singular vectors, `M × k`.
    pub u: Mat<T>,
    /// Singular values, non-increasing.
    pub s: Vec<T>,
    /// Right singular vectors, `B × k`.
    pub v: Mat<T>,
}

/// Computes the top-`k` SVD of `x` (samples × features) and applies scikit-learn's `svd_flip`
/// (`u_based_decision=True`): the entry of largest magnitude in each column of `U` is made positive,
/// flipping the matching column of `V`.
///
/// `k` is clamped to `min(M, B)`. The randomized method draws its test matrix from `seed`.
///
/// ```
/// use cox_snmf::{top_k_svd, SamplesRef, SvdMethod};
/// // A rank-one matrix: x = a bᵀ with ‖a‖ = ‖b‖ = 1 scaled by 3.
/// let a = [0.6f64, 0.8];
/// let b = [1.0f64, 0.0, 0.0];
/// let data: Vec<f64> = a.iter().flat_map(|ai| b.iter().map(move |bj| 3.0 * ai * bj)).collect();
/// let svd = top_k_svd(SamplesRef::new(&data, 2, 3).unwrap(), 1, SvdMethod::Exact, 0, faer::Par::Seq).unwrap();
/// assert!((svd.s[0] - 3.0).abs() < 1e-12);
/// assert!((svd.u[(1, 0)] - 0.8).abs() < 1e-12);
/// ```
pub fn top_k_svd<T: Real>(
    x: SamplesRef<'_, T>,
    k: usize,
    method: SvdMethod,
    seed: u64,
    par: Par,
) -> Result<TopSvd<T>> {
    T::dispatch_svd(x, k, method, seed, par)
}

pub(crate) fn top_k_svd_generic<T: Real>(
    x: SamplesRef<'_, T>,
    k: usize,
    method: SvdMethod,
    seed: u64,
    par: Par,
) -> Result<TopSvd<T>> {
    let (m, b) = (x.n_samples(), x.n_features());
    let k = k.min(m).min(b);
    // xt is B × M (column-major view of the sample-major buffer); X = xtᵀ.
    let xt = x.as_features_by_samples();
    let mut out = match method {
        SvdMethod::Exact => exact(xt, k)?,
        SvdMethod::Randomized {
            oversample,
            power_iters,
            tol,
        } => randomized(xt, k, oversample, power_iters, tol, seed, par)?,
    };
    svd_flip(&mut out);
    Ok(out)
}

fn exact<T: Real>(xt: MatRef<'_, T>, k: usize) -> Result<TopSvd<T>> {
    // xt = Ua S Vaᵀ, so X = xtᵀ = Va S Uaᵀ: X's left vectors are Va, its right vectors Ua.
    let svd = xt.thin_svd().map_err(|_| Error::SvdFailed)?;
    let s = svd.S().column_vector();
    Ok(TopSvd {
        u: svd.V().get(.., ..k).to_owned(),
        s: (0..k).map(|i| s[i]).collect(),
        v: svd.U().get(.., ..k).to_owned(),
    })
}

fn randomized<T: Real>(
    xt: MatRef<'_, T>,
    k: usize,
    oversample: usize,
    power_iters: usize,
    tol: f64,
    seed: u64,
    par: Par,
) -> Result<TopSvd<T>> {
    let (b, m) = (xt.nrows(), xt.ncols());
    let l = (k + oversample).min(m).min(b);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let omega = Mat::<T>::from_fn(b, l, |_, _| {
        let v: f64 = StandardNormal.sample(&mut rng);
        T::from_f64(v)
    });
    // Range of X: Q = orth(X Ω). Each power iteration: W = Xᵀ Q = Uw S Vwᵀ gives the Ritz triplets
    // (u = Q Vw, σ = S, v = Uw); then Y = X Uw (columns X v) and Q ← orth(Y). As Xᵀ u = σ v holds
    // exactly, ‖X v − σ u‖ = ‖(I − QQᵀ) Y_i‖ is the whole residual of triplet i: once it is at most
    // tol·σ_i for the top k, the current triplets are returned.
    let y = x_times(xt, omega.as_ref(), par);
    let mut q = y.qr().compute_thin_Q();
    let mut it = 0;
    let svd = loop {
        let w = xt_times(xt, q.as_ref(), par);
        let svd = w.thin_svd().map_err(|_| Error::SvdFailed)?;
        if it == power_iters {
            break svd;
        }
        it += 1;
        let y = x_times(xt, svd.U(), par);
        if tol > 0.0 && worst_residual(q.as_ref(), y.as_ref(), svd.S().column_vector(), k) <= tol {
            break svd;
        }
        q = y.qr().compute_thin_Q();
    };
    let mut u = Mat::<T>::zeros(m, k);
    matmul(
        u.as_mut(),
        Accum::Replace,
        q.as_ref(),
        svd.V().get(.., ..k),
        T::one(),
        par,
    );
    let s = svd.S().column_vector();
    Ok(TopSvd {
        u,
        s: (0..k).map(|i| s[i]).collect(),
        v: svd.U().get(.., ..k).to_owned(),
    })
}

/// `max_{i<k} ‖(I − QQᵀ) y_i‖ / σ_i` (`Q` orthonormal `M × l`, `Y` `M × l`), in f64 sums.
fn worst_residual<T: Real>(
    q: MatRef<'_, T>,
    y: MatRef<'_, T>,
    s: faer::ColRef<'_, T>,
    k: usize,
) -> f64 {
    let (q, y) = (q, y.subcols(0, k));
    let mut r = y.to_owned();
    let mut qty = Mat::<T>::zeros(q.ncols(), k);
    matmul(
        qty.as_mut(),
        Accum::Replace,
        q.transpose(),
        y,
        T::one(),
        Par::Seq,
    );
    matmul(r.as_mut(), Accum::Add, q, qty.as_ref(), -T::one(), Par::Seq);
    (0..k)
        .map(|i| {
            let norm = r
                .col(i)
                .iter()
                .map(|v| v.to_f64().powi(2))
                .sum::<f64>()
                .sqrt();
            let sigma = s[i].to_f64();
            if sigma > 0.0 {
                norm / sigma
            } else if norm > 0.0 {
                f64::INFINITY
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max)
}

/// Rows per block of the products below (as in the fused pass: a block of X stays in cache).
fn block_rows<T>(b: usize) -> usize {
    crate::dictionary::default_block_rows::<T>(b)
}

/// `X A` for `X = xtᵀ` (`M × B`) and `A` (`B × l`), by blocks of rows of X in parallel (faer's
/// threaded product is slow for these skinny shapes).
fn x_times<T: Real>(xt: MatRef<'_, T>, a: MatRef<'_, T>, par: Par) -> Mat<T> {
    let (m, l) = (xt.ncols(), a.ncols());
    let bs = block_rows::<T>(xt.nrows());
    let block = |r0: usize| {
        let mb = bs.min(m - r0);
        let mut out = Mat::<T>::zeros(mb, l);
        matmul(
            out.as_mut(),
            Accum::Replace,
            xt.subcols(r0, mb).transpose(),
            a,
            T::one(),
            Par::Seq,
        );
        (r0, out)
    };
    let starts: Vec<usize> = (0..m).step_by(bs).collect();
    let parts: Vec<(usize, Mat<T>)> = match par {
        Par::Seq => starts.into_iter().map(block).collect(),
        _ => starts.into_par_iter().map(block).collect(),
    };
    let mut y = Mat::<T>::zeros(m, l);
    for (r0, part) in parts {
        y.as_mut()
            .subrows_mut(r0, part.nrows())
            .copy_from(part.as_ref());
    }
    y
}

/// `Xᵀ Q` for `X = xtᵀ` (`M × B`) and `Q` (`M × l`): partial sums over 16 fixed groups of rows,
/// added in order, so the result does not depend on the thread count.
fn xt_times<T: Real>(xt: MatRef<'_, T>, q: MatRef<'_, T>, par: Par) -> Mat<T> {
    let (b, m, l) = (xt.nrows(), xt.ncols(), q.ncols());
    let group_rows = m.div_ceil(16).max(1);
    let group = |r0: usize| {
        let mb = group_rows.min(m - r0);
        let mut out = Mat::<T>::zeros(b, l);
        matmul(
            out.as_mut(),
            Accum::Replace,
            xt.subcols(r0, mb),
            q.subrows(r0, mb),
            T::one(),
            Par::Seq,
        );
        out
    };
    let starts: Vec<usize> = (0..m).step_by(group_rows).collect();
    let parts: Vec<Mat<T>> = match par {
        Par::Seq => starts.into_iter().map(group).collect(),
        _ => starts.into_par_iter().map(group).collect(),
    };
    let mut w = Mat::<T>::zeros(b, l);
    for part in parts {
        w += part;
    }
    w
}

/// scikit-learn's `svd_flip(u, v, u_based_decision=True)`: for each component the entry of `u`'s
/// column with the largest absolute value (first one on ties) is made positive.
fn svd_flip<T: Real>(svd: &mut TopSvd<T>) {
    for j in 0..svd.u.ncols() {
        let col = svd.u.col(j);
        let mut best = 0usize;
        let mut best_abs = T::zero();
        for i in 0..col.nrows() {
            let a = col[i].abs_val();
            if a > best_abs {
                best_abs = a;
                best = i;
            }
        }
        if col[best] < T::zero() {
            for i in 0..svd.u.nrows() {
                svd.u[(i, j)] = -svd.u[(i, j)];
            }
            for i in 0..svd.v.nrows() {
                svd.v[(i, j)] = -svd.v[(i, j)];
            }
        }
    }
}
