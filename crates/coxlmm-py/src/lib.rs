//! coxlmm for Python: the `coxlmm` wheel (`pip install coxlmm`, built with maturin).
//!
//! This crate owns the bindings only. The Python package (`python/coxlmm/`) defines the
//! scikit-learn-style estimators — `SemiNMF`, a drop-in for the reference's
//! `DictionaryLearning(positive_code=True, fit_algorithm="cd", transform_algorithm="lasso_cd")`,
//! and the baselines `PCA`, `KMeans` and `Simple` — and the readers of what `coxlmm` writes (an
//! activation store, a dictionary, a run folder); they call the extension module `coxlmm._native`
//! (the `python` module, behind the `python` feature that maturin enables), which converts numpy
//! arrays to slices without copying when they are C-contiguous, releases the GIL while the solvers
//! run and raises the Rust errors as `ValueError` (`OSError` for unreadable files) with their
//! message. [`bridge`] is the plain-Rust half (settings, `n_jobs` to a rayon pool, the calls into
//! `cox-snmf`, `cox-decomp` and `cox-store`), built and tested without Python.
//!
//! It must never hold numerics or file formats of its own: the solvers are `cox-snmf`'s and
//! `cox-decomp`'s, the files `cox-store`'s, and nothing here is used by another crate.

pub mod bridge;

#[cfg(feature = "python")]
mod python;
