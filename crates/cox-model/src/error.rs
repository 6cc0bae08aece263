//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a LLaVA checkpoint.
///
/// Variants carry the file, tensor name and shapes involved so that a message alone tells the
/// user what to fix. Data-dependent problems (a bad checkpoint, a corrupt image, a prompt that is
/// too long) are always reported through this type, never by a panic.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written. The OS error is part of the message and not also
    /// exposed as the error's source, so `{:#}` chains print it once.
    #[error("I/O error on {path}: {cause}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },

    /// A JSON file could not be parsed or does not have the expected structure.
    #[error("cannot parse {path}: {msg}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },

    /// The configuration is inconsistent or asks for something this crate does not support.
    #[error("invalid configuration{}: {msg}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Config {
        /// The configuration file, when known.
        path: Option<PathBuf>,
        /// What is wrong.
        msg: String,
    },

    /// `config.json` names a model type the loader does not support.
    #[error("unsupported model_type {model_type:?} in {path} (supported: {supported})")]
    UnsupportedModelType {
        /// The `model_type` found.
        model_type: String,
        /// The configuration file.
        path: PathBuf,
        /// The `model_type`s the loader accepts, comma-separated.
        supported: String,
    },

    /// A model directory lacks a required file.
    #[error("missing file {path}{}", if hint.is_empty() { String::new() } else { format!(": {hint}") })]
    MissingFile {
        /// The file that was expected.
        path: PathBuf,
        /// How to obtain it.
        hint: String,
    },

    /// A model id could not be resolved to a local directory.
    #[error("model {model_id:?} not found locally: {hint}")]
    ModelNotFound {
        /// The model id or path given.
        model_id: String,
        /// Where it was looked for and how to download it.
        hint: String,
    },

    /// A required tensor is absent from the checkpoint.
    #[error("tensor {name:?} (expected shape {expected:?}) is missing from {files}")]
    MissingTensor {
        /// The full tensor name.
        name: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The safetensors files searched (comma separated).
        files: String,
    },

    /// A tensor exists but its shape disagrees with the configuration.
    #[error("tensor {name:?} in {file} has shape {found:?}, but config.json implies {expected:?}")]
    TensorShape {
        /// The full tensor name.
        name: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape stored in the file.
        found: Vec<usize>,
        /// The file holding the tensor.
        file: PathBuf,
    },

    /// A tensor is stored in a dtype this crate cannot load.
    #[error("tensor {name:?} in {file} has unsupported dtype {dtype}")]
    TensorDType {
        /// The full tensor name.
        name: String,
        /// The stored dtype.
        dtype: String,
        /// The file holding the tensor.
        file: PathBuf,
    },

    /// The tensor names do not match any supported LLaVA layout.
    #[error("unrecognised tensor layout in {files}: {msg}")]
    UnknownLayout {
        /// The safetensors files inspected.
        files: String,
        /// What was found instead.
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

    /// A GGUF file is unreadable or describes something that cannot be converted.
    #[error("GGUF file {path}: {msg}")]
    Gguf {
        /// The GGUF file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },

    /// An image could not be decoded or is unacceptable.
    #[error("bad image {path}: {msg}")]
    Image {
        /// The image file (or `<memory>`).
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },

    /// The tokenizer failed or lacks a required token.
    #[error("tokenizer error{}: {msg}", path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Tokenizer {
        /// The tokenizer file, when known.
        path: Option<PathBuf>,
        /// What went wrong.
        msg: String,
    },

    /// The input does not fit the model (too long, wrong number of image tokens, bad layer index).
    #[error("invalid input: {0}")]
    Input(String),

    /// An error from candle while computing.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }

    pub(crate) fn config(path: Option<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Config {
            path,
            msg: msg.into(),
        }
    }
}
