//! Centred PCA through `cox_snmf::top_k_svd`.

use std::time::Instant;

use cox_snmf::{top_k_svd, Par, SamplesRef, SvdMethod};

use crate::error::check_data;
use crate::kernels::center;
use crate::{ConceptDictionary, Decomposed, Decomposition, Error, FitReport, Method, Result};

/// The reference's `pca` baseline, scikit-learn 1.5's `PCA(n_components=K)` (`docs/method.md` §3):
/// the data are centred on their column means, the concepts are the top-K principal axes (unit,
/// orthonormal rows of `Vᵀ` of the centred data), and the activations are the signed scores
/// `(x − mean) · conceptsᵀ`.
///
/// **Sign rule.** scikit-learn 1.5 applies `svd_flip(U, Vt, u_based_decision=False)` on every solver
/// path (`full`, `covariance_eigh`, `randomized`, `arpack`): the entry of largest magnitude of each
/// component (the first one on ties) is made positive. This type does the same.
///
/// **Solver.** `svd: None` mirrors scikit-learn's `svd_solver="auto"`: an exact thin SVD when
/// `max(M, B) ≤ 500`, when `B ≤ 1000` and `M ≥ 10·B` (scikit-learn's `covariance_eigh`, also exact)
/// or when `K ≥ 0.8·min(M, B)`; otherwise cox-snmf's default randomized SVD (`SvdMethod::default()`:
/// 40 oversamples, power iterations until every top-K triplet's residual ‖Xv − σu‖/σ ≤ 1e-4 or 20
/// of them; scikit-learn's `randomized_svd` uses 10 and 7 with LU normalisation, this QR), seeded by
/// `seed`.
///
/// ```
/// use cox_decomp::{Decomposition, Pca};
/// use cox_snmf::{Par, SamplesRef};
/// // Points on the line y = 2x: one component explains everything.
/// let data = [0.0f32, 0.0, 1.0, 2.0, 2.0, 4.0, 3.0, 6.0];
/// let out = Pca::new(1).fit(SamplesRef::new(&data, 4, 2).unwrap(), Par::Seq).unwrap();
/// let c = &out.dictionary.concepts;
/// assert!((c[0] - 1.0 / 5f32.sqrt()).abs() < 1e-6 && (c[1] - 2.0 / 5f32.sqrt()).abs() < 1e-6);
/// assert!((out.report.explained_variance_ratio.unwrap()[0] - 1.0).abs() < 1e-9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pca {
    /// Number of components K (at most `min(M, B)`).
    pub k: usize,
    /// Seed of the randomized SVD.
    pub seed: u64,
    /// The SVD method; `None` chooses as scikit-learn's `svd_solver="auto"`.
    pub svd: Option<SvdMethod>,
}

impl Pca {
    /// K components, seed 0, automatic solver.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            seed: 0,
            svd: None,
        }
    }

    /// The SVD method used for `M × B` data: [`Pca::svd`], or scikit-learn's `auto` rule.
    pub fn solver(&self, n_samples: usize, n_features: usize) -> SvdMethod {
        if let Some(s) = self.svd {
            return s;
        }
        let (m, b) = (n_samples, n_features);
        let exact = (b <= 1000 && m >= 10 * b)
            || m.max(b) <= 500
            || (self.k as f64) >= 0.8 * (m.min(b) as f64);
        if exact {
            SvdMethod::Exact
        } else {
            SvdMethod::default()
        }
    }
}

impl Decomposition for Pca {
    fn method(&self) -> Method {
        Method::Pca
    }

    fn k(&self) -> usize {
        self.k
    }

    fn fit(&self, x: SamplesRef<'_, f32>, par: Par) -> Result<Decomposed> {
        check_data(x, self.k)?;
        let (m, b, k) = (x.n_samples(), x.n_features(), self.k);
        if k > m.min(b) {
            return Err(Error::TooManyComponents {
                k,
                n_samples: m,
                n_features: b,
            });
        }
        let start = Instant::now();
        let (mean, xc, total_ss) = center(x);
        let svd = top_k_svd(
            SamplesRef::new(&xc, m, b)?,
            k,
            self.solver(m, b),
            self.seed,
            par,
        )?;
        drop(xc);
        // scikit-learn 1.5's svd_flip(u_based_decision=False): the largest-|·| entry of each
        // component (first on ties) is made positive.
        let mut concepts = vec![0.0f32; k * b];
        for (j, row) in concepts.chunks_exact_mut(b).enumerate() {
            let col = svd.v.col(j);
            let (mut best, mut best_abs) = (0usize, -1.0f32);
            for i in 0..b {
                if col[i].abs() > best_abs {
                    best_abs = col[i].abs();
                    best = i;
                }
            }
            let sign = if col[best] < 0.0 { -1.0 } else { 1.0 };
            for (i, r) in row.iter_mut().enumerate() {
                *r = sign * col[i];
            }
        }
        let denom = (m.max(2) - 1) as f64;
        let ev: Vec<f64> = svd.s.iter().map(|&s| (s as f64).powi(2) / denom).collect();
        let total_var = total_ss / denom;
        let ratio: Vec<f64> = ev
            .iter()
            .map(|&e| if total_var > 0.0 { e / total_var } else { 0.0 })
            .collect();
        let explained_ss: f64 = svd.s.iter().map(|&s| (s as f64).powi(2)).sum();
        let dictionary = ConceptDictionary {
            method: Method::Pca,
            k,
            n_features: b,
            concepts,
            mean: Some(mean.iter().map(|&v| v as f32).collect()),
            alpha: None,
        };
        let activations = dictionary.encode(x, par)?;
        Ok(Decomposed {
            dictionary,
            activations,
            report: FitReport {
                objective: Some((total_ss - explained_ss).max(0.0)),
                converged: true,
                fit_seconds: start.elapsed().as_secs_f64(),
                explained_variance: Some(ev),
                explained_variance_ratio: Some(ratio),
                ..FitReport::default()
            },
        })
    }
}
