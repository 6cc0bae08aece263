//! Errors for data-dependent failures of the solver.

/// What can go wrong when fitting or encoding. Every variant names what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The data buffer does not hold `n_samples × n_features` values.
    #[error("data has {len} values, but {n_samples} samples × {n_features} features = {expected} were declared")]
    ShapeMismatch {
        len: usize,
        n_samples: usize,
        n_features: usize,
        expected: usize,
    },
    /// There are no samples or no features.
    #[error("the data is empty ({n_samples} samples × {n_features} features): extract some samples first")]
    Empty { n_samples: usize, n_features: usize },
    /// A value is NaN or infinite.
    #[error(
        "sample {sample}, feature {feature} is {value} (not finite): remove or repair that sample"
    )]
    NonFinite {
        sample: usize,
        feature: usize,
        value: f64,
    },
    /// Every value of the data is zero (a rank-0 matrix): there is nothing to decompose.
    #[error("every value of the {n_samples} × {n_features} data is zero (rank 0), so there is no concept to learn: check that the activations were captured (an all-zero matrix usually means nothing was recorded)")]
    ZeroData { n_samples: usize, n_features: usize },
    /// The number of concepts is zero.
    #[error("the number of concepts K must be at least 1")]
    ZeroConcepts,
    /// More concepts than samples were asked for.
    #[error("K = {k} concepts requested but only {n_samples} samples are available: lower K to at most {n_samples} or extract more samples")]
    TooManyConcepts { k: usize, n_samples: usize },
    /// A hyper-parameter is out of its range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The dictionary and the data disagree on the number of features.
    #[error("the dictionary has {dict} features but the data has {data}: use the dictionary learnt from the same model and layer")]
    FeatureMismatch { dict: usize, data: usize },
    /// The objective became NaN or infinite (overflow in the data scale, usually).
    #[error("the objective became non-finite at iteration {iteration}: rescale the data (values too large for the precision)")]
    NonFiniteObjective { iteration: usize },
    /// The SVD used for initialisation failed.
    #[error("the SVD used for initialisation did not converge")]
    SvdFailed,
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
