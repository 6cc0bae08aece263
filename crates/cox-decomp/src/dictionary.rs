//! The learnt dictionary, what it takes to encode new samples, and the result of a fit.

use cox_snmf::{Dictionary, EncodeParams, Par, SamplesRef};
use serde::{Deserialize, Serialize};

use crate::kernels::{project, row_sq_norms};
use crate::{Error, Method, Result};

/// A concept dictionary of any [`Method`]: everything needed to encode new samples.
///
/// The fields are plain data so that the file-format code can store them (concepts as a `[K, B]`
/// tensor, the rest as metadata); [`ConceptDictionary::validate`] checks a dictionary read back.
///
/// Encoding (`docs/method.md` §3, the reference's `transform` per method):
/// * [`Method::SemiNmf`]: the positive Lasso code `argmin_{v ≥ 0} ½‖x − Uv‖² + α‖v‖₁`, with the α of the fit;
/// * [`Method::Pca`]: the signed scores `(x − mean) · conceptsᵀ`;
/// * [`Method::KMeans`], [`Method::Simple`]: `1 / (1 + ‖x − c_k‖₂)` for each concept `c_k`.
///
/// ```
/// use cox_decomp::{ConceptDictionary, Method};
/// use cox_snmf::{Par, SamplesRef};
/// let dict = ConceptDictionary {
///     method: Method::Simple, k: 1, n_features: 2,
///     concepts: vec![3.0, 4.0], mean: None, alpha: None,
/// };
/// let x = [0.0f32, 0.0];
/// let act = dict.encode(SamplesRef::new(&x, 1, 2).unwrap(), Par::Seq).unwrap();
/// assert_eq!(act, vec![1.0 / 6.0]); // distance 5
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptDictionary {
    /// The method that learnt the dictionary; it decides how [`ConceptDictionary::encode`] works.
    pub method: Method,
    /// Number of concepts K.
    pub k: usize,
    /// Number of features B.
    pub n_features: usize,
    /// The concepts, `K × B` concept-major (each concept's B values contiguous).
    pub concepts: Vec<f32>,
    /// The centring vector (length B) of [`Method::Pca`]; `None` for the other methods.
    pub mean: Option<Vec<f32>>,
    /// The sparsity weight α of [`Method::SemiNmf`], used again to encode; `None` for the others.
    pub alpha: Option<f64>,
}

impl ConceptDictionary {
    /// Concept `k` (length B).
    ///
    /// # Panics
    /// If `k >= self.k`.
    #[track_caller]
    pub fn concept(&self, k: usize) -> &[f32] {
        &self.concepts[k * self.n_features..(k + 1) * self.n_features]
    }

    /// Checks that the fields agree with each other and with the method: `K ≥ 1`, `B ≥ 1`,
    /// `K × B` finite concept values, a finite length-B mean exactly for PCA, a finite α ≥ 0 exactly
    /// for Semi-NMF.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidDictionary {
                method: self.method,
                reason,
            })
        };
        if self.k == 0 || self.n_features == 0 {
            return bad(format!(
                "K = {} and B = {} must both be at least 1",
                self.k, self.n_features
            ));
        }
        if self.concepts.len() != self.k * self.n_features {
            return bad(format!(
                "{} concept values for K = {} × B = {}",
                self.concepts.len(),
                self.k,
                self.n_features
            ));
        }
        if let Some(p) = self.concepts.iter().position(|v| !v.is_finite()) {
            return bad(format!(
                "concept {}, feature {} is {}",
                p / self.n_features,
                p % self.n_features,
                self.concepts[p]
            ));
        }
        match (&self.mean, self.method) {
            (None, Method::Pca) => return bad("PCA needs its centring vector (mean)".into()),
            (Some(_), m) if m != Method::Pca => {
                return bad("only PCA has a centring vector (mean)".into())
            }
            (Some(mu), _) if mu.len() != self.n_features => {
                return bad(format!(
                    "the mean has {} values for B = {}",
                    mu.len(),
                    self.n_features
                ))
            }
            (Some(mu), _) if mu.iter().any(|v| !v.is_finite()) => {
                return bad("the mean has a non-finite value".into())
            }
            _ => {}
        }
        match (self.alpha, self.method) {
            (None, Method::SemiNmf) => bad("Semi-NMF needs its sparsity weight alpha".into()),
            (Some(a), Method::SemiNmf) if !(a.is_finite() && a >= 0.0) => {
                bad(format!("alpha = {a} must be finite and >= 0"))
            }
            (Some(_), m) if m != Method::SemiNmf => {
                bad("only Semi-NMF has a sparsity weight alpha".into())
            }
            _ => Ok(()),
        }
    }

    /// Encodes samples: the `M × K` (sample-major) activations of `x` (`M × B`), as the reference's
    /// `transform` for the method (see the type's documentation). Each sample is encoded
    /// independently, so the result does not depend on the sample order, and it is bit-identical
    /// whatever `par` is.
    ///
    /// # Errors
    /// An inconsistent dictionary, a feature-count mismatch, or a NaN/Inf value (named by sample and
    /// feature).
    pub fn encode(&self, x: SamplesRef<'_, f32>, par: Par) -> Result<Vec<f32>> {
        self.validate()?;
        if x.n_features() != self.n_features {
            return Err(cox_snmf::Error::FeatureMismatch {
                dict: self.n_features,
                data: x.n_features(),
            }
            .into());
        }
        x.check_finite()?;
        let (b, k) = (self.n_features, self.k);
        match self.method {
            Method::SemiNmf => {
                let alpha = self.alpha.expect("validated");
                let dict = Dictionary::new(self.concepts.clone(), k, b)?;
                Ok(dict.encode(x, &EncodeParams::with_alpha(alpha), par)?)
            }
            Method::Pca => {
                let mean: Vec<f64> = self
                    .mean
                    .as_ref()
                    .expect("validated")
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let c = self.concepts_f64();
                Ok(project(
                    x,
                    Some(&mean),
                    &c,
                    k,
                    par,
                    |_, p, o: &mut [f32]| o.iter_mut().zip(p).for_each(|(o, &v)| *o = v as f32),
                ))
            }
            Method::KMeans | Method::Simple => {
                Ok(inverse_distances(x, &self.concepts_f64(), k, par))
            }
        }
    }

    fn concepts_f64(&self) -> Vec<f64> {
        self.concepts.iter().map(|&v| v as f64).collect()
    }
}

