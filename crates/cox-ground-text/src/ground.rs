//! Grounding concept vectors in words (docs/method.md §4.1).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decode::TokenDecoder;
use crate::error::{GroundError, Result};
use crate::head::{concept_logits, top_k_tokens, LmHeadRef, RmsNorm};
use crate::pystr::normalize_word;
use crate::vocab::Vocabulary;

/// The settings of text grounding; the defaults are the reference's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundingParams {
    /// How many top-logit tokens are decoded and filtered (reference `pre_num_top_tokens`, 50).
    /// Clamped to the head's vocabulary size (the reference's `torch.topk` would raise instead).
    pub pre_num_top_tokens: usize,
    /// How many valid words are kept per concept (reference CLI `num_grounded_text_tokens`, 10).
    pub num_grounded_words: usize,
    /// Apply the model's final RMSNorm to each concept before the LM head. Off in the reference.
    pub apply_final_norm: Option<RmsNorm>,
}

impl Default for GroundingParams {
    fn default() -> Self {
        Self {
            pre_num_top_tokens: 50,
            num_grounded_words: 10,
            apply_final_norm: None,
        }
    }
}

impl GroundingParams {
    /// Checks the settings against a head of hidden size `hidden`: both counts at least 1 and a
    /// final norm (if any) that fits.
    pub fn check(&self, hidden: usize) -> Result<()> {
        if self.pre_num_top_tokens == 0 {
            return Err(GroundError::InvalidParam {
                name: "pre_num_top_tokens",
                reason: "must be at least 1".into(),
            });
        }
        if self.num_grounded_words == 0 {
            return Err(GroundError::InvalidParam {
                name: "num_grounded_words",
                reason: "must be at least 1".into(),
            });
        }
        if let Some(norm) = &self.apply_final_norm {
            norm.check(hidden)?;
        }
        Ok(())
    }
}

/// One decoded top-logit token of a concept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The token id (row of the LM head).
    pub token_id: u32,
    /// Its logit `(W_U · u)[token_id]`.
    pub logit: f32,
    /// The decoded text, lower-cased and stripped: the string `valid_word` tested.
    pub text: String,
    /// Whether `text` passed `valid_word`.
    pub valid: bool,
    /// Whether `text` is one of the concept's grounded words (valid and among the first
    /// `num_grounded_words` valid candidates).
    pub kept: bool,
}

/// The grounding of one concept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConceptWords {
    /// The concept index k.
    pub concept: usize,
    /// The grounded words T_k, best first; duplicates kept (reference `keep_unique_words=False`).
    pub words: Vec<String>,
    /// Every decoded candidate, best logit first.
    pub candidates: Vec<Candidate>,
}

/// Grounds `k` concept vectors (`concepts`: `k × B`, row-major, B = `head.hidden()`) in words:
///
/// ```text
/// logits = W_U · u_k                                   (after the final norm if asked for)
/// cand   = top pre_num_top_tokens ids by logit          (ties: lower id first)
/// words  = [decode(id).lower().strip() for id in cand]
/// T_k    = [w for w in words if valid_word(w)][:num_grounded_words]
/// ```
///
/// Concepts are processed in parallel (rayon); the result is deterministic and in concept order.
/// See [`concept_logits`] for the arithmetic, [`top_k_tokens`] for the order and
/// [`Vocabulary::is_valid_word`] for the filter.
///
/// # Errors
/// [`GroundError::ConceptShape`] when `concepts.len() != k * B`, [`GroundError::InvalidParam`] /
/// [`GroundError::NormShape`] from [`GroundingParams::check`], and the decoder's errors.
///
/// ```
/// use cox_ground_text::{ground_concepts, GroundingParams, LmHeadRef, Vocabulary};
/// // Four tokens in a 2-d space; the concept points along the first axis.
/// let table = vec!["▁Dog", "the", "dogs", "xq"];
/// let w = [3.0, 0.0, 2.0, 0.0, 1.0, 0.0, 0.0, 1.0];
/// let head = LmHeadRef::new(&w, 4, 2)?;
/// let vocab = Vocabulary::from_lists(["dog", "the", "dogs"], ["the"])?;
/// let params = GroundingParams { pre_num_top_tokens: 3, ..Default::default() };
/// let grounded = ground_concepts(head, &[1.0, 0.0], 1, &table, &vocab, &params)?;
/// assert_eq!(grounded[0].words, ["dogs"]); // "▁dog" is not a word, "the" is a stopword
/// # Ok::<(), cox_ground_text::GroundError>(())
/// ```
pub fn ground_concepts(
    head: LmHeadRef<'_>,
    concepts: &[f32],
    k: usize,
    decoder: &(impl TokenDecoder + ?Sized),
    vocab: &Vocabulary,
    params: &GroundingParams,
) -> Result<Vec<ConceptWords>> {
    params.check(head.hidden())?;
    let logits = concept_logits(head, concepts, k, params.apply_final_norm.as_ref())?;
    let v = head.vocab();
    (0..k)
        .into_par_iter()
        .map(|c| {
            select_words(
                c,
                &logits[c * v..(c + 1) * v],
                params.pre_num_top_tokens,
                params.num_grounded_words,
                decoder,
                vocab,
            )
        })
        .collect()
}

/// The decode-and-filter step shared by grounding and Rnd-Words: the top `num_candidates` tokens of
/// `logits`, decoded, normalised and filtered, keeping the first `num_words` valid ones.
pub(crate) fn select_words(
    concept: usize,
    logits: &[f32],
    num_candidates: usize,
    num_words: usize,
    decoder: &(impl TokenDecoder + ?Sized),
    vocab: &Vocabulary,
) -> Result<ConceptWords> {
    let mut words = Vec::with_capacity(num_words);
    let mut candidates = Vec::with_capacity(num_candidates.min(logits.len()));
    for token_id in top_k_tokens(logits, num_candidates) {
        let text = normalize_word(&decoder.decode_token(token_id)?);
        let valid = vocab.is_valid_word(&text);
        let kept = valid && words.len() < num_words;
        if kept {
            words.push(text.clone());
        }
        candidates.push(Candidate {
            token_id,
            logit: logits[token_id as usize],
            text,
            valid,
            kept,
        });
    }
    Ok(ConceptWords {
        concept,
        words,
        candidates,
    })
}
