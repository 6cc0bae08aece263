//! The most-activating samples of each concept (docs/method.md §4.2): pure selection over the activations.

use serde::{Deserialize, Serialize};

use crate::error::{Result, VisualError};

/// The number of most-activating samples per concept in the paper's figures and the reference CLI
/// (`num_most_activating_samples = 5`).
pub const DEFAULT_N_MAS: usize = 5;

/// One most-activating sample of a concept.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mas {
    /// The sample's row in the activation matrix.
    pub sample: usize,
    /// Its activation `v_k` for the concept.
    pub activation: f32,
}

/// For each of the `k` concepts, the `n` samples with the largest activation, in descending order of
/// activation: the reference's `argsort(V[:, k], descending)[:N_MAS]`.
///
/// `activations` is the `m × k` training activation matrix, row-major (sample-major), as
/// `cox_decomp` and `cox_store` produce it. Ties are broken by the lower sample index first (so the
/// result is fully determined; `-0.0` and `0.0` are equal). When `n > m` every sample is returned,
/// so each list has `min(n, m)` entries. Infinite activations are ranked like any other value.
///
/// # Errors
/// [`VisualError::NaN`] naming the first NaN (in row-major order): it cannot be ranked.
///
/// # Panics
/// If `activations.len() != m * k`.
///
/// ```
/// use cox_ground_visual::most_activating;
/// // Four samples, one concept: samples 1 and 3 tie at 0.5, so 1 comes first.
/// let mas = most_activating(&[0.2, 0.5, 0.1, 0.5], 4, 1, 3)?;
/// let order: Vec<usize> = mas[0].iter().map(|m| m.sample).collect();
/// assert_eq!(order, [1, 3, 0]);
/// assert_eq!(mas[0][0].activation, 0.5);
/// # Ok::<(), cox_ground_visual::VisualError>(())
/// ```
#[track_caller]
pub fn most_activating(activations: &[f32], m: usize, k: usize, n: usize) -> Result<Vec<Vec<Mas>>> {
    assert_eq!(
        Some(activations.len()),
        m.checked_mul(k),
        "most_activating: activations have {} values, expected {m} samples × {k} concepts",
        activations.len()
    );
    if let Some(i) = activations.iter().position(|a| a.is_nan()) {
        return Err(VisualError::NaN {
            sample: i / k,
            concept: i % k,
        });
    }
    let take = n.min(m);
    let mut out = Vec::with_capacity(k);
    let mut order: Vec<usize> = Vec::with_capacity(m);
    for concept in 0..k {
        let value = |s: usize| activations[s * k + concept];
        // Descending activation, then ascending sample: a total order, because NaN was refused.
        let cmp = |a: &usize, b: &usize| {
            value(*b)
                .partial_cmp(&value(*a))
                .expect("no NaN")
                .then(a.cmp(b))
        };
        order.clear();
        order.extend(0..m);
        if take > 0 && take < m {
            order.select_nth_unstable_by(take - 1, cmp);
        }
        order.truncate(take);
        order.sort_unstable_by(cmp);
        out.push(
            order
                .iter()
                .map(|&sample| Mas {
                    sample,
                    activation: value(sample),
                })
                .collect(),
        );
    }
    Ok(out)
}
