//! `coxlmm run`: the whole CoX-LMM pipeline for any model and dataset, as resumable steps in one
//! run folder: extract (train, test) → learn (each method) → ground (words, images) → evaluate →
//! report. Every step writes its files atomically and is skipped when its output is already there,
//! so an interrupted run is finished by running the same command again.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cox_decomp::{ConceptDictionary, Method};
use cox_ground_text::{
    ground_concepts, rnd_words, ConceptWords, GroundingParams, LmHeadRef, RndWordsParams,
    Vocabulary,
};
use cox_ground_visual::{most_activating, write_visual_grounding, SampleImage, VisualParams};
use cox_metrics::{MeanStd, Reconstruct};
use cox_snmf::{Par, SamplesRef};
use cox_store::{read_dictionary, read_run, read_run_samples, tensor_path, SampleRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{extract, learn};

/// The settings of a run; `run.json` keeps them, and a rerun with other settings is refused.
#[derive(clap::Args, Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunSettings {
    /// Model: a LLaVA-1.5 checkpoint directory or a hub id in the local Hugging Face cache.
    #[arg(long)]
    pub model: String,
    /// Dataset: coco:DIR or folder:DIR.
    #[arg(long)]
    pub data: String,
    /// Token of interest t.
    #[arg(long)]
    pub token: String,
    /// The layer whose residual stream is decomposed: a block index or `norm`.
    #[arg(long)]
    pub layer: String,
    /// Split the dictionary is learnt on.
    #[arg(long, default_value = "train")]
    pub train_split: String,
    /// Split the dictionary is evaluated on (empty: none).
    #[arg(long, default_value = "test")]
    pub test_split: String,
    /// Keep only the first N samples of each split (before the ground-truth filter).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Decompositions, comma-separated; the first is the one the report shows.
    #[arg(long, default_value = "snmf,pca,kmeans,simple")]
    pub methods: String,
    /// Number of concepts K.
    #[arg(long, default_value_t = 20)]
    pub k: usize,
    /// Semi-NMF's sparsity weight λ.
    #[arg(long = "lambda", default_value_t = 1.0)]
    pub lambda: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Most-activating samples per concept (visual grounding).
    #[arg(long, default_value_t = 5)]
    pub n_mas: usize,
    /// Grounded words per concept.
    #[arg(long, default_value_t = 10)]
    pub words: usize,
    /// Top-logit tokens decoded per concept before filtering.
    #[arg(long, default_value_t = 50)]
    pub top_tokens: usize,
    /// Greedy generation length limit.
    #[arg(long, default_value_t = 50)]
    pub max_new_tokens: usize,
    /// Extra Semi-NMF seeds fitted to measure dictionary stability (0: skip).
    #[arg(long, default_value_t = 0)]
    pub stability_seeds: usize,
    /// A BERT-family model directory for BERTScore (default: all-MiniLM-L6-v2 from
    /// `cargo xtask fetch` when present).
    #[arg(long)]
    pub bert: Option<PathBuf>,
    /// A CLIP model directory (HF `CLIPModel` layout) for CLIPScore; without it CLIPScore is
    /// reported as unavailable.
    #[arg(long)]
    pub clip: Option<PathBuf>,
    /// Test images explained in the report.
    #[arg(long, default_value_t = 12)]
    pub explain: usize,
    /// Layers captured during extraction besides `--layer` (comma-separated, or `all`), so that
    /// runs at other layers can share this run's stores (the layer sweep of `cargo xtask
    /// reproduce`).
    #[arg(long)]
    pub capture: Option<String>,
    /// The Noise-Imgs baseline (method.md §4.5): a finished run folder whose Semi-NMF dictionary
    /// was learnt on noise images; its words are evaluated on this run's test split like the
    /// methods' (`references.*_noise_imgs` in metrics.json).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_dict: Option<PathBuf>,
}

/// The `--layer` list given to extraction: `--layer` first, then `--capture`'s layers.
fn capture_layers(s: &RunSettings, num_layers: Option<usize>) -> Result<String> {
    let mut out = vec![s.layer.clone()];
    match s.capture.as_deref() {
        None | Some("") => {}
        Some("all") => {
            // Every layer in model order (`--layer` among them), so that runs at other layers ask
            // for the same store.
            let n = num_layers.context("--capture all needs the model's layer count")?;
            out = (0..n).map(|i| i.to_string()).collect();
            out.push("norm".into());
            if !out.contains(&s.layer) {
                out.insert(0, s.layer.clone());
            }
        }
        Some(list) => out.extend(list.split(',').map(|l| l.trim().to_string())),
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|l| !l.is_empty() && seen.insert(l.clone()));
    Ok(out.join(","))
}

