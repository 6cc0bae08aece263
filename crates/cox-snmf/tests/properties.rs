//! Property tests of the optimizer's invariants (run them yourself: `cargo test -p cox-snmf`).
//! Set `PROPTEST_CASES` to run more cases.

mod common;

use common::{matched_min_cosine, objective_direct, planted};
use cox_snmf::{kkt_report, EncodeParams, Init, Par, SamplesRef, SemiNmf, SvdMethod};
use proptest::prelude::*;

/// A random problem: M samples × B features with non-negative mixtures plus signed noise, and K.
fn problem() -> impl Strategy<Value = (Vec<f64>, usize, usize, usize, u64)> {
    (4usize..40, 2usize..12, 1usize..5, any::<u64>()).prop_flat_map(|(m, b, k, seed)| {
        let k = k.min(m);
        (
            proptest::collection::vec(-3.0f64..3.0, m * b),
            Just(m),
            Just(b),
            Just(k),
            Just(seed),
        )
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(48),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// The objective after each iteration never increases (relative 1e-6, f64), codes are
    /// non-negative and every concept lies in the unit ball; the reported objective equals the
    /// objective recomputed from the returned matrices by forming the residual.
    #[test]
    fn objective_monotone_codes_nonnegative_atoms_in_ball(
        (x, m, b, k, seed) in problem(), alpha in 0.0f64..2.0,
    ) {
        let fit = SemiNmf::params().k(k).alpha(alpha).seed(seed).max_iter(300)
            .check().unwrap().fit(SamplesRef::new(&x, m, b).unwrap(), Par::Seq).unwrap();
        for w in fit.objective_trace.windows(2) {
            prop_assert!(w[1] <= w[0] * (1.0 + 1e-6) + 1e-12, "objective rose: {} -> {}", w[0], w[1]);
        }
        prop_assert!(fit.codes.iter().all(|&c| c >= 0.0));
        prop_assert!(fit.dictionary.norms().iter().all(|&n| n <= 1.0 + 1e-6));
        let direct = objective_direct(&x, m, b, fit.dictionary.as_slice(), &fit.codes, k, alpha);
        prop_assert!((direct - fit.objective).abs() <= 1e-8 * direct.max(1.0),
            "reported {} vs direct {}", fit.objective, direct);
    }

    /// At convergence the KKT conditions hold: codes to 1e-6 of the problem scale, atoms to 1e-3
    /// (the atoms were optimal for the codes of the previous iteration, which moved by less than tol).
    #[test]
    fn kkt_at_convergence((x, m, b, k, seed) in problem(), alpha in 0.05f64..2.0) {
        let xs = SamplesRef::new(&x, m, b).unwrap();
        let fit = SemiNmf::params().k(k).alpha(alpha).seed(seed).tol(1e-12).max_iter(20_000).code_sweeps(1000).code_tol(1e-12)
            .check().unwrap().fit(xs, Par::Seq).unwrap();
        prop_assume!(fit.converged && fit.dead_resampled == 0);
        let r = kkt_report(xs, &fit.dictionary, &fit.codes, alpha).unwrap();
        prop_assert!(r.codes < 1e-6, "{r:?}");
        prop_assert!(r.norm_excess < 1e-9, "{r:?}");
        prop_assert!(r.atoms < 1e-3, "{r:?}");
    }

    /// Encoding the training data with the fitted dictionary reproduces the fitted codes (and, when
    /// the minimiser is not unique, their objective).
    #[test]
    fn encode_reproduces_fitted_codes((x, m, b, k, seed) in problem(), alpha in 0.05f64..2.0) {
        let xs = SamplesRef::new(&x, m, b).unwrap();
        let fit = SemiNmf::params().k(k).alpha(alpha).seed(seed).tol(1e-12).max_iter(5000).code_sweeps(1000).code_tol(1e-12)
            .check().unwrap().fit(xs, Par::Seq).unwrap();
        let enc = fit.dictionary.encode(xs, &EncodeParams { alpha, max_sweeps: 100_000, tol: 1e-12 }, Par::Seq).unwrap();
        // Each sample's Lasso objective is the same (both are minimisers)…
        let d = fit.dictionary.as_slice();
        let per_sample = |c: &[f64], i: usize| {
            let r: f64 = (0..b).map(|j| {
                let v = x[i * b + j] - (0..k).map(|q| c[q] * d[q * b + j]).sum::<f64>();
                v * v
            }).sum();
            0.5 * r + alpha * c.iter().sum::<f64>()
        };
        for i in 0..m {
            let (f, e) = (per_sample(&fit.codes[i * k..(i + 1) * k], i), per_sample(&enc[i * k..(i + 1) * k], i));
            prop_assert!((f - e).abs() <= 1e-6 * (1.0 + f.abs()), "sample {i}: fitted objective {f} vs encoded {e}");
        }
        // …and when the Gram matrix is well conditioned the minimiser is unique, so the codes agree.
        let g = fit.dictionary.gram();
        let eig = faer::Mat::from_fn(k, k, |p, q| g[p * k + q])
            .self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
        if eig[0] > 1e-3 * eig[k - 1] {
            let scale = fit.codes.iter().fold(1.0f64, |a, &c| a.max(c));
            for (a, e) in fit.codes.iter().zip(&enc) {
                prop_assert!((a - e).abs() <= 1e-5 * scale, "fitted {a} vs encoded {e}");
            }
        }
    }

    /// Permuting the samples permutes the codes and leaves the dictionary unchanged (the SVD
    /// initialisation does not depend on the sample order).
    #[test]
    fn permutation_equivariance((x, m, b, k, seed) in problem(), rot in 1usize..100) {
        let rot = rot % m;
        let perm: Vec<usize> = (0..m).map(|i| (i + rot) % m).collect();
        let xp: Vec<f64> = perm.iter().flat_map(|&i| x[i * b..(i + 1) * b].to_vec()).collect();
        let params = SemiNmf::params().k(k).alpha(0.5).seed(seed).max_iter(50)
            .init(Init::Svd(SvdMethod::Exact)).check().unwrap();
        let f1 = params.fit(SamplesRef::new(&x, m, b).unwrap(), Par::Seq).unwrap();
        let f2 = params.fit(SamplesRef::new(&xp, m, b).unwrap(), Par::Seq).unwrap();
        // Skip problems whose top-K singular values are (nearly) tied: their singular vectors are not
        // unique, so any order change may legitimately rotate them.
        let svd = cox_snmf::top_k_svd(SamplesRef::new(&x, m, b).unwrap(), (k + 1).min(m).min(b),
            SvdMethod::Exact, 0, Par::Seq).unwrap();
        let gap = svd.s.windows(2).map(|w| (w[0] - w[1]) / w[0].max(1e-300)).fold(f64::INFINITY, f64::min);
        prop_assume!(gap > 1e-3 && svd.s[svd.s.len() - 1] > 1e-6 * svd.s[0]);
        prop_assume!(f1.dead_resampled == 0 && f2.dead_resampled == 0);
        let d1 = f1.dictionary.as_slice();
        let d2 = f2.dictionary.as_slice();
        for (a, c) in d1.iter().zip(d2) {
            prop_assert!((a - c).abs() < 1e-6, "{a} vs {c}");
        }
        for (row, &i) in perm.iter().enumerate() {
            for c in 0..k {
                let (a, p) = (f1.codes[i * k + c], f2.codes[row * k + c]);
                prop_assert!((a - p).abs() < 1e-6 * (1.0 + a.abs()), "{a} vs {p}");
            }
        }
    }
}

/// A planted dictionary with sparse non-negative codes is recovered (cosine ≥ 0.99 after matching).
#[test]
fn planted_dictionary_is_recovered() {
    for seed in 0..5 {
        let (m, b, k) = (300, 32, 5);
        let (x, atoms) = planted(m, b, k, 0.01, seed);
        let fit = SemiNmf::params()
            .k(k)
            .alpha(0.05)
            .seed(seed)
            .check()
            .unwrap()
            .fit(SamplesRef::new(&x, m, b).unwrap(), Par::Seq)
            .unwrap();
        let worst = matched_min_cosine(&atoms, fit.dictionary.as_slice(), k, b);
        assert!(worst >= 0.99, "seed {seed}: worst matched cosine {worst}");
    }
}

/// The same data and seed give bit-identical results, sequential or with threads.
#[test]
fn deterministic_across_runs_and_thread_counts() {
    let (x, _) = planted(700, 40, 6, 0.1, 3);
    let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let p = SemiNmf::params()
        .k(6)
        .seed(9)
        .max_iter(40)
        .block_rows(Some(16))
        .check()
        .unwrap();
    let a = p
        .fit(SamplesRef::new(&xs, 700, 40).unwrap(), Par::Seq)
        .unwrap();
    let b = p
        .fit(SamplesRef::new(&xs, 700, 40).unwrap(), Par::rayon(2))
        .unwrap();
    let c = p
        .fit(SamplesRef::new(&xs, 700, 40).unwrap(), Par::rayon(2))
        .unwrap();
    assert_eq!(a.dictionary, b.dictionary);
    assert_eq!(a.codes, b.codes);
    assert_eq!(b.codes, c.codes);
    assert_eq!(a.objective_trace, c.objective_trace);
    let other = SemiNmf::params()
        .k(6)
        .seed(10)
        .max_iter(40)
        .init(Init::Samples)
        .check()
        .unwrap()
        .fit(SamplesRef::new(&xs, 700, 40).unwrap(), Par::Seq)
        .unwrap();
    assert_ne!(a.codes, other.codes);
}

/// In f32 the objective trace is monotone up to the rounding of the f32 products (1e-5 relative).
#[test]
fn f32_objective_monotone() {
    let (x, _) = planted(500, 64, 8, 0.05, 11);
    let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let fit = SemiNmf::params()
        .k(8)
        .seed(1)
        .check()
        .unwrap()
        .fit(SamplesRef::new(&xs, 500, 64).unwrap(), Par::rayon(0))
        .unwrap();
    for w in fit.objective_trace.windows(2) {
        assert!(w[1] <= w[0] * (1.0 + 1e-5), "{} -> {}", w[0], w[1]);
    }
    assert!(fit.converged, "{} iterations", fit.iterations);
}
