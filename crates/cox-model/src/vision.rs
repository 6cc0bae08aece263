//! The CLIP ViT vision tower and the LLaVA multimodal projector.
//!
//! Tensor names follow Hugging Face's `CLIPVisionTransformer` (`embeddings.patch_embedding`,
//! `pre_layrnorm` — HF's spelling —, `encoder.layers.N.self_attn.q_proj`, ...).

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use crate::config::{Activation, LlavaConfig, SelectStrategy, VisionConfig};
use crate::error::{Error, Result};
use crate::nn::{activate, softmax_last, LayerNorm, Linear};

#[derive(Debug, Clone)]
struct ClipAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
}

impl ClipAttention {
    fn load(vb: VarBuilder, hidden: usize, heads: usize) -> candle_core::Result<Self> {
        let h = hidden;
        Ok(Self {
            q: Linear::load(vb.pp("q_proj"), h, h, true)?,
            k: Linear::load(vb.pp("k_proj"), h, h, true)?,
            v: Linear::load(vb.pp("v_proj"), h, h, true)?,
            out: Linear::load(vb.pp("out_proj"), h, h, true)?,
            heads,
            head_dim: h / heads,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (b, s, h) = x.dims3()?;
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((b, s, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split((self.q.forward(x)? * (self.head_dim as f64).powf(-0.5))?)?;
        let k = split(self.k.forward(x)?)?;
        let v = split(self.v.forward(x)?)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(m) = mask {
            scores = scores.broadcast_add(m)?;
        }
        let probs = softmax_last(&scores)?;
        let y = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
        self.out.forward(&y)
    }
}

/// One pre-norm CLIP encoder layer (HF `CLIPEncoderLayer`: `layer_norm1`, `self_attn.{q,k,v,out}_proj`,
/// `layer_norm2`, `mlp.fc1`, `mlp.fc2`, all with biases), shared by the vision tower here and the
/// CLIP text tower of `cox-clipscore` (which passes its causal mask).
#[derive(Debug, Clone)]
pub struct ClipEncoderLayer {
    ln1: LayerNorm,
    attn: ClipAttention,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

impl ClipEncoderLayer {
    /// Loads the layer from `vb` positioned at `encoder.layers.N`: width `hidden`, MLP
    /// `intermediate`, `heads` attention heads (dividing `hidden`), LayerNorm epsilon `eps`.
    pub fn load(
        vb: VarBuilder,
        hidden: usize,
        intermediate: usize,
        heads: usize,
        eps: f64,
        act: Activation,
    ) -> candle_core::Result<Self> {
        let (h, i) = (hidden, intermediate);
        Ok(Self {
            ln1: LayerNorm::load(vb.pp("layer_norm1"), h, eps)?,
            attn: ClipAttention::load(vb.pp("self_attn"), h, heads)?,
            ln2: LayerNorm::load(vb.pp("layer_norm2"), h, eps)?,
            fc1: Linear::load(vb.pp("mlp.fc1"), h, i, true)?,
            fc2: Linear::load(vb.pp("mlp.fc2"), i, h, true)?,
            act,
        })
    }

    /// `x + attn(ln1(x)) → y + mlp(ln2(y))` on `[batch, seq, hidden]`; `mask` (broadcast to
    /// `[batch, heads, seq, seq]`, e.g. `[1, 1, seq, seq]` with `-inf` above the diagonal) is added to
    /// the attention scores before the softmax.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln1.forward(x)?, mask)?)?;
        let m = self.fc2.forward(&activate(
            self.act,
            &self.fc1.forward(&self.ln2.forward(&x)?)?,
        )?)?;
        &x + m
    }
}

/// The CLIP vision transformer, truncated to the encoder layers LLaVA actually reads.
#[derive(Debug, Clone)]
pub struct ClipVisionTower {
    patch_embedding: Tensor,
    class_embedding: Tensor,
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    layers: Vec<ClipEncoderLayer>,
    config: VisionConfig,
}

impl ClipVisionTower {
    /// Builds the tower from `vb` positioned at `vision_model`, loading only the first
    /// `num_layers` encoder layers (`post_layernorm` is never loaded: LLaVA does not use it).
    pub fn load(
        vb: VarBuilder,
        config: &VisionConfig,
        num_layers: usize,
    ) -> candle_core::Result<Self> {
        let c = config;
        let (h, p) = (c.hidden_size, c.patch_size);
        let e = vb.pp("embeddings");
        let layers = (0..num_layers.min(c.num_hidden_layers))
            .map(|i| {
                ClipEncoderLayer::load(
                    vb.pp(format!("encoder.layers.{i}")),
                    h,
                    c.intermediate_size,
                    c.num_attention_heads,
                    c.layer_norm_eps,
                    c.hidden_act,
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            patch_embedding: e.get((h, c.num_channels, p, p), "patch_embedding.weight")?,
            class_embedding: e.get(h, "class_embedding")?,
            position_embedding: e.get((c.num_patches() + 1, h), "position_embedding.weight")?,
            pre_layrnorm: LayerNorm::load(vb.pp("pre_layrnorm"), h, c.layer_norm_eps)?,
            layers,
            config: c.clone(),
        })
    }

    /// The tower's configuration.
    pub fn config(&self) -> &VisionConfig {
        &self.config
    }

    /// Number of encoder layers loaded.
    pub fn num_loaded_layers(&self) -> usize {
        self.layers.len()
    }

    /// The CLIP `hidden_states` `0..=upto` for `pixel_values` `[batch, 3, H, W]`: entry 0 is
    /// the embeddings after `pre_layrnorm`, entry `i` the output of encoder layer `i`
    /// (1-based). Each is `[batch, 1 + patches, hidden]`.
    pub fn hidden_states(&self, pixel_values: &Tensor, upto: usize) -> Result<Vec<Tensor>> {
        if upto > self.layers.len() {
            return Err(Error::Input(format!(
                "hidden state {upto} needs {upto} encoder layers, only {} are loaded",
                self.layers.len()
            )));
        }
        let (b, ch, hh, ww) = pixel_values.dims4()?;
        let c = &self.config;
        if ch != c.num_channels || hh != c.image_size || ww != c.image_size {
            return Err(Error::Input(format!(
                "pixel_values have shape [{b}, {ch}, {hh}, {ww}], the vision tower expects \
                 [batch, {}, {}, {}]",
                c.num_channels, c.image_size, c.image_size
            )));
        }
        let pixel_values = pixel_values.to_dtype(self.patch_embedding.dtype())?;
        // A convolution whose stride equals its kernel is a matmul over non-overlapping
        // patches; unfolding them explicitly avoids candle's CPU conv2d, which rejects bf16.
        let (p, g) = (c.patch_size, c.patches_per_side());
        let unfolded = pixel_values
            .reshape((b, ch, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .reshape((b * g * g, ch * p * p))?;
        let kernel = self.patch_embedding.reshape((c.hidden_size, ch * p * p))?;
        let patches = unfolded
            .matmul(&kernel.t()?)?
            .reshape((b, g * g, c.hidden_size))?;
        let cls = self
            .class_embedding
            .reshape((1, 1, c.hidden_size))?
            .broadcast_as((b, 1, c.hidden_size))?;
        let x = Tensor::cat(&[&cls, &patches], 1)?.broadcast_add(&self.position_embedding)?;
        let mut x = self.pre_layrnorm.forward(&x)?;
        let mut states = Vec::with_capacity(upto + 1);
        states.push(x.clone());
        for layer in &self.layers[..upto] {
            x = layer.forward(&x, None)?;
            states.push(x.clone());
        }
        Ok(states)
    }
}

/// LLaVA's two-layer MLP projector: `linear_2(act(linear_1(x)))`.
#[derive(Debug, Clone)]
pub struct Projector {
    linear_1: Linear,
    linear_2: Linear,
    act: Activation,
}

impl Projector {
    /// Builds the projector from `vb` positioned at `multi_modal_projector`.
    pub fn load(vb: VarBuilder, config: &LlavaConfig) -> candle_core::Result<Self> {
        let t = config.text_config.hidden_size;
        let bias = config.multimodal_projector_bias;
        Ok(Self {
            linear_1: Linear::load(vb.pp("linear_1"), config.projector_in_dim(), t, bias)?,
            linear_2: Linear::load(vb.pp("linear_2"), t, t, bias)?,
            act: config.projector_hidden_act,
        })
    }
}

impl Module for Projector {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.linear_2
            .forward(&activate(self.act, &self.linear_1.forward(x)?)?)
    }
}

/// The image side of LLaVA: vision tower, layer/position selection and projector.
#[derive(Debug, Clone)]
pub struct ImageEncoder {
    tower: ClipVisionTower,
    projector: Projector,
    layers: Vec<usize>,
    strategy: SelectStrategy,
}

impl ImageEncoder {
    /// Builds the tower (only the layers `vision_feature_layer` needs) and the projector.
    pub fn load(
        tower_vb: VarBuilder,
        projector_vb: VarBuilder,
        config: &LlavaConfig,
    ) -> Result<Self> {
        let layers = config
            .vision_feature_layer
            .indexes()
            .into_iter()
            .map(|l| config.resolve_feature_layer(l))
            .collect::<Result<Vec<_>>>()?;
        let needed = layers.iter().copied().max().unwrap_or(0);
        Ok(Self {
            tower: ClipVisionTower::load(tower_vb, &config.vision_config, needed)?,
            projector: Projector::load(projector_vb, config)?,
            layers,
            strategy: config.vision_feature_select_strategy,
        })
    }

    /// The vision tower.
    pub fn tower(&self) -> &ClipVisionTower {
        &self.tower
    }

    /// The projector.
    pub fn projector(&self) -> &Projector {
        &self.projector
    }

    /// Selected CLIP features before projection: `[batch, positions, hidden × layers]`.
    pub fn vision_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let upto = self.layers.iter().copied().max().unwrap_or(0);
        let states = self.tower.hidden_states(pixel_values, upto)?;
        let picked: Vec<Tensor> = self
            .layers
            .iter()
            .map(|&l| match self.strategy {
                SelectStrategy::Default => states[l].narrow(1, 1, states[l].dim(1)? - 1),
                SelectStrategy::Full => Ok(states[l].clone()),
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(if picked.len() == 1 {
            picked.into_iter().next().expect("one feature layer")
        } else {
            Tensor::cat(&picked, 2)?
        })
    }

    /// Projected image features: `[batch, positions, text hidden]`.
    pub fn encode(&self, pixel_values: &Tensor) -> Result<Tensor> {
        Ok(self
            .projector
            .forward(&self.vision_features(pixel_values)?)?)
    }
}
