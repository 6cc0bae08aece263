//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading CLIP, tokenizing or scoring.
///
/// Variants name the file, tensor or input involved so that the message alone says what to fix.
/// Data-dependent problems (a missing tensor, a foreign checkpoint, a mismatched batch) are
/// reported through this type, never by a panic.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// A file could not be read.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A CLIP directory lacks a required file.
    #[error("missing file {path}: {hint}")]
    MissingFile {
        /// The file that was expected.
        path: PathBuf,
        /// How to obtain it.
        hint: String,
    },

    /// `config.json` cannot be parsed or describes something this crate does not support.
    #[error("invalid CLIP config {path}: {msg}")]
    Config {
        /// The configuration file (or `<memory>`).
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },

    /// The safetensors file is not an HF `CLIPModel` checkpoint at all.
    #[error("{path} is not a Hugging Face CLIPModel checkpoint: {msg}")]
    ForeignCheckpoint {
        /// The safetensors file.
        path: PathBuf,
        /// What was found instead.
        msg: String,
    },

    /// A tensor the configuration needs is absent.
    #[error("tensor {name:?} (expected shape {expected:?}) is missing from {path}")]
    MissingTensor {
        /// The full tensor name.
        name: String,
        /// The shape `config.json` implies.
        expected: Vec<usize>,
        /// The safetensors file.
        path: PathBuf,
    },

    /// A tensor has the wrong shape or an unusable dtype.
    #[error("tensor {name:?} in {path}: {msg}")]
    BadTensor {
        /// The full tensor name.
        name: String,
        /// The safetensors file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },

    /// A safetensors file is corrupt or unreadable.
    #[error("cannot read safetensors file {path}: {msg}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },

    /// The tokenizer files are malformed, or tokenization failed.
    #[error("tokenizer error ({path}): {msg}")]
    Tokenizer {
        /// The vocabulary or `tokenizer.json` file (or `<memory>`).
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },

    /// An image could not be decoded or preprocessed.
    #[error("image error: {0}")]
    Image(#[from] cox_model::Error),

    /// Inputs that do not fit together (lengths, empty batches, out-of-range parameters).
    #[error("invalid input: {0}")]
    Input(String),

    /// An error from candle while computing.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, ClipError>;

impl ClipError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ClipError::Io {
            path: path.into(),
            source,
        }
    }
}
