//! Reconstruction tests: hand-computed cases, the numpy formulas and scikit-learn's KMeans inertia
//! (fixture), each method's convention, errors.

mod common;

use common::{close, f32s, fixture, n};
use cox_metrics::{reconstruction, MetricsError, Reconstruct};

#[test]
fn perfect_and_mean_only_reconstructions() {
    // X = codes · atoms exactly.
    let atoms = [1.0, 2.0, 0.0, 0.0, 1.0, -1.0];
    let codes = [1.0, 0.0, 2.0, 3.0];
    let x = [1.0, 2.0, 0.0, 2.0, 7.0, -3.0];
    let r = reconstruction(
        &x,
        2,
        3,
        &atoms,
        2,
        Reconstruct::Linear {
            codes: &codes,
            mean: None,
        },
    )
    .unwrap();
    assert_eq!(
        (r.sse, r.relative_error, r.explained_variance),
        (0.0, Some(0.0), Some(1.0))
    );
    assert_eq!(r.sum_squares, 1.0 + 4.0 + 4.0 + 49.0 + 9.0);
    // PCA with zero scores reconstructs every sample as the mean: SSE = SST, explained variance 0.
    let mean = [1.5, 4.5, -1.5];
    let r = reconstruction(
        &x,
        2,
        3,
        &atoms,
        2,
        Reconstruct::Linear {
            codes: &[0.0; 4],
            mean: Some(&mean),
        },
    )
    .unwrap();
    assert_eq!(r.sst, 2.0 * (0.25 + 6.25 + 2.25));
    assert_eq!((r.sse, r.explained_variance), (r.sst, Some(0.0)));
}

#[test]
fn nearest_atom_convention() {
    // Samples 0 and 1 are nearest to atom 1, sample 2 to atom 0.
    let x = [0.0, 0.0, 1.0, 0.0, 10.0, 10.0];
    let atoms = [9.0, 10.0, 0.5, 0.0];
    let r = reconstruction(&x, 3, 2, &atoms, 2, Reconstruct::NearestAtom).unwrap();
    assert_eq!(r.sse, 0.25 + 0.25 + 1.0);
    // Worse than the mean: negative explained variance is allowed.
    let r = reconstruction(&x, 3, 2, &[100.0, 100.0], 1, Reconstruct::NearestAtom).unwrap();
    assert!(r.explained_variance.unwrap() < 0.0);
}

#[test]
fn degenerate_data() {
    // All-zero data: no relative error, no variance.
    let r = reconstruction(&[0.0; 4], 2, 2, &[1.0, 0.0], 1, Reconstruct::NearestAtom).unwrap();
    assert_eq!(
        (r.sse, r.relative_error, r.explained_variance),
        (2.0, None, None)
    );
    // Identical rows: no variance, a relative error still.
    let r = reconstruction(
        &[3.0, 4.0, 3.0, 4.0],
        2,
        2,
        &[3.0, 0.0],
        1,
        Reconstruct::NearestAtom,
    )
    .unwrap();
    assert_eq!((r.relative_error, r.explained_variance), (Some(0.8), None));
}

#[test]
fn matches_numpy_and_sklearn() {
    let cases = fixture("reconstruction");
    assert_eq!(cases.len(), 3);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let (m, b, k) = (n(case, "samples"), n(case, "features"), n(case, "k"));
        let (x, atoms) = (f32s(&case["x"]), f32s(&case["atoms"]));
        let codes = (!case["codes"].is_null()).then(|| f32s(&case["codes"]));
        let mean = (!case["mean"].is_null()).then(|| f32s(&case["mean"]));
        let how = match &codes {
            Some(codes) => Reconstruct::Linear {
                codes,
                mean: mean.as_deref(),
            },
            None => Reconstruct::NearestAtom,
        };
        let r = reconstruction(&x, m, b, &atoms, k, how).unwrap();
        let want = |key: &str| case[key].as_f64().unwrap();
        close(r.sse, want("sse"), 1e-12, name);
        close(r.sum_squares, want("sum_squares"), 1e-12, name);
        close(r.sst, want("sst"), 1e-12, name);
        close(
            r.relative_error.unwrap(),
            want("relative_error"),
            1e-12,
            name,
        );
        close(
            r.explained_variance.unwrap(),
            want("explained_variance"),
            1e-12,
            name,
        );
        if name == "kmeans" {
            // scikit-learn computes inertia_ in float32 on its own; agreement to ~1e-6 relative.
            close(r.sse, want("sklearn_inertia"), 1e-6, "kmeans inertia");
        }
        if name == "pca" {
            // K = 3 of 12 axes explain part, not all, of the variance.
            let ev = r.explained_variance.unwrap();
            assert!(ev > 0.0 && ev < 1.0, "{ev}");
        }
    }
}

#[test]
fn errors_name_input_row_and_column() {
    let x = [1.0, 2.0, 3.0, f32::NAN];
    assert_eq!(
        reconstruction(&x, 2, 2, &[1.0, 0.0], 1, Reconstruct::NearestAtom),
        Err(MetricsError::NonFiniteInput {
            op: "reconstruction",
            input: "data".into(),
            row: 1,
            column: 1
        })
    );
    let x = [1.0, 2.0, 3.0, 4.0];
    assert_eq!(
        reconstruction(
            &x,
            2,
            2,
            &[1.0, 0.0],
            1,
            Reconstruct::Linear {
                codes: &[1.0, f32::NEG_INFINITY],
                mean: None
            }
        ),
        Err(MetricsError::NonFiniteInput {
            op: "reconstruction",
            input: "codes".into(),
            row: 1,
            column: 0
        })
    );
    assert_eq!(
        reconstruction(&x, 2, 2, &[1.0, 0.0, 1.0], 1, Reconstruct::NearestAtom),
        Err(MetricsError::InputShape {
            op: "reconstruction",
            input: "atoms".into(),
            len: 3,
            rows: 1,
            cols: 2
        })
    );
    assert!(matches!(
        reconstruction(&x, 2, 2, &[1.0, 0.0], 1, Reconstruct::Linear { codes: &[1.0, 1.0], mean: Some(&[0.0]) }),
        Err(MetricsError::InputShape { ref input, len: 1, .. }) if input == "mean"
    ));
    assert_eq!(
        reconstruction(&x, 2, 2, &[], 0, Reconstruct::NearestAtom),
        Err(MetricsError::NoConcepts {
            op: "reconstruction"
        })
    );
    assert!(matches!(
        reconstruction(&[], 0, 2, &[1.0, 0.0], 1, Reconstruct::NearestAtom),
        Err(MetricsError::TooFew {
            what: "samples",
            ..
        })
    ));
}
