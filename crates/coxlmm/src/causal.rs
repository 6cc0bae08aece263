//! Causal validity of a finished run's concepts on the synthetic world (`docs/method.md`,
//! "Steering and causal validity"), written to `RUN/causal.json`.
//!
//! For every factor value the recovery table matches to a concept (`colour=red` → its
//! best-detecting concept, per method), held-out test scenes whose object of interest lacks the
//! value are captioned with the concept's direction added at the run's layer, for each α of a
//! sweep. Every direction is a unit vector added with the same norm, `α · s` where `s` is the
//! root-mean-square distance of the training vectors to their mean, so methods and controls compare
//! at equal strength: the four methods' concept directions (Semi-NMF and PCA atoms; K-Means and
//! Simple atoms minus the training mean, since their concepts are points), a seeded random
//! direction (the floor), the supervised probe's discriminant direction and the class mean shift
//! of the factor on the run's vectors, and the probe fitted on the states that predict the
//! factor's word ("word probe", the ceiling of a direction read where the word is emitted). Captions are read with the canonical grammar
//! ([`parse_scene`]) and scored by `cox_metrics::causal_scores`. Ablation projects each method's
//! concept direction out at every position and measures, teacher-forced on the unsteered caption
//! of scenes that have the value, the probability of the token of interest and of the factor's
//! word.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::{DType, IndexOp};
use cox_decomp::Method;
use cox_metrics::{CausalScores, ParsedScene, ProbabilityChange, Trial};
use cox_model::{
    AddDirection, Edit, EditPositions, Logits, ProjectOut, ResidualCapture, ResidualEdit,
};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::evaluate::{labels_for, synthetic_factors};
use crate::extract::DEFAULT_PROMPT;
use crate::steer::{caption_with, layer_block, Positions};
use crate::{Model, RunFolder};

/// The knobs of [`causal_validity`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CausalOptions {
    /// Test scenes steered per factor value (the first ones that lack it).
    pub scenes: usize,
    /// Steering strengths, in units of the training vectors' RMS distance to their mean.
    pub alphas: Vec<f32>,
    /// Where the direction is added.
    pub positions: Positions,
    /// Seed of the random control directions.
    pub seed: u64,
    /// Ridge of the probe direction (as `cox_metrics::probe_auc`).
    pub ridge: f64,
}

impl Default for CausalOptions {
    fn default() -> Self {
        Self {
            scenes: 8,
            alphas: vec![0.5, 1.0, 2.0, 4.0],
            positions: Positions::All,
            seed: 0,
            ridge: 1e-2,
        }
    }
}

/// One direction at one α on one factor value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectionScores {
    /// A method's label, or `random`, `probe`, `mean shift`, `word probe`.
    pub direction: String,
    /// The method's concept (absent for controls).
    pub concept: Option<usize>,
    /// Its recovery AUC for the factor value (train).
    pub auc: Option<f64>,
    pub alpha: f32,
    pub scores: CausalScores,
}

/// Ablation of one method's concept for one factor value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ablation {
    pub method: String,
    pub concept: usize,
    /// Probability of the token of interest where the caption has it.
    pub token: ProbabilityChange,
    /// Probability of the factor's word where the caption has it.
    pub word: ProbabilityChange,
}

/// Everything measured for one factor value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorCausal {
    /// `key=value`.
    pub factor: String,
    pub steered: Vec<DirectionScores>,
    pub ablation: Vec<Ablation>,
}

/// One row of the summary: a direction at one α, averaged over factor values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CausalRow {
    pub direction: String,
    pub alpha: f32,
    pub factors: usize,
    pub success: f64,
    pub specificity: f64,
    pub fluency: f64,
}

/// One method's ablation, averaged over factor values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationRow {
    pub method: String,
    pub factors: usize,
    pub token_before: f64,
    pub token_after: f64,
    pub word_before: f64,
    pub word_after: f64,
}

/// `RUN/causal.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CausalReport {
    pub format: String,
    pub token: String,
    pub block: usize,
    pub options: CausalOptions,
    /// The unit `s` of α: RMS distance of the training vectors to their mean.
    pub scale: f32,
    pub factors: Vec<FactorCausal>,
    pub summary: Vec<CausalRow>,
    pub ablation: Vec<AblationRow>,
}

