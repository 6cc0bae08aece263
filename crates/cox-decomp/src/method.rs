//! The decomposition methods by name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A way to learn a concept dictionary: the paper's Semi-NMF and its three baselines
/// (`docs/method.md` §3, "Baselines in the same code path").
///
/// Names are the reference's `decomposition_method` strings: `snmf`, `pca`, `kmeans`, `simple`
/// (`FromStr` also accepts `nndl`, `semi-nmf` and `seminmf`, and any letter case).
///
/// ```
/// use cox_decomp::Method;
/// let m: Method = "KMeans".parse().unwrap();
/// assert_eq!(m, Method::KMeans);
/// assert_eq!(Method::SemiNmf.to_string(), "snmf");
/// assert_eq!(Method::SemiNmf.label(), "Semi-NMF");
/// assert!("ica".parse::<Method>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Method {
    /// Semi-NMF with sparse non-negative activations (the paper's method, `cox-snmf`).
    #[serde(rename = "snmf", alias = "nndl")]
    SemiNmf,
    /// Centred PCA: concepts are the principal axes, activations the signed scores.
    #[serde(rename = "pca")]
    Pca,
    /// K-Means: concepts are the centroids, activations `1 / (1 + distance)`.
    #[serde(rename = "kmeans")]
    KMeans,
    /// The K training samples of largest norm as concepts, activations `1 / (1 + distance)`.
    #[serde(rename = "simple")]
    Simple,
}

impl Method {
    /// All methods, in the paper's table order.
    pub const ALL: [Method; 4] = [Method::Simple, Method::Pca, Method::KMeans, Method::SemiNmf];

    /// The canonical lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Method::SemiNmf => "snmf",
            Method::Pca => "pca",
            Method::KMeans => "kmeans",
            Method::Simple => "simple",
        }
    }

    /// The name the paper's tables and the report use: `Semi-NMF`, `PCA`, `K-Means`, `Simple`.
    pub fn label(self) -> &'static str {
        match self {
            Method::SemiNmf => "Semi-NMF",
            Method::Pca => "PCA",
            Method::KMeans => "K-Means",
            Method::Simple => "Simple",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "snmf" | "nndl" | "semi-nmf" | "seminmf" => Ok(Method::SemiNmf),
            "pca" => Ok(Method::Pca),
            "kmeans" | "k-means" => Ok(Method::KMeans),
            "simple" => Ok(Method::Simple),
            _ => Err(Error::UnknownMethod { name: s.into() }),
        }
    }
}
