//! Semi-NMF through `cox-snmf`.

use cox_snmf::{Par, SamplesRef, ValidParams};

use crate::error::check_data;
use crate::{ConceptDictionary, Decomposed, Decomposition, FitReport, Method, Result};

/// The paper's Semi-NMF (`docs/method.md` §3), delegated to [`cox_snmf`]: activations are the fit's
/// codes, and [`ConceptDictionary::encode`] is the positive Lasso with the fit's α.
///
/// ```
/// use cox_decomp::{Decomposition, SnmfDecomposition};
/// use cox_snmf::{Par, SamplesRef, SemiNmf};
/// let data: Vec<f32> = (0..60).map(|i| ((i * 7) % 11) as f32).collect();
/// let x = SamplesRef::new(&data, 12, 5).unwrap();
/// let snmf = SnmfDecomposition(SemiNmf::params().k(3).seed(1).check().unwrap());
/// let out = snmf.fit(x, Par::Seq).unwrap();
/// assert_eq!(out.dictionary.alpha, Some(1.0));
/// assert!(out.activations.iter().all(|&a| a >= 0.0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SnmfDecomposition(pub ValidParams);

impl Decomposition for SnmfDecomposition {
    fn method(&self) -> Method {
        Method::SemiNmf
    }

    fn k(&self) -> usize {
        self.0.k()
    }

    fn fit(&self, x: SamplesRef<'_, f32>, par: Par) -> Result<Decomposed> {
        self.fit_observed(x, par, &mut |_| {})
    }

    fn fit_observed(
        &self,
        x: SamplesRef<'_, f32>,
        par: Par,
        observer: &mut dyn FnMut(&cox_snmf::Progress),
    ) -> Result<Decomposed> {
        check_data(x, self.0.k())?;
        let fit = self.0.fit_observed(x, par, observer)?;
        let dead_concepts = fit.dead_concepts();
        let (k, b) = (fit.k(), x.n_features());
        let report = FitReport {
            objective: Some(fit.objective),
            objective_trace: fit.objective_trace,
            iterations: fit.iterations,
            converged: fit.converged,
            init_seconds: fit.timings.init.as_secs_f64(),
            fit_seconds: fit.timings.iterate.as_secs_f64(),
            dead_concepts,
            resampled: fit.dead_resampled,
            ..FitReport::default()
        };
        Ok(Decomposed {
            dictionary: ConceptDictionary {
                method: Method::SemiNmf,
                k,
                n_features: b,
                concepts: fit.dictionary.into_vec(),
                mean: None,
                alpha: Some(self.0.alpha()),
            },
            activations: fit.codes,
            report,
        })
    }
}
