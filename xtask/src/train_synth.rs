//! `cargo xtask train-synth` and `cargo xtask eval-synth`: train the tiny LLaVA captioner of the
//! synthetic world (cox-train) and score its captions on held-out scenes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cox_train::{evaluate_world_with, write_training_note, TrainConfig, Trainer};

#[derive(clap::Args)]
pub struct Args {
    /// Which language model the captioner gets: `tiny` trains the whole tiny-llava-synth from
    /// scratch; `smollm2` trains tiny-llava-smol (tiny-llava-synth's vision tower, a new projector
    /// and low-rank adapters on the real SmolLM2-135M-Instruct, which `cargo xtask fetch` must
    /// have converted first). Options marked (tiny) apply to the first only.
    #[arg(long, value_enum, default_value = "tiny")]
    pub lm: LmChoice,
    /// Output directory (created if needed; files in it are overwritten). Default: the committed
    /// model's directory, crates/cox-synth/assets/tiny-llava-synth or …/tiny-llava-smol.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Optimiser steps (tiny: captioning steps, an upper bound when --minutes is given). The
    /// defaults of every option are the committed checkpoint's recipe: 4500 (tiny), 600 (smollm2).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Seed of the initial weights and the training scenes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// (tiny) Wall-clock budget of the training loop; the step count is shrunk to fit it.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Scenes per step (default 32 for tiny, 16 for smollm2).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Peak learning rate (tiny: all weights, default 2e-3; smollm2: the projector, default 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// (smollm2) Peak learning rate of the adapters.
    #[arg(long, default_value_t = 4e-4)]
    pub lr_adapters: f64,
    /// (smollm2) LoRA rank of the adapters on every dense layer of SmolLM2's blocks (0: the
    /// language model frozen as released, only the projector learns).
    #[arg(long, default_value_t = 8)]
    pub lora_rank: usize,
    /// (smollm2) Continue the run saved in --run-dir, with the settings it was started with.
    #[arg(long)]
    pub resume: bool,
    /// (smollm2) Where the resumable training state lives (saved every --save-every-minutes).
    #[arg(long, default_value = ".cache/train/tiny-llava-smol")]
    pub run_dir: PathBuf,
    /// (smollm2) Save the training state this often.
    #[arg(long, default_value_t = 5.0)]
    pub save_every_minutes: f64,
    /// (smollm2) Save and stop after this many minutes (resume later with --resume).
    #[arg(long)]
    pub stop_after_minutes: Option<f64>,
    /// (smollm2) The converted SmolLM2-135M-Instruct (`cargo xtask fetch` writes it).
    #[arg(long)]
    pub lm_dir: Option<PathBuf>,
    /// (smollm2) The checkpoint whose vision tower is used (frozen).
    #[arg(long, default_value = "crates/cox-synth/assets/tiny-llava-synth")]
    pub tower: PathBuf,
    /// (smollm2) Caption this many test scenes every --eval-every steps during training.
    #[arg(long, default_value_t = 50)]
    pub eval_scenes: usize,
    /// (smollm2) See --eval-scenes.
    #[arg(long, default_value_t = 200)]
    pub eval_every: usize,
    /// Vision input side in pixels (the 64 px scenes are resized to it).
    #[arg(long, default_value_t = 96)]
    pub image_size: usize,
    /// Vision patch side.
    #[arg(long, default_value_t = 32)]
    pub patch: usize,
    /// Side in pixels of the rendered training scenes (default: the world's default).
    #[arg(long)]
    pub world_size: Option<u32>,
    /// Width of the vision tower (MLP 4× wider).
    #[arg(long, default_value_t = 128)]
    pub vision_width: usize,
    /// Layers of the vision tower (LLaVA-1.5's feature layer -2 uses all but the last).
    #[arg(long, default_value_t = 3)]
    pub vision_layers: usize,
    /// Continue from this checkpoint's weights (same architecture); copy them first if it is --out.
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// First training scene index (a continued run uses new scenes).
    #[arg(long, default_value_t = 0)]
    pub first_scene: u64,
    /// Warmup steps (default: steps/20, within 10..=200).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Curriculum: one-object scenes for the first this many captioning steps.
    #[arg(long, default_value_t = 400)]
    pub single_object_steps: usize,
    /// Data-parallel workers (threads; each step's batch is split between them, same gradient).
    /// Default: the cores this process may use. candle itself runs single-threaded here unless
    /// RAYON_NUM_THREADS says otherwise.
    #[arg(long)]
    pub workers: Option<usize>,
    /// Steps of vision pretraining before captioning: the tower and projector learn each layout
    /// cell's shape, colour and size through temporary heads (cox_train::pretrain).
    #[arg(long, default_value_t = 1500)]
    pub vision_pretrain_steps: usize,
    /// Scenes per vision pretraining step.
    #[arg(long, default_value_t = 64)]
    pub vision_pretrain_batch: usize,
    /// Keep the vision tower fixed while captioning (as LLaVA-1.5 keeps CLIP); meant to follow
    /// vision pretraining.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub freeze_vision: bool,
    /// Held-out test scenes to evaluate after training (0: skip).
    #[arg(long, default_value_t = 200)]
    pub eval: usize,
}

/// `--lm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LmChoice {
    /// The tiny Llama decoder trained from scratch (tiny-llava-synth).
    Tiny,
    /// The real SmolLM2-135M-Instruct (tiny-llava-smol).
    Smollm2,
}

