//! The grounding step: each concept's words through the model's LM head, and the Rnd-Words
//! baseline (`docs/method.md` §4.1).

use anyhow::Result;
use cox_decomp::Method;
use cox_ground_text::{
    ground_concepts, rnd_words, GroundingParams, LmHeadRef, RndWordsParams, Vocabulary,
};

use crate::{Grounding, Model};

/// How many words to keep.
#[derive(Clone, Copy, Debug)]
pub struct GroundParams {
    /// Top-logit tokens decoded per concept before the word filter.
    pub top_tokens: usize,
    /// Grounded words kept per concept.
    pub words: usize,
    /// Seed of the Rnd-Words directions.
    pub seed: u64,
}

/// The model's LM head, read once and shared by the groundings of several dictionaries.
pub struct LmHead {
    weights: Vec<f32>,
    hidden: usize,
}

impl LmHead {
    pub fn of(model: &Model) -> Result<Self> {
        Ok(Self {
            weights: model.lm_head_f32()?,
            hidden: model.hidden_size(),
        })
    }

    fn view(&self) -> Result<LmHeadRef<'_>> {
        Ok(LmHeadRef::new(
            &self.weights,
            self.weights.len() / self.hidden,
            self.hidden,
        )?)
    }
}

/// Grounds every concept of `dict` in words, with the Rnd-Words baseline beside them.
pub fn ground(
    model: &Model,
    head: &LmHead,
    method: Method,
    dict: &crate::learn::Dictionary,
    p: &GroundParams,
) -> Result<Grounding> {
    let head = head.view()?;
    let decoder = model.lmm().tokenizer();
    let vocab = Vocabulary::bundled();
    let gparams = GroundingParams {
        pre_num_top_tokens: p.top_tokens,
        num_grounded_words: p.words,
        apply_final_norm: None,
    };
    let words = ground_concepts(
        head,
        &dict.concepts.data,
        dict.concepts.rows,
        decoder,
        vocab,
        &gparams,
    )?;
    let counts: Vec<usize> = words.iter().map(|w| w.words.len().max(1)).collect();
    let rnd = rnd_words(
        head,
        &counts,
        decoder,
        vocab,
        &RndWordsParams {
            seed: p.seed,
            ..Default::default()
        },
    )?;
    Ok(Grounding {
        method,
        words,
        rnd_words: rnd,
    })
}
