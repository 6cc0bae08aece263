//! Errors of the decompositions.

/// What can go wrong when building, fitting or applying a decomposition. Data problems (empty data,
/// a NaN/Inf named by sample and feature, `K = 0`, `K > M`, a feature-count mismatch) are
/// [`cox_snmf::Error`]s, wrapped in [`Error::Data`], so every crate reports them the same way.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A data or shape problem, as the Semi-NMF solver reports it.
    #[error(transparent)]
    Data(#[from] cox_snmf::Error),
    /// A hyper-parameter is out of range, or set for a method that does not use it.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        name: &'static str,
        value: String,
        reason: String,
    },
    /// An unknown method name.
    #[error("unknown decomposition method {name:?}: expected one of snmf, pca, kmeans, simple")]
    UnknownMethod { name: String },
    /// PCA asks for more components than `min(M, B)`.
    #[error("PCA with K = {k} components needs K <= min(samples, features) = min({n_samples}, {n_features}): lower K")]
    TooManyComponents {
        k: usize,
        n_samples: usize,
        n_features: usize,
    },
    /// A [`crate::ConceptDictionary`] whose fields disagree (for instance one read back from a file).
    #[error("inconsistent {method} dictionary: {reason}")]
    InvalidDictionary {
        method: crate::Method,
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Checks what every method needs of the data: not empty, `1 <= K <= M`, finite values.
pub(crate) fn check_data(x: cox_snmf::SamplesRef<'_, f32>, k: usize) -> Result<()> {
    let (m, b) = (x.n_samples(), x.n_features());
    if m == 0 || b == 0 {
        return Err(cox_snmf::Error::Empty {
            n_samples: m,
            n_features: b,
        }
        .into());
    }
    if k == 0 {
        return Err(cox_snmf::Error::ZeroConcepts.into());
    }
    if k > m {
        return Err(cox_snmf::Error::TooManyConcepts { k, n_samples: m }.into());
    }
    x.check_finite()?;
    // Every method would return arbitrary concepts for an all-zero (rank-0) matrix.
    if x.squared_norm() == 0.0 {
        return Err(cox_snmf::Error::ZeroData {
            n_samples: m,
            n_features: b,
        }
        .into());
    }
    Ok(())
}
