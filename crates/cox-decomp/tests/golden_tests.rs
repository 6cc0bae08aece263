//! Golden tests against scikit-learn 1.5.2 (`PCA(n_components=K)`, `KMeans(n_clusters=K,
//! max_iter=5000)` and the reference's "simple" baseline) on a small fixed float32 matrix. The
//! fixture and the script that made it are in `tests/fixtures/decomp/` at the workspace root.

use cox_decomp::{Decomposition, KMeans, Pca, Simple};
use cox_snmf::{Par, SamplesRef};
use serde_json::Value;

struct Golden {
    g: Value,
    m: usize,
    b: usize,
    k: usize,
    x: Vec<f32>,
    x_test: Vec<f32>,
}

fn golden() -> Golden {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/decomp/golden.json"
    );
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("golden fixture")).unwrap();
    let n = |key: &str| g[key].as_u64().unwrap() as usize;
    let (m, b, k) = (n("m"), n("b"), n("k"));
    let x = f32s(&g["x"]);
    let x_test = f32s(&g["x_test"]);
    Golden {
        g,
        m,
        b,
        k,
        x,
        x_test,
    }
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    f64s(v).into_iter().map(|v| v as f32).collect()
}

/// Largest absolute difference, printed so the agreement is visible with `--nocapture`.
fn max_diff(what: &str, ours: &[f32], theirs: &[f64]) -> f64 {
    assert_eq!(ours.len(), theirs.len(), "{what}: lengths differ");
    let d = ours
        .iter()
        .zip(theirs)
        .map(|(&a, &b)| (a as f64 - b).abs())
        .fold(0.0, f64::max);
    println!("{what}: max |ours − sklearn| = {d:.3e}");
    d
}

