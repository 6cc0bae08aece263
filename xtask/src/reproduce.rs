//! `cargo xtask reproduce`: the paper's evaluation protocol end to end (Table 1, Table 2,
//! ground-truth recovery, the layer sweep and the K sweep of `docs/method.md` §6.3–6.4), written to
//! `docs/reproduce/<setting>.{md,json}`.
//!
//! xtask only orchestrates: it builds the `coxlmm` CLI once and runs it as a subprocess (each run
//! in its own process, resumable), then aggregates the runs' `metrics.json` files — read as the
//! `coxlmm` library's typed [`Metrics`] — and dictionary sidecars. Every run folder lives under `target/reproduce/<setting>/` and is resumed
//! by the CLI, so an interrupted reproduce is finished by running it again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cox_metrics::MeanStd;
use coxlmm::{Method, MethodMetrics, Metrics, RunFolder};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::workspace_root;

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Where the markdown and JSON results go.
    #[arg(long, default_value = "docs/reproduce")]
    out: PathBuf,
    /// `synthetic` (the committed tiny model on the cox-synth world) or `coco` (the paper's
    /// setting: LLaVA-1.5 on COCO, needs --model and --coco).
    #[arg(long, value_enum, default_value_t = Setting::Synthetic)]
    setting: Setting,
    /// The model (synthetic: default the committed tiny-llava-synth; coco: a LLaVA-1.5 directory
    /// or hub id, required).
    #[arg(long)]
    model: Option<String>,
    /// COCO 2014 + Karpathy split directory (coco setting).
    #[arg(long)]
    coco: Option<PathBuf>,
    /// A CLIP checkpoint (HF CLIPModel layout) for CLIPScore; without it CS is unavailable.
    #[arg(long)]
    clip: Option<PathBuf>,
    /// A smaller, faster variant (smaller world, fewer noise images, K ∈ {5, 10, 20}).
    #[arg(long)]
    quick: bool,
    /// Work directory for the run folders (default target/reproduce/<setting>[-quick]).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Test scenes steered per factor value for the causal-validity table (synthetic setting;
    /// default 8, 4 with --quick; 0 skips it).
    #[arg(long)]
    causal_scenes: Option<usize>,
}

/// Which protocol `reproduce` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Setting {
    /// The committed tiny model on the cox-synth world.
    Synthetic,
    /// tiny-llava-smol (the real SmolLM2-135M-Instruct decoder, assembled by `cargo xtask fetch`)
    /// on the cox-synth world.
    SyntheticSmol,
    /// LLaVA-1.5 on COCO (the paper's setting).
    Coco,
}

/// The protocol's knobs for one setting.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Protocol {
    pub setting: String,
    pub model: String,
    pub data: String,
    pub tokens: Vec<String>,
    pub layer: String,
    pub k: usize,
    pub methods: String,
    pub k_sweep: Vec<usize>,
    pub noise_images: usize,
    pub clip: Option<String>,
    pub quick: bool,
    /// Test scenes steered per factor value (`coxlmm causal --scenes`); 0: no causal validity.
    #[serde(default)]
    pub causal_scenes: usize,
    /// The layer sweep visits every `layer_stride`-th block, the main layer and `norm`.
    #[serde(default = "one")]
    pub layer_stride: usize,
    /// Train and test scenes of the synthetic world (None: not a synthetic setting).
    #[serde(default)]
    pub world_scenes: Option<[usize; 2]>,
}

fn one() -> usize {
    1
}

impl Protocol {
    fn synthetic(&self) -> bool {
        self.world_scenes.is_some()
    }

    /// The layers of the sweep: every `layer_stride`-th of `n_layers` blocks, the main layer and
    /// `norm`, in order.
    pub fn sweep_layers(&self, n_layers: usize) -> Vec<String> {
        let stride = self.layer_stride.max(1);
        let mut blocks: Vec<usize> = (0..n_layers).step_by(stride).collect();
        if let Ok(main) = self.layer.parse::<usize>() {
            if !blocks.contains(&main) {
                blocks.push(main);
                blocks.sort_unstable();
            }
        }
        let mut names: Vec<String> = blocks.iter().map(|b| b.to_string()).collect();
        names.push("norm".into());
        names
    }
}

/// What happened to the Noise-Imgs baseline of one token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NoiseOutcome {
    /// Noise images captioned.
    pub images: usize,
    /// Samples where the model generated the token (the rows a dictionary could be learnt from).
    pub kept: Option<usize>,
    /// Why the baseline has no number (None when it has one).
    pub unavailable: Option<String>,
    /// The noise dictionary's metrics (when it could be learnt and evaluated).
    pub metrics: Option<Metrics>,
}

/// Everything measured for one token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct TokenResults {
    /// `metrics.json` of the main run (all methods, default layer, K).
    pub main: Metrics,
    /// Layer name → `metrics.json` of the Semi-NMF run at that layer.
    pub layers: BTreeMap<String, Metrics>,
    /// K → `metrics.json` of the run at that K.
    pub k_sweep: BTreeMap<usize, Metrics>,
    /// K → method → the dictionary sidecar's objective.
    pub k_objective: BTreeMap<usize, BTreeMap<String, Option<f64>>>,
    pub noise: Option<NoiseOutcome>,
    /// `causal.json` of the main run (synthetic world).
    #[serde(default)]
    pub causal: Option<coxlmm::causal::CausalReport>,
    /// The main run's Semi-NMF concepts' grounded words (`ground/snmf.json`), concept by concept.
    #[serde(default)]
    pub words: Vec<Vec<String>>,
}

