//! The hook: which token of a generated caption CoX-LMM explains, and which residual-stream vector
//! it keeps for it.
//!
//! `cox-hook` owns the pure logic between a generation and the stored matrix: parsing `--layer`
//! specs into [`cox_model::LayerSel`] ([`parse_layers`]); building ids(t), the token ids that stand
//! for the token of interest, per tokenizer kind (SentencePiece `▁dog`, byte-level BPE `Ġdog`,
//! word-level `dog`), never accepting a lone boundary token ([`TokenOfInterest`]); the
//! ground-truth filter ([`GtFilter`]); and [`select`]: the first *generated* token in ids(t) and
//! the row of the captured residuals that predicts it (`prompt_len + j - 1`, docs/method.md §2),
//! or the reason the sample is skipped.
//!
//! It must never: touch files, run the model, decide which samples are read, or write the store —
//! it takes token ids, captions and tensors, and returns vectors.
//!
//! ```
//! use cox_hook::{select, GtFilter, SelectOptions, TokenOfInterest};
//! use candle_core::{Device, Tensor};
//! use tokenizers::models::wordlevel::WordLevel;
//! use tokenizers::pre_tokenizers::whitespace::Whitespace;
//! use tokenizers::Tokenizer;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let vocab = [("<unk>", 0), ("a", 1), ("dog", 2), ("runs", 3)];
//! let model = WordLevel::builder()
//!     .vocab(vocab.iter().map(|(w, i)| (w.to_string(), *i)).collect())
//!     .unk_token("<unk>".into())
//!     .build()?;
//! let mut tok = Tokenizer::new(model);
//! tok.with_pre_tokenizer(Some(Whitespace {}));
//! let toi = TokenOfInterest::new(&tok, "dog")?;
//!
//! // A 3-token prompt, then "a dog runs": residuals cover 3 + 3 - 1 rows.
//! let residuals = Tensor::arange(0f32, 5.0, &Device::Cpu)?.reshape((5, 1))?;
//! let sel = select(&toi, &["a dog".into()], 3, &[1, 2, 3], &[residuals], &SelectOptions::default())?;
//! let rec = sel.kept.unwrap();
//! assert_eq!((rec.token_index, rec.position), (1, 3)); // row 3 predicts "dog" at position 4
//! assert_eq!(rec.vectors, vec![vec![3.0]]);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod layer;
pub mod select;
pub mod token;

pub use error::{HookError, Result};
pub use layer::{check_layers, layer_name, parse_layer, parse_layers};
pub use select::{
    record_position, select, select_generation, GtFilter, PositionRule, Record, SelectOptions,
    Selection, SkipReason,
};
pub use token::{is_boundary_only, TokenOfInterest, TokenizerKind};
