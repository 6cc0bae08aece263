//! The training loop and the checkpoint writer.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Module, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use cox_model::testing::{init_varmap, write_tiny_llava, TinyConfig};
use cox_model::{
    ImageProcessor, LlavaConfig, LlavaModel, LlavaTokenizer, Logits, ResidualCapture, WeightLayout,
};
use cox_synth::{generate_range, Split, SynthConfig};
use rayon::prelude::*;
use serde::Serialize;

use crate::data::{make_batch, model_config, Batch, PROMPT};
use crate::error::{Result, TrainError};
use crate::pretrain::{cell_features, make_cell_batch, shape_accuracy, CellBatch, CellHeads};
use crate::schedule::lr_at;

/// Training settings.
#[derive(Debug, Clone, Serialize)]
pub struct TrainConfig {
    /// Seed of the initial weights and of the training scenes (`cox_synth` train split).
    pub seed: u64,
    /// Optimiser steps (an upper bound when `max_seconds` is set).
    pub steps: usize,
    /// Wall-clock budget in seconds of the whole run (vision pretraining included): after 20
    /// captioning steps their count is shrunk to fit what is left of it.
    pub max_seconds: Option<f64>,
    /// Scenes per step (fresh scenes every step: scene `step * batch + j` of the train split).
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warmup steps (at most a tenth of the steps actually taken).
    pub warmup: usize,
    /// The final learning rate as a fraction of the peak.
    pub lr_floor: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub clip_norm: f64,
    /// The vision tower's input side in pixels (the processor resizes the 64 px scenes to it).
    pub image_size: usize,
    /// Vision patch side (96 px input: 32 → 9 image tokens, one per layout cell; 16 → 36).
    pub patch_size: usize,
    /// The side in pixels of the rendered training scenes (`SynthConfig::image_size`).
    pub world_size: u32,
    /// Width of the vision tower (its MLP is 4× wider; a multiple of its 4 heads).
    pub vision_width: usize,
    /// Layers of the vision tower (at least 2; the last is stored but unused, as in LLaVA-1.5).
    pub vision_layers: usize,
    /// A curriculum: the first this many steps show one-object scenes only (shapes and colours
    /// are learnt without the binding problem), the rest the full 1–3-object world.
    pub single_object_steps: usize,
    /// Write the checkpoint every this many steps (0: only at the end).
    pub save_every: usize,
    /// Continue from these weights (a `model.safetensors` of the same architecture) instead of
    /// the seeded initialisation; the optimiser state starts fresh.
    pub init_from: Option<PathBuf>,
    /// The first training scene: step `i` uses scenes `first_scene + i·batch ..`, so that a
    /// continued run sees new scenes.
    pub first_scene: u64,
    /// Log every this many steps.
    pub log_every: usize,
    /// Data-parallel workers: each step's batch is split into this many shards of consecutive
    /// scenes, whose forward and backward passes run on their own threads; the gradients are
    /// combined weighted by answer tokens, so a step computes the same gradient as one pass over
    /// the whole batch (to rounding). With more than one worker, run candle single-threaded
    /// (`RAYON_NUM_THREADS=1`): the workers are the parallelism.
    pub workers: usize,
    /// Steps of the vision pretraining stage run before captioning (0: none; see
    /// [`crate::pretrain`]): the tower and projector learn each layout cell's shape, colour and
    /// size and the scene's background and texture through temporary linear heads, on train-split scenes after the ones captioning uses
    /// (scene `first_scene + steps·batch + i·vision_pretrain_batch ..` at pretraining step `i`), with the same peak
    /// learning rate, warmup and cosine decay.
    pub vision_pretrain_steps: usize,
    /// Scenes per vision pretraining step.
    pub vision_pretrain_batch: usize,
    /// Keep the vision tower fixed while captioning, as LLaVA-1.5 keeps its CLIP tower (only the
    /// projector and the decoder learn from captions); meant to follow vision pretraining.
    pub freeze_vision: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            steps: 3000,
            max_seconds: None,
            batch_size: 32,
            lr: 2e-3,
            warmup: 100,
            lr_floor: 0.05,
            weight_decay: 0.01,
            clip_norm: 1.0,
            image_size: 96,
            patch_size: 32,
            world_size: SynthConfig::default().image_size,
            vision_width: 128,
            vision_layers: 3,
            single_object_steps: 0,
            init_from: None,
            first_scene: 0,
            save_every: 250,
            log_every: 10,
            workers: 1,
            vision_pretrain_steps: 0,
            vision_pretrain_batch: 64,
            freeze_vision: false,
        }
    }
}

