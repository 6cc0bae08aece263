//! The Llama decoder, with its loop owned here so the residual stream can be read.
//!
//! Tensor names follow Hugging Face's `LlamaModel` (`embed_tokens`, `layers.N.self_attn.q_proj`,
//! ..., `norm`), so one [`VarBuilder`] positioned at the decoder's prefix loads a real checkpoint
//! and a `VarMap` trains the same code.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::config::{RopeScaling, TextConfig};
use crate::edit::{apply_block_edits, Edit};
use crate::error::{Error, Result};
use crate::nn::{activate, rope, softmax_last, Linear, RmsNorm};

/// A point of the residual stream to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerSel {
    /// The output of decoder block `N` (0-based), as a forward hook on `layers.N` records it.
    /// For every block but the last this is transformers' `hidden_states[N + 1]`; the last entry
    /// of `hidden_states` is taken after the final norm, i.e. it is [`LayerSel::FinalNorm`].
    Block(usize),
    /// The output of the final RMSNorm (what the LM head reads).
    FinalNorm,
}

/// Which residual-stream points a forward pass records, and which edits it applies.
///
/// Edits ([`Edit`]) act on a block's output inside the decoder loop, before anything reads it:
/// a captured `Block(N)` state is the edited one, and later blocks, the LM head and the KV cache
/// all see the edit. Without edits a pass is exactly the unedited model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidualCapture {
    /// The points, in the order their states are returned.
    pub layers: Vec<LayerSel>,
    /// Interventions, applied in order after their blocks.
    pub edits: Vec<Edit>,
}

impl ResidualCapture {
    /// Records nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// Records the given points.
    pub fn new(layers: impl IntoIterator<Item = LayerSel>) -> Self {
        Self {
            layers: layers.into_iter().collect(),
            edits: Vec::new(),
        }
    }

    /// The same capture with `edits` applied during the pass (steering, ablation).
    pub fn with_edits(mut self, edits: Vec<Edit>) -> Self {
        self.edits = edits;
        self
    }

    /// Records the outputs of the given blocks.
    pub fn blocks(blocks: impl IntoIterator<Item = usize>) -> Self {
        Self::new(blocks.into_iter().map(LayerSel::Block))
    }

    pub(crate) fn check(&self, num_layers: usize) -> Result<()> {
        for sel in &self.layers {
            if let LayerSel::Block(b) = sel {
                if *b >= num_layers {
                    return Err(Error::Input(format!(
                        "cannot capture block {b}: the decoder has {num_layers} blocks (0..={})",
                        num_layers.saturating_sub(1)
                    )));
                }
            }
        }
        for e in &self.edits {
            if e.block >= num_layers {
                return Err(Error::Input(format!(
                    "cannot edit block {}: the decoder has {num_layers} blocks (0..={})",
                    e.block,
                    num_layers.saturating_sub(1)
                )));
            }
        }
        Ok(())
    }
}

/// Which positions get logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Every position: `[batch, seq, vocab]`.
    All,
    /// Only the last position: `[batch, 1, vocab]`.
    Last,
    /// No logits (the LM head is skipped).
    None,
}

/// The output of [`LlamaModel::forward_embeds`].
#[derive(Debug, Clone)]
pub struct LmOutput {
    /// Logits in f32 as selected by [`Logits`]; `None` for [`Logits::None`].
    pub logits: Option<Tensor>,
    /// One `[batch, seq, hidden]` tensor per entry of [`ResidualCapture::layers`], in order.
    pub captured: Vec<Tensor>,
}

/// Per-block key/value cache for incremental decoding (inference only).
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(crate) kvs: Vec<Option<(Tensor, Tensor)>>,
    pub(crate) len: usize,
}

impl KvCache {
    /// An empty cache for a decoder with `num_layers` blocks.
    pub fn new(num_layers: usize) -> Self {
        Self {
            kvs: vec![None; num_layers],
            len: 0,
        }
    }

    /// Number of positions already processed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no position has been processed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// This cache, filled for one sequence, repeated for a batch of `batch` sequences that share
    /// that prefix (keys and values broadcast along the batch axis; differentiable, so a prefix
    /// computed once per training step passes gradients from every row of the batch).
    pub fn broadcast_batch(&self, batch: usize) -> candle_core::Result<Self> {
        let kvs = self
            .kvs
            .iter()
            .map(|e| match e {
                None => Ok(None),
                Some((k, v)) => {
                    let (b, h, s, d) = k.dims4()?;
                    if b != 1 {
                        candle_core::bail!("broadcast_batch needs a cache of one sequence, not {b}")
                    }
                    let (_, hv, sv, dv) = v.dims4()?;
                    Ok(Some((
                        k.broadcast_as((batch, h, s, d))?.contiguous()?,
                        v.broadcast_as((batch, hv, sv, dv))?.contiguous()?,
                    )))
                }
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { kvs, len: self.len })
    }
}

/// The shape of one pre-norm decoder block (attention + gated MLP): what distinguishes the Llama
/// block from the Qwen2 one is only which projections carry biases.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockShape {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub rms_norm_eps: f64,
    pub act: crate::config::Activation,
}

