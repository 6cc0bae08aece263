//! Stability tests: the assignment and the dictionary matching against scipy's
//! `linear_sum_assignment` (fixture), brute force over permutations, permuted copies, errors.

mod common;

use common::{close, f32s, f64s, fixture, n, usizes};
use cox_metrics::{
    match_dictionaries, max_weight_assignment, stability_across_seeds, MetricsError, Similarity,
};
use proptest::prelude::*;

fn total(w: &[f64], n: usize, assignment: &[usize]) -> f64 {
    assignment
        .iter()
        .enumerate()
        .map(|(i, &j)| w[i * n + j])
        .sum()
}

/// The best total over all n! permutations (depth-first over unused columns), the definition the
/// solver must meet.
fn brute_force_best(w: &[f64], n: usize) -> f64 {
    fn go(row: usize, used: &mut [bool], acc: f64, w: &[f64], n: usize) -> f64 {
        if row == n {
            return acc;
        }
        let mut best = f64::NEG_INFINITY;
        for j in 0..n {
            if !used[j] {
                used[j] = true;
                best = best.max(go(row + 1, used, acc + w[row * n + j], w, n));
                used[j] = false;
            }
        }
        best
    }
    go(0, &mut vec![false; n], 0.0, w, n)
}

fn is_permutation(p: &[usize]) -> bool {
    let mut seen = vec![false; p.len()];
    p.iter()
        .all(|&j| j < p.len() && !std::mem::replace(&mut seen[j], true))
}

#[test]
fn assignment_matches_scipy() {
    let cases = fixture("assignment");
    assert!(cases.len() >= 10);
    for (c, case) in cases.iter().enumerate() {
        let size = n(case, "n");
        let w = f64s(&case["weights"]);
        let got = max_weight_assignment(&w, size);
        assert!(is_permutation(&got), "case {c}: {got:?}");
        close(
            total(&w, size, &got),
            case["total"].as_f64().unwrap(),
            1e-12,
            &format!("case {c} total"),
        );
        if !case["ties"].as_bool().unwrap() {
            assert_eq!(got, usizes(&case["assignment"]), "case {c}");
        }
    }
}

#[test]
fn assignment_hand_cases() {
    // Greedy takes 9 and is left with 1 (10); the optimum is 8 + 7.
    assert_eq!(max_weight_assignment(&[9.0, 8.0, 7.0, 1.0], 2), [1, 0]);
    // An anti-diagonal optimum with negative weights.
    #[rustfmt::skip]
    let w = [-5.0, -5.0, -1.0,
             -5.0, -1.0, -5.0,
             -1.0, -5.0, -5.0];
    assert_eq!(max_weight_assignment(&w, 3), [2, 1, 0]);
    assert_eq!(max_weight_assignment(&[3.5], 1), [0]);
    assert_eq!(max_weight_assignment(&[], 0), Vec::<usize>::new());
}

#[test]
#[should_panic(expected = "max_weight_assignment: 3 weights for a 2 × 2 matrix")]
fn assignment_shape_panics() {
    max_weight_assignment(&[1.0, 2.0, 3.0], 2);
}

