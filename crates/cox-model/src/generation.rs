//! Greedy generation shared by every architecture, and the generation defaults a checkpoint's
//! `generation_config.json` sets.
//!
//! One loop ([`greedy`]) serves the Llama decoder of LLaVA and the Qwen2 decoder of Qwen2-VL: it
//! feeds the prompt once (prefill), then one token at a time with a KV cache, records the
//! requested residual-stream points at every position fed, applies transformers'
//! `RepetitionPenaltyLogitsProcessor` when the penalty is not 1, and stops at an EOS id or after
//! `max_new_tokens`. The decoders differ only in how a step is run (plain positions or M-RoPE
//! position triples), which the private [`Decode`] trait hides.

use std::path::Path;
use std::time::Instant;

use candle_core::Tensor;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::llama::{KvCache, LlamaModel, LmOutput, Logits, ResidualCapture};
use crate::model::{GenerateParams, GenerateTimings, GenerationOutput, MropePositions};
use crate::qwen2_vl::QwenDecoder;
use crate::tokenizer::read_json;

/// What transformers' greedy `generate` takes from `generation_config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationDefaults {
    /// Ids that stop generation.
    pub eos_token_ids: Vec<u32>,
    /// `repetition_penalty` (1 = off): logits of every id already in the sequence (prompt
    /// included) are divided by it when positive and multiplied by it when negative.
    pub repetition_penalty: f32,
}

impl Default for GenerationDefaults {
    fn default() -> Self {
        Self {
            eos_token_ids: Vec::new(),
            repetition_penalty: 1.0,
        }
    }
}