/// A caption read with the world's canonical grammar (`a <size> <colour> <shape> <position>` joined
/// by `and`, then `on a <texture> <background> background`); `None` unless the caption is exactly
/// that grammar's sentence over the world's words.
pub fn parse_scene(caption: &str) -> Option<ParsedScene> {
    use cox_synth::{Background, Colour, Position, Shape, Size, Texture};
    let p = cox_train::parse_caption(caption);
    fn pick<'a>(w: &'a Option<String>, words: &[&str]) -> Option<&'a str> {
        w.as_deref().filter(|x| words.contains(x))
    }
    let words = |all: Vec<&'static str>| all;
    let sizes = words(Size::ALL.iter().map(|x| x.word()).collect());
    let colours = words(Colour::ALL.iter().map(|x| x.word()).collect());
    let shapes = words(Shape::ALL.iter().map(|x| x.word()).collect());
    let positions = words(Position::ALL.iter().map(|x| x.word()).collect());
    let textures = words(Texture::ALL.iter().map(|x| x.word()).collect());
    let backgrounds = words(Background::ALL.iter().map(|x| x.word()).collect());
    let texture = pick(&p.texture, &textures)?;
    let background = pick(&p.background, &backgrounds)?;
    if p.objects.is_empty() {
        return None;
    }
    let mut out = ParsedScene::default();
    let mut phrases = Vec::new();
    for o in &p.objects {
        let (s, c, sh, pos) = (
            pick(&o.size, &sizes)?,
            pick(&o.colour, &colours)?,
            pick(&o.shape, &shapes)?,
            pick(&o.position, &positions)?,
        );
        let place = if pos == "centre" {
            "in the centre".to_string()
        } else {
            format!("on the {pos}")
        };
        phrases.push(format!("a {s} {c} {sh} {place}"));
        out.objects.push(
            [("size", s), ("colour", c), ("shape", sh), ("position", pos)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    let rendered = format!(
        "{} on a {texture} {background} background",
        phrases.join(" and ")
    );
    if rendered != caption.split_whitespace().collect::<Vec<_>>().join(" ") {
        return None;
    }
    out.scene.insert("texture".into(), texture.into());
    out.scene.insert("background".into(), background.into());
    Some(out)
}

/// The index of the first object whose shape is `token`.
fn object_of_interest(s: &ParsedScene, token: &str) -> Option<usize> {
    s.objects
        .iter()
        .position(|o| o.get("shape").map(String::as_str) == Some(token))
}

fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let n = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    (n.is_finite() && n > 0.0).then(|| v.iter().map(|&x| (f64::from(x) / n) as f32).collect())
}

/// A unit direction steered with: a method's concept or a control.
#[derive(Clone)]
struct Direction {
    /// The method's label, or the control's name.
    name: String,
    concept: Option<usize>,
    auc: Option<f64>,
    unit: Vec<f32>,
}

/// A test scene with its unsteered caption.
struct Scene {
    image: PathBuf,
    before: ParsedScene,
    caption: String,
    object: usize,
}

/// Measures causal validity on a finished synthetic-world run (see the module doc).
pub fn causal_validity(
    model: &Model,
    folder: &RunFolder,
    opts: &CausalOptions,
) -> Result<CausalReport> {
    let s = folder.read_settings()?;
    let block = layer_block(&s.layer)?;
    let metrics = folder.read_metrics()?;
    let Some(factors) = synthetic_factors(&s.data) else {
        bail!(
            "causal validity needs the synthetic world's ground truth (a folder: dataset with \
             factors.jsonl); {} has none",
            s.data
        );
    };
    let train = folder.load_split(&s.train_split, &s.layer)?;
    let test = folder.load_split(&s.test_split, &s.layer)?;
    let (m, b) = (train.m, train.b);
    let Some(train_labels) = labels_for(&train.samples, &factors, &s.token) else {
        bail!(
            "some training samples of {} have no ground-truth factors",
            folder.root().display()
        );
    };
    // The unit of α and the centre of point-like concepts.
    let mut mean = vec![0f64; b];
    for row in train.x.chunks_exact(b) {
        for (a, &v) in mean.iter_mut().zip(row) {
            *a += v as f64 / m as f64;
        }
    }
    let scale = (train
        .x
        .chunks_exact(b)
        .map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&v, &mu)| (v as f64 - mu).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / m as f64)
        .sqrt() as f32;

    // Unsteered captions of the test scenes (recomputed, so that before and after differ only by
    // the edit).
    let mut scenes = Vec::new();
    for r in &test.samples {
        let image = PathBuf::from(&r.image);
        let caption = caption_with(model, &s, &image, None)?;
        if let Some(before) = parse_scene(&caption) {
            if let Some(object) = object_of_interest(&before, &s.token) {
                scenes.push(Scene {
                    image,
                    before,
                    caption,
                    object,
                });
            }
        }
    }
    if scenes.is_empty() {
        bail!(
            "no test caption of {} parses with an object of interest",
            folder.root().display()
        );
    }

    // Factor values and each method's concept for them.
    let mut matches: BTreeMap<String, Vec<Direction>> = BTreeMap::new();
    for mm in &metrics.methods {
        let Some(rec) = &mm.recovery else { continue };
        let d = folder.read_dictionary(mm.method)?;
        for f in &rec.factors {
            let c = f.best_concept;
            let atom = &d.concepts.data[c * b..(c + 1) * b];
            let dir: Vec<f32> = match mm.method {
                Method::SemiNmf | Method::Pca => atom.to_vec(),
                Method::KMeans | Method::Simple => atom
                    .iter()
                    .zip(&mean)
                    .map(|(&a, &mu)| a - mu as f32)
                    .collect(),
            };
            let Some(u) = unit(&dir) else { continue };
            matches
                .entry(f.factor.clone())
                .or_default()
                .push(Direction {
                    name: mm.method.label().to_string(),
                    concept: Some(c),
                    auc: Some(f.auc),
                    unit: u,
                });
        }
    }
    if matches.is_empty() {
        bail!(
            "metrics.json of {} has no recovery table (evaluate a synthetic-world run first)",
            folder.root().display()
        );
    }
    let values: Vec<&str> = matches.keys().map(String::as_str).collect();
    let probes = cox_metrics::probe_directions(&train.x, &train_labels, b, opts.ridge, &values)?;
    let at_words = word_states(model, &s, block, &train.samples)?;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut out_factors = Vec::new();
    for ((factor, dirs), probe) in matches.iter().zip(&probes) {
        let Some((key, value)) = factor.split_once('=') else {
            continue;
        };
        let lacking: Vec<&Scene> = scenes
            .iter()
            .filter(|sc| sc.before.value(sc.object, key).is_some_and(|v| v != value))
            .take(opts.scenes)
            .collect();
        let having: Vec<&Scene> = scenes
            .iter()
            .filter(|sc| sc.before.value(sc.object, key) == Some(value))
            .take(opts.scenes)
            .collect();
        // Controls: a seeded random direction, the probe's and the class mean shift.
        let random: Vec<f32> = (0..b).map(|_| StandardNormal.sample(&mut rng)).collect();
        let shift: Vec<f32> = {
            let pos: Vec<bool> = train_labels
                .iter()
                .map(|l| l.iter().any(|x| x == factor))
                .collect();
            let np = pos.iter().filter(|&&p| p).count().max(1) as f64;
            let nn = (m - pos.iter().filter(|&&p| p).count()).max(1) as f64;
            let (mut a, mut c) = (vec![0f64; b], vec![0f64; b]);
            for (row, &p) in train.x.chunks_exact(b).zip(&pos) {
                let acc = if p { &mut a } else { &mut c };
                for (x, &v) in acc.iter_mut().zip(row) {
                    *x += v as f64;
                }
            }
            a.iter()
                .zip(&c)
                .map(|(x, y)| (x / np - y / nn) as f32)
                .collect()
        };
        let mut directions: Vec<Direction> = dirs.clone();
        for (name, v) in [
            ("random", random),
            ("probe", probe.clone()),
            ("mean shift", shift),
            ("word probe", word_probe(&at_words, factor, b, opts.ridge)),
        ] {
            if let Some(u) = unit(&v) {
                directions.push(Direction {
                    name: name.to_string(),
                    concept: None,
                    auc: None,
                    unit: u,
                });
            }
        }
        let mut steered = Vec::new();
        if !lacking.is_empty() {
            for d in &directions {
                for &alpha in &opts.alphas {
                    let edit: Arc<dyn ResidualEdit> =
                        Arc::new(AddDirection::new(&d.unit, alpha * scale)?);
                    let mut afters = Vec::with_capacity(lacking.len());
                    for sc in &lacking {
                        let cap = caption_with(
                            model,
                            &s,
                            &sc.image,
                            Some((block, opts.positions, &edit)),
                        )?;
                        afters.push(parse_scene(&cap));
                    }
                    let trials: Vec<Trial<'_>> = lacking
                        .iter()
                        .zip(&afters)
                        .map(|(sc, a)| Trial {
                            object: sc.object,
                            key,
                            value,
                            before: &sc.before,
                            after: a.as_ref(),
                        })
                        .collect();
                    steered.push(DirectionScores {
                        direction: d.name.clone(),
                        concept: d.concept,
                        auc: d.auc,
                        alpha,
                        scores: cox_metrics::causal_scores(&trials)?,
                    });
                }
            }
        }
        let mut ablation = Vec::new();
        if !having.is_empty() {
            for d in dirs {
                let concept = d.concept.unwrap_or_default();
                if let Some((token, word)) = ablate(model, &s.token, block, &d.unit, key, &having)?
                {
                    ablation.push(Ablation {
                        method: d.name.clone(),
                        concept,
                        token,
                        word,
                    });
                }
            }
        }
        out_factors.push(FactorCausal {
            factor: factor.clone(),
            steered,
            ablation,
        });
    }
    let summary = summarise(&out_factors);
    let ablation = summarise_ablation(&out_factors);
    Ok(CausalReport {
        format: "coxlmm-causal".into(),
        token: s.token.clone(),
        block,
        options: opts.clone(),
        scale,
        factors: out_factors,
        summary,
        ablation,
    })
}

