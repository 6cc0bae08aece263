//! `cargo xtask train-synth --lm smollm2`: train tiny-llava-smol (cox_train::smol) resumably and
//! write the parts the project commits.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cox_train::smol::{SmolConfig, SmolTrainer};

use crate::train_synth::Args;

/// The committed parts' directory.
pub const SMOL_DIR: &str = "crates/cox-synth/assets/tiny-llava-smol";

/// The converted SmolLM2 directory `cargo xtask fetch` writes.
pub fn smollm2_dir() -> PathBuf {
    crate::fetch::models_dir().join("smollm2-135m-instruct")
}

pub fn run(a: Args) -> Result<()> {
    let root = crate::workspace_root();
    let abs = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            root.join(p)
        }
    };
    let out = abs(&a.out.clone().unwrap_or_else(|| PathBuf::from(SMOL_DIR)));
    let run_dir = abs(&a.run_dir);
    let tower = abs(&a.tower);
    let lm_dir = a.lm_dir.clone().unwrap_or_else(smollm2_dir);
    if !lm_dir.join("model.safetensors").is_file() {
        bail!(
            "no converted SmolLM2-135M-Instruct at {}: run `cargo xtask fetch` first",
            lm_dir.display()
        );
    }
    let cfg = SmolConfig {
        seed: a.seed,
        steps: a.steps.unwrap_or(SmolConfig::default().steps),
        batch_size: a.batch.unwrap_or(SmolConfig::default().batch_size),
        lr_projector: a.lr.unwrap_or(SmolConfig::default().lr_projector),
        lr_adapters: a.lr_adapters,
        lora_rank: a.lora_rank,
        first_scene: a.first_scene,
        eval_scenes: a.eval_scenes,
        eval_every: a.eval_every,
        ..SmolConfig::default()
    };
    cfg.validate()?;
    let saved = run_dir.join("state").join("progress.json").is_file();
    // A resumed run continues with the settings it was started with (the flags of the recipe
    // are ignored, and said so when they differ).
    let cfg = if a.resume && saved {
        let saved_cfg = SmolTrainer::saved_config(&run_dir)?;
        if saved_cfg != cfg {
            eprintln!(
                "--resume: continuing with the saved run's settings (steps {}, batch {}, LoRA rank {}); other recipe flags are ignored",
                saved_cfg.steps, saved_cfg.batch_size, saved_cfg.lora_rank
            );
        }
        saved_cfg
    } else {
        cfg
    };
    let mut trainer = if a.resume {
        if !saved {
            bail!(
                "--resume: no saved run in {} (start one without --resume)",
                run_dir.display()
            );
        }
        SmolTrainer::resume(&run_dir, &tower, &lm_dir, &cfg)
            .with_context(|| format!("resuming {}", run_dir.display()))?
    } else {
        if saved {
            bail!(
                "{} holds a saved run: continue it with --resume, or remove the directory to start over",
                run_dir.display()
            );
        }
        SmolTrainer::new(&run_dir, &tower, &lm_dir, &cfg)
            .with_context(|| format!("preparing {}", run_dir.display()))?
    };
    eprintln!(
        "training tiny-llava-smol from step {} of {} (batch {}, LoRA rank {}, candle threads {}, load {}); state in {}",
        trainer.step(),
        cfg.steps,
        cfg.batch_size,
        cfg.lora_rank,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_default(),
        crate::load_avg(),
        run_dir.display()
    );
    let start = Instant::now();
    let first = trainer.step();
    let total = cfg.steps;
    let mut on_step = |p: &cox_train::smol::SmolPoint, e: Option<&cox_train::smol::EvalSummary>| {
        let done = p.step - first;
        let rate = start.elapsed().as_secs_f64() / done.max(1) as f64;
        if p.step.is_multiple_of(5) || p.step == total || e.is_some() {
            eprintln!(
                "step {}/{} loss {:.4} |g| {:.2} lr {:.2e}  {:.1} s/step, ETA {:.0} min",
                p.step,
                total,
                p.loss,
                p.grad_norm,
                p.lr,
                rate,
                rate * (total - p.step) as f64 / 60.0
            );
        }
        if let Some(e) = e {
            eprintln!(
                "  eval on {} test scenes: shape {:.1} % colour {:.1} % size {:.1} % position {:.1} % exact {:.1} %",
                e.scenes,
                100.0 * e.shape,
                100.0 * e.colour,
                100.0 * e.size,
                100.0 * e.position,
                100.0 * e.exact_match
            );
        }
    };
    let finished = trainer.train(
        a.save_every_minutes * 60.0,
        a.stop_after_minutes.map(|m| m * 60.0),
        &mut on_step,
    )?;
    let (wall, cpu) = trainer.times();
    if !finished {
        println!(
            "stopped at step {} of {} after {:.0} s of training ({:.0} CPU-s); continue with the same command and --resume",
            trainer.step(),
            total,
            wall,
            cpu
        );
        return Ok(());
    }
    trainer
        .write_parts(&tower, &out)
        .with_context(|| format!("writing {}", out.display()))?;
    write_note(&out, &cfg, &trainer, &a)?;
    let models = lm_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(crate::fetch::models_dir);
    let assembled = crate::fetch::assemble_smol(&out, &models, true)?;
    println!("assembled {}", assembled.display());
    println!(
        "trained {} steps in {:.0} s ({:.0} CPU-s); wrote {}",
        total,
        wall,
        cpu,
        out.display()
    );
    Ok(())
}

