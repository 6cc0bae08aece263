//! The Semi-NMF fit: alternating exact coordinate descent on codes and atoms.

use std::time::{Duration, Instant};

use faer::linalg::matmul::matmul;
use faer::traits::pulp::{Arch, Simd, WithSimd};
use faer::{Accum, MatMut, MatRef, Par};
use rand::seq::index::sample as sample_indices;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use rayon::prelude::*;

use crate::dictionary::default_block_rows;
use crate::kernels::{
    add_gram_rows, axpy, dot_f64, gram_cols, gram_times, inverse_diagonal, sweep,
};
use crate::svd::top_k_svd_generic;
use crate::{Dictionary, Error, Init, Real, Result, SamplesRef, ValidParams};

/// Namespace for the solver's entry point: `SemiNmf::params()` starts the builder.
///
/// The problem (paper notation `Z ≈ U V`; here sample-major, `X = Zᵀ`, `C = Vᵀ`, `D = Uᵀ`):
///
/// `min_{C, D} ½‖X − C D‖²_F + α‖C‖₁  s.t.  C ≥ 0,  ‖d_k‖₂ ≤ 1`
///
/// ```
/// use cox_snmf::{SamplesRef, SemiNmf};
/// // Two non-negative mixtures of two directions.
/// let data = [1.0f32, 0.0, 2.0, 0.0, 3.0, 0.0, 0.0, 2.0, 0.0, 1.0, 1.0, 1.0];
/// let x = SamplesRef::new(&data, 6, 2).unwrap();
/// let fit = SemiNmf::params().k(2).alpha(0.1).check().unwrap().fit(x, faer::Par::Seq).unwrap();
/// assert!(fit.codes.iter().all(|&c| c >= 0.0));
/// assert!(fit.dictionary.norms().iter().all(|&n| n <= 1.0 + 1e-6));
/// ```
pub struct SemiNmf;

impl SemiNmf {
    /// Starts a parameter builder with the reference defaults.
    pub fn params() -> crate::SemiNmfParams {
        crate::SemiNmfParams::default()
    }
}

/// A completed outer iteration of a fit, as reported to the observer of
/// [`ValidParams::fit_observed`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Which restart runs (0-based), of `restarts`.
    pub restart: usize,
    /// How many restarts the fit makes.
    pub restarts: usize,
    /// Completed outer iterations of this restart (1-based), of at most `max_iter`.
    pub iteration: usize,
    /// The iteration limit.
    pub max_iter: usize,
    /// The objective `½‖X − C D‖² + α‖C‖₁` after this iteration (the `objective_trace` entry).
    pub objective: f64,
    /// `(previous − objective) / objective`, the relative decrease the stopping test compares
    /// with `tol` (`None` at the first iteration).
    pub relative_change: Option<f64>,
    /// The stopping tolerance.
    pub tol: f64,
    /// Time since this restart started, initialisation included.
    pub elapsed: Duration,
}

/// Wall-clock time spent in each phase of a fit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Initialisation (the SVD for [`Init::Svd`]).
    pub init: Duration,
    /// The outer iterations.
    pub iterate: Duration,
}

/// The result of a fit.
#[derive(Debug, Clone)]
pub struct Fit<T> {
    /// The concepts, `K × B`.
    pub dictionary: Dictionary<T>,
    /// The activations, `M × K` sample-major, non-negative, fitted to the returned dictionary.
    pub codes: Vec<T>,
    /// Number of samples M.
    pub n_samples: usize,
    /// The objective `½‖X − C D‖² + α‖C‖₁` of the returned `(codes, dictionary)`.
    pub objective: f64,
    /// The objective after each completed outer iteration (code step then atom step), as
    /// scikit-learn's `error_` list.
    pub objective_trace: Vec<f64>,
    /// Seconds since the start of the fit (initialisation included) at which each
    /// `objective_trace` entry was reached: for objective-versus-time comparisons.
    pub trace_seconds: Vec<f64>,
    /// Completed outer iterations.
    pub iterations: usize,
    /// Whether the relative-decrease test stopped the fit before `max_iter`.
    pub converged: bool,
    /// How many times a dead atom was re-seeded from a data row.
    pub dead_resampled: usize,
    /// Which restart produced this fit (0-based).
    pub restart: usize,
    /// Time per phase (of the kept restart).
    pub timings: Timings,
}

