//! `config.json` of Qwen2-VL (`model_type: "qwen2_vl"`) and Qwen2.5-VL (`"qwen2_5_vl"`)
//! checkpoints, as both transformers generations write it.
//!
//! The hub checkpoints (written before transformers 5) keep the language model's keys at the top
//! level with `rope_scaling: {"type": "mrope", "mrope_section": [...]}` and `rope_theta`;
//! transformers 5 nests them under `text_config` with `rope_parameters`. When `text_config` is
//! present it is used alone, as transformers does; otherwise the top-level keys are read. Absent
//! keys take transformers' defaults for the class.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::Activation;
use crate::error::{Error, Result};

/// The `model_type`s of `config.json` that this crate loads.
pub const SUPPORTED_MODEL_TYPES: [&str; 3] = ["llava", "qwen2_vl", "qwen2_5_vl"];

/// Which member of the Qwen2-VL family a checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QwenArch {
    /// Qwen2-VL: LayerNorm vision blocks with a GELU-style MLP, full attention everywhere.
    Qwen2Vl,
    /// Qwen2.5-VL: RMSNorm vision blocks with a gated MLP and window attention except at
    /// `fullatt_block_indexes`.
    Qwen25Vl,
}

impl QwenArch {
    /// The `model_type` string.
    pub fn model_type(self) -> &'static str {
        match self {
            QwenArch::Qwen2Vl => "qwen2_vl",
            QwenArch::Qwen25Vl => "qwen2_5_vl",
        }
    }

    /// The transformers class name.
    pub fn class_name(self) -> &'static str {
        match self {
            QwenArch::Qwen2Vl => "Qwen2VLForConditionalGeneration",
            QwenArch::Qwen25Vl => "Qwen2_5_VLForConditionalGeneration",
        }
    }
}

/// The vision transformer (`vision_config`), normalised over both architectures.
#[derive(Debug, Clone, PartialEq)]
pub struct QwenVisionConfig {
    /// Number of vision blocks (`depth`).
    pub depth: usize,
    /// Width of the vision residual stream (`embed_dim` in Qwen2-VL, `hidden_size` in 2.5).
    pub width: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Width of the block MLP (`embed_dim * mlp_ratio` in Qwen2-VL, `intermediate_size` in 2.5).
    pub intermediate_size: usize,
    /// Output width of the merger, the language model's width (`hidden_size` in Qwen2-VL,
    /// `out_hidden_size` in 2.5).
    pub out_hidden_size: usize,
    /// Block MLP activation.
    pub hidden_act: Activation,
    /// Input channels (3).
    pub in_channels: usize,
    /// Side of a square patch in pixels (14).
    pub patch_size: usize,
    /// Frames per temporal patch (2; a still image is repeated).
    pub temporal_patch_size: usize,
    /// Side of the square of patches merged into one language-model token (2).
    pub spatial_merge_size: usize,
    /// Side of an attention window in pixels (Qwen2.5-VL only).
    pub window_size: usize,
    /// Blocks with full attention (Qwen2.5-VL; every block in Qwen2-VL).
    pub fullatt_block_indexes: Vec<usize>,
    /// Base of the 2-D rotary embedding.
    pub rope_theta: f64,
}

impl QwenVisionConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.width / self.num_heads.max(1)
    }

    /// Values of one flattened patch row (`channels * temporal * patch * patch`).
    pub fn patch_dim(&self) -> usize {
        self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size
    }
}

/// The Qwen2 language model, normalised over both config generations.
#[derive(Debug, Clone, PartialEq)]
pub struct QwenTextConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Decoder blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads.
    pub num_key_value_heads: usize,
    /// MLP activation.
    pub hidden_act: Activation,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// How many rotary frequencies the temporal, height and width positions drive.
    pub mrope_section: Vec<usize>,
    /// Longest supported sequence.
    pub max_position_embeddings: usize,
}