/// `TRAINING.md` beside the committed parts: the recipe, the command, the times and the curves.
fn write_note(
    out: &std::path::Path,
    cfg: &SmolConfig,
    trainer: &SmolTrainer,
    a: &Args,
) -> Result<()> {
    use std::fmt::Write as _;
    let (wall, cpu) = trainer.times();
    let mut s = String::new();
    writeln!(s, "# tiny-llava-smol: how it was trained\n")?;
    writeln!(
        s,
        "The vision tower of tiny-llava-synth (frozen), a new two-layer GELU projector (128 → 576 → 576) and \
         the real SmolLM2-135M-Instruct, frozen, with LoRA adapters of rank {} (alpha {}) on {} of every block; \
         the embedding matrix and the tied LM head are never trained. Targets: the canonical caption and \
         `<|im_end|>` after SmolLM2's chat template (default system turn, `Provide a one-sentence caption \
         for the provided image.`, then the image's {} tokens).\n",
        cfg.lora_rank,
        cfg.lora_alpha,
        cfg.lora_targets.join(", "),
        trainer.llava_config().image_seq_length
    )?;
    writeln!(s, "| setting | value |\n|---|---|")?;
    for (k, v) in [
        ("steps", cfg.steps.to_string()),
        ("scenes per step", cfg.batch_size.to_string()),
        (
            "peak lr, projector / adapters",
            format!("{} / {}", cfg.lr_projector, cfg.lr_adapters),
        ),
        (
            "warmup, then cosine to",
            format!("{} steps, {} of the peak", cfg.warmup, cfg.lr_floor),
        ),
        ("gradient clip", cfg.clip_norm.to_string()),
        (
            "seed / world seed / first scene",
            format!("{} / {} / {}", cfg.seed, cfg.world_seed, cfg.first_scene),
        ),
        (
            "training time (all resumed parts)",
            format!("{:.0} min wall, {:.0} CPU-min", wall / 60.0, cpu / 60.0),
        ),
    ] {
        writeln!(s, "| {k} | {v} |")?;
    }
    writeln!(
        s,
        "\nCommand: `cargo xtask train-synth --lm smollm2 --steps {} --batch {} --lr {} --lr-adapters {} --lora-rank {} --seed {} --eval-every {} --eval-scenes {}` \
         (add `--resume` to continue a run cut short; the state is saved every {} minutes).\n",
        cfg.steps, cfg.batch_size, cfg.lr_projector, cfg.lr_adapters, cfg.lora_rank, cfg.seed, cfg.eval_every, cfg.eval_scenes, a.save_every_minutes
    )?;
    writeln!(
        s,
        "## Loss (every 50 steps)\n\n| step | loss | grad norm |\n|---|---|---|"
    )?;
    for p in trainer
        .curve()
        .iter()
        .filter(|p| p.step.is_multiple_of(50) || p.step == 1)
    {
        writeln!(s, "| {} | {:.4} | {:.3} |", p.step, p.loss, p.grad_norm)?;
    }
    writeln!(
        s,
        "\n## Held-out greedy captions during training\n\n| step | scenes | shape | colour | size | position | exact caption |\n|---|---|---|---|---|---|---|"
    )?;
    for e in trainer.evals() {
        let r = &e.report;
        writeln!(
            s,
            "| {} | {} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {:.1} % |",
            e.step,
            r.scenes,
            100.0 * r.shape,
            100.0 * r.colour,
            100.0 * r.size,
            100.0 * r.position,
            100.0 * r.exact_match
        )?;
    }
    writeln!(s, "\nFull curves: `loss_curve.csv`, `eval_curve.csv`. Held-out scores: `cargo xtask eval-synth --model .cache/models/tiny-llava-smol` (docs/benchmarks.md).")?;
    std::fs::write(out.join("TRAINING.md"), s)
        .with_context(|| format!("writing {}", out.join("TRAINING.md").display()))?;
    Ok(())
}
