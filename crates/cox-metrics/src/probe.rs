//! The supervised ceiling of concept recovery: how well a linear read-out of the representation itself
//! detects each known factor value on held-out samples.
//!
//! [`recovery_auc`](crate::recovery_auc) asks whether one *unsupervised* concept detects a factor value.
//! When it does not, either the decomposition missed a direction that is there, or the representation
//! does not carry the factor at all. The probe separates the two: for every factor value it fits, on the
//! training samples, the regularised linear discriminant
//!
//! ```text
//! w = (Σ + ε·I)⁻¹ (μ₊ − μ₋),   ε = ridge · tr(Σ)/B
//! ```
//!
//! (Σ the covariance of all training samples, μ± the means of the samples with and without the value, B
//! the feature count) and scores the *test* samples by `w·z`, reporting the exact ROC-AUC. With the total
//! covariance, `Σ⁻¹(μ₊ − μ₋)` is proportional to Fisher's within-class direction (Σ differs from the pooled
//! within-class covariance by a rank-one term along μ₊ − μ₋), so one Cholesky factorisation serves every
//! factor value. The mean over factor values is the probe AUC: an upper reference for the recovery AUC of
//! any dictionary of the same representation (a single concept is a constrained linear read-out).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};
use crate::recovery::roc_auc;

/// The held-out AUC of the linear probe of one factor value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeFactor {
    /// The factor value, e.g. `background=grass`.
    pub factor: String,
    /// Training samples carrying it.
    pub train_positives: usize,
    /// Test samples carrying it.
    pub test_positives: usize,
    /// The test ROC-AUC of `w·z`.
    pub auc: f64,
}

/// The result of [`probe_auc`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Training samples.
    pub train_samples: usize,
    /// Test samples.
    pub test_samples: usize,
    /// The ridge, as a fraction of the mean variance.
    pub ridge: f64,
    /// The mean of `factors[..].auc`.
    pub mean_auc: f64,
    /// One entry per factor value with positives and negatives in both sets, sorted by name.
    pub factors: Vec<ProbeFactor>,
}

/// Fits the regularised linear discriminant of every factor value on `train` and scores `test` by it.
///
/// `train` (`train_labels.len() × dim`) and `test` (`test_labels.len() × dim`) are row-major sample
/// vectors; labels are per-sample factor values as for [`recovery_auc`](crate::recovery_auc). Factor
/// values that lack positives or negatives in either set are left out. `ridge` (e.g. `1e-2`) scales the
/// diagonal loading `ε = ridge · tr(Σ)/dim`; it must be positive.
///
/// # Errors
/// [`MetricsError::InputShape`] for a wrong length or `dim == 0`, [`MetricsError::NonFiniteInput`] for a
/// NaN or infinite value, [`MetricsError::NoEvaluableFactor`] when no factor value can be scored,
/// [`MetricsError::InvalidParameter`] for a non-positive ridge.
///
/// ```
/// use cox_metrics::probe_auc;
/// // 2-D samples: the first coordinate says "size=large", the second is noise.
/// let train = [2.0, 0.3, 2.1, -0.2, 0.1, 0.1, -0.1, -0.3];
/// let test = [1.9, -0.4, 0.2, 0.5];
/// let l = |v: &str| vec![v.to_string()];
/// let train_labels = vec![l("size=large"), l("size=large"), l("size=small"), l("size=small")];
/// let test_labels = vec![l("size=large"), l("size=small")];
/// let r = probe_auc(&train, &train_labels, &test, &test_labels, 2, 1e-2)?;
/// assert_eq!(r.factors.len(), 2);
/// assert_eq!(r.mean_auc, 1.0);
/// # Ok::<(), cox_metrics::MetricsError>(())
/// ```
pub fn probe_auc(
    train: &[f32],
    train_labels: &[Vec<String>],
    test: &[f32],
    test_labels: &[Vec<String>],
    dim: usize,
    ridge: f64,
) -> Result<ProbeReport> {
    const OP: &str = "probe_auc";
    let (n, m) = (train_labels.len(), test_labels.len());
    check_rows(OP, "train", train, n, dim)?;
    check_rows(OP, "test", test, m, dim)?;
    check_ridge(OP, ridge)?;

    // Mean and covariance of the training samples, in f64.
    let cov = covariance_factor(train, n, dim, ridge);

    let values: BTreeSet<&str> = train_labels
        .iter()
        .chain(test_labels)
        .flatten()
        .map(String::as_str)
        .collect();
    let mut factors = Vec::new();
    for v in values {
        let tr_pos: Vec<bool> = train_labels
            .iter()
            .map(|l| l.iter().any(|x| x == v))
            .collect();
        let te_pos: Vec<bool> = test_labels
            .iter()
            .map(|l| l.iter().any(|x| x == v))
            .collect();
        let (np, mp) = (
            tr_pos.iter().filter(|&&p| p).count(),
            te_pos.iter().filter(|&&p| p).count(),
        );
        if np == 0 || np == n || mp == 0 || mp == m {
            continue;
        }
        let w = discriminant(train, &tr_pos, np, dim, &cov);
        let scores: Vec<f32> = test
            .chunks_exact(dim)
            .map(|row| {
                row.iter()
                    .zip(&w)
                    .map(|(&x, &wi)| x as f64 * wi)
                    .sum::<f64>() as f32
            })
            .collect();
        let auc = roc_auc(&scores, &te_pos).expect("positives and negatives checked above");
        factors.push(ProbeFactor {
            factor: v.to_string(),
            train_positives: np,
            test_positives: mp,
            auc,
        });
    }
    if factors.is_empty() {
        return Err(MetricsError::NoEvaluableFactor { op: OP, samples: n });
    }
    let mean_auc = factors.iter().map(|f| f.auc).sum::<f64>() / factors.len() as f64;
    Ok(ProbeReport {
        train_samples: n,
        test_samples: m,
        ridge,
        mean_auc,
        factors,
    })
}

