//! Training `tiny-llava-smol`: the project's synthetic-world vision tower, a new MLP projector,
//! and the real pretrained SmolLM2-135M-Instruct decoder, prompted with its own chat template.
//!
//! This is LLaVA's recipe on our world: the vision tower is the one `tiny-llava-synth` pretrained
//! (frozen here), the projector maps its 9 patch features into the language model's 576-wide
//! embedding space, and the language model stays frozen — optionally with low-rank adapters
//! (LoRA) on its blocks' dense layers, which are merged into the weights when the checkpoint is
//! assembled. The embedding matrix and the (tied) LM head are never trained, so text grounding
//! decodes through the real head.
//!
//! One training step: scenes `first_scene + step·batch ..` of the train split are rendered and
//! preprocessed; the chat-template prefix shared by every example (system turn, user header and
//! instruction) runs once through the decoder (batch 1, with gradients, because adapters change
//! its keys and values) and its key/value cache is broadcast to the batch; then
//! `[image tokens][end of turn, assistant header][caption][<|im_end|>]` runs for the whole batch (right-padded) and
//! the cross-entropy of the caption and end tokens is minimised. This is exactly a full forward of
//! the concatenated sequence, only cheaper.
//!
//! The trainer saves its whole state (trainable tensors, both optimisers' moments, the step and
//! the curves) every few minutes; [`SmolTrainer::resume`] continues from it and, because every
//! step's data follows from its index and the seed, reaches the same weights as an uninterrupted
//! run with the same thread count.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{ParamsAdamW, VarBuilder, VarMap};
use cox_model::gguf::CausalLm;
use cox_model::nn::LowRank;
use cox_model::{
    ImageEncoder, ImageProcessor, KvCache, LayerSel, LlavaConfig, Logits, Projector,
    ResidualCapture,
};
use cox_synth::{generate_range, Scene, SceneFactors, Split, SynthConfig};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::data::{scene_pixels, PROMPT};
use crate::error::{Result, TrainError};
use crate::eval::{EvalReport, Tally};
use crate::optim::ResumableAdamW;
use crate::schedule::lr_at;
use crate::train::clip_gradients;

/// SmolLM2's default system turn, which its chat template inserts when a conversation has none.
pub const SMOL_SYSTEM: &str =
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";
/// The image placeholder added to SmolLM2's vocabulary (id = the base vocabulary's size).
pub const SMOL_IMAGE_TOKEN: &str = "<image>";
/// The token that ends an assistant turn (SmolLM2's EOS).
pub const SMOL_END: &str = "<|im_end|>";

/// The user turn of every example in SmolLM2's chat template, up to the image: the default
/// system turn, then the instruction. The instruction comes before the image so that everything up
/// to the image is shared by all examples (one forward pass per training step and one cached
/// prefix for every caption) and only `<|im_end|>\n<|im_start|>assistant\n` follows the image.
pub fn smol_prompt_before_image() -> String {
    format!("{SMOL_SYSTEM}<|im_start|>user\n{PROMPT}\n")
}

/// What follows the image tokens: the end of the user turn and the assistant's header.
pub fn smol_prompt_after_image() -> String {
    format!("{SMOL_END}\n<|im_start|>assistant\n")
}

/// Everything that defines a run; a resumed run must match it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmolConfig {
    /// Seed of the projector's and adapters' initial values.
    pub seed: u64,
    /// World seed of the training scenes (`cox_synth` train split).
    pub world_seed: u64,
    /// Optimiser steps.
    pub steps: usize,
    /// Scenes per step.
    pub batch_size: usize,
    /// Peak learning rate of the projector.
    pub lr_projector: f64,
    /// Peak learning rate of the adapters.
    pub lr_adapters: f64,
    /// Warmup steps.
    pub warmup: usize,
    /// Final learning rate as a fraction of the peak (cosine decay).
    pub lr_floor: f64,
    /// AdamW weight decay (projector only; adapters use none).
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub clip_norm: f64,
    /// LoRA rank (0: the language model stays exactly as released).
    pub lora_rank: usize,
    /// LoRA `alpha` (the update is scaled by `alpha / rank`).
    pub lora_alpha: f64,
    /// Which dense layers get adapters (suffixes of `layers.N.…` names, e.g. `self_attn.q_proj`).
    pub lora_targets: Vec<String>,
    /// The first training scene.
    pub first_scene: u64,
    /// Greedy-caption this many test scenes every `eval_every` steps (0: never).
    pub eval_scenes: usize,
    /// See `eval_scenes`.
    pub eval_every: usize,
}

impl Default for SmolConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            world_seed: 0,
            steps: 600,
            batch_size: 16,
            lr_projector: 1e-3,
            lr_adapters: 4e-4,
            warmup: 40,
            lr_floor: 0.05,
            weight_decay: 0.0,
            clip_norm: 1.0,
            lora_rank: 8,
            lora_alpha: 16.0,
            lora_targets: [
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.o_proj",
                "mlp.gate_proj",
                "mlp.up_proj",
                "mlp.down_proj",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            first_scene: 0,
            eval_scenes: 50,
            eval_every: 200,
        }
    }
}

