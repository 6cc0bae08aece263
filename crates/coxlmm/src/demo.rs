//! The demo: the whole pipeline offline on the synthetic world of cox-synth and the tiny LLaVA
//! trained on it (committed under `crates/cox-synth/assets/`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use cox_synth::{generate_split, Split, SynthConfig};

use crate::pipeline::RunOutcome;
use crate::{Model, ModelOptions, RunFolder, RunSettings};

/// The demo's knobs.
#[derive(Clone, Debug)]
pub struct DemoParams {
    /// The run folder (the world, the stores, the dictionaries and the report go in it).
    pub out: PathBuf,
    /// A shape noun of the world.
    pub token: String,
    /// A decoder block index or `norm`.
    pub layer: String,
    /// Training scenes generated.
    pub train: usize,
    /// Test scenes generated.
    pub test: usize,
    pub k: usize,
    pub lambda: f64,
    /// Seed of the world and of every random choice.
    pub seed: u64,
    /// The model (`None`: the committed tiny-llava-synth).
    pub model: Option<PathBuf>,
}

impl Default for DemoParams {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/demo"),
            token: "circle".into(),
            layer: "2".into(),
            train: 2400,
            test: 600,
            k: 20,
            lambda: 1.0,
            seed: 0,
            model: None,
        }
    }
}

impl DemoParams {
    /// The run settings the demo uses for its world.
    pub fn settings(&self, model: &std::path::Path) -> RunSettings {
        let folder = RunFolder::new(&self.out);
        let mut s = RunSettings::new(
            model.display().to_string(),
            format!("folder:{}", folder.world().display()),
            self.token.clone(),
            self.layer.clone(),
        );
        s.k = self.k;
        s.lambda = self.lambda;
        s.seed = self.seed;
        s.stability_seeds = 2;
        s
    }
}

/// Generates the world (once) and runs the pipeline on it.
pub fn demo(p: &DemoParams) -> Result<RunOutcome> {
    if cox_synth::Shape::from_word(&p.token).is_none() {
        bail!(
            "token {:?}: the demo world's nouns are circle, square, triangle, star, cross and diamond",
            p.token
        );
    }
    let model = p.model.clone().unwrap_or_else(cox_synth::default_model_dir);
    if !model.join("model.safetensors").is_file() {
        bail!(
            "no trained model at {}: this checkout lacks the committed checkpoint; train one with \
             `cargo xtask train-synth`",
            model.display()
        );
    }
    let folder = RunFolder::new(&p.out);
    let world = folder.world();
    if !world.join("captions.jsonl").is_file() {
        eprintln!(
            "== world: {} train + {} test scenes into {}",
            p.train,
            p.test,
            world.display()
        );
        let cfg = SynthConfig::default();
        let mut scenes = generate_split(&cfg, p.seed, Split::Train, p.train)?;
        scenes.extend(generate_split(&cfg, p.seed, Split::Test, p.test)?);
        cox_synth::io::write_dataset(&world, &scenes)
            .with_context(|| format!("writing the world into {}", world.display()))?;
    }
    let settings = p.settings(&model);
    // A folder of another run is refused before the model is loaded.
    settings.check()?;
    folder.open(&settings)?;
    let model = Model::load(&settings.model, &ModelOptions::default())?;
    crate::pipeline::run(&settings, &folder, &model)
}