/// In-place Cholesky factorisation `A = L·Lᵀ` of a symmetric positive-definite matrix whose lower
/// triangle (row-major, `dim × dim`) is given; `L` replaces it. The diagonal loading of [`probe_auc`]
/// keeps every pivot positive.
/// The lower Cholesky factor of the training rows' ridge-regularised covariance `Σ + εI`
/// (`ε = ridge · trace(Σ)/dim`), row-major `dim × dim`.
fn covariance_factor(train: &[f32], n: usize, dim: usize, ridge: f64) -> Vec<f64> {
    let mut mean = vec![0.0f64; dim];
    for row in train.chunks_exact(dim) {
        for (a, &v) in mean.iter_mut().zip(row) {
            *a += v as f64;
        }
    }
    mean.iter_mut().for_each(|a| *a /= n.max(1) as f64);
    let mut cov = vec![0.0f64; dim * dim];
    let mut centred = vec![0.0f64; dim];
    for row in train.chunks_exact(dim) {
        for ((c, &v), &mu) in centred.iter_mut().zip(row).zip(&mean) {
            *c = v as f64 - mu;
        }
        for i in 0..dim {
            let ci = centred[i];
            let out = &mut cov[i * dim..i * dim + i + 1];
            for (o, &cj) in out.iter_mut().zip(&centred[..=i]) {
                *o += ci * cj;
            }
        }
    }
    let scale = 1.0 / n.max(1) as f64;
    let trace: f64 = (0..dim).map(|i| cov[i * dim + i] * scale).sum();
    let eps = ridge * (trace / dim as f64).max(f64::MIN_POSITIVE);
    for i in 0..dim {
        for j in 0..=i {
            cov[i * dim + j] *= scale;
        }
        cov[i * dim + i] += eps;
    }
    cholesky_lower(&mut cov, dim);
    cov
}

/// `data` must hold `rows` finite rows of `dim > 0` values.
fn check_rows(op: &'static str, input: &str, data: &[f32], rows: usize, dim: usize) -> Result<()> {
    if dim == 0 || data.len() != rows * dim {
        return Err(MetricsError::InputShape {
            op,
            input: input.to_string(),
            len: data.len(),
            rows,
            cols: dim,
        });
    }
    if let Some(p) = data.iter().position(|v| !v.is_finite()) {
        return Err(MetricsError::NonFiniteInput {
            op,
            input: input.to_string(),
            row: p / dim,
            column: p % dim,
        });
    }
    Ok(())
}

/// The diagonal loading must be a positive number.
fn check_ridge(op: &'static str, ridge: f64) -> Result<()> {
    if !(ridge > 0.0 && ridge.is_finite()) {
        return Err(MetricsError::InvalidParameter {
            op,
            name: "ridge",
            value: ridge,
            expected: "a positive number",
        });
    }
    Ok(())
}

