//! BERTScore (Zhang et al. 2020) exactly as the `bert_score` package computes it, for scoring grounded
//! words against ground-truth captions (docs/method.md §5.2). The crate owns the encoder (a BERT-family
//! model from a Hugging Face directory, run through `candle_transformers::models::bert` truncated to the
//! chosen layer, as `bert_score` truncates it), the tokenisation, the idf weights, the greedy matching
//! ([`greedy_f1`], a pure function), the reduction over several references and the baseline rescaling.
//! It reads model files from the directory it is given and nothing else: it never downloads, never
//! chooses which words or captions to score (the caller passes them), and knows nothing of concepts,
//! datasets or the CLI.
//!
//! Every [`BertScore`] carries the model's name, the layer and the baseline, so a report says which
//! BERTScore it is (here all-MiniLM-L6-v2, from `cargo xtask fetch`; not the paper's roberta-large).
//!
//! # Usage
//!
//! ```no_run
//! use cox_bertscore::{candidate_from_words, BertScoreParams, BertScorer, DEFAULT_WORD_SEPARATOR};
//! let scorer = BertScorer::load(".cache/models/all-minilm-l6-v2", &BertScoreParams::default())?;
//! let cand = candidate_from_words(&["dog", "frisbee", "grass"], DEFAULT_WORD_SEPARATOR);
//! let captions = vec!["A dog catches a frisbee.", "A brown dog on the lawn."];
//! let s = &scorer.score(&[cand.as_str()], &[captions])?[0];
//! println!("{} layer {}: P {:.3} R {:.3} F1 {:.3}", s.model, s.layer, s.p, s.r, s.f1);
//! # Ok::<(), cox_bertscore::BertScoreError>(())
//! ```
//!
//! `examples/score.rs` does the same from the command line.
//!
//! # Choices, and where they follow `bert_score`
//!
//! - **Model and layer.** Any `model_type: "bert"` directory (`config.json`, `model.safetensors`,
//!   `tokenizer.json` or a `vocab.txt` from which a WordPiece tokenizer is built). The layer is
//!   `bert_score`'s `num_layers` (0 = embeddings); the default is the last layer, 6 for
//!   all-MiniLM-L6-v2, which `bert_score`'s `model2layers` does not list (pass `num_layers=6` there).
//! - **Tokens.** Sentences are stripped, `[CLS]`/`[SEP]` added, truncated at `model_max_length`
//!   (the padding and 128-token truncation in MiniLM's `tokenizer.json` are switched off). `[CLS]` and
//!   `[SEP]` weigh 0 without idf but stay in the similarity matrix as matching targets, as in
//!   `bert_score` (removing them outright is a different score).
//! - **Scores.** Greedy max cosine ([`greedy_f1`]); with several references, P, R and F1 are each the
//!   maximum over the references (`bert_score`'s `max(dim=0)`); idf counts the call's references
//!   (`get_idf_dict`); an empty candidate or reference scores 0. A best similarity below 0 counts as
//!   0, as `bert_score`'s padding mask makes it for every sentence but the longest of its batch (so
//!   scores here never depend on the batch; see [`greedy_f1`]).
//! - **Rescaling** `(s − b)/(1 − b)` with a [`Baseline`] the caller gives, or read from a
//!   `bert_score` baseline file with [`Baseline::from_tsv`]. `bert_score` 0.3.12 ships no baseline for
//!   all-MiniLM-L6-v2, so its scores are raw unless the user supplies one; the source is recorded.
//! - **Candidate string for grounded words.** docs/method.md §5.2 does not say how the paper turned a
//!   concept's words into BERTScore's candidate; [`candidate_from_words`] joins them with a separator,
//!   [`DEFAULT_WORD_SEPARATOR`] = `", "` as the reference does for CLIPScore (§4.1), without its prefix.
//!
//! ```
//! use cox_bertscore::greedy_f1;
//! // Two candidate tokens and two reference tokens in 2-D; weights 1 (no idf).
//! let cand = [1.0, 0.0, 0.0, 1.0];
//! let reference = [1.0, 0.0, 1.0, 1.0];
//! let s = greedy_f1(&cand, &[1.0, 1.0], &reference, &[1.0, 1.0], 2);
//! let c = std::f64::consts::FRAC_1_SQRT_2; // cos 45°
//! assert!((s.p - (1.0 + c) / 2.0).abs() < 1e-12);
//! assert!((s.r - (1.0 + c) / 2.0).abs() < 1e-12);
//! ```

mod error;
pub mod greedy;
pub mod model;
pub mod params;
pub mod scorer;

pub use error::{BertScoreError, Result};
pub use greedy::{greedy_f1, rescale, Prf};
pub use model::{BertEncoder, TokenEmbeddings};
pub use params::{
    candidate_from_words, Baseline, BertScoreParams, IdfWeights, DEFAULT_WORD_SEPARATOR,
};
pub use scorer::{BertScore, BertScorer};
