//! `config.json` of a Hugging Face `model_type: "llava"` checkpoint.
//!
//! Every optional field defaults to what `transformers` would use when the key is absent, so a
//! hub `config.json` (which omits most Llama fields) deserialises to the model it describes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// An activation function named in a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)` (CLIP's default).
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// The exact, erf-based GELU (`nn.GELU()`).
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation of GELU.
    #[serde(alias = "gelu_new", alias = "gelu_fast", rename = "gelu_pytorch_tanh")]
    GeluTanh,
    /// `x * sigmoid(x)`.
    #[serde(alias = "swish", rename = "silu")]
    Silu,
    /// `max(x, 0)`.
    #[serde(rename = "relu")]
    Relu,
}

/// CLIP vision tower hyper-parameters (`vision_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VisionConfig {
    /// `model_type` of the tower; only `clip_vision_model` is supported.
    pub model_type: String,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of encoder layers in the checkpoint.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Input channels (3).
    pub num_channels: usize,
    /// Side of the (square) input image in pixels.
    pub image_size: usize,
    /// Side of a square patch in pixels.
    pub patch_size: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Projection width of the CLIP model (unused by LLaVA, kept for completeness).
    pub projection_dim: Option<usize>,
}

impl Default for VisionConfig {
    fn default() -> Self {
        // `CLIPVisionConfig()` defaults.
        Self {
            model_type: "clip_vision_model".into(),
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            projection_dim: Some(512),
        }
    }
}

impl VisionConfig {
    /// The vision tower `LlavaConfig` uses when `vision_config` is absent (CLIP ViT-L/14-336).
    pub fn llava_default() -> Self {
        Self {
            hidden_size: 1024,
            intermediate_size: 4096,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            image_size: 336,
            patch_size: 14,
            projection_dim: Some(768),
            ..Self::default()
        }
    }

    /// Number of patches along one side of the image.
    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Number of patch positions (without the class token).
    pub fn num_patches(&self) -> usize {
        self.patches_per_side() * self.patches_per_side()
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// RoPE scaling (`rope_scaling` in transformers 4.x configs, the non-default `rope_type`s of
/// `rope_parameters` in 5.x). The rope types LLaVA-family checkpoints use are implemented; any
/// other type is refused by name when the configuration is parsed, never replaced by plain RoPE.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Positions divided by `factor` (equivalently, frequencies divided by `factor`).
    Linear {
        /// The scaling factor.
        factor: f64,
    },
    /// Dynamic NTK scaling: once a sequence is longer than `max_position_embeddings`, the base
    /// grows to `θ·(factor·len/max − (factor − 1))^(d/(d−2))` (transformers'
    /// `_compute_dynamic_ntk_parameters`); shorter sequences use plain RoPE.
    Dynamic {
        /// The scaling factor.
        factor: f64,
    },
    /// The Llama-3.1 frequency-dependent scaling.
    Llama3 {
        /// Overall factor.
        factor: f64,
        /// Low-frequency factor.
        low_freq_factor: f64,
        /// High-frequency factor.
        high_freq_factor: f64,
        /// Context length of the original model.
        original_max_position_embeddings: usize,
    },
}

/// The rope types [`RopeScaling`] implements, as named in configs (`default` is plain RoPE).
pub const SUPPORTED_ROPE_TYPES: &[&str] = &["default", "linear", "dynamic", "llama3"];

impl RopeScaling {
    /// The config name of the rope type.
    pub fn rope_type(&self) -> &'static str {
        match self {
            RopeScaling::Linear { .. } => "linear",
            RopeScaling::Dynamic { .. } => "dynamic",
            RopeScaling::Llama3 { .. } => "llama3",
        }
    }

