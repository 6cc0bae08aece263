//! The Qwen2 decoder of Qwen2-VL / Qwen2.5-VL with multimodal rotary positions (M-RoPE), its
//! loop owned here so the output of any block (and of the final norm) can be captured.
//!
//! Tensor names follow transformers' `Qwen2VLTextModel` (`embed_tokens`, `layers.N.self_attn.
//! {q,k,v,o}_proj`, `layers.N.mlp.{gate,up,down}_proj`, `norm`). Every position carries three
//! position ids (time, row, column); rotary frequency `j` of a head (`0 <= j < head_dim / 2`)
//! turns with the id of the axis whose `mrope_section` range contains `j`. Text positions have
//! three equal ids, so for text this is ordinary RoPE.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use super::config::QwenTextConfig;
use crate::error::{Error, Result};
use crate::llama::{causal_mask, Block, BlockShape, LayerSel, LmOutput, Logits, ResidualCapture};
use crate::nn::RmsNorm;

/// Per-block key/value cache of the Qwen2 decoder (the Llama decoder's cache: same blocks).
pub type QwenKvCache = crate::llama::KvCache;

/// A Qwen2 block is the Llama block with biases on the q/k/v projections only.
fn block_shape(c: &QwenTextConfig) -> BlockShape {
    BlockShape {
        hidden: c.hidden_size,
        intermediate: c.intermediate_size,
        heads: c.num_attention_heads,
        kv_heads: c.num_key_value_heads,
        head_dim: c.head_dim(),
        qkv_bias: true,
        o_bias: false,
        mlp_bias: false,
        rms_norm_eps: c.rms_norm_eps,
        act: c.hidden_act,
    }
}

/// The Qwen2 decoder: embeddings, blocks, final norm and LM head.
#[derive(Debug, Clone)]
pub struct QwenDecoder {
    embed_tokens: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Tensor,
    inv_freq: Vec<f32>,
    /// For each rotary frequency, the axis (0 time, 1 row, 2 column) whose id drives it.
    axis: Vec<usize>,
    config: QwenTextConfig,
}

