//! The evaluation step: every metric of `docs/method.md` ("Metrics") for each method's dictionary,
//! and the method-independent reference rows, computed from data already loaded ([`RunData`]).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::Result;
use cox_decomp::Method;
use cox_ground_visual::most_activating;
use cox_metrics::{MeanStd, Reconstruct};
use cox_snmf::{Par, SamplesRef};
use cox_store::SampleRecord;

use crate::run_folder::concept_dictionary;
use crate::scores::{BertRunner, ClipRunner};
use crate::{Grounding, MethodMetrics, Metrics, RunFolder, RunSettings, SplitData};

/// One method's dictionary and grounding.
pub struct MethodData {
    pub method: Method,
    pub dictionary: crate::learn::Dictionary,
    pub grounding: Grounding,
}

/// What the evaluation and the report read: the settings, the train and test rows at the run's
/// layer, and every method's dictionary and grounding.
pub struct RunData {
    pub settings: RunSettings,
    pub train: SplitData,
    pub test: Option<SplitData>,
    /// In the settings' method order (the first is the report's).
    pub methods: Vec<MethodData>,
}

impl RunData {
    /// Reads a run whose learn and ground steps are done.
    pub fn load(folder: &RunFolder, settings: &RunSettings) -> Result<Self> {
        let train = folder.load_split(&settings.train_split, &settings.layer)?;
        let test = if settings.test_split.is_empty() {
            None
        } else {
            Some(folder.load_split(&settings.test_split, &settings.layer)?)
        };
        let methods = settings
            .methods
            .iter()
            .map(|&m| {
                Ok(MethodData {
                    method: m,
                    dictionary: folder.read_dictionary(m)?,
                    grounding: folder.read_grounding(m)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            settings: settings.clone(),
            train,
            test,
            methods,
        })
    }

    /// The report's method (the first).
    pub fn primary(&self) -> &MethodData {
        &self.methods[0]
    }
}

/// The Noise-Imgs baseline's dictionary: Semi-NMF learnt on noise images, with its words.
pub struct NoiseDictionary {
    pub dictionary: crate::learn::Dictionary,
    pub grounding: Grounding,
}

impl NoiseDictionary {
    /// Reads the Semi-NMF dictionary and grounding of a finished noise run.
    pub fn load(folder: &RunFolder) -> Result<Self> {
        Ok(Self {
            dictionary: folder.read_dictionary(Method::SemiNmf)?,
            grounding: folder.read_grounding(Method::SemiNmf)?,
        })
    }
}

/// The scorers the evaluation may use (each reports why it is unavailable when it is).
pub struct Scorers {
    pub bert: BertRunner,
    pub clip: ClipRunner,
}

impl Scorers {
    pub fn open(bert: Option<&Path>, clip: Option<&Path>) -> Self {
        Self {
            bert: BertRunner::open(bert),
            clip: ClipRunner::open(clip),
        }
    }
}

/// Ground-truth factors per sample id, when the dataset is a synthetic-world folder.
pub(crate) fn synthetic_factors(data: &str) -> Option<HashMap<String, cox_synth::SceneFactors>> {
    let dir = data.strip_prefix("folder:")?;
    let dir = Path::new(dir.split(',').next()?);
    if !dir.join("factors.jsonl").is_file() {
        return None;
    }
    let records = cox_synth::io::read_factors(dir).ok()?;
    Some(records.into_iter().map(|r| (r.id, r.factors)).collect())
}

pub(crate) fn labels_for(
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

/// The `n` concepts with the highest activation, highest first (ties: higher index first, as
/// numpy's stable argsort reversed).
pub fn top_concepts(acts: &[f32], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..acts.len()).collect();
    idx.sort_by(|&a, &b| acts[b].total_cmp(&acts[a]).then(b.cmp(&a)));
    idx.truncate(n);
    idx
}

/// Scores every method of `data` (and the Noise-Imgs dictionary when given).
pub fn evaluate(
    data: &RunData,
    scorers: &Scorers,
    noise: Option<&NoiseDictionary>,
) -> Result<Metrics> {
    let s = &data.settings;
    let (train, test) = (&data.train, data.test.as_ref());
    let factors = synthetic_factors(&s.data);
    let (bert, clip) = (&scorers.bert, &scorers.clip);
    let mut out = Metrics {
        token: s.token.clone(),
        train_samples: train.m,
        test_samples: test.map_or(0, |t| t.m),
        bertscore_model: bert.describe(),
        clipscore_model: clip.describe(),
        ..Default::default()
    };
    for md in &data.methods {
        let (m, d, g) = (md.method, &md.dictionary, &md.grounding);
        let k = d.concepts.rows;
        let words: Vec<&[String]> = g.words.iter().map(|w| w.words.as_slice()).collect();
        let overlap = cox_metrics::overlap(&words)?;
        let acts = &d.activations.data;
        let sp = cox_metrics::sparsity(acts, train.m, k, 0.0)?;
        let how = match m {
            Method::KMeans | Method::Simple => Reconstruct::NearestAtom,
            Method::SemiNmf | Method::Pca => Reconstruct::Linear {
                codes: acts,
                mean: d.mean.as_deref(),
            },
        };
        let rec =
            cox_metrics::reconstruction(&train.x, train.m, train.b, &d.concepts.data, k, how)?;
        let mut mm = MethodMetrics {
            overlap: overlap.overlap,
            mean_l0: sp.mean_l0,
            mean_hoyer: sp.mean_hoyer,
            zero_fraction: sp.zero_fraction,
            dead_concepts: sp.dead.clone(),
            relative_error: rec.relative_error,
            explained_variance: rec.explained_variance,
            fit_seconds: Some(d.meta.fit.report.fit_seconds + d.meta.fit.report.init_seconds),
            ..MethodMetrics::new(m, k)
        };
        if let Some(f) = &factors {
            if let Some(labels) = labels_for(&train.samples, f, &s.token) {
                let r = cox_metrics::recovery_auc(acts, k, &labels)?;
                mm.recovery_auc_train = Some(r.mean_auc);
                mm.recovery = Some(r);
            }
        }
        if let Some(test) = test.filter(|t| t.m > 0) {
            let dict = concept_dictionary(d, m);
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
            let refs: Vec<Vec<String>> = test.samples.iter().map(|r| r.captions.clone()).collect();
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
            mm.stability = Some(stability(train, s, &d.concepts.data, k)?);
        }
        out.methods.push(mm);
    }
    // The supervised ceiling of recovery: a linear probe of the representation, fitted on the
    // training rows and scored on the test rows (synthetic datasets only).
    if let (Some(test), Some(f)) = (test, &factors) {
        if let (Some(ltr), Some(lte)) = (
            labels_for(&train.samples, f, &s.token),
            labels_for(&test.samples, f, &s.token),
        ) {
            if train.m > 0 && test.m > 0 {
                match cox_metrics::probe_auc(&train.x, &ltr, &test.x, &lte, train.b, 1e-2) {
                    Ok(p) => out.references.recovery_probe = Some(p),
                    Err(e) => tracing::warn!("recovery probe skipped: {e}"),
                }
            }
        }
    }
    if let (Some(test), Some(noise)) = (test, noise) {
        if test.m > 0 {
            noise_imgs(noise, test, scorers, &mut out)?;
        }
    }
    if let Some(test) = test {
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
            out.references.bertscore_gt_captions = bert.top1_sentences(&cand_refs, &refs)?;
        }
    }
    Ok(out)
}

/// Noise-Imgs: another run's Semi-NMF dictionary (learnt on noise images) and its words, evaluated
/// on `test` with the Table 1 protocol.
fn noise_imgs(
    noise: &NoiseDictionary,
    test: &SplitData,
    scorers: &Scorers,
    out: &mut Metrics,
) -> Result<()> {
    let (d, g) = (&noise.dictionary, &noise.grounding);
    let k = d.concepts.rows;
    let codes = concept_dictionary(d, Method::SemiNmf)
        .encode(SamplesRef::new(&test.x, test.m, test.b)?, Par::rayon(0))?;
    let top1: Vec<usize> = (0..test.m)
        .map(|i| top_concepts(&codes[i * k..(i + 1) * k], 1)[0])
        .collect();
    let refs: Vec<Vec<String>> = test.samples.iter().map(|r| r.captions.clone()).collect();
    let cands: Vec<&[String]> = top1.iter().map(|&c| g.words[c].words.as_slice()).collect();
    out.references.bertscore_top1_noise_imgs = scorers.bert.top1(&cands, &refs)?;
    if scorers.clip.available() {
        let images = test.image_paths();
        let (t1, _) = scorers.clip.test_scores(&images, &codes, k, &g.words)?;
        out.references.clipscore_top1_noise_imgs = t1;
    }
    Ok(())
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

/// The summary table a finished run prints.
pub struct Summary<'a> {
    pub settings: &'a RunSettings,
    pub metrics: &'a Metrics,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, m) = (self.settings, self.metrics);
        writeln!(
            f,
            "{} samples for {:?} (train), {} (test); K = {}",
            m.train_samples, s.token, m.test_samples, s.k
        )?;
        write!(
            f,
            "{:<8} {:>8} {:>8} {:>9} {:>10} {:>10}",
            "method", "overlap", "L0", "rel.err", "recov.AUC", "BERT-F1"
        )?;
        for mm in &m.methods {
            let g = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            write!(
                f,
                "\n{:<8} {:>8.3} {:>8.2} {:>9} {:>10} {:>10}",
                mm.method.name(),
                mm.overlap,
                mm.mean_l0,
                g(mm.relative_error),
                g(mm.recovery_auc_test.or(mm.recovery_auc_train)),
                g(mm.bertscore_top1.as_ref().map(|b| b.mean)),
            )?;
        }
        if let Some(p) = &m.references.recovery_probe {
            write!(
                f,
                "\nlinear-probe ceiling of recovery AUC (supervised, test): {:.3}",
                p.mean_auc
            )?;
        }
        Ok(())
    }
}