#[derive(Parser)]
struct ExtractCli {
    #[command(flatten)]
    a: extract::Args,
}

#[derive(Parser)]
struct LearnCli {
    #[command(flatten)]
    a: learn::Args,
}

/// The files of a run folder.
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn settings(&self) -> PathBuf {
        self.root.join("run.json")
    }
    pub fn store(&self, split: &str) -> PathBuf {
        self.root.join("extract").join(split)
    }
    /// The dictionary's name (`tensor_path` adds `.safetensors`; the sidecar is `.json`).
    pub fn dict(&self, method: Method) -> PathBuf {
        self.root.join("dict").join(method.to_string())
    }
    pub fn grounding(&self, method: Method) -> PathBuf {
        self.root.join("ground").join(format!("{method}.json"))
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.json")
    }
    pub fn report(&self) -> PathBuf {
        self.root.join("report")
    }
    pub fn explain(&self) -> PathBuf {
        self.root.join("explain")
    }
}

/// Parses `--methods`.
pub fn methods(s: &RunSettings) -> Result<Vec<Method>> {
    let mut out = Vec::new();
    for m in s
        .methods
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        let m: Method = m
            .parse()
            .map_err(|e| anyhow::anyhow!("--methods {m:?}: {e}"))?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    if out.is_empty() {
        bail!("--methods is empty: give at least one of snmf, pca, kmeans, simple");
    }
    Ok(out)
}

/// Creates the run folder, or checks that the one there was made with the same settings.
pub fn open_run(dir: &RunDir, s: &RunSettings) -> Result<()> {
    std::fs::create_dir_all(dir.root())
        .with_context(|| format!("cannot create {}", dir.root().display()))?;
    let path = dir.settings();
    let now = json!({"format": "coxlmm-run", "version": 1, "settings": s});
    if path.is_file() {
        let text = std::fs::read_to_string(&path)?;
        let old: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a coxlmm run file", path.display()))?;
        if old.get("format").and_then(Value::as_str) != Some("coxlmm-run") {
            bail!(
                "{} is not a coxlmm run file; choose another --out",
                path.display()
            );
        }
        let (a, b) = (&old["settings"], &now["settings"]);
        let differ: Vec<String> = b
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| a.get(k.as_str()) != Some(*v))
            .map(|(k, v)| {
                format!(
                    "{k}: {} in the run, {} now",
                    a.get(k.as_str()).unwrap_or(&Value::Null),
                    v
                )
            })
            .collect();
        if !differ.is_empty() {
            bail!(
                "{} was made with other settings ({}); rerun with the same settings to resume it, \
                 or choose another --out",
                dir.root().display(),
                differ.join("; ")
            );
        }
        return Ok(());
    }
    cox_store::atomic_write(&path, serde_json::to_string_pretty(&now)?.as_bytes())?;
    Ok(())
}

/// Reads `run.json`.
pub fn read_settings(dir: &RunDir) -> Result<RunSettings> {
    let path = dir.settings();
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: not a coxlmm run folder (no run.json); make one with `coxlmm run` or `coxlmm demo`",
            dir.root().display()
        )
    })?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    serde_json::from_value(v["settings"].clone())
        .with_context(|| format!("{}: unreadable settings", path.display()))
}

fn step(name: &str) -> Instant {
    eprintln!("== {name}");
    Instant::now()
}

