//! The projection against an independent exact solver, and the errors users see.

use cox_snmf::{Dictionary, EncodeParams, Error, Init, Par, SamplesRef, SemiNmf};
use proptest::prelude::*;

/// Exact positive Lasso `min_{z ≥ 0} ½‖x − Dᵀz‖² + α Σz` by enumerating active sets: for each subset S,
/// solve `G_SS z_S = b_S − α` (Gaussian elimination) and keep the best feasible candidate.
fn exact_positive_lasso(d: &[f64], k: usize, b: usize, x: &[f64], alpha: f64) -> Vec<f64> {
    let g = |p: usize, q: usize| (0..b).map(|j| d[p * b + j] * d[q * b + j]).sum::<f64>();
    let bv: Vec<f64> = (0..k)
        .map(|p| (0..b).map(|j| d[p * b + j] * x[j]).sum())
        .collect();
    let obj = |z: &[f64]| {
        let r: f64 = (0..b)
            .map(|j| {
                let v = x[j] - (0..k).map(|c| z[c] * d[c * b + j]).sum::<f64>();
                v * v
            })
            .sum();
        0.5 * r + alpha * z.iter().sum::<f64>()
    };
    let mut best = vec![0.0; k];
    let mut best_obj = obj(&best);
    for mask in 1u32..(1 << k) {
        let s: Vec<usize> = (0..k).filter(|c| mask & (1 << c) != 0).collect();
        let n = s.len();
        let mut a: Vec<Vec<f64>> = s
            .iter()
            .map(|&p| {
                let mut row: Vec<f64> = s.iter().map(|&q| g(p, q)).collect();
                row.push(bv[p] - alpha);
                row
            })
            .collect();
        let mut ok = true;
        for col in 0..n {
            let piv = (col..n)
                .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                .unwrap();
            if a[piv][col].abs() < 1e-12 {
                ok = false;
                break;
            }
            a.swap(col, piv);
            let pivot_row = a[col].clone();
            for (r, row) in a.iter_mut().enumerate() {
                if r != col {
                    let f = row[col] / pivot_row[col];
                    for (v, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                        *v -= f * p;
                    }
                }
            }
        }
        if !ok {
            continue;
        }
        let mut z = vec![0.0; k];
        for (i, &p) in s.iter().enumerate() {
            z[p] = a[i][n] / a[i][i];
        }
        if z.iter().all(|&v| v >= 0.0) {
            let o = obj(&z);
            if o < best_obj {
                best_obj = o;
                best = z;
            }
        }
    }
    best
}

proptest! {
    /// The coordinate-descent projection equals the exact active-set solution.
    #[test]
    fn encode_matches_exact_active_set(
        k in 1usize..5, b in 5usize..10, alpha in 0.0f64..1.5,
        d in proptest::collection::vec(-1.0f64..1.0, 40), x in proptest::collection::vec(-4.0f64..4.0, 10),
    ) {
        let d = d[..k * b].to_vec();
        let x = &x[..b];
        let dict = Dictionary::new(d.clone(), k, b).unwrap();
        // Well-posed only when the atoms are linearly independent enough.
        let g = dict.gram();
        let min_diag = (0..k).map(|i| g[i * k + i]).fold(f64::INFINITY, f64::min);
        prop_assume!(min_diag > 0.05);
        let z = dict.encode(SamplesRef::new(x, 1, b).unwrap(),
            &EncodeParams { alpha, max_sweeps: 200_000, tol: 1e-13 }, Par::Seq).unwrap();
        let e = exact_positive_lasso(&d, k, b, x, alpha);
        let obj = |z: &[f64]| {
            let r: f64 = (0..b).map(|j| { let v = x[j] - (0..k).map(|c| z[c] * d[c * b + j]).sum::<f64>(); v * v }).sum();
            0.5 * r + alpha * z.iter().sum::<f64>()
        };
        // Compare objectives (the minimiser need not be unique when atoms are nearly dependent).
        prop_assert!(obj(&z) <= obj(&e) + 1e-7 * (1.0 + obj(&e)), "cd {} vs exact {}", obj(&z), obj(&e));
    }
}

