//! Text grounding of CoX-LMM concepts (docs/method.md §4.1): a concept direction `u_k ∈ R^B` is decoded
//! through the LM head `W_U` (optionally after the model's final RMSNorm), its top
//! `pre_num_top_tokens` tokens are decoded, lower-cased, stripped and filtered with the reference's
//! `valid_word` (an English dictionary word of more than two characters that is not a stopword, or
//! anything Python's `float()` parses), and the first `num_grounded_words` survivors, duplicates
//! included, are the concept's words T_k. The crate also owns the Rnd-Words baseline (§4.5), the
//! bundled word lists (web2 and the gist stopwords, compiled in) and the [`TokenDecoder`] seam with
//! an implementation for `tokenizers::Tokenizer` (feature `tokenizers`, on by default). Everything is
//! pure computation over slices: the crate never does IO except in the explicit list loader
//! [`io`], and it never knows about models, checkpoints, paths or the CLI — callers hand it the LM
//! head as a plain `&[f32]` and a decoder.
//!
//! ```
//! use cox_ground_text::{ground_concepts, GroundingParams, LmHeadRef, Vocabulary};
//! // Five tokens in a 3-d space; concept 0 points at "dog" and "puppy", concept 1 at "car".
//! let table = vec!["dog", "puppy", "car", "the", "ab"];
//! #[rustfmt::skip]
//! let w = [
//!     1.0, 0.0, 0.0, // dog
//!     0.9, 0.1, 0.0, // puppy
//!     0.0, 1.0, 0.0, // car
//!     0.5, 0.5, 0.0, // the
//!     0.0, 0.0, 1.0, // ab
//! ];
//! let head = LmHeadRef::new(&w, 5, 3)?;
//! let concepts = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
//! let params = GroundingParams { pre_num_top_tokens: 3, ..Default::default() };
//! let grounded = ground_concepts(head, &concepts, 2, &table, Vocabulary::bundled(), &params)?;
//! assert_eq!(grounded[0].words, ["dog", "puppy"]); // "the" is a stopword
//! assert_eq!(grounded[1].words, ["car", "puppy"]);
//! # Ok::<(), cox_ground_text::GroundError>(())
//! ```

mod decode;
mod error;
mod ground;
mod head;
pub mod io;
mod pystr;
mod rnd_words;
mod vocab;

pub use decode::TokenDecoder;
pub use error::{GroundError, Result};
pub use ground::{ground_concepts, Candidate, ConceptWords, GroundingParams};
pub use head::{concept_logits, top_k_tokens, LmHeadRef, RmsNorm};
pub use pystr::{is_number, normalize_word, py_isspace};
pub use rnd_words::{random_directions, rnd_words, RndWordsParams};
pub use vocab::{parse_stopwords, parse_word_list, Vocabulary};
