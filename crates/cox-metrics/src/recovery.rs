//! Ground-truth concept recovery: for each known factor value, the best single concept's ROC-AUC.
//!
//! For one concept with activations `s_1..s_N` and a factor value with positive set `P` (`n+` samples) and
//! negative set `Q` (`n-` samples), the AUC is the Mann–Whitney statistic
//!
//! ```text
//! AUC = 1/(n+ n-) · Σ_{i∈P} Σ_{j∈Q} ( 1[s_i > s_j] + ½·1[s_i = s_j] ) = (R+ − n+(n+ + 1)/2) / (n+ n-)
//! ```
//!
//! where `R+` is the sum of the positives' ranks (1-based, tied scores given their average rank). It is
//! computed exactly from ranks in `O(N log N)` per concept. The recovery AUC of a dictionary is the mean,
//! over factor values with at least one positive and one negative sample, of the best concept's AUC.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};

/// How well the best concept detects one factor value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorRecovery {
    /// The factor value, e.g. `colour=red`.
    pub factor: String,
    /// Samples carrying it.
    pub positives: usize,
    /// Samples not carrying it.
    pub negatives: usize,
    /// The concept with the highest AUC (the lowest index among ties).
    pub best_concept: usize,
    /// That concept's AUC.
    pub auc: f64,
}

/// The factor value one concept detects best.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConceptMatch {
    /// The concept index.
    pub concept: usize,
    /// The evaluable factor value with the highest AUC for this concept (the first by name among ties).
    pub factor: String,
    /// That AUC.
    pub auc: f64,
}

/// The result of [`recovery_auc`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// Samples.
    pub samples: usize,
    /// Concepts.
    pub k: usize,
    /// The recovery AUC: the mean of `factors[..].auc`.
    pub mean_auc: f64,
    /// One entry per evaluable factor value, sorted by name.
    pub factors: Vec<FactorRecovery>,
    /// One entry per concept, in concept order: the concept→factor matching table.
    pub concepts: Vec<ConceptMatch>,
    /// `auc_matrix[f][k]`: the AUC of concept `k` for `factors[f].factor`.
    pub auc_matrix: Vec<Vec<f64>>,
    /// Factor values seen but not evaluable (every sample carries them), sorted.
    pub skipped: Vec<String>,
}