impl<T: Real> Fit<T> {
    /// Number of concepts K.
    pub fn k(&self) -> usize {
        self.dictionary.k()
    }

    /// Fraction of activations that are exactly zero.
    pub fn sparsity(&self) -> f64 {
        let zeros = self
            .codes
            .iter()
            .filter(|&&c| c == T::from_f64(0.0))
            .count();
        zeros as f64 / self.codes.len().max(1) as f64
    }

    /// Concepts whose activation is zero on every sample.
    pub fn dead_concepts(&self) -> Vec<usize> {
        let k = self.k();
        (0..k)
            .filter(|&c| {
                self.codes
                    .chunks_exact(k)
                    .all(|row| row[c] == T::from_f64(0.0))
            })
            .collect()
    }
}

/// The fused pass accumulates `Xᵀ C` of a block sparsely when at most 1 code in this many is non-zero.
const SPARSE_DENSITY_DEN: usize = 4;

/// Fixed number of row groups of the fused pass. The sums of each group are reduced in order, so the
/// result is bit-identical whatever the number of threads.
const GROUPS: usize = 16;

impl ValidParams {
    /// Fits the dictionary to `x` (`M` samples × `B` features).
    ///
    /// `par` is the parallelism of the GEMMs and of the per-block work (`Par::Seq` or `Par::rayon(0)`);
    /// results do not depend on it.
    ///
    /// # Errors
    /// Empty data, a NaN/Inf value (named by sample and feature), `K > M`, or a non-finite objective.
    pub fn fit<T: Real>(&self, x: SamplesRef<'_, T>, par: Par) -> Result<Fit<T>> {
        T::dispatch_fit(self, x, par, &mut |_| {})
    }

    /// [`Self::fit`], calling `observer` after every completed outer iteration with the
    /// iteration, its objective and the relative change the stopping test looks at, so that a
    /// caller can show progress or log it. The observer only watches: the result is the same
    /// (bit for bit) as without it. This crate itself prints nothing.
    ///
    /// ```
    /// use cox_snmf::{SamplesRef, SemiNmf};
    /// let data: Vec<f32> = (0..60).map(|i| ((i * 7) % 11) as f32).collect();
    /// let x = SamplesRef::new(&data, 12, 5).unwrap();
    /// let mut seen = Vec::new();
    /// let p = SemiNmf::params().k(3).seed(1).check().unwrap();
    /// let fit = p.fit_observed(x, faer::Par::Seq, &mut |s| seen.push(s.objective)).unwrap();
    /// assert_eq!(seen, fit.objective_trace);
    /// ```
    ///
    /// # Errors
    /// As [`Self::fit`].
    pub fn fit_observed<T: Real>(
        &self,
        x: SamplesRef<'_, T>,
        par: Par,
        observer: &mut dyn FnMut(&Progress),
    ) -> Result<Fit<T>> {
        T::dispatch_fit(self, x, par, observer)
    }