impl SmolConfig {
    /// Checks every setting before any work starts.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, value: String, expected: &'static str| {
            Err(TrainError::InvalidConfig {
                field,
                value,
                expected,
            })
        };
        if self.steps == 0 {
            return bad("steps", "0".into(), "at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "at least 1");
        }
        for (f, v) in [
            ("lr_projector", self.lr_projector),
            ("lr_adapters", self.lr_adapters),
            ("clip_norm", self.clip_norm),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(f, v.to_string(), "a positive number");
            }
        }
        if !(0.0..=1.0).contains(&self.lr_floor) {
            return bad("lr_floor", self.lr_floor.to_string(), "within [0, 1]");
        }
        if self.lora_rank > 0 && self.lora_targets.is_empty() {
            return bad(
                "lora_targets",
                "[]".into(),
                "at least one layer when lora_rank > 0",
            );
        }
        if self.eval_scenes > 0 && self.eval_every == 0 {
            return bad("eval_every", "0".into(), "at least 1 when eval_scenes > 0");
        }
        Ok(())
    }
}

/// One point of the training curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmolPoint {
    /// Step (1-based).
    pub step: usize,
    /// Projector learning rate of the step.
    pub lr: f64,
    /// Mean cross-entropy of the step's caption tokens.
    pub loss: f32,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
    /// Seconds of training so far (summed over resumed parts).
    pub elapsed_s: f64,
}

/// A periodic evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmolEval {
    /// After this many steps.
    pub step: usize,
    /// The scores.
    pub report: EvalSummary,
}

/// The figures of an [`EvalReport`] that the curves keep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Scenes.
    pub scenes: usize,
    /// Shape accuracy.
    pub shape: f64,
    /// Colour accuracy.
    pub colour: f64,
    /// Size accuracy.
    pub size: f64,
    /// Position accuracy.
    pub position: f64,
    /// Exact caption rate.
    pub exact_match: f64,
}

impl From<&EvalReport> for EvalSummary {
    fn from(r: &EvalReport) -> Self {
        Self {
            scenes: r.scenes,
            shape: r.shape,
            colour: r.colour,
            size: r.size,
            position: r.position,
            exact_match: r.exact_match,
        }
    }
}

/// What `state/progress.json` holds besides the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    config: SmolConfig,
    step: usize,
    curve: Vec<SmolPoint>,
    evals: Vec<SmolEval>,
    elapsed_s: f64,
    /// CPU seconds (user + system) of the training process(es), summed over resumed parts.
    cpu_s: f64,
}

/// A trainable low-rank adapter of one dense layer.
struct Adapter {
    /// `layers.N.self_attn.q_proj` and so on.
    name: String,
    a: Var,
    b: Var,
}

/// The trainer.
pub struct SmolTrainer {
    cfg: SmolConfig,
    dir: PathBuf,
    lm: CausalLm,
    encoder: ImageEncoder,
    processor: ImageProcessor,
    llava_config: LlavaConfig,
    config_json: serde_json::Value,
    projector: Projector,
    projector_vars: Vec<(String, Var)>,
    adapters: Vec<Adapter>,
    opt_projector: ResumableAdamW,
    opt_adapters: Option<ResumableAdamW>,
    prefix_ids: Vec<u32>,
    suffix_ids: Vec<u32>,
    end_id: u32,
    progress: Progress,
}

/// CPU seconds this process has used (user + system, from `/proc/self/stat`; 0 where that file
/// does not exist).
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The `config.json` of tiny-llava-smol: the tower's vision config, an MLP projector into the
/// language model's width, and the language model's own text config with one more vocabulary row
/// (`<image>`).
pub fn smol_llava_config(
    tower: &LlavaConfig,
    lm_config_json: &serde_json::Value,
) -> Result<(serde_json::Value, LlavaConfig)> {
    let mut text = lm_config_json.clone();
    let vocab = text["vocab_size"].as_u64().unwrap_or(0) as usize;
    text["vocab_size"] = (vocab + 1).into();
    if let Some(o) = text.as_object_mut() {
        o.remove("architectures");
        o.remove("dtype");
        o.remove("torch_dtype");
        o.remove("use_cache");
    }
    let vision = serde_json::to_value(&tower.vision_config)
        .map_err(|e| TrainError::Model(cox_model::Error::Input(format!("vision config: {e}"))))?;
    let image_seq_length = tower.image_seq_length;
    let v = serde_json::json!({
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "image_token_index": vocab,
        "image_seq_length": image_seq_length,
        "projector_hidden_act": "gelu",
        "multimodal_projector_bias": true,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "ignore_index": -100,
        "tie_word_embeddings": true,
        "torch_dtype": "float32",
        "text_config": text,
        "vision_config": vision,
    });
    let parsed = LlavaConfig::from_json_str(&v.to_string(), None)?;
    Ok((v, parsed))
}

