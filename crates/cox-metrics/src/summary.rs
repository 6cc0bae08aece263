//! Summaries for the result tables: mean ± population standard deviation (numpy's `np.mean`,
//! `np.std` with `ddof = 0`, the convention of the paper's tables, docs/method.md §5.1), and the grouping of
//! per-seed results of a K sweep into one row per K.
//!
//! ```text
//! mean = (1/n) Σ x_i        std = sqrt( (1/n) Σ (x_i − mean)² )
//! ```

use serde::{Deserialize, Serialize};

/// `(mean, population std)` of `values`, as `(np.mean(x), np.std(x))`.
///
/// Both are computed in two passes (the mean, then the squared deviations from it), which is what numpy
/// does; they agree with numpy to rounding (numpy sums pairwise). A NaN or infinity propagates, as in
/// numpy.
///
/// # Panics
/// If `values` is empty (numpy returns NaN with a warning; an empty table row is a caller bug here).
///
/// ```
/// use cox_metrics::mean_std;
/// assert_eq!(mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]), (5.0, 2.0));
/// assert_eq!(mean_std(&[3.5]), (3.5, 0.0));
/// ```
#[track_caller]
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    assert!(!values.is_empty(), "mean_std: no values");
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// A mean ± population std over `n` values (seeds, test samples, pairs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// The mean.
    pub mean: f64,
    /// The population standard deviation (`np.std`).
    pub std: f64,
    /// How many values.
    pub n: usize,
}

impl MeanStd {
    /// [`mean_std`] with the count.
    ///
    /// # Panics
    /// If `values` is empty.
    ///
    /// ```
    /// let s = cox_metrics::MeanStd::of(&[1.0, 3.0]);
    /// assert_eq!((s.mean, s.std, s.n), (2.0, 1.0, 2));
    /// ```
    #[track_caller]
    pub fn of(values: &[f64]) -> Self {
        let (mean, std) = mean_std(values);
        Self {
            mean,
            std,
            n: values.len(),
        }
    }
}

/// One row of a K sweep: the summary of every value measured at this K.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KRow {
    /// The number of concepts.
    pub k: usize,
    /// Mean ± std over the values (usually one per seed) at this K.
    pub value: MeanStd,
}

/// Groups `(K, value)` measurements (e.g. one relative reconstruction error per K and seed) into one
/// row per K, in increasing K, each the [`MeanStd`] of its values in the order given.
///
/// ```
/// use cox_metrics::k_sweep_rows;
/// let rows = k_sweep_rows(&[(20, 0.5), (10, 0.7), (20, 0.3), (10, 0.7)]);
/// assert_eq!(rows.iter().map(|r| r.k).collect::<Vec<_>>(), [10, 20]);
/// assert_eq!((rows[0].value.mean, rows[0].value.std, rows[0].value.n), (0.7, 0.0, 2));
/// assert!((rows[1].value.mean - 0.4).abs() < 1e-15 && (rows[1].value.std - 0.1).abs() < 1e-15);
/// ```
pub fn k_sweep_rows(points: &[(usize, f64)]) -> Vec<KRow> {
    let mut ks: Vec<usize> = points.iter().map(|p| p.0).collect();
    ks.sort_unstable();
    ks.dedup();
    ks.into_iter()
        .map(|k| {
            let values: Vec<f64> = points.iter().filter(|p| p.0 == k).map(|p| p.1).collect();
            KRow {
                k,
                value: MeanStd::of(&values),
            }
        })
        .collect()
}
