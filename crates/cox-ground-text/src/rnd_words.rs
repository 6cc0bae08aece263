//! The Rnd-Words baseline (docs/method.md §3.2).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decode::TokenDecoder;
use crate::error::{GroundError, Result};
use crate::ground::{select_words, ConceptWords};
use crate::head::{concept_logits, LmHeadRef, RmsNorm};
use crate::vocab::Vocabulary;

/// The settings of the Rnd-Words baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RndWordsParams {
    /// Seeds the ChaCha8 stream the random directions are drawn from.
    pub seed: u64,
    /// How many top tokens are decoded per wanted word (reference: 10, i.e. the top 10·|T_k|).
    pub candidates_per_word: usize,
    /// Apply the model's final RMSNorm to the random directions (off in the reference; turn it on
    /// when the real concepts were grounded with it, so that the baseline stays comparable).
    pub apply_final_norm: Option<RmsNorm>,
}

impl Default for RndWordsParams {
    fn default() -> Self {
        Self {
            seed: 0,
            candidates_per_word: 10,
            apply_final_norm: None,
        }
    }
}

/// The Rnd-Words baseline: for each concept `k`, a random direction `r_k ∈ [0, 1)^B` is decoded
/// through the LM head, the top `candidates_per_word · word_counts[k]` tokens are decoded and filtered
/// with `valid_word`, and the first `word_counts[k]` valid words replace T_k (`word_counts[k]` =
/// |T_k|, the number of words the real grounding produced for concept `k`).
///
/// The directions are drawn from one ChaCha8 stream seeded with `params.seed`, concept 0's B values
/// first, each uniform in `[0, 1)` with 24 random bits (as `torch.rand` draws float32). The same seed
/// always gives the same words; the reference draws from torch's unseeded generator, so only the
/// distribution, not the words, can match it.
///
/// # Errors
/// [`GroundError::InvalidParam`] when `candidates_per_word` is 0, the final norm's errors, and the
/// decoder's errors.
///
/// ```
/// use cox_ground_text::{rnd_words, LmHeadRef, RndWordsParams, Vocabulary};
/// let table = vec!["dog", "cat", "car", "bus"];
/// let w = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0];
/// let head = LmHeadRef::new(&w, 4, 2)?;
/// let vocab = Vocabulary::from_lists(table.clone(), Vec::<String>::new())?;
/// let params = RndWordsParams { seed: 7, ..Default::default() };
/// let a = rnd_words(head, &[1, 2], &table, &vocab, &params)?;
/// assert_eq!(a[0].words.len(), 1);
/// assert_eq!(a[1].words.len(), 2);
/// assert_eq!(a, rnd_words(head, &[1, 2], &table, &vocab, &params)?);
/// # Ok::<(), cox_ground_text::GroundError>(())
/// ```
pub fn rnd_words(
    head: LmHeadRef<'_>,
    word_counts: &[usize],
    decoder: &(impl TokenDecoder + ?Sized),
    vocab: &Vocabulary,
    params: &RndWordsParams,
) -> Result<Vec<ConceptWords>> {
    if params.candidates_per_word == 0 {
        return Err(GroundError::InvalidParam {
            name: "candidates_per_word",
            reason: "must be at least 1".into(),
        });
    }
    let directions = random_directions(word_counts.len(), head.hidden(), params.seed);
    let logits = concept_logits(
        head,
        &directions,
        word_counts.len(),
        params.apply_final_norm.as_ref(),
    )?;
    let v = head.vocab();
    word_counts
        .par_iter()
        .enumerate()
        .map(|(c, &n)| {
            select_words(
                c,
                &logits[c * v..(c + 1) * v],
                n.saturating_mul(params.candidates_per_word),
                n,
                decoder,
                vocab,
            )
        })
        .collect()
}

/// The `k × hidden` random directions of [`rnd_words`], row-major: uniform in `[0, 1)`, drawn in
/// order from ChaCha8 seeded with `seed`.
pub fn random_directions(k: usize, hidden: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..k * hidden).map(|_| rng.random::<f32>()).collect()
}