/// The `eos_token_id` value of a config file: one id or a list of ids.
pub(crate) fn eos_ids(v: Option<&Value>) -> Vec<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|x| x as u32)
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads `generation_config.json` of a checkpoint directory, if present: its EOS ids (empty when
/// absent) and `repetition_penalty` (1 when absent). A non-positive penalty is an error naming the
/// file.
pub fn read_generation_config(dir: &Path) -> Result<Option<GenerationDefaults>> {
    let path = dir.join("generation_config.json");
    let Some(g) = read_json(&path)? else {
        return Ok(None);
    };
    let mut out = GenerationDefaults {
        eos_token_ids: eos_ids(g.get("eos_token_id")),
        ..GenerationDefaults::default()
    };
    if let Some(p) = g.get("repetition_penalty").and_then(Value::as_f64) {
        if p.is_nan() || p <= 0.0 {
            return Err(Error::Json {
                path,
                msg: format!("repetition_penalty must be positive, got {p}"),
            });
        }
        out.repetition_penalty = p as f32;
    }
    Ok(Some(out))
}

/// One decoding step as the shared loop sees a decoder.
pub(crate) trait Decode {
    /// Number of decoder blocks (the cache's size).
    fn num_layers(&self) -> usize;
    /// Vocabulary size (the logits' width).
    fn vocab_size(&self) -> usize;
    /// Embeds one token as `[1, 1, hidden]`.
    fn embed_token(&self, id: u32) -> Result<Tensor>;
    /// Runs `embeds` `[1, seq, hidden]` through the decoder with the cache, returning the last
    /// position's logits and the captured states. `positions` are the M-RoPE triples of the
    /// rows when the decoder uses them.
    fn step(
        &self,
        embeds: &Tensor,
        positions: Option<&[[u32; 3]]>,
        cache: &mut KvCache,
        capture: &ResidualCapture,
    ) -> Result<LmOutput>;
}

impl Decode for LlamaModel {
    fn num_layers(&self) -> usize {
        LlamaModel::num_layers(self)
    }

    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn embed_token(&self, id: u32) -> Result<Tensor> {
        self.embed(&Tensor::new(&[[id]], LlamaModel::device(self))?)
    }

    fn step(
        &self,
        embeds: &Tensor,
        positions: Option<&[[u32; 3]]>,
        cache: &mut KvCache,
        capture: &ResidualCapture,
    ) -> Result<LmOutput> {
        if positions.is_some() {
            return Err(Error::Input(
                "the Llama decoder takes no multimodal rotary positions".into(),
            ));
        }
        self.forward_embeds(embeds, Some(cache), capture, Logits::Last)
    }
}

impl Decode for QwenDecoder {
    fn num_layers(&self) -> usize {
        QwenDecoder::num_layers(self)
    }

    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn embed_token(&self, id: u32) -> Result<Tensor> {
        Ok(self.embed(&[id])?.unsqueeze(0)?)
    }

    fn step(
        &self,
        embeds: &Tensor,
        positions: Option<&[[u32; 3]]>,
        cache: &mut KvCache,
        capture: &ResidualCapture,
    ) -> Result<LmOutput> {
        let positions = positions.ok_or_else(|| {
            Error::Input("the Qwen2 decoder needs the multimodal rotary positions".into())
        })?;
        self.forward_embeds(embeds, positions, Some(cache), capture, Logits::Last)
    }
}

/// The greedy loop every architecture shares: decoding with a KV cache from prompt embeddings
/// `[1, seq, hidden]`, with the M-RoPE positions of the prompt when the decoder uses them.
///
/// `prompt_ids` are the ids the repetition penalty sees before the first generated token (as
/// transformers' `generate(input_ids=…)`; a generation from embeddings alone, as
/// `generate(inputs_embeds=…)`, penalises the generated ids only). With a penalty of exactly 1
/// the next id is the tensor argmax, so results equal a loop without the penalty bit for bit.
pub(crate) fn greedy<D: Decode>(
    dec: &D,
    prompt_embeds: &Tensor,
    rope: Option<&MropePositions>,
    prompt_ids: &[u32],
    params: &GenerateParams,
    timings: &mut GenerateTimings,
) -> Result<GenerationOutput> {
    let (b, s, _h) = prompt_embeds.dims3()?;
    if b != 1 {
        return Err(Error::Input(format!(
            "generation takes one sequence, got a batch of {b}"
        )));
    }
    if params.max_new_tokens == 0 {
        return Err(Error::Input("max_new_tokens must be at least 1".into()));
    }
    let penalty = params.repetition_penalty;
    if penalty.is_nan() || penalty <= 0.0 {
        return Err(Error::Input(format!(
            "repetition_penalty must be positive, got {penalty}"
        )));
    }
    if let Some(r) = rope {
        if r.positions.len() != s {
            return Err(Error::Input(format!(
                "{} multimodal rotary positions for a prompt of {s} positions",
                r.positions.len()
            )));
        }
    }
    let vocab = dec.vocab_size();
    let mut seen = vec![false; vocab];
    if penalty != 1.0 {
        for &i in prompt_ids {
            if let Some(x) = seen.get_mut(i as usize) {
                *x = true;
            }
        }
    }
    let mut cache = KvCache::new(dec.num_layers());
    let mut states: Vec<Vec<Tensor>> = vec![Vec::new(); params.capture.layers.len()];
    let mut generated = Vec::new();
    let mut stopped = false;
    let mut input = prompt_embeds.clone();
    let mut positions: Option<Vec<[u32; 3]>> = rope.map(|r| r.positions.clone());
    let mut next_pos = rope.map_or(0, |r| r.next);
    for step in 0..params.max_new_tokens {
        let t0 = Instant::now();
        let out = dec.step(&input, positions.as_deref(), &mut cache, &params.capture)?;
        for (acc, t) in states.iter_mut().zip(out.captured) {
            acc.push(t.squeeze(0)?);
        }
        let logits = out
            .logits
            .ok_or_else(|| Error::Input("internal: no logits".into()))?
            .flatten_all()?;
        let next = if penalty == 1.0 {
            logits.argmax(0)?.to_scalar::<u32>()?
        } else {
            penalized_argmax(logits.to_vec1()?, &seen, penalty)
        };
        generated.push(next);
        if let Some(x) = seen.get_mut(next as usize) {
            *x = true;
        }
        let stop = params.eos_token_ids.contains(&next);
        if !stop && step + 1 < params.max_new_tokens {
            input = dec.embed_token(next)?;
            if positions.is_some() {
                // Text after the prompt continues from the largest prompt position on all
                // three axes, as transformers' `get_rope_index` + cache position do.
                positions = Some(vec![[next_pos; 3]]);
                next_pos += 1;
            }
        }
        if step == 0 {
            timings.prefill += t0.elapsed();
        } else {
            timings.decode += t0.elapsed();
            timings.decode_steps += 1;
        }
        if stop {
            stopped = true;
            break;
        }
    }
    let t0 = Instant::now();
    let residuals = states
        .into_iter()
        .map(|parts| Tensor::cat(&parts, 0).map_err(Error::from))
        .collect::<Result<Vec<_>>>()?;
    timings.capture += t0.elapsed();
    timings.generations += 1;
    Ok(GenerationOutput {
        generated_ids: generated,
        stopped_at_eos: stopped,
        residuals,
    })
}

/// transformers' repetition penalty (logits of `seen` ids divided by `p` when positive,
/// multiplied when negative), then the first maximum, as `torch.argmax`.
fn penalized_argmax(mut logits: Vec<f32>, seen: &[bool], p: f32) -> u32 {
    for (l, _) in logits.iter_mut().zip(seen).filter(|(_, &s)| s) {
        *l = if *l < 0.0 { *l * p } else { *l / p };
    }
    let mut next = 0u32;
    let mut best = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l > best {
            best = l;
            next = i as u32;
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_divides_positive_and_multiplies_negative_logits() {
        // Without the penalty id 0 wins; with 2.0 on the seen ids 0 and 2, id 1 does.
        let logits = vec![3.0, 2.0, -0.5];
        let seen = [true, false, true];
        assert_eq!(penalized_argmax(logits.clone(), &[false; 3], 2.0), 0);
        assert_eq!(penalized_argmax(logits, &seen, 2.0), 1);
        // Negative logits move away from zero: -0.5 becomes -0.75 (still the largest) with 1.5
        // and -1.0 (now below id 1's -0.9) with 2.
        assert_eq!(
            penalized_argmax(vec![-1.0, -0.9, -0.5], &[false, false, true], 1.5),
            2
        );
        assert_eq!(
            penalized_argmax(vec![-1.0, -0.9, -0.5], &[false, false, true], 2.0),
            1
        );
    }

    #[test]
    fn ties_take_the_first_maximum() {
        assert_eq!(penalized_argmax(vec![1.0, 2.0, 2.0], &[false; 3], 1.5), 1);
    }

    #[test]
    fn generation_config_reads_lists_scalars_and_rejects_bad_penalties() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_generation_config(dir.path()).unwrap(), None);
        let path = dir.path().join("generation_config.json");
        std::fs::write(
            &path,
            r#"{"eos_token_id": [3, 4], "repetition_penalty": 1.05}"#,
        )
        .unwrap();
        let g = read_generation_config(dir.path()).unwrap().unwrap();
        assert_eq!(g.eos_token_ids, vec![3, 4]);
        assert_eq!(g.repetition_penalty, 1.05);
        std::fs::write(&path, r#"{"eos_token_id": 2}"#).unwrap();
        let g = read_generation_config(dir.path()).unwrap().unwrap();
        assert_eq!(g.eos_token_ids, vec![2]);
        assert_eq!(g.repetition_penalty, 1.0);
        std::fs::write(&path, r#"{"repetition_penalty": 0}"#).unwrap();
        let err = read_generation_config(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("generation_config.json") && err.contains("positive"),
            "{err}"
        );
    }
}
