//! `config.json` of a Hugging Face `CLIPModel` (`model_type: "clip"`).
//!
//! Absent keys take `transformers`' `CLIPTextConfig` / `CLIPVisionConfig` / `CLIPConfig`
//! defaults, which are those of `openai/clip-vit-base-patch32`. Old configs that store the towers
//! under `text_config_dict` / `vision_config_dict` are accepted too.

use std::path::Path;

use cox_model::config::{Activation, VisionConfig};
use serde::{Deserialize, Serialize};

use crate::error::{ClipError, Result};

/// The text tower (`text_config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    /// Vocabulary size (49408).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Context length (77).
    pub max_position_embeddings: usize,
    /// MLP activation (`quick_gelu` for OpenAI's models, `gelu` for some others).
    pub hidden_act: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// End-of-text id. `2` (HF's legacy default, which every OpenAI config still carries) means
    /// "pool at the highest token id", as `transformers` does; any other value pools at the
    /// first occurrence of that id.
    pub eos_token_id: u32,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 2,
        }
    }
}

impl TextConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

/// The whole `CLIPModel` configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipConfig {
    /// Text tower.
    pub text_config: TextConfig,
    /// Vision tower (the same struct `cox-model` uses for LLaVA's CLIP tower).
    pub vision_config: VisionConfig,
    /// Width of the shared embedding space (`text_projection` / `visual_projection` outputs).
    pub projection_dim: usize,
    /// Initial value of `logit_scale`, used only when the checkpoint lacks the tensor.
    pub logit_scale_init_value: f64,
}

impl Default for ClipConfig {
    fn default() -> Self {
        Self {
            text_config: TextConfig::default(),
            vision_config: VisionConfig::default(),
            projection_dim: 512,
            logit_scale_init_value: 2.6592,
        }
    }
}

