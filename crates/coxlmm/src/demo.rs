//! `coxlmm demo`: the whole pipeline offline on the embedded default — the synthetic world of
//! cox-synth and the tiny LLaVA trained on it (committed under `crates/cox-synth/assets/`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cox_synth::{generate_split, Split, SynthConfig};

use crate::pipeline::RunSettings;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (the world, the stores, the dictionaries and the report go in it).
    #[arg(long, default_value = "target/demo")]
    out: PathBuf,
    /// Token of interest: a shape noun of the world (circle, square, triangle, star, cross, diamond).
    #[arg(long, default_value = "circle")]
    token: String,
    /// Layer: a decoder block index or `norm`.
    #[arg(long, default_value = "2")]
    layer: String,
    /// Training scenes generated (about a third show the token's shape).
    #[arg(long, default_value_t = 2400)]
    train: usize,
    /// Test scenes generated.
    #[arg(long, default_value_t = 600)]
    test: usize,
    /// Number of concepts K.
    #[arg(long, default_value_t = 20)]
    k: usize,
    /// Semi-NMF's λ.
    #[arg(long = "lambda", default_value_t = 1.0)]
    lambda: f64,
    /// Seed of the world and of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The model (default: the committed tiny-llava-synth).
    #[arg(long)]
    model: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    if cox_synth::Shape::from_word(&a.token).is_none() {
        bail!(
            "--token {:?}: the demo world's nouns are circle, square, triangle, star, cross and diamond",
            a.token
        );
    }
    let model = a.model.clone().unwrap_or_else(cox_synth::default_model_dir);
    if !model.join("model.safetensors").is_file() {
        bail!(
            "no trained model at {}: this checkout lacks the committed checkpoint; train one with \
             `cargo xtask train-synth` (or pass --model DIR)",
            model.display()
        );
    }
    let data = a.out.join("data");
    if !data.join("captions.jsonl").is_file() {
        eprintln!(
            "== world: {} train + {} test scenes into {}",
            a.train,
            a.test,
            data.display()
        );
        let cfg = SynthConfig::default();
        let mut scenes = generate_split(&cfg, a.seed, Split::Train, a.train)?;
        scenes.extend(generate_split(&cfg, a.seed, Split::Test, a.test)?);
        cox_synth::io::write_dataset(&data, &scenes)
            .with_context(|| format!("writing the world into {}", data.display()))?;
    }
    let settings = RunSettings {
        model: model.display().to_string(),
        data: format!("folder:{}", data.display()),
        token: a.token,
        layer: a.layer,
        train_split: "train".into(),
        test_split: "test".into(),
        limit: None,
        methods: "snmf,pca,kmeans,simple".into(),
        k: a.k,
        lambda: a.lambda,
        seed: a.seed,
        n_mas: 5,
        words: 10,
        top_tokens: 50,
        max_new_tokens: 50,
        stability_seeds: 2,
        bert: None,
        clip: None,
        explain: 12,
        capture: None,
        noise_dict: None,
    };
    crate::pipeline::run(settings, &a.out)
}
