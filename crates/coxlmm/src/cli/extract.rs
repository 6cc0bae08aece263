//! `coxlmm extract` and `coxlmm merge`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;
use cox_data::{shard_from_env, DataSource, Shard, Split, Subsample};
use cox_hook::{parse_layers, GtFilter, PositionRule};
use cox_store::DiskDtype;
use coxlmm::extract::{extract, ExtractParams, DEFAULT_PROMPT};
use coxlmm::model::DeviceSpec;
use coxlmm::{Model, ModelDtype, ModelOptions};

/// Test hook: stop (exit code 3, as if killed) after this many shards were written.
const FAIL_AFTER_ENV: &str = "COXLMM_FAIL_AFTER_SHARDS";

/// `--gt-filter`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GtFilterArg {
    /// The token in the first reference caption (the reference).
    First,
    /// The token in any reference caption.
    Any,
    /// No filter.
    None,
}

impl From<GtFilterArg> for GtFilter {
    fn from(g: GtFilterArg) -> Self {
        match g {
            GtFilterArg::First => GtFilter::First,
            GtFilterArg::Any => GtFilter::Any,
            GtFilterArg::None => GtFilter::None,
        }
    }
}

/// `--position`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PositionArg {
    /// The position whose next-token prediction is the token (the reference).
    Predicting,
    /// The token's own position.
    AtToken,
}

impl From<PositionArg> for PositionRule {
    fn from(p: PositionArg) -> Self {
        match p {
            PositionArg::Predicting => PositionRule::Predicting,
            PositionArg::AtToken => PositionRule::AtToken,
        }
    }
}

/// `--model-dtype`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelDtypeArg {
    F32,
    F16,
    Bf16,
}

impl From<ModelDtypeArg> for ModelDtype {
    fn from(d: ModelDtypeArg) -> Self {
        match d {
            ModelDtypeArg::F32 => ModelDtype::F32,
            ModelDtypeArg::F16 => ModelDtype::F16,
            ModelDtypeArg::Bf16 => ModelDtype::Bf16,
        }
    }
}

/// `--dtype` (of the stored vectors).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DiskDtypeArg {
    F16,
    F32,
}

impl From<DiskDtypeArg> for DiskDtype {
    fn from(d: DiskDtypeArg) -> Self {
        match d {
            DiskDtypeArg::F16 => DiskDtype::F16,
            DiskDtypeArg::F32 => DiskDtype::F32,
        }
    }
}

