//! Writing small random LLaVA checkpoints in the exact on-disk format of the hub.
//!
//! [`write_tiny_llava`] produces `config.json`, `model.safetensors`, `tokenizer.json` (a real
//! `tokenizers` WordLevel tokenizer with a whitespace pre-tokenizer and a `<s> $A`
//! post-processor), `tokenizer_config.json` (with the llava-hf LLaVA-1.5 chat template) and
//! `preprocessor_config.json`. The weights are random; the files load through exactly the code
//! path real checkpoints take.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;

use crate::config::{
    Activation, FeatureLayer, LlavaConfig, RopeScaling, SelectStrategy, TextConfig, TokenIds,
    VisionConfig,
};
use crate::error::{Error, Result};
use crate::processor::{CLIP_MEAN, CLIP_STD};
use crate::weights::WeightLayout;

/// The llava-hf LLaVA-1.5 chat template, as stored in its `chat_template.json`.
pub const LLAVA15_CHAT_TEMPLATE: &str = "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

/// Words every tiny vocabulary contains (prompt scaffolding and a few caption words).
pub const BASE_WORDS: &[&str] = &[
    "USER",
    "ASSISTANT",
    ":",
    ".",
    ",",
    "?",
    "!",
    "a",
    "an",
    "the",
    "of",
    "is",
    "are",
    "on",
    "in",
    "with",
    "and",
    "what",
    "describe",
    "this",
    "image",
    "picture",
    "photo",
    "there",
    "cat",
    "dog",
    "man",
    "woman",
    "car",
    "tree",
    "house",
    "table",
    "street",
    "red",
    "blue",
    "green",
    "yellow",
    "white",
    "black",
    "small",
    "large",
    "sitting",
    "standing",
    "next",
    "to",
];

/// Shape of a random checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyConfig {
    /// Side of the square input image.
    pub image_size: usize,
    /// Side of a patch.
    pub patch_size: usize,
    /// Vision width.
    pub vision_hidden: usize,
    /// Vision MLP width.
    pub vision_intermediate: usize,
    /// Vision encoder layers.
    pub vision_layers: usize,
    /// Vision heads.
    pub vision_heads: usize,
    /// Decoder width.
    pub text_hidden: usize,
    /// Decoder MLP width.
    pub text_intermediate: usize,
    /// Decoder blocks.
    pub text_layers: usize,
    /// Query heads.
    pub text_heads: usize,
    /// Key/value heads.
    pub text_kv_heads: usize,
    /// Longest sequence.
    pub max_position_embeddings: usize,
    /// RoPE base.
    pub rope_theta: f64,
    /// RoPE scaling.
    pub rope_scaling: Option<RopeScaling>,
    /// `vision_feature_layer`.
    pub vision_feature_layer: FeatureLayer,
    /// `vision_feature_select_strategy`.
    pub select_strategy: SelectStrategy,
    /// Omit `lm_head.weight` and set `tie_word_embeddings`.
    pub tie_word_embeddings: bool,
    /// Tensor naming scheme.
    pub layout: WeightLayout,
    /// Stored dtype (F32, F16 or BF16).
    pub dtype: DType,
    /// Vocabulary words after [`BASE_WORDS`] (duplicates are dropped).
    pub extra_words: Vec<String>,
    /// Number of filler words `w0, w1, …` appended to reach a larger vocabulary.
    pub filler_words: usize,
    /// Multiplier of the random weights (larger → peakier logits).
    pub weight_scale: f64,
}

impl TinyConfig {
    /// Vision 32 px / patch 8 / width 32 / 2 layers; text width 64 / 3 blocks / 4 heads / 2 KV heads.
    pub fn tiny() -> Self {
        Self {
            image_size: 32,
            patch_size: 8,
            vision_hidden: 32,
            vision_intermediate: 64,
            vision_layers: 2,
            vision_heads: 4,
            text_hidden: 64,
            text_intermediate: 128,
            text_layers: 3,
            text_heads: 4,
            text_kv_heads: 2,
            max_position_embeddings: 512,
            rope_theta: 10_000.0,
            rope_scaling: None,
            vision_feature_layer: FeatureLayer::One(-2),
            select_strategy: SelectStrategy::Default,
            tie_word_embeddings: false,
            layout: WeightLayout::Hub,
            dtype: DType::F32,
            extra_words: Vec::new(),
            filler_words: 0,
            weight_scale: 1.0,
        }
    }