/// Per attribute key, training states (`B` values each, sample-major) and their `key=word` labels.
type WordStates = BTreeMap<String, (Vec<f32>, Vec<Vec<String>>)>;

/// The index of the word that names attribute `key` of object `object` (or of the scene) in a
/// caption of `n_words` words of the canonical grammar: object `j`'s seven words start at `8·j`
/// (objects are joined by "and"), the scene's are the last five.
fn word_index(key: &str, object: usize, n_words: usize) -> Option<usize> {
    let start = 8 * object;
    match key {
        "size" => Some(start + 1),
        "colour" => Some(start + 2),
        "shape" => Some(start + 3),
        "position" => Some(start + 6),
        "texture" => n_words.checked_sub(3),
        "background" => n_words.checked_sub(2),
        _ => None,
    }
}

/// The index in `ids` of the first token of each whitespace-separated word of their decoded text
/// (`words`): the ids are decoded prefix by prefix and each word's first character located, so a
/// word-level tokenizer maps word i to token i and a sub-word one (SmolLM2's byte-level BPE) maps a
/// word to its first piece. `None` when the ids do not decode to `words`.
pub fn word_token_starts(
    tok: &tokenizers::Tokenizer,
    ids: &[u32],
    words: &[&str],
) -> Option<Vec<usize>> {
    let full = tok.decode(ids, true).ok()?;
    let mut starts_chars = Vec::new();
    let mut decoded_words = Vec::new();
    let chars: Vec<char> = full.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        starts_chars.push(start);
        decoded_words.push(chars[start..i].iter().collect::<String>());
    }
    if decoded_words.len() != words.len() || decoded_words.iter().zip(words).any(|(a, b)| a != b) {
        return None;
    }
    // prefix[j]: characters decoded from the first j tokens.
    let mut prefix = Vec::with_capacity(ids.len() + 1);
    for j in 0..=ids.len() {
        prefix.push(tok.decode(&ids[..j], true).ok()?.chars().count());
    }
    starts_chars
        .iter()
        .map(|&c| {
            // The token whose decoded span holds character c.
            (0..ids.len())
                .rev()
                .find(|&j| prefix[j] <= c && prefix[j + 1] > c)
        })
        .collect()
}