#[test]
fn encode_of_new_samples_is_order_independent() {
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let d = vec![0.6, 0.8, 0.0, 0.0, 0.0, 1.0, h, 0.0, h];
    let dict = Dictionary::new(d, 3, 3).unwrap();
    let x = [1.0, 2.0, 3.0, -1.0, 0.5, 2.0, 4.0, 4.0, 4.0];
    let xr = [4.0, 4.0, 4.0, 1.0, 2.0, 3.0, -1.0, 0.5, 2.0];
    let p = EncodeParams::with_alpha(0.3);
    let a = dict
        .encode(SamplesRef::new(&x, 3, 3).unwrap(), &p, Par::Seq)
        .unwrap();
    let r = dict
        .encode(SamplesRef::new(&xr, 3, 3).unwrap(), &p, Par::rayon(2))
        .unwrap();
    assert_eq!(&a[0..3], &r[3..6]);
    assert_eq!(&a[6..9], &r[0..3]);
}

#[test]
fn errors_name_the_problem() {
    let mut x = vec![1.0f32; 6 * 4];
    x[2 * 4 + 3] = f32::NAN;
    let p = SemiNmf::params().k(2).check().unwrap();
    let e = p
        .fit(SamplesRef::new(&x, 6, 4).unwrap(), Par::Seq)
        .unwrap_err();
    assert!(
        matches!(e, Error::NonFinite { sample: 2, feature: 3, value } if value.is_nan()),
        "{e}"
    );
    assert!(e.to_string().contains("sample 2, feature 3"), "{e}");

    x[2 * 4 + 3] = f32::INFINITY;
    let e = p
        .fit(SamplesRef::new(&x, 6, 4).unwrap(), Par::Seq)
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFinite {
                sample: 2,
                feature: 3,
                ..
            }
        ),
        "{e}"
    );

    let x = vec![1.0f32; 3 * 4];
    let e = SemiNmf::params()
        .k(5)
        .check()
        .unwrap()
        .fit(SamplesRef::new(&x, 3, 4).unwrap(), Par::Seq)
        .unwrap_err();
    assert_eq!(e, Error::TooManyConcepts { k: 5, n_samples: 3 });
    assert!(e.to_string().contains("lower K to at most 3"), "{e}");

    assert_eq!(
        SemiNmf::params().k(0).check().unwrap_err(),
        Error::ZeroConcepts
    );
    assert!(matches!(
        SemiNmf::params().alpha(-1.0).check(),
        Err(Error::InvalidParam { name: "alpha", .. })
    ));
    assert!(matches!(
        SemiNmf::params().alpha(f64::NAN).check(),
        Err(Error::InvalidParam { name: "alpha", .. })
    ));
    assert!(matches!(
        SamplesRef::new(&x, 4, 4),
        Err(Error::ShapeMismatch {
            len: 12,
            expected: 16,
            ..
        })
    ));

    let empty: Vec<f32> = vec![];
    let e = p
        .fit(SamplesRef::new(&empty, 0, 4).unwrap(), Par::Seq)
        .unwrap_err();
    assert!(matches!(e, Error::Empty { .. }));

    let dict = Dictionary::new(vec![1.0f32, 0.0, 0.0, 1.0], 2, 2).unwrap();
    let e = dict
        .encode(
            SamplesRef::new(&x, 3, 4).unwrap(),
            &EncodeParams::default(),
            Par::Seq,
        )
        .unwrap_err();
    assert_eq!(e, Error::FeatureMismatch { dict: 2, data: 4 });

    // Data so large that its squared norm overflows f32 products.
    let huge = vec![3e38f32; 4 * 2];
    let e = SemiNmf::params()
        .k(1)
        .init(Init::Random)
        .check()
        .unwrap()
        .fit(SamplesRef::new(&huge, 4, 2).unwrap(), Par::Seq)
        .unwrap_err();
    assert!(
        matches!(e, Error::NonFiniteObjective { .. } | Error::SvdFailed),
        "{e}"
    );
}
