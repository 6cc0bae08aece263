//! The extraction step: dataset + model → sharded activation store, one residual vector per sample
//! whose caption generates the token of interest (`docs/method.md` §2).

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cox_data::{DataSource, LoadOptions, Shard, Split, Subsample, Subset};
use cox_hook::{
    layer_name, select_generation, GtFilter, PositionRule, SelectOptions, SkipReason,
    TokenOfInterest,
};
use cox_model::{GenerateTimings, LayerSel, ResidualCapture};
use cox_store::{read_run_samples, DiskDtype, RunManifest, RunSpec, RunWriter, SampleRecord};
use rayon::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Error, Model};

/// The LLaVA instruction of the reference (`docs/method.md` §2).
pub const DEFAULT_PROMPT: &str = "\nProvide a one-sentence caption for the provided image.";

/// Why a sample of a store contributes no vector: the store's typed reason, stored by name.
pub use cox_store::Skip;

/// The store's reason for a selection that kept nothing.
fn skip_of(r: SkipReason) -> Skip {
    match r {
        SkipReason::GtFilter => Skip::GtFilter,
        SkipReason::TokenNotGenerated => Skip::TokenNotGenerated,
        SkipReason::PositionNotCaptured => Skip::PositionNotCaptured,
    }
}

/// The name of a ground-truth filter in store settings.
pub fn gt_filter_name(g: GtFilter) -> &'static str {
    match g {
        GtFilter::First => "first",
        GtFilter::Any => "any",
        GtFilter::None => "none",
    }
}

/// The name of a position rule in store settings.
pub fn position_name(p: PositionRule) -> &'static str {
    match p {
        PositionRule::Predicting => "predicting",
        PositionRule::AtToken => "at-token",
    }
}

/// What to extract.
#[derive(Clone, Debug)]
pub struct ExtractParams {
    pub data: DataSource,
    pub splits: Vec<Split>,
    /// The token of interest (one word).
    pub token: String,
    /// The layers captured (at least one).
    pub layers: Vec<LayerSel>,
    /// Keep only the first N selected samples.
    pub limit: Option<usize>,
    /// A seeded subsample drawn first.
    pub sample: Option<Subsample>,
    /// This process's part of the selection (`None`: all of it).
    pub shard: Option<Shard>,
    pub gt_filter: GtFilter,
    pub position: PositionRule,
    /// The instruction given with the image.
    pub prompt: String,
    pub max_new_tokens: usize,
    /// Dtype of the stored vectors.
    pub dtype: DiskDtype,
    /// Samples per shard file (the unit of resumption).
    pub shard_size: usize,
    /// Images through the vision tower together (does not change the stored rows).
    pub batch: usize,
    /// Return [`Error::StoppedForTest`] after this many shards were written (a test hook that
    /// simulates a killed process).
    pub stop_after_shards: Option<usize>,
    /// How the dataset is read: by default a `folder:` image path that leads outside the folder
    /// is refused ([`cox_data::LoadOptions::allow_outside_paths`]).
    pub load: LoadOptions,
}

impl ExtractParams {
    /// The reference's choices: the ground-truth filter on the first caption, the position
    /// predicting the token, the LLaVA caption prompt, 50 new tokens, f16 storage.
    pub fn new(data: DataSource, splits: Vec<Split>, token: &str, layers: Vec<LayerSel>) -> Self {
        Self {
            data,
            splits,
            token: token.to_string(),
            layers,
            limit: None,
            sample: None,
            shard: None,
            gt_filter: GtFilter::First,
            position: PositionRule::Predicting,
            prompt: DEFAULT_PROMPT.to_string(),
            max_new_tokens: 50,
            dtype: DiskDtype::F16,
            shard_size: 256,
            batch: 8,
            stop_after_shards: None,
            load: LoadOptions::default(),
        }
    }
}

