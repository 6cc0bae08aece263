//! Overlap tests: hand-computed cases, the reference transcription's values (fixture), errors, bounds.

mod common;

use common::{close, f64s, fixture};
use cox_metrics::{overlap, MetricsError};
use proptest::prelude::*;

/// One hand-computed case: words, expected overlap.
#[track_caller]
fn check(words: &[&[&str]], expected: f64) {
    let got = overlap(words).unwrap().overlap;
    assert!(
        (got - expected).abs() < 1e-15,
        "{words:?}: got {got}, expected {expected}"
    );
}

#[test]
fn hand_computed_cases() {
    // Disjoint lists: 0.
    check(&[&["dog", "puppy"], &["cat", "kitten"]], 0.0);
    // Identical lists: every off-diagonal entry is 1.
    check(
        &[&["dog", "puppy"], &["dog", "puppy"], &["puppy", "dog"]],
        1.0,
    );
    // O[0][1] = 1/2 ("dog" of dog, puppy), O[1][0] = 1/4 (dog of 4 words), the rest 0: 0.75 / 6.
    check(
        &[&["dog", "puppy"], &["dog", "cat", "kitten", "pet"], &[]],
        0.75 / 6.0,
    );
    // Duplicates in T_i each count: O[0][1] = 2/3 (dog, dog of dog, dog, puppy); O[1][0] = 1 (dog);
    // O[0][2] = 1/3, O[2][0] = 2/2 (puppy twice); O[1][2] = O[2][1] = 0: (2/3 + 1/3 + 1 + 1) / 6 = 1/2.
    check(
        &[&["dog", "dog", "puppy"], &["dog"], &["puppy", "puppy"]],
        0.5,
    );
    // With set semantics this would be (1/2 + 1) / 2; as lists, O[0][1] = 2/3 and O[1][0] = 1.
    check(
        &[&["dog", "dog", "puppy"], &["dog"]],
        (2.0 / 3.0 + 1.0) / 2.0,
    );
    // Equality is exact: case and plural differ.
    check(&[&["dog"], &["Dog"], &["dogs"]], 0.0);
    // One empty list: its row is 0, but its column is 0 too (nothing is in it).
    check(&[&[], &["dog"]], 0.0);
    // Asymmetric: O[0][1] = 1 (dog ∈ T_1), O[1][0] = 1/3.
    check(&[&["dog"], &["dog", "cat", "pet"]], (1.0 + 1.0 / 3.0) / 2.0);
}

#[test]
fn matrix_rows_and_diagonal() {
    let r = overlap(&[vec!["a", "b", "c", "d"], vec!["b", "x"], vec![]]).unwrap();
    assert_eq!(r.k, 3);
    assert_eq!(r.matrix[0], [1.0, 0.25, 0.0]);
    assert_eq!(r.matrix[1], [0.5, 1.0, 0.0]);
    assert_eq!(r.matrix[2], [0.0, 0.0, 0.0]);
}

#[test]
fn matches_the_reference_transcription() {
    let cases = fixture("overlap");
    assert!(cases.len() >= 10);
    for (c, case) in cases.iter().enumerate() {
        let words: Vec<Vec<String>> = case["words"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l.as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap().to_string())
                    .collect()
            })
            .collect();
        let r = overlap(&words).unwrap();
        match case["overlap"].as_f64() {
            Some(expected) => close(r.overlap, expected, 1e-14, &format!("case {c}")),
            // The reference's 0/0 for a single concept; defined as 0 here.
            None => {
                assert_eq!(words.len(), 1, "case {c}");
                assert_eq!(r.overlap, 0.0);
            }
        }
        let expected_rows = case["matrix"].as_array().unwrap();
        for (i, row) in r.matrix.iter().enumerate() {
            let want = f64s(&expected_rows[i]);
            for (j, (&got, &want)) in row.iter().zip(&want).enumerate() {
                close(got, want, 1e-15, &format!("case {c} O[{i}][{j}]"));
            }
        }
    }
}

#[test]
fn single_concept_and_no_concept() {
    let r = overlap(&[["dog", "puppy"]]).unwrap();
    assert_eq!((r.overlap, r.matrix.clone()), (0.0, vec![vec![1.0]]));
    let none: [Vec<&str>; 0] = [];
    assert_eq!(
        overlap(&none),
        Err(MetricsError::NoConcepts { op: "overlap" })
    );
}

fn word_lists() -> impl Strategy<Value = Vec<Vec<String>>> {
    let word = prop::sample::select(vec!["dog", "puppy", "cat", "pet", "ball", "Dog"]);
    prop::collection::vec(
        prop::collection::vec(word.prop_map(String::from), 0..8),
        1..9,
    )
}

proptest! {
    #[test]
    fn overlap_in_unit_interval(words in word_lists()) {
        let r = overlap(&words).unwrap();
        prop_assert!((0.0..=1.0).contains(&r.overlap), "{}", r.overlap);
        for row in &r.matrix {
            for &o in row {
                prop_assert!((0.0..=1.0).contains(&o));
            }
        }
    }

    #[test]
    fn overlap_invariant_under_concept_order(words in word_lists(), seed in any::<u64>()) {
        // Reversing or rotating the concepts permutes O's rows and columns together; the mean of the
        // off-diagonal entries is unchanged.
        let mut shuffled = words.clone();
        let len = shuffled.len();
        shuffled.rotate_left((seed as usize) % len);
        let (a, b) = (overlap(&words).unwrap().overlap, overlap(&shuffled).unwrap().overlap);
        prop_assert!((a - b).abs() < 1e-12);
    }
}