    pub(crate) fn fit_generic<T: Real>(
        &self,
        x: SamplesRef<'_, T>,
        par: Par,
        observer: &mut dyn FnMut(&Progress),
    ) -> Result<Fit<T>> {
        let p = &self.0;
        let (m, b) = (x.n_samples(), x.n_features());
        if m == 0 || b == 0 {
            return Err(Error::Empty {
                n_samples: m,
                n_features: b,
            });
        }
        if p.k > m {
            return Err(Error::TooManyConcepts {
                k: p.k,
                n_samples: m,
            });
        }
        x.check_finite()?;
        // An all-zero matrix (rank 0) has no direction to learn: every concept would be an
        // arbitrary unit vector with zero activations. Saying so is clearer than a dictionary of
        // dead concepts.
        if x.squared_norm() == 0.0 {
            return Err(Error::ZeroData {
                n_samples: m,
                n_features: b,
            });
        }
        let mut best: Option<Fit<T>> = None;
        for r in 0..p.restarts {
            let seed = p.seed.wrapping_add(r as u64);
            let mut fit = fit_once(self, x, seed, par, r, observer)?;
            fit.restart = r;
            if best.as_ref().is_none_or(|f| fit.objective < f.objective) {
                best = Some(fit);
            }
        }
        Ok(best.expect("restarts >= 1 is checked"))
    }
}

/// Sums gathered by one fused pass over the data.
struct PassSums<T> {
    /// `Xᵀ C` after the code step (`B × K`, column-major: column k is `c[k*B..(k+1)*B]`).
    c: Vec<T>,
    /// `CᵀC` before and after the code step (`K × K`, row-major).
    a_old: Vec<f64>,
    a_new: Vec<f64>,
    /// `⟨C, X Dᵀ⟩` before and after the code step.
    inner_old: f64,
    inner_new: f64,
    /// `Σ C` before and after the code step.
    l1_old: f64,
    l1_new: f64,
}

impl<T: Real> PassSums<T> {
    fn zeros(b: usize, k: usize) -> Self {
        Self {
            c: vec![T::from_f64(0.0); b * k],
            a_old: vec![0.0; k * k],
            a_new: vec![0.0; k * k],
            inner_old: 0.0,
            inner_new: 0.0,
            l1_old: 0.0,
            l1_new: 0.0,
        }
    }

    fn add(&mut self, o: &Self) {
        self.c.iter_mut().zip(&o.c).for_each(|(a, &b)| *a += b);
        self.a_old
            .iter_mut()
            .zip(&o.a_old)
            .for_each(|(a, b)| *a += b);
        self.a_new
            .iter_mut()
            .zip(&o.a_new)
            .for_each(|(a, b)| *a += b);
        self.inner_old += o.inner_old;
        self.inner_new += o.inner_new;
        self.l1_old += o.l1_old;
        self.l1_new += o.l1_new;
    }
}

/// `½(‖X‖² − 2⟨C, XDᵀ⟩ + ⟨CᵀC, DDᵀ⟩) + α Σ C`, the objective without forming the residual.
fn objective(xx: f64, inner: f64, a: &[f64], g: &[f64], l1: f64, alpha: f64) -> f64 {
    let quad: f64 = a.iter().zip(g).map(|(x, y)| x * y).sum();
    let residual = xx - 2.0 * inner + quad;
    // Rounding can make a perfect fit's residual slightly negative; NaN/Inf must stay visible.
    let residual = if residual < 0.0 { 0.0 } else { residual };
    0.5 * residual + alpha * l1
}

/// The code step of a block of samples (row-major `rows × K` codes and `B_b = X_b U`): per sample,
/// coordinate-descent sweeps until one moves no code by more than `code_tol ×` its largest code.
/// A [`WithSimd`] operation so that its plain loops are compiled for the CPU at hand (AVX2 where
/// present); there is no FMA contraction, so the results are the same on every x86-64 CPU.
struct CodeSweeps<'a, T> {
    codes: &'a mut [T],
    b: &'a [T],
    g: &'a [T],
    k: usize,
    sweeps: usize,
    code_tol: T,
    alpha: T,
}

impl<T: Real> WithSimd for CodeSweeps<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let mut r = vec![T::from_f64(0.0); self.k];
        let inv = inverse_diagonal(self.g, self.k);
        for (z, bb) in self
            .codes
            .chunks_exact_mut(self.k)
            .zip(self.b.chunks_exact(self.k))
        {
            gram_times(z, self.g, &mut r);
            for _ in 0..self.sweeps {
                // Warm-started codes usually need one or two sweeps; a sweep that moves nothing is
                // a fixed point, so the remaining sweeps would not move either.
                let (delta, max_abs) = sweep(z, bb, self.g, &inv, &mut r, self.alpha);
                if delta == T::from_f64(0.0) || delta <= self.code_tol * max_abs {
                    break;
                }
            }
        }
    }
}

