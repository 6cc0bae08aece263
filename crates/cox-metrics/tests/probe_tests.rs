//! The linear-probe ceiling against an independent numpy + scikit-learn computation of the same
//! estimator (`tests/fixtures/make_probe_fixture.py`), plus the error cases.

use cox_metrics::{probe_auc, MetricsError};
use serde_json::Value;

fn fixture() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/probe_fixture.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn labels(v: &Value) -> Vec<Vec<String>> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn matches_the_numpy_reference() {
    let f = fixture();
    let dim = f["dim"].as_u64().unwrap() as usize;
    let r = probe_auc(
        &floats(&f["train"]),
        &labels(&f["train_labels"]),
        &floats(&f["test"]),
        &labels(&f["test_labels"]),
        dim,
        f["ridge"].as_f64().unwrap(),
    )
    .unwrap();
    let expected = f["expected_auc"].as_object().unwrap();
    assert_eq!(r.factors.len(), expected.len());
    for pf in &r.factors {
        let want = expected[&pf.factor].as_f64().unwrap();
        assert!(
            (pf.auc - want).abs() < 1e-9,
            "{}: {} vs numpy {want}",
            pf.factor,
            pf.auc
        );
    }
    let mean = expected.values().map(|v| v.as_f64().unwrap()).sum::<f64>() / 5.0;
    assert!((r.mean_auc - mean).abs() < 1e-9);
}

/// A factor carried by one feature direction is found whatever its orientation; one independent of
/// the data stays near chance.
#[test]
fn separable_factor_scores_one_and_noise_factor_near_half() {
    let dim = 3;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let (mut ltr, mut lte) = (Vec::new(), Vec::new());
    for i in 0..200 {
        let on = i % 2 == 0;
        let noise_label = (i * 7919) % 3 == 0;
        // Feature 1 carries the factor (negatively), features 0 and 2 are deterministic clutter.
        let row = [
            ((i * 37) % 11) as f32 / 11.0,
            if on { -3.0 } else { 3.0 } + ((i * 13) % 5) as f32 / 10.0,
            ((i * 53) % 17) as f32 / 17.0,
        ];
        let l = vec![
            format!("size={}", if on { "large" } else { "small" }),
            format!("texture={}", if noise_label { "dotted" } else { "plain" }),
        ];
        if i < 150 {
            train.extend(row);
            ltr.push(l);
        } else {
            test.extend(row);
            lte.push(l);
        }
    }
    let r = probe_auc(&train, &ltr, &test, &lte, dim, 1e-2).unwrap();
    let auc = |name: &str| r.factors.iter().find(|f| f.factor == name).unwrap().auc;
    assert_eq!(auc("size=large"), 1.0);
    assert_eq!(auc("size=small"), 1.0);
    assert!(
        (auc("texture=dotted") - 0.5).abs() < 0.25,
        "{}",
        auc("texture=dotted")
    );
}

#[test]
fn bad_inputs_are_errors() {
    let l = |v: &str| vec![v.to_string()];
    let labels = vec![l("a=1"), l("a=2")];
    assert!(matches!(
        probe_auc(&[0.0; 3], &labels, &[0.0; 4], &labels, 2, 1e-2),
        Err(MetricsError::InputShape { .. })
    ));
    assert!(matches!(
        probe_auc(
            &[0.0, f32::NAN, 1.0, 2.0],
            &labels,
            &[0.0; 4],
            &labels,
            2,
            1e-2
        ),
        Err(MetricsError::NonFiniteInput {
            row: 0,
            column: 1,
            ..
        })
    ));
    assert!(matches!(
        probe_auc(&[0.0, 1.0, 1.0, 2.0], &labels, &[0.0; 4], &labels, 2, 0.0),
        Err(MetricsError::InvalidParameter { .. })
    ));
    let same = vec![l("a=1"), l("a=1")];
    assert!(matches!(
        probe_auc(&[0.0, 1.0, 1.0, 2.0], &same, &[0.0; 4], &same, 2, 1e-2),
        Err(MetricsError::NoEvaluableFactor { .. })
    ));
}
