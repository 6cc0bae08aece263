//! The BERTScore maths on hand-made embeddings (no model): greedy matching, weights, reductions,
//! rescaling, idf and baseline files. Every expected value is worked out in the comments.

use cox_bertscore::{
    candidate_from_words, greedy_f1, rescale, Baseline, BertScoreError, BertScoreParams,
    IdfWeights, Prf,
};

const EPS: f64 = 1e-12;

/// Check P, R and F1 of `greedy_f1` (2-D embeddings) against hand-computed values.
#[track_caller]
fn check(
    cand: &[[f32; 2]],
    wc: &[f64],
    reference: &[[f32; 2]],
    wr: &[f64],
    expect: (f64, f64, f64),
) {
    let c: Vec<f32> = cand.iter().flatten().copied().collect();
    let r: Vec<f32> = reference.iter().flatten().copied().collect();
    let s = greedy_f1(&c, wc, &r, wr, 2);
    let (p, rr, f) = expect;
    assert!(
        (s.p - p).abs() < EPS && (s.r - rr).abs() < EPS && (s.f1 - f).abs() < EPS,
        "got {s:?}, expected P={p} R={rr} F1={f}"
    );
}

fn f1(p: f64, r: f64) -> f64 {
    2.0 * p * r / (p + r)
}

#[test]
fn identical_token_sets_score_one_whatever_the_lengths_of_the_vectors() {
    // Cosine ignores norms: (2,0) ~ (1,0), (0,5) ~ (0,1).
    check(
        &[[2.0, 0.0], [0.0, 5.0]],
        &[1.0, 1.0],
        &[[1.0, 0.0], [0.0, 1.0]],
        &[1.0, 1.0],
        (1.0, 1.0, 1.0),
    );
}

#[test]
fn precision_and_recall_average_different_sides() {
    // cand: e1, e2; ref: e1 only. P = (1 + 0) / 2, R = 1 (e1 matched).
    check(
        &[[1.0, 0.0], [0.0, 1.0]],
        &[1.0, 1.0],
        &[[1.0, 0.0]],
        &[1.0],
        (0.5, 1.0, f1(0.5, 1.0)),
    );
    // Swapped roles swap P and R.
    check(
        &[[1.0, 0.0]],
        &[1.0],
        &[[1.0, 0.0], [0.0, 1.0]],
        &[1.0, 1.0],
        (1.0, 0.5, f1(1.0, 0.5)),
    );
}

#[test]
fn greedy_matching_takes_each_tokens_best_partner_not_a_one_to_one_assignment() {
    // Both candidate tokens are closest to the same reference token r0 = (1,0): cos 1 and cos 45°.
    // The reference's second token (0,-1) is at 90° from c0 and 135° from c1: best cos 0.
    let c = std::f64::consts::FRAC_1_SQRT_2;
    check(
        &[[1.0, 0.0], [1.0, 1.0]],
        &[1.0, 1.0],
        &[[1.0, 0.0], [0.0, -1.0]],
        &[1.0, 1.0],
        ((1.0 + c) / 2.0, 0.5, f1((1.0 + c) / 2.0, 0.5)),
    );
}

#[test]
fn zero_weight_tokens_do_not_count_but_are_still_matched_against() {
    // As bert_score's [CLS]/[SEP] without idf: c0 has weight 0. P = best cos of c1 = cos(e2, e1) = 0.
    // R: r0 = e1 finds c0 = e1 (cos 1) even though c0 does not count in P.
    check(
        &[[1.0, 0.0], [0.0, 1.0]],
        &[0.0, 1.0],
        &[[1.0, 0.0]],
        &[1.0],
        (0.0, 1.0, 0.0),
    );
}

