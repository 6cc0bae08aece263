//! Writing random Qwen2-VL / Qwen2.5-VL checkpoints in the hub's on-disk format, for tests and
//! benchmarks (`cargo xtask tiny-lmm`).
//!
//! The directory holds a flat hub-style `config.json`, `model.safetensors` in the requested
//! layout and dtype, the small byte-level BPE `tokenizer.json` with the Qwen special tokens that
//! the transformers oracle fixture uses, `preprocessor_config.json`, `chat_template.json` (the
//! Qwen2-VL-Instruct template) and `generation_config.json`. Weights are drawn from a seeded
//! ChaCha8 generator, so the same arguments always write the same files.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;
use serde_json::json;

use super::config::{Qwen2VlConfig, QwenArch};
use super::{Qwen2VlModel, QwenLayout};
use crate::error::{Error, Result};

/// The tokenizer of the oracle fixture: byte-level BPE (256 bytes + 90 merges) and the Qwen
/// special tokens at ids 346..=353.
const TOKENIZER_JSON: &str = include_str!("../../tests/fixtures/qwen2_vl/qwen2_vl/tokenizer.json");

/// The chat template of the Qwen2-VL-Instruct and Qwen2.5-VL-Instruct checkpoints.
pub const QWEN_CHAT_TEMPLATE: &str = "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Sizes of a random Qwen checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyQwenConfig {
    /// Which architecture.
    pub arch: QwenArch,
    /// Vision blocks.
    pub vision_depth: usize,
    /// Vision width.
    pub vision_width: usize,
    /// Vision heads (head width a multiple of 4).
    pub vision_heads: usize,
    /// Vision MLP width.
    pub vision_intermediate: usize,
    /// Qwen2.5-VL window side in pixels (a multiple of 28).
    pub window_size: usize,
    /// Qwen2.5-VL blocks with full attention.
    pub fullatt_block_indexes: Vec<usize>,
    /// Decoder width.
    pub hidden_size: usize,
    /// Decoder MLP width.
    pub intermediate_size: usize,
    /// Decoder blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// `mrope_section` (sums to head_dim / 2).
    pub mrope_section: [usize; 3],
    /// Vocabulary rows (at least 384, the tokenizer's size rounded up).
    pub vocab_size: usize,
    /// Whether the LM head is the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Processor `min_pixels`.
    pub min_pixels: u64,
    /// Processor `max_pixels`.
    pub max_pixels: u64,
}

impl TinyQwenConfig {
    /// The sizes of the oracle fixture (vision width 32, decoder width 64, 2 layers).
    pub fn tiny(arch: QwenArch) -> Self {
        let q25 = arch == QwenArch::Qwen25Vl;
        Self {
            arch,
            vision_depth: if q25 { 4 } else { 2 },
            vision_width: 32,
            vision_heads: 2,
            vision_intermediate: 64,
            window_size: 56,
            fullatt_block_indexes: vec![1, 3],
            hidden_size: 64,
            intermediate_size: 128,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            mrope_section: [2, 3, 3],
            vocab_size: 384,
            tie_word_embeddings: q25,
            min_pixels: 3136,
            max_pixels: 15680,
        }
    }