/// Wall time of the phases of one extraction (the samples it processed, not the ones a resumed
/// store already held); `cargo xtask bench-extract` reads it.
#[derive(Debug, Default, serde::Serialize)]
pub struct Timings {
    /// The whole loop over samples (from the first batch to the last write; no model load).
    pub total_s: f64,
    /// Decoding and preprocessing images (in parallel over a batch).
    pub load_s: f64,
    /// The vision tower and projector (once per batch).
    pub vision_s: f64,
    /// Tokenizing the prompt and building its embeddings.
    pub prompt_s: f64,
    /// The prompt through the decoder and the first token.
    pub prefill_s: f64,
    /// The other generated tokens, and detokenizing the caption.
    pub decode_s: f64,
    /// The hook: assembling the captured states and selecting the recorded row.
    pub hook_s: f64,
    /// Writing the store (shard files every `shard_size` samples).
    pub store_s: f64,
    pub samples: usize,
    pub images: usize,
    pub generations: usize,
    pub decode_steps: usize,
    pub kept: usize,
    pub batch: usize,
}

/// What a finished store holds (all its samples, including those of earlier processes).
#[derive(Debug, Clone)]
pub struct ExtractSummary {
    pub store: PathBuf,
    pub layers: Vec<String>,
    pub scanned: usize,
    pub gt_filtered: usize,
    /// Samples whose caption generated the token.
    pub generated: usize,
    pub rows: usize,
    pub hidden_size: usize,
    pub dtype: DiskDtype,
    pub skipped: BTreeMap<Skip, usize>,
    /// The image paths of the samples skipped as [`Skip::ImageUnreadable`], in sample order.
    pub unreadable: Vec<String>,
    pub shards: usize,
}

impl ExtractSummary {
    /// Unreadable images named in the summary; the store's sample lines list them all.
    pub const UNREADABLE_SHOWN: usize = 10;
}

impl fmt::Display for ExtractSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layers = if self.layers.len() == 1 {
            format!("layer {}", self.layers[0])
        } else {
            format!("layers {}", self.layers.join(", "))
        };
        writeln!(
            f,
            "extracted {} of {} samples ({layers}) into {}",
            self.rows,
            self.scanned,
            self.store.display()
        )?;
        writeln!(f, "  scanned          {}", self.scanned)?;
        writeln!(
            f,
            "  gt-filtered      {} (passed {})",
            self.gt_filtered,
            self.scanned - self.gt_filtered
        )?;
        writeln!(f, "  token generated  {}", self.generated)?;
        writeln!(
            f,
            "  kept             {} rows × {} ({}) per layer",
            self.rows, self.hidden_size, self.dtype
        )?;
        let total: usize = self.skipped.values().sum();
        if total == 0 {
            writeln!(f, "  skipped          none")?;
        } else {
            writeln!(f, "  skipped          {total}")?;
            for (reason, n) in &self.skipped {
                writeln!(f, "    {:<22}{n:>6}  {}", reason.name(), reason.describe())?;
            }
        }
        if !self.unreadable.is_empty() {
            let shown = &self.unreadable[..self.unreadable.len().min(Self::UNREADABLE_SHOWN)];
            writeln!(f, "  unreadable       {}", shown.join(", "))?;
            let more = self.unreadable.len() - shown.len();
            if more > 0 {
                writeln!(
                    f,
                    "                   and {more} more (every sample line with \"skip\": \
                     \"image_unreadable\" in the store's shard-*.jsonl files)"
                )?;
            }
        }
        write!(f, "  shards           {}", self.shards)
    }
}

