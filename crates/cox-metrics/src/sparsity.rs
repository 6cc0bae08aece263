//! Sparsity of concept activations (`samples × k`, row-major, any method's activations).
//!
//! With `a_i ∈ R^k` the activations of sample `i` and a threshold `eps ≥ 0` (a concept is *active* when
//! `|a_ik| > eps`; for non-negative Semi-NMF codes that is `a_ik > eps`, for signed PCA scores the
//! magnitude counts):
//!
//! ```text
//! L0_i        = |{ k : |a_ik| > eps }|                     mean L0 = (1/M) Σ_i L0_i
//! Hoyer_i     = (√k − ‖a_i‖₁ / ‖a_i‖₂) / (√k − 1)          ∈ [0, 1]: 1 = one active concept, 0 = all equal
//! zero share  = |{ (i, k) : |a_ik| ≤ eps }| / (M k)  = 1 − mean L0 / k
//! frequency_k = |{ i : |a_ik| > eps }| / M                 dead concepts: frequency_k = 0
//! mass_k      = Σ_i |a_ik| / Σ_{i,l} |a_il|
//! ```
//!
//! Hoyer's measure uses the raw values (no threshold). It is undefined for an all-zero sample
//! (`‖a_i‖₂ = 0`), which gets `None` and is left out of the mean; with `k = 1` every non-zero sample
//! is as sparse as it can be and gets 1.

use serde::{Deserialize, Serialize};

use crate::check;
use crate::error::{MetricsError, Result};

/// The result of [`sparsity`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SparsityReport {
    /// Samples `M`.
    pub samples: usize,
    /// Concepts `k`.
    pub k: usize,
    /// The activity threshold.
    pub eps: f32,
    /// Per sample: the number of active concepts.
    pub l0: Vec<usize>,
    /// The mean of `l0`.
    pub mean_l0: f64,
    /// Per sample: Hoyer's sparsity, `None` for an all-zero sample.
    pub hoyer: Vec<Option<f64>>,
    /// The mean of the defined `hoyer` values, `None` if every sample is all zero.
    pub mean_hoyer: Option<f64>,
    /// The share of entries that are not active (`|a| ≤ eps`).
    pub zero_fraction: f64,
    /// Per concept: the share of samples in which it is active.
    pub frequency: Vec<f64>,
    /// Concepts never active, in increasing order.
    pub dead: Vec<usize>,
    /// Per concept: its share of the total activation mass `Σ|a|` (all 0 when every activation is 0).
    pub mass_share: Vec<f64>,
}

/// Hoyer's sparsity `(√n − ‖x‖₁/‖x‖₂)/(√n − 1)` of one vector, in f64, clamped to `[0, 1]` against
/// rounding; `None` when `x` is all zero, 1 when `n = 1`.
///
/// # Panics
/// If `x` is empty.
///
/// ```
/// use cox_metrics::hoyer;
/// assert_eq!(hoyer(&[0.0, 3.0, 0.0, 0.0]), Some(1.0));
/// assert_eq!(hoyer(&[2.0, 2.0, 2.0, 2.0]), Some(0.0));
/// // ‖x‖₁/‖x‖₂ = 2/√2 = √2, so (2 − √2)/(2 − 1).
/// assert!((hoyer(&[1.0, 1.0, 0.0, 0.0]).unwrap() - (2.0 - 2f64.sqrt())).abs() < 1e-15);
/// assert_eq!(hoyer(&[0.0, 0.0]), None);
/// ```
#[track_caller]
pub fn hoyer(x: &[f32]) -> Option<f64> {
    assert!(!x.is_empty(), "hoyer: empty vector");
    let l1: f64 = x.iter().map(|&v| (v as f64).abs()).sum();
    let l2 = x
        .iter()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt();
    if l2 == 0.0 {
        return None;
    }
    if x.len() == 1 {
        return Some(1.0);
    }
    let sqrt_n = (x.len() as f64).sqrt();
    Some(((sqrt_n - l1 / l2) / (sqrt_n - 1.0)).clamp(0.0, 1.0))
}

/// Sparsity statistics of `activations` (`samples × k`, row-major) with activity threshold `eps`.
///
/// # Errors
/// [`MetricsError::NoConcepts`] if `k == 0`, [`MetricsError::ShapeMismatch`] if the length is not
/// `samples × k`, [`MetricsError::TooFew`] with no sample,
/// [`MetricsError::NonFinite`] naming the sample and concept of a NaN or infinity.
///
/// # Panics
/// If `eps` is negative or NaN.
///
/// ```
/// use cox_metrics::sparsity;
/// // Three samples × three concepts; concept 2 never fires.
/// let acts = [1.0, 0.0, 0.0,
///             2.0, 2.0, 0.0,
///             0.0, 0.0, 0.0];
/// let r = sparsity(&acts, 3, 3, 0.0)?;
/// assert_eq!(r.l0, [1, 2, 0]);
/// assert_eq!(r.mean_l0, 1.0);
/// assert_eq!(r.zero_fraction, 6.0 / 9.0);
/// assert_eq!(r.hoyer[0], Some(1.0));
/// assert_eq!(r.hoyer[2], None);
/// assert_eq!(r.dead, [2]);
/// assert_eq!(r.frequency, [2.0 / 3.0, 1.0 / 3.0, 0.0]);
/// assert_eq!(r.mass_share, [0.6, 0.4, 0.0]);
/// # Ok::<(), cox_metrics::MetricsError>(())
/// ```
#[track_caller]
pub fn sparsity(activations: &[f32], samples: usize, k: usize, eps: f32) -> Result<SparsityReport> {
    const OP: &str = "sparsity";
    assert!(eps >= 0.0, "sparsity: eps must be >= 0, got {eps}");
    if k == 0 {
        return Err(MetricsError::NoConcepts { op: OP });
    }
    if activations.len() != samples * k {
        return Err(MetricsError::ShapeMismatch {
            op: OP,
            len: activations.len(),
            samples,
            k,
        });
    }
    check::at_least(OP, "samples", 1, samples)?;
    if let Some(pos) = activations.iter().position(|a| !a.is_finite()) {
        return Err(MetricsError::NonFinite {
            op: OP,
            sample: pos / k,
            concept: pos % k,
        });
    }

    let mut l0 = Vec::with_capacity(samples);
    let mut hoyers = Vec::with_capacity(samples);
    let mut active = vec![0usize; k];
    let mut mass = vec![0.0f64; k];
    for row in activations.chunks_exact(k) {
        let mut count = 0;
        for (c, &a) in row.iter().enumerate() {
            if a.abs() > eps {
                count += 1;
                active[c] += 1;
            }
            mass[c] += (a as f64).abs();
        }
        l0.push(count);
        hoyers.push(hoyer(row));
    }
    let m = samples as f64;
    let total_active: usize = l0.iter().sum();
    let mean_l0 = total_active as f64 / m;
    let defined: Vec<f64> = hoyers.iter().flatten().copied().collect();
    let mean_hoyer =
        (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);
    let total_mass: f64 = mass.iter().sum();
    let mass_share = mass
        .iter()
        .map(|&x| {
            if total_mass > 0.0 {
                x / total_mass
            } else {
                0.0
            }
        })
        .collect();
    Ok(SparsityReport {
        samples,
        k,
        eps,
        l0,
        mean_l0,
        hoyer: hoyers,
        mean_hoyer,
        zero_fraction: (samples * k - total_active) as f64 / (samples * k) as f64,
        frequency: active.iter().map(|&n| n as f64 / m).collect(),
        dead: (0..k).filter(|&c| active[c] == 0).collect(),
        mass_share,
    })
}
