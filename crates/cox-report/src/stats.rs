//! Display statistics computed from the activations: the co-activation matrix and histograms.

/// The `k × k` co-activation matrix of an `m × k` sample-major activation matrix: the Pearson
/// correlation of every pair of activation columns,
///
/// ```text
/// C[i][j] = Σ_s (a_si − ā_i)(a_sj − ā_j) / sqrt(Σ_s (a_si − ā_i)² · Σ_s (a_sj − ā_j)²)
/// ```
///
/// computed in f64 with the means first (two passes), returned row-major. A constant column (a dead
/// concept, or `m < 2`) has no correlation: its row and column are 0, its diagonal entry too;
/// every other diagonal entry is exactly 1. A NaN activation makes its concept's row and column NaN.
///
/// # Panics
/// If `activations.len() != m * k`.
///
/// ```
/// // Column 1 = 2 × column 0, column 2 = its reverse.
/// let a = [1.0, 2.0, 3.0,
///          2.0, 4.0, 2.0,
///          3.0, 6.0, 1.0];
/// let c = cox_report::coactivation(&a, 3, 3);
/// assert!((c[1] - 1.0).abs() < 1e-12 && (c[2] + 1.0).abs() < 1e-12);
/// assert_eq!(c[4], 1.0);
/// ```
#[track_caller]
pub fn coactivation(activations: &[f32], m: usize, k: usize) -> Vec<f64> {
    assert_eq!(
        Some(activations.len()),
        m.checked_mul(k),
        "coactivation: activations have {} values, expected {m} samples × {k} concepts",
        activations.len()
    );
    let mut mean = vec![0.0f64; k];
    for row in activations.chunks_exact(k.max(1)).take(m) {
        for (acc, &a) in mean.iter_mut().zip(row) {
            *acc += a as f64;
        }
    }
    for v in &mut mean {
        *v /= m.max(1) as f64;
    }
    // Centred cross products, accumulated in sample order.
    let mut cov = vec![0.0f64; k * k];
    let mut centred = vec![0.0f64; k];
    for row in activations.chunks_exact(k.max(1)).take(m) {
        for j in 0..k {
            centred[j] = row[j] as f64 - mean[j];
        }
        for i in 0..k {
            let ci = centred[i];
            for j in i..k {
                cov[i * k + j] += ci * centred[j];
            }
        }
    }
    let mut out = vec![0.0f64; k * k];
    for i in 0..k {
        for j in i..k {
            let (vi, vj) = (cov[i * k + i], cov[j * k + j]);
            let r = if vi.is_nan() || vj.is_nan() {
                f64::NAN
            } else if vi <= 0.0 || vj <= 0.0 {
                0.0
            } else if i == j {
                1.0
            } else {
                (cov[i * k + j] / (vi * vj).sqrt()).clamp(-1.0, 1.0)
            };
            out[i * k + j] = r;
            out[j * k + i] = r;
        }
    }
    out
}

/// A histogram of the finite values into `bins` equal-width bins spanning `[min, max]` (the last bin
/// includes `max`); returns `(edges, counts)` with `bins + 1` edges. Non-finite values are left out.
/// When every value is equal, the single value `v` fills the middle bin of `[v − 0.5, v + 0.5]`;
/// with no finite value the counts are all 0 over `[0, 1]`.
///
/// # Panics
/// If `bins` is zero.
///
/// ```
/// let (edges, counts) = cox_report::histogram(&[0.0, 0.1, 0.5, 0.9, 1.0], 2);
/// assert_eq!(edges, [0.0, 0.5, 1.0]);
/// assert_eq!(counts, [2, 3]);
/// ```
#[track_caller]
pub fn histogram(values: &[f32], bins: usize) -> (Vec<f64>, Vec<usize>) {
    assert!(bins > 0, "histogram: bins must be positive");
    let finite = || values.iter().filter(|v| v.is_finite()).map(|&v| v as f64);
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let width = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..=bins)
        .map(|i| if i == bins { hi } else { lo + width * i as f64 })
        .collect();
    let mut counts = vec![0usize; bins];
    for v in finite() {
        let b = (((v - lo) / width).floor() as usize).min(bins - 1);
        counts[b] += 1;
    }
    (edges, counts)
}
