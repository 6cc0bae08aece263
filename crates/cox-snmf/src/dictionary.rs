//! The learnt concept dictionary and the projection of new samples onto it.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::kernels::{gram_cols, gram_times, inverse_diagonal, sweep};
use crate::{EncodeParams, Error, Real, Result, SamplesRef};

/// A dictionary of `K` concept vectors `u_k ∈ R^B` (the rows of scikit-learn's `components_`, the
/// columns of the paper's `U`), stored concept-major: each concept's `B` values are contiguous, as in
/// a `[K, B]` safetensors tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Dictionary<T> {
    atoms: Vec<T>,
    k: usize,
    n_features: usize,
}

impl<T: Real> Dictionary<T> {
    /// Wraps `K × B` concept-major values.
    pub fn new(atoms: Vec<T>, k: usize, n_features: usize) -> Result<Self> {
        if atoms.len() != k * n_features {
            return Err(Error::ShapeMismatch {
                len: atoms.len(),
                n_samples: k,
                n_features,
                expected: k * n_features,
            });
        }
        if k == 0 {
            return Err(Error::ZeroConcepts);
        }
        SamplesRef::new(&atoms, k, n_features)?.check_finite()?;
        Ok(Self {
            atoms,
            k,
            n_features,
        })
    }

    /// Number of concepts K.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of features B.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Concept `k` (length B).
    ///
    /// # Panics
    /// If `k >= self.k()`.
    #[track_caller]
    pub fn atom(&self, k: usize) -> &[T] {
        &self.atoms[k * self.n_features..(k + 1) * self.n_features]
    }

    /// All concepts, concept-major (`K × B`).
    pub fn as_slice(&self) -> &[T] {
        &self.atoms
    }

    /// Consumes the dictionary, returning the concept-major buffer.
    pub fn into_vec(self) -> Vec<T> {
        self.atoms
    }

    /// The paper's `U`: a `B × K` column-major view (no copy).
    pub fn as_features_by_concepts(&self) -> MatRef<'_, T> {
        MatRef::from_column_major_slice(&self.atoms, self.n_features, self.k)
    }

    /// Euclidean norm of each concept.
    pub fn norms(&self) -> Vec<f64> {
        self.atoms
            .chunks_exact(self.n_features)
            .map(|a| a.iter().map(|v| v.to_f64().powi(2)).sum::<f64>().sqrt())
            .collect()
    }

    /// The Gram matrix `UᵀU` (`K × K`, row-major), in f64.
    pub fn gram(&self) -> Vec<f64> {
        gram_cols(&self.atoms, self.n_features, self.k)
    }

    /// Projects samples onto the dictionary: for each sample `x`, the positive Lasso code
    /// `v(x) = argmin_{v ≥ 0} ½‖x − U v‖² + α‖v‖₁` (the paper's local interpretation; scikit-learn's
    /// `transform` with `lasso_cd`, `positive_code=True`), by cyclic coordinate descent from zero.
    /// Each sample is solved independently, so the result does not depend on the sample order.
    ///
    /// Returns `n_samples × K` codes, sample-major.
    ///
    /// ```
    /// use cox_snmf::{Dictionary, EncodeParams, SamplesRef};
    /// // Two orthonormal concepts in R^3.
    /// let dict = Dictionary::new(vec![1.0f64, 0.0, 0.0, 0.0, 1.0, 0.0], 2, 3).unwrap();
    /// let x = [3.0f64, -2.0, 5.0];
    /// let codes = dict.encode(SamplesRef::new(&x, 1, 3).unwrap(), &EncodeParams::with_alpha(1.0), faer::Par::Seq).unwrap();
    /// // Soft-thresholded and clamped at zero: max(3 − 1, 0) and max(−2 − 1, 0).
    /// assert!((codes[0] - 2.0).abs() < 1e-12 && codes[1] == 0.0);
    /// ```
    pub fn encode(&self, x: SamplesRef<'_, T>, params: &EncodeParams, par: Par) -> Result<Vec<T>> {
        T::dispatch_encode(self, x, params, par)
    }

    pub(crate) fn encode_generic(
        &self,
        x: SamplesRef<'_, T>,
        params: &EncodeParams,
        par: Par,
    ) -> Result<Vec<T>> {
        if x.n_features() != self.n_features {
            return Err(Error::FeatureMismatch {
                dict: self.n_features,
                data: x.n_features(),
            });
        }
        if !(params.alpha.is_finite() && params.alpha >= 0.0) {
            return Err(Error::InvalidParam {
                name: "alpha",
                value: params.alpha.to_string(),
                reason: "must be finite and >= 0",
            });
        }
        x.check_finite()?;
        let k = self.k;
        let n = x.n_samples();
        let mut codes = vec![T::from_f64(0.0); n * k];
        if n == 0 {
            return Ok(codes);
        }
        let g: Vec<T> = self.gram().into_iter().map(T::from_f64).collect();
        let inv = inverse_diagonal(&g, self.k);
        let alpha = T::from_f64(params.alpha);
        let tol = T::from_f64(params.tol);
        let u = self.as_features_by_concepts();
        let xt = x.as_features_by_samples();
        let bs = default_block_rows::<T>(self.n_features);
        let work = |(bi, zb): (usize, &mut [T])| {
            let r0 = bi * bs;
            let mb = zb.len() / k;
            let mut bmat = vec![T::from_f64(0.0); mb * k];
            matmul(
                MatMut::from_row_major_slice_mut(&mut bmat, mb, k),
                Accum::Replace,
                xt.subcols(r0, mb).transpose(),
                u,
                T::from_f64(1.0),
                Par::Seq,
            );
            let mut r = vec![T::from_f64(0.0); k];
            for (z, b) in zb.chunks_exact_mut(k).zip(bmat.chunks_exact(k)) {
                for sweep_no in 0..params.max_sweeps {
                    // Refresh r = G z now and then so that rounding in its updates cannot build up.
                    if sweep_no % 64 == 0 {
                        gram_times(z, &g, &mut r);
                    }
                    let (delta, max_abs) = sweep(z, b, &g, &inv, &mut r, alpha);
                    if delta <= tol * max_abs || max_abs == T::from_f64(0.0) {
                        break;
                    }
                }
            }
        };
        match par {
            Par::Seq => codes.chunks_mut(bs * k).enumerate().for_each(work),
            _ => codes.par_chunks_mut(bs * k).enumerate().for_each(work),
        }
        Ok(codes)
    }
}

/// Rows per block so that a block of samples (`rows × B` values) stays near 512 KiB, in cache
/// between the two products of the fused pass.
pub(crate) fn default_block_rows<T>(n_features: usize) -> usize {
    let bytes = std::mem::size_of::<T>() * n_features.max(1);
    ((512 * 1024) / bytes).clamp(16, 4096)
}