/// Runs every step that has not finished yet.
pub fn run(s: RunSettings, out: &Path) -> Result<()> {
    let dir = RunDir::new(out);
    let methods = methods(&s)?;
    if s.k == 0 {
        bail!("--k must be at least 1");
    }
    open_run(&dir, &s)?;
    let mut timings: Vec<(String, f64)> = Vec::new();

    // 1. Extraction (resumes by itself).
    let mut splits = vec![s.train_split.clone()];
    if !s.test_split.is_empty() {
        splits.push(s.test_split.clone());
    }
    let num_layers = if s.capture.as_deref() == Some("all") {
        let cfg = cox_model::Llava::load(&s.model, &Default::default())
            .with_context(|| format!("cannot load the model {}", s.model))?;
        Some(cfg.model.config().text_config.num_hidden_layers)
    } else {
        None
    };
    let extract_layers = capture_layers(&s, num_layers)?;
    for split in &splits {
        let t = step(&format!("extract {split}"));
        let store = dir.store(split);
        let mut argv: Vec<String> = vec![
            "extract".into(),
            "--model".into(),
            s.model.clone(),
            "--data".into(),
            s.data.clone(),
            "--split".into(),
            split.clone(),
            "--token".into(),
            s.token.clone(),
            "--layer".into(),
            extract_layers.clone(),
            "--max-new-tokens".into(),
            s.max_new_tokens.to_string(),
            "--out".into(),
            store.display().to_string(),
        ];
        if let Some(n) = s.limit {
            argv.extend(["--limit".into(), n.to_string()]);
        }
        let cli = ExtractCli::try_parse_from(&argv).context("extract settings")?;
        extract::run(cli.a).with_context(|| format!("extracting the {split} split"))?;
        timings.push((format!("extract {split}"), t.elapsed().as_secs_f64()));
    }

    // 2. One dictionary per method.
    let train = read_run(&dir.store(&s.train_split), Some(&s.layer))?;
    if train.matrix.rows < s.k {
        bail!(
            "only {} training samples generated {:?} but K = {}: lower --k, or extract more samples \
             (a larger --limit or split)",
            train.matrix.rows,
            s.token,
            s.k
        );
    }
    for &m in &methods {
        let path = tensor_path(&dir.dict(m));
        if path.is_file() && read_dictionary(&path).is_ok() {
            eprintln!("== learn {m}: done already ({})", path.display());
            continue;
        }
        let t = step(&format!("learn {m}"));
        let argv = vec![
            "learn".to_string(),
            "--activations".into(),
            dir.store(&s.train_split).display().to_string(),
            "--layer".into(),
            s.layer.clone(),
            "--method".into(),
            m.to_string(),
            "--k".into(),
            s.k.to_string(),
            "--lambda".into(),
            s.lambda.to_string(),
            "--seed".into(),
            s.seed.to_string(),
            "--out".into(),
            dir.dict(m).display().to_string(),
        ];
        let cli = LearnCli::try_parse_from(&argv).context("learn settings")?;
        learn::run(cli.a)?;
        timings.push((format!("learn {m}"), t.elapsed().as_secs_f64()));
    }

    // 3. Grounding in words (needs the model's LM head and tokenizer).
    let t = step("ground");
    let llava = cox_model::Llava::load(&s.model, &Default::default())
        .with_context(|| format!("cannot load the model {}", s.model))?;
    let head = lm_head(&llava)?;
    let hidden = llava.model.config().text_config.hidden_size;
    let vocab_rows = head.len() / hidden;
    let head_ref = LmHeadRef::new(&head, vocab_rows, hidden)?;
    let decoder = llava.tokenizer.inner();
    let vocab = Vocabulary::bundled();
    let gparams = GroundingParams {
        pre_num_top_tokens: s.top_tokens,
        num_grounded_words: s.words,
        apply_final_norm: None,
    };
    for &m in &methods {
        let path = dir.grounding(m);
        if path.is_file() {
            continue;
        }
        let d = read_dictionary(&tensor_path(&dir.dict(m)))?;
        let words = ground_concepts(
            head_ref,
            &d.concepts.data,
            d.concepts.rows,
            decoder,
            vocab,
            &gparams,
        )?;
        let counts: Vec<usize> = words.iter().map(|w| w.words.len().max(1)).collect();
        let rnd = rnd_words(
            head_ref,
            &counts,
            decoder,
            vocab,
            &RndWordsParams {
                seed: s.seed,
                ..Default::default()
            },
        )?;
        let file = Grounding {
            method: m.to_string(),
            words,
            rnd_words: rnd,
        };
        std::fs::create_dir_all(path.parent().expect("has parent"))?;
        cox_store::atomic_write(&path, serde_json::to_string_pretty(&file)?.as_bytes())?;
    }
    timings.push(("ground".into(), t.elapsed().as_secs_f64()));

    // 4. Evaluation.
    let t = step("evaluate");
    let mut metrics = evaluate(&dir, &s, &methods, &llava)?;
    timings.push(("evaluate".into(), t.elapsed().as_secs_f64()));
    metrics.timings = timings;
    cox_store::atomic_write(
        &dir.metrics(),
        serde_json::to_string_pretty(&metrics)?.as_bytes(),
    )?;

    // 5. Report.
    let t = step("report");
    let index = crate::report::write(&dir, &[])?;
    eprintln!("   {:.1} s", t.elapsed().as_secs_f64());
    print_summary(&s, &methods, &metrics);
    println!("report: {}", index.display());
    Ok(())
}