#[test]
fn weights_make_weighted_means() {
    // Candidate weights 2 and 1 with best cosines 1 and 0: P = 2/3. Reference weights 3 and 1 with best
    // cosines 1 (e1) and 0 (e2 is orthogonal to both candidate tokens? c1 = -e1: cos(e2, -e1) = 0): R = 3/4.
    check(
        &[[1.0, 0.0], [-1.0, 0.0]],
        &[2.0, 1.0],
        &[[1.0, 0.0], [0.0, 1.0]],
        &[3.0, 1.0],
        (2.0 / 3.0, 0.75, f1(2.0 / 3.0, 0.75)),
    );
}

#[test]
fn best_similarities_below_zero_count_as_zero_as_with_bert_scores_padding() {
    // Opposite vectors: cos -1 → best 0, so P = R = 0 and F1 = 0 (not -1).
    check(
        &[[1.0, 0.0]],
        &[1.0],
        &[[-1.0, 0.0]],
        &[1.0],
        (0.0, 0.0, 0.0),
    );
    // c0 = e1 matches r0 = e1 (1); c1 = -e2 has cos -1 with r1 = e2 and 0 with r0 → best 0.
    // R: r0 → 1, r1 = e2: cos with c0 = 0, with c1 = -1 → 0.
    check(
        &[[1.0, 0.0], [0.0, -1.0]],
        &[1.0, 1.0],
        &[[1.0, 0.0], [0.0, 1.0]],
        &[1.0, 1.0],
        (0.5, 0.5, 0.5),
    );
}

#[test]
fn empty_sides_and_zero_total_weight_score_zero() {
    assert_eq!(greedy_f1(&[], &[], &[1.0, 0.0], &[1.0], 2), Prf::ZERO);
    assert_eq!(greedy_f1(&[1.0, 0.0], &[1.0], &[], &[], 2), Prf::ZERO);
    // Only weight-0 tokens (an empty sentence's [CLS] [SEP]).
    assert_eq!(
        greedy_f1(&[1.0, 0.0, 0.0, 1.0], &[0.0, 0.0], &[1.0, 0.0], &[1.0], 2),
        Prf::ZERO
    );
}

#[test]
fn zero_vectors_have_cosine_zero() {
    check(
        &[[0.0, 0.0]],
        &[1.0],
        &[[1.0, 0.0]],
        &[1.0],
        (0.0, 0.0, 0.0),
    );
}

#[test]
fn higher_dimensions_use_every_coordinate() {
    // cand (1,1,1,1) vs ref (1,1,0,0): cos = 2 / (2 * sqrt 2) = 1/sqrt 2.
    let s = greedy_f1(
        &[1.0, 1.0, 1.0, 1.0],
        &[1.0],
        &[1.0, 1.0, 0.0, 0.0],
        &[1.0],
        4,
    );
    let c = std::f64::consts::FRAC_1_SQRT_2;
    assert!((s.p - c).abs() < EPS && (s.r - c).abs() < EPS && (s.f1 - c).abs() < EPS);
}

#[test]
#[should_panic(expected = "candidate has 3 values, expected 2 tokens × 2")]
fn a_matrix_of_the_wrong_size_panics() {
    greedy_f1(&[1.0, 0.0, 0.0], &[1.0, 1.0], &[1.0, 0.0], &[1.0], 2);
}

#[test]
fn f1_is_the_harmonic_mean_and_zero_when_undefined() {
    assert!((Prf::from_pr(0.6, 0.3).f1 - 0.4).abs() < EPS);
    assert_eq!(Prf::from_pr(0.0, 0.0).f1, 0.0);
    assert_eq!(Prf::from_pr(f64::NAN, 0.5).f1, 0.0);
}

#[test]
fn several_references_take_the_best_p_r_and_f_separately() {
    let a = Prf::from_pr(0.9, 0.3); // F = 0.45
    let b = Prf::from_pr(0.5, 0.7); // F = 0.5833…
    let m = a.max(b);
    assert_eq!((m.p, m.r, m.f1), (0.9, 0.7, b.f1));
    assert!(m.f1 < f1(0.9, 0.7));
}

