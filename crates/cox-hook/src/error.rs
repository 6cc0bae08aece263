//! The crate's error type.

use crate::token::TokenizerKind;

/// Everything that can go wrong while choosing the token of interest and its vector.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A `--layer` value that cannot be parsed.
    #[error("invalid layer {spec:?}: {msg}")]
    InvalidLayer {
        /// The value as given.
        spec: String,
        /// What is wrong.
        msg: String,
    },
    /// A block index past the decoder's depth.
    #[error("layer {layer} does not exist: the decoder has {num_blocks} blocks (0..={})", num_blocks.saturating_sub(1))]
    LayerOutOfRange {
        /// The requested block.
        layer: usize,
        /// The decoder's number of blocks.
        num_blocks: usize,
    },
    /// The token of interest is not one word.
    #[error("invalid token of interest {token:?}: {msg}")]
    InvalidToken {
        /// The token as given.
        token: String,
        /// What is wrong.
        msg: String,
    },
    /// No spelling of the token of interest starts with a real token of the vocabulary.
    #[error(
        "token of interest {token:?} is not representable as the start of a single token by this \
         {kind:?} tokenizer ({detail}); choose a word of the vocabulary"
    )]
    NotRepresentable {
        /// The token as given.
        token: String,
        /// The tokenizer kind.
        kind: TokenizerKind,
        /// What each variant encoded to.
        detail: String,
    },
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Captured residuals whose shapes disagree with the token ids.
    #[error("residual shape: {0}")]
    Shape(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, HookError>;