/// The 1-based ranks of `scores` in ascending order, tied scores sharing their average rank.
///
/// # Panics
/// If a score is NaN.
///
/// ```
/// assert_eq!(cox_metrics::average_ranks(&[0.5, 0.1, 0.5, 0.9]), vec![2.5, 1.0, 2.5, 4.0]);
/// ```
#[track_caller]
pub fn average_ranks(scores: &[f32]) -> Vec<f64> {
    assert!(
        scores.iter().all(|s| !s.is_nan()),
        "average_ranks: NaN score"
    );
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut start = 0;
    while start < order.len() {
        // `==` rather than `total_cmp` so that -0.0 and 0.0 tie.
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end, whose average is (start + 1 + end) / 2.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// The AUC from precomputed ranks and the indices of the positives.
fn auc_from_ranks(ranks: &[f64], positives: &[usize]) -> f64 {
    let n_pos = positives.len() as f64;
    let n_neg = ranks.len() as f64 - n_pos;
    let rank_sum: f64 = positives.iter().map(|&i| ranks[i]).sum();
    (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// The exact ROC-AUC of `scores` at separating `positives` from the rest (ties count one half), or `None`
/// when there is no positive or no negative sample.
///
/// # Panics
/// If the lengths differ or a score is NaN.
///
/// ```
/// use cox_metrics::roc_auc;
/// assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
/// assert_eq!(roc_auc(&[1.0, 1.0], &[true, false]), Some(0.5));
/// assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]), None);
/// ```
#[track_caller]
pub fn roc_auc(scores: &[f32], positives: &[bool]) -> Option<f64> {
    assert_eq!(
        scores.len(),
        positives.len(),
        "roc_auc: {} scores but {} labels",
        scores.len(),
        positives.len()
    );
    let pos: Vec<usize> = (0..scores.len()).filter(|&i| positives[i]).collect();
    if pos.is_empty() || pos.len() == scores.len() {
        return None;
    }
    Some(auc_from_ranks(&average_ranks(scores), &pos))
}

/// Ground-truth concept recovery of a dictionary's activations.
///
/// `activations` holds `samples × k` values, row-major (sample `i`'s `k` concept activations at
/// `i*k..(i+1)*k`), with `samples = labels.len()`; `labels[i]` lists the factor values sample `i` carries
/// (e.g. `["colour=red", "size=small"]`, as `cox_synth::factor_labels` produces). Every factor value that
/// occurs in some but not all samples is scored: each concept's exact ROC-AUC at detecting it, the best
/// concept, and the mean of the best AUCs (the recovery AUC). "Best" is the highest AUC, not the farthest
/// from ½: concept activations are non-negative detectors, so an anti-correlated concept does not count.
///
/// # Errors
/// [`MetricsError::NoConcepts`] if `k == 0`, [`MetricsError::ShapeMismatch`] if
/// `activations.len() != labels.len() * k`, [`MetricsError::NonFinite`] for a NaN or infinite activation,
/// [`MetricsError::NoEvaluableFactor`] if no factor value has both positives and negatives.
///
/// ```
/// use cox_metrics::recovery_auc;
/// let labels: Vec<Vec<String>> = [["size=small"], ["size=large"], ["size=small"], ["size=large"]]
///     .iter().map(|l| l.iter().map(|s| s.to_string()).collect()).collect();
/// // Concept 0 is high on large objects, concept 1 on small ones except for one tie.
/// let acts = [0.0, 1.0, 2.0, 0.0, 0.1, 0.0, 3.0, 0.0];
/// let r = recovery_auc(&acts, 2, &labels).unwrap();
/// assert_eq!(r.factors[0].factor, "size=large");
/// assert_eq!((r.factors[0].best_concept, r.factors[0].auc), (0, 1.0));
/// assert_eq!((r.factors[1].best_concept, r.factors[1].auc), (1, 0.75));
/// assert_eq!(r.mean_auc, 0.875);
/// assert_eq!(r.concepts[1].factor, "size=small");
/// ```
pub fn recovery_auc(
    activations: &[f32],
    k: usize,
    labels: &[Vec<String>],
) -> Result<RecoveryReport> {
    const OP: &str = "recovery_auc";
    let samples = labels.len();
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
    if let Some(pos) = activations.iter().position(|a| !a.is_finite()) {
        return Err(MetricsError::NonFinite {
            op: OP,
            sample: pos / k,
            concept: pos % k,
        });
    }

    // Positive sample indices per factor value (a value listed twice for one sample counts once).
    let mut positives: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, ls) in labels.iter().enumerate() {
        for l in ls {
            let list = positives.entry(l.as_str()).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let (evaluable, skipped): (Vec<_>, Vec<_>) =
        positives.into_iter().partition(|(_, p)| p.len() < samples);
    if evaluable.is_empty() {
        return Err(MetricsError::NoEvaluableFactor { op: OP, samples });
    }

    let mut auc_matrix = vec![vec![0.0; k]; evaluable.len()];
    let mut column = vec![0.0f32; samples];
    for c in 0..k {
        for (i, v) in column.iter_mut().enumerate() {
            *v = activations[i * k + c];
        }
        let ranks = average_ranks(&column);
        for (f, (_, pos)) in evaluable.iter().enumerate() {
            auc_matrix[f][c] = auc_from_ranks(&ranks, pos);
        }
    }

    let factors: Vec<FactorRecovery> = evaluable
        .iter()
        .zip(&auc_matrix)
        .map(|((name, pos), row)| {
            let (best_concept, auc) = argmax(row.iter().copied());
            FactorRecovery {
                factor: name.to_string(),
                positives: pos.len(),
                negatives: samples - pos.len(),
                best_concept,
                auc,
            }
        })
        .collect();
    let concepts = (0..k)
        .map(|c| {
            let (f, auc) = argmax(auc_matrix.iter().map(|row| row[c]));
            ConceptMatch {
                concept: c,
                factor: evaluable[f].0.to_string(),
                auc,
            }
        })
        .collect();
    let mean_auc = factors.iter().map(|f| f.auc).sum::<f64>() / factors.len() as f64;
    Ok(RecoveryReport {
        samples,
        k,
        mean_auc,
        factors,
        concepts,
        auc_matrix,
        skipped: skipped.into_iter().map(|(n, _)| n.to_string()).collect(),
    })
}

/// The index and value of the largest element, the first among ties.
fn argmax(values: impl Iterator<Item = f64>) -> (usize, f64) {
    values
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
}