/// `docs/reproduce/<setting>.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub format: String,
    pub protocol: Protocol,
    pub tokens: BTreeMap<String, TokenResults>,
    /// Wall-clock seconds per phase.
    pub timings: Vec<(String, f64)>,
    pub threads: usize,
}

pub fn run(mut a: Args) -> Result<()> {
    let root = workspace_root();
    // User paths are relative to where the command was started; ours to the workspace root.
    let here = std::env::current_dir()?;
    let abs = |p: &Path| {
        if p.is_relative() {
            here.join(p)
        } else {
            p.to_path_buf()
        }
    };
    a.coco = a.coco.as_deref().map(abs);
    a.clip = a.clip.as_deref().map(abs);
    a.work = a.work.as_deref().map(abs);
    if let Some(m) = &a.model {
        if Path::new(m).exists() {
            a.model = Some(abs(Path::new(m)).display().to_string());
        }
    }
    // Paths in run folders are relative to the workspace root (portable run.json files).
    std::env::set_current_dir(&root)?;
    let p = match a.setting {
        Setting::Synthetic => synthetic_protocol(&a)?,
        Setting::SyntheticSmol => synthetic_smol_protocol(&a)?,
        Setting::Coco => coco_protocol(&a)?,
    };
    let work = a.work.clone().unwrap_or_else(|| {
        Path::new("target/reproduce").join(if a.quick {
            format!("{}-quick", p.setting)
        } else {
            p.setting.clone()
        })
    });
    std::fs::create_dir_all(&work)?;
    let t0 = Instant::now();
    let mut timings = Vec::new();

    let t = Instant::now();
    crate::build_coxlmm_release(&root)?;
    timings.push(("build".to_string(), t.elapsed().as_secs_f64()));
    let cli = PathBuf::from("target/release/coxlmm");

    if let Some([train, test]) = p.world_scenes {
        let world = work.join("world");
        if !world.join("captions.jsonl").is_file() {
            eprintln!(
                "== world: {train} train + {test} test scenes into {}",
                world.display()
            );
            let cfg = cox_synth::SynthConfig::default();
            let mut scenes = cox_synth::generate_split(&cfg, 0, cox_synth::Split::Train, train)?;
            scenes.extend(cox_synth::generate_split(
                &cfg,
                0,
                cox_synth::Split::Test,
                test,
            )?);
            cox_synth::io::write_dataset(&world, &scenes)?;
        }
    }
    let data = if p.synthetic() {
        format!("folder:{}", work.join("world").display())
    } else {
        p.data.clone()
    };
    let n_layers = num_layers(&p.model)?;
    let layer_names = p.sweep_layers(n_layers);

    let mut tokens = BTreeMap::new();
    for token in &p.tokens {
        let mut r = TokenResults::default();
        let base = work.join("runs").join(token);
        let main_dir = base.join(format!("layer-{}", p.layer));
        let t = Instant::now();
        let common = |dir: &Path, layer: &str, k: usize, methods: &str| -> Vec<String> {
            let mut v: Vec<String> = vec![
                "run".into(),
                "--model".into(),
                p.model.clone(),
                "--data".into(),
                data.clone(),
                "--token".into(),
                token.clone(),
                "--layer".into(),
                layer.into(),
                "--k".into(),
                k.to_string(),
                "--methods".into(),
                methods.into(),
                "--capture".into(),
                "all".into(),
                "--out".into(),
                dir.display().to_string(),
            ];
            if let Some(c) = &p.clip {
                v.extend(["--clip".into(), c.clone()]);
            }
            v
        };
        coxlmm(&cli, &common(&main_dir, &p.layer, p.k, &p.methods))?;
        r.main = read_metrics(&main_dir)?;
        r.words = RunFolder::new(&main_dir)
            .read_grounding(Method::SemiNmf)
            .with_context(|| format!("the Semi-NMF words of {}", main_dir.display()))?
            .words
            .into_iter()
            .map(|c| c.words)
            .collect();
        timings.push((format!("{token}: main run"), t.elapsed().as_secs_f64()));

        // Causal validity (docs/method.md §5.8): steering with each method's concepts and the
        // controls; resumed from the run's causal.json when it has the same options.
        if p.causal_scenes > 0 {
            let t = Instant::now();
            let folder = RunFolder::new(&main_dir);
            let done = folder
                .read_causal()
                .ok()
                .filter(|c| c.options.scenes == p.causal_scenes);
            if done.is_none() {
                coxlmm(
                    &cli,
                    &[
                        "causal".into(),
                        "--run".into(),
                        main_dir.display().to_string(),
                        "--scenes".into(),
                        p.causal_scenes.to_string(),
                    ],
                )?;
            }
            r.causal = Some(folder.read_causal()?);
            timings.push((
                format!("{token}: causal validity"),
                t.elapsed().as_secs_f64(),
            ));
        }

        // The layer sweep (docs/method.md §6.3): Semi-NMF at every layer, on copies of the main run's stores.
        let t = Instant::now();
        for l in &layer_names {
            let dir = if *l == p.layer {
                main_dir.clone()
            } else {
                let dir = base.join(format!("layer-{l}"));
                share_extract(&main_dir, &dir)?;
                coxlmm(&cli, &common(&dir, l, p.k, "snmf"))?;
                dir
            };
            r.layers.insert(l.clone(), read_metrics(&dir)?);
        }
        timings.push((format!("{token}: layer sweep"), t.elapsed().as_secs_f64()));

        // The K sweep (docs/method.md §6.4).
        let t = Instant::now();
        for &k in &p.k_sweep {
            let dir = if k == p.k {
                main_dir.clone()
            } else {
                let dir = base.join(format!("k-{k}"));
                share_extract(&main_dir, &dir)?;
                // Reconstruction only: BERTScore is switched off (a BERT directory that does not
                // exist), which makes these runs several times faster.
                let mut argv = common(&dir, &p.layer, k, "snmf,pca,kmeans");
                argv.extend(["--bert".into(), work.join("no-bert").display().to_string()]);
                coxlmm(&cli, &argv)?;
                dir
            };
            r.k_sweep.insert(k, read_metrics(&dir)?);
            let mut obj = BTreeMap::new();
            for m in [Method::SemiNmf, Method::Pca, Method::KMeans] {
                let side = cox_store::sidecar_path(&RunFolder::new(&dir).dict_file(m));
                // The sidecar's fit record, typed: a renamed field fails to compile here.
                let v = side
                    .is_file()
                    .then(|| read_json::<coxlmm::learn::DictionaryMeta>(&side).ok())
                    .flatten()
                    .and_then(|d| d.fit.report.objective);
                obj.insert(m.name().to_string(), v);
            }
            r.k_objective.insert(k, obj);
        }
        timings.push((format!("{token}: K sweep"), t.elapsed().as_secs_f64()));

        // Noise-Imgs: the dictionary learnt from noise images' representations.
        if p.noise_images > 0 {
            let t = Instant::now();
            r.noise = Some(noise_baseline(&cli, &p, &work, &data, token)?);
            timings.push((format!("{token}: noise"), t.elapsed().as_secs_f64()));
        }
        tokens.insert(token.clone(), r);
    }
    timings.push(("total".into(), t0.elapsed().as_secs_f64()));
    let results = Results {
        format: "coxlmm-reproduce".into(),
        protocol: p.clone(),
        tokens,
        timings,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let out = if a.out.is_absolute() {
        a.out.clone()
    } else {
        root.join(&a.out)
    };
    std::fs::create_dir_all(&out)?;
    let name = if p.quick {
        format!("{}-quick", p.setting)
    } else {
        p.setting.clone()
    };
    std::fs::write(
        out.join(format!("{name}.json")),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    std::fs::write(out.join(format!("{name}.md")), render(&results))?;
    println!("wrote {}/{name}.{{md,json}}", out.display());
    Ok(())
}

fn synthetic_protocol(a: &Args) -> Result<Protocol> {
    let model = a
        .model
        .clone()
        .unwrap_or_else(|| "crates/cox-synth/assets/tiny-llava-synth".to_string());
    if !Path::new(&model).join("model.safetensors").is_file() {
        bail!(
            "no model at {model}: the committed tiny-llava-synth is missing from this checkout; \
             train one with `cargo xtask train-synth` or pass --model DIR"
        );
    }
    Ok(Protocol {
        layer_stride: 1,
        world_scenes: Some(if a.quick { [600, 150] } else { [2400, 600] }),
        setting: "synthetic".into(),
        model,
        data: "folder:<work>/world".into(),
        tokens: vec!["circle".into(), "square".into(), "star".into()],
        layer: "2".into(),
        k: 20,
        methods: "snmf,pca,kmeans,simple".into(),
        k_sweep: if a.quick {
            vec![5, 10, 20]
        } else {
            vec![5, 10, 20, 40]
        },
        noise_images: if a.quick { 60 } else { 300 },
        clip: a.clip.as_ref().map(|c| c.display().to_string()),
        quick: a.quick,
        causal_scenes: a.causal_scenes.unwrap_or(if a.quick { 4 } else { 8 }),
    })
}

/// tiny-llava-smol on the synthetic world: the protocol of the synthetic setting at SmolLM2's last
/// block (29 of 30), the layer sweep over every third block and `norm`. The world is smaller
/// than the synthetic setting's (a 135M-parameter decoder captions ~20× slower than the tiny one)
/// and causal validity runs only with `--causal-scenes N`.
fn synthetic_smol_protocol(a: &Args) -> Result<Protocol> {
    let model = a
        .model
        .clone()
        .unwrap_or_else(|| ".cache/models/tiny-llava-smol".to_string());
    if !Path::new(&model).join("model.safetensors").is_file() {
        bail!(
            "no model at {model}: run `cargo xtask fetch` first (it fetches SmolLM2-135M-Instruct \
             and assembles tiny-llava-smol from the parts committed in \
             crates/cox-synth/assets/tiny-llava-smol), or pass --model DIR"
        );
    }
    let mut p = synthetic_protocol(&Args {
        model: Some(model),
        ..a.clone()
    })?;
    p.setting = "synthetic-smol".into();
    p.layer = (num_layers(&p.model)? - 1).to_string();
    p.layer_stride = 3;
    p.world_scenes = Some(if a.quick { [400, 100] } else { [1200, 300] });
    p.noise_images = if a.quick { 40 } else { 150 };
    // Causal validity captions every test scene once per direction, factor value and α (≈ 600
    // captions per scene and token): hours with this decoder on two cores, so only on request.
    p.causal_scenes = a.causal_scenes.unwrap_or(0);
    Ok(p)
}

fn coco_protocol(a: &Args) -> Result<Protocol> {
    let Some(model) = a.model.clone() else {
        bail!(
            "--setting coco needs --model (a LLaVA-1.5 checkpoint directory or hub id in the local \
             Hugging Face cache, e.g. llava-hf/llava-1.5-7b-hf) and --coco DIR"
        );
    };
    let is_dir = Path::new(&model).join("config.json").is_file();
    let in_cache = hf_cache_has(&model);
    if !is_dir && !in_cache {
        bail!(
            "--model {model}: neither a checkpoint directory (no config.json) nor a hub id in the \
             local Hugging Face cache; download LLaVA-1.5 first (this reproduce never downloads \
             weights)"
        );
    }
    let Some(coco) = a.coco.clone() else {
        bail!("--setting coco needs --coco DIR (COCO 2014 + Karpathy split; see `cargo xtask prep-coco`)");
    };
    if !coco.join("dataset_coco.json").is_file() {
        bail!(
            "--coco {}: no dataset_coco.json (Karpathy split); run `cargo xtask prep-coco --dir {}` \
             first",
            coco.display(),
            coco.display()
        );
    }
    Ok(Protocol {
        setting: "coco".into(),
        model,
        data: format!("coco:{}", coco.display()),
        tokens: ["dog", "cat", "bus", "train"].map(String::from).to_vec(),
        layer: "31".into(),
        k: 20,
        methods: "snmf,pca,kmeans,simple".into(),
        k_sweep: if a.quick {
            vec![10, 20]
        } else {
            vec![5, 10, 20, 40]
        },
        noise_images: 0,
        clip: a.clip.as_ref().map(|c| c.display().to_string()),
        quick: a.quick,
        causal_scenes: 0,
        layer_stride: 1,
        world_scenes: None,
    })
}

fn hf_cache_has(id: &str) -> bool {
    let home = std::env::var_os("HF_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface")));
    home.is_some_and(|h| {
        h.join("hub")
            .join(format!("models--{}", id.replace('/', "--")))
            .is_dir()
    })
}