    /// The JSON fields of this scaling (with `rope_type`), as both config forms write them.
    fn to_json_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = match self {
            RopeScaling::Linear { factor } | RopeScaling::Dynamic { factor } => {
                serde_json::json!({"rope_type": self.rope_type(), "factor": factor})
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => serde_json::json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": original_max_position_embeddings,
            }),
        };
        match v {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("json! of an object literal"),
        }
    }

    /// Parses a `rope_scaling` or `rope_parameters` object: `None` for plain RoPE
    /// (`rope_type`/`type` `"default"` or absent), an error naming any unsupported type.
    pub fn from_json(v: &serde_json::Value) -> std::result::Result<Option<Self>, String> {
        let Some(obj) = v.as_object() else {
            return Err(format!("expected an object, got {v}"));
        };
        let kind = match obj.get("rope_type").or_else(|| obj.get("type")) {
            None => "default",
            Some(t) => t
                .as_str()
                .ok_or_else(|| format!("rope_type must be a string, got {t}"))?,
        };
        let num = |k: &str| -> std::result::Result<f64, String> {
            obj.get(k)
                .and_then(|x| x.as_f64())
                .ok_or_else(|| format!("rope type {kind:?} needs a number {k:?}"))
        };
        match kind {
            "default" => Ok(None),
            "linear" => Ok(Some(RopeScaling::Linear {
                factor: num("factor")?,
            })),
            "dynamic" => Ok(Some(RopeScaling::Dynamic {
                factor: num("factor")?,
            })),
            "llama3" => Ok(Some(RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")? as usize,
            })),
            other => Err(format!(
                "rope type {other:?} is not supported (supported: {})",
                SUPPORTED_ROPE_TYPES.join(", ")
            )),
        }
    }
}

impl Serialize for RopeScaling {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json_fields().serialize(s)
    }
}

impl<'de> Deserialize<'de> for RopeScaling {
    /// Parses one scaling; `"default"` is refused here because it is not a scaling (the
    /// `rope_scaling` field of [`TextConfig`] maps it to `None`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        match RopeScaling::from_json(&v) {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(D::Error::custom(
                "rope type \"default\" is plain RoPE, not a scaling",
            )),
            Err(e) => Err(D::Error::custom(e)),
        }
    }
}

/// `rope_scaling` as transformers 4.x writes it: absent, `null`, `{"rope_type": "default"}` or a
/// scaling.
fn de_rope_scaling<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<RopeScaling>, D::Error> {
    use serde::de::Error as _;
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => {
            RopeScaling::from_json(&v).map_err(|e| D::Error::custom(format!("rope_scaling: {e}")))
        }
    }
}

/// `rope_parameters` as transformers 5.x writes it: `{"rope_theta": θ, "rope_type": T, ...}`
/// (the base and the scaling in one object; the 4.x top-level `rope_theta`/`rope_scaling` are
/// then absent).
#[derive(Debug, Clone, PartialEq)]
pub struct RopeParameters {
    /// The RoPE base, when the object names one.
    pub rope_theta: Option<f64>,
    /// The scaling (`None` for `rope_type: "default"`).
    pub scaling: Option<RopeScaling>,
}

impl Serialize for RopeParameters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = match &self.scaling {
            Some(sc) => sc.to_json_fields(),
            None => {
                let mut m = serde_json::Map::new();
                m.insert("rope_type".into(), "default".into());
                m
            }
        };
        if let Some(t) = self.rope_theta {
            m.insert("rope_theta".into(), t.into());
        }
        m.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RopeParameters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        let fail = |m: String| D::Error::custom(format!("rope_parameters: {m}"));
        let obj = v
            .as_object()
            .ok_or_else(|| fail(format!("expected an object, got {v}")))?;
        if obj.get("rope_type").is_none()
            && obj.get("type").is_none()
            && !obj.is_empty()
            && obj.values().all(|x| x.is_object())
        {
            // Gemma-3 style: one object per attention type. No Llama decoder has that.
            return Err(fail(format!(
                "per-layer-type rope parameters ({:?}) are not supported by a Llama decoder",
                obj.keys().collect::<Vec<_>>()
            )));
        }
        let rope_theta = match obj.get("rope_theta") {
            None | Some(serde_json::Value::Null) => None,
            Some(t) => Some(
                t.as_f64()
                    .ok_or_else(|| fail(format!("rope_theta must be a number, got {t}")))?,
            ),
        };
        let scaling = RopeScaling::from_json(&v).map_err(fail)?;
        Ok(Self {
            rope_theta,
            scaling,
        })
    }
}

/// The RoPE a decoder really uses, resolved from either config form.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// The base θ.
    pub theta: f64,
    /// The scaling, `None` for plain RoPE.
    pub scaling: Option<RopeScaling>,
}

