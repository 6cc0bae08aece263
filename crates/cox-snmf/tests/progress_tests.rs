//! The fit observer (progress for long fits) and data with nothing to learn.

mod common;

use common::planted;
use cox_snmf::{Error, Par, Progress, SamplesRef, SemiNmf};

/// The observer sees every iteration's objective and relative change, and watching changes
/// nothing: the result is bit-identical to an unobserved fit, sequential or threaded.
#[test]
fn observer_reports_every_iteration_without_changing_the_fit() {
    let (x, _) = planted(300, 24, 4, 0.1, 5);
    let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let x = SamplesRef::new(&xs, 300, 24).unwrap();
    let p = SemiNmf::params()
        .k(4)
        .seed(3)
        .max_iter(30)
        .restarts(2)
        .check()
        .unwrap();
    let plain = p.fit(x, Par::Seq).unwrap();
    let mut seen: Vec<Progress> = Vec::new();
    let watched = p
        .fit_observed(x, Par::rayon(2), &mut |s| seen.push(*s))
        .unwrap();
    assert_eq!(plain.codes, watched.codes);
    assert_eq!(plain.dictionary, watched.dictionary);
    assert_eq!(plain.objective_trace, watched.objective_trace);
    // Both restarts report; the kept one's reports are its trace.
    let kept: Vec<&Progress> = seen
        .iter()
        .filter(|s| s.restart == watched.restart)
        .collect();
    let objectives: Vec<f64> = kept.iter().map(|s| s.objective).collect();
    assert_eq!(objectives, watched.objective_trace);
    assert!(seen.iter().any(|s| s.restart != watched.restart));
    for (i, s) in kept.iter().enumerate() {
        assert_eq!(s.iteration, i + 1);
        assert_eq!((s.restarts, s.max_iter), (2, 30));
        match i {
            0 => assert_eq!(s.relative_change, None),
            _ => {
                let t = &watched.objective_trace;
                assert_eq!(s.relative_change, Some((t[i - 1] - t[i]) / t[i]));
            }
        }
    }
    assert!(kept.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
}

/// An all-zero matrix is an error that says so, not a dictionary of arbitrary dead concepts.
#[test]
fn all_zero_data_is_a_clear_error() {
    let zeros = vec![0.0f32; 50 * 8];
    let x = SamplesRef::new(&zeros, 50, 8).unwrap();
    let e = SemiNmf::params()
        .k(5)
        .check()
        .unwrap()
        .fit(x, Par::Seq)
        .unwrap_err();
    assert_eq!(
        e,
        Error::ZeroData {
            n_samples: 50,
            n_features: 8
        }
    );
    assert!(e.to_string().contains("rank 0"), "{e}");
    // One non-zero value is enough to fit.
    let mut one = zeros.clone();
    one[17] = 1.0;
    let x = SamplesRef::new(&one, 50, 8).unwrap();
    assert!(SemiNmf::params()
        .k(1)
        .check()
        .unwrap()
        .fit(x, Par::Seq)
        .is_ok());
}