#[test]
fn matching_matches_scipy() {
    for (c, case) in fixture("stability").iter().enumerate() {
        let (k, dim) = (n(case, "k"), n(case, "dim"));
        let dicts: Vec<Vec<f32>> = case["dictionaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(f32s)
            .collect();
        let views: Vec<&[f32]> = dicts.iter().map(|d| d.as_slice()).collect();
        for (key, sim) in [
            ("cosine", Similarity::Cosine),
            ("abs_cosine", Similarity::AbsCosine),
        ] {
            let want = &case[key];
            let report = stability_across_seeds(&views, k, dim, sim).unwrap();
            let pairs = want["pairs"].as_array().unwrap();
            assert_eq!(report.pairs.len(), pairs.len());
            for (got, want) in report.pairs.iter().zip(pairs) {
                let what = format!("case {c} {key} pair {}-{}", got.a, got.b);
                assert_eq!((got.a, got.b), (n(want, "a"), n(want, "b")), "{what}");
                assert_eq!(got.matching.pairs, usizes(&want["pairs"]), "{what}");
                for (g, w) in got
                    .matching
                    .similarities
                    .iter()
                    .zip(f64s(&want["similarities"]))
                {
                    close(*g, w, 1e-12, &what);
                }
                close(
                    got.matching.mean,
                    want["mean"].as_f64().unwrap(),
                    1e-12,
                    &what,
                );
                // The pairwise function gives the same matching.
                let single = match_dictionaries(views[got.a], views[got.b], k, dim, sim).unwrap();
                assert_eq!(single, got.matching, "{what}");
            }
            close(report.mean, want["mean"].as_f64().unwrap(), 1e-12, key);
            close(report.std, want["std"].as_f64().unwrap(), 1e-12, key);
        }
    }
}

#[test]
fn zero_atom_scores_zero() {
    let a = [1.0, 0.0, 0.0, 0.0];
    let b = [0.0, 0.0, 2.0, 0.0];
    let m = match_dictionaries(&a, &b, 2, 2, Similarity::Cosine).unwrap();
    assert_eq!((m.pairs, m.similarities), (vec![1, 0], vec![1.0, 0.0]));
}

#[test]
fn errors_name_the_dictionary_atom_and_feature() {
    let ok = [1.0f32, 0.0, 0.0, 1.0];
    let bad = [1.0f32, 0.0, 0.0, f32::NAN];
    assert_eq!(
        stability_across_seeds(&[&ok[..], &ok, &bad], 2, 2, Similarity::Cosine),
        Err(MetricsError::NonFiniteInput {
            op: "stability_across_seeds",
            input: "dictionary 2".into(),
            row: 1,
            column: 1,
        })
    );
    assert_eq!(
        match_dictionaries(&ok, &ok[..3], 2, 2, Similarity::Cosine),
        Err(MetricsError::InputShape {
            op: "match_dictionaries",
            input: "dictionary 1".into(),
            len: 3,
            rows: 2,
            cols: 2,
        })
    );
    assert_eq!(
        stability_across_seeds(&[&ok[..]], 2, 2, Similarity::Cosine),
        Err(MetricsError::TooFew {
            op: "stability_across_seeds",
            what: "dictionaries",
            needed: 2,
            got: 1,
        })
    );
    assert_eq!(
        match_dictionaries(&[], &[], 0, 2, Similarity::Cosine),
        Err(MetricsError::NoConcepts {
            op: "match_dictionaries"
        })
    );
    assert!(matches!(
        match_dictionaries(&[], &[], 2, 0, Similarity::Cosine),
        Err(MetricsError::TooFew {
            what: "features",
            ..
        })
    ));
}

fn dictionary_and_permutation() -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<usize>)> {
    (1usize..9, 1usize..7).prop_flat_map(|(k, dim)| {
        (
            Just(k),
            Just(dim + k), // dim ≥ k + 1 keeps random atoms distinct directions with probability 1
            prop::collection::vec(-1.0f32..1.0, k * (dim + k)),
            Just((0..k).collect::<Vec<usize>>()).prop_shuffle(),
        )
    })
}

proptest! {
    #[test]
    fn permuted_copy_is_perfectly_stable((k, dim, a, perm) in dictionary_and_permutation(),
                                         scale in 0.1f32..10.0) {
        // b[j] = scale · a[perm[j]], so atom i of a matches atom perm⁻¹(i) of b.
        prop_assume!(a.chunks(dim).all(|r| r.iter().map(|x| x * x).sum::<f32>() > 1e-3));
        let mut b = vec![0.0f32; k * dim];
        for j in 0..k {
            for f in 0..dim {
                b[j * dim + f] = scale * a[perm[j] * dim + f];
            }
        }
        // Skip near-parallel pairs of atoms, for which a different matching ties within rounding.
        let unit: Vec<Vec<f64>> = a.chunks(dim).map(|r| {
            let nrm = r.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            r.iter().map(|&x| x as f64 / nrm).collect()
        }).collect();
        for i in 0..k {
            for j in 0..i {
                let c: f64 = unit[i].iter().zip(&unit[j]).map(|(x, y)| x * y).sum();
                prop_assume!(c.abs() < 0.999);
            }
        }
        let mut inverse = vec![0; k];
        for (j, &p) in perm.iter().enumerate() {
            inverse[p] = j;
        }
        for sim in [Similarity::Cosine, Similarity::AbsCosine] {
            let m = match_dictionaries(&a, &b, k, dim, sim).unwrap();
            prop_assert_eq!(&m.pairs, &inverse);
            prop_assert!((m.mean - 1.0).abs() < 1e-12, "{}", m.mean);
        }
    }

    #[test]
    fn assignment_is_optimal(n in 1usize..7, w in prop::collection::vec(-10.0f64..10.0, 36)) {
        let w = &w[..n * n];
        let a = max_weight_assignment(w, n);
        prop_assert!(is_permutation(&a));
        prop_assert!((total(w, n, &a) - brute_force_best(w, n)).abs() < 1e-9);
    }

    #[test]
    fn matching_mean_is_bounded(k in 1usize..6, a in prop::collection::vec(-1.0f32..1.0, 40),
                                b in prop::collection::vec(-1.0f32..1.0, 40)) {
        let dim = 40 / 5;
        let (a, b) = (&a[..k * dim], &b[..k * dim]);
        let signed = match_dictionaries(a, b, k, dim, Similarity::Cosine).unwrap();
        let abs = match_dictionaries(a, b, k, dim, Similarity::AbsCosine).unwrap();
        prop_assert!((-1.0 - 1e-12..=1.0 + 1e-12).contains(&signed.mean));
        prop_assert!((0.0..=1.0 + 1e-12).contains(&abs.mean));
        // |cos| ≥ cos entrywise, so the best unsigned total is at least the best signed one.
        prop_assert!(abs.mean >= signed.mean - 1e-12);
    }
}
