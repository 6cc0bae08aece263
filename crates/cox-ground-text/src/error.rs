use std::path::PathBuf;

/// Everything that can go wrong while grounding concepts in text.
#[derive(Debug, thiserror::Error)]
pub enum GroundError {
    /// The LM head slice does not hold `vocab × hidden` values, or one of the two is zero.
    #[error(
        "LM head has {len} values but was described as [{vocab}, {hidden}] (V × B, non-empty, row-major)"
    )]
    HeadShape {
        len: usize,
        vocab: usize,
        hidden: usize,
    },
    /// The concept matrix does not hold `k × hidden` values.
    #[error(
        "concepts do not match the LM head: head is [{vocab}, {hidden}] (V × B) but the concepts hold \
         {len} values for k = {k} (expected [{k}, {hidden}] = {} values)",
        k * hidden
    )]
    ConceptShape {
        vocab: usize,
        hidden: usize,
        k: usize,
        len: usize,
    },
    /// The final-norm weight vector's length is not the LM head's hidden size.
    #[error("final norm weight has {len} values but the LM head's hidden size is {hidden}")]
    NormShape { len: usize, hidden: usize },
    /// A grounding parameter is out of range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    /// A decoder was asked for a token id it does not have.
    #[error("token id {id} is outside the decoder's vocabulary of {vocab_size} tokens")]
    TokenOutOfVocab { id: u32, vocab_size: usize },
    /// A decoder failed on a token id.
    #[error("decoding token id {id} failed: {message}")]
    Decode { id: u32, message: String },
    /// A word list passed to a [`Vocabulary`](crate::Vocabulary) is empty.
    #[error("the {which} list is empty")]
    EmptyList { which: &'static str },
    /// A word-list file could not be read.
    #[error("cannot read the {which} list {}: {source}", path.display())]
    ReadList {
        which: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, GroundError>;
