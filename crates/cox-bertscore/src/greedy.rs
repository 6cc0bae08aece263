//! The BERTScore maths on given token embeddings: greedy cosine matching, weighted means, F1 and the
//! baseline rescaling. Pure functions, no model.

use serde::{Deserialize, Serialize};

/// Precision, recall and F1 of one candidate against one reference (or the element-wise best over
/// several references, see [`Prf::max`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prf {
    /// Precision: the weighted mean over candidate tokens of their best cosine with a reference token.
    pub p: f64,
    /// Recall: the weighted mean over reference tokens of their best cosine with a candidate token.
    pub r: f64,
    /// `2PR / (P + R)`, 0 when that is undefined.
    pub f1: f64,
}

impl Prf {
    /// All three zero: what `bert_score` returns for an empty candidate or reference.
    pub const ZERO: Prf = Prf {
        p: 0.0,
        r: 0.0,
        f1: 0.0,
    };

    /// `P`, `R` and their harmonic mean; F1 is 0 when `P + R` is 0 or the quotient is NaN
    /// (`bert_score`'s `F.masked_fill(isnan(F), 0)`).
    ///
    /// ```
    /// let s = cox_bertscore::Prf::from_pr(0.5, 1.0);
    /// assert!((s.f1 - 2.0 / 3.0).abs() < 1e-12);
    /// assert_eq!(cox_bertscore::Prf::from_pr(0.0, 0.0).f1, 0.0);
    /// ```
    pub fn from_pr(p: f64, r: f64) -> Prf {
        let f1 = 2.0 * p * r / (p + r);
        Prf {
            p,
            r,
            f1: if f1.is_nan() { 0.0 } else { f1 },
        }
    }

    /// The element-wise maximum: `bert_score.score` with a list of references per candidate returns,
    /// for P, R and F separately, the best value over the references (`all_preds[beg:end].max(dim=0)`),
    /// so the three may come from different references and F need not equal `2PR/(P+R)`.
    ///
    /// ```
    /// use cox_bertscore::Prf;
    /// let a = Prf { p: 0.9, r: 0.4, f1: 0.55 };
    /// let b = Prf { p: 0.3, r: 0.8, f1: 0.44 };
    /// assert_eq!(a.max(b), Prf { p: 0.9, r: 0.8, f1: 0.55 });
    /// ```
    pub fn max(self, other: Prf) -> Prf {
        Prf {
            p: self.p.max(other.p),
            r: self.r.max(other.r),
            f1: self.f1.max(other.f1),
        }
    }

    /// Each of P, R and F1 rescaled with its own baseline value (see [`rescale`]).
    ///
    /// ```
    /// use cox_bertscore::Prf;
    /// let s = Prf { p: 0.8, r: 0.6, f1: 0.7 }.rescaled(0.6, 0.2, 0.3);
    /// assert!((s.p - 0.5).abs() < 1e-12 && (s.r - 0.5).abs() < 1e-12);
    /// assert!((s.f1 - 4.0 / 7.0).abs() < 1e-12);
    /// ```
    pub fn rescaled(self, bp: f64, br: f64, bf: f64) -> Prf {
        Prf {
            p: rescale(self.p, bp),
            r: rescale(self.r, br),
            f1: rescale(self.f1, bf),
        }
    }
}

/// `bert_score`'s baseline rescaling, `(s − b) / (1 − b)`: the baseline `b` (the mean score of unrelated
/// sentence pairs) maps to 0 and a perfect score stays 1.
///
/// ```
/// assert_eq!(cox_bertscore::rescale(0.84, 0.84), 0.0);
/// assert_eq!(cox_bertscore::rescale(1.0, 0.84), 1.0);
/// ```
pub fn rescale(s: f64, b: f64) -> f64 {
    (s - b) / (1.0 - b)
}