#[test]
fn pca_matches_sklearn_components_scores_and_variance() {
    let t = golden();
    let p = &t.g["pca"];
    assert_eq!(p["svd_solver"], "full");
    let x = SamplesRef::new(&t.x, t.m, t.b).unwrap();
    let pca = Pca::new(t.k);
    assert_eq!(pca.solver(t.m, t.b), cox_snmf::SvdMethod::Exact);
    let out = pca.fit(x, Par::Seq).unwrap();
    // Same sign rule as scikit-learn 1.5, so the components agree without any sign fix-up.
    assert!(
        max_diff(
            "pca components",
            &out.dictionary.concepts,
            &f64s(&p["components"])
        ) < 1e-5
    );
    assert!(
        max_diff(
            "pca mean",
            out.dictionary.mean.as_ref().unwrap(),
            &f64s(&p["mean"])
        ) < 1e-5
    );
    assert!(max_diff("pca scores", &out.activations, &f64s(&p["scores"])) < 1e-4);
    let test = out
        .dictionary
        .encode(
            SamplesRef::new(&t.x_test, t.x_test.len() / t.b, t.b).unwrap(),
            Par::Seq,
        )
        .unwrap();
    assert!(max_diff("pca transform(test)", &test, &f64s(&p["transform_test"])) < 1e-4);
    let rep = &out.report;
    for (name, ours, theirs) in [
        (
            "explained_variance",
            rep.explained_variance.as_ref().unwrap(),
            f64s(&p["explained_variance"]),
        ),
        (
            "explained_variance_ratio",
            rep.explained_variance_ratio.as_ref().unwrap(),
            f64s(&p["explained_variance_ratio"]),
        ),
    ] {
        for (a, b) in ours.iter().zip(&theirs) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn pca_randomized_solver_matches_sklearn_too() {
    let t = golden();
    let p = &t.g["pca"];
    let x = SamplesRef::new(&t.x, t.m, t.b).unwrap();
    let mut pca = Pca::new(t.k);
    pca.svd = Some(cox_snmf::SvdMethod::default());
    let out = pca.fit(x, Par::Seq).unwrap();
    assert!(
        max_diff(
            "pca components (randomized)",
            &out.dictionary.concepts,
            &f64s(&p["components"])
        ) < 1e-4
    );
}

#[test]
fn kmeans_from_given_centres_reaches_sklearn_centres_and_labels() {
    let t = golden();
    let g = &t.g["kmeans_init"];
    let init: Vec<f32> = g["init_idx"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            let i = i.as_u64().unwrap() as usize;
            t.x[i * t.b..(i + 1) * t.b].to_vec()
        })
        .collect();
    let mut km = KMeans::new(t.k);
    km.init_centres = Some(init);
    let out = km
        .fit(SamplesRef::new(&t.x, t.m, t.b).unwrap(), Par::Seq)
        .unwrap();
    let labels: Vec<u32> = g["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(out.report.labels.as_ref().unwrap(), &labels);
    assert!(
        max_diff(
            "kmeans centres",
            &out.dictionary.concepts,
            &f64s(&g["centres"])
        ) < 1e-4
    );
    assert!(
        max_diff(
            "kmeans activations",
            &out.activations,
            &f64s(&g["activations"])
        ) < 1e-5
    );
    let test = out
        .dictionary
        .encode(
            SamplesRef::new(&t.x_test, t.x_test.len() / t.b, t.b).unwrap(),
            Par::Seq,
        )
        .unwrap();
    assert!(
        max_diff(
            "kmeans transform(test)",
            &test,
            &f64s(&g["activations_test"])
        ) < 1e-5
    );
    let sk_inertia = g["inertia"].as_f64().unwrap();
    let ours = out.report.objective.unwrap();
    println!(
        "kmeans inertia: ours {ours} sklearn {sk_inertia}; iterations ours {} sklearn {}",
        out.report.iterations, g["n_iter"]
    );
    assert!((ours - sk_inertia).abs() <= 1e-4 * sk_inertia);
    assert_eq!(out.report.iterations as u64, g["n_iter"].as_u64().unwrap());
    assert!(out.report.converged);
}

#[test]
fn kmeans_plus_plus_inertia_is_close_to_sklearns_best_of_ten() {
    let t = golden();
    let g = &t.g["kmeans_pp"];
    let best10 = g["best_of_10_inertia"].as_f64().unwrap();
    let per_seed = f64s(&g["inertia_per_seed"]);
    let sk_worst = per_seed.iter().cloned().fold(0.0, f64::max);
    let x = SamplesRef::new(&t.x, t.m, t.b).unwrap();
    // Ten runs, the best kept: within 3% of scikit-learn's best of ten.
    let mut km = KMeans::new(t.k);
    km.n_init = 10;
    let ours10 = km.fit(x, Par::Seq).unwrap().report.objective.unwrap();
    println!(
        "kmeans++ best of 10: ours {ours10:.4} sklearn {best10:.4} ({:+.2}%)",
        100.0 * (ours10 / best10 - 1.0)
    );
    assert!(ours10 <= best10 * 1.03, "{ours10} vs {best10}");
    // Single runs (the reference's n_init="auto") stay in scikit-learn's range of single runs.
    for seed in 0..10 {
        let mut km = KMeans::new(t.k);
        km.seed = seed;
        let ours = km.fit(x, Par::Seq).unwrap().report.objective.unwrap();
        println!("kmeans++ seed {seed}: ours {ours:.4}");
        assert!(
            ours <= sk_worst * 1.03,
            "seed {seed}: {ours} vs sklearn's worst {sk_worst}"
        );
    }
}

#[test]
fn simple_matches_reference_indices_and_activations() {
    let t = golden();
    let g = &t.g["simple"];
    let out = Simple { k: t.k }
        .fit(SamplesRef::new(&t.x, t.m, t.b).unwrap(), Par::Seq)
        .unwrap();
    let idx: Vec<usize> = g["indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(out.report.selected_samples.as_ref().unwrap(), &idx);
    assert!(
        max_diff(
            "simple activations",
            &out.activations,
            &f64s(&g["activations"])
        ) < 1e-5
    );
}

#[test]
fn semi_nmf_through_the_interface_matches_sklearn_objective() {
    // The Semi-NMF golden fixture of cox-snmf (scikit-learn's DictionaryLearning as xl-vlms runs it).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/snmf/golden.json"
    );
    let g: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("snmf fixture")).unwrap();
    let n = |key: &str| g[key].as_u64().unwrap() as usize;
    let (m, b, k) = (n("m"), n("b"), n("k"));
    let x = f32s(&g["x"]);
    let out = cox_decomp::DecompParams::new(cox_decomp::Method::SemiNmf, k)
        .build()
        .unwrap()
        .fit(SamplesRef::new(&x, m, b).unwrap(), Par::Seq)
        .unwrap();
    let sk = g["objective_returned"].as_f64().unwrap();
    let ours = out.report.objective.unwrap();
    println!(
        "semi-nmf objective: ours {ours:.4} sklearn {sk:.4} ({:+.3}%)",
        100.0 * (ours / sk - 1.0)
    );
    assert!(ours <= sk * 1.005 && ours >= sk * 0.95);
    assert_eq!(out.dictionary.alpha, Some(1.0));
    assert!(out.activations.iter().all(|&a| a >= 0.0));
}