#[derive(clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// Model: a checkpoint directory (LLaVA-1.5, Qwen2-VL or Qwen2.5-VL; chosen by config.json's
    /// model_type) or a hub id in the local Hugging Face cache.
    #[arg(long)]
    model: String,
    /// Dataset: coco:DIR, coco:DIR,images=ROOT or folder:DIR.
    #[arg(long)]
    data: DataSource,
    /// Split(s), comma-separated: train, val, test, restval.
    #[arg(long, default_value = "train")]
    split: String,
    /// Token of interest t (one word).
    #[arg(long)]
    token: String,
    /// Layer(s) to capture: block indices and/or `norm`, e.g. `31` or `31,norm`.
    #[arg(long)]
    layer: String,
    /// Output store directory (created, or resumed when it holds this run's store).
    #[arg(long)]
    out: PathBuf,
    /// Keep only the first N selected samples.
    #[arg(long, allow_negative_numbers = true)]
    limit: Option<usize>,
    /// Draw a seeded subsample of N samples first.
    #[arg(long, allow_negative_numbers = true)]
    sample: Option<usize>,
    /// Seed of --sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Process part I of N (0-based), e.g. 0/8. Default: from SLURM_ARRAY_TASK_ID or
    /// JOB_COMPLETION_INDEX (with --num-shards) when set, else everything.
    #[arg(long)]
    shard: Option<Shard>,
    /// Shard count N for JOB_COMPLETION_INDEX (Kubernetes does not export it); overrides
    /// SLURM_ARRAY_TASK_COUNT.
    #[arg(long)]
    num_shards: Option<usize>,
    /// Ground-truth filter before inference.
    #[arg(long, value_enum, default_value_t = GtFilterArg::First)]
    gt_filter: GtFilterArg,
    /// Recorded position.
    #[arg(long, value_enum, default_value_t = PositionArg::Predicting)]
    position: PositionArg,
    /// Instruction given with the image.
    #[arg(long, default_value = DEFAULT_PROMPT)]
    prompt: String,
    /// Greedy generation length limit.
    #[arg(long, default_value_t = 50)]
    max_new_tokens: usize,
    /// transformers' repetition penalty for greedy generation (default: the checkpoint's
    /// generation_config.json value, e.g. 1.05 for Qwen2-VL-Instruct; 1 turns it off).
    #[arg(long)]
    repetition_penalty: Option<f32>,
    /// Dtype of the stored vectors.
    #[arg(long, value_enum, default_value_t = DiskDtypeArg::F16)]
    dtype: DiskDtypeArg,
    /// Samples per shard file (the unit of resumption).
    #[arg(long, default_value_t = 256)]
    shard_size: usize,
    /// Device: cpu, or cuda / cuda:N (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Compute dtype of the model.
    #[arg(long, value_enum, default_value_t = ModelDtypeArg::F32)]
    model_dtype: ModelDtypeArg,
    /// Images decoded, preprocessed and encoded by the vision tower together (generation then
    /// runs per image). Does not change the stored rows, so a store may be resumed with another
    /// value.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Image resampling to reproduce: torchvision (transformers 5.x, the default for a plain
    /// CLIPImageProcessor) or pil (transformers 4.x, as the reference implementation ran).
    #[arg(long, value_enum)]
    image_backend: Option<ImageBackendArg>,
    /// Accept `folder:` image paths that lead outside the dataset folder (absolute paths or `..`
    /// climbing above it); by default such a line of captions.jsonl is an error.
    #[arg(long)]
    allow_outside_paths: bool,
    /// Generate max-new-tokens tokens, ignoring EOS (for random test models).
    #[arg(long, hide = true)]
    ignore_eos: bool,
    /// Write the wall time of each phase of this process's extraction to this JSON file
    /// (`cargo xtask bench-extract`).
    #[arg(long, hide = true)]
    timings: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    if a.shard_size == 0 {
        anyhow::bail!("--shard-size must be positive");
    }
    if a.batch == 0 {
        anyhow::bail!("--batch must be positive");
    }
    let shard = match a.shard {
        Some(s) => Some(s),
        None => shard_from_env(a.num_shards)?,
    };
    let mut p = ExtractParams::new(
        a.data,
        Split::parse_list(&a.split)?,
        &a.token,
        parse_layers(&a.layer)?,
    );
    p.limit = a.limit;
    p.sample = a.sample.map(|n| Subsample { n, seed: a.seed });
    p.shard = shard;
    p.gt_filter = a.gt_filter.into();
    p.position = a.position.into();
    p.prompt = a.prompt;
    p.max_new_tokens = a.max_new_tokens;
    p.dtype = a.dtype.into();
    p.shard_size = a.shard_size;
    p.batch = a.batch;
    p.load = cox_data::LoadOptions {
        allow_outside_paths: a.allow_outside_paths,
    };
    p.stop_after_shards = std::env::var(FAIL_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let model = Model::load(
        &a.model,
        &ModelOptions {
            dtype: a.model_dtype.into(),
            device: a.device,
            ignore_eos: a.ignore_eos,
            repetition_penalty: a.repetition_penalty,
            image_backend: a.image_backend.map(|b| match b {
                ImageBackendArg::Torchvision => cox_model::resample::ResizeBackend::Torchvision,
                ImageBackendArg::Pil => cox_model::resample::ResizeBackend::Pil,
            }),
        },
    )?;
    let outcome = extract(&model, &p, &a.out)?;
    if let Some(path) = &a.timings {
        std::fs::write(path, serde_json::to_string_pretty(&outcome.timings)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    outln!("{}", outcome.summary)?;
    Ok(())
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The merged store directory.
    #[arg(long)]
    out: PathBuf,
    /// The part stores (from `--shard I/N`), in any order.
    #[arg(required = true)]
    parts: Vec<PathBuf>,
}

pub fn merge(a: MergeArgs) -> Result<()> {
    let m = cox_store::merge_runs(&a.out, &a.parts)?;
    outln!(
        "merged {} parts into {}: {} samples, {} rows, {} shards",
        a.parts.len(),
        a.out.display(),
        m.samples_done(),
        m.rows(),
        m.shards.len()
    )?;
    Ok(())
}

/// `--image-backend`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ImageBackendArg {
    /// torchvision's uint8 anti-aliased resize (transformers 5.x).
    Torchvision,
    /// Pillow's resize (transformers 4.x).
    Pil,
}
