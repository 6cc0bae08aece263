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
    /// An input matrix (data, atoms, codes, mean) does not have `rows × cols` entries.
    #[error("{op}: {input} has {len} values, expected {rows} × {cols}")]
    InputShape {
        /// The metric.
        op: &'static str,
        /// Which input, e.g. `data` or `dictionary 1`.
        input: String,
        /// The slice length.
        len: usize,
        /// Expected rows.
        rows: usize,
        /// Expected columns.
        cols: usize,
    },
    /// An input matrix holds a NaN or an infinity.
    #[error("{op}: non-finite value in {input} at row {row}, column {column}")]
    NonFiniteInput {
        /// The metric.
        op: &'static str,
        /// Which input, e.g. `data` or `dictionary 1`.
        input: String,
        /// The row (sample, or atom).
        row: usize,
        /// The column (feature).
        column: usize,
    },
    /// Fewer items than the metric needs (samples, features, dictionaries).
    #[error("{op}: needs at least {needed} {what}, got {got}")]
    TooFew {
        /// The metric.
        op: &'static str,
        /// What is counted, e.g. `samples`.
        what: &'static str,
        /// The minimum.
        needed: usize,
        /// What was passed.
        got: usize,
    },
    /// A numeric setting is out of range.
    #[error("{op}: {name} = {value}: expected {expected}")]
    InvalidParameter {
        /// The metric.
        op: &'static str,
        /// The setting.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// What would have been accepted.
        expected: &'static str,
    },
}

/// `Result` with [`MetricsError`].
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;