impl TrainConfig {
    /// Checks every setting before any work starts.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: String, expected| {
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
        if self.vision_pretrain_steps > 0 && (self.image_size / self.patch_size) % 3 != 0 {
            return bad(
                "patch_size",
                self.patch_size.to_string(),
                "with vision pretraining, a patch grid (image_size / patch_size per side) that is a \
                 multiple of 3, so that patches tile the world's 3 × 3 layout cells",
            );
        }
        if self.vision_pretrain_steps > 0 && self.vision_pretrain_batch < self.workers {
            return bad(
                "vision_pretrain_batch",
                self.vision_pretrain_batch.to_string(),
                "at least the number of workers",
            );
        }
        if self.workers == 0 || self.workers > self.batch_size {
            return bad(
                "workers",
                self.workers.to_string(),
                "1..=batch_size (each worker needs at least one scene)",
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", self.lr.to_string(), "a positive number");
        }
        if ![4, 8, 16, 32].contains(&self.patch_size) {
            return bad("patch_size", self.patch_size.to_string(), "4, 8, 16 or 32");
        }
        if !(32..=256).contains(&self.image_size) || self.image_size % self.patch_size != 0 {
            return bad(
                "image_size",
                self.image_size.to_string(),
                "32..=256 and a multiple of patch_size",
            );
        }
        let world = SynthConfig {
            image_size: self.world_size,
            ..SynthConfig::default()
        };
        if world.validate().is_err() {
            return bad("world_size", self.world_size.to_string(), "32..=256");
        }
        if self.vision_width == 0 || self.vision_width % 4 != 0 {
            return bad(
                "vision_width",
                self.vision_width.to_string(),
                "a positive multiple of 4",
            );
        }
        if !(2..=12).contains(&self.vision_layers) {
            return bad("vision_layers", self.vision_layers.to_string(), "2..=12");
        }
        if !(0.0..=1.0).contains(&self.lr_floor) {
            return bad("lr_floor", self.lr_floor.to_string(), "0..=1");
        }
        Ok(())
    }
}

/// One row of the loss curve.
#[derive(Debug, Clone, Serialize)]
pub struct LossPoint {
    /// The step (0-based).
    pub step: usize,
    /// The learning rate used.
    pub lr: f64,
    /// Mean cross-entropy over the batch's answer tokens.
    pub loss: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Seconds since training started.
    pub elapsed_s: f64,
}

/// What a training run produced.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The settings.
    pub config: TrainConfig,
    /// Steps actually taken.
    pub steps: usize,
    /// Training wall time in seconds.
    pub seconds: f64,
    /// Mean loss of the last 20 steps.
    pub final_loss: f32,
    /// Every step's loss.
    pub curve: Vec<LossPoint>,
    /// Number of trained parameters.
    pub parameters: usize,
    /// The vision pretraining stage's curve (empty without one); its `loss` is the mean of the
    /// five attribute cross-entropies.
    pub pretrain_curve: Vec<LossPoint>,
    /// The vision pretraining stage's wall time in seconds.
    pub pretrain_seconds: f64,
}

/// A model under training: the architecture, its variables and the text side.
pub struct Trainer {
    /// The architecture.
    pub tiny: TinyConfig,
    /// The configuration as `config.json` holds it.
    pub cfg: LlavaConfig,
    /// The trainable variables.
    pub varmap: VarMap,
    /// The network built on `varmap`.
    pub model: LlavaModel,
    /// The tokenizer.
    pub tokenizer: LlavaTokenizer,
    /// The image processor.
    pub processor: ImageProcessor,
    /// Whether [`Trainer::loss`] treats the vision tower as fixed (set from
    /// [`TrainConfig::freeze_vision`] by [`Trainer::train`]).
    pub freeze_vision: bool,
    dir: PathBuf,
}