/// The result of [`extract`].
#[derive(Debug)]
pub struct ExtractOutcome {
    pub summary: ExtractSummary,
    pub timings: Timings,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Captions the selected samples with `model` and writes the store at `out`, resuming a store of
/// the same settings.
pub fn extract(model: &Model, p: &ExtractParams, out: &Path) -> Result<ExtractOutcome> {
    if p.shard_size == 0 {
        bail!("the shard size must be positive");
    }
    if p.batch == 0 {
        bail!("the batch size must be positive");
    }
    if p.layers.is_empty() {
        bail!("no layer to capture");
    }
    let lmm = model.lmm();
    let subset = Subset {
        subsample: p.sample,
        limit: p.limit,
        shard: None,
    };
    // A limit or subsample of 0 would write an empty store that looks complete.
    subset.check()?;
    let samples = p.data.load_with(&p.splits, &p.load)?;
    let selection = subset.indices(samples.len());
    let selection_total = selection.len();
    let range = p
        .shard
        .map_or(0..selection_total, |s| s.range(selection_total));
    let mine: Vec<(usize, &cox_data::Sample)> =
        range.clone().map(|o| (o, &samples[selection[o]])).collect();

    let config_sha = hex(&Sha256::digest(model.config_bytes()?));
    cox_hook::check_layers(&p.layers, model.num_layers())?;
    let toi = TokenOfInterest::new(lmm.tokenizer(), &p.token)
        .with_context(|| format!("token of interest {:?}", p.token))?;
    let layer_names: Vec<String> = p.layers.iter().map(|&l| layer_name(l)).collect();
    let split_names: Vec<&str> = p.splits.iter().map(|s| s.as_str()).collect();
    let (model_key, weights) = model_identity(model)?;
    let mut settings = json!({
        "model": model_key,
        "model_config_sha256": config_sha,
        "model_weights": weights,
        "model_dtype": model.options().dtype.name(),
        "token": p.token,
        "position": position_name(p.position),
        "gt_filter": gt_filter_name(p.gt_filter),
        "prompt": p.prompt,
        "max_new_tokens": p.max_new_tokens,
        "ignore_eos": model.options().ignore_eos,
        "dataset": p.data.to_string(),
        "split": split_names.join(","),
        "sample": p.sample.map(|s| json!({"n": s.n, "seed": s.seed})),
        "limit": p.limit,
    });
    // Recorded only when chosen, so stores written without the option keep their settings.
    if let Some(b) = model.options().image_backend {
        settings["image_backend"] = json!(b.name());
    }
    let penalty = model.repetition_penalty();
    if penalty != 1.0 {
        settings["repetition_penalty"] = json!(penalty);
    }
    let spec = RunSpec {
        settings: settings.as_object().expect("object").clone(),
        layers: layer_names,
        dtype: p.dtype,
        hidden_size: model.hidden_size(),
        shard_size: p.shard_size,
        selection_total,
        part: p.shard.map(|s| (s.index(), s.count())),
        ordinal_start: range.start,
        total_samples: range.len(),
    };
    check_same_weights(out, model, &spec)?;
    let mut writer = RunWriter::open(out, spec)?;
    // Damaged shards (truncated, deleted, altered) are re-created first: the writer knows which
    // samples they held and asks for exactly those, then for the samples never written.
    for d in writer.damaged() {
        eprintln!("{d}");
    }
    let todo_ordinals: Vec<usize> = writer.todo().into_iter().flatten().collect();
    let done = range.len() - todo_ordinals.len();
    let shards_at_start = writer.manifest().shards.len();
    if done > 0 && !todo_ordinals.is_empty() {
        eprintln!(
            "resuming {}: {done} of {} samples already stored",
            out.display(),
            range.len()
        );
    }
    if done > 0 {
        // The stored samples must be the ones this selection names (same dataset files).
        for rec in writer.verified_samples()? {
            let (o, s) = mine[rec.ordinal - range.start];
            if rec.id != s.id {
                bail!(
                    "{}: sample {o} is {:?} in the store but {:?} in {}; the dataset changed since \
                     this store was started: extract into another folder",
                    out.display(),
                    rec.id,
                    s.id,
                    p.data
                );
            }
        }
    }
    let todo: Vec<(usize, &cox_data::Sample)> = todo_ordinals
        .iter()
        .map(|&o| mine[o - range.start])
        .collect();
    let bar = progress_bar(range.len() as u64, done as u64);
    let capture = ResidualCapture::new(p.layers.iter().copied());
    let gen_params = model.generate_params(p.max_new_tokens, &capture);
    let opts = SelectOptions {
        gt: p.gt_filter,
        position: p.position,
    };
    let mut kept_now = 0usize;
    let mut tm = Timings {
        batch: p.batch,
        ..Timings::default()
    };
    let mut gen_tm = GenerateTimings::default();
    let loop_start = Instant::now();
    for chunk in todo.chunks(p.batch) {
        // Decode and preprocess the batch's images (those past the ground-truth filter) in
        // parallel, then run the vision tower once over the readable ones.
        let t = Instant::now();
        let pixels: Vec<Option<cox_model::Result<cox_model::Pixels>>> = chunk
            .par_iter()
            .map(|(_, s)| {
                p.gt_filter
                    .accepts(&p.token, &s.captions)
                    .then(|| lmm.load_pixels(&s.image_path))
            })
            .collect();
        tm.load_s += secs(t.elapsed());
        let t = Instant::now();
        let readable: Vec<cox_model::Pixels> = pixels
            .iter()
            .filter_map(|px| px.as_ref()?.as_ref().ok().cloned())
            .collect();
        tm.images += readable.len();
        let mut features = lmm.encode_images(&readable)?.into_iter();
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
            let skip = match px {
                None => Some(Skip::GtFilter),
                Some(Err(e)) => {
                    tracing::warn!("sample {:?} skipped: {e}", s.id);
                    Some(Skip::ImageUnreadable)
                }
                Some(Ok(_)) => {
                    let feats = features
                        .next()
                        .expect("one feature tensor per readable image");
                    let t = Instant::now();
                    let input = lmm.prepare_with_features(&p.prompt, Some(&feats))?;
                    tm.prompt_s += secs(t.elapsed());
                    let t = Instant::now();
                    let before = gen_tm;
                    let generation = lmm.generate_timed(&input, &gen_params, &mut gen_tm)?;
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
                            None
                        }
                        (None, reason) => Some(reason.map_or(Skip::TokenNotGenerated, skip_of)),
                    }
                }
            };
            rec.skip = skip;
            let t = Instant::now();
            writer.push(rec, vectors)?;
            tm.store_s += secs(t.elapsed());
            tm.samples += 1;
            bar.inc(1);
            bar.set_message(format!("kept {kept_now}"));
            if let Some(n) = p.stop_after_shards {
                if writer.manifest().shards.len() >= shards_at_start + n {
                    bar.abandon();
                    return Err(Error::StoppedForTest {
                        shards: n,
                        variable: "stop_after_shards",
                    }
                    .into());
                }
            }
        }
    }
    bar.finish_and_clear();
    let t = Instant::now();
    let manifest = writer.finish()?;
    tm.store_s += secs(t.elapsed());
    tm.total_s = secs(loop_start.elapsed());
    tm.prefill_s = secs(gen_tm.prefill);
    tm.decode_s += secs(gen_tm.decode);
    tm.hook_s += secs(gen_tm.capture);
    tm.generations = gen_tm.generations;
    tm.decode_steps = gen_tm.decode_steps;
    tm.kept = kept_now;
    Ok(ExtractOutcome {
        summary: summarise(out, &manifest)?,
        timings: tm,
    })
}

