//! How well a dictionary reconstructs the data it explains (the error-versus-K curve of the paper's
//! Fig. 11, docs/method.md §5.5, whose exact definition the paper does not give).
//!
//! With `X` the `M × B` data (samples as rows), `X̂` its reconstruction and `x̄` the column mean of `X`:
//!
//! ```text
//! SSE = ‖X − X̂‖²_F                     relative error      = ‖X − X̂‖_F / ‖X‖_F
//! SST = Σ_i ‖x_i − x̄‖²                 explained variance  = 1 − SSE / SST
//! ```
//!
//! The reconstruction follows each method's convention ([`Reconstruct`]):
//! * Semi-NMF: `X̂ = C·D`, codes times atoms, no mean (`Linear { codes, mean: None }`);
//! * PCA: `X̂ = x̄_fit + S·D`, the scores times the axes plus the fitted mean (`Linear` with the mean);
//! * K-Means and Simple: each sample is replaced by its nearest concept in Euclidean distance
//!   (`NearestAtom`). Their activations `1/(1 + distance)` are similarities,
//!   not codes, so the hard assignment is the reconstruction; for K-Means with its own centroids SSE
//!   is scikit-learn's `inertia_`.
//!
//! The residual is never formed: rows are reconstructed one at a time into a length-`B` buffer and all
//! sums are accumulated in f64 in row order.

use serde::{Deserialize, Serialize};

use crate::check;
use crate::error::{MetricsError, Result};

/// How a method reconstructs a sample from the dictionary (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reconstruct<'a> {
    /// `x̂_i = mean + Σ_k codes[i][k] · atom_k`: Semi-NMF (activations, no mean) and PCA (scores and the
    /// fitted mean). `codes` is `samples × k` row-major; `mean` has `B` values.
    Linear {
        /// The codes, `samples × k`.
        codes: &'a [f32],
        /// The mean added back (PCA), or `None`.
        mean: Option<&'a [f32]>,
    },
    /// `x̂_i` = the atom nearest to `x_i` (K-Means, Simple).
    NearestAtom,
}

/// The result of [`reconstruction`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionReport {
    /// Samples `M`.
    pub samples: usize,
    /// Features `B`.
    pub features: usize,
    /// Concepts `k`.
    pub k: usize,
    /// `‖X − X̂‖²_F`.
    pub sse: f64,
    /// `‖X‖²_F`.
    pub sum_squares: f64,
    /// `Σ_i ‖x_i − x̄‖²`, the total sum of squares around the column mean.
    pub sst: f64,
    /// `‖X − X̂‖_F / ‖X‖_F`; `None` when `X` is all zero.
    pub relative_error: Option<f64>,
    /// `1 − SSE / SST`; `None` when every sample is the same (SST = 0). Negative when the
    /// reconstruction is worse than the column mean.
    pub explained_variance: Option<f64>,
}

/// The reconstruction error of `x` (`samples × features`, row-major) by the `k × features` row-major
/// `atoms` under the convention `how`.
///
/// # Errors
/// [`MetricsError::NoConcepts`] if `k == 0`; [`MetricsError::TooFew`] with no sample or no feature;
/// [`MetricsError::InputShape`] if `data`, `atoms`, `codes` or `mean` has the wrong length;
/// [`MetricsError::NonFiniteInput`] naming the input, row and column of a NaN or infinity.
///
/// ```
/// use cox_metrics::{reconstruction, Reconstruct};
/// // Two samples × two features, one atom e0 with codes 1 and 2: sample 1 is off by 1 in feature 1.
/// let x = [1.0, 0.0, 2.0, 1.0];
/// let atoms = [1.0, 0.0];
/// let r = reconstruction(&x, 2, 2, &atoms, 1, Reconstruct::Linear { codes: &[1.0, 2.0], mean: None })?;
/// assert_eq!((r.sse, r.sum_squares, r.sst), (1.0, 6.0, 1.0)); // x̄ = (1.5, 0.5)
/// assert_eq!(r.relative_error, Some((1.0f64 / 6.0).sqrt()));
/// assert_eq!(r.explained_variance, Some(0.0));
/// // The nearest-atom convention replaces both samples by e0.
/// let r = reconstruction(&x, 2, 2, &atoms, 1, Reconstruct::NearestAtom)?;
/// assert_eq!(r.sse, 0.0 + 2.0);
/// # Ok::<(), cox_metrics::MetricsError>(())
/// ```
pub fn reconstruction(
    x: &[f32],
    samples: usize,
    features: usize,
    atoms: &[f32],
    k: usize,
    how: Reconstruct<'_>,
) -> Result<ReconstructionReport> {
    const OP: &str = "reconstruction";
    if k == 0 {
        return Err(MetricsError::NoConcepts { op: OP });
    }
    check::at_least(OP, "samples", 1, samples)?;
    check::at_least(OP, "features", 1, features)?;
    check::shape(OP, "data", x, samples, features)?;
    check::shape(OP, "atoms", atoms, k, features)?;
    if let Reconstruct::Linear { codes, mean } = how {
        check::shape(OP, "codes", codes, samples, k)?;
        if let Some(mean) = mean {
            check::shape(OP, "mean", mean, 1, features)?;
        }
    }
    check::finite(OP, "data", x, features)?;
    check::finite(OP, "atoms", atoms, features)?;
    if let Reconstruct::Linear { codes, mean } = how {
        check::finite(OP, "codes", codes, k)?;
        if let Some(mean) = mean {
            check::finite(OP, "mean", mean, features)?;
        }
    }

    // The column mean, for SST.
    let mut col_mean = vec![0.0f64; features];
    for row in x.chunks_exact(features) {
        for (m, &v) in col_mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    col_mean.iter_mut().for_each(|m| *m /= samples as f64);

    let (mut sse, mut sum_squares, mut sst) = (0.0f64, 0.0f64, 0.0f64);
    let mut xhat = vec![0.0f64; features];
    for (i, row) in x.chunks_exact(features).enumerate() {
        for (&v, m) in row.iter().zip(&col_mean) {
            let v = v as f64;
            sum_squares += v * v;
            sst += (v - m) * (v - m);
        }
        match how {
            Reconstruct::Linear { codes, mean } => {
                match mean {
                    Some(mean) => xhat.iter_mut().zip(mean).for_each(|(h, &m)| *h = m as f64),
                    None => xhat.fill(0.0),
                }
                for (c, atom) in codes[i * k..(i + 1) * k]
                    .iter()
                    .zip(atoms.chunks_exact(features))
                {
                    let c = *c as f64;
                    if c != 0.0 {
                        xhat.iter_mut()
                            .zip(atom)
                            .for_each(|(h, &a)| *h += c * a as f64);
                    }
                }
                sse += row
                    .iter()
                    .zip(&xhat)
                    .map(|(&v, h)| (v as f64 - h) * (v as f64 - h))
                    .sum::<f64>();
            }
            Reconstruct::NearestAtom => {
                let nearest = atoms
                    .chunks_exact(features)
                    .map(|atom| {
                        row.iter()
                            .zip(atom)
                            .map(|(&v, &a)| (v as f64 - a as f64) * (v as f64 - a as f64))
                            .sum::<f64>()
                    })
                    .fold(f64::INFINITY, f64::min);
                sse += nearest;
            }
        }
    }
    Ok(ReconstructionReport {
        samples,
        features,
        k,
        sse,
        sum_squares,
        sst,
        relative_error: (sum_squares > 0.0).then(|| (sse / sum_squares).sqrt()),
        explained_variance: (sst > 0.0).then(|| 1.0 - sse / sst),
    })
}