impl Trainer {
    /// Writes the checkpoint's files (config, tokenizer, preprocessor, initial weights) into `dir`
    /// and builds a trainable model with the same initial weights (architecture from
    /// `tc.image_size` and `tc.patch_size`, weights from `tc.seed`).
    pub fn new(dir: &Path, tc: &TrainConfig) -> Result<Self> {
        tc.validate()?;
        let seed = tc.seed;
        let tiny = model_config(
            tc.image_size,
            tc.patch_size,
            tc.vision_width,
            tc.vision_layers,
        );
        let cfg = write_tiny_llava(dir, &tiny, seed)?;
        let tokenizer = LlavaTokenizer::from_model_dir(dir, &cfg)?;
        let processor = ImageProcessor::from_model_dir(dir)?;
        let mut varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = LlavaModel::new(vb, &cfg, WeightLayout::Hub)?;
        init_varmap(&varmap, &cfg, WeightLayout::Hub, tiny.weight_scale, seed)?;
        if let Some(from) = &tc.init_from {
            varmap.load(from)?;
        }
        Ok(Self {
            tiny,
            cfg,
            varmap,
            model,
            tokenizer,
            processor,
            freeze_vision: false,
            dir: dir.to_path_buf(),
        })
    }

    /// A batch of train-split scenes `first..first + n` of world seed `seed`.
    pub fn batch(&self, seed: u64, first: u64, n: usize) -> Result<Batch> {
        self.batch_of(&SynthConfig::default(), seed, first, n)
    }

    /// A batch of train-split scenes `first..first + n` of world `world` with seed `seed`.
    pub fn batch_of(&self, world: &SynthConfig, seed: u64, first: u64, n: usize) -> Result<Batch> {
        let scenes = generate_range(world, seed, Split::Train, first..first + n as u64)?;
        make_batch(
            &self.tokenizer,
            &self.processor,
            self.cfg.image_seq_length,
            self.cfg.text_config.pad_token_id.unwrap_or(0),
            &scenes,
            &Device::Cpu,
        )
    }

    /// The batch of scenes `first..first + n` split into `shards` batches of consecutive scenes
    /// (sizes differ by at most one), one per data-parallel worker.
    pub fn shards_of(
        &self,
        world: &SynthConfig,
        seed: u64,
        first: u64,
        n: usize,
        shards: usize,
    ) -> Result<Vec<Batch>> {
        let mut out = Vec::with_capacity(shards);
        let mut start = first;
        for len in split_sizes(n, shards) {
            out.push(self.batch_of(world, seed, start, len)?);
            start += len as u64;
        }
        Ok(out)
    }

    /// The mean cross-entropy over all answer tokens of `shards` and its gradients: each shard's
    /// forward and backward pass runs on a thread of `pool` (or here, without one), and the
    /// per-shard losses and gradients are combined with weights `n_targets / total`, which is
    /// exactly the loss and gradient of one pass over the concatenated batch (right padding
    /// differs between shards, but causal attention keeps it from the answer positions).
    pub fn loss_and_grads(
        &self,
        shards: &[Batch],
        pool: Option<&rayon::ThreadPool>,
    ) -> Result<(f32, GradStore)> {
        let vars = self.varmap.all_vars();
        let (loss, grads, _) = parallel_grads(shards, pool, &vars, |b| {
            Ok((self.loss(b)?, b.n_targets, 0.0))
        })?;
        Ok((loss, grads))
    }

    /// Mean cross-entropy of the batch's answer tokens under teacher forcing.
    pub fn loss(&self, batch: &Batch) -> Result<Tensor> {
        let feats = if self.freeze_vision {
            // No gradient flows into the tower: its features are constants to the projector.
            let enc = self.model.image_encoder();
            let fixed = enc.vision_features(&batch.pixels)?.detach();
            enc.projector().forward(&fixed)?
        } else {
            self.model.encode_images(&batch.pixels)?
        };
        let out = self.model.forward(
            &batch.ids,
            Some(&feats),
            &ResidualCapture::none(),
            Logits::All,
        )?;
        let logits = out
            .logits
            .ok_or_else(|| cox_model::Error::Input("no logits".into()))?;
        let (b, s, v) = logits.dims3()?;
        let sel = logits
            .reshape((b * s, v))?
            .index_select(&batch.positions, 0)?;
        Ok(candle_nn::loss::cross_entropy(&sel, &batch.targets)?)
    }

