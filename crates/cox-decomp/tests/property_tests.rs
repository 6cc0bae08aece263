//! Properties of every method on random small matrices: encoding the training data reproduces the
//! fit's activations, K-Means' inertia never increases, PCA's concepts are orthonormal, Simple picks
//! exactly the top-K norms, and fits are deterministic whatever the parallelism.

use cox_decomp::{DecompParams, Decomposition, KMeans, Method, Pca, Simple};
use cox_snmf::{Par, SamplesRef};
use proptest::prelude::*;

/// `(m, b, k, data)` with `1 <= k <= min(m, b, 5)`.
fn problem() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>)> {
    (3usize..24, 2usize..9)
        .prop_flat_map(|(m, b)| {
            (
                Just(m),
                Just(b),
                1usize..=m.min(b).min(5),
                proptest::collection::vec(-5.0f32..5.0, m * b),
            )
        })
        .prop_map(|(m, b, k, mut data)| {
            // A shared offset, as token representations have, so centring matters.
            data.iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v += (i % b) as f32);
            (m, b, k, data)
        })
}

fn params(method: Method, k: usize, seed: u64) -> DecompParams {
    let mut p = DecompParams::new(method, k);
    p.seed = seed;
    if method == Method::SemiNmf {
        p.max_iter = Some(200);
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn encode_of_training_data_reproduces_activations((m, b, k, data) in problem(), seed in 0u64..4) {
        let x = SamplesRef::new(&data, m, b).unwrap();
        for method in Method::ALL {
            let out = params(method, k, seed).build().unwrap().fit(x, Par::Seq).unwrap();
            let enc = out.dictionary.encode(x, Par::Seq).unwrap();
            prop_assert_eq!(enc.len(), m * k);
            if method == Method::SemiNmf {
                // The fit's codes come from its last code sweeps, encode solves the Lasso from zero.
                // With linearly dependent concepts the minimiser is not unique, so compare the
                // per-sample Lasso objective ½‖x − Uv‖² + α‖v‖₁, which is.
                let d = &out.dictionary;
                let alpha = d.alpha.unwrap();
                let lasso = |i: usize, v: &[f32]| -> f64 {
                    let xi = x.sample(i);
                    let mut r: Vec<f64> = xi.iter().map(|&t| t as f64).collect();
                    for (j, &vj) in v.iter().enumerate() {
                        r.iter_mut().zip(d.concept(j)).for_each(|(r, &c)| *r -= vj as f64 * c as f64);
                    }
                    0.5 * r.iter().map(|t| t * t).sum::<f64>() + alpha * v.iter().map(|&t| t as f64).sum::<f64>()
                };
                for i in 0..m {
                    let (f, e) = (lasso(i, &out.activations[i * k..(i + 1) * k]), lasso(i, &enc[i * k..(i + 1) * k]));
                    prop_assert!((f - e).abs() <= 1e-3 * e.max(1.0), "sample {i}: fit {f} vs encode {e}");
                    prop_assert!(enc[i * k..(i + 1) * k].iter().all(|&v| v >= 0.0));
                }
            } else {
                prop_assert_eq!(&out.activations, &enc, "{}", method);
            }
        }
    }

    #[test]
    fn kmeans_inertia_never_increases((m, b, k, data) in problem(), seed in 0u64..8) {
        let x = SamplesRef::new(&data, m, b).unwrap();
        let mut km = KMeans::new(k);
        km.seed = seed;
        let out = km.fit(x, Par::Seq).unwrap();
        let trace = &out.report.objective_trace;
        prop_assert_eq!(trace.len(), out.report.iterations);
        let scale = trace[0].max(1.0);
        for w in trace.windows(2) {
            prop_assert!(w[1] <= w[0] + 1e-5 * scale, "trace {:?}", trace);
        }
        let fin = out.report.objective.unwrap();
        prop_assert!(fin <= trace[trace.len() - 1] + 1e-5 * scale);
        // Labels are the nearest centres, i.e. the largest activations.
        let labels = out.report.labels.unwrap();
        for (row, &l) in out.activations.chunks_exact(k).zip(&labels) {
            let best = row.iter().cloned().fold(f32::MIN, f32::max);
            prop_assert!(row[l as usize] >= best - 1e-6);
        }
    }

    #[test]
    fn pca_concepts_are_orthonormal((m, b, k, data) in problem(), seed in 0u64..4) {
        let x = SamplesRef::new(&data, m, b).unwrap();
        for svd in [None, Some(cox_snmf::SvdMethod::default())] {
            let out = Pca { k, seed, svd }.fit(x, Par::Seq).unwrap();
            let d = &out.dictionary;
            for i in 0..k {
                // A component of the null space (rank-deficient centred data) is still a unit vector.
                for j in 0..k {
                    let dot: f64 = d.concept(i).iter().zip(d.concept(j)).map(|(&a, &c)| a as f64 * c as f64).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    prop_assert!((dot - want).abs() < 1e-4, "⟨c{i}, c{j}⟩ = {dot}");
                }
                // scikit-learn's sign rule: the largest-|·| entry is positive.
                let c = d.concept(i);
                let big = c.iter().cloned().fold(0.0f32, |a, v| if v.abs() > a.abs() { v } else { a });
                prop_assert!(big >= 0.0);
            }
            let ratio = out.report.explained_variance_ratio.unwrap();
            prop_assert!(ratio.iter().sum::<f64>() <= 1.0 + 1e-5);
            prop_assert!(ratio.windows(2).all(|w| w[1] <= w[0] + 1e-6));
        }
    }

    #[test]
    fn simple_picks_exactly_the_top_k_norms((m, b, k, data) in problem()) {
        let x = SamplesRef::new(&data, m, b).unwrap();
        let out = Simple { k }.fit(x, Par::Seq).unwrap();
        let norm = |i: usize| x.sample(i).iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        let sel = out.report.selected_samples.unwrap();
        prop_assert_eq!(sel.len(), k);
        // Ascending by norm (numpy's argsort(norms)[-K:] order) ...
        prop_assert!(sel.windows(2).all(|w| norm(w[0]) <= norm(w[1])));
        // ... and no unselected sample has a larger norm than the smallest selected one.
        let min_sel = norm(sel[0]);
        for i in (0..m).filter(|i| !sel.contains(i)) {
            prop_assert!(norm(i) <= min_sel);
        }
        for (j, &i) in sel.iter().enumerate() {
            prop_assert_eq!(out.dictionary.concept(j), x.sample(i));
            // A concept is at distance zero from its own sample: activation 1 (up to the rounding of
            // ‖x‖² − 2⟨x, c⟩ + ‖c‖², as in scikit-learn's euclidean_distances).
            prop_assert!(out.activations[i * k + j] >= 1.0 - 1e-5);
        }
    }

    #[test]
    fn fits_are_deterministic_across_thread_counts((m, b, k, data) in problem(), seed in 0u64..4) {
        let x = SamplesRef::new(&data, m, b).unwrap();
        for method in Method::ALL {
            let d = params(method, k, seed).build().unwrap();
            let a = d.fit(x, Par::Seq).unwrap();
            let c = d.fit(x, Par::rayon(3)).unwrap();
            prop_assert_eq!(&a.dictionary, &c.dictionary, "{}", method);
            prop_assert_eq!(&a.activations, &c.activations, "{}", method);
            prop_assert_eq!(&a.report.objective_trace, &c.report.objective_trace);
            let e1 = a.dictionary.encode(x, Par::Seq).unwrap();
            let e2 = a.dictionary.encode(x, Par::rayon(3)).unwrap();
            prop_assert_eq!(e1, e2);
        }
    }
}

#[test]
fn determinism_on_a_larger_matrix_with_many_blocks() {
    // Enough rows for several kernel blocks, so the rayon path really splits the work.
    let s = cox_snmf::synthetic::TokenLike::reference(3000, 64);
    let data = cox_snmf::synthetic::token_like(&s, 3);
    let x = SamplesRef::new(&data, 3000, 64).unwrap();
    for method in Method::ALL {
        let mut p = params(method, 6, 11);
        if method == Method::KMeans {
            p.n_init = Some(2);
        }
        let d = p.build().unwrap();
        let a = d.fit(x, Par::Seq).unwrap();
        let c = d.fit(x, Par::rayon(0)).unwrap();
        assert_eq!(a.dictionary, c.dictionary, "{method}");
        assert_eq!(a.activations, c.activations, "{method}");
        // Same seed twice: the same result.
        let again = d.fit(x, Par::rayon(0)).unwrap();
        assert_eq!(a.dictionary, again.dictionary, "{method}");
    }
}

#[test]
fn empty_clusters_are_relocated_to_the_farthest_sample() {
    // Two tight groups and one outlier; the third initial centre is far from everything, so its
    // cluster is empty after the first assignment and takes the sample farthest from its centre.
    let data = [
        0.0f32, 0.0, 0.1, 0.0, 0.0, 0.1, 5.0, 5.0, 5.1, 5.0, 9.0, -9.0,
    ];
    let mut km = KMeans::new(3);
    km.init_centres = Some(vec![0.0, 0.0, 5.0, 5.0, 100.0, 100.0]);
    let out = km
        .fit(SamplesRef::new(&data, 6, 2).unwrap(), Par::Seq)
        .unwrap();
    assert!(out.report.resampled >= 1);
    assert!(out.report.dead_concepts.is_empty());
    let labels = out.report.labels.unwrap();
    assert_eq!(
        labels[5], 2,
        "the outlier owns the relocated cluster: {labels:?}"
    );
    assert_eq!(out.dictionary.concept(2), &[9.0, -9.0]);
    assert!(out.report.converged);
}

#[test]
fn identical_samples_leave_extra_clusters_empty() {
    // scikit-learn does not relocate when every sample sits on its centre; the empty cluster's centre
    // becomes the data mean (zero in centred coordinates).
    let data = [1.0f32, 2.0, 1.0, 2.0, 1.0, 2.0];
    let out = KMeans::new(2)
        .fit(SamplesRef::new(&data, 3, 2).unwrap(), Par::Seq)
        .unwrap();
    assert_eq!(out.report.objective, Some(0.0));
    assert_eq!(out.dictionary.concept(0), &[1.0, 2.0]);
    assert_eq!(out.dictionary.concept(1), &[1.0, 2.0]);
    assert_eq!(out.report.dead_concepts, vec![1]);
}

#[test]
fn pca_of_a_single_sample_has_no_variance() {
    let data = [1.0f32, 2.0, 3.0];
    let out = Pca::new(1)
        .fit(SamplesRef::new(&data, 1, 3).unwrap(), Par::Seq)
        .unwrap();
    assert_eq!(out.activations, vec![0.0]);
    assert_eq!(out.report.explained_variance_ratio, Some(vec![0.0]));
}

#[test]
fn randomized_pca_is_deterministic_across_thread_counts() {
    let s = cox_snmf::synthetic::TokenLike::reference(3000, 64);
    let data = cox_snmf::synthetic::token_like(&s, 5);
    let x = SamplesRef::new(&data, 3000, 64).unwrap();
    let pca = Pca {
        k: 8,
        seed: 3,
        svd: Some(cox_snmf::SvdMethod::default()),
    };
    let a = pca.fit(x, Par::Seq).unwrap();
    let c = pca.fit(x, Par::rayon(0)).unwrap();
    assert_eq!(a.dictionary, c.dictionary);
    assert_eq!(a.activations, c.activations);
    assert_eq!(a.report.explained_variance, c.report.explained_variance);
}
