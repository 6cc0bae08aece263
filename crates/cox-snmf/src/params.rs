//! Hyper-parameters: a builder ([`SemiNmfParams`]) validated into [`ValidParams`] before any work starts.

use crate::{Error, Result};

/// How the dictionary and codes are initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// scikit-learn's initialisation: the top-K singular triplets of X with `svd_flip`'s sign rule,
    /// codes = the left singular vectors, atoms = `S·Vᵀ` rows (not normalised: the first atom step
    /// projects them). Mathematically independent of the sample order. The default.
    Svd(SvdMethod),
    /// K distinct data rows, chosen with the seed, projected onto the unit ball; codes start at zero.
    Samples,
    /// K Gaussian directions of unit norm, drawn with the seed; codes start at zero.
    Random,
}

impl Default for Init {
    fn default() -> Self {
        Init::Svd(SvdMethod::default())
    }
}

/// How the top-K SVD for [`Init::Svd`] is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SvdMethod {
    /// Randomized range finder (Halko, Martinsson & Tropp 2011) on `K + oversample` columns with at
    /// most `power_iters` QR-stabilised power iterations, stopping earlier once every top-K singular
    /// triplet has a residual `‖X v − σ u‖ ≤ tol·σ` (checked after each iteration, exact up to
    /// rounding: see `top_k_svd`). `tol = 0` runs all `power_iters`.
    ///
    /// The default (40, 20, 1e-4) reproduces the reference's exact-SVD start: the Semi-NMF fit is
    /// sensitive to the initial subspace (an init with residuals around 1e-2, e.g. scikit-learn's
    /// 7 power iterations on 30 columns, settles in a different local minimum on token-like data),
    /// and the wide block reaches 1e-4 in 2–3 iterations on data whose spectrum drops after a few
    /// dozen directions (`docs/benchmarks.md`).
    Randomized {
        oversample: usize,
        power_iters: usize,
        tol: f64,
    },
    /// A full thin SVD (exact, O(M·B·min(M,B)); for small problems and parity checks).
    Exact,
}

impl Default for SvdMethod {
    fn default() -> Self {
        SvdMethod::Randomized {
            oversample: 40,
            power_iters: 20,
            tol: 1e-4,
        }
    }
}

/// Builder for the Semi-NMF hyper-parameters. Defaults are the reference's
/// (`docs/method.md` §3.1): K = 20, α = 1, tol = 1e-8, 5000 iterations.
///
/// ```
/// use cox_snmf::SemiNmf;
/// let params = SemiNmf::params().k(5).alpha(0.5).seed(7).check().unwrap();
/// assert_eq!(params.k(), 5);
/// assert!(SemiNmf::params().k(0).check().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SemiNmfParams {
    pub(crate) k: usize,
    pub(crate) alpha: f64,
    pub(crate) max_iter: usize,
    pub(crate) tol: f64,
    pub(crate) code_sweeps: usize,
    pub(crate) code_tol: f64,
    pub(crate) init: Init,
    pub(crate) seed: u64,
    pub(crate) restarts: usize,
    pub(crate) block_rows: Option<usize>,
    pub(crate) dead_atom_threshold: f64,
}

impl Default for SemiNmfParams {
    fn default() -> Self {
        Self {
            k: 20,
            alpha: 1.0,
            max_iter: 5000,
            tol: 1e-8,
            code_sweeps: 100,
            code_tol: 1e-4,
            init: Init::default(),
            seed: 0,
            restarts: 1,
            block_rows: None,
            dead_atom_threshold: 1e-6,
        }
    }
}

macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $ty:ty) => {
        $(#[$m])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.$name = $name;
            self
        }
    };
}

