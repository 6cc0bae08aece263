//! `coxlmm extract`: dataset + model → sharded activation store (one residual vector per sample
//! whose caption generates the token of interest).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cox_data::{shard_from_env, DataSource, Shard, Split, Subsample, Subset};
use cox_hook::{
    layer_name, parse_layers, select_generation, GtFilter, PositionRule, SelectOptions, SkipReason,
    TokenOfInterest,
};
use cox_model::{GenerateTimings, Llava, LoadOptions, ResidualCapture};
use cox_store::{read_run_samples, DiskDtype, RunSpec, RunWriter, SampleRecord};
use rayon::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The LLaVA instruction of the reference (method.md §1.2).
pub(crate) const DEFAULT_PROMPT: &str = "\nProvide a one-sentence caption for the provided image.";

/// Test hook: exit (as if killed) after this many shards were written by this process.
const FAIL_AFTER_ENV: &str = "COXLMM_FAIL_AFTER_SHARDS";

#[derive(clap::Args)]
#[command(args_override_self = true)]
pub struct Args {
    /// Model: a LLaVA-1.5 checkpoint directory or a hub id in the local Hugging Face cache.
    #[arg(long)]
    model: String,
    /// Dataset: coco:DIR, coco:DIR,images=ROOT or folder:DIR.
    #[arg(long)]
    data: String,
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
    #[arg(long)]
    limit: Option<usize>,
    /// Draw a seeded subsample of N samples first.
    #[arg(long)]
    sample: Option<usize>,
    /// Seed of --sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Process part I of N (0-based), e.g. 0/8. Default: from SLURM_ARRAY_TASK_ID or
    /// JOB_COMPLETION_INDEX (with --num-shards) when set, else everything.
    #[arg(long)]
    shard: Option<String>,
    /// Shard count N for JOB_COMPLETION_INDEX (Kubernetes does not export it); overrides
    /// SLURM_ARRAY_TASK_COUNT.
    #[arg(long)]
    num_shards: Option<usize>,
    /// Ground-truth filter before inference: t in the first caption, in any caption, or none.
    #[arg(long, default_value = "first", value_parser = ["first", "any", "none"])]
    gt_filter: String,
    /// Recorded position: the one predicting t (reference) or t's own.
    #[arg(long, default_value = "predicting", value_parser = ["predicting", "at-token"])]
    position: String,
    /// Instruction given with the image.
    #[arg(long, default_value = DEFAULT_PROMPT)]
    prompt: String,
    /// Greedy generation length limit.
    #[arg(long, default_value_t = 50)]
    max_new_tokens: usize,
    /// Dtype of the stored vectors: f16 or f32.
    #[arg(long, default_value = "f16")]
    dtype: DiskDtype,
    /// Samples per shard file (the unit of resumption).
    #[arg(long, default_value_t = 256)]
    shard_size: usize,
    /// Device: cpu, or cuda / cuda:N (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Compute dtype of the model: f32, f16 or bf16.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16", "bf16"])]
    model_dtype: String,
    /// Images decoded, preprocessed and encoded by the vision tower together (generation then
    /// runs per image). Does not change the stored rows, so a store may be resumed with another
    /// value.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Generate max-new-tokens tokens, ignoring EOS (for random test models).
    #[arg(long, hide = true)]
    ignore_eos: bool,
    /// Write the wall time of each phase of this process's extraction to this JSON file
    /// (`cargo xtask bench-extract`).
    #[arg(long, hide = true)]
    timings: Option<PathBuf>,
}

