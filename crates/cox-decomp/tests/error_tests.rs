//! Errors name what to fix, parameters are validated before any work, and names and dictionaries
//! round-trip through serde.

use cox_decomp::{
    ConceptDictionary, DecompParams, Decomposition, Error, KMeans, Method, Pca, Simple,
};
use cox_snmf::{Par, SamplesRef};

fn data() -> Vec<f32> {
    (0..40).map(|i| ((i * 7) % 11) as f32 - 3.0).collect()
}

fn all(k: usize) -> Vec<Box<dyn Decomposition>> {
    Method::ALL
        .iter()
        .map(|&m| DecompParams::new(m, k).build().unwrap())
        .collect()
}

#[test]
fn zero_concepts_is_rejected_at_build_and_fit() {
    for m in Method::ALL {
        let e = DecompParams::new(m, 0).build().unwrap_err();
        assert_eq!(e, Error::Data(cox_snmf::Error::ZeroConcepts), "{m}");
    }
    let d = data();
    let x = SamplesRef::new(&d, 10, 4).unwrap();
    assert!(matches!(
        Simple { k: 0 }.fit(x, Par::Seq),
        Err(Error::Data(cox_snmf::Error::ZeroConcepts))
    ));
    assert!(matches!(
        Pca::new(0).fit(x, Par::Seq),
        Err(Error::Data(cox_snmf::Error::ZeroConcepts))
    ));
}

#[test]
fn more_concepts_than_samples_is_rejected() {
    let d = data();
    let x = SamplesRef::new(&d, 4, 10).unwrap();
    for dec in all(5) {
        let e = dec.fit(x, Par::Seq).unwrap_err();
        assert_eq!(
            e,
            Error::Data(cox_snmf::Error::TooManyConcepts { k: 5, n_samples: 4 }),
            "{}",
            dec.method()
        );
        assert!(e.to_string().contains("lower K"));
    }
    // PCA also needs K <= B.
    let x = SamplesRef::new(&d, 10, 4).unwrap();
    assert!(matches!(
        Pca::new(5).fit(x, Par::Seq),
        Err(Error::TooManyComponents { k: 5, .. })
    ));
}

#[test]
fn non_finite_values_are_named_by_sample_and_feature() {
    let mut d = data();
    d[2 * 4 + 3] = f32::NAN;
    let x = SamplesRef::new(&d, 10, 4).unwrap();
    for dec in all(2) {
        let e = dec.fit(x, Par::Seq).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Data(cox_snmf::Error::NonFinite {
                    sample: 2,
                    feature: 3,
                    ..
                })
            ),
            "{}: {e}",
            dec.method()
        );
    }
    let ok = data();
    let fit = Simple { k: 2 }
        .fit(SamplesRef::new(&ok, 10, 4).unwrap(), Par::Seq)
        .unwrap();
    let mut bad = vec![0.0f32; 8];
    bad[5] = f32::INFINITY;
    let e = fit
        .dictionary
        .encode(SamplesRef::new(&bad, 2, 4).unwrap(), Par::Seq)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Data(cox_snmf::Error::NonFinite {
            sample: 1,
            feature: 1,
            ..
        })
    ));
}

#[test]
fn all_zero_data_is_rejected_by_every_method() {
    let zeros = vec![0.0f32; 40];
    let x = SamplesRef::new(&zeros, 10, 4).unwrap();
    for dec in all(2) {
        let e = dec.fit(x, Par::Seq).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Data(cox_snmf::Error::ZeroData {
                    n_samples: 10,
                    n_features: 4
                })
            ),
            "{:?}: {e}",
            dec.method()
        );
    }
}

/// The observed fit reports Semi-NMF's iterations and returns the plain fit's result; the other
/// methods just fit.
#[test]
fn observed_fits_equal_plain_fits() {
    let d = data();
    let x = SamplesRef::new(&d, 10, 4).unwrap();
    for dec in all(2) {
        let mut n = 0;
        let watched = dec.fit_observed(x, Par::Seq, &mut |_| n += 1).unwrap();
        let plain = dec.fit(x, Par::Seq).unwrap();
        assert_eq!(watched.activations, plain.activations, "{:?}", dec.method());
        let expect = if dec.method() == Method::SemiNmf {
            plain.report.objective_trace.len()
        } else {
            0
        };
        assert_eq!(n, expect, "{:?}", dec.method());
    }
}

#[test]
fn empty_data_is_rejected() {
    let x = SamplesRef::new(&[], 0, 4).unwrap();
    for dec in all(1) {
        assert!(matches!(
            dec.fit(x, Par::Seq),
            Err(Error::Data(cox_snmf::Error::Empty { .. }))
        ));
    }
}