impl BlockShape {
    /// A Llama block of `c`.
    fn llama(c: &TextConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            kv_heads: c.kv_heads(),
            head_dim: c.head_dim(),
            qkv_bias: c.attention_bias,
            o_bias: c.attention_bias,
            mlp_bias: c.mlp_bias,
            rms_norm_eps: c.rms_norm_eps,
            act: c.hidden_act,
        }
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder, c: &BlockShape) -> candle_core::Result<Self> {
        let (h, hd) = (c.hidden, c.head_dim);
        let (nq, nkv) = (c.heads, c.kv_heads);
        let b = c.qkv_bias;
        Ok(Self {
            q: Linear::load(vb.pp("q_proj"), h, nq * hd, b)?,
            k: Linear::load(vb.pp("k_proj"), h, nkv * hd, b)?,
            v: Linear::load(vb.pp("v_proj"), h, nkv * hd, b)?,
            o: Linear::load(vb.pp("o_proj"), nq * hd, h, c.o_bias)?,
            heads: nq,
            kv_heads: nkv,
            head_dim: hd,
        })
    }

    /// `x`: `[b, s, h]`; positions `offset..offset + s`; `cache`: this block's cache entry.
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> candle_core::Result<Tensor> {
        let (b, s, _) = x.dims3()?;
        let split = |t: Tensor, n: usize| -> candle_core::Result<Tensor> {
            t.reshape((b, s, n, self.head_dim))?.transpose(1, 2)
        };
        let q = rope(&split(self.q.forward(x)?, self.heads)?, cos, sin)?;
        let mut k = rope(&split(self.k.forward(x)?, self.kv_heads)?, cos, sin)?;
        let mut v = split(self.v.forward(x)?, self.kv_heads)?.contiguous()?;
        if let Some(entry) = cache {
            if let Some((pk, pv)) = entry.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *entry = Some((k.clone(), v.clone()));
        }
        let rep = self.heads / self.kv_heads;
        let (k, v) = (repeat_kv(&k, rep)?, repeat_kv(&v, rep)?);
        // Scores and softmax in f32, as HF does for half-precision weights.
        let dtype = q.dtype();
        let q = q.to_dtype(DType::F32)?;
        let k = k.to_dtype(DType::F32)?;
        let v = v.to_dtype(DType::F32)?;
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        let probs = softmax_last(&scores)?;
        let y = probs.matmul(&v)?.to_dtype(dtype)?;
        let y = y
            .transpose(1, 2)?
            .reshape((b, s, self.heads * self.head_dim))?;
        self.o.forward(&y)
    }
}

/// `[b, kv_heads, s, d]` → `[b, kv_heads * rep, s, d]`, each kv head repeated `rep` times.
fn repeat_kv(x: &Tensor, rep: usize) -> candle_core::Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, h, s, d) = x.dims4()?;
    x.unsqueeze(2)?
        .broadcast_as((b, h, rep, s, d))?
        .reshape((b, h * rep, s, d))
}

#[derive(Debug, Clone)]
struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
    act: crate::config::Activation,
}