impl SemiNmfParams {
    setter!(
        /// Number of concepts K (default 20).
        k: usize
    );
    setter!(
        /// Sparsity weight α on ‖C‖₁ (the paper's λ; default 1.0 as in the reference code).
        alpha: f64
    );
    setter!(
        /// Maximum outer iterations (default 5000).
        max_iter: usize
    );
    setter!(
        /// Relative objective decrease below which the fit stops (default 1e-8).
        tol: f64
    );
    setter!(
        /// Most coordinate-descent sweeps over a sample's codes per outer iteration (default 100).
        code_sweeps: usize
    );
    setter!(
        /// A sample's code step stops once a sweep moves no code by more than `code_tol ×` its largest
        /// code (default 1e-4, scikit-learn's Lasso tolerance). 0 runs all `code_sweeps` sweeps unless
        /// a sweep moves nothing at all.
        code_tol: f64
    );
    setter!(
        /// Initialisation (default: SVD, randomized).
        init: Init
    );
    setter!(
        /// Seed of every random choice (randomized SVD, sample/random init, dead-atom re-seeding).
        seed: u64
    );
    setter!(
        /// Number of independent fits (seeds `seed`, `seed+1`, …); the best final objective is kept (default 1).
        restarts: usize
    );
    setter!(
        /// Rows per block of the fused pass (default: chosen from the feature count so a block stays in cache).
        block_rows: Option<usize>
    );
    setter!(
        /// `ZᵀZ` diagonal below which an atom counts as dead and is re-seeded from a data row (default 1e-6, as scikit-learn).
        dead_atom_threshold: f64
    );

    /// Validates the parameters that do not depend on the data.
    pub fn check(self) -> Result<ValidParams> {
        let bad = |name, value: String, reason| {
            Err(Error::InvalidParam {
                name,
                value,
                reason,
            })
        };
        if self.k == 0 {
            return Err(Error::ZeroConcepts);
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return bad("alpha", self.alpha.to_string(), "must be finite and >= 0");
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return bad("tol", self.tol.to_string(), "must be finite and >= 0");
        }
        if self.max_iter == 0 {
            return bad("max_iter", "0".into(), "must be at least 1");
        }
        if self.code_sweeps == 0 {
            return bad("code_sweeps", "0".into(), "must be at least 1");
        }
        if !(self.code_tol.is_finite() && self.code_tol >= 0.0) {
            return bad(
                "code_tol",
                self.code_tol.to_string(),
                "must be finite and >= 0",
            );
        }
        if let Init::Svd(SvdMethod::Randomized { tol, .. }) = self.init {
            if !(tol.is_finite() && tol >= 0.0) {
                return bad("svd tol", tol.to_string(), "must be finite and >= 0");
            }
        }
        if self.restarts == 0 {
            return bad("restarts", "0".into(), "must be at least 1");
        }
        if self.block_rows == Some(0) {
            return bad("block_rows", "0".into(), "must be at least 1");
        }
        if !(self.dead_atom_threshold.is_finite() && self.dead_atom_threshold >= 0.0) {
            return bad(
                "dead_atom_threshold",
                self.dead_atom_threshold.to_string(),
                "must be finite and >= 0",
            );
        }
        Ok(ValidParams(self))
    }
}

/// Parameters that passed [`SemiNmfParams::check`]. Call [`ValidParams::fit`] with the data.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidParams(pub(crate) SemiNmfParams);

impl ValidParams {
    /// Number of concepts K.
    pub fn k(&self) -> usize {
        self.0.k
    }
    /// Sparsity weight α.
    pub fn alpha(&self) -> f64 {
        self.0.alpha
    }
    /// The parameters as given.
    pub fn params(&self) -> &SemiNmfParams {
        &self.0
    }
}

/// Parameters of the positive Lasso projection ([`crate::Dictionary::encode`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeParams {
    /// Sparsity weight α (default 1.0; use the α of the fit).
    pub alpha: f64,
    /// Maximum coordinate-descent sweeps per sample (default 1000, as scikit-learn's `transform_max_iter`).
    pub max_sweeps: usize,
    /// Stop a sample when the largest code change of a sweep is below `tol ×` its largest code (default 1e-6).
    pub tol: f64,
}

impl Default for EncodeParams {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            max_sweeps: 1000,
            tol: 1e-6,
        }
    }
}

impl EncodeParams {
    /// Default encode parameters with the given α.
    pub fn with_alpha(alpha: f64) -> Self {
        Self {
            alpha,
            ..Self::default()
        }
    }
}
