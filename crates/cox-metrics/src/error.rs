//! The crate's one error type.

/// Everything that can go wrong in `cox-metrics`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// The activation matrix does not have `samples × k` entries.
    #[error("{op}: activations have {len} values, expected {samples} samples × {k} concepts")]
    ShapeMismatch {
        /// The metric.
        op: &'static str,
        /// The activation slice length.
        len: usize,
        /// Samples, from the label list.
        samples: usize,
        /// Concepts.
        k: usize,
    },
    /// `k` is zero.
    #[error("{op}: no concepts (k = 0)")]
    NoConcepts {
        /// The metric.
        op: &'static str,
    },
    /// A score is NaN or infinite, so it cannot be ranked.
    #[error("{op}: non-finite score at sample {sample}, concept {concept}")]
    NonFinite {
        /// The metric.
        op: &'static str,
        /// The sample.
        sample: usize,
        /// The concept.
        concept: usize,
    },
    /// No factor value has both a positive and a negative sample, so no AUC is defined.
    #[error("{op}: no factor value has both positive and negative samples ({samples} samples)")]
    NoEvaluableFactor {
        /// The metric.
        op: &'static str,
        /// Samples.
        samples: usize,
    },
}

/// `Result` with [`MetricsError`].
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;