/// `C += X_bᵀ Z_b` for a block of samples (sample-major `x`, row-major codes, `C` column-major
/// `B × K`), one axpy per non-zero code. A [`WithSimd`] operation, as [`CodeSweeps`].
struct SparseXtC<'a, T> {
    c: &'a mut [T],
    x: &'a [T],
    codes: &'a [T],
    k: usize,
}

impl<T: Real> WithSimd for SparseXtC<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) {
        let b = self.c.len() / self.k;
        for (z, xi) in self.codes.chunks_exact(self.k).zip(self.x.chunks_exact(b)) {
            for (c, &zc) in z.iter().enumerate() {
                if zc != T::from_f64(0.0) {
                    axpy(&mut self.c[c * b..(c + 1) * b], zc, xi);
                }
            }
        }
    }
}

/// One fused pass: for each block of rows, `B_b = X_b U`, the code sweeps, and `C += X_bᵀ Z_b`,
/// while the block is still in cache.
#[allow(clippy::too_many_arguments)]
fn fused_pass<T: Real>(
    x: SamplesRef<'_, T>,
    u: MatRef<'_, T>,
    g: &[T],
    codes: &mut [T],
    bs: usize,
    sweeps: usize,
    code_tol: T,
    alpha: T,
    par: Par,
) -> PassSums<T> {
    let xt = x.as_features_by_samples();
    let (b, m) = (xt.nrows(), xt.ncols());
    let k = u.ncols();
    let n_blocks = m.div_ceil(bs);
    let group_rows = n_blocks.div_ceil(GROUPS) * bs;
    let arch = Arch::new();
    let group = |(gi, zg): (usize, &mut [T])| {
        let mut sums = PassSums::<T>::zeros(b, k);
        let g0 = gi * group_rows;
        let mut bmat = vec![T::from_f64(0.0); bs * k];
        for (bi, zb) in zg.chunks_mut(bs * k).enumerate() {
            let r0 = g0 + bi * bs;
            let mb = zb.len() / k;
            let xb = xt.subcols(r0, mb);
            let bm = &mut bmat[..mb * k];
            matmul(
                MatMut::from_row_major_slice_mut(bm, mb, k),
                Accum::Replace,
                xb.transpose(),
                u,
                T::from_f64(1.0),
                Par::Seq,
            );
            sums.inner_old += dot_f64(zb, bm);
            sums.l1_old += zb.iter().map(|v| v.to_f64()).sum::<f64>();
            add_gram_rows(zb, k, &mut sums.a_old);
            arch.dispatch(CodeSweeps {
                codes: &mut *zb,
                b: bm,
                g,
                k,
                sweeps,
                code_tol,
                alpha,
            });
            sums.inner_new += dot_f64(zb, bm);
            sums.l1_new += zb.iter().map(|v| v.to_f64()).sum::<f64>();
            add_gram_rows(zb, k, &mut sums.a_new);
            // Codes are mostly zero after the first iterations: then `X_bᵀ Z_b` is cheaper as one
            // axpy per non-zero code than as a dense product.
            let nnz = zb.iter().filter(|&&v| v != T::from_f64(0.0)).count();
            if nnz * SPARSE_DENSITY_DEN <= zb.len() {
                let xs = &x.as_slice()[r0 * b..(r0 + mb) * b];
                arch.dispatch(SparseXtC {
                    c: &mut sums.c,
                    x: xs,
                    codes: zb,
                    k,
                });
            } else {
                matmul(
                    MatMut::from_column_major_slice_mut(&mut sums.c, b, k),
                    Accum::Add,
                    xb,
                    MatRef::from_row_major_slice(zb, mb, k),
                    T::from_f64(1.0),
                    Par::Seq,
                );
            }
        }
        sums
    };
    let parts: Vec<PassSums<T>> = match par {
        Par::Seq => codes
            .chunks_mut(group_rows * k)
            .enumerate()
            .map(group)
            .collect(),
        _ => codes
            .par_chunks_mut(group_rows * k)
            .enumerate()
            .map(group)
            .collect(),
    };
    let mut total = PassSums::zeros(b, k);
    for part in &parts {
        total.add(part);
    }
    total
}

