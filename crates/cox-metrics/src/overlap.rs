//! The overlap (disentanglement) metric of the paper's Table 2 (docs/method.md §5.3, the reference's
//! `compute_grounding_words_overlap`): how much the grounded words of different concepts repeat.
//!
//! ```text
//! O[i][j]  = |{ w ∈ T_i : w ∈ T_j }| / |T_i|          (O[i][·] = 0 when T_i is empty)
//! Overlap  = Σ_{i≠j} O[i][j] / (K (K − 1))
//! ```
//!
//! `T_i` is a list, not a set: a word repeated in `T_i` counts once per occurrence in the numerator and in
//! `|T_i|`, exactly as the reference's list comprehension does; membership in `T_j` is exact string
//! equality. `O` is not symmetric. Lower is better; the value lies in `[0, 1]`.

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};

/// The result of [`overlap`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverlapReport {
    /// Concepts.
    pub k: usize,
    /// The overlap metric: the mean of the off-diagonal entries of `matrix` (0 when `k == 1`).
    pub overlap: f64,
    /// `matrix[i][j] = O[i][j]`, the share of concept `i`'s words that also occur in concept `j`'s
    /// (the diagonal is 1 for a non-empty list, and is excluded from the metric).
    pub matrix: Vec<Vec<f64>>,
}

/// The overlap metric of the grounded words `words[k]` = `T_k` of `K = words.len()` concepts.
///
/// With a single concept there is no pair, and the reference divides 0 by 0 (NaN); here the overlap of
/// one concept is defined as 0 (nothing overlaps), so tables never carry a NaN.
///
/// # Errors
/// [`MetricsError::NoConcepts`] if `words` is empty.
///
/// ```
/// use cox_metrics::overlap;
/// // "dog" is shared by concepts 0 and 1; concept 2 has no words.
/// let words = [vec!["dog", "puppy"], vec!["dog", "cat", "kitten", "pet"], vec![]];
/// let r = overlap(&words)?;
/// assert_eq!(r.matrix[0], [1.0, 0.5, 0.0]);
/// assert_eq!(r.matrix[1], [0.25, 1.0, 0.0]);
/// assert_eq!(r.matrix[2], [0.0, 0.0, 0.0]);
/// assert_eq!(r.overlap, (0.5 + 0.25) / 6.0);
/// # Ok::<(), cox_metrics::MetricsError>(())
/// ```
pub fn overlap<W, S>(words: &[W]) -> Result<OverlapReport>
where
    W: AsRef<[S]>,
    S: AsRef<str>,
{
    let k = words.len();
    if k == 0 {
        return Err(MetricsError::NoConcepts { op: "overlap" });
    }
    let mut matrix = vec![vec![0.0; k]; k];
    for (i, row) in matrix.iter_mut().enumerate() {
        let words_i = words[i].as_ref();
        if words_i.is_empty() {
            continue;
        }
        for (j, o) in row.iter_mut().enumerate() {
            let words_j = words[j].as_ref();
            let shared = words_i
                .iter()
                .filter(|w| words_j.iter().any(|v| v.as_ref() == w.as_ref()))
                .count();
            *o = shared as f64 / words_i.len() as f64;
        }
    }
    let overlap = if k == 1 {
        0.0
    } else {
        let off_diagonal: f64 = matrix
            .iter()
            .enumerate()
            .flat_map(|(i, row)| row.iter().enumerate().filter(move |(j, _)| *j != i))
            .map(|(_, o)| o)
            .sum();
        off_diagonal / (k * (k - 1)) as f64
    };
    Ok(OverlapReport { k, overlap, matrix })
}
