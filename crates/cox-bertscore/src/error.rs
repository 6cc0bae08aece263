//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `cox-bertscore`. Errors about files name the file.
#[derive(Debug, thiserror::Error)]
pub enum BertScoreError {
    /// The model directory does not exist or is not a directory.
    #[error("{path}: no such model directory (run `cargo xtask fetch` for all-MiniLM-L6-v2, or pass a Hugging Face BERT directory)")]
    MissingDir {
        /// The directory.
        path: PathBuf,
    },
    /// A file the model needs is absent.
    #[error("{path}: missing ({what})")]
    MissingFile {
        /// The file.
        path: PathBuf,
        /// What it is for.
        what: &'static str,
    },
    /// A file exists but is not what it should be (unreadable, not JSON, not a BERT config, not a
    /// safetensors file, a tensor missing or of the wrong shape).
    #[error("{path}: {msg}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The model is not a BERT-family encoder this crate runs.
    #[error("{path}: model_type {model_type:?} is not supported (only \"bert\")")]
    UnsupportedModel {
        /// The config file.
        path: PathBuf,
        /// Its `model_type`.
        model_type: String,
    },
    /// A parameter is out of range (layer, batch size, baseline).
    #[error("invalid BERTScore parameter: {0}")]
    InvalidParams(String),
    /// The candidate and reference lists do not pair up.
    #[error(
        "{cands} candidates but {refs} reference groups; each candidate needs a non-empty group"
    )]
    Mismatch {
        /// Number of candidates.
        cands: usize,
        /// Number of reference groups.
        refs: usize,
    },
    /// A candidate has an empty list of references.
    #[error("candidate {index} has no reference")]
    NoReference {
        /// The candidate's index.
        index: usize,
    },
    /// A baseline file in `bert_score`'s `LAYER,P,R,F` format could not be used.
    #[error("baseline {source_name}: {msg}")]
    Baseline {
        /// Where the baseline came from.
        source_name: String,
        /// What is wrong.
        msg: String,
    },
    /// The tokenizer failed on a sentence.
    #[error("tokenizing {text:?}: {msg}")]
    Tokenize {
        /// The sentence.
        text: String,
        /// The tokenizer's message.
        msg: String,
    },
    /// A tensor operation failed while encoding.
    #[error("encoder: {0}")]
    Candle(#[from] candle_core::Error),
}

/// `Result` with [`BertScoreError`].
pub type Result<T> = std::result::Result<T, BertScoreError>;
