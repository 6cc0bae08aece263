//! The "Simple" baseline: the K training samples of largest norm.

use std::time::Instant;

use cox_snmf::{Par, SamplesRef};

use crate::dictionary::inverse_distances;
use crate::error::check_data;
use crate::{ConceptDictionary, Decomposed, Decomposition, FitReport, Method, Result};

/// The reference's `simple` baseline (`docs/method.md` §3): the concepts are the K training vectors of
/// largest L2 norm, in numpy's `argsort(norms)[-K:]` order (ascending by norm, so the largest-norm
/// sample is the last concept); activations are `1 / (1 + ‖x − c_k‖₂)`.
///
/// Norms are computed in f64 and sorted with a stable sort, so equal norms keep the sample order
/// (numpy's default quicksort leaves the order of ties unspecified).
///
/// ```
/// use cox_decomp::{Decomposition, Simple};
/// use cox_snmf::{Par, SamplesRef};
/// let data = [1.0f32, 0.0, 0.0, 5.0, 3.0, 0.0];
/// let out = Simple { k: 2 }.fit(SamplesRef::new(&data, 3, 2).unwrap(), Par::Seq).unwrap();
/// assert_eq!(out.report.selected_samples, Some(vec![2, 1])); // norms 3 then 5
/// assert_eq!(out.dictionary.concepts, vec![3.0, 0.0, 0.0, 5.0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Simple {
    /// Number of concepts K.
    pub k: usize,
}

/// The indices of the `k` largest values of `norms` in `argsort(norms)[-k:]` order (stable).
pub(crate) fn top_k_ascending(norms: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..norms.len()).collect();
    idx.sort_by(|&a, &b| norms[a].total_cmp(&norms[b]));
    idx.split_off(norms.len() - k)
}

impl Decomposition for Simple {
    fn method(&self) -> Method {
        Method::Simple
    }

    fn k(&self) -> usize {
        self.k
    }

    fn fit(&self, x: SamplesRef<'_, f32>, par: Par) -> Result<Decomposed> {
        check_data(x, self.k)?;
        let start = Instant::now();
        let b = x.n_features();
        let norms: Vec<f64> = (0..x.n_samples())
            .map(|i| {
                x.sample(i)
                    .iter()
                    .map(|&v| (v as f64) * (v as f64))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        let selected = top_k_ascending(&norms, self.k);
        let concepts: Vec<f32> = selected
            .iter()
            .flat_map(|&i| x.sample(i).iter().copied())
            .collect();
        let c64: Vec<f64> = concepts.iter().map(|&v| v as f64).collect();
        let activations = inverse_distances(x, &c64, self.k, par);
        Ok(Decomposed {
            dictionary: ConceptDictionary {
                method: Method::Simple,
                k: self.k,
                n_features: b,
                concepts,
                mean: None,
                alpha: None,
            },
            activations,
            report: FitReport {
                converged: true,
                fit_seconds: start.elapsed().as_secs_f64(),
                selected_samples: Some(selected),
                ..FitReport::default()
            },
        })
    }
}
