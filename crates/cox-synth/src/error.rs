//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `cox-synth`.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A [`SynthConfig`](crate::SynthConfig) setting is out of range.
    #[error("invalid synth config: {field} = {value} ({expected})")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Its value, printed.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A word that is not one of the shape nouns was asked for as a token of interest.
    #[error("unknown noun {0:?}: expected one of circle, square, triangle, star, cross, diamond")]
    UnknownNoun(String),
    /// The same scene id occurs twice in a set of scenes to write.
    #[error("duplicate scene id {0:?}")]
    DuplicateId(String),
    /// A file could not be read or written.
    #[error("io error on {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An image could not be encoded.
    #[error("png encoding of {path}: {source}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The underlying error.
        source: image::ImageError,
    },
    /// A jsonl line could not be (de)serialised.
    #[error("json error in {path} line {line}: {source}")]
    Json {
        /// The jsonl file.
        path: PathBuf,
        /// The 1-based line number (0 when writing).
        line: usize,
        /// The underlying error.
        source: serde_json::Error,
    },
}

/// `Result` with [`SynthError`].
pub type Result<T, E = SynthError> = std::result::Result<T, E>;