/// Per attribute key, the training states at `block` that predict the object of interest's word
/// for it (the scene's, for texture and background; a word's first token for sub-word
/// tokenizers), labelled `key=word`: what a probe "at the word" is fitted on. Captions that do
/// not parse are left out.
fn word_states(
    model: &Model,
    s: &crate::RunSettings,
    block: usize,
    samples: &[cox_store::SampleRecord],
) -> Result<WordStates> {
    let lmm = model.lmm();
    let capture = ResidualCapture::new([cox_model::LayerSel::Block(block)]);
    let params = model.generate_params(s.max_new_tokens, &capture);
    let mut out = WordStates::new();
    for r in samples {
        let px = lmm
            .load_pixels(&r.image)
            .with_context(|| format!("cannot read the image {}", r.image))?;
        let input = lmm.prepare(DEFAULT_PROMPT, Some(&px))?;
        let g = lmm.generate(&input, &params)?;
        let Some(scene) = parse_scene(&g.text) else {
            continue;
        };
        let Some(object) = object_of_interest(&scene, &s.token) else {
            continue;
        };
        let words: Vec<&str> = g.text.split_whitespace().collect();
        let n_gen = g.generated_ids.len() - usize::from(g.stopped_at_eos);
        let Some(starts) = word_token_starts(lmm.tokenizer(), &g.generated_ids[..n_gen], &words)
        else {
            continue;
        };
        let states = g.residuals[0].to_dtype(DType::F32)?;
        let p = input.ids.len();
        for key in ["size", "colour", "position", "texture", "background"] {
            let Some(w) = word_index(key, object, words.len()) else {
                continue;
            };
            let Some(word) = scene.value(object, key) else {
                continue;
            };
            // Generated token j sits at position p + j and is predicted from position p + j − 1.
            let row: Vec<f32> = states.i(p + starts[w] - 1)?.to_vec1()?;
            let entry = out.entry(key.to_string()).or_default();
            entry.0.extend(row);
            entry.1.push(vec![format!("{key}={word}")]);
        }
    }
    Ok(out)
}

