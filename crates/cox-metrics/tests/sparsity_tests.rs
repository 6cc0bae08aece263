//! Sparsity tests: hand-computed cases, the numpy formulas (fixture), errors, Hoyer's bounds.

mod common;

use common::{close, f32s, f64s, fixture, n, usizes};
use cox_metrics::{hoyer, sparsity, MetricsError};
use proptest::prelude::*;

#[test]
fn hoyer_hand_cases() {
    // One non-zero: 1, whatever its sign or size.
    assert_eq!(hoyer(&[0.0, -7.0, 0.0]), Some(1.0));
    // All equal magnitudes: 0.
    assert_eq!(hoyer(&[1.0, -1.0, 1.0, -1.0]), Some(0.0));
    // n = 4, x = (3, 4, 0, 0): L1/L2 = 7/5, (2 − 1.4)/(2 − 1) = 0.6.
    assert!((hoyer(&[3.0, 4.0, 0.0, 0.0]).unwrap() - 0.6).abs() < 1e-15);
    // n = 1: defined as 1 when non-zero.
    assert_eq!(hoyer(&[2.5]), Some(1.0));
    assert_eq!(hoyer(&[0.0]), None);
}

#[test]
fn hand_computed_report() {
    // Samples: (0, 0.5, 2), (0.01, 0, 0), (0, 0, 3), eps = 0.1 (so 0.01 is inactive).
    let acts = [0.0, 0.5, 2.0, 0.01, 0.0, 0.0, 0.0, 0.0, 3.0];
    let r = sparsity(&acts, 3, 3, 0.1).unwrap();
    assert_eq!(r.l0, [2, 0, 1]);
    assert_eq!(r.mean_l0, 1.0);
    assert_eq!(r.zero_fraction, 6.0 / 9.0);
    // Concept 0 has mass 0.01 but is never above eps: dead.
    assert_eq!(r.dead, [0]);
    assert_eq!(r.frequency, [0.0, 1.0 / 3.0, 2.0 / 3.0]);
    let mass = 0.01 + 0.5 + 2.0 + 3.0;
    assert!((r.mass_share[0] - 0.01 / mass).abs() < 1e-9);
    assert!((r.mass_share[2] - 5.0 / mass).abs() < 1e-9);
    // Sample 1 has a single non-zero (Hoyer 1 even though L0 = 0: Hoyer has no threshold).
    assert_eq!(r.hoyer[1], Some(1.0));
    assert_eq!(r.hoyer[2], Some(1.0));
    // Sample 0: L1/L2 = 2.5/√4.25, n = 3.
    let h0 = (3f64.sqrt() - 2.5 / 4.25f64.sqrt()) / (3f64.sqrt() - 1.0);
    assert!((r.hoyer[0].unwrap() - h0).abs() < 1e-7);
    assert!((r.mean_hoyer.unwrap() - (h0 + 2.0) / 3.0).abs() < 1e-7);
}

#[test]
fn signed_activations_count_by_magnitude() {
    // PCA scores: a negative score is as active as a positive one.
    let r = sparsity(&[-1.0, 0.0, 1.0, -0.05], 2, 2, 0.1).unwrap();
    assert_eq!(r.l0, [1, 1]);
    // Concept 0 carries |−1| + |1| = 2 of the total 2.05.
    assert!((r.mass_share[0] - 2.0 / 2.05).abs() < 1e-8);
    assert!((r.mass_share[1] - 0.05 / 2.05).abs() < 1e-8);
}

#[test]
fn all_zero_activations() {
    let r = sparsity(&[0.0; 6], 3, 2, 0.0).unwrap();
    assert_eq!((r.mean_l0, r.zero_fraction, r.mean_hoyer), (0.0, 1.0, None));
    assert_eq!(
        (r.dead.clone(), r.mass_share.clone()),
        (vec![0, 1], vec![0.0, 0.0])
    );
}