/// BERTScore of one candidate against one reference from their token embeddings.
///
/// `cand` is `n_c × dim` and `reference` is `n_r × dim`, row-major, one row per token (special tokens
/// included); `n_c = cand_weights.len()`, `n_r = ref_weights.len()`. Rows are L2-normalised here, so
/// `sim[i][j]` is the cosine of candidate token `i` and reference token `j`. Then
///
/// $$P = \frac{\sum_i w^c_i \max_j \mathrm{sim}_{ij}}{\sum_i w^c_i},\qquad
///   R = \frac{\sum_j w^r_j \max_i \mathrm{sim}_{ij}}{\sum_j w^r_j},\qquad F_1 = \frac{2PR}{P+R}.$$
///
/// As in `bert_score`, a token with weight 0 (`[CLS]` and `[SEP]` without idf) does not count in the
/// means but is still a matching target for the other side's tokens. Each best similarity is at least
/// 0: `bert_score` multiplies the similarity matrix by its batch's padding mask, so a padded sentence's
/// padding offers every token of the other side a similarity of 0. That holds for every sentence
/// but the longest of its batch of pairs; this function applies it always, so a score never depends on
/// its batch (`bert_score` differs only when the longest sentence of a batch has a best similarity
/// below 0; short candidates such as grounded words do hit the clamp). When either side has no token
/// or zero total weight the score is
/// [`Prf::ZERO`] (`bert_score` gives 0 for empty sentences, and NaN precision or recall for a
/// non-empty sentence whose idf weights are all 0). An all-zero row has cosine 0 with everything.
///
/// # Panics
/// When `dim` is 0 or a matrix does not have `weights.len() × dim` values.
///
/// ```
/// use cox_bertscore::greedy_f1;
/// // The candidate's second token matches nothing (orthogonal to every reference token).
/// let cand = [2.0, 0.0, 0.0, 0.0, 0.0, 3.0];
/// let reference = [1.0, 0.0, 0.0];
/// let s = greedy_f1(&cand, &[1.0, 1.0], &reference, &[1.0], 3);
/// assert_eq!((s.p, s.r), (0.5, 1.0));
/// assert!((s.f1 - 2.0 / 3.0).abs() < 1e-12);
/// ```
#[track_caller]
pub fn greedy_f1(
    cand: &[f32],
    cand_weights: &[f64],
    reference: &[f32],
    ref_weights: &[f64],
    dim: usize,
) -> Prf {
    assert!(dim > 0, "greedy_f1: dim is 0");
    let (nc, nr) = (cand_weights.len(), ref_weights.len());
    assert_eq!(
        cand.len(),
        nc * dim,
        "greedy_f1: candidate has {} values, expected {nc} tokens × {dim}",
        cand.len()
    );
    assert_eq!(
        reference.len(),
        nr * dim,
        "greedy_f1: reference has {} values, expected {nr} tokens × {dim}",
        reference.len()
    );
    let (wc, wr) = (
        cand_weights.iter().sum::<f64>(),
        ref_weights.iter().sum::<f64>(),
    );
    if nc == 0 || nr == 0 || wc == 0.0 || wr == 0.0 {
        return Prf::ZERO;
    }
    let c = normalised_rows(cand, dim);
    let r = normalised_rows(reference, dim);
    // Starting the maxima at 0 is `bert_score`'s padding clamp (see above).
    let mut best_c = vec![0f64; nc];
    let mut best_r = vec![0f64; nr];
    for i in 0..nc {
        let ci = &c[i * dim..(i + 1) * dim];
        for j in 0..nr {
            let rj = &r[j * dim..(j + 1) * dim];
            let s: f64 = ci.iter().zip(rj).map(|(a, b)| a * b).sum();
            best_c[i] = best_c[i].max(s);
            best_r[j] = best_r[j].max(s);
        }
    }
    let p = weighted_mean(&best_c, cand_weights, wc);
    let rr = weighted_mean(&best_r, ref_weights, wr);
    Prf::from_pr(p, rr)
}

fn weighted_mean(x: &[f64], w: &[f64], total: f64) -> f64 {
    x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / total
}

fn normalised_rows(m: &[f32], dim: usize) -> Vec<f64> {
    let mut out: Vec<f64> = m.iter().map(|&v| f64::from(v)).collect();
    for row in out.chunks_exact_mut(dim) {
        let n = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|v| *v /= n);
        }
    }
    out
}