/// `dir/state/progress.json`.
fn read_progress(dir: &Path) -> Result<Progress> {
    let p = dir.join("state").join("progress.json");
    let text = std::fs::read_to_string(&p).map_err(|e| io_err(&p, e))?;
    serde_json::from_str(&text).map_err(|e| {
        TrainError::Model(cox_model::Error::Json {
            path: p.clone(),
            msg: e.to_string(),
        })
    })
}

fn io_err(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::io(path, e)
}

impl SmolTrainer {
    /// A fresh run writing into `dir`: the tower (and its processor) from the LLaVA checkpoint in
    /// `tower_dir`, the language model from the Hugging Face Llama directory `lm_dir`.
    pub fn new(dir: &Path, tower_dir: &Path, lm_dir: &Path, cfg: &SmolConfig) -> Result<Self> {
        cfg.validate()?;
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let tower_llava = cox_model::Llava::load(
            &tower_dir.display().to_string(),
            &cox_model::LoadOptions::default(),
        )?;
        let processor = tower_llava.processor.clone();
        let mut lm = CausalLm::load(lm_dir, DType::F32, &Device::Cpu)?;
        let lm_json: serde_json::Value = {
            let p = lm_dir.join("config.json");
            let t = std::fs::read_to_string(&p).map_err(|e| io_err(&p, e))?;
            serde_json::from_str(&t).map_err(|e| {
                TrainError::Model(cox_model::Error::Json {
                    path: p.clone(),
                    msg: e.to_string(),
                })
            })?
        };
        let (config_json, llava_config) = smol_llava_config(tower_llava.model.config(), &lm_json)?;
        let encoder = tower_llava.model.image_encoder().clone();

        // The projector, as the checkpoint will hold it, on variables with seeded values
        // (torch's `nn.Linear` default: uniform within ±1/√fan_in for weights and biases).
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let projector = Projector::load(vb.pp("multi_modal_projector"), &llava_config)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut projector_vars: Vec<(String, Var)> = {
            let data = varmap
                .data()
                .lock()
                .map_err(|_| TrainError::Model(cox_model::Error::Input("VarMap lock".into())))?;
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        projector_vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, var) in &projector_vars {
            let fan_in = if name.contains("linear_1") {
                llava_config.projector_in_dim()
            } else {
                llava_config.text_config.hidden_size
            };
            let bound = 1.0 / (fan_in as f64).sqrt();
            let n = var.elem_count();
            let vals: Vec<f32> = (0..n)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            var.set(&Tensor::from_vec(vals, var.shape(), &Device::Cpu)?)?;
        }

        // Adapters: A uniform within ±1/√fan_in (PEFT's kaiming-uniform with a = √5), B zero, so
        // training starts from the released language model.
        let mut adapters = Vec::new();
        if cfg.lora_rank > 0 {
            let scale = cfg.lora_alpha / cfg.lora_rank as f64;
            for (name, lin) in lm.model.linears_mut() {
                if !cfg.lora_targets.iter().any(|t| name.ends_with(t.as_str())) {
                    continue;
                }
                let (i, o, r) = (lin.in_dim(), lin.out_dim(), cfg.lora_rank);
                let bound = 1.0 / (i as f64).sqrt();
                let vals: Vec<f32> = (0..r * i)
                    .map(|_| rng.random_range(-bound..bound) as f32)
                    .collect();
                let a = Var::from_tensor(&Tensor::from_vec(vals, (r, i), &Device::Cpu)?)?;
                let b = Var::zeros((o, r), DType::F32, &Device::Cpu)?;
                lin.set_adapter(Some(LowRank {
                    a: a.as_tensor().clone(),
                    b: b.as_tensor().clone(),
                    scale,
                }))?;
                adapters.push(Adapter { name, a, b });
            }
            if adapters.is_empty() {
                return Err(TrainError::InvalidConfig {
                    field: "lora_targets",
                    value: format!("{:?}", cfg.lora_targets),
                    expected: "names of dense layers of the decoder blocks",
                });
            }
        }
        let opt_projector = ResumableAdamW::new(
            projector_vars.iter().map(|(_, v)| v.clone()).collect(),
            ParamsAdamW {
                lr: cfg.lr_projector,
                weight_decay: cfg.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        let opt_adapters = if adapters.is_empty() {
            None
        } else {
            Some(ResumableAdamW::new(
                adapters
                    .iter()
                    .flat_map(|a| [a.a.clone(), a.b.clone()])
                    .collect(),
                ParamsAdamW {
                    lr: cfg.lr_adapters,
                    weight_decay: 0.0,
                    ..ParamsAdamW::default()
                },
            )?)
        };
        let prefix_ids = lm.encode(&smol_prompt_before_image())?;
        let suffix_ids = lm.encode(&smol_prompt_after_image())?;
        let end = lm.encode(SMOL_END)?;
        let [end_id] = end[..] else {
            return Err(TrainError::Tokenization {
                caption: SMOL_END.into(),
                msg: "the language model's tokenizer lacks <|im_end|> as one token".into(),
            });
        };
        Ok(Self {
            cfg: cfg.clone(),
            dir: dir.to_path_buf(),
            lm,
            encoder,
            processor,
            llava_config,
            config_json,
            projector,
            projector_vars,
            adapters,
            opt_projector,
            opt_adapters,
            prefix_ids,
            suffix_ids,
            end_id,
            progress: Progress {
                config: cfg.clone(),
                step: 0,
                curve: Vec::new(),
                evals: Vec::new(),
                elapsed_s: 0.0,
                cpu_s: 0.0,
            },
        })
    }

    /// The settings of the run saved in `dir/state`.
    pub fn saved_config(dir: &Path) -> Result<SmolConfig> {
        Ok(read_progress(dir)?.config)
    }

    /// Continues the run saved in `dir/state` (its settings must equal `cfg`).
    pub fn resume(dir: &Path, tower_dir: &Path, lm_dir: &Path, cfg: &SmolConfig) -> Result<Self> {
        let state = dir.join("state");
        let progress = read_progress(dir)?;
        if &progress.config != cfg {
            return Err(TrainError::InvalidConfig {
                field: "resume",
                value: format!("{:?}", cfg),
                expected: "the settings the saved run was started with (see state/progress.json)",
            });
        }
        let mut t = Self::new(dir, tower_dir, lm_dir, cfg)?;
        let tensors =
            candle_core::safetensors::load(state.join("trainable.safetensors"), &Device::Cpu)?;
        for (name, var) in t.trainable() {
            let x = tensors
                .get(&name)
                .ok_or_else(|| TrainError::OptimiserState {
                    path: state.join("trainable.safetensors"),
                    msg: format!("a tensor {name}"),
                })?;
            var.set(x)?;
        }
        t.opt_projector
            .load_state(&state.join("optimizer_projector.safetensors"))?;
        if let Some(o) = t.opt_adapters.as_mut() {
            o.load_state(&state.join("optimizer_adapters.safetensors"))?;
        }
        t.progress = progress;
        Ok(t)
    }

    /// Steps taken so far.
    pub fn step(&self) -> usize {
        self.progress.step
    }

    /// The curve so far.
    pub fn curve(&self) -> &[SmolPoint] {
        &self.progress.curve
    }

    /// The periodic held-out evaluations so far.
    pub fn evals(&self) -> &[SmolEval] {
        &self.progress.evals
    }

    /// Every trainable tensor under its checkpoint name: the projector's
    /// (`multi_modal_projector.linear_1.weight`, …) and the adapters'
    /// (`language_model.model.layers.N.self_attn.q_proj.lora_A.weight` / `lora_B.weight`, PEFT's
    /// names).
    fn trainable(&self) -> Vec<(String, Var)> {
        let mut out: Vec<(String, Var)> = self.projector_vars.clone();
        for a in &self.adapters {
            out.push((
                format!("language_model.model.{}.lora_A.weight", a.name),
                a.a.clone(),
            ));
            out.push((
                format!("language_model.model.{}.lora_B.weight", a.name),
                a.b.clone(),
            ));
        }
        out
    }

    /// The configuration of the assembled checkpoint.
    pub fn llava_config(&self) -> &LlavaConfig {
        &self.llava_config
    }

    /// Scenes of step `step`.
    fn scenes(&self, step: usize) -> Result<Vec<Scene>> {
        let b = self.cfg.batch_size as u64;
        let first = self.cfg.first_scene + step as u64 * b;
        Ok(generate_range(
            &SynthConfig::default(),
            self.cfg.world_seed,
            Split::Train,
            first..first + b,
        )?)
    }

    /// Projected image tokens `[b, n, 576]` for scenes (the tower frozen: its features are
    /// constants, gradients reach only the projector).
    fn image_tokens(&self, factors: &[&SceneFactors]) -> Result<Tensor> {
        let mut px = Vec::new();
        let mut side = 0;
        for f in factors {
            let scene = Scene {
                id: String::new(),
                split: Split::Test,
                index: 0,
                seed: 0,
                factors: (*f).clone(),
                canonical: String::new(),
                captions: Vec::new(),
            };
            let p = scene_pixels(&self.processor, &scene)?;
            side = ((p.len() / 3) as f64).sqrt() as usize;
            px.extend(p);
        }
        let pixels = Tensor::from_vec(px, (factors.len(), 3, side, side), &Device::Cpu)?;
        let feats = self.encoder.vision_features(&pixels)?.detach();
        Ok(self.projector.forward(&feats)?)
    }

    /// The shared prefix through the decoder (batch 1), as a cache.
    fn prefix_cache(&self) -> Result<KvCache> {
        let ids = Tensor::new(self.prefix_ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let mut cache = self.lm.model.new_cache();
        self.lm.model.forward_ids(
            &ids,
            Some(&mut cache),
            &ResidualCapture::none(),
            Logits::None,
        )?;
        Ok(cache)
    }

    /// Mean cross-entropy of the caption and end tokens of `scenes` under teacher forcing.
    pub fn loss(&self, scenes: &[Scene]) -> Result<(Tensor, usize)> {
        let b = scenes.len();
        let factors: Vec<&SceneFactors> = scenes.iter().map(|s| &s.factors).collect();
        let img = self.image_tokens(&factors)?;
        let n_img = img.dim(1)?;
        let mut rows: Vec<Vec<u32>> = Vec::with_capacity(b);
        for s in scenes {
            let cap = self.lm.encode(&s.canonical)?;
            if cap.is_empty() {
                return Err(TrainError::Tokenization {
                    caption: s.canonical.clone(),
                    msg: "empty".into(),
                });
            }
            let mut r = self.suffix_ids.clone();
            r.extend(cap);
            r.push(self.end_id);
            rows.push(r);
        }
        let len = rows.iter().map(Vec::len).max().unwrap_or(0);
        let seq = n_img + len;
        let mut ids = Vec::with_capacity(b * len);
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        let first_answer = self.suffix_ids.len();
        for (r, row) in rows.iter().enumerate() {
            for (t, &token) in row.iter().enumerate().skip(first_answer) {
                // The state at sequence position n_img + t - 1 predicts token t of the row.
                positions.push((r * seq + n_img + t - 1) as u32);
                targets.push(token);
            }
            ids.extend(row.iter().copied());
            ids.extend(std::iter::repeat_n(self.end_id, len - row.len()));
        }
        let ids = Tensor::from_vec(ids, (b, len), &Device::Cpu)?;
        let text = self.lm.model.embed(&ids)?;
        let embeds = Tensor::cat(&[&img, &text], 1)?;
        let mut cache = self.prefix_cache()?.broadcast_batch(b)?;
        let out = self.lm.model.forward_embeds(
            &embeds,
            Some(&mut cache),
            &ResidualCapture::new([LayerSel::FinalNorm]),
            Logits::None,
        )?;
        let h = self.llava_config.text_config.hidden_size;
        let n = positions.len();
        let pos = Tensor::from_vec(positions, n, &Device::Cpu)?;
        let states = out.captured[0]
            .reshape((b * seq, h))?
            .index_select(&pos, 0)?;
        let logits = self.lm.model.logits(&states)?;
        let targets = Tensor::from_vec(targets, n, &Device::Cpu)?;
        Ok((candle_nn::loss::cross_entropy(&logits, &targets)?, n))
    }

    /// Greedy caption (at most `max_new` tokens) of each scene, and whether it ended with
    /// `<|im_end|>`.
    pub fn caption(
        &self,
        factors: &[&SceneFactors],
        max_new: usize,
    ) -> Result<Vec<(String, bool)>> {
        let prefix = self.prefix_cache()?;
        let suffix = Tensor::new(self.suffix_ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let suffix = self.lm.model.embed(&suffix)?;
        let mut out = Vec::with_capacity(factors.len());
        for f in factors {
            let img = self.image_tokens(&[*f])?.detach();
            let mut cache = prefix.clone();
            let mut input = Tensor::cat(&[&img, &suffix], 1)?;
            let mut ids = Vec::new();
            let mut eos = false;
            for _ in 0..max_new {
                let o = self.lm.model.forward_embeds(
                    &input,
                    Some(&mut cache),
                    &ResidualCapture::none(),
                    Logits::Last,
                )?;
                let logits = o
                    .logits
                    .ok_or_else(|| cox_model::Error::Input("no logits".into()))?
                    .flatten_all()?;
                let next = logits.argmax(0)?.to_scalar::<u32>()?;
                if next == self.end_id {
                    eos = true;
                    break;
                }
                ids.push(next);
                let t = Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?;
                input = self.lm.model.embed(&t)?.detach();
            }
            let text =
                self.lm
                    .tokenizer
                    .decode(&ids, true)
                    .map_err(|e| cox_model::Error::Tokenizer {
                        path: None,
                        msg: e.to_string(),
                    })?;
            out.push((text.trim().to_string(), eos));
        }
        Ok(out)
    }

    /// Captions test scenes `0..n` and scores them with the canonical grammar.
    pub fn evaluate(&self, n: usize) -> Result<EvalReport> {
        let start = Instant::now();
        let scenes = cox_synth::generate_split(
            &SynthConfig::default(),
            self.cfg.world_seed,
            Split::Test,
            n,
        )?;
        let mut tally = Tally::default();
        for s in &scenes {
            let (text, eos) = self.caption(&[&s.factors], 48)?.remove(0);
            tally.add(&s.factors, &text, eos);
        }
        Ok(tally.report(start.elapsed().as_secs_f64()))
    }

    /// Trains until `cfg.steps` or until `stop_after` seconds of this call have passed (then the
    /// state is saved and `Ok(false)` says the run is not finished). Saves the state every
    /// `save_every_s` seconds. `on_step` sees every step's curve point and, after an evaluation,
    /// its scores.
    pub fn train(
        &mut self,
        save_every_s: f64,
        stop_after: Option<f64>,
        on_step: &mut dyn FnMut(&SmolPoint, Option<&EvalSummary>),
    ) -> Result<bool> {
        self.train_until(save_every_s, stop_after, None, on_step)
    }

    /// [`Self::train`] that also stops (saving its state) once `stop_at_step` steps are done.
    pub fn train_until(
        &mut self,
        save_every_s: f64,
        stop_after: Option<f64>,
        stop_at_step: Option<usize>,
        on_step: &mut dyn FnMut(&SmolPoint, Option<&EvalSummary>),
    ) -> Result<bool> {
        let started = Instant::now();
        let cpu0 = cpu_seconds();
        let elapsed0 = self.progress.elapsed_s;
        let cpu_before = self.progress.cpu_s;
        let mut last_save = Instant::now();
        let vars: Vec<Var> = self.trainable().into_iter().map(|(_, v)| v).collect();
        while self.progress.step < self.cfg.steps {
            let step = self.progress.step;
            let scenes = self.scenes(step)?;
            let lr_p = lr_at(
                step,
                self.cfg.warmup,
                self.cfg.steps,
                self.cfg.lr_projector,
                self.cfg.lr_floor,
            );
            let lr_a = lr_at(
                step,
                self.cfg.warmup,
                self.cfg.steps,
                self.cfg.lr_adapters,
                self.cfg.lr_floor,
            );
            let (loss, _) = self.loss(&scenes)?;
            let l = loss.to_scalar::<f32>()?;
            if !l.is_finite() {
                return Err(TrainError::Diverged { step, loss: l });
            }
            let mut grads = loss.backward()?;
            let grad_norm = clip_gradients(&mut grads, &vars, self.cfg.clip_norm)?;
            self.opt_projector.set_learning_rate(lr_p);
            self.opt_projector.step(&grads)?;
            if let Some(o) = self.opt_adapters.as_mut() {
                o.set_learning_rate(lr_a);
                o.step(&grads)?;
            }
            drop(grads);
            self.progress.step += 1;
            self.progress.elapsed_s = elapsed0 + started.elapsed().as_secs_f64();
            self.progress.cpu_s = cpu_before + cpu_seconds() - cpu0;
            self.progress.curve.push(SmolPoint {
                step: step + 1,
                lr: lr_p,
                loss: l,
                grad_norm,
                elapsed_s: self.progress.elapsed_s,
            });
            let s = self.progress.step;
            if self.cfg.eval_scenes > 0 && (s % self.cfg.eval_every == 0 || s == self.cfg.steps) {
                let r = self.evaluate(self.cfg.eval_scenes)?;
                tracing::info!(
                    step = s,
                    shape = r.shape,
                    colour = r.colour,
                    size = r.size,
                    position = r.position,
                    exact = r.exact_match,
                    "eval"
                );
                self.progress.evals.push(SmolEval {
                    step: s,
                    report: EvalSummary::from(&r),
                });
            }
            let point = self.progress.curve.last().expect("pushed above");
            let eval = self
                .progress
                .evals
                .last()
                .filter(|e| e.step == s)
                .map(|e| &e.report);
            on_step(point, eval);
            if last_save.elapsed().as_secs_f64() >= save_every_s || s == self.cfg.steps {
                self.save_state()?;
                last_save = Instant::now();
            }
            let out_of_time = stop_after.is_some_and(|l| started.elapsed().as_secs_f64() >= l);
            let at_step = stop_at_step.is_some_and(|n| s >= n);
            if (out_of_time || at_step) && s < self.cfg.steps {
                self.save_state()?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes `state/` (trainable tensors, optimiser moments, progress) through temporary files
    /// and renames; `progress.json` is written last, so a state whose progress file exists is
    /// complete.
    pub fn save_state(&self) -> Result<()> {
        let state = self.dir.join("state");
        std::fs::create_dir_all(&state).map_err(|e| io_err(&state, e))?;
        let t: HashMap<String, Tensor> = self
            .trainable()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        let p = state.join("trainable.safetensors");
        let tmp = p.with_extension("tmp");
        candle_core::safetensors::save(&t, &tmp)?;
        std::fs::rename(&tmp, &p).map_err(|e| io_err(&p, e))?;
        self.opt_projector
            .save_state(&state.join("optimizer_projector.safetensors"))?;
        if let Some(o) = &self.opt_adapters {
            o.save_state(&state.join("optimizer_adapters.safetensors"))?;
        }
        let p = state.join("progress.json");
        let tmp = p.with_extension("tmp");
        let text = serde_json::to_string(&self.progress)
            .map_err(|e| TrainError::Model(cox_model::Error::Input(format!("progress: {e}"))))?;
        std::fs::write(&tmp, text).map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| io_err(&p, e))?;
        Ok(())
    }

    /// Writes what the project commits of a trained model into `out`: `weights.safetensors`
    /// (the vision tower copied from `tower_dir`, the projector, and the adapters' factors under
    /// PEFT names), `config.json`, the curves (`loss_curve.csv`, `eval_curve.csv`) and
    /// `adapter_config.json` (rank, alpha, targets).
    pub fn write_parts(&self, tower_dir: &Path, out: &Path) -> Result<()> {
        std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
        let tower_file = tower_dir.join("model.safetensors");
        let tower = candle_core::safetensors::load(&tower_file, &Device::Cpu)?;
        let mut t: HashMap<String, Tensor> = tower
            .into_iter()
            .filter(|(k, _)| k.starts_with("vision_tower."))
            .collect();
        for (n, v) in self.trainable() {
            t.insert(n, v.as_tensor().clone());
        }
        candle_core::safetensors::save(&t, out.join("weights.safetensors"))?;
        let cfg = serde_json::to_string_pretty(&self.config_json)
            .map_err(|e| TrainError::Model(cox_model::Error::Input(format!("config: {e}"))))?;
        std::fs::write(out.join("config.json"), cfg).map_err(|e| io_err(out, e))?;
        let adapter = serde_json::json!({
            "r": self.cfg.lora_rank,
            "lora_alpha": self.cfg.lora_alpha,
            "target_modules": self.cfg.lora_targets,
            "peft_type": "LORA",
        });
        std::fs::write(out.join("adapter_config.json"), adapter.to_string())
            .map_err(|e| io_err(out, e))?;
        let pre = tower_dir.join("preprocessor_config.json");
        std::fs::copy(&pre, out.join("preprocessor_config.json")).map_err(|e| io_err(&pre, e))?;
        let p = out.join("loss_curve.csv");
        let mut f = std::fs::File::create(&p).map_err(|e| io_err(&p, e))?;
        writeln!(f, "step,lr,loss,grad_norm,elapsed_s").map_err(|e| io_err(&p, e))?;
        for c in &self.progress.curve {
            writeln!(
                f,
                "{},{},{},{},{:.1}",
                c.step, c.lr, c.loss, c.grad_norm, c.elapsed_s
            )
            .map_err(|e| io_err(&p, e))?;
        }
        let p = out.join("eval_curve.csv");
        let mut f = std::fs::File::create(&p).map_err(|e| io_err(&p, e))?;
        writeln!(f, "step,scenes,shape,colour,size,position,exact_match")
            .map_err(|e| io_err(&p, e))?;
        for e in &self.progress.evals {
            let r = &e.report;
            writeln!(
                f,
                "{},{},{:.4},{:.4},{:.4},{:.4},{:.4}",
                e.step, r.scenes, r.shape, r.colour, r.size, r.position, r.exact_match
            )
            .map_err(|e| io_err(&p, e))?;
        }
        Ok(())
    }

    /// Wall and CPU seconds of training so far (summed over resumed parts).
    pub fn times(&self) -> (f64, f64) {
        (self.progress.elapsed_s, self.progress.cpu_s)
    }
}

/// The chat template of tiny-llava-smol: SmolLM2's (its default system turn included), with a
/// user message's content either a string or a list of `text` and `image` items joined by
/// newlines (`<image>` for an image). coxlmm renders `[text, image]`, the order it was trained on.
pub const SMOL_CHAT_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{ '<|im_start|>' + message['role'] + '\n' }}{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for item in message['content'] %}{% if not loop.first %}{{ '\n' }}{% endif %}{% if item['type'] == 'image' %}{{ '<image>' }}{% else %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The files [`assemble`] writes.
pub const ASSEMBLED_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "preprocessor_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
];

fn read_json_file(path: &Path) -> Result<serde_json::Value> {
    let t = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    serde_json::from_str(&t).map_err(|e| {
        TrainError::Model(cox_model::Error::Json {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
    })
}

/// `W + scale · B A` for `W` `[out, in]`, `A` `[r, in]`, `B` `[out, r]`, accumulated in f64 in a
/// fixed order, so that the merged weights (and the assembled file's hash) do not depend on the
/// machine or its thread count.
pub fn merge_low_rank(w: &Tensor, a: &Tensor, b: &Tensor, scale: f64) -> Result<Tensor> {
    let (o, i) = w.dims2()?;
    let (r, i2) = a.dims2()?;
    let (o2, r2) = b.dims2()?;
    if i != i2 || o != o2 || r != r2 {
        return Err(TrainError::Model(cox_model::Error::Input(format!(
            "adapter A {:?} / B {:?} does not fit a weight {:?}",
            a.dims(),
            b.dims(),
            w.dims()
        ))));
    }
    let wv: Vec<f32> = w.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let av: Vec<f32> = a.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let bv: Vec<f32> = b.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let mut out = vec![0f32; o * i];
    for row in 0..o {
        for col in 0..i {
            let mut acc = 0f64;
            for k in 0..r {
                acc += bv[row * r + k] as f64 * av[k * i + col] as f64;
            }
            out[row * i + col] = (wv[row * i + col] as f64 + scale * acc) as f32;
        }
    }
    Ok(Tensor::from_vec(out, (o, i), &Device::Cpu)?)
}

/// Builds the tiny-llava-smol checkpoint in `out` from the committed parts in `parts` (what
/// [`SmolTrainer::write_parts`] wrote) and the converted SmolLM2-135M-Instruct in `lm_dir`: the
/// language model's tensors under `language_model.model.*` with the adapters merged into their
/// weights and one embedding row appended for `<image>` (the mean of the others, as transformers'
/// `resize_token_embeddings` initialises new rows; the head is tied, so the real head's rows are
/// unchanged), the vision tower and projector from the parts, the tokenizer with `<image>` added,
/// and SmolLM2's chat template extended to images. Returns the files written (all of
/// [`ASSEMBLED_FILES`]).
pub fn assemble(parts: &Path, lm_dir: &Path, out: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let parts_file = parts.join("weights.safetensors");
    let ours = candle_core::safetensors::load(&parts_file, &Device::Cpu)?;
    let adapter_cfg = read_json_file(&parts.join("adapter_config.json"))?;
    let rank = adapter_cfg["r"].as_u64().unwrap_or(0) as f64;
    let alpha = adapter_cfg["lora_alpha"].as_f64().unwrap_or(0.0);
    let scale = if rank > 0.0 { alpha / rank } else { 0.0 };
    let lm_file = lm_dir.join("model.safetensors");
    let lm = candle_core::safetensors::load(&lm_file, &Device::Cpu)?;
    let mut tensors: std::collections::BTreeMap<String, Tensor> = Default::default();
    for (name, t) in &ours {
        if name.contains(".lora_A.") || name.contains(".lora_B.") {
            continue;
        }
        tensors.insert(name.clone(), t.clone());
    }
    let mut merged = 0usize;
    for (name, t) in lm {
        let Some(rest) = name.strip_prefix("model.") else {
            // A tied head is not stored; an untied one would be a different model.
            return Err(TrainError::Model(cox_model::Error::Input(format!(
                "{}: unexpected tensor {name} (a tied SmolLM2 checkpoint holds only model.*)",
                lm_file.display()
            ))));
        };
        let key = format!("language_model.model.{rest}");
        let t = if rest == "embed_tokens.weight" {
            let mean = t.mean_keepdim(0)?;
            Tensor::cat(&[&t, &mean], 0)?
        } else if let Some(stem) = rest.strip_suffix(".weight") {
            let a = ours.get(&format!("language_model.model.{stem}.lora_A.weight"));
            let b = ours.get(&format!("language_model.model.{stem}.lora_B.weight"));
            match (a, b) {
                (Some(a), Some(b)) => {
                    merged += 1;
                    merge_low_rank(&t, a, b, scale)?
                }
                (None, None) => t,
                _ => {
                    return Err(TrainError::Model(cox_model::Error::Input(format!(
                        "{}: {stem} has only one of lora_A and lora_B",
                        parts_file.display()
                    ))))
                }
            }
        } else {
            t
        };
        tensors.insert(key, t);
    }
    let adapters = ours.keys().filter(|k| k.contains(".lora_A.")).count();
    if merged != adapters {
        return Err(TrainError::Model(cox_model::Error::Input(format!(
            "{}: {adapters} adapters but only {merged} matched a language-model weight",
            parts_file.display()
        ))));
    }
    let st = out.join("model.safetensors");
    let tmp = st.with_extension("tmp");
    candle_core::safetensors::save(&tensors.into_iter().collect::<HashMap<_, _>>(), &tmp)?;
    std::fs::rename(&tmp, &st).map_err(|e| io_err(&st, e))?;

    // config.json and preprocessor_config.json come with the parts.
    for f in ["config.json", "preprocessor_config.json"] {
        std::fs::copy(parts.join(f), out.join(f)).map_err(|e| io_err(&parts.join(f), e))?;
    }
    for f in ["generation_config.json", "special_tokens_map.json"] {
        std::fs::copy(lm_dir.join(f), out.join(f)).map_err(|e| io_err(&lm_dir.join(f), e))?;
    }
    // The tokenizer with `<image>` added as a special token (its id: the vocabulary's size).
    let tok_path = lm_dir.join("tokenizer.json");
    let mut tok_json = read_json_file(&tok_path)?;
    let vocab = tok_json["model"]["vocab"]
        .as_object()
        .map(|v| v.len())
        .unwrap_or(0);
    let added = tok_json["added_tokens"].as_array_mut().ok_or_else(|| {
        TrainError::Model(cox_model::Error::Input(format!(
            "{}: no added_tokens list",
            tok_path.display()
        )))
    })?;
    added.push(serde_json::json!({
        "id": vocab, "content": SMOL_IMAGE_TOKEN, "single_word": false, "lstrip": false,
        "rstrip": false, "normalized": false, "special": true
    }));
    std::fs::write(out.join("tokenizer.json"), tok_json.to_string())
        .map_err(|e| io_err(&out.join("tokenizer.json"), e))?;
    let mut tc = read_json_file(&lm_dir.join("tokenizer_config.json"))?;
    tc["chat_template"] = SMOL_CHAT_TEMPLATE.into();
    tc["added_tokens_decoder"][vocab.to_string()] = serde_json::json!({
        "content": SMOL_IMAGE_TOKEN, "single_word": false, "lstrip": false,
        "rstrip": false, "normalized": false, "special": true
    });
    tc["image_token"] = SMOL_IMAGE_TOKEN.into();
    tc["vocab_size"] = (vocab + 1).into();
    std::fs::write(
        out.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tc).unwrap_or_default(),
    )
    .map_err(|e| io_err(&out.join("tokenizer_config.json"), e))?;
    Ok(ASSEMBLED_FILES.iter().map(|s| s.to_string()).collect())
}