    /// A mid-size model for benchmarks: vision 224 px / patch 14 / width 256 / 6 layers;
    /// text width 512 / 6 blocks / 8 heads / 4 KV heads, ~8k vocabulary.
    pub fn mid() -> Self {
        Self {
            image_size: 224,
            patch_size: 14,
            vision_hidden: 256,
            vision_intermediate: 1024,
            vision_layers: 6,
            vision_heads: 8,
            text_hidden: 512,
            text_intermediate: 1376,
            text_layers: 6,
            text_heads: 8,
            text_kv_heads: 4,
            max_position_embeddings: 2048,
            filler_words: 8000,
            ..Self::tiny()
        }
    }

    /// The vocabulary: `<unk> <s> </s>`, the words, then `<image> <pad>`.
    pub fn vocabulary(&self) -> Vec<String> {
        let mut v: Vec<String> = ["<unk>", "<s>", "</s>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut push = |w: String| {
            if !v.contains(&w) {
                v.push(w);
            }
        };
        for w in BASE_WORDS {
            push(w.to_string());
        }
        for w in &self.extra_words {
            push(w.clone());
        }
        for i in 0..self.filler_words {
            push(format!("w{i}"));
        }
        v.push("<image>".into());
        v.push("<pad>".into());
        v
    }

    /// The `config.json` this shape corresponds to.
    pub fn llava_config(&self) -> LlavaConfig {
        let vocab = self.vocabulary();
        let image_token_index = (vocab.len() - 2) as u32;
        let patches = (self.image_size / self.patch_size).pow(2);
        let seq = match self.select_strategy {
            SelectStrategy::Default => patches,
            SelectStrategy::Full => patches + 1,
        };
        LlavaConfig {
            model_type: "llava".into(),
            vision_config: VisionConfig {
                hidden_size: self.vision_hidden,
                intermediate_size: self.vision_intermediate,
                num_hidden_layers: self.vision_layers,
                num_attention_heads: self.vision_heads,
                image_size: self.image_size,
                patch_size: self.patch_size,
                projection_dim: Some(self.vision_hidden),
                ..VisionConfig::default()
            },
            text_config: TextConfig {
                hidden_size: self.text_hidden,
                intermediate_size: self.text_intermediate,
                num_hidden_layers: self.text_layers,
                num_attention_heads: self.text_heads,
                num_key_value_heads: Some(self.text_kv_heads),
                rms_norm_eps: 1e-5,
                rope_theta: self.rope_theta,
                rope_scaling: self.rope_scaling.clone(),
                vocab_size: vocab.len(),
                max_position_embeddings: self.max_position_embeddings,
                tie_word_embeddings: self.tie_word_embeddings,
                bos_token_id: Some(1),
                eos_token_id: Some(TokenIds::One(2)),
                pad_token_id: Some((vocab.len() - 1) as u32),
                ..TextConfig::default()
            },
            image_token_index,
            projector_hidden_act: Activation::Gelu,
            vision_feature_layer: self.vision_feature_layer.clone(),
            vision_feature_select_strategy: self.select_strategy,
            image_seq_length: seq,
            multimodal_projector_bias: true,
            tie_word_embeddings: None,
            dtype: None,
            torch_dtype: None,
        }
    }
}

