//! One set of parameters for every method, validated into a [`Decomposition`] (the CLI's entry).

use cox_snmf::{SemiNmf, SvdMethod};
use serde::{Deserialize, Serialize};

use crate::{Decomposition, Error, KMeans, Method, Pca, Result, Simple, SnmfDecomposition};

/// Parameters of any method, as a command line or a config file gives them. Unset options take the
/// reference's defaults; setting an option the method does not use is an error, so a typo in an
/// experiment fails before any work starts.
///
/// | option | Semi-NMF | K-Means | PCA | Simple |
/// |---|---|---|---|---|
/// | `alpha` | α (1.0) | – | – | – |
/// | `max_iter` | outer iterations (5000) | Lloyd iterations (5000) | – | – |
/// | `tol` | relative objective decrease (1e-8) | relative centre shift (1e-4) | – | – |
/// | `n_init` | restarts (1) | k-means++ runs (1) | – | – |
/// | `svd` | initial SVD (randomized) | – | solver (sklearn `auto`) | – |
/// | `seed` | every random choice | k-means++ | randomized SVD | – |
///
/// ```
/// use cox_decomp::{DecompParams, Method};
/// let d = DecompParams::new(Method::KMeans, 20).build().unwrap();
/// assert_eq!((d.method(), d.k()), (Method::KMeans, 20));
/// let mut p = DecompParams::new(Method::Pca, 20);
/// p.alpha = Some(1.0);
/// assert!(p.build().is_err()); // PCA has no alpha
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecompParams {
    /// The method.
    pub method: Method,
    /// Number of concepts K.
    pub k: usize,
    /// Semi-NMF's sparsity weight α.
    pub alpha: Option<f64>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Iteration limit (Semi-NMF, K-Means).
    pub max_iter: Option<usize>,
    /// Stopping tolerance (Semi-NMF, K-Means).
    pub tol: Option<f64>,
    /// Independent runs, the best kept (Semi-NMF restarts, K-Means `n_init`).
    pub n_init: Option<usize>,
    /// SVD method (Semi-NMF's initialisation, PCA's solver).
    #[serde(skip)]
    pub svd: Option<SvdMethod>,
}

impl DecompParams {
    /// The reference's defaults for `method` with `k` concepts, seed 0.
    pub fn new(method: Method, k: usize) -> Self {
        Self {
            method,
            k,
            alpha: None,
            seed: 0,
            max_iter: None,
            tol: None,
            n_init: None,
            svd: None,
        }
    }

    /// Validates the parameters and returns the decomposition to fit.
    ///
    /// # Errors
    /// `K = 0`, an out-of-range value, or an option the method does not use.
    pub fn build(&self) -> Result<Box<dyn Decomposition>> {
        if self.k == 0 {
            return Err(cox_snmf::Error::ZeroConcepts.into());
        }
        let unused = |name: &'static str, set: bool| -> Result<()> {
            if set {
                Err(Error::InvalidParam {
                    name,
                    value: "set".into(),
                    reason: format!("the {} method does not use it", self.method),
                })
            } else {
                Ok(())
            }
        };
        match self.method {
            Method::SemiNmf => {
                let mut p = SemiNmf::params().k(self.k).seed(self.seed);
                if let Some(a) = self.alpha {
                    p = p.alpha(a);
                }
                if let Some(n) = self.max_iter {
                    p = p.max_iter(n);
                }
                if let Some(t) = self.tol {
                    p = p.tol(t);
                }
                if let Some(n) = self.n_init {
                    p = p.restarts(n);
                }
                if let Some(s) = self.svd {
                    p = p.init(cox_snmf::Init::Svd(s));
                }
                Ok(Box::new(SnmfDecomposition(p.check()?)))
            }
            Method::KMeans => {
                unused("alpha", self.alpha.is_some())?;
                unused("svd", self.svd.is_some())?;
                let mut km = KMeans::new(self.k);
                km.seed = self.seed;
                if let Some(n) = self.max_iter {
                    km.max_iter = n;
                }
                if let Some(t) = self.tol {
                    km.tol = t;
                }
                if let Some(n) = self.n_init {
                    km.n_init = n;
                }
                km.validate()?;
                Ok(Box::new(km))
            }
            Method::Pca => {
                unused("alpha", self.alpha.is_some())?;
                unused("max_iter", self.max_iter.is_some())?;
                unused("tol", self.tol.is_some())?;
                unused("n_init", self.n_init.is_some())?;
                Ok(Box::new(Pca {
                    k: self.k,
                    seed: self.seed,
                    svd: self.svd,
                }))
            }
            Method::Simple => {
                unused("alpha", self.alpha.is_some())?;
                unused("max_iter", self.max_iter.is_some())?;
                unused("tol", self.tol.is_some())?;
                unused("n_init", self.n_init.is_some())?;
                unused("svd", self.svd.is_some())?;
                Ok(Box::new(Simple { k: self.k }))
            }
        }
    }
}