fn fit_once<T: Real>(
    params: &ValidParams,
    x: SamplesRef<'_, T>,
    seed: u64,
    par: Par,
    restart: usize,
    observer: &mut dyn FnMut(&Progress),
) -> Result<Fit<T>> {
    let p = &params.0;
    let (m, b, k) = (x.n_samples(), x.n_features(), p.k);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t0 = Instant::now();

    // u: the paper's U, B × K column-major (concept k = u[k*b..(k+1)*b]); codes: M × K row-major.
    let mut u = vec![T::from_f64(0.0); b * k];
    let mut codes = vec![T::from_f64(0.0); m * k];
    match p.init {
        Init::Svd(method) => {
            let svd = top_k_svd_generic(x, k, method, rng.random(), par)?;
            for c in 0..svd.s.len() {
                for i in 0..m {
                    codes[i * k + c] = svd.u[(i, c)];
                }
                for j in 0..b {
                    u[c * b + j] = svd.s[c] * svd.v[(j, c)];
                }
            }
        }
        Init::Samples => {
            for (c, i) in sample_indices(&mut rng, m, k).into_iter().enumerate() {
                u[c * b..(c + 1) * b].copy_from_slice(x.sample(i));
                project_unit_ball(&mut u[c * b..(c + 1) * b]);
            }
        }
        Init::Random => {
            for v in u.iter_mut() {
                let r: f64 = StandardNormal.sample(&mut rng);
                *v = T::from_f64(r);
            }
            for c in 0..k {
                let atom = &mut u[c * b..(c + 1) * b];
                let n = dot_f64(atom, atom).sqrt();
                atom.iter_mut()
                    .for_each(|v| *v = T::from_f64(v.to_f64() / n));
            }
        }
    }
    let init_time = t0.elapsed();
    let t1 = Instant::now();

    let xx = x.squared_norm();
    let alpha = T::from_f64(p.alpha);
    let bs = p.block_rows.unwrap_or_else(|| default_block_rows::<T>(b));
    let mut trace = Vec::new();
    let mut trace_seconds = Vec::new();
    let mut converged = false;
    let mut dead_resampled = 0;
    let mut iterations = 0;
    let final_objective;
    let mut last_atom_step_done = t0.elapsed();
    loop {
        let g64 = gram_cols(&u, b, k);
        let g: Vec<T> = g64.iter().map(|&v| T::from_f64(v)).collect();
        let umat = MatRef::from_column_major_slice(&u, b, k);
        let sums = fused_pass(
            x,
            umat,
            &g,
            &mut codes,
            bs,
            p.code_sweeps,
            T::from_f64(p.code_tol),
            alpha,
            par,
        );
        let f_code = objective(xx, sums.inner_new, &sums.a_new, &g64, sums.l1_new, p.alpha);
        if !f_code.is_finite() {
            return Err(Error::NonFiniteObjective {
                iteration: iterations,
            });
        }
        if iterations >= 1 {
            // The codes before this pass and the current atoms are the state after the previous
            // iteration's atom step: its objective is scikit-learn's error_ entry.
            let f = objective(xx, sums.inner_old, &sums.a_old, &g64, sums.l1_old, p.alpha);
            trace.push(f);
            // The iteration that reached `f` ended with the previous atom step, before this pass.
            trace_seconds.push(last_atom_step_done.as_secs_f64());
            let t = trace.len() - 1;
            // The first iterations start from the SVD's infeasible atoms: never stop there.
            if t >= 2 && trace[t - 1] - trace[t] < p.tol * trace[t] {
                converged = true;
            }
            observer(&Progress {
                restart,
                restarts: p.restarts,
                iteration: t + 1,
                max_iter: p.max_iter,
                objective: f,
                relative_change: (t >= 1).then(|| (trace[t - 1] - trace[t]) / trace[t]),
                tol: p.tol,
                elapsed: last_atom_step_done,
            });
        }
        if converged || iterations >= p.max_iter {
            final_objective = f_code;
            break;
        }
        dead_resampled += atom_step(
            &mut u,
            &mut codes,
            &sums,
            x,
            p.dead_atom_threshold,
            &mut rng,
        );
        iterations += 1;
        last_atom_step_done = t0.elapsed();
    }
    let iterate_time = t1.elapsed();
    Ok(Fit {
        dictionary: Dictionary::new(u, k, b)?,
        codes,
        n_samples: m,
        objective: final_objective,
        objective_trace: trace,
        trace_seconds,
        iterations,
        converged,
        dead_resampled,
        restart: 0,
        timings: Timings {
            init: init_time,
            iterate: iterate_time,
        },
    })
}

