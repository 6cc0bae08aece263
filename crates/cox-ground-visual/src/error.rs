//! The crate's one error type.

/// Everything that can go wrong in `cox-ground-visual`.
///
/// A missing or undecodable *input* image is not an error: the writer records it as an
/// [`ImageProblem`](crate::ImageProblem) and carries on. Errors are for data that cannot be ranked and
/// for outputs that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum VisualError {
    /// An activation is NaN, so the samples of its concept cannot be ranked.
    #[error("most_activating: activation of sample {sample}, concept {concept} is NaN; the activations are corrupt (re-run the decomposition)")]
    NaN {
        /// The sample (row).
        sample: usize,
        /// The concept (column).
        concept: usize,
    },
    /// A PNG could not be encoded.
    #[error("encoding {what} as PNG: {source}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// An output file could not be written (the store's error names the file).
    #[error(transparent)]
    Write(#[from] cox_store::Error),
    /// The grounding could not be serialised to JSON.
    #[error("serialising the visual grounding: {0}")]
    Json(#[from] serde_json::Error),
}

/// `Result` with [`VisualError`].
pub type Result<T, E = VisualError> = std::result::Result<T, E>;