#[test]
fn rescaling_maps_the_baseline_to_zero_and_one_to_one() {
    assert!((rescale(0.92, 0.84) - 0.5).abs() < EPS);
    assert_eq!(rescale(1.0, 0.84), 1.0);
    assert!((rescale(0.0, 0.36) + 0.5625).abs() < EPS); // -0.36 / 0.64
}

#[test]
fn idf_counts_documents_not_occurrences() {
    // N = 4 documents; id 5 in 3 of them (twice in one), id 6 in 1, 101 in all.
    let docs = [
        vec![101, 5, 5, 102],
        vec![101, 5, 102],
        vec![101, 5, 6, 102],
        vec![101, 102],
    ];
    let idf = IdfWeights::from_token_ids(&docs);
    assert_eq!(idf.docs(), 4);
    assert!((idf.weight(5) - (5.0f64 / 4.0).ln()).abs() < EPS);
    assert!((idf.weight(6) - (5.0f64 / 2.0).ln()).abs() < EPS);
    assert_eq!(idf.weight(101), 0.0);
    assert!((idf.weight(999) - 5.0f64.ln()).abs() < EPS);
}

#[test]
fn baseline_files_in_bert_scores_format() {
    let tsv = "LAYER,P,R,F\n0,0.31,0.32,0.33\n1,0.41,0.42,0.43\n";
    let b = Baseline::from_tsv(tsv, 1, "x.tsv").unwrap();
    assert_eq!(
        (b.p, b.r, b.f, b.source.as_str()),
        (0.41, 0.42, 0.43, "x.tsv")
    );
    // Column order follows the header.
    let b = Baseline::from_tsv("LAYER,F,R,P\n0,0.1,0.2,0.3\n", 0, "y").unwrap();
    assert_eq!((b.p, b.r, b.f), (0.3, 0.2, 0.1));
    for (text, layer, needle) in [
        (tsv, 2, "no row for layer 2"),
        ("", 0, "empty file"),
        ("LAYER,P,R\n0,0.1,0.2\n", 0, "no column F"),
        ("LAYER,P,R,F\n1,0.1,0.2,0.3\n", 0, "is not layer 0"),
        ("LAYER,P,R,F\n0,0.1,x,0.3\n", 0, "bad R value"),
        ("LAYER,P,R,F\n0,0.1,1.0,0.3\n", 0, "below 1"),
    ] {
        let e = Baseline::from_tsv(text, layer, "b.tsv").unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, BertScoreError::Baseline { .. }), "{msg}");
        assert!(msg.contains("b.tsv") && msg.contains(needle), "{msg}");
    }
}

#[test]
fn params_are_checked_before_any_work() {
    assert_eq!(BertScoreParams::default().check(6).unwrap(), 6);
    let p = |layer, batch_size, rescale| BertScoreParams {
        layer,
        batch_size,
        rescale,
        idf: false,
    };
    assert_eq!(p(Some(0), 1, None).check(6).unwrap(), 0);
    assert!(p(Some(7), 64, None)
        .check(6)
        .unwrap_err()
        .to_string()
        .contains("layer 7"));
    assert!(p(None, 0, None)
        .check(6)
        .unwrap_err()
        .to_string()
        .contains("batch_size"));
    let bad = Baseline::new(0.5, f64::NAN, 0.5, "user");
    assert!(p(None, 64, Some(bad))
        .check(6)
        .unwrap_err()
        .to_string()
        .contains("R baseline"));
}

#[test]
fn grounded_words_become_one_candidate_string() {
    let words = ["dog", "puppy", "dog"];
    assert_eq!(candidate_from_words(&words, ", "), "dog, puppy, dog");
    assert_eq!(candidate_from_words(&words, " "), "dog puppy dog");
    assert_eq!(candidate_from_words::<&str>(&[], ", "), "");
}