/// Every tensor (name without layout prefix, part, shape) of a checkpoint for `cfg`.
/// `part` is 0 vision, 1 projector, 2 decoder, 3 LM head.
fn tensor_specs(cfg: &LlavaConfig) -> Vec<(String, u8, Vec<usize>)> {
    let v = &cfg.vision_config;
    let t = &cfg.text_config;
    let mut s = Vec::new();
    let (vh, vi) = (v.hidden_size, v.intermediate_size);
    s.push(("embeddings.class_embedding".to_string(), 0, vec![vh]));
    s.push((
        "embeddings.patch_embedding.weight".into(),
        0,
        vec![vh, 3, v.patch_size, v.patch_size],
    ));
    s.push((
        "embeddings.position_embedding.weight".into(),
        0,
        vec![v.num_patches() + 1, vh],
    ));
    for n in ["pre_layrnorm", "post_layernorm"] {
        s.push((format!("{n}.weight"), 0, vec![vh]));
        s.push((format!("{n}.bias"), 0, vec![vh]));
    }
    for l in 0..v.num_hidden_layers {
        let p = format!("encoder.layers.{l}");
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            s.push((format!("{p}.self_attn.{n}.weight"), 0, vec![vh, vh]));
            s.push((format!("{p}.self_attn.{n}.bias"), 0, vec![vh]));
        }
        for n in ["layer_norm1", "layer_norm2"] {
            s.push((format!("{p}.{n}.weight"), 0, vec![vh]));
            s.push((format!("{p}.{n}.bias"), 0, vec![vh]));
        }
        s.push((format!("{p}.mlp.fc1.weight"), 0, vec![vi, vh]));
        s.push((format!("{p}.mlp.fc1.bias"), 0, vec![vi]));
        s.push((format!("{p}.mlp.fc2.weight"), 0, vec![vh, vi]));
        s.push((format!("{p}.mlp.fc2.bias"), 0, vec![vh]));
    }
    let th = t.hidden_size;
    s.push((
        "linear_1.weight".into(),
        1,
        vec![th, cfg.projector_in_dim()],
    ));
    s.push(("linear_2.weight".into(), 1, vec![th, th]));
    if cfg.multimodal_projector_bias {
        s.push(("linear_1.bias".into(), 1, vec![th]));
        s.push(("linear_2.bias".into(), 1, vec![th]));
    }
    let (hd, nq, nkv, ti) = (
        t.head_dim(),
        t.num_attention_heads,
        t.kv_heads(),
        t.intermediate_size,
    );
    s.push(("embed_tokens.weight".into(), 2, vec![t.vocab_size, th]));
    s.push(("norm.weight".into(), 2, vec![th]));
    for l in 0..t.num_hidden_layers {
        let p = format!("layers.{l}");
        s.push((format!("{p}.self_attn.q_proj.weight"), 2, vec![nq * hd, th]));
        s.push((
            format!("{p}.self_attn.k_proj.weight"),
            2,
            vec![nkv * hd, th],
        ));
        s.push((
            format!("{p}.self_attn.v_proj.weight"),
            2,
            vec![nkv * hd, th],
        ));
        s.push((format!("{p}.self_attn.o_proj.weight"), 2, vec![th, nq * hd]));
        s.push((format!("{p}.mlp.gate_proj.weight"), 2, vec![ti, th]));
        s.push((format!("{p}.mlp.up_proj.weight"), 2, vec![ti, th]));
        s.push((format!("{p}.mlp.down_proj.weight"), 2, vec![th, ti]));
        s.push((format!("{p}.input_layernorm.weight"), 2, vec![th]));
        s.push((format!("{p}.post_attention_layernorm.weight"), 2, vec![th]));
    }
    if !cfg.tied_embeddings() {
        s.push(("weight".into(), 3, vec![t.vocab_size, th]));
    }
    s
}

/// Random values for one tensor: norms around 1, biases and embeddings small, matrices scaled
/// by `1 / sqrt(fan_in)`.
fn init_values(name: &str, shape: &[usize], scale: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let is_norm = name.contains("norm") || name.contains("layrnorm");
    let (mean, std) = if is_norm && name.ends_with("weight") {
        (1.0, 0.1)
    } else if name.ends_with("bias") {
        (0.0, 0.1 * scale)
    } else if name.contains("embed_tokens") || name.contains("class_embedding") {
        (0.0, 1.0)
    } else if name.contains("position_embedding") {
        (0.0, 0.5)
    } else {
        let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
        (0.0, scale / (fan_in as f64).sqrt())
    };
    let dist = Normal::new(mean, std).expect("finite std");
    (0..n).map(|_| rng.sample(dist) as f32).collect()
}

/// The random weights of a checkpoint for `cfg`, named in `layout`, stored as `dtype`.
pub fn random_weights(
    cfg: &LlavaConfig,
    layout: WeightLayout,
    dtype: DType,
    scale: f64,
    seed: u64,
) -> Result<HashMap<String, Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = HashMap::new();
    for (name, part, shape) in tensor_specs(cfg) {
        let prefix = match part {
            0 => layout.vision_prefix(),
            1 => layout.projector_prefix(),
            2 => layout.decoder_prefix(),
            _ => layout.lm_head_prefix(),
        };
        let data = init_values(&name, &shape, scale, &mut rng);
        let t = Tensor::from_vec(data, shape.as_slice(), &Device::Cpu)?.to_dtype(dtype)?;
        out.insert(format!("{prefix}.{name}"), t);
    }
    Ok(out)
}

