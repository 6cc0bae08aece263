//! The demo: the whole pipeline offline on the synthetic world of cox-synth and a LLaVA trained on
//! it: the committed tiny-llava-synth (`crates/cox-synth/assets/`) or tiny-llava-smol (the real
//! SmolLM2-135M-Instruct decoder, assembled by `cargo xtask fetch` from its committed parts).

use std::path::{Path, PathBuf};
use std::str::FromStr;

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
    /// A decoder block index or `norm` (`None`: the model's last block).
    pub layer: Option<String>,
    /// Training scenes generated.
    pub train: usize,
    /// Test scenes generated.
    pub test: usize,
    pub k: usize,
    pub lambda: f64,
    /// Seed of the world and of every random choice.
    pub seed: u64,
    /// The model.
    pub model: DemoModel,
}

impl Default for DemoParams {
    fn default() -> Self {
        Self {
            out: PathBuf::from("target/demo"),
            token: "circle".into(),
            layer: None,
            train: 2400,
            test: 600,
            k: 20,
            lambda: 1.0,
            seed: 0,
            model: DemoModel::Synth,
        }
    }
}

/// The models the demo knows by name, or a checkpoint directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemoModel {
    /// The committed tiny-llava-synth (3 blocks, 80-word vocabulary): the fast default.
    Synth,
    /// tiny-llava-smol: the synthetic world's vision tower and projector on the real
    /// SmolLM2-135M-Instruct (30 blocks, 49,152 tokens), assembled by `cargo xtask fetch`.
    Smol,
    /// A LLaVA checkpoint directory trained on the synthetic world.
    Dir(PathBuf),
}

impl FromStr for DemoModel {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "synth" => DemoModel::Synth,
            "smol" => DemoModel::Smol,
            _ => DemoModel::Dir(PathBuf::from(s)),
        })
    }
}

impl DemoModel {
    /// The checkpoint directory; tiny-llava-smol lives in the fetched models' folder
    /// ([`crate::scores::models_dir`]).
    pub fn dir(&self) -> PathBuf {
        match self {
            DemoModel::Synth => cox_synth::default_model_dir(),
            DemoModel::Smol => {
                let d = crate::scores::models_dir().join("tiny-llava-smol");
                // `…/crates/coxlmm/../../.cache/models` → the plain path, for messages and run.json.
                d.canonicalize().unwrap_or(d)
            }
            DemoModel::Dir(d) => d.clone(),
        }
    }

    /// The default world: (train, test) scenes. tiny-llava-smol's decoder captions ~20× slower
    /// than tiny-llava-synth's, so its world is half as large.
    pub fn default_world(&self) -> (usize, usize) {
        match self {
            DemoModel::Smol => (1200, 300),
            _ => (2400, 600),
        }
    }

    /// The checkpoint directory, checked to hold a model (what to do when it does not).
    pub fn checked_dir(&self) -> Result<PathBuf> {
        let dir = self.dir();
        if dir.join("model.safetensors").is_file() {
            return Ok(dir);
        }
        match self {
            DemoModel::Synth => bail!(
                "no trained model at {}: this checkout lacks the committed checkpoint; train one \
                 with `cargo xtask train-synth`",
                dir.display()
            ),
            DemoModel::Smol => bail!(
                "no tiny-llava-smol at {}: run `cargo xtask fetch` first (it fetches \
                 SmolLM2-135M-Instruct and assembles tiny-llava-smol from the parts committed in \
                 crates/cox-synth/assets/tiny-llava-smol)",
                dir.display()
            ),
            DemoModel::Dir(_) => bail!(
                "no model at {}: expected a LLaVA checkpoint directory with model.safetensors",
                dir.display()
            ),
        }
    }
}

/// The index of a checkpoint's last decoder block, as a layer name (its `config.json`'s
/// `text_config.num_hidden_layers` − 1, read by cox-model's config parser).
pub fn last_block(model: &Path) -> Result<String> {
    let cfg = model.join("config.json");
    let c = cox_model::LlavaConfig::from_file(&cfg)
        .with_context(|| format!("cannot read the model's layers from {}", cfg.display()))?;
    Ok(c.text_config
        .num_hidden_layers
        .saturating_sub(1)
        .to_string())
}

impl DemoParams {
    /// The run settings the demo uses for its world.
    pub fn settings(&self, model: &Path) -> Result<RunSettings> {
        let folder = RunFolder::new(&self.out);
        let layer = match &self.layer {
            Some(l) => l.clone(),
            None => last_block(model)?,
        };
        let mut s = RunSettings::new(
            model.display().to_string(),
            format!("folder:{}", folder.world().display()),
            self.token.clone(),
            layer,
        );
        s.k = self.k;
        s.lambda = self.lambda;
        s.seed = self.seed;
        s.stability_seeds = 2;
        Ok(s)
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
    let model = p.model.checked_dir()?;
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
    let settings = p.settings(&model)?;
    // A folder of another run is refused before the model is loaded.
    settings.check()?;
    folder.open(&settings)?;
    let model = Model::load(&settings.model, &ModelOptions::default())?;
    crate::pipeline::run(&settings, &folder, &model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_models_by_name_and_their_defaults() {
        assert_eq!("synth".parse::<DemoModel>(), Ok(DemoModel::Synth));
        assert_eq!("smol".parse::<DemoModel>(), Ok(DemoModel::Smol));
        assert_eq!(
            "runs/m".parse::<DemoModel>(),
            Ok(DemoModel::Dir(PathBuf::from("runs/m")))
        );
        assert_eq!(DemoModel::Synth.default_world(), (2400, 600));
        assert_eq!(DemoModel::Smol.default_world(), (1200, 300));
        assert!(DemoModel::Smol.dir().ends_with("tiny-llava-smol"));
        // The committed model has 3 blocks: the demo's default layer is block 2.
        assert_eq!(last_block(&DemoModel::Synth.dir()).unwrap(), "2");
        let e = last_block(Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}
