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
use crate::llama::{LayerSel, LmOutput, Logits, ResidualCapture};
use crate::nn::{activate, rope, softmax_last, Linear, RmsNorm};

/// Per-block key/value cache of the Qwen2 decoder.
#[derive(Debug, Clone)]
pub struct QwenKvCache {
    kvs: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl QwenKvCache {
    /// An empty cache for a decoder with `num_layers` blocks.
    pub fn new(num_layers: usize) -> Self {
        Self {
            kvs: vec![None; num_layers],
            len: 0,
        }
    }

    /// Positions already processed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been processed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug, Clone)]
struct Block {
    input_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    post_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    act: crate::config::Activation,
}

impl Block {
    fn load(vb: VarBuilder, c: &QwenTextConfig) -> candle_core::Result<Self> {
        let (h, hd, i) = (c.hidden_size, c.head_dim(), c.intermediate_size);
        let (nq, nkv) = (c.num_attention_heads, c.num_key_value_heads);
        let a = vb.pp("self_attn");
        let m = vb.pp("mlp");
        Ok(Self {
            input_norm: RmsNorm::load(vb.pp("input_layernorm"), h, c.rms_norm_eps)?,
            q: Linear::load(a.pp("q_proj"), h, nq * hd, true)?,
            k: Linear::load(a.pp("k_proj"), h, nkv * hd, true)?,
            v: Linear::load(a.pp("v_proj"), h, nkv * hd, true)?,
            o: Linear::load(a.pp("o_proj"), nq * hd, h, false)?,
            post_norm: RmsNorm::load(vb.pp("post_attention_layernorm"), h, c.rms_norm_eps)?,
            gate: Linear::load(m.pp("gate_proj"), h, i, false)?,
            up: Linear::load(m.pp("up_proj"), h, i, false)?,
            down: Linear::load(m.pp("down_proj"), i, h, false)?,
            heads: nq,
            kv_heads: nkv,
            head_dim: hd,
            act: c.hidden_act,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> candle_core::Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let h = self.input_norm.forward(x)?;
        let split = |t: Tensor, n: usize| -> candle_core::Result<Tensor> {
            t.reshape((b, s, n, self.head_dim))?.transpose(1, 2)
        };
        let q = rope(&split(self.q.forward(&h)?, self.heads)?, cos, sin)?;
        let mut k = rope(&split(self.k.forward(&h)?, self.kv_heads)?, cos, sin)?;
        let mut v = split(self.v.forward(&h)?, self.kv_heads)?.contiguous()?;
        if let Some(entry) = cache {
            if let Some((pk, pv)) = entry.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *entry = Some((k.clone(), v.clone()));
        }
        let rep = self.heads / self.kv_heads;
        let (k, v) = (repeat_kv(&k, rep)?, repeat_kv(&v, rep)?);
        // Scores and softmax in f32, as transformers does for half-precision weights.
        let dtype = q.dtype();
        let scores = (q
            .to_dtype(DType::F32)?
            .matmul(&k.to_dtype(DType::F32)?.t()?)?
            / (self.head_dim as f64).sqrt())?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let probs = softmax_last(&scores)?;
        let y = probs.matmul(&v.to_dtype(DType::F32)?)?.to_dtype(dtype)?;
        let y = y
            .transpose(1, 2)?
            .reshape((b, s, self.heads * self.head_dim))?;
        let x = (x + self.o.forward(&y)?)?;
        let h = self.post_norm.forward(&x)?;
        let g = activate(self.act, &self.gate.forward(&h)?)?;
        &x + self.down.forward(&(g * self.up.forward(&h)?)?)?
    }
}

fn repeat_kv(x: &Tensor, rep: usize) -> candle_core::Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, h, s, d) = x.dims4()?;
    x.unsqueeze(2)?
        .broadcast_as((b, h, rep, s, d))?
        .reshape((b, h * rep, s, d))
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
            .map(|i| Block::load(vb.pp(format!("layers.{i}")), c))
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
        for sel in &capture.layers {
            if let LayerSel::Block(b) = sel {
                if *b >= self.blocks.len() {
                    return Err(Error::Input(format!(
                        "cannot capture block {b}: the decoder has {} blocks (0..={})",
                        self.blocks.len(),
                        self.blocks.len().saturating_sub(1)
                    )));
                }
            }
        }
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
            let total = past + s;
            let m: Vec<f32> = (0..s)
                .flat_map(|i| {
                    (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (s, total), self.device())?)
        } else {
            None
        };
        let mut x = embeds.to_dtype(self.dtype())?;
        let mut captured: Vec<Option<Tensor>> = vec![None; capture.layers.len()];
        for (i, block) in self.blocks.iter().enumerate() {
            let entry = cache.as_mut().map(|c| &mut c.kvs[i]);
            x = block.forward(&x, &cos, &sin, mask.as_ref(), entry)?;
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
