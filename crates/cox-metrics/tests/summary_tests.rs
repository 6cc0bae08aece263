//! Summary tests: numpy's `np.mean` / `np.std` (fixture), hand cases, the K-sweep grouping.

mod common;

use common::{close, f64s, fixture};
use cox_metrics::{k_sweep_rows, mean_std, MeanStd};

#[test]
fn matches_numpy() {
    let cases = fixture("mean_std");
    assert!(cases.len() >= 5);
    for (c, case) in cases.iter().enumerate() {
        let (mean, std) = mean_std(&f64s(&case["values"]));
        close(
            mean,
            case["mean"].as_f64().unwrap(),
            1e-14,
            &format!("case {c} mean"),
        );
        // The 1e6-offset case has std ≈ 1: relative error of the two-pass formula stays ~1e-10.
        close(
            std,
            case["std"].as_f64().unwrap(),
            1e-9,
            &format!("case {c} std"),
        );
    }
}

#[test]
fn hand_cases() {
    // Population std (ddof = 0): {1, 3} → mean 2, std 1 (the sample std would be √2).
    assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 1.0));
    assert_eq!(mean_std(&[-4.0, -4.0, -4.0]), (-4.0, 0.0));
    let (m, s) = mean_std(&[f64::NAN, 1.0]);
    assert!(m.is_nan() && s.is_nan());
}

#[test]
#[should_panic(expected = "mean_std: no values")]
fn empty_panics() {
    mean_std(&[]);
}

#[test]
fn k_sweep_groups_by_k() {
    let rows = k_sweep_rows(&[
        (5, 1.0),
        (40, 0.2),
        (5, 3.0),
        (20, 0.5),
        (40, 0.4),
        (40, 0.6),
    ]);
    assert_eq!(rows.iter().map(|r| r.k).collect::<Vec<_>>(), [5, 20, 40]);
    assert_eq!(
        rows[0].value,
        MeanStd {
            mean: 2.0,
            std: 1.0,
            n: 2
        }
    );
    assert_eq!(
        rows[1].value,
        MeanStd {
            mean: 0.5,
            std: 0.0,
            n: 1
        }
    );
    assert_eq!(rows[2].value.n, 3);
    assert!((rows[2].value.mean - 0.4).abs() < 1e-15);
    assert!((rows[2].value.std - (0.08f64 / 3.0).sqrt()).abs() < 1e-15);
    assert!(k_sweep_rows(&[]).is_empty());
}
