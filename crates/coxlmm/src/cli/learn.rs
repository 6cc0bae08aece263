//! `coxlmm learn`: activations file → concept dictionary file.

use std::path::PathBuf;

use anyhow::{Context, Result};
use coxlmm::learn::{learn, write, Activations, LearnParams};

use crate::cli::MethodArg;

#[derive(clap::Args)]
pub struct Args {
    /// Activation matrix: a safetensors file (`[M, B]`, f16/bf16/f32/f64), an activation-store
    /// directory written by `coxlmm extract`, or `synthetic:MxB` for generated token-like data
    /// (docs/method.md §7).
    #[arg(long, default_value = "synthetic:2000x512")]
    activations: String,
    /// Name of the tensor to read (default: `activations`, or the file's only 2-D tensor).
    #[arg(long)]
    tensor: Option<String>,
    /// Layer to read from an activation-store directory (needed when it holds several).
    #[arg(long)]
    layer: Option<String>,
    /// Decomposition: snmf (the paper's Semi-NMF), pca, kmeans or simple.
    #[arg(long, value_enum, default_value_t = MethodArg::SemiNmf)]
    method: MethodArg,
    /// Number of concepts K.
    #[arg(long, default_value_t = 20, allow_negative_numbers = true)]
    k: usize,
    /// Sparsity weight λ of Semi-NMF (the reference's alpha).
    #[arg(long = "lambda", default_value_t = 1.0, allow_negative_numbers = true)]
    lambda: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Iteration limit (Semi-NMF 5000, K-Means 5000 by default).
    #[arg(long, allow_negative_numbers = true)]
    max_iter: Option<usize>,
    /// Output dictionary: writes OUT.safetensors and OUT.json.
    #[arg(long)]
    out: PathBuf,
}

fn source(a: &Args) -> Result<Activations> {
    if let Some(size) = a.activations.strip_prefix("synthetic:") {
        let (m, b) = size
            .split_once('x')
            .and_then(|(m, b)| Some((m.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
            .with_context(|| {
                format!(
                    "--activations synthetic:MxB expected, got {:?}",
                    a.activations
                )
            })?;
        return Ok(Activations::Synthetic { m, b });
    }
    let path = PathBuf::from(&a.activations);
    Ok(if path.is_dir() {
        Activations::Store {
            dir: path,
            layer: a.layer.clone(),
        }
    } else {
        Activations::File {
            path,
            tensor: a.tensor.clone(),
        }
    })
}

pub fn run(a: Args) -> Result<()> {
    let acts = source(&a)?.load(a.seed)?;
    let params = LearnParams {
        method: a.method.into(),
        k: a.k,
        lambda: a.lambda,
        seed: a.seed,
        max_iter: a.max_iter,
    };
    let learnt = learn(&acts, &params)?;
    let path = write(&a.out, &learnt)?;
    outln!("{learnt}")?;
    outln!(
        "  wrote        {} and {}",
        path.display(),
        cox_store::sidecar_path(&path).display()
    )?;
    Ok(())
}