impl Mlp {
    fn load(vb: VarBuilder, c: &BlockShape) -> candle_core::Result<Self> {
        let (h, i, b) = (c.hidden, c.intermediate, c.mlp_bias);
        Ok(Self {
            gate: Linear::load(vb.pp("gate_proj"), h, i, b)?,
            up: Linear::load(vb.pp("up_proj"), h, i, b)?,
            down: Linear::load(vb.pp("down_proj"), i, h, b)?,
            act: c.act,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let g = activate(self.act, &self.gate.forward(x)?)?;
        self.down.forward(&(g * self.up.forward(x)?)?)
    }
}

/// A pre-norm decoder block: `h = x + attn(norm(x))`, `h + mlp(norm(h))`.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    input_norm: RmsNorm,
    attn: Attention,
    post_norm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    /// Loads a block of the given shape from `vb` at `layers.N`.
    pub(crate) fn load(vb: VarBuilder, c: &BlockShape) -> candle_core::Result<Self> {
        Ok(Self {
            input_norm: RmsNorm::load(vb.pp("input_layernorm"), c.hidden, c.rms_norm_eps)?,
            attn: Attention::load(vb.pp("self_attn"), c)?,
            post_norm: RmsNorm::load(vb.pp("post_attention_layernorm"), c.hidden, c.rms_norm_eps)?,
            mlp: Mlp::load(vb.pp("mlp"), c)?,
        })
    }

    /// The block's dense layers under their Hugging Face names (`self_attn.q_proj`, …).
    pub(crate) fn linears_mut(&mut self) -> Vec<(&'static str, &mut Linear)> {
        vec![
            ("self_attn.q_proj", &mut self.attn.q),
            ("self_attn.k_proj", &mut self.attn.k),
            ("self_attn.v_proj", &mut self.attn.v),
            ("self_attn.o_proj", &mut self.attn.o),
            ("mlp.gate_proj", &mut self.mlp.gate),
            ("mlp.up_proj", &mut self.mlp.up),
            ("mlp.down_proj", &mut self.mlp.down),
        ]
    }

    /// `x`: `[b, s, h]`; `cos`/`sin`: `[s, head_dim / 2]`; `cache`: this block's cache entry.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        cache: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> candle_core::Result<Tensor> {
        let h = (x + self
            .attn
            .forward(&self.input_norm.forward(x)?, cos, sin, mask, cache)?)?;
        &h + self.mlp.forward(&self.post_norm.forward(&h)?)?
    }
}

/// Inverse RoPE frequencies for a config, with its scaling applied, for sequences of at most
/// `max_position_embeddings` positions (dynamic NTK scaling changes nothing there; see
/// [`rope_inv_freq_for_len`]).
pub fn rope_inv_freq(c: &TextConfig) -> Vec<f64> {
    rope_inv_freq_for_len(c, c.max_position_embeddings)
}

/// Inverse RoPE frequencies for a forward pass whose largest position is `seq_len - 1`.
///
/// Only dynamic NTK scaling depends on the length: as in transformers' `dynamic_rope_update`, a
/// pass over more than `max_position_embeddings` positions uses the base
/// `θ·(factor·seq_len/max − (factor − 1))^(d/(d−2))`; shorter ones use `θ`.
pub fn rope_inv_freq_for_len(c: &TextConfig, seq_len: usize) -> Vec<f64> {
    let d = c.head_dim();
    let rope = c.rope();
    let theta = match &rope.scaling {
        Some(RopeScaling::Dynamic { factor }) if seq_len > c.max_position_embeddings => {
            let max = c.max_position_embeddings as f64;
            let dd = d as f64;
            rope.theta * ((factor * seq_len as f64 / max) - (factor - 1.0)).powf(dd / (dd - 2.0))
        }
        _ => rope.theta,
    };
    let base: Vec<f64> = (0..d)
        .step_by(2)
        .map(|i| 1.0 / theta.powf(i as f64 / d as f64))
        .collect();
    match &rope.scaling {
        None | Some(RopeScaling::Dynamic { .. }) => base,
        Some(RopeScaling::Linear { factor }) => base.into_iter().map(|f| f / factor).collect(),
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        }) => {
            let old = *original_max_position_embeddings as f64;
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.into_iter()
                .map(|f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    }
}

/// `cos` and `sin` of `positions × inv_freq`, `[positions, head_dim / 2]`, in f32 as transformers
/// computes them, converted to `dtype`.
fn rope_tables(
    inv_freq: &[f64],
    positions: std::ops::Range<usize>,
    dtype: DType,
    dev: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let inv: Vec<f32> = inv_freq.iter().map(|&f| f as f32).collect();
    let n_freq = inv.len();
    let n = positions.len();
    let pos: Vec<f32> = positions.map(|p| p as f32).collect();
    let angles =
        Tensor::from_vec(pos, (n, 1), dev)?.matmul(&Tensor::from_vec(inv, (1, n_freq), dev)?)?;
    Ok((
        angles.cos()?.to_dtype(dtype)?,
        angles.sin()?.to_dtype(dtype)?,
    ))
}

/// The Llama decoder: embeddings, blocks, final norm and LM head.
#[derive(Debug, Clone)]
pub struct LlamaModel {
    embed_tokens: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Tensor,
    cos: Tensor,
    sin: Tensor,
    /// Dynamic NTK RoPE: passes longer than the table recompute their frequencies.
    dynamic_rope: bool,
    config: TextConfig,
}

