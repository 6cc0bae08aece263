//! Golden test against scikit-learn 1.5.2 `DictionaryLearning(positive_code=True, fit_algorithm="cd",
//! transform_algorithm="lasso_cd", alpha=1)` on a small fixed matrix. The fixture and the script that
//! made it are in `tests/fixtures/snmf/` at the workspace root.

use cox_snmf::{kkt_report, Dictionary, EncodeParams, Init, Par, SamplesRef, SemiNmf, SvdMethod};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/snmf/golden.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("golden fixture")).unwrap()
}

/// `(m, b, k)` of the fixture.
fn dims(g: &Value) -> (usize, usize, usize) {
    let n = |key: &str| g[key].as_u64().unwrap() as usize;
    (n("m"), n("b"), n("k"))
}

fn vec_f64(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn objective_matches_sklearn() {
    let g = golden();
    let (m, b, k) = dims(&g);
    let x = vec_f64(&g["x"]);
    let sk = g["objective_returned"].as_f64().unwrap();
    for init in [Init::Svd(SvdMethod::Exact), Init::Svd(SvdMethod::default())] {
        for x32 in [false, true] {
            let fit_obj = if x32 {
                let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                SemiNmf::params()
                    .k(k)
                    .alpha(1.0)
                    .init(init)
                    .check()
                    .unwrap()
                    .fit(SamplesRef::new(&xf, m, b).unwrap(), Par::Seq)
                    .unwrap()
                    .objective
            } else {
                SemiNmf::params()
                    .k(k)
                    .alpha(1.0)
                    .init(init)
                    .check()
                    .unwrap()
                    .fit(SamplesRef::new(&x, m, b).unwrap(), Par::Seq)
                    .unwrap()
                    .objective
            };
            // No worse than scikit-learn's objective + 0.5% (and in practice within 0.1%).
            assert!(
                fit_obj <= sk * 1.005,
                "{init:?} f32={x32}: ours {fit_obj} vs sklearn {sk}"
            );
            assert!(
                fit_obj >= sk * 0.95,
                "{init:?} f32={x32}: suspiciously low {fit_obj} vs {sk}"
            );
        }
    }
}

#[test]
fn dictionary_matches_sklearn_atoms() {
    let g = golden();
    let (m, b, k) = dims(&g);
    let x = vec_f64(&g["x"]);
    let sk = vec_f64(&g["components"]);
    let fit = SemiNmf::params()
        .k(k)
        .alpha(1.0)
        .init(Init::Svd(SvdMethod::Exact))
        .check()
        .unwrap()
        .fit(SamplesRef::new(&x, m, b).unwrap(), Par::Seq)
        .unwrap();
    // Same init and same fixed-point iteration: the atoms agree in order, to 1e-3 cosine.
    for c in 0..k {
        let (a, s) = (fit.dictionary.atom(c), &sk[c * b..(c + 1) * b]);
        let dot: f64 = a.iter().zip(s).map(|(p, q)| p * q).sum();
        let na = a.iter().map(|v| v * v).sum::<f64>().sqrt();
        let ns = s.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(
            dot / (na * ns) > 0.999,
            "atom {c}: cosine {}",
            dot / (na * ns)
        );
    }
}

#[test]
fn encode_matches_sklearn_transform() {
    let g = golden();
    let (_, b, k) = dims(&g);
    let dict = Dictionary::new(vec_f64(&g["components"]), k, b).unwrap();
    let xt = vec_f64(&g["x_test"]);
    let n = xt.len() / b;
    let ours = dict
        .encode(
            SamplesRef::new(&xt, n, b).unwrap(),
            &EncodeParams::with_alpha(1.0),
            Par::Seq,
        )
        .unwrap();
    let sk = vec_f64(&g["transform_test"]);
    let scale = sk.iter().fold(1.0f64, |a, &v| a.max(v));
    for (o, s) in ours.iter().zip(&sk) {
        // sklearn's Lasso stops at tol 1e-4 on the duality gap: agree to that precision.
        assert!((o - s).abs() < 1e-3 * scale, "ours {o} vs sklearn {s}");
    }
    // And ours satisfies the KKT conditions more tightly.
    let r = kkt_report(SamplesRef::new(&xt, n, b).unwrap(), &dict, &ours, 1.0).unwrap();
    assert!(r.codes < 1e-6, "{r:?}");
}