impl QwenDecoder {
    /// Builds the decoder from `vb` at the decoder prefix and `head_vb` at the LM head prefix;
    /// with `tie` (or no `head_vb`) the head is the embedding matrix.
    pub fn load(
        vb: VarBuilder,
        head_vb: Option<VarBuilder>,
        tie: bool,
        config: &QwenTextConfig,
    ) -> candle_core::Result<Self> {
        let c = config;
        let embed_tokens = vb.get((c.vocab_size, c.hidden_size), "embed_tokens.weight")?;
        let blocks = (0..c.num_hidden_layers)
            .map(|i| Block::load(vb.pp(format!("layers.{i}")), &block_shape(c)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let norm = RmsNorm::load(vb.pp("norm"), c.hidden_size, c.rms_norm_eps)?;
        let lm_head = match head_vb {
            Some(h) if !tie => h.get((c.vocab_size, c.hidden_size), "weight")?,
            _ => embed_tokens.clone(),
        };
        let d = c.head_dim();
        // As transformers: in f32, `1 / base ** (arange(0, d, 2) / d)`.
        let inv_freq: Vec<f32> = (0..d)
            .step_by(2)
            .map(|i| 1.0 / (c.rope_theta as f32).powf(i as f32 / d as f32))
            .collect();
        let mut axis = Vec::with_capacity(d / 2);
        for (a, &n) in c.mrope_section.iter().enumerate() {
            axis.extend(std::iter::repeat_n(a, n));
        }
        Ok(Self {
            embed_tokens,
            blocks,
            norm,
            lm_head,
            inv_freq,
            axis,
            config: c.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &QwenTextConfig {
        &self.config
    }

    /// Number of decoder blocks.
    pub fn num_layers(&self) -> usize {
        self.blocks.len()
    }

    /// The unembedding matrix `W_U` (`[vocab, hidden]`).
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// The final RMSNorm (what `LayerSel::FinalNorm` records the output of).
    pub fn final_norm(&self) -> &RmsNorm {
        &self.norm
    }

    /// The token embedding matrix (`[vocab, hidden]`).
    pub fn embed_tokens(&self) -> &Tensor {
        &self.embed_tokens
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        self.embed_tokens.device()
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.embed_tokens.dtype()
    }

    /// Embeds token ids `[seq]` into `[seq, hidden]`.
    pub fn embed(&self, ids: &[u32]) -> Result<Tensor> {
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.config.vocab_size) {
            return Err(Error::Input(format!(
                "token id {bad} is outside the vocabulary ({} tokens)",
                self.config.vocab_size
            )));
        }
        let t = Tensor::new(ids, self.device())?;
        Ok(self.embed_tokens.index_select(&t, 0)?)
    }

    /// Projects states `[.., hidden]` to f32 logits `[.., vocab]`.
    pub fn logits(&self, states: &Tensor) -> Result<Tensor> {
        let dims = states.dims().to_vec();
        let h = *dims.last().unwrap_or(&0);
        if h != self.config.hidden_size {
            return Err(Error::Input(format!(
                "states have width {h}, the LM head expects {}",
                self.config.hidden_size
            )));
        }
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let l = states.reshape((rows, h))?.matmul(&self.lm_head.t()?)?;
        let mut out = dims[..dims.len() - 1].to_vec();
        out.push(self.config.vocab_size);
        Ok(l.reshape(out)?.to_dtype(DType::F32)?)
    }

    /// `cos`/`sin` `[seq, head_dim / 2]` for positions `[seq]` of `(time, row, column)` ids.
    fn rotary(&self, positions: &[[u32; 3]]) -> Result<(Tensor, Tensor)> {
        let f = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * f);
        let mut sin = Vec::with_capacity(positions.len() * f);
        for p in positions {
            for (j, w) in self.inv_freq.iter().enumerate() {
                let a = p[self.axis[j]] as f32 * w;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        let dev = self.device();
        let dtype = self.dtype();
        Ok((
            Tensor::from_vec(cos, (positions.len(), f), dev)?.to_dtype(dtype)?,
            Tensor::from_vec(sin, (positions.len(), f), dev)?.to_dtype(dtype)?,
        ))
    }

    /// Runs the decoder on input embeddings `[1, seq, hidden]` at M-RoPE `positions` (one
    /// `(time, row, column)` triple per row). With a `cache`, attention also sees the cached
    /// positions and the cache is extended.
    pub fn forward_embeds(
        &self,
        embeds: &Tensor,
        positions: &[[u32; 3]],
        mut cache: Option<&mut QwenKvCache>,
        capture: &ResidualCapture,
        logits: Logits,
    ) -> Result<LmOutput> {
        capture.check(self.blocks.len())?;
        let (b, s, h) = embeds.dims3()?;
        if b != 1 {
            return Err(Error::Input(format!(
                "the Qwen2 decoder runs one sequence at a time, got a batch of {b}"
            )));
        }
        if h != self.config.hidden_size || s == 0 || positions.len() != s {
            return Err(Error::Input(format!(
                "input embeddings [{b}, {s}, {h}] with {} positions do not fit a decoder of \
                 width {}",
                positions.len(),
                self.config.hidden_size
            )));
        }
        let max_pos = positions
            .iter()
            .flat_map(|p| p.iter())
            .max()
            .copied()
            .unwrap_or(0);
        if max_pos as usize >= self.config.max_position_embeddings {
            return Err(Error::Input(format!(
                "position {max_pos} is beyond max_position_embeddings {}",
                self.config.max_position_embeddings
            )));
        }
        let (cos, sin) = self.rotary(positions)?;
        let past = cache.as_ref().map(|c| c.len).unwrap_or(0);
        let mask = if s > 1 {
            Some(causal_mask(s, past, self.device())?)
        } else {
            None
        };
        let mut x = embeds.to_dtype(self.dtype())?;
        let mut captured: Vec<Option<Tensor>> = vec![None; capture.layers.len()];
        for (i, block) in self.blocks.iter().enumerate() {
            let entry = cache.as_mut().map(|c| &mut c.kvs[i]);
            x = block.forward(&x, &cos, &sin, mask.as_ref(), entry)?;
            x = crate::edit::apply_block_edits(&capture.edits, i, x, past)?;
            for (slot, sel) in captured.iter_mut().zip(&capture.layers) {
                if *sel == LayerSel::Block(i) {
                    *slot = Some(x.clone());
                }
            }
        }
        let normed = self.norm.forward(&x)?;
        for (slot, sel) in captured.iter_mut().zip(&capture.layers) {
            if *sel == LayerSel::FinalNorm {
                *slot = Some(normed.clone());
            }
        }
        if let Some(c) = cache {
            c.len += s;
        }
        let logits = match logits {
            Logits::All => Some(self.logits(&normed)?),
            Logits::Last => Some(self.logits(&normed.narrow(1, s - 1, 1)?)?),
            Logits::None => None,
        };
        Ok(LmOutput {
            logits,
            captured: captured.into_iter().flatten().collect(),
        })
    }
}