/// `grounding/<method>.json`.
#[derive(Serialize, Deserialize)]
pub struct Grounding {
    pub method: String,
    pub words: Vec<ConceptWords>,
    /// The Rnd-Words baseline: as many random-direction words as each concept has.
    pub rnd_words: Vec<ConceptWords>,
}

pub fn read_grounding(dir: &RunDir, m: Method) -> Result<Grounding> {
    let path = dir.grounding(m);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: run `coxlmm run` first", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is unreadable", path.display()))
}

/// The LM head as an f32 `vocab × hidden` matrix.
pub fn lm_head(llava: &cox_model::Llava) -> Result<Vec<f32>> {
    Ok(llava
        .model
        .lm_head()
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// A split's rows with their sample records.
pub struct SplitData {
    pub x: Vec<f32>,
    pub m: usize,
    pub b: usize,
    pub samples: Vec<SampleRecord>,
}

impl SplitData {
    /// The image path of every sample, in row order.
    pub fn image_paths(&self) -> Vec<PathBuf> {
        self.samples
            .iter()
            .map(|r| PathBuf::from(&r.image))
            .collect()
    }
}

pub fn load_split(dir: &RunDir, split: &str, layer: &str) -> Result<SplitData> {
    let store = dir.store(split);
    let run = read_run(&store, Some(layer))?;
    let mut by_ordinal: HashMap<usize, SampleRecord> = read_run_samples(&store)?
        .into_iter()
        .map(|r| (r.ordinal, r))
        .collect();
    let samples = run
        .ordinals
        .iter()
        .map(|o| {
            by_ordinal
                .remove(o)
                .with_context(|| format!("{}: no record for sample {o}", store.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SplitData {
        m: run.matrix.rows,
        b: run.matrix.cols,
        x: run.matrix.data,
        samples,
    })
}

pub fn concept_dictionary(d: &cox_store::DictionaryFile, m: Method) -> ConceptDictionary {
    ConceptDictionary {
        method: m,
        k: d.concepts.rows,
        n_features: d.concepts.cols,
        concepts: d.concepts.data.clone(),
        mean: d.mean.clone(),
        alpha: d.meta.lambda,
    }
}

/// Everything `metrics.json` holds.
#[derive(Serialize, Deserialize, Default)]
pub struct Metrics {
    pub token: String,
    pub train_samples: usize,
    pub test_samples: usize,
    pub methods: Vec<MethodMetrics>,
    /// BERTScore model name, or why BERTScore is unavailable.
    pub bertscore_model: String,
    /// CLIPScore model, or why CLIPScore is unavailable.
    pub clipscore_model: String,
    /// Rows that do not depend on the method (Rnd-Words, GT-captions).
    pub references: BTreeMap<String, Value>,
    /// Seconds per step of the invocation that finished the run.
    pub timings: Vec<(String, f64)>,
}

#[derive(Serialize, Deserialize, Default)]
pub struct MethodMetrics {
    pub method: String,
    pub k: usize,
    pub overlap: f64,
    pub mean_l0: f64,
    pub mean_hoyer: Option<f64>,
    pub zero_fraction: f64,
    pub dead_concepts: Vec<usize>,
    pub relative_error: Option<f64>,
    pub explained_variance: Option<f64>,
    pub recovery_auc_train: Option<f64>,
    pub recovery_auc_test: Option<f64>,
    pub recovery: Option<cox_metrics::RecoveryReport>,
    pub bertscore_top1: Option<MeanStd>,
    pub bertscore_top1_rnd_words: Option<MeanStd>,
    pub clipscore_top1: Option<MeanStd>,
    pub clipscore_top3: Option<MeanStd>,
    pub stability: Option<MeanStd>,
    pub fit_seconds: Option<f64>,
    /// Multimodal grounding (method.md §4.4): BERTScore F1 of each concept's words against the
    /// captions of its most-activating training samples, mean ± std over concepts.
    #[serde(default)]
    pub grounding_bertscore: Option<MeanStd>,
    /// The same with each concept's Rnd-Words.
    #[serde(default)]
    pub grounding_bertscore_rnd_words: Option<MeanStd>,
}

/// Ground-truth factors per sample id, when the dataset is a synthetic-world folder.
fn synthetic_factors(data: &str) -> Option<HashMap<String, cox_synth::SceneFactors>> {
    let dir = data.strip_prefix("folder:")?;
    let dir = Path::new(dir.split(',').next()?);
    if !dir.join("factors.jsonl").is_file() {
        return None;
    }
    let records = cox_synth::io::read_factors(dir).ok()?;
    Some(records.into_iter().map(|r| (r.id, r.factors)).collect())
}

fn labels_for(
    samples: &[SampleRecord],
    factors: &HashMap<String, cox_synth::SceneFactors>,
    token: &str,
) -> Option<Vec<Vec<String>>> {
    samples
        .iter()
        .map(|r| {
            let f = factors.get(&r.id)?;
            cox_synth::scene_labels(f, token, cox_synth::FactorKind::DEFAULT).ok()
        })
        .collect()
}

fn evaluate(
    dir: &RunDir,
    s: &RunSettings,
    methods: &[Method],
    llava: &cox_model::Llava,
) -> Result<Metrics> {
    let train = load_split(dir, &s.train_split, &s.layer)?;
    let test = if s.test_split.is_empty() {
        None
    } else {
        Some(load_split(dir, &s.test_split, &s.layer)?)
    };
    let factors = synthetic_factors(&s.data);
    let bert = crate::scores::BertRunner::open(s.bert.as_deref());
    let clip = crate::scores::ClipRunner::open(s.clip.as_deref());
    let mut out = Metrics {
        token: s.token.clone(),
        train_samples: train.m,
        test_samples: test.as_ref().map_or(0, |t| t.m),
        bertscore_model: bert.describe(),
        clipscore_model: clip.describe(),
        ..Default::default()
    };
    let _ = llava;
    for &m in methods {
        let d = read_dictionary(&tensor_path(&dir.dict(m)))?;
        let g = read_grounding(dir, m)?;
        let k = d.concepts.rows;
        let words: Vec<&[String]> = g.words.iter().map(|w| w.words.as_slice()).collect();
        let overlap = cox_metrics::overlap(&words)?;
        let acts = &d.activations.data;
        let sp = cox_metrics::sparsity(acts, train.m, k, 0.0)?;
        let how = match m {
            Method::KMeans | Method::Simple => Reconstruct::NearestAtom,
            _ => Reconstruct::Linear {
                codes: acts,
                mean: d.mean.as_deref(),
            },
        };
        let rec =
            cox_metrics::reconstruction(&train.x, train.m, train.b, &d.concepts.data, k, how)?;
        let mut mm = MethodMetrics {
            method: m.to_string(),
            k,
            overlap: overlap.overlap,
            mean_l0: sp.mean_l0,
            mean_hoyer: sp.mean_hoyer,
            zero_fraction: sp.zero_fraction,
            dead_concepts: sp.dead.clone(),
            relative_error: rec.relative_error,
            explained_variance: rec.explained_variance,
            fit_seconds: Some(d.meta.fit_seconds + d.meta.init_seconds),
            ..Default::default()
        };
        if let Some(f) = &factors {
            if let Some(labels) = labels_for(&train.samples, f, &s.token) {
                let r = cox_metrics::recovery_auc(acts, k, &labels)?;
                mm.recovery_auc_train = Some(r.mean_auc);
                mm.recovery = Some(r);
            }
        }
        if let Some(test) = &test {
            if test.m > 0 {
                let dict = concept_dictionary(&d, m);
                let x = SamplesRef::new(&test.x, test.m, test.b)?;
                let codes = dict.encode(x, Par::rayon(0))?;
                if let Some(f) = &factors {
                    if let Some(labels) = labels_for(&test.samples, f, &s.token) {
                        mm.recovery_auc_test =
                            Some(cox_metrics::recovery_auc(&codes, k, &labels)?.mean_auc);
                    }
                }
                let top1: Vec<usize> = (0..test.m)
                    .map(|i| top_concepts(&codes[i * k..(i + 1) * k], 1)[0])
                    .collect();
                let refs: Vec<Vec<String>> =
                    test.samples.iter().map(|r| r.captions.clone()).collect();
                if bert.available() {
                    let cands: Vec<&[String]> = top1.iter().map(|&c| words[c]).collect();
                    mm.bertscore_top1 = bert.top1(&cands, &refs)?;
                    let rnd: Vec<&[String]> = top1
                        .iter()
                        .map(|&c| g.rnd_words[c].words.as_slice())
                        .collect();
                    mm.bertscore_top1_rnd_words = bert.top1(&rnd, &refs)?;
                }
                if clip.available() {
                    let images = test.image_paths();
                    let (t1, t3) = clip.test_scores(&images, &codes, k, &g.words)?;
                    mm.clipscore_top1 = t1;
                    mm.clipscore_top3 = t3;
                }
            }
        }
        if bert.available() && train.m > 0 {
            let mas = most_activating(acts, train.m, k, s.n_mas)?;
            let refs: Vec<Vec<String>> = mas
                .iter()
                .map(|c| {
                    c.iter()
                        .flat_map(|a| train.samples[a.sample].captions.iter().cloned())
                        .collect()
                })
                .collect();
            mm.grounding_bertscore = bert.top1(&words, &refs)?;
            let rnd: Vec<&[String]> = g.rnd_words.iter().map(|w| w.words.as_slice()).collect();
            mm.grounding_bertscore_rnd_words = bert.top1(&rnd, &refs)?;
        }
        if m == Method::SemiNmf && s.stability_seeds > 0 {
            mm.stability = Some(stability(&train, s, &d.concepts.data, k)?);
        }
        out.methods.push(mm);
    }
    // The supervised ceiling of recovery: a linear probe of the representation, fitted on the
    // training rows and scored on the test rows (synthetic datasets only).
    if let (Some(test), Some(f)) = (&test, &factors) {
        if let (Some(ltr), Some(lte)) = (
            labels_for(&train.samples, f, &s.token),
            labels_for(&test.samples, f, &s.token),
        ) {
            if train.m > 0 && test.m > 0 {
                match cox_metrics::probe_auc(&train.x, &ltr, &test.x, &lte, train.b, 1e-2) {
                    Ok(p) => {
                        out.references
                            .insert("recovery_probe".into(), serde_json::to_value(p)?);
                    }
                    Err(e) => tracing::warn!("recovery probe skipped: {e}"),
                }
            }
        }
    }
    if let (Some(test), Some(noise)) = (&test, &s.noise_dict) {
        if test.m > 0 {
            noise_imgs(&RunDir::new(noise), test, &bert, &clip, &mut out)?;
        }
    }
    if let Some(test) = &test {
        if bert.available() && test.m > 0 {
            // GT-captions: the first reference caption scored against the others.
            let cands: Vec<Vec<String>> = test
                .samples
                .iter()
                .map(|r| vec![r.captions.first().cloned().unwrap_or_default()])
                .collect();
            let refs: Vec<Vec<String>> = test
                .samples
                .iter()
                .map(|r| r.captions.iter().skip(1).cloned().collect())
                .collect();
            let cand_refs: Vec<&[String]> = cands.iter().map(Vec::as_slice).collect();
            if let Some(ms) = bert.top1_sentences(&cand_refs, &refs)? {
                out.references
                    .insert("bertscore_gt_captions".into(), serde_json::to_value(ms)?);
            }
        }
    }
    Ok(out)
}

/// Noise-Imgs: another run's Semi-NMF dictionary (learnt on noise images) and its words, evaluated
/// on `test` with the Table 1 protocol.
fn noise_imgs(
    noise: &RunDir,
    test: &SplitData,
    bert: &crate::scores::BertRunner,
    clip: &crate::scores::ClipRunner,
    out: &mut Metrics,
) -> Result<()> {
    let d = read_dictionary(&tensor_path(&noise.dict(Method::SemiNmf)))
        .with_context(|| format!("--noise-dict {}", noise.root().display()))?;
    let g = read_grounding(noise, Method::SemiNmf)?;
    let k = d.concepts.rows;
    let codes = concept_dictionary(&d, Method::SemiNmf)
        .encode(SamplesRef::new(&test.x, test.m, test.b)?, Par::rayon(0))?;
    let top1: Vec<usize> = (0..test.m)
        .map(|i| top_concepts(&codes[i * k..(i + 1) * k], 1)[0])
        .collect();
    let refs: Vec<Vec<String>> = test.samples.iter().map(|r| r.captions.clone()).collect();
    let cands: Vec<&[String]> = top1.iter().map(|&c| g.words[c].words.as_slice()).collect();
    if let Some(ms) = bert.top1(&cands, &refs)? {
        out.references.insert(
            "bertscore_top1_noise_imgs".into(),
            serde_json::to_value(ms)?,
        );
    }
    if clip.available() {
        let images = test.image_paths();
        if let (Some(t1), _) = clip.test_scores(&images, &codes, k, &g.words)? {
            out.references.insert(
                "clipscore_top1_noise_imgs".into(),
                serde_json::to_value(t1)?,
            );
        }
    }
    Ok(())
}

/// The `n` concepts with the highest activation, highest first (ties: higher index first, as
/// numpy's stable argsort reversed).
pub fn top_concepts(acts: &[f32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..acts.len()).collect();
    idx.sort_by(|&a, &b| acts[b].total_cmp(&acts[a]).then(b.cmp(&a)));
    idx.truncate(n);
    idx
}

/// Dictionary stability: Semi-NMF refitted on `stability_seeds` seeded 80 % subsamples of the
/// training rows (the SVD initialisation makes full-data refits identical whatever the seed), all
/// dictionaries matched pairwise (Hungarian, cosine).
fn stability(train: &SplitData, s: &RunSettings, first: &[f32], k: usize) -> Result<MeanStd> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let keep = (train.m * 4 / 5).max(k);
    let mut dicts: Vec<Vec<f32>> = vec![first.to_vec()];
    for i in 1..=s.stability_seeds {
        let mut rows: Vec<usize> = (0..train.m).collect();
        rows.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
            s.seed + i as u64,
        ));
        rows.truncate(keep);
        rows.sort_unstable();
        let mut x = Vec::with_capacity(keep * train.b);
        for &r in &rows {
            x.extend_from_slice(&train.x[r * train.b..(r + 1) * train.b]);
        }
        let mut p = cox_decomp::DecompParams::new(Method::SemiNmf, k);
        p.seed = s.seed + i as u64;
        p.alpha = Some(s.lambda);
        let fit = p
            .build()?
            .fit(SamplesRef::new(&x, keep, train.b)?, Par::rayon(0))?;
        dicts.push(fit.dictionary.concepts);
    }
    let refs: Vec<&[f32]> = dicts.iter().map(Vec::as_slice).collect();
    let r =
        cox_metrics::stability_across_seeds(&refs, k, train.b, cox_metrics::Similarity::Cosine)?;
    Ok(MeanStd {
        mean: r.mean,
        std: r.std,
        n: r.pairs.len(),
    })
}

fn print_summary(s: &RunSettings, methods: &[Method], m: &Metrics) {
    println!(
        "{} samples for {:?} (train), {} (test); K = {}",
        m.train_samples, s.token, m.test_samples, s.k
    );
    println!(
        "{:<8} {:>8} {:>8} {:>9} {:>10} {:>10}",
        "method", "overlap", "L0", "rel.err", "recov.AUC", "BERT-F1"
    );
    for (mm, meth) in m.methods.iter().zip(methods) {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{:<8} {:>8.3} {:>8.2} {:>9} {:>10} {:>10}",
            meth.to_string(),
            mm.overlap,
            mm.mean_l0,
            f(mm.relative_error),
            f(mm.recovery_auc_test.or(mm.recovery_auc_train)),
            f(mm.bertscore_top1.as_ref().map(|b| b.mean)),
        );
    }
    if let Some(p) = m
        .references
        .get("recovery_probe")
        .and_then(|v| v.get("mean_auc"))
        .and_then(Value::as_f64)
    {
        println!("linear-probe ceiling of recovery AUC (supervised, test): {p:.3}");
    }
}

/// Writes visual grounding (thumbnails, grids) of `mas` into `site`.
pub fn visual(
    site: &Path,
    train: &SplitData,
    acts: &[f32],
    k: usize,
    n: usize,
) -> Result<cox_ground_visual::VisualOutput> {
    let mas = most_activating(acts, train.m, k, n)?;
    let samples: Vec<SampleImage> = train
        .samples
        .iter()
        .map(|r| SampleImage {
            id: r.id.clone(),
            image: PathBuf::from(&r.image),
        })
        .collect();
    Ok(write_visual_grounding(
        &mas,
        &samples,
        site,
        &VisualParams::default(),
    )?)
}
