//! The randomized top-K SVD of the initialisation against matrices built with a known SVD.

use cox_snmf::{top_k_svd, Par, SamplesRef, SvdMethod, TopSvd};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `n × r` matrix (row-major) with orthonormal columns: Gram–Schmidt (twice) on Gaussian columns.
fn orthonormal(n: usize, r: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    let mut cols: Vec<Vec<f64>> = Vec::new();
    for _ in 0..r {
        let mut v: Vec<f64> = (0..n).map(|_| StandardNormal.sample(rng)).collect();
        for _ in 0..2 {
            for c in &cols {
                let d: f64 = v.iter().zip(c).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(c).for_each(|(a, b)| *a -= d * b);
            }
        }
        let n2 = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter_mut().for_each(|a| *a /= n2);
        cols.push(v);
    }
    cols
}

/// `X = Σ_i s_i a_i b_iᵀ` (M × B, sample-major) with the returned left/right singular vectors.
#[allow(clippy::type_complexity)]
fn known_svd(m: usize, b: usize, s: &[f64], seed: u64) -> (Vec<f64>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = orthonormal(m, s.len(), &mut rng);
    let v = orthonormal(b, s.len(), &mut rng);
    let mut x = vec![0.0; m * b];
    for (i, &si) in s.iter().enumerate() {
        for r in 0..m {
            for c in 0..b {
                x[r * b + c] += si * a[i][r] * v[i][c];
            }
        }
    }
    (x, a, v)
}

fn col(m: &faer::Mat<f64>, j: usize) -> Vec<f64> {
    (0..m.nrows()).map(|i| m[(i, j)]).collect()
}

fn abs_cos(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    d.abs() / (na * nb)
}

/// `max_i ‖X v_i − σ_i u_i‖ / σ_i`, computed directly.
fn worst_residual(x: &[f64], m: usize, b: usize, svd: &TopSvd<f64>) -> f64 {
    (0..svd.s.len())
        .map(|i| {
            let mut r2 = 0.0;
            for row in 0..m {
                let xv: f64 = (0..b).map(|c| x[row * b + c] * svd.v[(c, i)]).sum();
                r2 += (xv - svd.s[i] * svd.u[(row, i)]).powi(2);
            }
            r2.sqrt() / svd.s[i]
        })
        .fold(0.0, f64::max)
}

/// A geometric spectrum (no sharp drop after K): the default randomized SVD recovers the top-K
/// singular values and vectors, its triplets meet the residual tolerance, and the sign rule of
/// scikit-learn's `svd_flip` holds (largest-magnitude entry of each left vector positive).
#[test]
fn default_randomized_matches_the_known_svd() {
    let (m, b, k) = (300, 120, 8);
    let s: Vec<f64> = (0..60).map(|i| 100.0 * 0.85f64.powi(i)).collect();
    let (x, a, v) = known_svd(m, b, &s, 3);
    let svd = top_k_svd(
        SamplesRef::new(&x, m, b).unwrap(),
        k,
        SvdMethod::default(),
        0,
        Par::Seq,
    )
    .unwrap();
    for i in 0..k {
        assert!(
            (svd.s[i] / s[i] - 1.0).abs() < 1e-6,
            "σ{i} {} vs {}",
            svd.s[i],
            s[i]
        );
        assert!(abs_cos(&col(&svd.u, i), &a[i]) > 1.0 - 1e-6, "u{i}");
        assert!(abs_cos(&col(&svd.v, i), &v[i]) > 1.0 - 1e-6, "v{i}");
        let u = col(&svd.u, i);
        let big = u
            .iter()
            .copied()
            .fold(0.0f64, |acc, e| if e.abs() > acc.abs() { e } else { acc });
        assert!(big > 0.0, "svd_flip sign of component {i}");
    }
    assert!(worst_residual(&x, m, b, &svd) <= 1e-4);
}

/// On data of rank at most K + oversample the first check already passes, so the residual-stopped
/// SVD returns exactly what zero power iterations return; with tol = 0 it runs every iteration.
#[test]
fn residual_test_stops_early_only_when_met() {
    let (m, b, k) = (200, 90, 5);
    let s: Vec<f64> = (0..12).map(|i| 50.0 - 3.0 * i as f64).collect();
    let (x, _, _) = known_svd(m, b, &s, 7);
    let xs = SamplesRef::new(&x, m, b).unwrap();
    let run = |power_iters, tol| {
        let method = SvdMethod::Randomized {
            oversample: 10,
            power_iters,
            tol,
        };
        top_k_svd(xs, k, method, 1, Par::Seq).unwrap()
    };
    let early = run(20, 1e-4);
    let zero = run(0, 0.0);
    assert_eq!(early.s, zero.s);
    assert_eq!(early.u, zero.u);
    // Without a tolerance, more iterations change the rounding of the result.
    let all = run(20, 0.0);
    assert_ne!(all.u, zero.u);
    assert!(worst_residual(&x, m, b, &early) <= 1e-4);
}

/// A slowly decaying spectrum with a small block: the tolerance is not met by one iteration, and
/// the returned triplets meet it once the iterations are allowed.
#[test]
fn residual_tolerance_is_met_on_hard_spectra() {
    let (m, b, k) = (250, 150, 10);
    let s: Vec<f64> = (0..150).map(|i| 10.0 / (1.0 + i as f64).sqrt()).collect();
    let (x, _, _) = known_svd(m, b, &s, 11);
    let xs = SamplesRef::new(&x, m, b).unwrap();
    let run = |power_iters| {
        let method = SvdMethod::Randomized {
            oversample: 10,
            power_iters,
            tol: 1e-4,
        };
        top_k_svd(xs, k, method, 2, Par::Seq).unwrap()
    };
    assert!(worst_residual(&x, m, b, &run(1)) > 1e-4);
    assert!(worst_residual(&x, m, b, &run(200)) <= 1e-4);
}