/// The file, under the user's cache folder, that caches the SHA-256 of weight files by path,
/// length and modification time, so that a multi-gigabyte checkpoint is hashed once, not at
/// every extraction.
const WEIGHTS_CACHE: &str = "coxlmm/weights-sha256.json";

/// `$XDG_CACHE_HOME/coxlmm/…`, else `$HOME/.cache/coxlmm/…`; `None` (no cache) when neither is
/// set.
fn weights_cache() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join(WEIGHTS_CACHE))
}

/// How a store's settings name the model: its directory made canonical (so `./model`, an
/// absolute path and a link to it are one model) or, for a hub id, the id; and each weight file
/// (`model.safetensors` or the shards its index lists) with its length and SHA-256, so that a
/// checkpoint changed in place is not mistaken for the one a store was started with.
pub fn model_identity(model: &Model) -> Result<(String, serde_json::Value)> {
    let given = Path::new(model.id());
    let key = if given.is_dir() {
        std::fs::canonicalize(given)
            .with_context(|| format!("cannot resolve the model folder {}", given.display()))?
            .display()
            .to_string()
    } else {
        model.id().to_string()
    };
    let files = cox_model::Checkpoint::find_files(model.dir())?;
    let prints = cox_store::fingerprint_files(&files, weights_cache().as_deref())?;
    let weights = files
        .iter()
        .zip(prints)
        .map(|(f, p)| {
            // Named relative to the checkpoint (a hub snapshot links its files to blobs).
            let name = f.strip_prefix(model.dir()).unwrap_or(f);
            json!({"file": name.display().to_string(), "bytes": p.bytes, "sha256": p.sha256})
        })
        .collect();
    Ok((key, serde_json::Value::Array(weights)))
}