#[test]
fn feature_mismatch_at_encode_is_rejected() {
    let d = data();
    let x = SamplesRef::new(&d, 10, 4).unwrap();
    let other = SamplesRef::new(&d, 8, 5).unwrap();
    for dec in all(2) {
        let fit = dec.fit(x, Par::Seq).unwrap();
        let e = fit.dictionary.encode(other, Par::Seq).unwrap_err();
        assert_eq!(
            e,
            Error::Data(cox_snmf::Error::FeatureMismatch { dict: 4, data: 5 })
        );
    }
}

#[test]
fn options_a_method_does_not_use_are_rejected() {
    type Case = (Method, fn(&mut DecompParams));
    let cases: [Case; 6] = [
        (Method::Pca, |p| p.alpha = Some(1.0)),
        (Method::Pca, |p| p.max_iter = Some(10)),
        (Method::KMeans, |p| p.alpha = Some(1.0)),
        (Method::Simple, |p| p.n_init = Some(2)),
        (Method::Simple, |p| p.tol = Some(1e-3)),
        (Method::KMeans, |p| p.svd = Some(cox_snmf::SvdMethod::Exact)),
    ];
    for (m, set) in cases {
        let mut p = DecompParams::new(m, 3);
        set(&mut p);
        assert!(
            matches!(p.build(), Err(Error::InvalidParam { .. })),
            "{m}: {p:?}"
        );
    }
    let mut p = DecompParams::new(Method::SemiNmf, 3);
    p.alpha = Some(-1.0);
    assert!(p.build().is_err());
    let mut p = DecompParams::new(Method::KMeans, 3);
    p.n_init = Some(0);
    assert!(p.build().is_err());
    let mut p = DecompParams::new(Method::KMeans, 3);
    p.max_iter = Some(7);
    p.tol = Some(0.5);
    p.seed = 9;
    assert!(p.build().is_ok());
}

#[test]
fn init_centres_of_the_wrong_shape_are_rejected() {
    let d = data();
    let mut km = KMeans::new(2);
    km.init_centres = Some(vec![0.0; 7]);
    let e = km
        .fit(SamplesRef::new(&d, 10, 4).unwrap(), Par::Seq)
        .unwrap_err();
    assert!(matches!(
        e,
        Error::InvalidParam {
            name: "init_centres",
            ..
        }
    ));
}

#[test]
fn method_names_parse_print_and_serialise() {
    for m in Method::ALL {
        assert_eq!(m.to_string().parse::<Method>().unwrap(), m);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, format!("\"{m}\""));
        assert_eq!(serde_json::from_str::<Method>(&json).unwrap(), m);
    }
    assert_eq!("NNDL".parse::<Method>().unwrap(), Method::SemiNmf);
    assert_eq!(
        serde_json::from_str::<Method>("\"nndl\"").unwrap(),
        Method::SemiNmf
    );
    let e = "ica".parse::<Method>().unwrap_err();
    assert!(e.to_string().contains("snmf, pca, kmeans, simple"));
}

#[test]
fn dictionaries_round_trip_through_serde_and_inconsistent_ones_are_rejected() {
    let d = data();
    let x = SamplesRef::new(&d, 10, 4).unwrap();
    for dec in all(2) {
        let fit = dec.fit(x, Par::Seq).unwrap();
        let json = serde_json::to_string(&fit.dictionary).unwrap();
        let back: ConceptDictionary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fit.dictionary);
        assert_eq!(
            back.encode(x, Par::Seq).unwrap(),
            fit.dictionary.encode(x, Par::Seq).unwrap()
        );
    }
    let good = ConceptDictionary {
        method: Method::Pca,
        k: 1,
        n_features: 2,
        concepts: vec![1.0, 0.0],
        mean: Some(vec![0.0, 0.0]),
        alpha: None,
    };
    assert!(good.validate().is_ok());
    let broken: [fn(&mut ConceptDictionary); 6] = [
        |d| d.mean = None,
        |d| d.mean = Some(vec![0.0]),
        |d| d.alpha = Some(1.0),
        |d| d.concepts.push(0.0),
        |d| d.concepts[1] = f32::NAN,
        |d| {
            d.method = Method::SemiNmf;
            d.mean = None;
        },
    ];
    for f in broken {
        let mut d = good.clone();
        f(&mut d);
        assert!(
            matches!(d.validate(), Err(Error::InvalidDictionary { .. })),
            "{d:?}"
        );
        assert!(d
            .encode(SamplesRef::new(&[0.0, 0.0], 1, 2).unwrap(), Par::Seq)
            .is_err());
    }
}