/// The probe's direction for each of `values`: the regularised linear discriminant
/// `(Σ + εI)⁻¹ (μ₊ − μ₋)` of the training rows labelled with the value against the others (the
/// direction whose scores `probe_auc` ranks), as f32, unnormalised. Its inputs are checked as
/// [`probe_auc`]'s; a value that no row (or every row) has is an error.
pub fn probe_directions(
    train: &[f32],
    labels: &[Vec<String>],
    dim: usize,
    ridge: f64,
    values: &[&str],
) -> Result<Vec<Vec<f32>>> {
    const OP: &str = "probe_directions";
    let n = labels.len();
    check_rows(OP, "train", train, n, dim)?;
    check_ridge(OP, ridge)?;
    let cov = covariance_factor(train, n, dim, ridge);
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        let pos: Vec<bool> = labels.iter().map(|l| l.iter().any(|x| x == v)).collect();
        let np = pos.iter().filter(|&&p| p).count();
        if np == 0 || np == n {
            return Err(MetricsError::NoEvaluableFactor { op: OP, samples: n });
        }
        let w = discriminant(train, &pos, np, dim, &cov);
        out.push(w.iter().map(|&x| x as f32).collect());
    }
    Ok(out)
}

/// `(Σ + εI)⁻¹ (μ₊ − μ₋)` for the rows of `train` flagged in `pos` (`np` of them, neither none
/// nor all), `cov` being the Cholesky factor of `Σ + εI`.
fn discriminant(train: &[f32], pos: &[bool], np: usize, dim: usize, cov: &[f64]) -> Vec<f64> {
    let n = pos.len();
    let (mut sp, mut sn) = (vec![0.0f64; dim], vec![0.0f64; dim]);
    for (row, &p) in train.chunks_exact(dim).zip(pos) {
        let acc = if p { &mut sp } else { &mut sn };
        for (a, &x) in acc.iter_mut().zip(row) {
            *a += x as f64;
        }
    }
    let mut w: Vec<f64> = sp
        .iter()
        .zip(&sn)
        .map(|(p, q)| p / np as f64 - q / (n - np) as f64)
        .collect();
    cholesky_solve(cov, dim, &mut w);
    w
}

fn cholesky_lower(a: &mut [f64], dim: usize) {
    for j in 0..dim {
        // Rows before and including j are final up to column j; rows after j are updated.
        let (upto, after) = a.split_at_mut((j + 1) * dim);
        let row_j = &mut upto[j * dim..];
        let d = row_j[j] - row_j[..j].iter().map(|x| x * x).sum::<f64>();
        let ljj = d.max(f64::MIN_POSITIVE).sqrt();
        row_j[j] = ljj;
        let lj = &row_j[..j];
        for row_i in after.chunks_exact_mut(dim) {
            let dot: f64 = row_i[..j].iter().zip(lj).map(|(x, y)| x * y).sum();
            row_i[j] = (row_i[j] - dot) / ljj;
        }
    }
}

/// Solves `L·Lᵀ·x = b` in place with the factor of [`cholesky_lower`].
fn cholesky_solve(l: &[f64], dim: usize, b: &mut [f64]) {
    for i in 0..dim {
        let row = &l[i * dim..i * dim + i];
        let s: f64 = row.iter().zip(&b[..i]).map(|(x, y)| x * y).sum();
        b[i] = (b[i] - s) / l[i * dim + i];
    }
    for i in (0..dim).rev() {
        let mut s = b[i];
        for k in i + 1..dim {
            s -= l[k * dim + i] * b[k];
        }
        b[i] = s / l[i * dim + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4, 2], [2, 3]] (lower triangle stored), b = A·[1, 2] = [8, 8].
        let mut a = vec![4.0, 0.0, 2.0, 3.0];
        cholesky_lower(&mut a, 2);
        assert!((a[0] - 2.0).abs() < 1e-12 && (a[2] - 1.0).abs() < 1e-12);
        assert!((a[3] - 2f64.sqrt()).abs() < 1e-12);
        let mut b = vec![8.0, 8.0];
        cholesky_solve(&a, 2, &mut b);
        assert!(
            (b[0] - 1.0).abs() < 1e-12 && (b[1] - 2.0).abs() < 1e-12,
            "{b:?}"
        );
    }

    #[test]
    fn probe_directions_point_from_the_negatives_to_the_positives() {
        // Positives sit at x = +1, negatives at x = −1; y is noise shared by both.
        let mut train = Vec::new();
        let mut labels = Vec::new();
        for i in 0..40 {
            let pos = i % 2 == 0;
            train.push(if pos { 1.0 } else { -1.0 });
            train.push(((i * 7) % 5) as f32 - 2.0);
            labels.push(if pos {
                vec!["colour=red".to_string()]
            } else {
                vec![]
            });
        }
        let w = probe_directions(&train, &labels, 2, 1e-3, &["colour=red"]).unwrap();
        assert!(
            w[0][0] > 0.0 && w[0][0].abs() > 10.0 * w[0][1].abs(),
            "{:?}",
            w[0]
        );
        assert!(probe_directions(&train, &labels, 2, 1e-3, &["colour=blue"]).is_err());
    }
}