/// Refuses to extend the store at `out` with weights other than those it was extracted with
/// (the store's settings would refuse it too, but without saying what to do about it).
fn check_same_weights(out: &Path, model: &Model, spec: &RunSpec) -> Result<()> {
    // An unreadable manifest is for the store writer to report.
    let Ok(Some(m)) = cox_store::read_manifest(out) else {
        return Ok(());
    };
    let now = &spec.settings["model_weights"];
    let why = match m.spec.settings.get("model_weights") {
        Some(old) if old == now => return Ok(()),
        Some(old) => {
            let files = |v: &serde_json::Value| -> BTreeMap<String, String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| {
                        let s = |k: &str| f[k].as_str().map_or(f[k].to_string(), str::to_string);
                        (
                            s("file"),
                            format!("{} bytes, sha256 {}", f["bytes"], s("sha256")),
                        )
                    })
                    .collect()
            };
            let (old, new) = (files(old), files(now));
            let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            let diffs: Vec<String> = names
                .into_iter()
                .filter(|n| old.get(*n) != new.get(*n))
                .map(|n| {
                    let show = |v: Option<&String>| v.map_or("absent", String::as_str).to_string();
                    format!(
                        "{n}: {} in the store, {} now",
                        show(old.get(n)),
                        show(new.get(n))
                    )
                })
                .collect();
            format!(
                "its rows were extracted with other weights ({}), so the checkpoint changed since \
                 the store was started (restoring that checkpoint would let it resume)",
                diffs.join("; ")
            )
        }
        None => "the store does not record its model's weights (an older coxlmm wrote it), so its \
                 rows cannot be checked against these weights"
            .to_string(),
    };
    Err(Error::OtherWeights {
        store: out.to_path_buf(),
        model: model.id().to_string(),
        why,
    }
    .into())
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

/// Counts a store's samples by outcome.
pub fn summarise(store: &Path, m: &RunManifest) -> Result<ExtractSummary> {
    let samples = read_run_samples(store)?;
    let mut skipped: BTreeMap<Skip, usize> = BTreeMap::new();
    for r in samples.iter().filter_map(|s| s.skip) {
        *skipped.entry(r).or_default() += 1;
    }
    let unreadable = samples
        .iter()
        .filter(|s| s.skip == Some(Skip::ImageUnreadable))
        .map(|s| s.image.clone())
        .collect();
    let scanned = samples.len();
    let gt_filtered = skipped.get(&Skip::GtFilter).copied().unwrap_or(0);
    let generated = samples.iter().filter(|s| s.token_index.is_some()).count()
        + skipped
            .get(&Skip::PositionNotCaptured)
            .copied()
            .unwrap_or(0);
    Ok(ExtractSummary {
        store: store.to_path_buf(),
        layers: m.spec.layers.clone(),
        scanned,
        gt_filtered,
        generated,
        rows: m.rows(),
        hidden_size: m.spec.hidden_size,
        dtype: m.spec.dtype,
        skipped,
        unreadable,
        shards: m.shards.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(unreadable: usize) -> ExtractSummary {
        ExtractSummary {
            store: PathBuf::from("out"),
            layers: vec!["31".into()],
            scanned: 20,
            gt_filtered: 2,
            generated: 5,
            rows: 5,
            hidden_size: 8,
            dtype: DiskDtype::F16,
            skipped: BTreeMap::from([
                (Skip::GtFilter, 2),
                (Skip::ImageUnreadable, unreadable),
                (Skip::TokenNotGenerated, 13 - unreadable),
            ]),
            unreadable: (0..unreadable).map(|i| format!("img/{i}.png")).collect(),
            shards: 1,
        }
    }

    /// The summary says what was extracted, each skip reason with its count and meaning, and
    /// names the unreadable images, at most ten of them.
    #[test]
    fn summary_names_reasons_and_caps_the_unreadable_list() {
        let text = summary(12).to_string();
        assert!(
            text.starts_with("extracted 5 of 20 samples (layer 31) into out\n"),
            "{text}"
        );
        assert!(text.contains("  skipped          15\n"), "{text}");
        assert!(
            text.contains(&format!(
                "    image_unreadable          12  {}\n",
                Skip::ImageUnreadable.describe()
            )),
            "{text}"
        );
        let names: Vec<String> = (0..10).map(|i| format!("img/{i}.png")).collect();
        assert!(
            text.contains(&format!("  unreadable       {}\n", names.join(", "))),
            "{text}"
        );
        assert!(text.contains("and 2 more"), "{text}");
        assert!(!text.contains("img/10.png"), "{text}");

        let text = summary(1).to_string();
        assert!(text.contains("  unreadable       img/0.png\n"), "{text}");
        assert!(!text.contains("more"), "{text}");
    }
}