pub fn run(a: Args) -> Result<()> {
    if a.lm == LmChoice::Smollm2 {
        return crate::train_smol::run(a);
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("crates/cox-synth/assets/tiny-llava-synth"));
    let steps = a.steps.unwrap_or(4500);
    let batch = a.batch.unwrap_or(32);
    let lr = a.lr.unwrap_or(2e-3);
    let tc = TrainConfig {
        seed: a.seed,
        steps,
        max_seconds: a.minutes.map(|m| m * 60.0),
        batch_size: batch,
        lr,
        warmup: a.warmup.unwrap_or((steps / 20).clamp(10, 200)),
        init_from: a.init_from.clone(),
        first_scene: a.first_scene,
        image_size: a.image_size,
        patch_size: a.patch,
        world_size: a
            .world_size
            .unwrap_or(cox_synth::SynthConfig::default().image_size),
        vision_width: a.vision_width,
        vision_layers: a.vision_layers,
        single_object_steps: a.single_object_steps,
        workers: a.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(batch.max(1))
        }),
        vision_pretrain_steps: a.vision_pretrain_steps,
        vision_pretrain_batch: a.vision_pretrain_batch,
        freeze_vision: a.freeze_vision,
        ..TrainConfig::default()
    };
    tc.validate()?;
    let mut trainer =
        Trainer::new(&out, &tc).with_context(|| format!("preparing {}", out.display()))?;
    eprintln!(
        "training {} parameters into {} ({} worker{}, candle threads {})",
        trainer.parameters(),
        out.display(),
        tc.workers,
        if tc.workers == 1 { "" } else { "s" },
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default()
    );
    let report = trainer.train(&tc)?;
    let mut command = format!(
        "cargo xtask train-synth --out {} --steps {} --seed {} --batch {} --lr {} --image-size {} --patch {} --vision-width {} --vision-layers {} --single-object-steps {}",
        out.display(),
        steps,
        a.seed,
        batch,
        lr,
        a.image_size,
        a.patch,
        a.vision_width,
        a.vision_layers,
        a.single_object_steps
    );
    command.push_str(&format!(" --workers {}", tc.workers));
    command.push_str(&format!(" --freeze-vision {}", a.freeze_vision));
    if a.vision_pretrain_steps > 0 {
        command.push_str(&format!(
            " --vision-pretrain-steps {} --vision-pretrain-batch {}",
            a.vision_pretrain_steps, a.vision_pretrain_batch
        ));
    }
    if let Some(m) = a.minutes {
        command.push_str(&format!(" --minutes {m}"));
    }
    if let Some(w) = a.world_size {
        command.push_str(&format!(" --world-size {w}"));
    }
    if let Some(w) = a.warmup {
        command.push_str(&format!(" --warmup {w}"));
    }
    if let Some(p) = &a.init_from {
        command.push_str(&format!(
            " --init-from {} --first-scene {}",
            p.display(),
            a.first_scene
        ));
    }
    write_training_note(&out, &trainer, &report, &command)?;
    println!(
        "trained {} steps in {:.0} s; final loss {:.4}; wrote {}",
        report.steps,
        report.seconds,
        report.final_loss,
        out.display()
    );
    if a.eval > 0 {
        eval(EvalArgs {
            model: out,
            n: a.eval,
            seed: 0,
            json: None,
            world_size: a.world_size,
            image_backend: None,
        })?;
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The checkpoint directory.
    #[arg(long, default_value = "crates/cox-synth/assets/tiny-llava-synth")]
    model: PathBuf,
    /// Held-out test scenes to caption.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// World seed of the test split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Side in pixels of the rendered test scenes (default: the world's default).
    #[arg(long)]
    world_size: Option<u32>,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Image resampling to reproduce (default: what the checkpoint's processor type implies).
    #[arg(long, value_enum)]
    image_backend: Option<ImageBackend>,
}

/// `--image-backend`: whose resampling the processor reproduces.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ImageBackend {
    /// torchvision (transformers 5.x's default).
    Torchvision,
    /// Pillow (transformers 4.x's default).
    Pil,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let opts = cox_model::LoadOptions {
        image_backend: a.image_backend.map(|b| match b {
            ImageBackend::Torchvision => cox_model::resample::ResizeBackend::Torchvision,
            ImageBackend::Pil => cox_model::resample::ResizeBackend::Pil,
        }),
        ..Default::default()
    };
    let llava = cox_model::Llava::load(&a.model.to_string_lossy(), &opts)
        .with_context(|| format!("loading {}", a.model.display()))?;
    let world = cox_synth::SynthConfig {
        image_size: a
            .world_size
            .unwrap_or(cox_synth::SynthConfig::default().image_size),
        ..Default::default()
    };
    let bar = indicatif::ProgressBar::new(a.n as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "captioning {pos}/{len} scenes [{elapsed_precise}] {per_sec} ETA {eta}",
        )
        .expect("a valid template"),
    );
    let r = evaluate_world_with(&llava, &world, a.seed, a.n, &mut |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    println!(
        "{} test scenes ({} objects) in {:.0} s",
        r.scenes, r.objects, r.seconds
    );
    println!("| attribute | accuracy |\n|---|---|");
    for (name, v) in [
        ("shape", r.shape),
        ("colour", r.colour),
        ("size", r.size),
        ("position", r.position),
        ("object count", r.object_count),
        ("background", r.background),
        ("texture", r.texture),
        ("exact caption", r.exact_match),
        ("ended with EOS", r.stopped_at_eos),
    ] {
        println!("| {name} | {:.1} % |", 100.0 * v);
    }
    for (truth, got) in r.mistakes.iter().take(5) {
        println!("  truth: {truth}\n  got:   {got}");
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&r)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