    /// A mid-size model for benchmarks (vision 8 × 256, decoder 8 × 512, vocab 4096, images up
    /// to 256 merged tokens).
    pub fn mid(arch: QwenArch) -> Self {
        Self {
            arch,
            vision_depth: 8,
            vision_width: 256,
            vision_heads: 4,
            vision_intermediate: 1024,
            window_size: 112,
            fullatt_block_indexes: vec![3, 7],
            hidden_size: 512,
            intermediate_size: 1408,
            num_layers: 8,
            num_heads: 8,
            num_kv_heads: 2,
            mrope_section: [8, 12, 12],
            vocab_size: 4096,
            tie_word_embeddings: false,
            min_pixels: 3136,
            max_pixels: 28 * 28 * 256,
        }
    }
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// The `config.json` (flat, as the hub checkpoints write it) for `t` with the fixture
/// tokenizer's special ids.
pub fn config_json(t: &TinyQwenConfig) -> serde_json::Value {
    let vision = match t.arch {
        QwenArch::Qwen2Vl => json!({
            "depth": t.vision_depth,
            "embed_dim": t.vision_width,
            // transformers 5 declares `mlp_ratio` an int.
            "mlp_ratio": t.vision_intermediate / t.vision_width,
            "num_heads": t.vision_heads,
            "in_chans": 3,
            "hidden_size": t.hidden_size,
            "hidden_act": "quick_gelu",
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        }),
        QwenArch::Qwen25Vl => json!({
            "depth": t.vision_depth,
            "hidden_size": t.vision_width,
            "intermediate_size": t.vision_intermediate,
            "num_heads": t.vision_heads,
            "in_chans": 3,
            "out_hidden_size": t.hidden_size,
            "hidden_act": "silu",
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": t.window_size,
            "fullatt_block_indexes": t.fullatt_block_indexes,
            "tokens_per_second": 2,
        }),
    };
    json!({
        "architectures": [t.arch.class_name()],
        "model_type": t.arch.model_type(),
        "bos_token_id": 347,
        "eos_token_id": 346,
        "vision_start_token_id": 349,
        "vision_end_token_id": 350,
        "vision_token_id": 351,
        "image_token_id": 352,
        "video_token_id": 353,
        "hidden_act": "silu",
        "hidden_size": t.hidden_size,
        "intermediate_size": t.intermediate_size,
        "max_position_embeddings": 32768,
        "num_attention_heads": t.num_heads,
        "num_hidden_layers": t.num_layers,
        "num_key_value_heads": t.num_kv_heads,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1_000_000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": t.mrope_section},
        "tie_word_embeddings": t.tie_word_embeddings,
        "use_sliding_window": false,
        "vocab_size": t.vocab_size,
        "torch_dtype": "float32",
        "vision_config": vision,
    })
}

/// Writes a random checkpoint for `t` into `dir` (created if needed) with tensor names of
/// `layout`, stored as `dtype`; returns the configuration as the loader parses it.
pub fn write_tiny_qwen(
    dir: &Path,
    t: &TinyQwenConfig,
    layout: QwenLayout,
    dtype: DType,
    seed: u64,
) -> Result<Qwen2VlConfig> {
    if t.vocab_size < 384 {
        return Err(Error::Input(format!(
            "vocab_size {} is below the tokenizer's 384 ids",
            t.vocab_size
        )));
    }
    if t.arch == QwenArch::Qwen2Vl && t.vision_intermediate % t.vision_width != 0 {
        return Err(Error::Input(format!(
            "Qwen2-VL's vision MLP width is an integer multiple (mlp_ratio) of the vision width; \
             {} is not a multiple of {}",
            t.vision_intermediate, t.vision_width
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cfg_json = config_json(t);
    let cfg = Qwen2VlConfig::from_json_str(&cfg_json.to_string(), None)?;
    // Building the model on a VarMap creates exactly the variables the loader reads.
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    Qwen2VlModel::new(vb, &cfg, layout)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Input("the VarMap lock is poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut tensors = HashMap::new();
    for name in names {
        let shape = data[name].dims().to_vec();
        let n: usize = shape.iter().product();
        let is_norm = name.contains("norm") || name.contains("ln_q");
        let (mean, std) = if shape.len() == 1 && is_norm {
            (1.0, 0.1)
        } else if shape.len() == 1 {
            (0.0, 0.05)
        } else if name.contains("embed_tokens") || name.contains("lm_head") {
            (0.0, 0.5)
        } else {
            let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
            (0.0, 1.0 / (fan_in as f64).sqrt())
        };
        let dist = Normal::new(mean, std).map_err(|e| Error::Input(e.to_string()))?;
        let vals: Vec<f32> = (0..n).map(|_| rng.sample(dist) as f32).collect();
        let t = Tensor::from_vec(vals, shape.as_slice(), &Device::Cpu)?.to_dtype(dtype)?;
        tensors.insert(name.clone(), t);
    }
    drop(data);
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors"))?;
    write_json(&dir.join("config.json"), &cfg_json)?;
    std::fs::write(dir.join("tokenizer.json"), TOKENIZER_JSON)
        .map_err(|e| Error::io(dir.join("tokenizer.json"), e))?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"tokenizer_class": "Qwen2Tokenizer", "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>", "bos_token": null}),
    )?;
    write_json(
        &dir.join("preprocessor_config.json"),
        &json!({
            "min_pixels": t.min_pixels,
            "max_pixels": t.max_pixels,
            "patch_size": 14,
            "temporal_patch_size": 2,
            "merge_size": 2,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "image_processor_type": "Qwen2VLImageProcessor",
        }),
    )?;
    write_json(
        &dir.join("chat_template.json"),
        &json!({ "chat_template": QWEN_CHAT_TEMPLATE }),
    )?;
    write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": 347, "pad_token_id": 347, "eos_token_id": [346, 347],
                "do_sample": false, "repetition_penalty": 1.05}),
    )?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qwen2_vl::Qwen2Vl;
    use crate::{LayerSel, LoadOptions, ResidualCapture};

    #[test]
    fn tiny_checkpoints_load_and_generate_in_both_layouts() {
        for arch in [QwenArch::Qwen2Vl, QwenArch::Qwen25Vl] {
            for layout in [QwenLayout::Hub, QwenLayout::Transformers452] {
                let dir = tempfile::tempdir().unwrap();
                let t = TinyQwenConfig::tiny(arch);
                write_tiny_qwen(dir.path(), &t, layout, DType::BF16, 7).unwrap();
                let m =
                    Qwen2Vl::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
                assert_eq!(m.model.config().arch, arch);
                let img = image::DynamicImage::new_rgb8(60, 45);
                let px = m.processor.preprocess(&img, &Device::Cpu).unwrap();
                let input = m.prepare("Describe this image.", Some(&px)).unwrap();
                let cap = ResidualCapture::new([LayerSel::Block(1), LayerSel::FinalNorm]);
                let g = m.generate(&input, 4, &cap).unwrap();
                let rows = input.ids.len() + g.generated_ids.len() - 1;
                assert_eq!(g.residuals[0].dims(), &[rows, t.hidden_size]);
            }
        }
    }
}