/// `1 / (1 + ‖x_i − c_j‖₂)` for every sample and concept, the distances computed in f64 as
/// `‖x‖² − 2⟨x, c⟩ + ‖c‖²` clamped at zero (scikit-learn's `euclidean_distances`).
pub(crate) fn inverse_distances(
    x: SamplesRef<'_, f32>,
    concepts: &[f64],
    k: usize,
    par: Par,
) -> Vec<f32> {
    let b = x.n_features();
    let cn = row_sq_norms(concepts, b);
    project(x, None, concepts, k, par, |xn, p, o: &mut [f32]| {
        for ((o, &pj), &cj) in o.iter_mut().zip(p).zip(&cn) {
            let d2 = (xn - 2.0 * pj + cj).max(0.0);
            *o = (1.0 / (1.0 + d2.sqrt())) as f32;
        }
    })
}

/// How a fit went: the method's objective, convergence and timings, and method-specific extras.
///
/// This is the one record of a fit: a dictionary's sidecar embeds it (its field names are the
/// sidecar's keys, `docs/formats.md`), and summaries and metrics read it from there. Fields a
/// method does not produce are left out when serialised, and absent fields read as their
/// defaults, so sidecars written before a field existed still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FitReport {
    /// The method's own objective at the end: Semi-NMF `½‖X − CD‖²_F + α‖C‖₁`, K-Means the inertia
    /// `Σ_i ‖x_i − c_{label(i)}‖²`, PCA the residual `‖X_c − X_c VᵀV‖²_F` of the centred data;
    /// `None` for Simple.
    pub objective: Option<f64>,
    /// The objective after each iteration: Semi-NMF's per-iteration cost (scikit-learn's `error_`),
    /// K-Means' inertia of each E-step (the assignment to the centres entering that iteration).
    /// Empty for PCA and Simple.
    pub objective_trace: Vec<f64>,
    /// Completed iterations (Lloyd iterations of the kept K-Means run; 0 for PCA and Simple).
    pub iterations: usize,
    /// Whether the method's stopping test was met before its iteration limit (always `true` for
    /// PCA and Simple).
    pub converged: bool,
    /// Seconds spent initialising (Semi-NMF's SVD, K-Means' seeding of all runs).
    pub init_seconds: f64,
    /// Seconds spent in the fit proper (iterations; the SVD for PCA; everything after init).
    pub fit_seconds: f64,
    /// PCA: the variance explained by each component, `s_k² / (M − 1)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_variance: Option<Vec<f64>>,
    /// PCA: the fraction of the total variance explained by each component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explained_variance_ratio: Option<Vec<f64>>,
    /// Concepts that explain no training sample: Semi-NMF concepts whose activation is zero on every
    /// sample, K-Means clusters left empty at the end.
    pub dead_concepts: Vec<usize>,
    /// Semi-NMF: dead atoms re-seeded from a data row; K-Means: empty clusters relocated to far
    /// samples (over all Lloyd iterations of the kept run).
    pub resampled: usize,
    /// K-Means: the cluster of each training sample (the concept with the largest activation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<u32>>,
    /// Simple: the training samples taken as concepts, in concept order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_samples: Option<Vec<usize>>,
}

/// The result of fitting a decomposition: the dictionary, the training activations and a report.
#[derive(Debug, Clone)]
pub struct Decomposed {
    /// The learnt dictionary.
    pub dictionary: ConceptDictionary,
    /// The training activations, `M × K` sample-major (what the reference's `fit_transform`
    /// returns; equal to `dictionary.encode(x)` up to the Lasso tolerance for Semi-NMF and exactly
    /// for the other methods).
    pub activations: Vec<f32>,
    /// How the fit went.
    pub report: FitReport,
}
