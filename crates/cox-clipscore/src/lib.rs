//! CLIPScore for CoX-LMM concepts (paper Table 1 "CS top-1/top-3" and the multimodal grounding
//! score of Fig. 3; docs/method.md §5.1 and §5.4).
//!
//! `cox-clipscore` owns everything CLIPScore needs: loading an HF `CLIPModel` directory
//! (`config.json` + `model.safetensors`, e.g. `openai/clip-vit-base-patch32`) on candle with
//! every tensor checked by name, shape and dtype before use ([`ClipModel`]); OpenAI's CLIP BPE
//! tokenizer over `bpe_simple_vocab_16e6.txt.gz` with `clip.tokenize(..., truncate=True)`
//! semantics, or an HF `tokenizer.json` ([`ClipTokenizer`]); OpenAI CLIP's image preprocessing
//! with a port of Pillow's bicubic resampler ([`preprocess`]); the score
//! `CS = w · max(cos(E_img, E_txt), 0)` on the text `prefix + ", ".join(words) + "."`
//! ([`ClipScorer`]); and the evaluation protocols as pure functions ([`top_n_clipscore`],
//! [`grounding_scores`]).
//!
//! **No real CLIP weights are bundled or downloaded:** the tests run on tiny random checkpoints written by [`testing`], with candle-transformers' own
//! `clip` model as the numerical oracle, so CLIPScore numbers are produced only when a user
//! passes a real CLIP directory (`--clip DIR`).
//!
//! It must never: decide which images, concepts or words are scored (callers pass activations,
//! MAS lists and grounded words in), download anything, or parse command lines. Its only IO is
//! reading the CLIP directory, the BPE file and image files the caller names.
//!
//! ```
//! use cox_clipscore::testing::{tiny_config, write_tiny_clip};
//! use cox_clipscore::{ClipBpe, ClipModel, ClipParams, ClipScorer, ClipTokenizer};
//!
//! # fn main() -> cox_clipscore::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! write_tiny_clip(dir.path(), &tiny_config(), 0)?;
//! let model = ClipModel::load(dir.path(), candle_core::DType::F32, &candle_core::Device::Cpu)?;
//! // Real use: ClipScorer::load(dir, &ClipParams { bpe_path: Some(BPE), ..Default::default() }).
//! let toy = ClipBpe::from_merges_text_lenient("#version: 0.2\nd o\ndo g</w>\n")?;
//! let scorer = ClipScorer::new(model, ClipTokenizer::from(toy), ClipParams::default())?;
//! let img = image::DynamicImage::new_rgb8(40, 30);
//! let cs = scorer.clip_score(&img, &["dog".to_string()])?;
//! assert!((0.0..=2.5).contains(&cs));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod config;
mod error;
pub mod model;
pub mod preprocess;
pub mod score;
pub mod scorer;
pub mod testing;
pub mod tokenizer;

pub use config::{ClipConfig, TextConfig};
pub use error::{ClipError, Result};
pub use model::{l2_normalize, ClipModel};
pub use score::{
    clip_score_from_embeddings, grounding_scores, rank_concepts, text_for_words, top_n_clipscore,
    MeanStd, TopNReport,
};
pub use scorer::{load_image, ClipParams, ClipScorer, BPE_FILE};
pub use tokenizer::{ClipBpe, ClipTokenizer, CONTEXT_LENGTH, EOT, SOT};