/// The probe direction of `factor` (`key=value`) fitted on the states that predict its word;
/// empty when there are none (or the value never, or always, occurs).
fn word_probe(at_words: &WordStates, factor: &str, b: usize, ridge: f64) -> Vec<f32> {
    let Some((key, _)) = factor.split_once('=') else {
        return Vec::new();
    };
    let Some((x, labels)) = at_words.get(key) else {
        return Vec::new();
    };
    cox_metrics::probe_directions(x, labels, b, ridge, &[factor])
        .ok()
        .and_then(|mut v| v.pop())
        .unwrap_or_default()
}

/// Teacher-forced probabilities of the token of interest and of the factor's word in the unsteered
/// captions of `scenes`, without and with `u` projected out at every position of `block`.
fn ablate(
    model: &Model,
    token: &str,
    block: usize,
    u: &[f32],
    key: &str,
    scenes: &[&Scene],
) -> Result<Option<(ProbabilityChange, ProbabilityChange)>> {
    // Teacher forcing needs the caption's tokens in place of the generated ones, which the
    // LLaVA interface offers (the synthetic world's models are LLaVA checkpoints).
    let cox_model::Lmm::Llava(llava) = model.lmm() else {
        anyhow::bail!(
            "the ablation measure teacher-forces the captions, which is implemented for LLaVA \
             checkpoints only; {} is a {}",
            model.id(),
            model.lmm().architecture()
        );
    };
    let edit = ResidualCapture::none().with_edits(vec![Edit::new(
        block,
        EditPositions::All,
        ProjectOut::new(u)?,
    )]);
    let (mut tb, mut ta, mut wb, mut wa) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for sc in scenes {
        let px = llava.load_pixels(&sc.image)?;
        let (input, answer) = llava.prepare_with_answer(DEFAULT_PROMPT, &sc.caption, Some(&px))?;
        let words: Vec<&str> = sc.caption.split_whitespace().collect();
        // Each word's first token in the answer (one token per word for the synthetic world's
        // tokenizer, the first sub-word for BPE ones); skip a caption that does not decode back.
        let Some(starts) =
            word_token_starts(llava.tokenizer.inner(), &input.ids[answer.clone()], &words)
        else {
            continue;
        };
        let token_word = 8 * sc.object + 3;
        let Some(word) = word_index(key, sc.object, words.len()) else {
            continue;
        };
        if words.get(token_word) != Some(&token) {
            continue;
        }
        let probs = |capture: &ResidualCapture| -> Result<(f64, f64)> {
            let out = llava.forward(&input, capture, Logits::All)?;
            let logits = out
                .logits
                .context("no logits")?
                .i(0)?
                .to_dtype(DType::F32)?;
            let p = candle_nn::ops::softmax_last_dim(&logits)?;
            let at = |w: usize| -> Result<f64> {
                let pos = answer.start + starts[w];
                let id = input.ids[pos] as usize;
                Ok(f64::from(p.i((pos - 1, id))?.to_scalar::<f32>()?))
            };
            Ok((at(token_word)?, at(word)?))
        };
        let (t0, w0) = probs(&ResidualCapture::none())?;
        let (t1, w1) = probs(&edit)?;
        tb.push(t0.clamp(0.0, 1.0));
        ta.push(t1.clamp(0.0, 1.0));
        wb.push(w0.clamp(0.0, 1.0));
        wa.push(w1.clamp(0.0, 1.0));
    }
    if tb.is_empty() {
        return Ok(None);
    }
    Ok(Some((
        cox_metrics::probability_change(&tb, &ta)?,
        cox_metrics::probability_change(&wb, &wa)?,
    )))
}

