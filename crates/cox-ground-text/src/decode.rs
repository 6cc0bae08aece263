//! Turning a token id back into text.

use crate::error::{GroundError, Result};

/// Decodes one token id to text, as `tokenizer.decode([id], skip_special_tokens=True)` does.
///
/// Implementations must be thread-safe: grounding decodes concepts in parallel.
pub trait TokenDecoder: Sync {
    /// The text of token `id` (before the lower-casing and stripping grounding applies). An id the
    /// decoder does not know should decode to `""` when that is what the model's own tokenizer does
    /// (HF tokenizers silently skip unknown ids), or fail with [`GroundError::TokenOutOfVocab`].
    fn decode_token(&self, id: u32) -> Result<String>;
}

/// A plain id → text table: entry `i` is token `i`'s text. Special tokens are not skipped.
///
/// # Errors
/// [`GroundError::TokenOutOfVocab`] for an id past the end of the table.
///
/// ```
/// use cox_ground_text::TokenDecoder;
/// let table = vec!["dog".to_string(), "cat".to_string()];
/// assert_eq!(table.decode_token(1)?, "cat");
/// assert!(table.decode_token(2).is_err());
/// # Ok::<(), cox_ground_text::GroundError>(())
/// ```
impl<S: AsRef<str> + Sync> TokenDecoder for [S] {
    fn decode_token(&self, id: u32) -> Result<String> {
        self.get(id as usize)
            .map(|s| s.as_ref().to_string())
            .ok_or(GroundError::TokenOutOfVocab {
                id,
                vocab_size: self.len(),
            })
    }
}

impl<S: AsRef<str> + Sync> TokenDecoder for Vec<S> {
    fn decode_token(&self, id: u32) -> Result<String> {
        self.as_slice().decode_token(id)
    }
}

/// `tokenizer.decode(&[id], true)`: special tokens decode to `""`, and so do ids the tokenizer does
/// not know (tokenizers skips them, as the Python reference does; an LM head is often padded past the
/// tokenizer's vocabulary, e.g. 32,064 rows for LLaVA-1.5's 32,002 tokens). With a SentencePiece or
/// byte-level BPE decoder, a single piece such as "▁dog" decodes to "dog" or " dog"; grounding strips it.
#[cfg(feature = "tokenizers")]
impl TokenDecoder for tokenizers::Tokenizer {
    fn decode_token(&self, id: u32) -> Result<String> {
        self.decode(&[id], true).map_err(|e| GroundError::Decode {
            id,
            message: e.to_string(),
        })
    }
}
