//! The whole CoX-LMM pipeline as resumable steps in one run folder: extract (train, test) → learn
//! (each method) → ground (words) → evaluate → report. Every step writes its files atomically and
//! is skipped when its output is already there, so an interrupted run is finished by running the
//! same settings again. The model is loaded once by the caller and shared by every step.
//!
//! Progress goes to stderr as one `== step` line per step; the outcomes are returned.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use cox_data::{DataSource, Split};

use crate::evaluate::{evaluate, NoiseDictionary, RunData, Scorers};
use crate::extract::{extract, ExtractParams, ExtractSummary};
use crate::ground::{ground, GroundParams, LmHead};
use crate::learn::{learn, Activations, LearnParams, Learnt};
use crate::report::ReportExtras;
use crate::{Error, Metrics, Model, RunFolder, RunSettings};

/// What a run did and where its results are.
pub struct RunOutcome {
    /// Each split's store, as it stands after extraction.
    pub extracted: Vec<ExtractSummary>,
    /// The dictionaries learnt by this invocation (not those found done), with their files.
    pub learnt: Vec<(Learnt, PathBuf)>,
    pub metrics: Metrics,
    /// The report's index page.
    pub report_index: PathBuf,
}

fn step(name: &str) -> Instant {
    eprintln!("== {name}");
    Instant::now()
}

/// Runs every step of `s` that has not finished yet in `folder`, with `model` (loaded from
/// `s.model`).
pub fn run(s: &RunSettings, folder: &RunFolder, model: &Model) -> Result<RunOutcome> {
    s.check()?;
    folder.open(s)?;
    let mut timings: Vec<(String, f64)> = Vec::new();

    // 1. Extraction (each store resumes by itself).
    let data: DataSource = s.data.parse()?;
    let layers = cox_hook::parse_layers(&s.capture_layers(model.num_layers()).join(","))?;
    let mut extracted = Vec::new();
    for split in s.splits() {
        let t = step(&format!("extract {split}"));
        let mut p = ExtractParams::new(
            data.clone(),
            Split::parse_list(&split)?,
            &s.token,
            layers.clone(),
        );
        p.limit = s.limit;
        p.max_new_tokens = s.max_new_tokens;
        p.load.allow_outside_paths = s.allow_outside_paths;
        let outcome = extract(model, &p, &folder.store(&split))
            .with_context(|| format!("extracting the {split} split"))?;
        extracted.push(outcome.summary);
        timings.push((format!("extract {split}"), t.elapsed().as_secs_f64()));
    }

    // 2. One dictionary per method, all from the same training matrix.
    let train_store = folder.store(&s.train_split);
    let rows = cox_store::read_manifest(&train_store)?.map_or(0, |m| m.rows());
    if rows < s.k {
        return Err(Error::TooFewSamples {
            rows,
            token: s.token.clone(),
            k: s.k,
        }
        .into());
    }
    let mut acts = None;
    let mut learnt = Vec::new();
    for &m in &s.methods {
        if folder.has_dictionary(m) {
            eprintln!(
                "== learn {m}: done already ({})",
                folder.dict_file(m).display()
            );
            continue;
        }
        let t = step(&format!("learn {m}"));
        if acts.is_none() {
            let source = Activations::Store {
                dir: train_store.clone(),
                layer: Some(s.layer.clone()),
            };
            acts = Some(source.load(s.seed)?);
        }
        let params = LearnParams {
            method: m,
            k: s.k,
            lambda: s.lambda,
            seed: s.seed,
            max_iter: None,
        };
        let l = learn(acts.as_ref().expect("loaded above"), &params)?;
        let path = folder.write_dictionary(m, &l.file)?;
        learnt.push((l, path));
        timings.push((format!("learn {m}"), t.elapsed().as_secs_f64()));
    }
    drop(acts);

    // 3. Grounding in words (the model's LM head and tokenizer).
    let t = step("ground");
    let mut head = None;
    let gp = GroundParams {
        top_tokens: s.top_tokens,
        words: s.words,
        seed: s.seed,
    };
    for &m in &s.methods {
        if folder.grounding(m).is_file() {
            continue;
        }
        if head.is_none() {
            head = Some(LmHead::of(model)?);
        }
        let d = folder.read_dictionary(m)?;
        let g = ground(model, head.as_ref().expect("read above"), m, &d, &gp)?;
        folder.write_grounding(&g)?;
    }
    timings.push(("ground".into(), t.elapsed().as_secs_f64()));

    // 4. Evaluation.
    let t = step("evaluate");
    let data = RunData::load(folder, s)?;
    let noise = match &s.noise_dict {
        Some(dir) => Some(
            NoiseDictionary::load(&RunFolder::new(dir))
                .with_context(|| format!("the Noise-Imgs run {}", dir.display()))?,
        ),
        None => None,
    };
    let scorers = Scorers::open(s.bert.as_deref(), s.clip.as_deref());
    let mut metrics = evaluate(&data, &scorers, noise.as_ref())?;
    timings.push(("evaluate".into(), t.elapsed().as_secs_f64()));
    metrics.timings = timings;
    folder.write_metrics(&metrics)?;

    // 5. Report.
    let t = step("report");
    let explanations = folder.read_explanations()?;
    let steering = folder.read_steers()?;
    let report_index = crate::report::write(
        &folder.report(),
        &data,
        &metrics,
        &ReportExtras {
            explanations: &explanations,
            steering: &steering,
            skipped_samples: folder.skipped(&s.train_split),
            timings: &[],
        },
    )?;
    eprintln!("   {:.1} s", t.elapsed().as_secs_f64());
    Ok(RunOutcome {
        extracted,
        learnt,
        metrics,
        report_index,
    })
}

/// Rewrites the report of a finished run (with the explanations saved since).
pub fn rewrite_report(folder: &RunFolder) -> Result<PathBuf> {
    let s = folder.read_settings()?;
    let data = RunData::load(folder, &s)?;
    let metrics = folder.read_metrics()?;
    let explanations = folder.read_explanations()?;
    let steering = folder.read_steers()?;
    crate::report::write(
        &folder.report(),
        &data,
        &metrics,
        &ReportExtras {
            explanations: &explanations,
            steering: &steering,
            skipped_samples: folder.skipped(&s.train_split),
            timings: &[],
        },
    )
}
