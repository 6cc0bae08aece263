//! Semi-NMF with sparse non-negative codes: the concept dictionary of CoX-LMM.
//!
//! This crate owns the numeric core of the method (Parekh et al., NeurIPS 2024, §1.4 of
//! `docs/method.md` §3.1): given `M` token representations of dimension `B`, stacked sample-major as
//! `X ∈ R^{M×B}` (the paper's `Zᵀ`), it learns `K` concepts `D ∈ R^{K×B}` (the paper's `Uᵀ`) and
//! non-negative activations `C ∈ R^{M×K}` (the paper's `Vᵀ`) by
//!
//! `min ½‖X − C D‖²_F + α‖C‖₁  s.t.  C ≥ 0,  ‖d_k‖₂ ≤ 1`,
//!
//! with the same fixed points as scikit-learn's `DictionaryLearning(positive_code=True,
//! fit_algorithm="cd")` that the reference code runs: an exact coordinate-descent code step
//! (vectorised, `S` sweeps warm-started) alternating with scikit-learn's block-coordinate atom step,
//! from scikit-learn's SVD initialisation, stopping on a relative objective decrease below `tol`.
//! [`Dictionary::encode`] projects new samples (the paper's local interpretation).
//!
//! It must never do IO, logging to files, or know about models, tokens or paths: it works on slices
//! and faer views, and reports data-dependent problems as [`Error`]s.
//!
//! ```
//! use cox_snmf::{EncodeParams, SamplesRef, SemiNmf};
//! let data: Vec<f32> = (0..60).map(|i| ((i * 7) % 11) as f32).collect();
//! let x = SamplesRef::new(&data, 12, 5).unwrap();
//! let fit = SemiNmf::params().k(3).seed(1).check().unwrap().fit(x, faer::Par::Seq).unwrap();
//! let codes = fit.dictionary.encode(x, &EncodeParams::with_alpha(1.0), faer::Par::Seq).unwrap();
//! assert_eq!(codes.len(), 12 * 3);
//! ```

mod data;
mod dictionary;
mod error;
mod fit;
mod kernels;
mod kkt;
mod params;
mod real;
mod svd;
pub mod synthetic;

pub use data::SamplesRef;
pub use dictionary::Dictionary;
pub use error::{Error, Result};
pub use fit::{Fit, Progress, SemiNmf, Timings};
pub use kkt::{kkt_report, KktReport};
pub use params::{EncodeParams, Init, SemiNmfParams, SvdMethod, ValidParams};
pub use real::Real;
pub use svd::{top_k_svd, TopSvd};

/// Re-exported so callers can pass the parallelism without depending on faer directly.
pub use faer::Par;