/// The decoder's layer count from the checkpoint's `config.json` (synthetic) or 32 (LLaVA-1.5-7B
/// hub ids, whose config lives in the HF cache).
fn num_layers(model: &str) -> Result<usize> {
    let cfg = Path::new(model).join("config.json");
    if !cfg.is_file() {
        return Ok(32);
    }
    let v: Value = read_json(&cfg)?;
    v["text_config"]["num_hidden_layers"]
        .as_u64()
        .map(|n| n as usize)
        .with_context(|| format!("{}: no text_config.num_hidden_layers", cfg.display()))
}

/// Runs the CLI, unless the run folder (`--out`) already holds a `metrics.json` (a finished run:
/// the CLI would redo only the evaluation; delete the folder to redo it).
fn coxlmm(cli: &Path, argv: &[String]) -> Result<()> {
    let out = argv
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| argv.get(i + 1));
    if let Some(out) = out {
        if Path::new(out).join("metrics.json").is_file() {
            eprintln!("== {out}: finished already");
            return Ok(());
        }
    }
    eprintln!("$ coxlmm {}", argv.join(" "));
    let ok = Command::new(cli).args(argv).status()?.success();
    if !ok {
        bail!("coxlmm {} failed", argv.join(" "));
    }
    Ok(())
}

/// Gives `dir` a hard-linked copy of `main/extract` (the stores hold every layer; the CLI's
/// extraction step sees them complete and skips).
fn share_extract(main: &Path, dir: &Path) -> Result<()> {
    let dst = dir.join("extract");
    if dst.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let ok = Command::new("cp")
        .arg("-al")
        .arg(main.join("extract"))
        .arg(&dst)
        .status()?
        .success();
    if !ok {
        bail!(
            "cp -al {} {} failed",
            main.join("extract").display(),
            dst.display()
        );
    }
    Ok(())
}

