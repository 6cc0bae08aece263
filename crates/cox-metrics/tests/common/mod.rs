//! The shared reference fixture, `tests/fixtures/metrics/metrics.json` at the workspace root, written by
//! `make_fixtures.py` next to it (numpy, scipy and scikit-learn, independently of this crate).

#![allow(dead_code)]

use serde_json::Value;

/// One section of the fixture, e.g. `overlap`.
pub fn fixture(section: &str) -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/metrics/metrics.json"
    );
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("metrics fixture"))
        .expect("fixture JSON");
    all[section].as_array().expect("fixture section").clone()
}

pub fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

pub fn f32s(v: &Value) -> Vec<f32> {
    f64s(v).into_iter().map(|x| x as f32).collect()
}

pub fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("integer") as usize)
        .collect()
}

pub fn n(v: &Value, key: &str) -> usize {
    v[key].as_u64().expect("integer") as usize
}

/// `|a − b| ≤ tol · max(1, |b|)`.
#[track_caller]
pub fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * b.abs().max(1.0),
        "{what}: got {a}, expected {b}"
    );
}