/// One id or a list of ids (`eos_token_id` may be either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id.
    One(u32),
    /// Several ids.
    Many(Vec<u32>),
}

impl TokenIds {
    /// The ids as a vector.
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(i) => vec![*i],
            TokenIds::Many(v) => v.clone(),
        }
    }
}

/// Llama language-model hyper-parameters (`text_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    /// `model_type`; only `llama` is supported.
    pub model_type: String,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (GQA); `None` means as many as query heads.
    pub num_key_value_heads: Option<usize>,
    /// Head width; `None` means `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    /// MLP activation (SiLU for Llama).
    pub hidden_act: Activation,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base as transformers 4.x writes it (top level); superseded by
    /// `rope_parameters.rope_theta` when that is present. Use [`TextConfig::rope`].
    pub rope_theta: f64,
    /// RoPE scaling as transformers 4.x writes it; superseded by `rope_parameters` when that is
    /// present. Use [`TextConfig::rope`].
    #[serde(
        deserialize_with = "de_rope_scaling",
        skip_serializing_if = "Option::is_none"
    )]
    pub rope_scaling: Option<RopeScaling>,
    /// RoPE base and scaling as transformers 5.x writes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    /// Vocabulary size (rows of the embedding and of the LM head).
    pub vocab_size: usize,
    /// Longest supported sequence.
    pub max_position_embeddings: usize,
    /// Whether the LM head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Whether q/k/v/o projections have biases.
    pub attention_bias: bool,
    /// Whether the MLP projections have biases.
    pub mlp_bias: bool,
    /// Beginning-of-sequence token id.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id(s).
    pub eos_token_id: Option<TokenIds>,
    /// Padding token id.
    pub pad_token_id: Option<u32>,
}

impl Default for TextConfig {
    fn default() -> Self {
        // `LlamaConfig()` defaults.
        Self {
            model_type: "llama".into(),
            hidden_size: 4096,
            intermediate_size: 11008,
            num_hidden_layers: 32,
            num_attention_heads: 32,
            num_key_value_heads: None,
            head_dim: None,
            hidden_act: Activation::Silu,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: None,
            rope_parameters: None,
            vocab_size: 32000,
            max_position_embeddings: 2048,
            tie_word_embeddings: false,
            attention_bias: false,
            mlp_bias: false,
            bos_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(2)),
            pad_token_id: None,
        }
    }
}

impl TextConfig {
    /// The RoPE this configuration describes: `rope_parameters` (transformers 5.x) when present,
    /// its `rope_theta` falling back to the top-level one (whose default is transformers'
    /// 10000), else the 4.x `rope_theta` and `rope_scaling`. This is transformers'
    /// `standardize_rope_params` order.
    pub fn rope(&self) -> Rope {
        match &self.rope_parameters {
            Some(p) => Rope {
                theta: p.rope_theta.unwrap_or(self.rope_theta),
                scaling: p.scaling.clone(),
            },
            None => Rope {
                theta: self.rope_theta,
                scaling: self.rope_scaling.clone(),
            },
        }
    }

    /// Number of key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }
}

/// `vision_feature_layer`: one hidden-state index or several (concatenated along the width).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FeatureLayer {
    /// One index into the CLIP `hidden_states` (negative counts from the end).
    One(i64),
    /// Several indexes whose features are concatenated.
    Many(Vec<i64>),
}

impl Default for FeatureLayer {
    fn default() -> Self {
        FeatureLayer::One(-2)
    }
}

impl FeatureLayer {
    /// The indexes as given.
    pub fn indexes(&self) -> Vec<i64> {
        match self {
            FeatureLayer::One(i) => vec![*i],
            FeatureLayer::Many(v) => v.clone(),
        }
    }
}

/// `vision_feature_select_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SelectStrategy {
    /// Drop the CLS position, keep the patches.
    #[default]
    #[serde(rename = "default")]
    Default,
    /// Keep CLS and patches.
    #[serde(rename = "full")]
    Full,
}

