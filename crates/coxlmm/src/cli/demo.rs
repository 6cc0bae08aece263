//! `coxlmm demo`: the whole pipeline offline on the synthetic world and a model trained on it.

use std::path::PathBuf;

use anyhow::Result;
use coxlmm::demo::{demo, DemoModel, DemoParams};

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (the world, the stores, the dictionaries and the report go in it).
    #[arg(long, default_value = "target/demo")]
    out: PathBuf,
    /// Token of interest: a shape noun of the world (circle, square, triangle, star, cross, diamond).
    #[arg(long, default_value = "circle")]
    token: String,
    /// Layer: a decoder block index or `norm` (default: the model's last block).
    #[arg(long)]
    layer: Option<String>,
    /// Training scenes generated (about a third show the token's shape; default 2400, 1200 with
    /// `--model smol`, whose 135M-parameter decoder captions ~20× slower).
    #[arg(long)]
    train: Option<usize>,
    /// Test scenes generated (default 600, 300 with `--model smol`).
    #[arg(long)]
    test: Option<usize>,
    /// Number of concepts K.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    k: usize,
    /// Semi-NMF's λ.
    #[arg(long = "lambda", default_value_t = 1.0, allow_negative_numbers = true)]
    lambda: f64,
    /// Seed of the world and of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The model: `synth` (the committed tiny-llava-synth, fast), `smol` (tiny-llava-smol: the
    /// real SmolLM2-135M-Instruct decoder; run `cargo xtask fetch` first) or a checkpoint
    /// directory trained on the synthetic world.
    #[arg(long, default_value = "synth")]
    model: DemoModel,
}

pub fn run(a: Args) -> Result<()> {
    let (train, test) = a.model.default_world();
    let p = DemoParams {
        out: a.out,
        token: a.token,
        layer: a.layer,
        train: a.train.unwrap_or(train),
        test: a.test.unwrap_or(test),
        k: a.k,
        lambda: a.lambda,
        seed: a.seed,
        model: a.model,
    };
    let outcome = demo(&p)?;
    super::run::print_outcome(&p.settings(&p.model.dir())?, &outcome)?;
    Ok(())
}
