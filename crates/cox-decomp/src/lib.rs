//! One interface for the CoX-LMM concept dictionary and the paper's baselines.
//!
//! This crate owns the decomposition step of the pipeline (`docs/method.md` §3): given `M` token
//! representations of dimension `B` stacked sample-major (`X ∈ R^{M×B}`), a [`Decomposition`] learns
//! `K` concepts and the training activations, and the resulting [`ConceptDictionary`] encodes new
//! samples. The methods are the paper's Semi-NMF (delegated to [`cox_snmf`]) and the three baselines
//! of the reference code's `decompose_activations`, with scikit-learn 1.5's exact semantics:
//! centred [`Pca`], [`KMeans`] (k-means++ then Lloyd, activations `1/(1 + distance)`) and [`Simple`]
//! (the K largest-norm samples). [`DecompParams`] is the one validated entry point for a command
//! line. Every random choice takes a seed, and results are bit-identical whatever the parallelism.
//!
//! It must never do IO, logging to files, or know about models, tokens, paths or the CLI: it is pure
//! numerics on slices, and reports data-dependent problems as [`Error`]s.
//!
//! ```
//! use cox_decomp::{DecompParams, Method};
//! use cox_snmf::{Par, SamplesRef};
//! let data: Vec<f32> = (0..60).map(|i| ((i * 7) % 11) as f32).collect();
//! let x = SamplesRef::new(&data, 12, 5).unwrap();
//! for method in Method::ALL {
//!     let out = DecompParams::new(method, 3).build().unwrap().fit(x, Par::Seq).unwrap();
//!     assert_eq!(out.activations.len(), 12 * 3);
//!     assert_eq!(out.dictionary.encode(x, Par::Seq).unwrap().len(), 12 * 3);
//! }
//! ```

mod dictionary;
mod error;
mod kernels;
mod kmeans;
mod method;
mod params;
mod pca;
mod simple;
mod snmf;

use cox_snmf::{Par, SamplesRef};

pub use dictionary::{ConceptDictionary, Decomposed, FitReport};
pub use error::{Error, Result};
pub use kmeans::KMeans;
pub use method::Method;
pub use params::DecompParams;
pub use pca::Pca;
pub use simple::Simple;
pub use snmf::SnmfDecomposition;

/// A way to learn a concept dictionary from `M × B` sample-major f32 data.
///
/// `par` is the parallelism of the dense kernels (`Par::Seq` or `Par::rayon(0)`); the result does
/// not depend on it.
pub trait Decomposition: Send + Sync + std::fmt::Debug {
    /// The method.
    fn method(&self) -> Method;
    /// Number of concepts K.
    fn k(&self) -> usize;
    /// Learns the dictionary and the training activations.
    ///
    /// # Errors
    /// Empty data, `K = 0`, `K > M` (PCA: `K > min(M, B)`), a NaN/Inf value named by sample and
    /// feature, or an out-of-range parameter.
    fn fit(&self, x: SamplesRef<'_, f32>, par: Par) -> Result<Decomposed>;

    /// [`Self::fit`], reporting each iteration of an iterative fit to `observer` (Semi-NMF:
    /// iteration, objective, relative change; see [`cox_snmf::Progress`]) so that a caller can show
    /// progress. The result is the same as [`Self::fit`]'s. Methods that report nothing (PCA,
    /// K-Means, Simple) just fit.
    ///
    /// # Errors
    /// As [`Self::fit`].
    fn fit_observed(
        &self,
        x: SamplesRef<'_, f32>,
        par: Par,
        observer: &mut dyn FnMut(&cox_snmf::Progress),
    ) -> Result<Decomposed> {
        let _ = observer;
        self.fit(x, par)
    }
}