/// scikit-learn's `_update_dict`: one block-coordinate sweep over the atoms, each moved to the exact
/// minimiser given the others (`u_k += (c_k − U a_k) / A_kk`, using the atoms already updated) and
/// projected onto the unit ball. An atom used by no sample (`A_kk ≤ threshold`) is re-seeded from a
/// random data row plus 1% Gaussian noise and its codes set to zero. Returns the number re-seeded.
fn atom_step<T: Real>(
    u: &mut [T],
    codes: &mut [T],
    sums: &PassSums<T>,
    x: SamplesRef<'_, T>,
    threshold: f64,
    rng: &mut ChaCha8Rng,
) -> usize {
    let (m, b) = (x.n_samples(), x.n_features());
    let k = sums.c.len() / b;
    let a = &sums.a_new;
    let mut resampled = 0;
    let mut tmp = vec![0.0f64; b];
    for c in 0..k {
        let akk = a[c * k + c];
        if akk > threshold {
            let ccol = &sums.c[c * b..(c + 1) * b];
            for (j, t) in tmp.iter_mut().enumerate() {
                *t = ccol[j].to_f64();
            }
            for l in 0..k {
                let w = a[c * k + l];
                if w == 0.0 {
                    continue;
                }
                for (t, &ul) in tmp.iter_mut().zip(&u[l * b..(l + 1) * b]) {
                    *t -= w * ul.to_f64();
                }
            }
            for (uj, t) in u[c * b..(c + 1) * b].iter_mut().zip(&tmp) {
                *uj = T::from_f64(uj.to_f64() + t / akk);
            }
        } else {
            let row = x.sample(rng.random_range(0..m));
            let mean = row.iter().map(|v| v.to_f64()).sum::<f64>() / b as f64;
            let var = row.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / b as f64;
            let std = if var > 0.0 { var.sqrt() } else { 1.0 };
            let noise = Normal::new(0.0, 0.01 * std).expect("finite positive std");
            for (uj, &xj) in u[c * b..(c + 1) * b].iter_mut().zip(row) {
                *uj = T::from_f64(xj.to_f64() + noise.sample(rng));
            }
            for row in codes.chunks_exact_mut(k) {
                row[c] = T::from_f64(0.0);
            }
            resampled += 1;
        }
        project_unit_ball(&mut u[c * b..(c + 1) * b]);
    }
    resampled
}

/// `d ← d / max(‖d‖₂, 1)`.
fn project_unit_ball<T: Real>(d: &mut [T]) {
    let n = dot_f64(d, d).sqrt();
    if n > 1.0 {
        d.iter_mut().for_each(|v| *v = T::from_f64(v.to_f64() / n));
    }
}
