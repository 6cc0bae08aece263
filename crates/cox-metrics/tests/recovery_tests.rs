//! Recovery-AUC tests: hand-computed cases (ties included), edge detectors, errors and properties.

use cox_metrics::{average_ranks, recovery_auc, roc_auc, MetricsError};
use proptest::prelude::*;

/// The AUC by brute force over all positive/negative pairs, the definition the rank formula must match.
fn brute_auc(scores: &[f32], pos: &[bool]) -> Option<f64> {
    let (mut num, mut pairs) = (0.0, 0.0);
    for i in 0..scores.len() {
        for j in 0..scores.len() {
            if pos[i] && !pos[j] {
                pairs += 1.0;
                num += if scores[i] > scores[j] {
                    1.0
                } else if scores[i] == scores[j] {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    (pairs > 0.0).then(|| num / pairs)
}

fn labels(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

/// One hand-computed case: scores, labels (1 = positive), expected AUC.
fn check(scores: &[f32], pos: &[u8], expected: f64) {
    let pos: Vec<bool> = pos.iter().map(|&p| p == 1).collect();
    let got = roc_auc(scores, &pos).unwrap();
    assert!(
        (got - expected).abs() < 1e-12,
        "{scores:?} {pos:?}: got {got}, expected {expected}"
    );
    assert_eq!(Some(got), brute_auc(scores, &pos));
}

#[test]
fn auc_hand_computed_cases() {
    // sklearn's documented example: 3 of 4 pairs ordered.
    check(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1], 0.75);
    // One positive above one of two negatives: 1/2.
    check(&[0.5, 0.2, 0.9], &[1, 0, 0], 0.5);
    // Ties between a positive and a negative count one half: pairs (3>1)=1, (3=3)=.5, (2>1)=1, (2<3)=0.
    check(&[3.0, 2.0, 1.0, 3.0], &[1, 1, 0, 0], 2.5 / 4.0);
    // All tied: 0.5 whatever the labels.
    check(&[7.0, 7.0, 7.0], &[1, 0, 1], 0.5);
    // Ties among positives only do not matter: both positives beat both negatives.
    check(&[5.0, 5.0, 1.0, 2.0], &[1, 1, 0, 0], 1.0);
    // A tie block straddling the classes: positive 2 ties negative 2 (.5), beats negative 1; positive 0
    // loses to both: (0 + 0 + 1 + .5) / 4.
    check(&[0.0, 2.0, 1.0, 2.0], &[1, 1, 0, 0], 1.5 / 4.0);
    // -0.0 and 0.0 tie.
    check(&[-0.0, 0.0], &[1, 0], 0.5);
}

#[test]
fn auc_perfect_inverted_constant() {
    let pos = [true, false, true, false, false, true];
    let perfect: Vec<f32> = pos.iter().map(|&p| if p { 1.0 } else { 0.0 }).collect();
    let inverted: Vec<f32> = perfect.iter().map(|s| 1.0 - s).collect();
    assert_eq!(roc_auc(&perfect, &pos), Some(1.0));
    assert_eq!(roc_auc(&inverted, &pos), Some(0.0));
    assert_eq!(roc_auc(&[0.3; 6], &pos), Some(0.5));
}

#[test]
fn auc_undefined_without_both_classes() {
    assert_eq!(roc_auc(&[1.0, 2.0], &[true, true]), None);
    assert_eq!(roc_auc(&[1.0, 2.0], &[false, false]), None);
    assert_eq!(roc_auc(&[], &[]), None);
}

#[test]
fn average_ranks_with_ties() {
    assert_eq!(average_ranks(&[3.0, 1.0, 2.0]), vec![3.0, 1.0, 2.0]);
    assert_eq!(
        average_ranks(&[1.0, 1.0, 1.0, 0.0]),
        vec![3.0, 3.0, 3.0, 1.0]
    );
    assert_eq!(
        average_ranks(&[2.0, 1.0, 2.0, 1.0]),
        vec![3.5, 1.5, 3.5, 1.5]
    );
}

#[test]
fn recovery_finds_planted_concepts() {
    // 6 samples, 3 concepts: concept 2 detects red perfectly, concept 0 detects small with one miss,
    // concept 1 is noise.
    let l = labels(&[
        &["colour=red", "size=small"],
        &["colour=blue", "size=small"],
        &["colour=red", "size=large"],
        &["colour=blue", "size=large"],
        &["colour=red", "size=small"],
        &["colour=blue", "size=large"],
    ]);
    #[rustfmt::skip]
    let acts = [
        0.9, 0.3, 1.0,
        0.8, 0.1, 0.0,
        0.1, 0.2, 0.7,
        0.0, 0.5, 0.1,
        0.0, 0.4, 0.9,
        0.2, 0.6, 0.0,
    ];
    let r = recovery_auc(&acts, 3, &l).unwrap();
    assert_eq!(r.samples, 6);
    assert_eq!(r.k, 3);
    let names: Vec<&str> = r.factors.iter().map(|f| f.factor.as_str()).collect();
    assert_eq!(
        names,
        ["colour=blue", "colour=red", "size=large", "size=small"]
    );
    let red = &r.factors[1];
    assert_eq!(
        (red.best_concept, red.auc, red.positives, red.negatives),
        (2, 1.0, 3, 3)
    );
    // size=small: positives 0, 1, 4 score 0.9, 0.8, 0.0 on concept 0; negatives 0.1, 0.0, 0.2:
    // pairs won 3 + 3 + 0.5 (0.0 ties 0.0) = 6.5 of 9.
    let small = &r.factors[3];
    assert_eq!(small.best_concept, 0);
    assert!((small.auc - 6.5 / 9.0).abs() < 1e-12);
    for (f, row) in r.factors.iter().zip(&r.auc_matrix) {
        let column = |c: usize| -> Vec<f32> { (0..6).map(|i| acts[i * 3 + c]).collect() };
        for (c, &auc) in row.iter().enumerate() {
            let pos: Vec<bool> = l.iter().map(|ls| ls.contains(&f.factor)).collect();
            assert_eq!(Some(auc), roc_auc(&column(c), &pos));
        }
        assert_eq!(f.auc, row.iter().cloned().fold(f64::MIN, f64::max));
    }
    assert_eq!(r.concepts[2].factor, "colour=red");
    assert_eq!(r.concepts[2].auc, 1.0);
    assert_eq!(r.concepts[0].factor, "size=small");
    let mean = r.factors.iter().map(|f| f.auc).sum::<f64>() / 4.0;
    assert_eq!(r.mean_auc, mean);
    // The report round-trips through JSON.
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(
        serde_json::from_str::<cox_metrics::RecoveryReport>(&json).unwrap(),
        r
    );
}

#[test]
fn recovery_skips_values_every_sample_has() {
    let l = labels(&[
        &["background=sky", "size=small"],
        &["background=sky"],
        &["background=sky", "size=small", "size=small"],
    ]);
    let r = recovery_auc(&[1.0, 0.0, 1.0], 1, &l).unwrap();
    assert_eq!(r.skipped, ["background=sky"]);
    assert_eq!(r.factors.len(), 1);
    assert_eq!(
        (
            r.factors[0].positives,
            r.factors[0].negatives,
            r.factors[0].auc
        ),
        (2, 1, 1.0)
    );
}

#[test]
fn recovery_errors() {
    let l = labels(&[&["a=1"], &["a=2"]]);
    assert!(matches!(
        recovery_auc(&[0.0; 3], 2, &l),
        Err(MetricsError::ShapeMismatch {
            len: 3,
            samples: 2,
            k: 2,
            ..
        })
    ));
    assert!(matches!(
        recovery_auc(&[], 0, &l),
        Err(MetricsError::NoConcepts { .. })
    ));
    assert!(matches!(
        recovery_auc(&[0.0, 1.0, f32::NAN, 0.0], 2, &l),
        Err(MetricsError::NonFinite {
            sample: 1,
            concept: 0,
            ..
        })
    ));
    let all_same = labels(&[&["a=1"], &["a=1"]]);
    assert!(matches!(
        recovery_auc(&[0.0, 1.0], 1, &all_same),
        Err(MetricsError::NoEvaluableFactor { .. })
    ));
    assert!(matches!(
        recovery_auc(&[0.0, 1.0], 1, &labels(&[&[], &[]])),
        Err(MetricsError::NoEvaluableFactor { .. })
    ));
}

/// Scores on a coarse grid, so that ties are frequent, with labels that have both classes.
fn scored_labels() -> impl Strategy<Value = (Vec<f32>, Vec<bool>)> {
    (2usize..40)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(-8i32..8, n),
                prop::collection::vec(any::<bool>(), n),
            )
        })
        .prop_map(|(s, mut l)| {
            l[0] = true;
            l[1] = false;
            (s.into_iter().map(|v| v as f32 * 0.25).collect(), l)
        })
}

proptest! {
    #[test]
    fn auc_in_unit_interval_and_matches_pairs((s, l) in scored_labels()) {
        let auc = roc_auc(&s, &l).unwrap();
        prop_assert!((0.0..=1.0).contains(&auc));
        prop_assert!((auc - brute_auc(&s, &l).unwrap()).abs() < 1e-12);
    }

    #[test]
    fn auc_of_negated_scores_is_complement((s, l) in scored_labels()) {
        let neg: Vec<f32> = s.iter().map(|v| -v).collect();
        let sum = roc_auc(&s, &l).unwrap() + roc_auc(&neg, &l).unwrap();
        prop_assert!((sum - 1.0).abs() < 1e-12);
    }

    #[test]
    fn auc_invariant_under_monotone_transforms((s, l) in scored_labels(), a in 0.1f32..10.0, b in -5.0f32..5.0) {
        let auc = roc_auc(&s, &l).unwrap();
        let affine: Vec<f32> = s.iter().map(|v| a * v + b).collect();
        let cubic_exp: Vec<f32> = s.iter().map(|v| v.powi(3) + v.exp()).collect();
        prop_assert_eq!(roc_auc(&affine, &l).unwrap(), auc);
        prop_assert_eq!(roc_auc(&cubic_exp, &l).unwrap(), auc);
    }

    #[test]
    fn recovery_best_is_max_over_concepts((s, l) in scored_labels(), k in 1usize..4) {
        // k concepts: concept c sees the scores rotated by c.
        let n = s.len();
        let acts: Vec<f32> = (0..n).flat_map(|i| (0..k).map({ let s = &s; move |c| s[(i + c) % n] })).collect();
        let labels: Vec<Vec<String>> = l.iter().map(|&p| if p { vec!["x=1".to_string()] } else { vec![] }).collect();
        let r = recovery_auc(&acts, k, &labels).unwrap();
        let best = (0..k)
            .map(|c| roc_auc(&(0..n).map(|i| s[(i + c) % n]).collect::<Vec<_>>(), &l).unwrap())
            .fold(f64::MIN, f64::max);
        prop_assert_eq!(r.factors[0].auc, best);
        prop_assert_eq!(r.mean_auc, best);
    }
}