impl ClipConfig {
    /// Reads and validates `config.json`.
    ///
    /// # Errors
    /// [`ClipError::MissingFile`] / [`ClipError::Io`] when it cannot be read,
    /// [`ClipError::Config`] when it does not parse or is not a CLIP configuration.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(ClipError::MissingFile {
                path: path.to_path_buf(),
                hint: "a CLIP directory needs the config.json of an HF CLIPModel \
                       (e.g. openai/clip-vit-base-patch32)"
                    .into(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| ClipError::io(path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Parses `config.json` text; `path` labels errors.
    ///
    /// ```
    /// use cox_clipscore::ClipConfig;
    /// // openai/clip-vit-base-patch32 omits most keys: the defaults are that model.
    /// let c = ClipConfig::from_json_str(
    ///     r#"{"model_type": "clip", "projection_dim": 512, "vision_config": {"patch_size": 32}}"#,
    ///     std::path::Path::new("config.json"),
    /// )?;
    /// assert_eq!((c.vision_config.hidden_size, c.text_config.hidden_size), (768, 512));
    /// # Ok::<(), cox_clipscore::ClipError>(())
    /// ```
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        let bad = |msg: String| ClipError::Config {
            path: path.to_path_buf(),
            msg,
        };
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        match v.get("model_type").and_then(|m| m.as_str()) {
            Some("clip") | None => {}
            Some(other) => {
                return Err(bad(format!(
                    "model_type is {other:?}; only \"clip\" (HF CLIPModel) is supported"
                )))
            }
        }
        let tower = |key: &str| -> Option<serde_json::Value> {
            [key.to_string(), format!("{key}_dict")]
                .iter()
                .filter_map(|k| v.get(k))
                .find(|x| !x.is_null())
                .cloned()
        };
        let mut c = Self::default();
        if let Some(t) = tower("text_config") {
            c.text_config =
                serde_json::from_value(t).map_err(|e| bad(format!("text_config: {e}")))?;
        }
        if let Some(t) = tower("vision_config") {
            c.vision_config =
                serde_json::from_value(t).map_err(|e| bad(format!("vision_config: {e}")))?;
        }
        if let Some(p) = v.get("projection_dim").and_then(|x| x.as_u64()) {
            c.projection_dim = p as usize;
        }
        if let Some(s) = v.get("logit_scale_init_value").and_then(|x| x.as_f64()) {
            c.logit_scale_init_value = s;
        }
        c.validate().map_err(bad)?;
        Ok(c)
    }

    /// Checks the sizes fit together.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let (t, v) = (&self.text_config, &self.vision_config);
        let positive = [
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.num_attention_heads", t.num_attention_heads),
            ("text_config.vocab_size", t.vocab_size),
            (
                "text_config.max_position_embeddings",
                t.max_position_embeddings,
            ),
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.patch_size", v.patch_size),
            ("vision_config.image_size", v.image_size),
            ("projection_dim", self.projection_dim),
        ];
        if let Some((k, _)) = positive.iter().find(|(_, x)| *x == 0) {
            return Err(format!("{k} must be positive"));
        }
        if t.hidden_size % t.num_attention_heads != 0 {
            return Err(format!(
                "text hidden_size {} is not a multiple of num_attention_heads {}",
                t.hidden_size, t.num_attention_heads
            ));
        }
        if v.hidden_size % v.num_attention_heads != 0 {
            return Err(format!(
                "vision hidden_size {} is not a multiple of num_attention_heads {}",
                v.hidden_size, v.num_attention_heads
            ));
        }
        if v.image_size % v.patch_size != 0 {
            return Err(format!(
                "vision image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        Ok(())
    }

    /// Every tensor an HF `CLIPModel` checkpoint must hold for this configuration, with its
    /// shape (`logit_scale` and the `position_ids` buffers are optional and not listed).
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (t, v) = (&self.text_config, &self.vision_config);
        let mut out: Vec<(String, Vec<usize>)> = vec![
            (
                "text_model.embeddings.token_embedding.weight".into(),
                vec![t.vocab_size, t.hidden_size],
            ),
            (
                "text_model.embeddings.position_embedding.weight".into(),
                vec![t.max_position_embeddings, t.hidden_size],
            ),
            (
                "vision_model.embeddings.class_embedding".into(),
                vec![v.hidden_size],
            ),
            (
                "vision_model.embeddings.patch_embedding.weight".into(),
                vec![v.hidden_size, v.num_channels, v.patch_size, v.patch_size],
            ),
            (
                "vision_model.embeddings.position_embedding.weight".into(),
                vec![v.num_patches() + 1, v.hidden_size],
            ),
            (
                "visual_projection.weight".into(),
                vec![self.projection_dim, v.hidden_size],
            ),
            (
                "text_projection.weight".into(),
                vec![self.projection_dim, t.hidden_size],
            ),
        ];
        let norm = |out: &mut Vec<(String, Vec<usize>)>, name: String, h: usize| {
            out.push((format!("{name}.weight"), vec![h]));
            out.push((format!("{name}.bias"), vec![h]));
        };
        norm(
            &mut out,
            "text_model.final_layer_norm".into(),
            t.hidden_size,
        );
        norm(&mut out, "vision_model.pre_layrnorm".into(), v.hidden_size);
        norm(
            &mut out,
            "vision_model.post_layernorm".into(),
            v.hidden_size,
        );
        let towers = [
            (
                "text_model",
                t.num_hidden_layers,
                t.hidden_size,
                t.intermediate_size,
            ),
            (
                "vision_model",
                v.num_hidden_layers,
                v.hidden_size,
                v.intermediate_size,
            ),
        ];
        for (tower, layers, h, i) in towers {
            for l in 0..layers {
                let p = format!("{tower}.encoder.layers.{l}");
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    out.push((format!("{p}.self_attn.{proj}.weight"), vec![h, h]));
                    out.push((format!("{p}.self_attn.{proj}.bias"), vec![h]));
                }
                norm(&mut out, format!("{p}.layer_norm1"), h);
                norm(&mut out, format!("{p}.layer_norm2"), h);
                out.push((format!("{p}.mlp.fc1.weight"), vec![i, h]));
                out.push((format!("{p}.mlp.fc1.bias"), vec![i]));
                out.push((format!("{p}.mlp.fc2.weight"), vec![h, i]));
                out.push((format!("{p}.mlp.fc2.bias"), vec![h]));
            }
        }
        out
    }
}
