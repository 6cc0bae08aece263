//! Small random CLIP checkpoints in the exact on-disk layout of an HF `CLIPModel` directory
//! (`config.json` + `model.safetensors`), for tests: no real CLIP weights exist on the project's
//! machines, so the loading code is exercised on files written here.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use cox_model::config::{Activation, VisionConfig};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::config::{ClipConfig, TextConfig};
use crate::error::{ClipError, Result};

/// A tiny configuration: text width 32 (2 layers, 4 heads, context 77, CLIP's 49408-entry
/// vocabulary so real token ids fit), vision width 48 (2 layers, 4 heads, 32 px images, 8 px
/// patches), projection 24, `quick_gelu`.
pub fn tiny_config() -> ClipConfig {
    ClipConfig {
        text_config: TextConfig {
            vocab_size: 49408,
            hidden_size: 32,
            intermediate_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 2,
        },
        vision_config: VisionConfig {
            hidden_size: 48,
            intermediate_size: 96,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            image_size: 32,
            patch_size: 8,
            hidden_act: Activation::QuickGelu,
            projection_dim: Some(24),
            ..VisionConfig::default()
        },
        projection_dim: 24,
        logit_scale_init_value: 2.6592,
    }
}

/// `config.json` for `cfg`, in HF `CLIPModel` layout.
pub fn config_json(cfg: &ClipConfig) -> Result<serde_json::Value> {
    let mut text =
        serde_json::to_value(&cfg.text_config).map_err(|e| ClipError::Input(e.to_string()))?;
    text["model_type"] = "clip_text_model".into();
    text["projection_dim"] = cfg.projection_dim.into();
    let vision =
        serde_json::to_value(&cfg.vision_config).map_err(|e| ClipError::Input(e.to_string()))?;
    Ok(serde_json::json!({
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": cfg.projection_dim,
        "logit_scale_init_value": cfg.logit_scale_init_value,
        "text_config": text,
        "vision_config": vision,
        "torch_dtype": "float32",
    }))
}

/// Random f32 tensors for every tensor of `cfg` (HF names), plus `logit_scale`: weights
/// `N(0, 0.1²)`, embeddings `N(0, 0.5²)`, LayerNorm gains `1 + N(0, 0.1²)`; seeded.
pub fn random_tensors(cfg: &ClipConfig, seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0f32, 1f32).expect("valid normal");
    let mut out = HashMap::new();
    for (name, shape) in cfg.expected_tensors() {
        let n: usize = shape.iter().product();
        let (mean, std) = if name.contains("norm") && name.ends_with(".weight") {
            (1.0, 0.1)
        } else if name.contains("embedding") {
            (0.0, 0.5)
        } else {
            (0.0, 0.1)
        };
        let data: Vec<f32> = (0..n)
            .map(|_| mean + std * normal.sample(&mut rng))
            .collect();
        out.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
    }
    out.insert(
        "logit_scale".into(),
        Tensor::new(cfg.logit_scale_init_value as f32, &Device::Cpu)?,
    );
    Ok(out)
}

/// Writes `config.json` and `model.safetensors` of a random CLIP model into `dir`.
///
/// ```
/// use cox_clipscore::testing::{tiny_config, write_tiny_clip};
/// use cox_clipscore::ClipModel;
/// let dir = tempfile::tempdir().unwrap();
/// write_tiny_clip(dir.path(), &tiny_config(), 0)?;
/// let m = ClipModel::load(dir.path(), candle_core::DType::F32, &candle_core::Device::Cpu)?;
/// assert_eq!(m.config().projection_dim, 24);
/// # Ok::<(), cox_clipscore::ClipError>(())
/// ```
pub fn write_tiny_clip(dir: &Path, cfg: &ClipConfig, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ClipError::io(dir, e))?;
    let json = serde_json::to_string_pretty(&config_json(cfg)?).expect("serialisable");
    let p = dir.join("config.json");
    std::fs::write(&p, json).map_err(|e| ClipError::io(&p, e))?;
    let tensors = random_tensors(cfg, seed)?;
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    Ok(())
}
