//! Zero-copy views of sample-major data.

use faer::MatRef;

use crate::{Error, Real, Result};

/// A borrowed `n_samples × n_features` matrix stored sample-major: the `n_features` values of each
/// sample are contiguous (row-major, the layout of a `[M, B]` safetensors tensor and of numpy's
/// default). In the paper's notation this is `Zᵀ`, with `Z ∈ R^{B×M}`.
///
/// Construction checks the shape; [`SamplesRef::check_finite`] checks the values.
///
/// ```
/// use cox_snmf::SamplesRef;
/// let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let x = SamplesRef::new(&data, 2, 3).unwrap();
/// assert_eq!(x.sample(1), &[4.0, 5.0, 6.0]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SamplesRef<'a, T> {
    data: &'a [T],
    n_samples: usize,
    n_features: usize,
}

impl<'a, T: Real> SamplesRef<'a, T> {
    /// Views `data` as `n_samples × n_features`, sample-major.
    pub fn new(data: &'a [T], n_samples: usize, n_features: usize) -> Result<Self> {
        let expected = n_samples.saturating_mul(n_features);
        if data.len() != expected {
            return Err(Error::ShapeMismatch {
                len: data.len(),
                n_samples,
                n_features,
                expected,
            });
        }
        Ok(Self {
            data,
            n_samples,
            n_features,
        })
    }

    /// Number of samples (M).
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Number of features (B, the hidden size).
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The raw sample-major buffer.
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }

    /// The values of sample `i`.
    ///
    /// # Panics
    /// If `i >= n_samples`.
    #[track_caller]
    pub fn sample(&self, i: usize) -> &'a [T] {
        &self.data[i * self.n_features..(i + 1) * self.n_features]
    }

    /// The transposed view `n_features × n_samples` (column-major), i.e. the paper's `Z`, without copying.
    pub fn as_features_by_samples(&self) -> MatRef<'a, T> {
        MatRef::from_column_major_slice(self.data, self.n_features, self.n_samples)
    }

    /// Returns an error naming the first NaN or infinite value, if any.
    pub fn check_finite(&self) -> Result<()> {
        if let Some(pos) = self.data.iter().position(|v| !v.is_finite_val()) {
            return Err(Error::NonFinite {
                sample: pos / self.n_features,
                feature: pos % self.n_features,
                value: self.data[pos].to_f64(),
            });
        }
        Ok(())
    }

    /// Squared Frobenius norm, accumulated in `f64`.
    pub fn squared_norm(&self) -> f64 {
        self.data
            .iter()
            .map(|&v| {
                let v = v.to_f64();
                v * v
            })
            .sum()
    }
}