/// The whole `config.json` of a `model_type: "llava"` checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlavaConfig {
    /// Must be `llava`.
    pub model_type: String,
    /// The CLIP vision tower.
    #[serde(default = "VisionConfig::llava_default")]
    pub vision_config: VisionConfig,
    /// The Llama language model.
    #[serde(default)]
    pub text_config: TextConfig,
    /// Token id whose positions receive the image features.
    #[serde(default = "default_image_token_index")]
    pub image_token_index: u32,
    /// Activation between the two projector layers.
    #[serde(default = "default_projector_act")]
    pub projector_hidden_act: Activation,
    /// Which CLIP hidden state feeds the projector.
    #[serde(default)]
    pub vision_feature_layer: FeatureLayer,
    /// Whether the CLS position is kept.
    #[serde(default)]
    pub vision_feature_select_strategy: SelectStrategy,
    /// Number of image-token positions one `<image>` expands to (when absent from the file:
    /// the number of features the tower yields, 576 for CLIP ViT-L/14-336).
    #[serde(default = "default_image_seq_length")]
    pub image_seq_length: usize,
    /// Whether the projector's linear layers have biases.
    #[serde(default = "default_true")]
    pub multimodal_projector_bias: bool,
    /// Top-level override of `text_config.tie_word_embeddings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_word_embeddings: Option<bool>,
    /// The dtype the weights were saved in, as transformers 5.x names it (`"bfloat16"`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// The same, as transformers 4.x names the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_dtype: Option<String>,
}

fn default_image_token_index() -> u32 {
    32000
}
fn default_projector_act() -> Activation {
    Activation::Gelu
}
fn default_image_seq_length() -> usize {
    576
}
fn default_true() -> bool {
    true
}