impl QwenTextConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }
}

/// The whole `config.json` of a Qwen2-VL or Qwen2.5-VL checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Qwen2VlConfig {
    /// Which architecture.
    pub arch: QwenArch,
    /// The vision transformer.
    pub vision: QwenVisionConfig,
    /// The language model.
    pub text: QwenTextConfig,
    /// Id of `<|image_pad|>`, whose positions receive the image features.
    pub image_token_id: u32,
    /// Id of `<|video_pad|>`.
    pub video_token_id: u32,
    /// Id of `<|vision_start|>`.
    pub vision_start_token_id: u32,
    /// Id of `<|vision_end|>`.
    pub vision_end_token_id: u32,
    /// End-of-sequence ids named by the configuration (generation_config.json has priority).
    pub eos_token_ids: Vec<u32>,
    /// Whether the LM head is the embedding matrix.
    pub tie_word_embeddings: bool,
}

fn get_usize(v: &Value, k: &str, d: usize) -> usize {
    v.get(k)
        .and_then(Value::as_u64)
        .map(|x| x as usize)
        .unwrap_or(d)
}

fn get_f64(v: &Value, k: &str, d: f64) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(d)
}

fn get_ids(v: &Value) -> Vec<u32> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_u64)
            .map(|x| x as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl Qwen2VlConfig {
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
        let v: Value = serde_json::from_str(text).map_err(|e| Error::Json {
            path: label(),
            msg: e.to_string(),
        })?;
        let cfg_err = |m: String| Error::config(path.map(Path::to_path_buf), m);
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .unwrap_or("<missing>");
        let arch = match model_type {
            "qwen2_vl" => QwenArch::Qwen2Vl,
            "qwen2_5_vl" => QwenArch::Qwen25Vl,
            other => {
                return Err(cfg_err(format!(
                    "model_type {other:?} is not supported (supported: {})",
                    SUPPORTED_MODEL_TYPES.join(", ")
                )))
            }
        };
        let act = |x: Option<&Value>, d: Activation| -> Result<Activation> {
            match x {
                None | Some(Value::Null) => Ok(d),
                Some(a) => serde_json::from_value(a.clone()).map_err(|e| {
                    cfg_err(format!(
                        "unsupported activation {a}: {e} (supported: silu, gelu, quick_gelu, \
                         gelu_pytorch_tanh, relu)"
                    ))
                }),
            }
        };

        // The language model: `text_config` when present (transformers 5), else the top level.
        let t = match v.get("text_config") {
            Some(tc) if tc.is_object() => tc,
            _ => &v,
        };
        let rope = t
            .get("rope_parameters")
            .filter(|r| r.is_object())
            .or_else(|| t.get("rope_scaling").filter(|r| r.is_object()));
        if let Some(r) = rope {
            let kind = r
                .get("rope_type")
                .or_else(|| r.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("default");
            if kind != "default" && kind != "mrope" {
                return Err(cfg_err(format!(
                    "rope type {kind:?} is not supported for {model_type} (supported: default, mrope)"
                )));
            }
        }
        let rope_theta = rope
            .and_then(|r| r.get("rope_theta"))
            .and_then(Value::as_f64)
            .unwrap_or_else(|| get_f64(t, "rope_theta", 1_000_000.0));
        let mrope_section: Vec<usize> = match rope.and_then(|r| r.get("mrope_section")) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_u64().map(|x| x as usize))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| cfg_err("mrope_section must be a list of integers".into()))?,
            _ => vec![16, 24, 24],
        };
        let heads = get_usize(t, "num_attention_heads", 64);
        let text = QwenTextConfig {
            vocab_size: get_usize(t, "vocab_size", 152_064),
            hidden_size: get_usize(t, "hidden_size", 8192),
            intermediate_size: get_usize(t, "intermediate_size", 29_568),
            num_hidden_layers: get_usize(t, "num_hidden_layers", 80),
            num_attention_heads: heads,
            num_key_value_heads: match t.get("num_key_value_heads") {
                Some(Value::Null) => heads,
                Some(x) => x.as_u64().map(|x| x as usize).unwrap_or(heads),
                None => 8,
            },
            hidden_act: act(t.get("hidden_act"), Activation::Silu)?,
            rms_norm_eps: get_f64(t, "rms_norm_eps", 1e-5),
            rope_theta,
            mrope_section,
            max_position_embeddings: get_usize(t, "max_position_embeddings", 32_768),
        };
        if t.get("use_sliding_window").and_then(Value::as_bool) == Some(true) {
            tracing::warn!(
                "use_sliding_window is set; like transformers' eager and sdpa attention, \
                 attention here is not windowed"
            );
        }
        let tie = v
            .get("tie_word_embeddings")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || t.get("tie_word_embeddings").and_then(Value::as_bool) == Some(true);
        let mut eos = v.get("eos_token_id").map(get_ids).unwrap_or_default();
        for id in t.get("eos_token_id").map(get_ids).unwrap_or_default() {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }

        let empty = Value::Object(Default::default());
        let vc = v.get("vision_config").unwrap_or(&empty);
        let channels = vc
            .get("in_channels")
            .or_else(|| vc.get("in_chans"))
            .and_then(Value::as_u64)
            .unwrap_or(3) as usize;
        let vrope = vc
            .get("rope_parameters")
            .and_then(|r| r.get("rope_theta"))
            .and_then(Value::as_f64)
            .unwrap_or(10_000.0);
        let vision = match arch {
            QwenArch::Qwen2Vl => {
                let width = get_usize(vc, "embed_dim", 1280);
                let depth = get_usize(vc, "depth", 32);
                QwenVisionConfig {
                    depth,
                    width,
                    num_heads: get_usize(vc, "num_heads", 16),
                    intermediate_size: (width as f64 * get_f64(vc, "mlp_ratio", 4.0)) as usize,
                    out_hidden_size: get_usize(vc, "hidden_size", 3584),
                    hidden_act: act(vc.get("hidden_act"), Activation::QuickGelu)?,
                    in_channels: channels,
                    patch_size: get_usize(vc, "patch_size", 14),
                    temporal_patch_size: get_usize(vc, "temporal_patch_size", 2),
                    spatial_merge_size: get_usize(vc, "spatial_merge_size", 2),
                    window_size: 0,
                    fullatt_block_indexes: (0..depth).collect(),
                    rope_theta: vrope,
                }
            }
            QwenArch::Qwen25Vl => QwenVisionConfig {
                depth: get_usize(vc, "depth", 32),
                width: get_usize(vc, "hidden_size", 3584),
                num_heads: get_usize(vc, "num_heads", 16),
                intermediate_size: get_usize(vc, "intermediate_size", 3420),
                out_hidden_size: get_usize(vc, "out_hidden_size", 3584),
                hidden_act: act(vc.get("hidden_act"), Activation::Silu)?,
                in_channels: channels,
                patch_size: get_usize(vc, "patch_size", 14),
                temporal_patch_size: get_usize(vc, "temporal_patch_size", 2),
                spatial_merge_size: get_usize(vc, "spatial_merge_size", 2),
                window_size: get_usize(vc, "window_size", 112),
                fullatt_block_indexes: match vc.get("fullatt_block_indexes") {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(Value::as_u64)
                        .map(|x| x as usize)
                        .collect(),
                    _ => vec![7, 15, 23, 31],
                },
                rope_theta: vrope,
            },
        };
        let id = |k: &str, d: u32| {
            v.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as u32)
                .unwrap_or(d)
        };
        let cfg = Self {
            arch,
            vision,
            text,
            image_token_id: id("image_token_id", 151_655),
            video_token_id: id("video_token_id", 151_656),
            vision_start_token_id: id("vision_start_token_id", 151_652),
            vision_end_token_id: id("vision_end_token_id", 151_653),
            eos_token_ids: eos,
            tie_word_embeddings: tie,
        };
        cfg.validate(path.map(Path::to_path_buf))?;
        Ok(cfg)
    }

    /// Checks the invariants the model code relies on.
    pub fn validate(&self, path: Option<PathBuf>) -> Result<()> {
        let err = |m: String| Err(Error::config(path.clone(), m));
        let (v, t) = (&self.vision, &self.text);
        if v.in_channels != 3 {
            return err(format!(
                "vision_config.in_channels must be 3, got {}",
                v.in_channels
            ));
        }
        if v.patch_size == 0 || v.temporal_patch_size == 0 || v.spatial_merge_size == 0 {
            return err("vision_config patch sizes must be positive".into());
        }
        if v.num_heads == 0 || v.width % v.num_heads != 0 || v.head_dim() % 4 != 0 {
            return err(format!(
                "the vision width {} must split into {} heads whose width is a multiple of 4 \
                 (2-D rotary embedding)",
                v.width, v.num_heads
            ));
        }
        if let Some(&b) = v.fullatt_block_indexes.iter().find(|&&b| b >= v.depth) {
            return err(format!(
                "fullatt_block_indexes names block {b} but the vision tower has {} blocks",
                v.depth
            ));
        }
        if self.arch == QwenArch::Qwen25Vl {
            let unit = v.spatial_merge_size * v.patch_size;
            if v.window_size < unit || v.window_size % unit != 0 {
                return err(format!(
                    "vision_config.window_size {} must be a positive multiple of \
                     spatial_merge_size * patch_size = {unit}",
                    v.window_size
                ));
            }
        }
        if t.num_attention_heads == 0
            || t.num_key_value_heads == 0
            || t.hidden_size % t.num_attention_heads != 0
            || t.num_attention_heads % t.num_key_value_heads != 0
        {
            return err(format!(
                "hidden_size {} / num_attention_heads {} / num_key_value_heads {} are inconsistent",
                t.hidden_size, t.num_attention_heads, t.num_key_value_heads
            ));
        }
        if t.head_dim() % 2 != 0 {
            return err(format!("RoPE needs an even head_dim, got {}", t.head_dim()));
        }
        if t.mrope_section.len() != 3 || t.mrope_section.iter().sum::<usize>() != t.head_dim() / 2 {
            return err(format!(
                "mrope_section {:?} must have 3 entries summing to head_dim / 2 = {}",
                t.mrope_section,
                t.head_dim() / 2
            ));
        }
        if t.vocab_size == 0 || t.max_position_embeddings == 0 {
            return err("vocab_size and max_position_embeddings must be positive".into());
        }
        for (name, id) in [
            ("image_token_id", self.image_token_id),
            ("vision_start_token_id", self.vision_start_token_id),
            ("vision_end_token_id", self.vision_end_token_id),
        ] {
            if id as usize >= t.vocab_size {
                return err(format!(
                    "{name} {id} is outside the vocabulary ({} tokens)",
                    t.vocab_size
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hub `config.json` of Qwen/Qwen2-VL-2B-Instruct (flat, `rope_scaling: mrope`).
    const QWEN2_VL_2B: &str = r#"{
      "architectures": ["Qwen2VLForConditionalGeneration"], "attention_dropout": 0.0,
      "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652,
      "vision_end_token_id": 151653, "vision_token_id": 151654, "image_token_id": 151655,
      "video_token_id": 151656, "hidden_act": "silu", "hidden_size": 1536,
      "initializer_range": 0.02, "intermediate_size": 8960, "max_position_embeddings": 32768,
      "max_window_layers": 28, "model_type": "qwen2_vl", "num_attention_heads": 12,
      "num_hidden_layers": 28, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
      "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
      "torch_dtype": "bfloat16", "transformers_version": "4.41.2", "use_cache": true,
      "use_sliding_window": false,
      "vision_config": {"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16,
        "in_chans": 3, "hidden_size": 1536, "patch_size": 14, "spatial_merge_size": 2,
        "spatial_patch_size": 14, "temporal_patch_size": 2},
      "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
      "vocab_size": 151936
    }"#;

    /// Qwen/Qwen2.5-VL-3B-Instruct's `config.json` as transformers 5 re-saves it (nested).
    const QWEN2_5_VL_3B_V5: &str = r#"{
      "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
      "image_token_id": 151655, "video_token_id": 151656, "vision_start_token_id": 151652,
      "vision_end_token_id": 151653, "tie_word_embeddings": true,
      "text_config": {"model_type": "qwen2_5_vl_text", "hidden_size": 2048,
        "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
        "num_key_value_heads": 2, "vocab_size": 151936, "rms_norm_eps": 1e-06,
        "max_position_embeddings": 128000, "eos_token_id": 151645,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0,
          "mrope_section": [16, 24, 24]}},
      "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280,
        "intermediate_size": 3420, "num_heads": 16, "in_chans": 3, "out_hidden_size": 2048,
        "patch_size": 14, "spatial_merge_size": 2, "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2,
        "temporal_patch_size": 2}
    }"#;

    #[test]
    fn hub_qwen2_vl_config() {
        let c = Qwen2VlConfig::from_json_str(QWEN2_VL_2B, None).unwrap();
        assert_eq!(c.arch, QwenArch::Qwen2Vl);
        assert_eq!((c.vision.width, c.vision.intermediate_size), (1280, 5120));
        assert_eq!(c.vision.out_hidden_size, 1536);
        assert_eq!(c.vision.hidden_act, Activation::QuickGelu);
        assert_eq!(c.vision.fullatt_block_indexes.len(), 32);
        assert_eq!(c.text.head_dim(), 128);
        assert_eq!(c.text.mrope_section, vec![16, 24, 24]);
        assert_eq!(c.text.rope_theta, 1e6);
        assert!(c.tie_word_embeddings);
        assert_eq!(c.eos_token_ids, vec![151645]);
    }

    #[test]
    fn nested_qwen2_5_vl_config() {
        let c = Qwen2VlConfig::from_json_str(QWEN2_5_VL_3B_V5, None).unwrap();
        assert_eq!(c.arch, QwenArch::Qwen25Vl);
        assert_eq!((c.vision.width, c.vision.intermediate_size), (1280, 3420));
        assert_eq!(c.vision.out_hidden_size, c.text.hidden_size);
        assert_eq!(c.vision.window_size, 112);
        assert_eq!(c.vision.fullatt_block_indexes, vec![7, 15, 23, 31]);
        assert_eq!(
            (c.text.num_hidden_layers, c.text.num_key_value_heads),
            (36, 2)
        );
        assert_eq!(c.text.max_position_embeddings, 128_000);
        assert!(c.tie_word_embeddings);
    }

    #[test]
    fn bad_configs_are_named() {
        let bad_rope = QWEN2_VL_2B.replace("[16, 24, 24]", "[16, 24, 20]");
        let e = Qwen2VlConfig::from_json_str(&bad_rope, None).unwrap_err();
        assert!(e.to_string().contains("mrope_section"), "{e}");
        let yarn = QWEN2_VL_2B.replace("\"type\": \"mrope\"", "\"type\": \"yarn\"");
        let e = Qwen2VlConfig::from_json_str(&yarn, None).unwrap_err();
        assert!(e.to_string().contains("yarn"), "{e}");
        let other = QWEN2_VL_2B.replace(
            "\"model_type\": \"qwen2_vl\"",
            "\"model_type\": \"idefics3\"",
        );
        let e = Qwen2VlConfig::from_json_str(&other, None).unwrap_err();
        assert!(e.to_string().contains("llava, qwen2_vl, qwen2_5_vl"), "{e}");
    }
}
