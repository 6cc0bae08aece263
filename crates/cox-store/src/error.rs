//! Errors, each naming the file and what to do.

use std::path::PathBuf;

/// What can go wrong reading or writing coxlmm files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not exist or cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not a (complete) safetensors file.
    #[error("{path} is not a valid safetensors file ({reason}): it is truncated or of another format; re-create it")]
    NotSafetensors { path: PathBuf, reason: String },
    /// The expected tensor is missing.
    #[error("{path} has no tensor named {name:?} (it has: {available}); pass the right file or name the tensor to read")]
    MissingTensor {
        path: PathBuf,
        name: String,
        available: String,
    },
    /// A tensor has the wrong rank, shape or dtype.
    #[error("{path}: tensor {name:?} {problem}")]
    BadTensor {
        path: PathBuf,
        name: String,
        problem: String,
    },
    /// The JSON sidecar is unreadable or inconsistent with the tensors.
    #[error("{path}: {problem}")]
    BadSidecar { path: PathBuf, problem: String },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
