//! The report step: a run's data → the static HTML site (cox-report), with thumbnails written by
//! cox-ground-visual into the same folder. The caller loads the data ([`RunData`], [`Metrics`],
//! the explanations); rendering never reads the run folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cox_ground_visual::{most_activating, write_visual_grounding, SampleImage, VisualParams};
use cox_report::{
    coactivation, Cell, ConceptReport, ExplainedConcept, ExplainedImage, FactorMatch, ImageRef,
    Plots, ReportData, RunSettings as ReportSettings, SteeringExample, SteeringRun, Table,
    TableRow, WordLogit,
};

use crate::evaluate::{top_concepts, RunData};
use crate::explain::Explanation;
use crate::run_folder::concept_dictionary;
use crate::steer::{Intervention, SteerRecord};
use crate::{MethodMetrics, Metrics, RunFolder, SplitData};

/// Concept-page images per concept.
const TOP_IMAGES: usize = 20;
/// Concepts listed for an explained image.
const EXPLAIN_TOP: usize = 5;

/// Everything the report shows besides the run's data and metrics.
#[derive(Default)]
pub struct ReportExtras<'a> {
    /// `coxlmm explain` results.
    pub explanations: &'a [Explanation],
    /// `coxlmm steer` results (those of the report's method appear on their concepts' pages).
    pub steering: &'a [SteerRecord],
    /// Skipped samples of the training split, when known.
    pub skipped_samples: Option<usize>,
    /// Step timings to show after the metrics' own.
    pub timings: &'a [(String, f64)],
}

/// One `coxlmm steer` record as the concept page shows it.
fn steering_run(r: &SteerRecord) -> SteeringRun {
    let what = match &r.intervention {
        Intervention::Add { alpha } => format!("{alpha:+} × {} vector", r.source.slug()),
        Intervention::SetActivation { value } => format!("activation set to {value}"),
    };
    SteeringRun {
        setting: format!("{what} at block {}, {} positions", r.block, r.positions),
        changed: r.changed(),
        examples: r
            .captions
            .iter()
            .map(|c| SteeringExample {
                sample_id: c.id.clone(),
                before: c.before.clone(),
                after: c.after.clone(),
            })
            .collect(),
    }
}

fn f(v: Option<f64>) -> Cell {
    v.map_or(Cell::Empty, Cell::num)
}

fn ms(v: &Option<cox_metrics::MeanStd>) -> Cell {
    v.as_ref()
        .map_or(Cell::Empty, |m| Cell::mean_std(m.mean, m.std))
}