    /// The vision pretraining loss of a batch (see [`crate::pretrain`]) and the heads' shape
    /// accuracy on its occupied cells.
    pub fn pretrain_loss(&self, heads: &CellHeads, batch: &CellBatch) -> Result<(Tensor, f32)> {
        let tokens = self.model.encode_images(&batch.pixels)?;
        let (loss, shape_logits) = heads.loss(&cell_features(&tokens)?, &tokens.mean(1)?, batch)?;
        Ok((loss, shape_accuracy(&shape_logits, batch)?))
    }

    /// The vision tower's and projector's variables (what vision pretraining trains).
    pub fn vision_vars(&self) -> Vec<Var> {
        self.vars_with_prefix(&["vision_tower.", "multi_modal_projector."])
    }

    /// The vision tower's variables (what [`TrainConfig::freeze_vision`] keeps fixed).
    pub fn tower_vars(&self) -> Vec<Var> {
        self.vars_with_prefix(&["vision_tower."])
    }

    fn vars_with_prefix(&self, prefixes: &[&str]) -> Vec<Var> {
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut named: Vec<(&String, &Var)> = data
            .iter()
            .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
            .collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        named.into_iter().map(|(_, v)| v.clone()).collect()
    }

    /// Runs the vision pretraining stage of `tc` (`tc.vision_pretrain_steps` steps; nothing when
    /// 0) and returns its curve, also written to `vision_pretrain_curve.csv`.
    pub fn pretrain_vision(&self, tc: &TrainConfig) -> Result<Vec<LossPoint>> {
        let total = tc.vision_pretrain_steps;
        if total == 0 {
            return Ok(Vec::new());
        }
        tc.validate()?;
        let heads = CellHeads::new(self.cfg.text_config.hidden_size, tc.seed)?;
        let mut vars = self.vision_vars();
        vars.extend(heads.varmap.all_vars());
        let mut opt = adamw(&vars, tc)?;
        let pool = worker_pool(tc.workers)?;
        let world = SynthConfig {
            image_size: tc.world_size,
            ..SynthConfig::default()
        };
        let first = tc.first_scene + (tc.steps * tc.batch_size) as u64;
        let per_step = tc.vision_pretrain_batch;
        let produce = |step: usize| -> Result<Vec<CellBatch>> {
            let start = first + (step * per_step) as u64;
            let scenes = generate_range(
                &world,
                tc.seed,
                Split::Train,
                start..start + per_step as u64,
            )?;
            let per = split_sizes(scenes.len(), tc.workers);
            let mut out = Vec::with_capacity(per.len());
            let mut at = 0;
            for n in per {
                out.push(make_cell_batch(
                    &self.processor,
                    &scenes[at..at + n],
                    &Device::Cpu,
                )?);
                at += n;
            }
            Ok(out)
        };
        let start = Instant::now();
        let warmup = tc.warmup.min(total / 10).max(1);
        let curve = pipelined(total, produce, |batches| {
            let mut curve = Vec::with_capacity(total);
            for step in 0..total {
                let lr = lr_at(step, warmup, total, tc.lr, tc.lr_floor);
                opt.set_learning_rate(lr);
                let shards = batches.recv().map_err(|_| TrainError::BatchWorker)??;
                let (loss_v, mut grads, acc) =
                    parallel_grads(&shards, pool.as_ref(), &vars, |b| {
                        let (l, acc) = self.pretrain_loss(&heads, b)?;
                        Ok((l, b.scenes, acc))
                    })?;
                let point =
                    optimiser_step(&mut opt, &mut grads, &vars, tc, (step, lr, loss_v), start)?;
                let (norm, elapsed) = (point.grad_norm, point.elapsed_s);
                curve.push(point);
                if tc.log_every > 0 && (step % tc.log_every == 0 || step + 1 == total) {
                    tracing::info!(step, total, loss = loss_v, shape_accuracy = acc, elapsed);
                    eprintln!(
                        "vision {step:5}/{total} loss {loss_v:.4} shape acc {:.1} % lr {lr:.2e} |g| {norm:.3} {elapsed:.0}s",
                        100.0 * acc
                    );
                }
            }
            Ok(curve)
        })?;
        write_curve_named(&self.dir, "vision_pretrain_curve.csv", &curve)?;
        Ok(curve)
    }

