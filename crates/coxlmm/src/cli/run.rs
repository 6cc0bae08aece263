//! `coxlmm run`: the whole pipeline in a run folder.

use std::path::PathBuf;

use anyhow::Result;
use coxlmm::pipeline::RunOutcome;
use coxlmm::settings::defaults;
use coxlmm::{Method, Model, ModelOptions, RunFolder, RunSettings};

use crate::cli::MethodArg;

#[derive(clap::Args)]
pub struct Args {
    /// Model: a checkpoint directory (LLaVA-1.5, Qwen2-VL or Qwen2.5-VL; chosen by config.json's
    /// model_type) or a hub id in the local Hugging Face cache.
    #[arg(long)]
    model: String,
    /// Dataset: coco:DIR or folder:DIR.
    #[arg(long)]
    data: String,
    /// Token of interest t.
    #[arg(long)]
    token: String,
    /// The layer whose residual stream is decomposed: a block index or `norm`.
    #[arg(long)]
    layer: String,
    /// Split the dictionary is learnt on.
    #[arg(long, default_value = "train")]
    train_split: String,
    /// Split the dictionary is evaluated on (empty: none).
    #[arg(long, default_value = "test")]
    test_split: String,
    /// Keep only the first N samples of each split (before the ground-truth filter).
    #[arg(long, allow_negative_numbers = true)]
    limit: Option<usize>,
    /// Decompositions, comma-separated (snmf, pca, kmeans, simple); the first is the one the
    /// report shows.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "snmf,pca,kmeans,simple"
    )]
    methods: Vec<MethodArg>,
    /// Number of concepts K.
    #[arg(long, default_value_t = defaults::K, allow_negative_numbers = true)]
    k: usize,
    /// Semi-NMF's sparsity weight λ.
    #[arg(long = "lambda", default_value_t = defaults::LAMBDA, allow_negative_numbers = true)]
    lambda: f64,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Most-activating samples per concept (visual grounding).
    #[arg(long, default_value_t = defaults::N_MAS)]
    n_mas: usize,
    /// Grounded words per concept.
    #[arg(long, default_value_t = defaults::WORDS)]
    words: usize,
    /// Top-logit tokens decoded per concept before filtering.
    #[arg(long, default_value_t = defaults::TOP_TOKENS)]
    top_tokens: usize,
    /// Greedy generation length limit.
    #[arg(long, default_value_t = defaults::MAX_NEW_TOKENS)]
    max_new_tokens: usize,
    /// transformers' repetition penalty for greedy generation (default: the checkpoint's
    /// generation_config.json value, e.g. 1.05 for Qwen2-VL-Instruct; 1 turns it off).
    #[arg(long)]
    repetition_penalty: Option<f32>,
    /// Extra Semi-NMF seeds fitted to measure dictionary stability (0: skip).
    #[arg(long, default_value_t = 0)]
    stability_seeds: usize,
    /// A BERT-family model directory for BERTScore (default: all-MiniLM-L6-v2 from
    /// `cargo xtask fetch` when present).
    #[arg(long)]
    bert: Option<PathBuf>,
    /// A CLIP model directory (HF `CLIPModel` layout) for CLIPScore; without it CLIPScore is
    /// reported as unavailable.
    #[arg(long)]
    clip: Option<PathBuf>,
    /// Test images explained in the report.
    #[arg(long, default_value_t = defaults::EXPLAIN)]
    explain: usize,
    /// Layers captured during extraction besides `--layer` (comma-separated, or `all`), so that
    /// runs at other layers can share this run's stores (the layer sweep of `cargo xtask
    /// reproduce`).
    #[arg(long)]
    capture: Option<String>,
    /// The Noise-Imgs baseline (docs/method.md §3.2): a finished run folder whose
    /// Semi-NMF dictionary was learnt on noise images; its words are evaluated on this run's test
    /// split like the methods' (`references.*_noise_imgs` in metrics.json).
    #[arg(long)]
    noise_dict: Option<PathBuf>,
    /// Accept `folder:` image paths that lead outside the dataset folder (absolute paths or `..`
    /// climbing above it); by default such a line of captions.jsonl is an error.
    #[arg(long)]
    allow_outside_paths: bool,
    /// The run folder (created, or resumed when it holds this run).
    #[arg(long)]
    out: PathBuf,
}

impl Args {
    fn settings(self) -> RunSettings {
        let mut methods: Vec<Method> = Vec::new();
        for m in self.methods.into_iter().map(Method::from) {
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        RunSettings {
            model: self.model,
            data: self.data,
            token: self.token,
            layer: self.layer,
            train_split: self.train_split,
            test_split: self.test_split,
            limit: self.limit,
            methods,
            k: self.k,
            lambda: self.lambda,
            seed: self.seed,
            n_mas: self.n_mas,
            words: self.words,
            top_tokens: self.top_tokens,
            max_new_tokens: self.max_new_tokens,
            stability_seeds: self.stability_seeds,
            bert: self.bert,
            clip: self.clip,
            explain: self.explain,
            capture: self.capture,
            noise_dict: self.noise_dict,
            allow_outside_paths: self.allow_outside_paths,
            repetition_penalty: self.repetition_penalty,
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    let folder = RunFolder::new(&a.out);
    let s = a.settings();
    // Settings are checked against the folder before the model is loaded.
    s.check()?;
    folder.open(&s)?;
    let model = Model::load(
        &s.model,
        &ModelOptions {
            repetition_penalty: s.repetition_penalty,
            ..ModelOptions::default()
        },
    )?;
    let outcome = coxlmm::pipeline::run(&s, &folder, &model)?;
    print_outcome(&s, &outcome)?;
    Ok(())
}

/// What `run` and `demo` print on stdout: each store's summary, each dictionary learnt, the
/// metrics table and the report's path.
pub fn print_outcome(s: &RunSettings, o: &RunOutcome) -> std::io::Result<()> {
    for e in &o.extracted {
        outln!("{e}")?;
    }
    for (l, path) in &o.learnt {
        outln!("{l}")?;
        outln!(
            "  wrote        {} and {}",
            path.display(),
            cox_store::sidecar_path(path).display()
        )?;
    }
    outln!(
        "{}",
        coxlmm::evaluate::Summary {
            settings: s,
            metrics: &o.metrics
        }
    )?;
    outln!("report: {}", o.report_index.display())
}