/// Writes the site into `site` and returns its index page.
pub fn write(
    site: &Path,
    data: &RunData,
    metrics: &Metrics,
    extras: &ReportExtras<'_>,
) -> Result<PathBuf> {
    let s = &data.settings;
    let primary = data.primary();
    let (d, g) = (&primary.dictionary, &primary.grounding);
    let primary = primary.method;
    let train = &data.train;
    std::fs::create_dir_all(site).with_context(|| format!("cannot create {}", site.display()))?;
    let k = d.concepts.rows;
    let acts = &d.activations.data;
    let visual = visual(site, train, acts, k, TOP_IMAGES)?;
    for p in &visual.problems {
        eprintln!("warning: {}", p.reason);
    }
    let mass: Vec<f64> = {
        let mut col = vec![0f64; k];
        for row in acts.chunks(k) {
            for (c, v) in col.iter_mut().zip(row) {
                *c += *v as f64;
            }
        }
        let total: f64 = col.iter().sum();
        col.iter()
            .map(|c| if total > 0.0 { c / total } else { 0.0 })
            .collect()
    };
    let pm = metrics.method(primary);
    let captions: Vec<Option<String>> = train.samples.iter().map(|r| r.generated.clone()).collect();

    let mut concepts = Vec::with_capacity(k);
    for (c, &share) in mass.iter().enumerate() {
        let imgs: Vec<ImageRef> = visual.grounding.concepts[c]
            .samples
            .iter()
            .map(|x| ImageRef {
                sample_id: x.id.clone(),
                thumbnail: x.thumbnail.as_ref().map(PathBuf::from),
                activation: Some(x.activation),
                caption: captions[x.sample].clone(),
                error: x.error.clone(),
            })
            .collect();
        let factor = pm
            .and_then(|p| p.recovery.as_ref())
            .and_then(|r| r.concepts.iter().find(|m| m.concept == c))
            .map(|m| FactorMatch {
                factor: m.factor.clone(),
                auc: m.auc,
            });
        concepts.push(ConceptReport {
            index: c,
            words: g.words[c].words.clone(),
            word_logits: g.words[c]
                .candidates
                .iter()
                .take(20)
                .map(|x| WordLogit {
                    word: x.text.clone(),
                    logit: x.logit,
                })
                .collect(),
            activation_share: Some(share),
            mas: imgs.iter().take(s.n_mas).cloned().collect(),
            top_images: imgs,
            activations: acts.iter().skip(c).step_by(k).copied().collect(),
            factor,
            steering: extras
                .steering
                .iter()
                .filter(|r| r.method == primary && r.concept == c)
                .map(steering_run)
                .collect(),
        });
    }

    // Tables: every method side by side, then the method-independent references.
    let cols: Vec<String> = metrics
        .methods
        .iter()
        .map(|m| m.method.label().to_string())
        .collect();
    let row = |name: &str, hib: Option<bool>, cells: Vec<Cell>, note: Option<&str>| TableRow {
        name: name.into(),
        cells,
        higher_is_better: hib,
        note: note.map(str::to_string),
    };
    let per = |g: &dyn Fn(&MethodMetrics) -> Cell| -> Vec<Cell> {
        metrics.methods.iter().map(g).collect()
    };
    let mut rows = vec![
        row(
            "Overlap of grounded words",
            Some(false),
            per(&|m| Cell::num(m.overlap)),
            Some("docs/method.md §5.3; lower is more disentangled"),
        ),
        row(
            "Relative reconstruction error",
            Some(false),
            per(&|m| f(m.relative_error)),
            Some("train, ‖X − X̂‖/‖X‖"),
        ),
        row(
            "Explained variance",
            Some(true),
            per(&|m| f(m.explained_variance)),
            None,
        ),
        row(
            "Mean active concepts (L0)",
            None,
            per(&|m| Cell::num(m.mean_l0)),
            None,
        ),
        row("Hoyer sparsity", None, per(&|m| f(m.mean_hoyer)), None),
        row(
            "Dead concepts",
            Some(false),
            per(&|m| Cell::num(m.dead_concepts.len() as f64)),
            None,
        ),
    ];
    if metrics
        .methods
        .iter()
        .any(|m| m.recovery_auc_train.is_some())
    {
        rows.push(row(
            "Ground-truth recovery AUC (train)",
            Some(true),
            per(&|m| f(m.recovery_auc_train)),
            Some("synthetic world: best concept per factor value"),
        ));
        rows.push(row(
            "Ground-truth recovery AUC (test)",
            Some(true),
            per(&|m| f(m.recovery_auc_test)),
            Some("test projections (encode)"),
        ));
    }
    rows.push(row(
        "BERTScore F1, top-1 concept",
        Some(true),
        per(&|m| ms(&m.bertscore_top1)),
        Some(&metrics.bertscore_model),
    ));
    rows.push(row(
        "BERTScore F1, Rnd-Words",
        None,
        per(&|m| ms(&m.bertscore_top1_rnd_words)),
        Some("random directions decoded the same way"),
    ));
    rows.push(row(
        "CLIPScore, top-1 concept",
        Some(true),
        per(&|m| ms(&m.clipscore_top1)),
        Some(&metrics.clipscore_model),
    ));
    rows.push(row(
        "CLIPScore, top-3 concepts",
        Some(true),
        per(&|m| ms(&m.clipscore_top3)),
        None,
    ));
    if metrics.methods.iter().any(|m| m.stability.is_some()) {
        rows.push(row(
            "Stability on 80 % subsamples (matched cosine)",
            Some(true),
            per(&|m| ms(&m.stability)),
            None,
        ));
    }
    rows.push(row("Fit time (s)", None, per(&|m| f(m.fit_seconds)), None));
    let mut tables = vec![Table {
        caption: format!(
            "Evaluation: {} training and {} test samples of {:?}",
            metrics.train_samples, metrics.test_samples, s.token
        ),
        columns: cols,
        rows,
        decimals: Some(3),
    }];
    if let Some(m) = &metrics.references.bertscore_gt_captions {
        tables.push(Table {
            caption: "Reference: GT-captions (first ground-truth caption against the others)"
                .into(),
            columns: vec!["GT-captions".into()],
            rows: vec![row(
                "BERTScore F1",
                None,
                vec![Cell::mean_std(m.mean, m.std)],
                Some(&metrics.bertscore_model),
            )],
            decimals: Some(3),
        });
    }
    if let Some(r) = pm.and_then(|p| p.recovery.as_ref()) {
        tables.push(Table {
            caption: format!(
                "Ground-truth factor recovery ({}): the best concept for each factor value",
                primary.label()
            ),
            columns: vec!["best concept".into(), "ROC-AUC".into(), "samples".into()],
            rows: r
                .factors
                .iter()
                .map(|x| TableRow {
                    name: x.factor.clone(),
                    cells: vec![
                        Cell::Text(format!("#{}", x.best_concept)),
                        Cell::num(x.auc),
                        Cell::Text(x.positives.to_string()),
                    ],
                    higher_is_better: None,
                    note: None,
                })
                .collect(),
            decimals: Some(3),
        });
    }

    // Explained test images (from the test store) and `coxlmm explain` results.
    let mut explained = Vec::new();
    if let Some(test) = data.test.as_ref().filter(|_| s.explain > 0) {
        let dict = concept_dictionary(d, primary);
        let n = test.m.min(s.explain);
        if n > 0 {
            let codes = dict.encode(
                cox_snmf::SamplesRef::new(&test.x[..n * test.b], n, test.b)?,
                cox_snmf::Par::rayon(0),
            )?;
            for i in 0..n {
                let r = &test.samples[i];
                let thumb = write_thumb(site, Path::new(&r.image));
                let row = &codes[i * k..(i + 1) * k];
                explained.push(ExplainedImage {
                    image: ImageRef {
                        sample_id: r.id.clone(),
                        thumbnail: thumb.as_ref().ok().cloned(),
                        activation: None,
                        caption: r.generated.clone(),
                        error: thumb.err().map(|e| e.to_string()),
                    },
                    token_generated: true,
                    references: r.captions.clone(),
                    concepts: top_concepts(row, EXPLAIN_TOP)
                        .into_iter()
                        .map(|c| ExplainedConcept {
                            concept: c,
                            activation: row[c],
                        })
                        .collect(),
                });
            }
        }
    }
    for e in extras.explanations {
        let thumb = write_thumb(site, Path::new(&e.image));
        explained.push(ExplainedImage {
            image: ImageRef {
                sample_id: e.id.clone(),
                thumbnail: thumb.as_ref().ok().cloned(),
                activation: None,
                caption: Some(e.generated.clone()),
                error: thumb.err().map(|e| e.to_string()),
            },
            token_generated: e.token_generated,
            references: Vec::new(),
            concepts: e
                .concepts
                .iter()
                .map(|&(c, a)| ExplainedConcept {
                    concept: c,
                    activation: a,
                })
                .collect(),
        });
    }

    let mut timing_list: Vec<(String, f64)> = metrics.timings.clone();
    timing_list.extend(extras.timings.iter().cloned());
    let skipped = extras.skipped_samples;
    let data = ReportData {
        title: format!(
            "{:?} · {} · layer {} · {}",
            s.token,
            model_name(&s.model),
            s.layer,
            primary.label()
        ),
        settings: ReportSettings {
            model: Some(s.model.clone()),
            layer: Some(s.layer.clone()),
            token: Some(s.token.clone()),
            method: Some(primary.label().to_string()),
            k: Some(k),
            lambda: d.meta.fit.lambda,
            seed: Some(s.seed),
            train_samples: Some(train.m),
            test_samples: Some(metrics.test_samples),
            skipped_samples: skipped,
            dataset: Some(s.data.clone()),
            timings: timing_list,
            extra: vec![
                (
                    "methods compared".into(),
                    s.methods
                        .iter()
                        .map(|m| m.name())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                (
                    "grounded words".into(),
                    format!("{} of the top {} tokens", s.words, s.top_tokens),
                ),
                ("BERTScore".into(), metrics.bertscore_model.clone()),
                ("CLIPScore".into(), metrics.clipscore_model.clone()),
                (
                    "objective".into(),
                    d.meta.fit.report.objective.map_or("-".into(), |o| {
                        format!("{o:.4} after {} iterations", d.meta.fit.report.iterations)
                    }),
                ),
            ],
        },
        tables,
        concepts,
        plots: Plots {
            objective_trace: d.meta.fit.report.objective_trace.clone(),
            recon_error_vs_k: Vec::new(),
            coactivation: Some(coactivation(acts, train.m, k)),
        },
        explained,
    };
    cox_store::atomic_write(
        &site.join("report.json"),
        serde_json::to_string(&data)?.as_bytes(),
    )?;
    let summary = cox_report::write_site(&data, site)?;
    for p in &summary.problems {
        eprintln!("warning: {p}");
    }
    Ok(summary.index)
}

fn model_name(model: &str) -> String {
    Path::new(model.trim_end_matches('/'))
        .file_name()
        .map_or(model.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Writes a 96-px thumbnail of `image` as [`RunFolder::explanation_thumbnail`] in `site` and returns
/// its relative path. The image is read by `cox_image::open_image`: regular files only, the size
/// limits checked before the whole file is read, truncated files refused.
fn write_thumb(site: &Path, image: &Path) -> Result<PathBuf> {
    let img = cox_image::open_image(image, &cox_image::ImageLimits::default())?;
    let rel = RunFolder::explanation_thumbnail(image);
    std::fs::create_dir_all(site.join("thumbs"))?;
    cox_ground_visual::write_png(&cox_ground_visual::thumbnail(&img, 96), &site.join(&rel))?;
    Ok(rel)
}

/// Writes the visual grounding (thumbnails, grids) of each concept's `n` most-activating training
/// samples into `site`.
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