/// Wall time of the phases of one `coxlmm extract` process (the samples it processed, not the
/// ones a resumed store already held), written by the hidden `--timings FILE`.
#[derive(Debug, Default, serde::Serialize)]
struct Timings {
    /// The whole loop over samples (from the first batch to the last write; no model load).
    total_s: f64,
    /// Decoding and preprocessing images (in parallel over a batch).
    load_s: f64,
    /// The vision tower and projector (once per batch).
    vision_s: f64,
    /// Tokenizing the prompt and building its embeddings.
    prompt_s: f64,
    /// The prompt through the decoder and the first token.
    prefill_s: f64,
    /// The other generated tokens, and detokenizing the caption.
    decode_s: f64,
    /// The hook: assembling the captured states and selecting the recorded row.
    hook_s: f64,
    /// `RunWriter::push` (shard files written every `--shard-size` samples).
    store_s: f64,
    samples: usize,
    images: usize,
    generations: usize,
    decode_steps: usize,
    kept: usize,
    batch: usize,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn skip_name(r: SkipReason) -> &'static str {
    match r {
        SkipReason::GtFilter => "gt_filter",
        SkipReason::TokenNotGenerated => "token_not_generated",
        SkipReason::PositionNotCaptured => "position_not_captured",
    }
}

pub fn run(a: Args) -> Result<()> {
    if a.shard_size == 0 {
        bail!("--shard-size must be positive");
    }
    if a.batch == 0 {
        bail!("--batch must be positive");
    }
    let source: DataSource = a.data.parse()?;
    let splits = Split::parse_list(&a.split)?;
    let gt = match a.gt_filter.as_str() {
        "first" => GtFilter::First,
        "any" => GtFilter::Any,
        _ => GtFilter::None,
    };
    let position = match a.position.as_str() {
        "at-token" => PositionRule::AtToken,
        _ => PositionRule::Predicting,
    };
    let shard: Option<Shard> = match &a.shard {
        Some(s) => Some(s.parse()?),
        None => shard_from_env(a.num_shards)?,
    };

    let samples = source.load(&splits)?;
    let selection = Subset {
        subsample: a.sample.map(|n| Subsample { n, seed: a.seed }),
        limit: a.limit,
        shard: None,
    }
    .indices(samples.len());
    let selection_total = selection.len();
    let range = shard.map_or(0..selection_total, |s| s.range(selection_total));
    let mine: Vec<(usize, &cox_data::Sample)> =
        range.clone().map(|o| (o, &samples[selection[o]])).collect();

    let device = match a.device.as_str() {
        "cpu" => candle_core::Device::Cpu,
        d => {
            let n = match d.strip_prefix("cuda") {
                Some("") => 0,
                Some(n) => n
                    .strip_prefix(':')
                    .and_then(|n| n.parse().ok())
                    .with_context(|| format!("--device {d}: expected cpu, cuda or cuda:N"))?,
                None => bail!("--device {d}: expected cpu, cuda or cuda:N"),
            };
            candle_core::Device::new_cuda(n).with_context(|| {
                format!("--device {d}: no CUDA device (is coxlmm built with --features cuda?)")
            })?
        }
    };
    let dtype = match a.model_dtype.as_str() {
        "f16" => candle_core::DType::F16,
        "bf16" => candle_core::DType::BF16,
        _ => candle_core::DType::F32,
    };
    let load = LoadOptions {
        dtype,
        device,
        ..LoadOptions::default()
    };
    let mut llava = Llava::load(&a.model, &load)
        .with_context(|| format!("cannot load the model {}", a.model))?;
    if a.ignore_eos {
        llava.tokenizer.eos_token_ids.clear();
    }
    let config_path = llava.dir.join("config.json");
    let config_sha = hex(&Sha256::digest(
        std::fs::read(&config_path).with_context(|| format!("{}", config_path.display()))?,
    ));
    let layers = parse_layers(&a.layer)?;
    let cfg = llava.model.config();
    cox_hook::check_layers(&layers, cfg.text_config.num_hidden_layers)?;
    let hidden = cfg.text_config.hidden_size;
    let toi = TokenOfInterest::new(llava.tokenizer.inner(), &a.token)
        .with_context(|| format!("token of interest {:?}", a.token))?;
    let layer_names: Vec<String> = layers.iter().map(|&l| layer_name(l)).collect();

    let settings = json!({
        "model": a.model,
        "model_config_sha256": config_sha,
        "model_dtype": a.model_dtype,
        "token": a.token,
        "position": a.position,
        "gt_filter": a.gt_filter,
        "prompt": a.prompt,
        "max_new_tokens": a.max_new_tokens,
        "ignore_eos": a.ignore_eos,
        "dataset": source.to_string(),
        "split": a.split,
        "sample": a.sample.map(|n| json!({"n": n, "seed": a.seed})),
        "limit": a.limit,
    });
    let spec = RunSpec {
        settings: settings.as_object().expect("object").clone(),
        layers: layer_names,
        dtype: a.dtype,
        hidden_size: hidden,
        shard_size: a.shard_size,
        selection_total,
        part: shard.map(|s| (s.index(), s.count())),
        ordinal_start: range.start,
        total_samples: range.len(),
    };
    let mut writer = RunWriter::open(&a.out, spec)?;
    let start = writer.next_ordinal();
    let fail_after: Option<usize> = std::env::var(FAIL_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let shards_at_start = writer.manifest().shards.len();
    if start > range.start && !writer.manifest().complete {
        eprintln!(
            "resuming {}: {} of {} samples already stored",
            a.out.display(),
            start - range.start,
            range.len()
        );
    }

    if start > range.start {
        // The stored samples must be the ones this command selects (same dataset files).
        let stored = read_run_samples(&a.out)?;
        for (rec, (o, s)) in stored.iter().zip(&mine) {
            if rec.ordinal != *o || rec.id != s.id {
                bail!(
                    "{}: sample {o} is {:?} in the store but {:?} in {}; the dataset changed since \
                     this store was started: choose another --out",
                    a.out.display(),
                    rec.id,
                    s.id,
                    source
                );
            }
        }
    }
    let todo = &mine[start - range.start..];
    let bar = progress_bar(range.len() as u64, (start - range.start) as u64);
    let capture = ResidualCapture::new(layers.iter().copied());
    let opts = SelectOptions { gt, position };
    let mut kept_now = 0usize;
    let mut tm = Timings {
        batch: a.batch,
        ..Timings::default()
    };
    let mut gen_tm = GenerateTimings::default();
    let loop_start = Instant::now();
    for chunk in todo.chunks(a.batch) {
        // Decode and preprocess the batch's images (those past the ground-truth filter) in
        // parallel, then run the vision tower once over the readable ones.
        let t = Instant::now();
        let pixels: Vec<Option<cox_model::Result<candle_core::Tensor>>> = chunk
            .par_iter()
            .map(|(_, s)| {
                gt.accepts(&a.token, &s.captions)
                    .then(|| llava.load_pixels(&s.image_path))
            })
            .collect();
        tm.load_s += secs(t.elapsed());
        let t = Instant::now();
        let readable: Vec<candle_core::Tensor> = pixels
            .iter()
            .filter_map(|p| p.as_ref()?.as_ref().ok().cloned())
            .collect();
        tm.images += readable.len();
        let mut features = llava.encode_images(&readable)?.into_iter();
        tm.vision_s += secs(t.elapsed());
        for (&(ordinal, s), px) in chunk.iter().zip(pixels) {
            let mut rec = SampleRecord {
                ordinal,
                id: s.id.clone(),
                image: s.image_path.display().to_string(),
                captions: s.captions.clone(),
                generated: None,
                token_index: None,
                token_id: None,
                position: None,
                row: None,
                skip: None,
            };
            let mut vectors = None;
            match px {
                None => rec.skip = Some(skip_name(SkipReason::GtFilter).into()),
                Some(Err(e)) => rec.skip = Some(format!("image_unreadable: {e}")),
                Some(Ok(_)) => {
                    let feats = features
                        .next()
                        .expect("one feature tensor per readable image");
                    let t = Instant::now();
                    let input = llava.prepare_with_features(&a.prompt, Some(&feats))?;
                    tm.prompt_s += secs(t.elapsed());
                    let t = Instant::now();
                    let before = gen_tm;
                    let generation =
                        llava.generate_timed(&input, a.max_new_tokens, &capture, &mut gen_tm)?;
                    // Detokenizing the caption is the part of the call no phase timed.
                    let timed = (gen_tm.prefill + gen_tm.decode + gen_tm.capture)
                        - (before.prefill + before.decode + before.capture);
                    tm.decode_s += secs(t.elapsed().saturating_sub(timed));
                    rec.generated = Some(generation.text.clone());
                    let t = Instant::now();
                    let sel = select_generation(&toi, &s.captions, &generation, &opts)?;
                    tm.hook_s += secs(t.elapsed());
                    match (sel.kept, sel.skip_reason) {
                        (Some(r), _) => {
                            rec.token_index = Some(r.token_index);
                            rec.token_id = Some(r.token_id);
                            rec.position = Some(r.position);
                            vectors = Some(r.vectors);
                            kept_now += 1;
                        }
                        (None, reason) => {
                            rec.skip =
                                Some(reason.map_or("token_not_generated", skip_name).to_string())
                        }
                    }
                }
            }
            let t = Instant::now();
            writer.push(rec, vectors)?;
            tm.store_s += secs(t.elapsed());
            tm.samples += 1;
            bar.inc(1);
            bar.set_message(format!("kept {kept_now}"));
            if let Some(n) = fail_after {
                if writer.manifest().shards.len() >= shards_at_start + n {
                    bar.abandon();
                    eprintln!("{FAIL_AFTER_ENV}={n}: stopping as if killed");
                    std::process::exit(3);
                }
            }
        }
    }
    bar.finish_and_clear();
    let t = Instant::now();
    let manifest = writer.finish()?;
    tm.store_s += secs(t.elapsed());
    tm.total_s = secs(loop_start.elapsed());
    if let Some(path) = &a.timings {
        tm.prefill_s = secs(gen_tm.prefill);
        tm.decode_s += secs(gen_tm.decode);
        tm.hook_s += secs(gen_tm.capture);
        tm.generations = gen_tm.generations;
        tm.decode_steps = gen_tm.decode_steps;
        tm.kept = kept_now;
        std::fs::write(path, serde_json::to_string_pretty(&tm)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    summary(&a, &manifest)
}

fn progress_bar(total: u64, done: u64) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} samples, {msg}, {per_sec}, ETA {eta}",
        )
        .expect("valid template"),
    );
    bar.set_position(done);
    bar.reset_eta();
    bar
}