/// A finished run's `metrics.json`.
fn read_metrics(run: &Path) -> Result<Metrics> {
    RunFolder::new(run).read_metrics()
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))
}

/// Writes `n` seeded uniform-noise 96×96 RGB PNGs as a `folder:` dataset whose captions name the
/// token (so that the ground-truth filter lets every image through).
pub fn write_noise_dataset(dir: &Path, token: &str, n: usize, seed: u64) -> Result<()> {
    use rand::{RngCore, SeedableRng};
    if dir.join("captions.jsonl").is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir.join("images"))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut lines = String::new();
    for i in 0..n {
        let mut px = vec![0u8; 96 * 96 * 3];
        rng.fill_bytes(&mut px);
        let img = image::RgbImage::from_raw(96, 96, px).expect("size");
        let name = format!("images/noise-{i:05}.png");
        img.save(dir.join(&name))
            .with_context(|| format!("writing {}", dir.join(&name).display()))?;
        let rec = json!({"image": name, "captions": [format!("a {token}")],
                         "id": format!("noise-{i:05}"), "split": "train"});
        lines.push_str(&rec.to_string());
        lines.push('\n');
    }
    std::fs::write(dir.join("captions.jsonl"), lines)?;
    Ok(())
}

fn noise_baseline(
    cli: &Path,
    p: &Protocol,
    work: &Path,
    data_spec: &str,
    token: &str,
) -> Result<NoiseOutcome> {
    let data = work.join("noise").join(token);
    write_noise_dataset(&data, token, p.noise_images, 7)?;
    let dir = work.join("runs").join(token).join("noise");
    let argv: Vec<String> = [
        "run",
        "--model",
        &p.model,
        "--data",
        &format!("folder:{}", data.display()),
        "--token",
        token,
        "--layer",
        &p.layer,
        "--k",
        &p.k.to_string(),
        "--methods",
        "snmf",
        "--test-split",
        "",
        "--out",
        &dir.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let res = coxlmm(cli, &argv);
    let kept = cox_store::read_manifest(&dir.join("extract/train"))
        .ok()
        .flatten()
        .map(|m| m.rows());
    Ok(match res {
        Ok(()) => {
            // Evaluate the noise dictionary's words on the real test split: a Semi-NMF run on
            // the main run's stores with --noise-dict (references.*_noise_imgs).
            let main = work
                .join("runs")
                .join(token)
                .join(format!("layer-{}", p.layer));
            let eval = work.join("runs").join(token).join("noise-eval");
            share_extract(&main, &eval)?;
            let mut argv: Vec<String> = [
                "run",
                "--model",
                &p.model,
                "--data",
                data_spec,
                "--token",
                token,
                "--layer",
                &p.layer,
                "--k",
                &p.k.to_string(),
                "--methods",
                "snmf",
                "--capture",
                "all",
                "--noise-dict",
                &dir.display().to_string(),
                "--out",
                &eval.display().to_string(),
            ]
            .map(String::from)
            .to_vec();
            if let Some(c) = &p.clip {
                argv.extend(["--clip".into(), c.clone()]);
            }
            coxlmm(cli, &argv)?;
            NoiseOutcome {
                images: p.noise_images,
                kept,
                unavailable: None,
                metrics: Some(read_metrics(&eval)?),
            }
        }
        Err(_) => NoiseOutcome {
            images: p.noise_images,
            kept,
            unavailable: Some(format!(
                "the model generated {token:?} for {} of {} noise images, fewer than K = {}: no \
                 dictionary can be learnt from noise",
                kept.map_or("?".into(), |k| k.to_string()),
                p.noise_images,
                p.k
            )),
            metrics: None,
        },
    })
}

// ---------------------------------------------------------------- rendering

/// The paper's Table 1 (v1, DePALM, L = 31, K = 20), docs/method.md §6.1: token → [(column, CS, BS)].
/// A paper cell: (column, CS, BS).
type PaperCell = (&'static str, &'static str, &'static str);

const PAPER_T1: &[(&str, [PaperCell; 5])] = &[
    (
        "dog",
        [
            ("Rnd-Words", "0.519 ± 0.05", "0.201 ± 0.04"),
            ("Noise-Imgs", "0.425 ± 0.06", "0.306 ± 0.05"),
            ("Simple", "0.546 ± 0.08", "0.346 ± 0.08"),
            ("Semi-NMF", "0.610 ± 0.09", "0.405 ± 0.07"),
            ("GT-captions", "0.783 ± 0.06", "0.511 ± 0.11"),
        ],
    ),
    (
        "bus",
        [
            ("Rnd-Words", "0.507 ± 0.05", "0.200 ± 0.05"),
            ("Noise-Imgs", "0.425 ± 0.08", "0.303 ± 0.06"),
            ("Simple", "0.667 ± 0.06", "0.390 ± 0.05"),
            ("Semi-NMF", "0.634 ± 0.08", "0.404 ± 0.07"),
            ("GT-captions", "0.736 ± 0.05", "0.466 ± 0.11"),
        ],
    ),
    (
        "train",
        [
            ("Rnd-Words", "0.496 ± 0.05", "0.210 ± 0.06"),
            ("Noise-Imgs", "0.410 ± 0.07", "0.253 ± 0.06"),
            ("Simple", "0.642 ± 0.06", "0.392 ± 0.07"),
            ("Semi-NMF", "0.646 ± 0.07", "0.378 ± 0.07"),
            ("GT-captions", "0.727 ± 0.05", "0.436 ± 0.08"),
        ],
    ),
    (
        "cat",
        [
            ("Rnd-Words", "0.539 ± 0.04", "0.207 ± 0.07"),
            ("Noise-Imgs", "0.461 ± 0.04", "0.307 ± 0.03"),
            ("Simple", "0.589 ± 0.07", "0.425 ± 0.10"),
            ("Semi-NMF", "0.627 ± 0.06", "0.437 ± 0.08"),
            ("GT-captions", "0.798 ± 0.05", "0.544 ± 0.10"),
        ],
    ),
];

/// The paper's overlap table (v1, DePALM), docs/method.md §6.2: token → Simple, PCA, K-Means, Semi-NMF.
const PAPER_T2: &[(&str, [&str; 4])] = &[
    ("dog", ["0.371", "0.004", "0.501", "0.086"]),
    ("bus", ["0.622", "0.002", "0.487", "0.177"]),
    ("train", ["0.619", "0.015", "0.367", "0.107"]),
    ("cat", ["0.452", "0.000", "0.500", "0.146"]),
];

/// `mean ± std`, or `None` when absent.
pub fn mean_std(v: Option<&MeanStd>) -> Option<String> {
    v.map(|v| format!("{:.3} ± {:.3}", v.mean, v.std))
}

fn num(v: Option<f64>) -> Option<String> {
    v.map(|x| format!("{x:.3}"))
}

/// The method's entry of a `metrics.json`.
pub fn method(metrics: &Metrics, m: Method) -> Option<&MethodMetrics> {
    metrics.method(m)
}

const NA: &str = "n/a";

fn cell(s: Option<String>) -> String {
    s.unwrap_or_else(|| NA.to_string())
}

/// A Table 1 score of a method's entry.
type Score = fn(&MethodMetrics) -> Option<&MeanStd>;

/// Table 1: one row per token and score (CS, BS), columns Rnd-Words, Noise-Imgs, Simple, PCA,
/// K-Means, Semi-NMF, GT-captions.
pub fn table1(r: &Results) -> String {
    let mut s = String::from(
        "| Token | Score | Rnd-Words | Noise-Imgs | Simple | PCA | K-Means | Semi-NMF | GT-captions |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (token, t) in &r.tokens {
        let m = &t.main;
        let snmf = method(m, Method::SemiNmf);
        let noise = t
            .noise
            .as_ref()
            .filter(|n| n.unavailable.is_none())
            .and_then(|n| n.metrics.as_ref());
        let clip: Score = |x| x.clipscore_top1.as_ref();
        let bert: Score = |x| x.bertscore_top1.as_ref();
        for (score, get, is_bert) in [("CS top-1", clip, false), ("BS top-1", bert, true)] {
            // Rnd-Words and GT-captions have BERTScore only (the CLI scores CLIPScore for the
            // concept words alone).
            let (rnd, gt) = if is_bert {
                (
                    mean_std(snmf.and_then(|x| x.bertscore_top1_rnd_words.as_ref())),
                    mean_std(m.references.bertscore_gt_captions.as_ref()),
                )
            } else {
                (None, None)
            };
            let noise_cell = noise.and_then(|n| {
                let refs = &n.references;
                mean_std(if is_bert {
                    refs.bertscore_top1_noise_imgs.as_ref()
                } else {
                    refs.clipscore_top1_noise_imgs.as_ref()
                })
            });
            let _ = write!(
                s,
                "| {token} | {score} | {} | {} |",
                cell(rnd),
                cell(noise_cell)
            );
            for id in Method::ALL {
                let _ = write!(s, " {} |", cell(mean_std(method(m, id).and_then(get))));
            }
            let _ = writeln!(s, " {} |", cell(gt));
        }
    }
    s
}

/// The table header's method columns, in the paper's order.
fn method_columns() -> String {
    Method::ALL.map(Method::label).join(" | ")
}

/// Table 2: overlap per token × method.
pub fn table2(r: &Results) -> String {
    let mut s = format!("| Token | {} |\n|---|---|---|---|---|\n", method_columns());
    for (token, t) in &r.tokens {
        let _ = write!(s, "| {token} |");
        for id in Method::ALL {
            let _ = write!(
                s,
                " {} |",
                cell(num(method(&t.main, id).map(|x| x.overlap)))
            );
        }
        s.push('\n');
    }
    s
}

/// Ground-truth recovery AUC (train / test) per token × method, and the supervised linear-probe
/// ceiling (test).
pub fn recovery_table(r: &Results) -> String {
    let mut s = format!(
        "| Token | {} | Linear probe (supervised ceiling) |\n|---|---|---|---|---|---|\n",
        method_columns()
    );
    for (token, t) in &r.tokens {
        let _ = write!(s, "| {token} |");
        for id in Method::ALL {
            let mm = method(&t.main, id);
            let _ = write!(
                s,
                " {} / {} |",
                cell(num(mm.and_then(|x| x.recovery_auc_train))),
                cell(num(mm.and_then(|x| x.recovery_auc_test)))
            );
        }
        let probe = t
            .main
            .references
            .recovery_probe
            .as_ref()
            .map(|p| p.mean_auc);
        let _ = writeln!(s, " {} |", cell(num(probe)));
    }
    s
}

/// Layer sweep: per token and layer, Semi-NMF's grounding BERTScore (vs Rnd-Words), CLIPScore
/// top-1 and recovery AUC (test).
pub fn layer_table(r: &Results) -> String {
    let mut s = String::from(
        "| Token | Layer | Grounding BS (Semi-NMF) | Grounding BS (Rnd-Words) | BS top-1 | CS top-1 | Recovery AUC (test) |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (token, t) in &r.tokens {
        let mut layers: Vec<(&String, &Metrics)> = t.layers.iter().collect();
        layers.sort_by_key(|(l, _)| l.parse::<usize>().unwrap_or(usize::MAX));
        for (l, m) in layers {
            let mm = method(m, Method::SemiNmf);
            let g = |get: Score| cell(mean_std(mm.and_then(get)));
            let _ = writeln!(
                s,
                "| {token} | {l} | {} | {} | {} | {} | {} |",
                g(|x| x.grounding_bertscore.as_ref()),
                g(|x| x.grounding_bertscore_rnd_words.as_ref()),
                g(|x| x.bertscore_top1.as_ref()),
                g(|x| x.clipscore_top1.as_ref()),
                cell(num(mm.and_then(|x| x.recovery_auc_test)))
            );
        }
    }
    s
}

/// K sweep: relative reconstruction error per token × K × method, and Semi-NMF's objective.
pub fn k_table(r: &Results) -> String {
    let mut s = String::from(
        "| Token | K | rel. error Semi-NMF | rel. error PCA | rel. error K-Means | Semi-NMF objective | recovery AUC (test) Semi-NMF / PCA / K-Means |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (token, t) in &r.tokens {
        for (k, m) in &t.k_sweep {
            let e = |id| cell(num(method(m, id).and_then(|x| x.relative_error)));
            let obj = t
                .k_objective
                .get(k)
                .and_then(|o| o.get(Method::SemiNmf.name()).copied().flatten())
                .map(|x| format!("{x:.4e}"));
            let rec = |id| cell(num(method(m, id).and_then(|x| x.recovery_auc_test)));
            let _ = writeln!(
                s,
                "| {token} | {k} | {} | {} | {} | {} | {} / {} / {} |",
                e(Method::SemiNmf),
                e(Method::Pca),
                e(Method::KMeans),
                cell(obj),
                rec(Method::SemiNmf),
                rec(Method::Pca),
                rec(Method::KMeans)
            );
        }
    }
    s
}

/// The paper's Table 1 and Table 2 (for context).
pub fn paper_tables() -> String {
    let mut s = String::from(
        "Paper Table 1 (DePALM, L = 31, K = 20; docs/method.md §6.1):\n\n\
         | Token | Score | Rnd-Words | Noise-Imgs | Simple | Semi-NMF | GT-captions |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (token, cols) in PAPER_T1 {
        for (score, i) in [("CS top-1", 1), ("BS top-1", 2)] {
            let _ = write!(s, "| {token} | {score} |");
            for c in cols {
                let v = if i == 1 { c.1 } else { c.2 };
                let _ = write!(s, " {v} |");
            }
            s.push('\n');
        }
    }
    s.push_str(
        "\nPaper overlap table (DePALM; docs/method.md §6.2):\n\n\
         | Token | Simple | PCA | K-Means | Semi-NMF |\n|---|---|---|---|---|\n",
    );
    for (token, v) in PAPER_T2 {
        let _ = writeln!(s, "| {token} | {} | {} | {} | {} |", v[0], v[1], v[2], v[3]);
    }
    s
}

/// Causal validity per token × direction, one column per α with `success / specificity /
/// fluency` (means over factor values), then the ablation.
pub fn causal_table(r: &Results) -> String {
    let mut s = String::new();
    let mut ablation = String::from(
        "\n| Token | Method | factor values | p(token) before → after | p(factor word) before → after |\n|---|---|---|---|---|\n",
    );
    let mut header: Option<Vec<f32>> = None;
    for (token, t) in &r.tokens {
        let Some(c) = &t.causal else { continue };
        let alphas = &c.options.alphas;
        if header.as_ref() != Some(alphas) {
            let _ = writeln!(
                s,
                "{}| Token | Direction | factor values |{}\n|---|---|---|{}",
                if header.is_some() { "\n" } else { "" },
                alphas
                    .iter()
                    .map(|a| format!(" α = {a} |"))
                    .collect::<String>(),
                "---|".repeat(alphas.len())
            );
            header = Some(alphas.clone());
        }
        let mut directions: Vec<&str> = Vec::new();
        for row in &c.summary {
            if !directions.contains(&row.direction.as_str()) {
                directions.push(&row.direction);
            }
        }
        for d in directions {
            let rows: Vec<_> = c.summary.iter().filter(|x| x.direction == d).collect();
            let factors = rows.first().map_or(0, |x| x.factors);
            let cells: String = alphas
                .iter()
                .map(|a| match rows.iter().find(|x| x.alpha == *a) {
                    Some(x) => format!(
                        " {:.3} / {:.3} / {:.3} |",
                        x.success, x.specificity, x.fluency
                    ),
                    None => format!(" {NA} |"),
                })
                .collect();
            let _ = writeln!(s, "| {token} | {d} | {factors} |{cells}");
        }
        for a in &c.ablation {
            let _ = writeln!(
                ablation,
                "| {token} | {} | {} | {:.3} → {:.3} | {:.3} → {:.3} |",
                a.method, a.factors, a.token_before, a.token_after, a.word_before, a.word_after
            );
        }
    }
    if header.is_none() {
        return if r.protocol.synthetic() {
            "Not measured in this run (`--causal-scenes 0`, the default of `synthetic-smol`: about 600 \
             steered captions per scene and token); `cargo xtask reproduce --setting synthetic-smol \
             --causal-scenes 1` adds it.\n"
        } else {
            "Not measured in this setting (`coxlmm causal` needs the synthetic world's factors).\n"
        }
        .into();
    }
    s + &ablation
}

/// The main runs' Semi-NMF concepts in words: what each concept decodes to through the LM head
/// (docs/method.md §4.1), the first eight grounded words of every concept.
pub fn words_section(r: &Results) -> String {
    if r.tokens.values().all(|t| t.words.is_empty()) {
        return String::new();
    }
    let mut s = String::from(
        "\n## Grounded words of the Semi-NMF concepts (main run)\n\nEach concept's first eight grounded words (decoded through the model's LM head, docs/method.md §4.1), as the report's concept pages show them.\n\n| Token | Concept | Words |\n|---|---|---|\n",
    );
    for (token, t) in &r.tokens {
        for (k, words) in t.words.iter().enumerate() {
            let shown: Vec<String> = words
                .iter()
                .take(8)
                .map(|w| w.replace('|', "\\|"))
                .collect();
            let _ = writeln!(s, "| {token} | {k} | {} |", shown.join(", "));
        }
    }
    s
}

/// The whole markdown page.
pub fn render(r: &Results) -> String {
    let p = &r.protocol;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# CoX-LMM reproduction: {} setting{}\n",
        p.setting,
        if p.quick { " (quick)" } else { "" }
    );
    let _ = writeln!(
        s,
        "Generated by `cargo xtask reproduce --setting {}{}`; every number below is in `{}{}.json`.\n",
        p.setting,
        if p.quick { " --quick" } else { "" },
        p.setting,
        if p.quick { "-quick" } else { "" }
    );
    s.push_str("## Settings\n\n");
    let _ = writeln!(s, "- model: `{}`", p.model);
    let _ = writeln!(s, "- data: `{}`", p.data);
    let _ = writeln!(s, "- tokens: {}", p.tokens.join(", "));
    let _ = writeln!(
        s,
        "- layer {}, K = {}, methods `{}`, K sweep {:?}",
        p.layer, p.k, p.methods, p.k_sweep
    );
    let _ = writeln!(
        s,
        "- Noise-Imgs: {} seeded uniform-noise images per token",
        p.noise_images
    );
    if let Some((_, t)) = r.tokens.iter().next() {
        let _ = writeln!(s, "- BERTScore: {}", t.main.bertscore_model);
        let _ = writeln!(s, "- CLIPScore: {}", t.main.clipscore_model);
    }
    for (token, t) in &r.tokens {
        let _ = writeln!(
            s,
            "- {token}: {} train / {} test samples generated the token",
            t.main.train_samples, t.main.test_samples
        );
    }
    let _ = writeln!(s, "\n`{NA}`: not available (see *Unavailable* below). Cells are mean ± std over test samples (Table 1) or concepts (grounding).\n");
    s.push_str("## Table 1: top-1 concept on test samples (CS = CLIPScore, BS = BERTScore F1)\n\n");
    s.push_str(&table1(r));
    s.push_str("\n## Table 2: overlap of the grounded words (lower = more disentangled)\n\n");
    s.push_str(&table2(r));
    s.push_str(&words_section(r));
    s.push_str("\n## Ground-truth recovery AUC (train / test)\n\nMean over the world's factors of the best concept's ROC AUC at detecting the factor (synthetic world only). The last column is not a dictionary: a regularised linear discriminant per factor value fitted with the labels on the training rows and scored on the test rows (`cox_metrics::probe_auc`), i.e. how much of each factor the representation carries linearly; a single concept cannot do better than a linear read-out.\n\n");
    s.push_str(&recovery_table(r));
    s.push_str("\n## Layer sweep (docs/method.md §6.3), Semi-NMF\n\nGrounding BS: BERTScore F1 of each concept's words against the captions of its 5 most-activating training samples, mean over concepts (docs/method.md §5.4), beside Rnd-Words with the same MAS.\n\n");
    s.push_str(&layer_table(r));
    s.push_str(
        "\n## K sweep (docs/method.md §6.4): relative reconstruction error ‖X − X̂‖/‖X‖ on the training matrix, and recovery AUC\n\n",
    );
    s.push_str(&k_table(r));
    s.push_str("\n## Causal validity (docs/method.md §5.8)\n\nFor every factor value the recovery table matches to a concept, held-out scenes whose object of interest lacks the value are captioned with a unit direction added at norm α × the training vectors' RMS distance to their mean, at every position of the layer: each method's matched concept, a seeded random direction (floor), the supervised probe's discriminant and class mean shift of the run's vectors, and the probe fitted on the states that predict the factor's word (\"word probe\"; ceilings). Cells are success / specificity / fluency, means over factor values. Success: the object of interest now has the value; specificity: the other attribute slots kept their word; fluency: the caption is a sentence of the canonical grammar. α is in units of that RMS distance. Ablation: the concept projected out, teacher-forced on the unsteered captions of scenes that have the value.\n\n");
    s.push_str(&causal_table(r));
    s.push_str("\n## Unavailable\n\n");
    let mut any = false;
    if let Some((_, t)) = r.tokens.iter().next() {
        for (name, why) in [
            ("CLIPScore", &t.main.clipscore_model),
            ("BERTScore", &t.main.bertscore_model),
        ] {
            if why.starts_with("unavailable") {
                let _ = writeln!(s, "- {name}: {why}");
                any = true;
            }
        }
    }
    s.push_str("- Rnd-Words and GT-captions have no CLIPScore here: the CLI scores CLIPScore for the concept words only.\n");
    for (token, t) in &r.tokens {
        match &t.noise {
            Some(n) => {
                if let Some(why) = &n.unavailable {
                    let _ = writeln!(s, "- Noise-Imgs for {token}: {why}");
                    any = true;
                }
            }
            None => {
                let _ = writeln!(s, "- Noise-Imgs for {token}: not run in this setting");
                any = true;
            }
        }
    }
    let _ = any;
    s.push_str("\n## The paper's numbers (for context only)\n\n");
    s.push_str(if p.setting == "coco" {
        "The paper's numbers are for DePALM on COCO; ours are LLaVA-1.5 with this implementation's BERTScore model (see BERTScore above), so they are comparable in layout, not in value.\n\n"
    } else {
        "These are DePALM on COCO with a different BERTScore model: **not comparable** with the synthetic world's numbers above, only the layout and the ordering of the methods are.\n\n"
    });
    s.push_str(&paper_tables());
    s.push_str("\n## Timings\n\n| Phase | seconds |\n|---|---|\n");
    for (name, t) in &r.timings {
        let _ = writeln!(s, "| {name} | {t:.0} |");
    }
    s.push_str(
        "\nA phase of 0 s was finished by an earlier invocation (run folders resume). The main runs' \
         own steps, as their `metrics.json` recorded them (seconds):\n\n",
    );
    for (token, t) in &r.tokens {
        let steps: Vec<String> = t
            .main
            .timings
            .iter()
            .map(|(name, secs)| format!("{name} {secs:.0}"))
            .collect();
        let _ = writeln!(s, "- {token}: {}", steps.join(", "));
    }
    let _ = writeln!(s, "\n{} CPU threads available.", r.threads);
    s
}

#[cfg(test)]
mod tests;