impl LlamaModel {
    /// Builds the decoder from `vb` positioned at the decoder's prefix (holding
    /// `embed_tokens`, `layers`, `norm`) and `head_vb` positioned at the LM head's prefix
    /// (holding `weight`). With `tie` (or `head_vb` absent) the head is the embedding matrix.
    pub fn load(
        vb: VarBuilder,
        head_vb: Option<VarBuilder>,
        tie: bool,
        config: &TextConfig,
    ) -> candle_core::Result<Self> {
        let c = config;
        let embed_tokens = vb.get((c.vocab_size, c.hidden_size), "embed_tokens.weight")?;
        let blocks = (0..c.num_hidden_layers)
            .map(|i| Block::load(vb.pp(format!("layers.{i}")), &BlockShape::llama(c)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let norm = RmsNorm::load(vb.pp("norm"), c.hidden_size, c.rms_norm_eps)?;
        let lm_head = match head_vb {
            Some(h) if !tie => h.get((c.vocab_size, c.hidden_size), "weight")?,
            _ => embed_tokens.clone(),
        };
        let (cos, sin) = rope_tables(
            &rope_inv_freq(c),
            0..c.max_position_embeddings,
            vb.dtype(),
            vb.device(),
        )?;
        Ok(Self {
            embed_tokens,
            blocks,
            norm,
            lm_head,
            cos,
            sin,
            dynamic_rope: matches!(c.rope().scaling, Some(RopeScaling::Dynamic { .. })),
            config: c.clone(),
        })
    }

    /// The configuration the decoder was built from.
    pub fn config(&self) -> &TextConfig {
        &self.config
    }

    /// Number of decoder blocks.
    pub fn num_layers(&self) -> usize {
        self.blocks.len()
    }

    /// The final RMSNorm (what `LayerSel::FinalNorm` records the output of).
    pub fn final_norm(&self) -> &RmsNorm {
        &self.norm
    }

    /// The unembedding matrix `W_U` (`[vocab, hidden]`): `logits = W_U · u`.
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// The token embedding matrix (`[vocab, hidden]`).
    pub fn embed_tokens(&self) -> &Tensor {
        &self.embed_tokens
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.embed_tokens.device()
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.embed_tokens.dtype()
    }

    /// Embeds token ids of any shape `S` into `S × hidden`.
    pub fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let max = ids
            .flatten_all()?
            .to_dtype(DType::U32)?
            .max(0)?
            .to_scalar::<u32>();
        if let Ok(m) = max {
            if m as usize >= self.config.vocab_size {
                return Err(Error::Input(format!(
                    "token id {m} is outside the vocabulary ({} tokens)",
                    self.config.vocab_size
                )));
            }
        }
        let mut dims = ids.dims().to_vec();
        let flat = ids.flatten_all()?;
        let e = self.embed_tokens.index_select(&flat, 0)?;
        dims.push(self.config.hidden_size);
        Ok(e.reshape(dims)?)
    }

    /// Projects states `[.., hidden]` to f32 logits `[.., vocab]` through the LM head.
    pub fn logits(&self, states: &Tensor) -> Result<Tensor> {
        let dims = states.dims();
        let Some((&h, lead)) = dims.split_last() else {
            return Err(Error::Input(
                "cannot decode a scalar through the LM head".into(),
            ));
        };
        if h != self.config.hidden_size {
            return Err(Error::Input(format!(
                "states have width {h}, the LM head expects {}",
                self.config.hidden_size
            )));
        }
        let rows: usize = lead.iter().product();
        // A frozen head passes gradients only to the states (training adapters or a projector
        // through a frozen language model never needs the head's own gradient).
        let l = crate::nn::frozen_matmul(&states.reshape((rows, h))?, &self.lm_head.t()?)?;
        let mut out = lead.to_vec();
        out.push(self.config.vocab_size);
        Ok(l.reshape(out)?.to_dtype(DType::F32)?)
    }

    /// Runs the decoder on input embeddings `[batch, seq, hidden]`.
    ///
    /// With a `cache`, positions continue from `cache.len()` and the cache is extended; without
    /// one, positions start at 0 and the pass is fully differentiable. Rows past a sequence's true
    /// end (right padding) never influence earlier rows, because attention is causal.
    pub fn forward_embeds(
        &self,
        embeds: &Tensor,
        mut cache: Option<&mut KvCache>,
        capture: &ResidualCapture,
        logits: Logits,
    ) -> Result<LmOutput> {
        capture.check(self.blocks.len())?;
        let (_b, s, h) = embeds.dims3()?;
        if h != self.config.hidden_size {
            return Err(Error::Input(format!(
                "input embeddings have width {h}, the decoder expects {}",
                self.config.hidden_size
            )));
        }
        if s == 0 {
            return Err(Error::Input("empty input sequence".into()));
        }
        if let Some(c) = cache.as_ref() {
            if c.kvs.len() != self.blocks.len() {
                return Err(Error::Input(format!(
                    "the KV cache has {} layers, the decoder {}",
                    c.kvs.len(),
                    self.blocks.len()
                )));
            }
        }
        let offset = cache.as_ref().map(|c| c.len).unwrap_or(0);
        let (cos, sin) = if offset + s <= self.config.max_position_embeddings {
            (
                self.cos.narrow(0, offset, s)?,
                self.sin.narrow(0, offset, s)?,
            )
        } else if self.dynamic_rope {
            // Dynamic NTK: this pass's frequencies follow its length (cached keys keep the
            // rotation they were stored with, as in transformers).
            rope_tables(
                &rope_inv_freq_for_len(&self.config, offset + s),
                offset..offset + s,
                self.dtype(),
                embeds.device(),
            )?
        } else {
            return Err(Error::Input(format!(
                "sequence of {} positions exceeds max_position_embeddings {}",
                offset + s,
                self.config.max_position_embeddings
            )));
        };
        let mask = if s > 1 {
            Some(causal_mask(s, offset, embeds.device())?)
        } else {
            None
        };
        let mut captured: Vec<Option<Tensor>> = vec![None; capture.layers.len()];
        let mut x = embeds.clone();
        for (i, block) in self.blocks.iter().enumerate() {
            let entry = cache.as_deref_mut().map(|c| &mut c.kvs[i]);
            x = block.forward(&x, &cos, &sin, mask.as_ref(), entry)?;
            x = apply_block_edits(&capture.edits, i, x, offset)?;
            for (slot, sel) in captured.iter_mut().zip(&capture.layers) {
                if *sel == LayerSel::Block(i) {
                    *slot = Some(x.clone());
                }
            }
        }
        if let Some(c) = cache {
            c.len += s;
        }
        let needs_norm = logits != Logits::None || capture.layers.contains(&LayerSel::FinalNorm);
        let normed = if needs_norm {
            Some(self.norm.forward(&x)?)
        } else {
            None
        };
        for (slot, sel) in captured.iter_mut().zip(&capture.layers) {
            if *sel == LayerSel::FinalNorm {
                *slot = normed.clone();
            }
        }
        let logits = match (logits, &normed) {
            (Logits::All, Some(n)) => Some(self.logits(n)?),
            (Logits::Last, Some(n)) => Some(self.logits(&n.narrow(1, s - 1, 1)?)?),
            _ => None,
        };
        let captured = captured
            .into_iter()
            .map(|t| t.ok_or_else(|| Error::Input("internal: uncaptured layer".into())))
            .collect::<Result<Vec<_>>>()?;
        Ok(LmOutput { logits, captured })
    }

    /// Embeds `ids` (`[batch, seq]`) and runs [`Self::forward_embeds`].
    pub fn forward_ids(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
        capture: &ResidualCapture,
        logits: Logits,
    ) -> Result<LmOutput> {
        let e = self.embed(ids)?;
        self.forward_embeds(&e, cache, capture, logits)
    }

    /// A fresh cache sized for this decoder.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.blocks.len())
    }

    /// Every dense layer of the decoder blocks under its Hugging Face name relative to the
    /// decoder (`layers.3.self_attn.q_proj`, `layers.3.mlp.down_proj`, …), mutable so that
    /// low-rank adapters can be attached for training.
    pub fn linears_mut(&mut self) -> Vec<(String, &mut crate::nn::Linear)> {
        let mut out = Vec::new();
        for (i, b) in self.blocks.iter_mut().enumerate() {
            out.extend(
                b.linears_mut()
                    .into_iter()
                    .map(|(n, l)| (format!("layers.{i}.{n}"), l)),
            );
        }
        out
    }
}

/// Additive causal mask `[s, offset + s]`: 0 where key `j <= offset + i`, −∞ after.
pub(crate) fn causal_mask(s: usize, offset: usize, dev: &Device) -> candle_core::Result<Tensor> {
    let kv = offset + s;
    let data: Vec<f32> = (0..s)
        .flat_map(|i| {
            (0..kv).map(move |j| {
                if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Tensor::from_vec(data, (s, kv), dev)
}