#[test]
fn matches_numpy() {
    for (c, case) in fixture("sparsity").iter().enumerate() {
        let (m, k) = (n(case, "samples"), n(case, "k"));
        let eps = case["eps"].as_f64().unwrap() as f32;
        let r = sparsity(&f32s(&case["activations"]), m, k, eps).unwrap();
        let what = format!("case {c}");
        assert_eq!(r.l0, usizes(&case["l0"]), "{what}");
        assert_eq!(r.dead, usizes(&case["dead"]), "{what}");
        close(r.mean_l0, case["mean_l0"].as_f64().unwrap(), 1e-14, &what);
        close(
            r.zero_fraction,
            case["zero_fraction"].as_f64().unwrap(),
            1e-14,
            &what,
        );
        for (g, w) in r.hoyer.iter().zip(case["hoyer"].as_array().unwrap()) {
            match (g, w.as_f64()) {
                (Some(g), Some(w)) => close(*g, w, 1e-12, &what),
                (None, None) => {}
                other => panic!("{what}: hoyer {other:?}"),
            }
        }
        close(
            r.mean_hoyer.unwrap(),
            case["mean_hoyer"].as_f64().unwrap(),
            1e-12,
            &what,
        );
        for (g, w) in r.frequency.iter().zip(f64s(&case["frequency"])) {
            close(*g, w, 1e-14, &what);
        }
        for (g, w) in r.mass_share.iter().zip(f64s(&case["mass_share"])) {
            close(*g, w, 1e-12, &what);
        }
        // Every case has an all-zero first sample.
        assert_eq!((r.l0[0], r.hoyer[0]), (0, None), "{what}");
    }
}

#[test]
fn errors_name_sample_and_concept() {
    assert_eq!(
        sparsity(&[0.0, 1.0, f32::INFINITY, 0.0], 2, 2, 0.0),
        Err(MetricsError::NonFinite {
            op: "sparsity",
            sample: 1,
            concept: 0
        })
    );
    assert_eq!(
        sparsity(&[0.0; 5], 2, 2, 0.0),
        Err(MetricsError::ShapeMismatch {
            op: "sparsity",
            len: 5,
            samples: 2,
            k: 2
        })
    );
    assert_eq!(
        sparsity(&[], 0, 2, 0.0),
        Err(MetricsError::TooFew {
            op: "sparsity",
            what: "samples",
            needed: 1,
            got: 0
        })
    );
    assert_eq!(
        sparsity(&[], 0, 0, 0.0),
        Err(MetricsError::NoConcepts { op: "sparsity" })
    );
}

#[test]
#[should_panic(expected = "sparsity: eps must be >= 0")]
fn negative_eps_panics() {
    let _ = sparsity(&[1.0], 1, 1, -1.0);
}

proptest! {
    #[test]
    fn hoyer_in_unit_interval(x in prop::collection::vec(-100.0f32..100.0, 1..40)) {
        if let Some(h) = hoyer(&x) {
            prop_assert!((0.0..=1.0).contains(&h), "{h}");
        }
    }

    #[test]
    fn report_is_consistent(k in 1usize..6, acts in prop::collection::vec(prop_oneof![Just(0.0f32), 0.0f32..5.0], 1..60),
                            eps in 0.0f32..1.0) {
        let m = acts.len() / k;
        prop_assume!(m > 0);
        let r = sparsity(&acts[..m * k], m, k, eps).unwrap();
        prop_assert!(r.l0.iter().all(|&l| l <= k));
        prop_assert!((r.zero_fraction - (1.0 - r.mean_l0 / k as f64)).abs() < 1e-12);
        let freq_sum: f64 = r.frequency.iter().sum();
        prop_assert!((freq_sum - r.mean_l0).abs() < 1e-9);
        let share: f64 = r.mass_share.iter().sum();
        prop_assert!(share == 0.0 || (share - 1.0).abs() < 1e-9);
        if let Some(h) = r.mean_hoyer {
            prop_assert!((0.0..=1.0).contains(&h));
        }
    }
}