    /// The number of trained parameters.
    pub fn parameters(&self) -> usize {
        self.varmap.all_vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Writes `model.safetensors`: the trained variables plus the tensors of the hub format the
    /// trainer does not build (the vision `post_layernorm` and the vision layers after
    /// `vision_feature_layer`), which keep their initial values.
    pub fn save(&self) -> Result<()> {
        let path = self.dir.join("model.safetensors");
        let mut all: HashMap<String, Tensor> = candle_core::safetensors::load(&path, &Device::Cpu)?;
        for (name, var) in self.varmap.data().lock().expect("varmap lock").iter() {
            all.insert(name.clone(), var.as_tensor().detach().to_dtype(DType::F32)?);
        }
        let tmp = self.dir.join("model.safetensors.tmp");
        candle_core::safetensors::save(&all, &tmp)?;
        std::fs::rename(&tmp, &path).map_err(|e| TrainError::io(&path, e))
    }

    /// Runs AdamW with warmup + cosine decay on fresh scenes, writing the checkpoint every
    /// `save_every` steps and at the end, and `loss_curve.csv` next to it.
    pub fn train(&mut self, tc: &TrainConfig) -> Result<TrainReport> {
        tc.validate()?;
        self.freeze_vision = tc.freeze_vision;
        let pre_start = Instant::now();
        let pretrain_curve = self.pretrain_vision(tc)?;
        let pretrain_seconds = pre_start.elapsed().as_secs_f64();
        if !pretrain_curve.is_empty() {
            // A run stopped during captioning keeps the pretrained tower.
            self.save()?;
        }
        let this: &Trainer = self;
        let produce = |step: usize| -> Result<Vec<Batch>> {
            let world = SynthConfig {
                image_size: tc.world_size,
                max_objects: if step < tc.single_object_steps {
                    1
                } else {
                    SynthConfig::default().max_objects
                },
                ..SynthConfig::default()
            };
            let first = tc.first_scene + (step * tc.batch_size) as u64;
            this.shards_of(&world, tc.seed, first, tc.batch_size, tc.workers)
        };
        let mut report = pipelined(tc.steps, produce, |batches| {
            this.train_loop(tc, batches, pretrain_seconds)
        })?;
        report.pretrain_curve = pretrain_curve;
        report.pretrain_seconds = pretrain_seconds;
        Ok(report)
    }

    /// The optimisation loop of [`Trainer::train`], fed with batches by its render thread.
    fn train_loop(
        &self,
        tc: &TrainConfig,
        batches: &std::sync::mpsc::Receiver<Result<Vec<Batch>>>,
        spent_s: f64,
    ) -> Result<TrainReport> {
        let pool = worker_pool(tc.workers)?;
        let vars: Vec<Var> = if tc.freeze_vision {
            let tower: Vec<Var> = self.tower_vars();
            self.varmap
                .all_vars()
                .into_iter()
                .filter(|v| {
                    !tower
                        .iter()
                        .any(|t| t.as_tensor().id() == v.as_tensor().id())
                })
                .collect()
        } else {
            self.varmap.all_vars()
        };
        let mut opt = adamw(&vars, tc)?;
        let mut total = tc.steps;
        let start = Instant::now();
        let mut curve = Vec::with_capacity(total);
        let mut step = 0;
        while step < total {
            // Warmup never takes more than a tenth of the (possibly shrunk) run.
            let warmup = tc.warmup.min(total / 10).max(1);
            let lr = lr_at(step, warmup, total, tc.lr, tc.lr_floor);
            opt.set_learning_rate(lr);
            let shards = batches.recv().map_err(|_| TrainError::BatchWorker)??;
            let (loss_v, mut grads) = self.loss_and_grads(&shards, pool.as_ref())?;
            let point = optimiser_step(&mut opt, &mut grads, &vars, tc, (step, lr, loss_v), start)?;
            let (norm, elapsed) = (point.grad_norm, point.elapsed_s);
            curve.push(point);
            if tc.log_every > 0 && (step % tc.log_every == 0 || step + 1 == total) {
                tracing::info!(step, total, loss = loss_v, lr, grad_norm = norm, elapsed);
                eprintln!(
                    "step {step:5}/{total} loss {loss_v:.4} lr {lr:.2e} |g| {norm:.3} {elapsed:.0}s"
                );
            }
            step += 1;
            if step == 20 {
                if let Some(budget) = tc.max_seconds {
                    let per_step = elapsed / 20.0;
                    let fit = ((budget - spent_s).max(0.0) / per_step).floor() as usize;
                    total = total.min(fit.max(step));
                    eprintln!(
                        "{per_step:.3} s/step: {total} captioning steps fit the {budget:.0} s budget \
                         ({spent_s:.0} s went to vision pretraining)"
                    );
                }
            }
            if tc.save_every > 0 && step % tc.save_every == 0 && step < total {
                self.save()?;
                write_curve(&self.dir, &curve)?;
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        self.save()?;
        write_curve(&self.dir, &curve)?;
        let tail = &curve[curve.len().saturating_sub(20)..];
        let final_loss = tail.iter().map(|p| p.loss).sum::<f32>() / tail.len().max(1) as f32;
        Ok(TrainReport {
            config: tc.clone(),
            steps: curve.len(),
            seconds,
            final_loss,
            curve,
            parameters: self.parameters(),
            pretrain_curve: Vec::new(),
            pretrain_seconds: 0.0,
        })
    }
}

/// The data-parallel worker threads (none for one worker: the caller's thread does the work).
fn worker_pool(workers: usize) -> Result<Option<rayon::ThreadPool>> {
    if workers <= 1 {
        return Ok(None);
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("cox-train-worker-{i}"))
        .build()
        .map(Some)
        .map_err(|e| TrainError::Worker(e.to_string()))
}

/// `n` items split into `parts` consecutive runs whose sizes differ by at most one.
fn split_sizes(n: usize, parts: usize) -> Vec<usize> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|i| n / parts + usize::from(i < n % parts))
        .collect()
}

/// Runs `f` (loss, weight, a statistic) on every shard — on the threads of `pool` when there is
/// one — and back-propagates each loss; returns the weighted mean loss, the weighted sum of the
/// gradients of `vars` (weights `weight / Σ weight`) and the weighted mean statistic. For losses
/// that are means over `weight` items this is the loss and gradient of the whole batch.
fn parallel_grads<B: Sync>(
    shards: &[B],
    pool: Option<&rayon::ThreadPool>,
    vars: &[Var],
    f: impl Fn(&B) -> Result<(Tensor, usize, f32)> + Sync,
) -> Result<(f32, GradStore, f32)> {
    let one = |b: &B| -> Result<(f32, usize, f32, GradStore)> {
        let (loss, weight, stat) = f(b)?;
        let v = loss.to_scalar::<f32>()?;
        Ok((v, weight, stat, loss.backward()?))
    };
    let parts: Vec<(f32, usize, f32, GradStore)> = match pool {
        Some(pool) if shards.len() > 1 => {
            pool.install(|| shards.par_iter().map(one).collect::<Result<_>>())?
        }
        _ => shards.iter().map(one).collect::<Result<_>>()?,
    };
    if parts.len() == 1 {
        let (v, _, stat, g) = parts.into_iter().next().expect("one shard");
        return Ok((v, g, stat));
    }
    let total: usize = parts.iter().map(|p| p.1).sum();
    let mut parts = parts.into_iter();
    let (v0, n0, s0, mut grads) = parts.next().expect("more than one shard");
    let w0 = n0 as f64 / total as f64;
    let (mut loss, mut stat) = (v0 as f64 * w0, s0 as f64 * w0);
    for v in vars {
        if let Some(g) = grads.remove(v.as_tensor()) {
            grads.insert(v.as_tensor(), (g * w0)?);
        }
    }
    for (vi, ni, si, gi) in parts {
        let w = ni as f64 / total as f64;
        loss += vi as f64 * w;
        stat += si as f64 * w;
        for v in vars {
            let Some(g) = gi.get(v.as_tensor()) else {
                continue;
            };
            let sum = match grads.remove(v.as_tensor()) {
                Some(acc) => (acc + (g * w)?)?,
                None => (g * w)?,
            };
            grads.insert(v.as_tensor(), sum);
        }
    }
    Ok((loss as f32, grads, stat as f32))
}

/// AdamW over `vars` with `tc`'s peak learning rate and weight decay (β = 0.9/0.999).
fn adamw(vars: &[Var], tc: &TrainConfig) -> Result<AdamW> {
    Ok(AdamW::new(
        vars.to_vec(),
        ParamsAdamW {
            lr: tc.lr,
            weight_decay: tc.weight_decay,
            ..ParamsAdamW::default()
        },
    )?)
}

/// One optimiser update after a step's loss `loss` and gradients: refuses a non-finite loss, clips
/// the gradients of `vars` to `tc.clip_norm`, steps `opt`, and returns the step's curve point.
fn optimiser_step(
    opt: &mut AdamW,
    grads: &mut GradStore,
    vars: &[Var],
    tc: &TrainConfig,
    (step, lr, loss): (usize, f64, f32),
    start: Instant,
) -> Result<LossPoint> {
    if !loss.is_finite() {
        return Err(TrainError::Diverged { step, loss });
    }
    let grad_norm = clip_gradients(grads, vars, tc.clip_norm)?;
    opt.step(grads)?;
    Ok(LossPoint {
        step,
        lr,
        loss,
        grad_norm,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

/// Scales the gradients of `vars` so that their global norm is at most `clip`; returns the norm
/// before clipping.
pub(crate) fn clip_gradients(grads: &mut GradStore, vars: &[Var], clip: f64) -> Result<f32> {
    let mut sq = 0f32;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()?;
        }
    }
    let norm = sq.sqrt();
    if norm as f64 > clip {
        let scale = clip / norm as f64;
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// Runs `consume` on a channel fed by `produce(0..steps)` on a second thread, one step ahead
/// (scene rendering and preprocessing overlap the forward and backward passes). The producer stops
/// at its first error (which it sends) or when `consume` returns and drops the channel.
fn pipelined<T: Send, R>(
    steps: usize,
    produce: impl Fn(usize) -> Result<T> + Send,
    consume: impl FnOnce(&std::sync::mpsc::Receiver<Result<T>>) -> Result<R>,
) -> Result<R> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T>>(2);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for step in 0..steps {
                let item = produce(step);
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    break;
                }
            }
        });
        let out = consume(&rx);
        drop(rx);
        out
    })
}