fn summarise(factors: &[FactorCausal]) -> Vec<CausalRow> {
    let mut acc: Vec<(String, f32, usize, f64, f64, f64)> = Vec::new();
    for f in factors {
        for d in &f.steered {
            let i = match acc
                .iter()
                .position(|a| a.0 == d.direction && a.1 == d.alpha)
            {
                Some(i) => i,
                None => {
                    acc.push((d.direction.clone(), d.alpha, 0, 0.0, 0.0, 0.0));
                    acc.len() - 1
                }
            };
            let a = &mut acc[i];
            a.2 += 1;
            a.3 += d.scores.success;
            a.4 += d.scores.specificity;
            a.5 += d.scores.fluency;
        }
    }
    acc.into_iter()
        .map(|(direction, alpha, n, su, sp, fl)| {
            let n_f = n.max(1) as f64;
            CausalRow {
                direction,
                alpha,
                factors: n,
                success: su / n_f,
                specificity: sp / n_f,
                fluency: fl / n_f,
            }
        })
        .collect()
}

fn summarise_ablation(factors: &[FactorCausal]) -> Vec<AblationRow> {
    let mut rows: Vec<AblationRow> = Vec::new();
    for f in factors {
        for a in &f.ablation {
            let i = match rows.iter().position(|r| r.method == a.method) {
                Some(i) => i,
                None => {
                    rows.push(AblationRow {
                        method: a.method.clone(),
                        factors: 0,
                        token_before: 0.0,
                        token_after: 0.0,
                        word_before: 0.0,
                        word_after: 0.0,
                    });
                    rows.len() - 1
                }
            };
            let r = &mut rows[i];
            r.factors += 1;
            r.token_before += a.token.before;
            r.token_after += a.token.after;
            r.word_before += a.word.before;
            r.word_after += a.word.after;
        }
    }
    for r in &mut rows {
        let n = r.factors.max(1) as f64;
        r.token_before /= n;
        r.token_after /= n;
        r.word_before /= n;
        r.word_after /= n;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Word i is token i for the committed model's word-level tokenizer; a byte-level BPE word
    /// split into pieces maps to its first piece; ids that decode to other words give None.
    #[test]
    fn words_map_to_their_first_token() {
        let words = cox_model::Llava::load(
            cox_synth::default_model_dir().to_str().unwrap(),
            &cox_model::LoadOptions::default(),
        )
        .unwrap();
        let tok = words.tokenizer.inner();
        let caption = "a small red circle";
        let ids = tok.encode(caption, false).unwrap().get_ids().to_vec();
        let w: Vec<&str> = caption.split_whitespace().collect();
        assert_eq!(word_token_starts(tok, &ids, &w), Some(vec![0, 1, 2, 3]));

        let bpe: tokenizers::Tokenizer = r#"{
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                      "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                      "vocab": {"sm": 0, "all": 1, "\u0120red": 2, "\u0120cir": 3, "cle": 4}, "merges": []}
        }"#
        .parse()
        .unwrap();
        let w = ["small", "red", "circle"];
        assert_eq!(
            word_token_starts(&bpe, &[0, 1, 2, 3, 4], &w),
            Some(vec![0, 2, 3])
        );
        assert_eq!(word_token_starts(&bpe, &[0, 1, 2], &w), None);
    }

    #[test]
    fn parse_scene_accepts_exactly_the_canonical_grammar() {
        let s = parse_scene(
            "a small red circle on the left and a large blue star in the centre on a dotted sky background",
        )
        .unwrap();
        assert_eq!(s.objects.len(), 2);
        assert_eq!(s.value(1, "colour"), Some("blue"));
        assert_eq!(s.value(0, "background"), Some("sky"));
        for bad in [
            "a small red circle on the left on a dotted sky background background",
            "a small pink circle on the left on a dotted sky background",
            "a small red circle in the left on a dotted sky background",
            "a small red circle on the left",
            "",
        ] {
            assert!(parse_scene(bad).is_none(), "{bad:?} parsed");
        }
    }
}
