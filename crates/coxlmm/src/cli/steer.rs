//! `coxlmm steer`: caption images before and after adding a concept's direction to the residual
//! stream (or setting its activation), and `coxlmm causal`: causal validity on the synthetic world.

use std::path::PathBuf;

use anyhow::{bail, Result};
use coxlmm::causal::{causal_validity, CausalOptions};
use coxlmm::steer::{steer_images, Intervention, Positions, SteerContext, VectorSource};
use coxlmm::{Method, Model, ModelOptions, RunFolder};

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (made by `coxlmm run` or `coxlmm demo`).
    #[arg(long)]
    run: PathBuf,
    /// The dictionary: snmf, pca, kmeans or simple (default: the run's first method).
    #[arg(long)]
    method: Option<String>,
    /// The concept index K.
    #[arg(long)]
    concept: usize,
    /// Steering strength: the vector added is α times the steering vector (for `atom`, α counts
    /// the concept's mean positive activation).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "set")]
    alpha: Option<f32>,
    /// Instead of adding, set the concept's activation to this value in the dictionary's
    /// encoding of every edited state (Semi-NMF and PCA).
    #[arg(long, allow_negative_numbers = true)]
    set: Option<f32>,
    /// Where to edit: generated, prompt or all.
    #[arg(long, default_value = "generated")]
    positions: Positions,
    /// The steering vector: atom, mean-shift, word:WORD or file:PATH (a safetensors [1, B]).
    #[arg(long, default_value = "atom")]
    vector: VectorSource,
    /// Steer the samples of this split of the run's dataset instead of image files.
    #[arg(long, conflicts_with = "images")]
    split: Option<String>,
    /// At most this many samples of --split.
    #[arg(long, default_value_t = 8)]
    limit: usize,
    /// Images to steer.
    images: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let folder = RunFolder::new(&a.run);
    let method = a
        .method
        .as_deref()
        .map(|m| m.parse::<Method>().map_err(anyhow::Error::msg))
        .transpose()?;
    let ctx = SteerContext::load(&folder, method)?;
    let intervention = match (a.alpha, a.set) {
        (Some(alpha), None) => Intervention::Add { alpha },
        (None, Some(value)) => Intervention::SetActivation { value },
        _ => bail!("pass --alpha A (add the steering vector) or --set V (set the activation)"),
    };
    let images: Vec<(String, PathBuf)> = if let Some(split) = &a.split {
        folder
            .load_split(split, &ctx.settings.layer)?
            .samples
            .iter()
            .take(a.limit)
            .map(|r| (r.id.clone(), PathBuf::from(&r.image)))
            .collect()
    } else {
        a.images
            .iter()
            .map(|p| (cox_store::sanitized_stem(p), p.clone()))
            .collect()
    };
    if images.is_empty() {
        bail!("nothing to steer: pass image files or --split test");
    }
    let model = Model::load(&ctx.settings.model, &ModelOptions::default())?;
    let record = steer_images(
        &model,
        &ctx,
        a.concept,
        &a.vector,
        &intervention,
        a.positions,
        &images,
    )?;
    let path = folder.write_steer(&record)?;
    outln!(
        "{} concept {} at block {} ({} positions, {}):",
        record.method.label(),
        record.concept,
        record.block,
        record.positions,
        match &record.intervention {
            Intervention::Add { alpha } => format!(
                "+{alpha} × {} vector of norm {:.3}",
                record.source.slug(),
                record.vector_norm.unwrap_or(0.0)
            ),
            Intervention::SetActivation { value } => format!("activation set to {value}"),
        }
    )?;
    for c in &record.captions {
        outln!("{}", c.id)?;
        outln!("  before: {}", c.before)?;
        outln!("  after:  {}", c.after)?;
    }
    outln!(
        "{:.0}% of the captions changed; saved in {} (shown by `coxlmm report --run {}`)",
        100.0 * record.changed(),
        path.display(),
        a.run.display()
    )?;
    Ok(())
}

#[derive(clap::Args)]
pub struct CausalArgs {
    /// A finished run on the synthetic world (made by `coxlmm run` or `coxlmm demo`).
    #[arg(long)]
    run: PathBuf,
    /// Test scenes steered per factor value.
    #[arg(long, default_value_t = 8)]
    scenes: usize,
    /// Steering strengths (comma-separated), in units of the training vectors' RMS distance to
    /// their mean.
    #[arg(long, value_delimiter = ',', default_values_t = [0.5f32, 1.0, 2.0, 4.0])]
    alphas: Vec<f32>,
    /// Where to add the directions: generated, prompt or all.
    #[arg(long, default_value = "all")]
    positions: Positions,
    /// Seed of the random control directions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn causal(a: CausalArgs) -> Result<()> {
    let folder = RunFolder::new(&a.run);
    let settings = folder.read_settings()?;
    let model = Model::load(&settings.model, &ModelOptions::default())?;
    let opts = CausalOptions {
        scenes: a.scenes,
        alphas: a.alphas,
        positions: a.positions,
        seed: a.seed,
        ..CausalOptions::default()
    };
    let report = causal_validity(&model, &folder, &opts)?;
    folder.write_causal(&report)?;
    outln!("direction      α     factors  success  specificity  fluency")?;
    for r in &report.summary {
        outln!(
            "{:<12} {:>5}  {:>7}  {:>7.3}  {:>11.3}  {:>7.3}",
            r.direction,
            r.alpha,
            r.factors,
            r.success,
            r.specificity,
            r.fluency
        )?;
    }
    outln!(
        "ablation (concept projected out): p(token) before → after, p(factor word) before → after"
    )?;
    for r in &report.ablation {
        outln!(
            "{:<12} {:.3} → {:.3}   {:.3} → {:.3}",
            r.method,
            r.token_before,
            r.token_after,
            r.word_before,
            r.word_after
        )?;
    }
    outln!("saved in {}", folder.causal().display())?;
    Ok(())
}