fn summary(a: &Args, m: &cox_store::RunManifest) -> Result<()> {
    let samples = read_run_samples(&a.out)?;
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    for s in &samples {
        if let Some(r) = &s.skip {
            let key = r.split(':').next().unwrap_or(r).to_string();
            *skipped.entry(key).or_default() += 1;
        }
    }
    let scanned = samples.len();
    let gt_filtered = skipped.get("gt_filter").copied().unwrap_or(0);
    let generated = samples.iter().filter(|s| s.token_index.is_some()).count()
        + skipped.get("position_not_captured").copied().unwrap_or(0);
    println!(
        "extracted {} into {}",
        m.spec.layers.join(", "),
        a.out.display()
    );
    println!("  scanned          {scanned}");
    println!(
        "  gt-filtered      {gt_filtered} (passed {})",
        scanned - gt_filtered
    );
    println!("  token generated  {generated}");
    println!(
        "  kept             {} rows × {} ({})",
        m.rows(),
        m.spec.hidden_size,
        m.spec.dtype
    );
    if skipped.is_empty() {
        println!("  skipped          none");
    } else {
        let list: Vec<String> = skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("  skipped          {}", list.join(", "));
    }
    println!("  shards           {}", m.shards.len());
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    println!(
        "merged {} parts into {}: {} samples, {} rows, {} shards",
        a.parts.len(),
        a.out.display(),
        m.samples_done(),
        m.rows(),
        m.shards.len()
    );
    Ok(())
}