/// Gives every variable of `varmap` (as created by building [`crate::LlavaModel::new`] on
/// `VarBuilder::from_varmap`) the random initial value a checkpoint written with the same
/// arguments would hold. `VarBuilder::get` creates variables zero-initialised, which would make
/// training start from a symmetric point; call this after building the model.
pub fn init_varmap(
    varmap: &candle_nn::VarMap,
    cfg: &LlavaConfig,
    layout: WeightLayout,
    scale: f64,
    seed: u64,
) -> Result<()> {
    let weights = random_weights(cfg, layout, DType::F32, scale, seed)?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Input("the VarMap lock is poisoned".into()))?;
    for (name, var) in data.iter() {
        let Some(w) = weights.get(name) else {
            return Err(Error::Input(format!(
                "variable {name:?} is not part of a LLaVA checkpoint in layout {layout:?}"
            )));
        };
        var.set(&w.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Json {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

fn tok_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer {
        path: Some(path.to_path_buf()),
        msg: e.to_string(),
    }
}

/// Writes `tokenizer.json` for a vocabulary whose first three entries are `<unk> <s> </s>`.
pub fn write_tokenizer(dir: &Path, vocab: &[String]) -> Result<()> {
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    use tokenizers::processors::template::TemplateProcessing;
    use tokenizers::{AddedToken, Tokenizer};

    let vocab_path = dir.join(".vocab.json");
    let map: BTreeMap<&str, u32> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i as u32))
        .collect();
    write_json(
        &vocab_path,
        &serde_json::to_value(&map).map_err(|e| tok_err(&vocab_path, e))?,
    )?;
    let model = WordLevel::from_file(&vocab_path.to_string_lossy(), "<unk>".into())
        .map_err(|e| tok_err(&vocab_path, e))?;
    let _ = std::fs::remove_file(&vocab_path);
    let mut tok = Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(Whitespace {}));
    let post = TemplateProcessing::builder()
        .try_single("<s> $A")
        .map_err(|e| tok_err(dir, e))?
        .special_tokens(vec![("<s>", 1u32)])
        .build()
        .map_err(|e| tok_err(dir, e))?;
    tok.with_post_processor(Some(post));
    let specials: Vec<AddedToken> = ["<unk>", "<s>", "</s>", "<image>", "<pad>"]
        .iter()
        .map(|s| AddedToken::from(*s, true))
        .collect();
    tok.add_special_tokens(&specials);
    let path = dir.join("tokenizer.json");
    tok.save(&path, false).map_err(|e| tok_err(&path, e))
}

/// Serialises a config in Hugging Face's `config.json` form.
pub fn config_json(cfg: &LlavaConfig, dtype: DType) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(cfg).map_err(|e| Error::Json {
        path: "config.json".into(),
        msg: e.to_string(),
    })?;
    let dt = match dtype {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        _ => "float32",
    };
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "architectures".into(),
            serde_json::json!(["LlavaForConditionalGeneration"]),
        );
        o.insert("torch_dtype".into(), serde_json::json!(dt));
        o.insert("ignore_index".into(), serde_json::json!(-100));
    }
    Ok(v)
}

/// Writes a random LLaVA checkpoint of shape `tiny` into `dir` (created if needed).
pub fn write_tiny_llava(dir: &Path, tiny: &TinyConfig, seed: u64) -> Result<LlavaConfig> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut cfg = tiny.llava_config();
    cfg.validate(None)?;
    write_json(&dir.join("config.json"), &config_json(&cfg, tiny.dtype)?)?;
    let weights = random_weights(&cfg, tiny.layout, tiny.dtype, tiny.weight_scale, seed)?;
    let st = dir.join("model.safetensors");
    candle_core::safetensors::save(&weights, &st).map_err(|e| Error::Safetensors {
        path: st.clone(),
        msg: e.to_string(),
    })?;
    let vocab = tiny.vocabulary();
    write_tokenizer(dir, &vocab)?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &serde_json::json!({
            "add_bos_token": true,
            "add_eos_token": false,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "model_max_length": tiny.max_position_embeddings,
            "tokenizer_class": "LlamaTokenizer",
            "processor_class": "LlavaProcessor",
            "chat_template": LLAVA15_CHAT_TEMPLATE,
        }),
    )?;
    write_json(
        &dir.join("preprocessor_config.json"),
        &serde_json::json!({
            "crop_size": {"height": tiny.image_size, "width": tiny.image_size},
            "do_center_crop": true,
            "do_convert_rgb": true,
            "do_normalize": true,
            "do_rescale": true,
            "do_resize": true,
            "image_mean": CLIP_MEAN,
            "image_std": CLIP_STD,
            "image_processor_type": "CLIPImageProcessor",
            "processor_class": "LlavaProcessor",
            "resample": 3,
            "rescale_factor": 1.0 / 255.0,
            "size": {"shortest_edge": tiny.image_size},
        }),
    )?;
    // Keep the returned config identical to what a reader of config.json gets.
    cfg = LlavaConfig::from_file(dir.join("config.json"))?;
    Ok(cfg)
}