impl LlavaConfig {
    /// Parses and validates a `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json_str(&text, Some(path))
    }

    /// Parses and validates configuration JSON; `path` only labels errors.
    pub fn from_json_str(text: &str, path: Option<&Path>) -> Result<Self> {
        let label = || {
            path.map(Path::to_path_buf)
                .unwrap_or_else(|| "<config>".into())
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Json {
            path: label(),
            msg: e.to_string(),
        })?;
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("<missing>");
        if model_type != "llava" {
            return Err(Error::UnsupportedModelType {
                model_type: model_type.to_string(),
                path: label(),
                supported: "llava".into(),
            });
        }
        let has_seq_len = value.get("image_seq_length").is_some();
        let mut cfg: LlavaConfig = serde_json::from_value(value).map_err(|e| Error::Json {
            path: label(),
            msg: e.to_string(),
        })?;
        if !has_seq_len {
            // Older configs omit the key; HF's processor then derives it from the tower.
            cfg.image_seq_length = cfg.image_feature_count();
        }
        cfg.validate(path.map(Path::to_path_buf))?;
        Ok(cfg)
    }

    /// The saved dtype named by the config (`dtype`, else `torch_dtype`), if any.
    pub fn saved_dtype(&self) -> Option<&str> {
        self.dtype.as_deref().or(self.torch_dtype.as_deref())
    }

    /// Whether the LM head is the embedding matrix.
    pub fn tied_embeddings(&self) -> bool {
        self.tie_word_embeddings
            .unwrap_or(self.text_config.tie_word_embeddings)
    }

    /// Checks the invariants the model code relies on.
    pub fn validate(&self, path: Option<PathBuf>) -> Result<()> {
        let err = |m: String| Err(Error::config(path.clone(), m));
        let v = &self.vision_config;
        let t = &self.text_config;
        if v.model_type != "clip_vision_model" {
            return err(format!(
                "vision_config.model_type {:?} is not supported (only clip_vision_model)",
                v.model_type
            ));
        }
        if t.model_type != "llama" {
            return err(format!(
                "text_config.model_type {:?} is not supported (only llama)",
                t.model_type
            ));
        }
        if v.num_channels != 3 {
            return err(format!(
                "vision_config.num_channels must be 3, got {}",
                v.num_channels
            ));
        }
        if v.patch_size == 0 || v.image_size == 0 || v.image_size % v.patch_size != 0 {
            return err(format!(
                "vision_config.image_size {} must be a positive multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        if v.num_attention_heads == 0 || v.hidden_size % v.num_attention_heads != 0 {
            return err(format!(
                "vision_config.hidden_size {} is not divisible by num_attention_heads {}",
                v.hidden_size, v.num_attention_heads
            ));
        }
        if t.num_attention_heads == 0 || t.kv_heads() == 0 {
            return err("text_config needs at least one attention head".into());
        }
        if t.head_dim.is_none() && t.hidden_size % t.num_attention_heads != 0 {
            return err(format!(
                "text_config.hidden_size {} is not divisible by num_attention_heads {}",
                t.hidden_size, t.num_attention_heads
            ));
        }
        let rope = t.rope();
        if !(rope.theta.is_finite() && rope.theta > 0.0) {
            return err(format!(
                "RoPE base rope_theta must be positive, got {}",
                rope.theta
            ));
        }
        match rope.scaling {
            Some(RopeScaling::Linear { factor } | RopeScaling::Dynamic { factor })
                if !(factor.is_finite() && factor >= 1.0) =>
            {
                return err(format!("RoPE scaling factor must be >= 1, got {factor}"));
            }
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) if !(factor > 0.0
                && low_freq_factor > 0.0
                && high_freq_factor > low_freq_factor
                && original_max_position_embeddings > 0) =>
            {
                return err(format!(
                    "llama3 RoPE needs factor > 0, 0 < low_freq_factor < high_freq_factor and a \
                     positive original_max_position_embeddings, got {factor}, {low_freq_factor}, \
                     {high_freq_factor}, {original_max_position_embeddings}"
                ));
            }
            _ => {}
        }
        if t.head_dim() % 2 != 0 {
            return err(format!("RoPE needs an even head_dim, got {}", t.head_dim()));
        }
        if t.num_attention_heads % t.kv_heads() != 0 {
            return err(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                t.num_attention_heads,
                t.kv_heads()
            ));
        }
        if t.vocab_size == 0 || t.max_position_embeddings == 0 {
            return err(
                "text_config.vocab_size and max_position_embeddings must be positive".into(),
            );
        }
        if (self.image_token_index as usize) >= t.vocab_size {
            return err(format!(
                "image_token_index {} is outside the vocabulary ({} tokens)",
                self.image_token_index, t.vocab_size
            ));
        }
        let layers = self.vision_feature_layer.indexes();
        if layers.is_empty() {
            return err("vision_feature_layer is an empty list".into());
        }
        for &l in &layers {
            self.resolve_feature_layer(l).map_err(|e| match e {
                Error::Config { msg, .. } => Error::config(path.clone(), msg),
                e => e,
            })?;
        }
        let feats = self.image_feature_count();
        if self.image_seq_length != feats {
            return err(format!(
                "image_seq_length {} does not match the {} image features the vision tower yields \
                 ({} patches{})",
                self.image_seq_length,
                feats,
                v.num_patches(),
                if self.vision_feature_select_strategy == SelectStrategy::Full {
                    " + CLS"
                } else {
                    ""
                }
            ));
        }
        Ok(())
    }

    /// Converts a (possibly negative) `vision_feature_layer` entry into an index into the CLIP
    /// `hidden_states` tuple: 0 is the embeddings (after `pre_layrnorm`), `i >= 1` is the output
    /// of encoder layer `i` (1-based), `-1` is the last layer and `-2` the penultimate one.
    pub fn resolve_feature_layer(&self, index: i64) -> Result<usize> {
        let n = self.vision_config.num_hidden_layers as i64;
        let resolved = if index < 0 { n + 1 + index } else { index };
        if resolved < 0 || resolved > n {
            return Err(Error::config(
                None,
                format!(
                    "vision_feature_layer {index} is out of range for a vision tower with {n} layers \
                     (valid: {} ..= {n})",
                    -(n + 1)
                ),
            ));
        }
        Ok(resolved as usize)
    }

    /// Number of image features (positions) per image after the select strategy.
    pub fn image_feature_count(&self) -> usize {
        let n = self.vision_config.num_patches();
        match self.vision_feature_select_strategy {
            SelectStrategy::Default => n,
            SelectStrategy::Full => n + 1,
        }
    }

    /// Input width of the projector (vision width times the number of feature layers).
    pub fn projector_in_dim(&self) -> usize {
        self.vision_config.hidden_size * self.vision_feature_layer.indexes().len()
    }

    /// All end-of-sequence ids named by the configuration.
    pub fn eos_token_ids(&self) -> Vec<u32> {
        self.text_config
            .eos_token_id
            .as_ref()
            .map(TokenIds::to_vec)
            .unwrap_or_default()
    }
}