/// Writes `loss_curve.csv` (`step,lr,loss,grad_norm,elapsed_s`) into `dir`.
pub fn write_curve(dir: &Path, curve: &[LossPoint]) -> Result<()> {
    write_curve_named(dir, "loss_curve.csv", curve)
}

/// Writes a curve like [`write_curve`] under the file name `name`.
fn write_curve_named(dir: &Path, name: &str, curve: &[LossPoint]) -> Result<()> {
    let path = dir.join(name);
    let mut s = String::from("step,lr,loss,grad_norm,elapsed_s\n");
    for p in curve {
        s.push_str(&format!(
            "{},{:.6e},{:.5},{:.4},{:.2}\n",
            p.step, p.lr, p.loss, p.grad_norm, p.elapsed_s
        ));
    }
    std::fs::write(&path, s).map_err(|e| TrainError::io(&path, e))
}

/// Writes `TRAINING.md` into `dir`: the architecture, the settings, the run and the command.
pub fn write_training_note(
    dir: &Path,
    trainer: &Trainer,
    report: &TrainReport,
    command: &str,
) -> Result<()> {
    let c = &trainer.cfg;
    let v = &c.vision_config;
    let t = &c.text_config;
    let tc = &report.config;
    let size: u64 = std::fs::metadata(dir.join("model.safetensors"))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut s = String::new();
    s.push_str("# tiny-llava-synth\n\n");
    s.push_str(
        "A LLaVA-1.5-architecture captioner trained from scratch by `cox-train` on the synthetic world of \
         `cox-synth` (no pretrained weights exist on our machines). It is a test and demo model: it \
         describes the world's scenes with the canonical caption grammar and nothing else.\n\n",
    );
    s.push_str("## Architecture\n\n");
    s.push_str(&format!(
        "- Vision: CLIP ViT, {0}×{0} px, patch {1} ({2} image tokens), width {3}, MLP {4}, {5} layers, {6} heads; \
         `vision_feature_layer = -2` (the last layer is stored but unused, as in LLaVA-1.5), `default` select strategy.\n",
        v.image_size, v.patch_size, c.image_seq_length, v.hidden_size, v.intermediate_size,
        v.num_hidden_layers, v.num_attention_heads
    ));
    s.push_str(&format!(
        "- Projector: 2-layer GELU MLP, {} → {} → {}.\n",
        c.projector_in_dim(),
        t.hidden_size,
        t.hidden_size
    ));
    s.push_str(&format!(
        "- Decoder: Llama, width {}, MLP {}, {} blocks, {} heads, vocabulary {} (WordLevel: cox-synth's words, \
         the prompt's words, specials), untied LM head.\n",
        t.hidden_size, t.intermediate_size, t.num_hidden_layers, t.num_attention_heads, t.vocab_size
    ));
    s.push_str(&format!(
        "- {} trained parameters; `model.safetensors` is f32, {:.2} MB.\n\n",
        report.parameters,
        size as f64 / 1e6
    ));
    s.push_str("## Training\n\n");
    s.push_str(&format!(
        "- Prompt: `USER: <image>\\n{PROMPT} ASSISTANT:`; target: ` <canonical caption></s>`; teacher forcing, \
         cross-entropy on the answer tokens (caption and EOS) only.\n\
         - Data: fresh scenes every step — step `i` uses train-split scenes `{first} + i·{bs}..` of world seed {seed} \
         (`SynthConfig::default()` rendered at {world} px, 1–3 objects; the first {single} steps one-object scenes only, a \
         curriculum); {seen} scenes seen. Pixels go through the checkpoint's own `preprocessor_config.json` \
         (bicubic resize to {side} px, CLIP normalisation).\n\
         - Optimiser: AdamW (β = 0.9/0.999, weight decay {wd}), peak learning rate {lr}, {warm} warmup steps, cosine \
         decay to {floor}× the peak, gradient-norm clip {clip}; weights initialised by \
         `cox_model::testing::init_varmap` with seed {seed}.\n\
         - Steps: {steps}; wall time {secs:.0} s on the development machine (2 CPU cores); final loss \
         (mean of the last 20 steps) {fl:.4}.\n\
         - Loss curve: `loss_curve.csv` (`step,lr,loss,grad_norm,elapsed_s`).\n",
        bs = tc.batch_size,
        first = tc.first_scene,
        world = tc.world_size,
        seed = tc.seed,
        single = tc.single_object_steps,
        side = tc.image_size,
        seen = report.steps * tc.batch_size,
        wd = tc.weight_decay,
        lr = tc.lr,
        warm = tc.warmup,
        floor = tc.lr_floor,
        clip = tc.clip_norm,
        steps = report.steps,
        secs = report.seconds,
        fl = report.final_loss,
    ));
    if tc.vision_pretrain_steps > 0 {
        s.push_str(&format!(
            "- Vision pretraining (before captioning; `cox_train::pretrain`): {} steps of {} scenes (train-split scenes \
             from {} on), temporary linear heads on each layout cell's image tokens trained with cross-entropy on the \
             cell's shape, colour and size (\"empty\" a class of each) and on the scene's background and texture (from the \
             mean of all image tokens), tower and projector trained, heads discarded; \
             same optimiser and schedule; {:.0} s, final loss {:.4} (`vision_pretrain_curve.csv`).\n",
            report.pretrain_curve.len(),
            tc.vision_pretrain_batch,
            tc.first_scene + (tc.steps * tc.batch_size) as u64,
            report.pretrain_seconds,
            report
                .pretrain_curve
                .iter()
                .rev()
                .take(20)
                .map(|p| p.loss)
                .sum::<f32>()
                / report.pretrain_curve.len().clamp(1, 20) as f32,
        ));
    }
    if tc.freeze_vision {
        s.push_str(
            "- Captioning keeps the vision tower fixed (as LLaVA-1.5 keeps CLIP): the projector and the decoder learn.\n",
        );
    }
    s.push_str(&format!(
        "- Data-parallel workers: {} (each step's batch split between threads; same gradient).\n\n",
        tc.workers
    ));
    s.push_str(&format!("## Reproduce\n\n```sh\n{command}\n```\n\n"));
    s.push_str(
        "Results match to rounding, not bit for bit: candle's CPU matrix products split work by thread count.\n",
    );
    let path = dir.join("TRAINING.md");
    let mut f = std::fs::File::create(&path).map_err(|e| TrainError::io(&path, e))?;
    f.write_all(s.as_bytes())
        .map_err(|e| TrainError::io(&path, e))
}
