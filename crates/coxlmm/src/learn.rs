//! The learning step: an activation matrix → a concept dictionary (`docs/method.md` §3).

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cox_decomp::{DecompParams, FitReport, Method};
use cox_snmf::synthetic::{token_like, TokenLike};
use cox_snmf::{Par, SamplesRef};
use cox_store::{read_activations, Matrix};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::Error;

/// Where the activation matrix comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Activations {
    /// A safetensors file with a 2-D tensor (`None`: `activations`, or the file's only 2-D one).
    File {
        path: PathBuf,
        tensor: Option<String>,
    },
    /// One layer of an activation store (`None`: its only layer).
    Store { dir: PathBuf, layer: Option<String> },
    /// Generated token-like data of `m` samples × `b` features (`docs/method.md` §7).
    Synthetic { m: usize, b: usize },
}

/// A loaded matrix with what is known about its rows.
pub struct LoadedActivations {
    pub matrix: Matrix,
    /// A description of the source for the dictionary's sidecar.
    pub source: String,
    pub sample_ids: Option<Vec<String>>,
    pub provenance: Option<Value>,
}

impl Activations {
    /// Reads the matrix (`seed` generates synthetic data).
    pub fn load(&self, seed: u64) -> Result<LoadedActivations> {
        match self {
            Activations::Synthetic { m, b } => {
                if *m == 0 || *b == 0 {
                    bail!("synthetic activations {m}x{b}: M and B must be positive");
                }
                let data = token_like(&TokenLike::reference(*m, *b), seed);
                Ok(LoadedActivations {
                    matrix: Matrix::new(data, *m, *b).expect("generated shape"),
                    source: format!("synthetic:{m}x{b}"),
                    sample_ids: None,
                    provenance: Some(
                        json!({"synthetic": "token_like", "settings": "docs/method.md §7", "seed": seed}),
                    ),
                })
            }
            Activations::Store { dir, layer } => {
                if layer.is_none() {
                    if let Some(m) = cox_store::read_manifest(dir)? {
                        if m.spec.layers.len() > 1 {
                            return Err(Error::AmbiguousLayer {
                                store: dir.clone(),
                                layers: m.spec.layers.join(", "),
                            }
                            .into());
                        }
                    }
                }
                let run = cox_store::read_run(dir, layer.as_deref())?;
                if run.matrix.rows == 0 {
                    bail!(
                        "{}: the store holds no rows (no sample generated the token of interest)",
                        dir.display()
                    );
                }
                let prov = json!({"store": dir.display().to_string(), "layer": run.layer, "manifest": run.manifest});
                Ok(LoadedActivations {
                    source: format!("{} (layer {})", dir.display(), run.layer),
                    matrix: run.matrix,
                    sample_ids: Some(run.sample_ids),
                    provenance: Some(prov),
                })
            }
            Activations::File { path, tensor } => {
                let file = read_activations(path, tensor.as_deref())?;
                let ids = file.sidecar.as_ref().and_then(|s| {
                    s.get("sample_ids")?
                        .as_array()?
                        .iter()
                        .map(|v| v.as_str().map(String::from))
                        .collect::<Option<Vec<_>>>()
                });
                if let Some(ids) = &ids {
                    if ids.len() != file.matrix.rows {
                        bail!(
                            "{}: the sidecar lists {} sample ids but the tensor has {} rows",
                            path.display(),
                            ids.len(),
                            file.matrix.rows
                        );
                    }
                }
                Ok(LoadedActivations {
                    matrix: file.matrix,
                    source: path.display().to_string(),
                    sample_ids: ids,
                    provenance: file.sidecar,
                })
            }
        }
    }
}

/// A dictionary sidecar's record of its fit (`docs/formats.md`): the method and the settings it
/// was fitted with, the decomposition's own [`FitReport`] (objective and its trace, iterations,
/// timings, dead concepts, method-specific results) embedded as it is, and where the dictionary
/// came from. The fit is defined once, by the decomposition: the summary [`learn`] prints, the
/// evaluation's fit time (`metrics.json`) and the report all read it from this record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitRecord {
    pub method: Method,
    /// Semi-NMF's λ (the library's α); `None` for the other methods.
    pub lambda: Option<f64>,
    /// Seed of every random choice.
    pub seed: u64,
    /// How the fit went.
    #[serde(flatten)]
    pub report: FitReport,
    /// Share of exactly zero training activations.
    #[serde(default)]
    pub activation_zero_fraction: f64,
    /// The coxlmm version that learnt the dictionary.
    #[serde(default)]
    pub coxlmm_version: String,
    /// The extraction settings of the activation store it was learnt from (when it was one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Value>,
}

/// A dictionary file with its fit's typed record.
pub type Dictionary = cox_store::DictionaryFile<FitRecord>;

/// A dictionary sidecar with its fit's typed record.
pub type DictionaryMeta = cox_store::DictionaryMeta<FitRecord>;

/// How to learn.
#[derive(Clone, Debug)]
pub struct LearnParams {
    pub method: Method,
    pub k: usize,
    /// Semi-NMF's λ (ignored by the other methods).
    pub lambda: f64,
    pub seed: u64,
    /// Iteration limit (`None`: the method's default).
    pub max_iter: Option<usize>,
}

/// A learnt dictionary file (its sidecar holds the fit's record) and the fit's wall time.
pub struct Learnt {
    pub file: Dictionary,
    /// Wall time of the fit.
    pub wall_seconds: f64,
}

impl Learnt {
    /// How the fit went (the record the sidecar holds).
    pub fn report(&self) -> &FitReport {
        &self.file.meta.fit.report
    }
}

/// Fits `params` on `acts`, showing an iterative fit's progress: a bar on a terminal (hidden
/// when stderr is not one, so piped output and tests stay clean) and `tracing` events (info every
/// 10 s, debug every second). Progress is only observed, so the result is the one of
/// [`learn_observed`] with any observer.
pub fn learn(acts: &LoadedActivations, params: &LearnParams) -> Result<Learnt> {
    let mut progress = FitProgress::new(std::io::stderr().is_terminal());
    let out = learn_observed(acts, params, &mut |p| progress.observe(p));
    progress.finish();
    out
}

/// [`learn`] reporting each iteration of an iterative fit (Semi-NMF) to `observer` instead of
/// showing it. Methods that are not iterative in this sense (PCA, K-Means, Simple) report nothing.
pub fn learn_observed(
    acts: &LoadedActivations,
    params: &LearnParams,
    observer: &mut dyn FnMut(&cox_snmf::Progress),
) -> Result<Learnt> {
    let (m, b) = (acts.matrix.rows, acts.matrix.cols);
    let x = SamplesRef::new(&acts.matrix.data, m, b)?;
    let mut p = DecompParams::new(params.method, params.k);
    p.seed = params.seed;
    p.max_iter = params.max_iter;
    if params.method == Method::SemiNmf {
        p.alpha = Some(params.lambda);
    }
    // The settings are named as the user gave them: Semi-NMF's λ is the library's alpha.
    let decomposition = p.build().with_context(|| {
        let lambda = if params.method == Method::SemiNmf {
            format!(", λ = {}", params.lambda)
        } else {
            String::new()
        };
        format!(
            "invalid settings for {} (K = {}{lambda})",
            params.method, params.k
        )
    })?;
    tracing::info!(m, b, k = params.k, method = %params.method, "learning the dictionary");
    let t = std::time::Instant::now();
    let out = decomposition
        .fit_observed(x, Par::rayon(0), observer)
        .map_err(|e| name_sample(e, acts.sample_ids.as_deref()))?;
    let wall_seconds = t.elapsed().as_secs_f64();
    let r = out.report;
    let zeros = out.activations.iter().filter(|&&v| v == 0.0).count() as f64
        / out.activations.len().max(1) as f64;

    let dict = out.dictionary;
    let file = Dictionary {
        concepts: Matrix::new(dict.concepts, dict.k, dict.n_features).context("concept shape")?,
        activations: Matrix::new(out.activations, m, dict.k).context("activation shape")?,
        mean: dict.mean,
        meta: DictionaryMeta {
            format: "coxlmm-dictionary".into(),
            version: 1,
            k: dict.k,
            n_features: b,
            n_samples: m,
            source: Some(acts.source.clone()),
            sample_ids: acts.sample_ids.clone(),
            fit: FitRecord {
                method: params.method,
                lambda: dict.alpha,
                seed: params.seed,
                report: r,
                activation_zero_fraction: zeros,
                coxlmm_version: env!("CARGO_PKG_VERSION").to_string(),
                provenance: acts.provenance.clone(),
            },
        },
    };
    Ok(Learnt { file, wall_seconds })
}

/// Shows the progress of a fit: an indicatif bar (iteration of the limit, objective, relative
/// change, ETA) and `tracing` events, throttled so that a fast fit of thousands of iterations
/// does not flood the log.
struct FitProgress {
    /// Whether a bar is drawn at all (stderr is a terminal).
    draw: bool,
    /// The bar, made at the first iteration (the iteration limit is known then).
    bar: Option<ProgressBar>,
    /// The restart the bar shows.
    restart: usize,
    last_debug: Option<Instant>,
    last_info: Option<Instant>,
}

impl FitProgress {
    const DEBUG_EVERY: Duration = Duration::from_secs(1);
    const INFO_EVERY: Duration = Duration::from_secs(10);

    fn new(draw: bool) -> Self {
        Self {
            draw,
            bar: None,
            restart: 0,
            last_debug: None,
            last_info: None,
        }
    }

    fn observe(&mut self, p: &cox_snmf::Progress) {
        let change = p
            .relative_change
            .map_or_else(|| "-".to_string(), |c| format!("{c:.2e}"));
        let restart = if p.restarts > 1 {
            format!("restart {}/{}, ", p.restart + 1, p.restarts)
        } else {
            String::new()
        };
        let msg = format!(
            "{restart}objective {:.6e}, relative change {change}",
            p.objective
        );
        if self.draw {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = ProgressBar::new(p.max_iter as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} iterations, {msg}, ETA {eta}",
                    )
                    .expect("valid template"),
                );
                bar
            });
            if p.restart != self.restart {
                // A new restart counts its iterations from 1 again.
                self.restart = p.restart;
                bar.reset();
            }
            bar.set_message(msg.clone());
            bar.set_position(p.iteration as u64);
        }
        let now = Instant::now();
        let due = |last: Option<Instant>, every: Duration| {
            last.is_none_or(|t| now.duration_since(t) >= every) || p.iteration == p.max_iter
        };
        let level = if due(self.last_info, Self::INFO_EVERY) {
            self.last_info = Some(now);
            tracing::Level::INFO
        } else if due(self.last_debug, Self::DEBUG_EVERY) {
            self.last_debug = Some(now);
            tracing::Level::DEBUG
        } else {
            return;
        };
        let log = || {
            let (iteration, max_iter) = (p.iteration, p.max_iter);
            let elapsed_s = p.elapsed.as_secs_f64();
            if level == tracing::Level::INFO {
                tracing::info!(iteration, max_iter, elapsed_s, "fit: {msg}");
            } else {
                tracing::debug!(iteration, max_iter, elapsed_s, "fit: {msg}");
            }
        };
        // A log line is written with the bar lifted, so that the two do not overwrite each other.
        match &self.bar {
            Some(bar) => bar.suspend(log),
            None => log(),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Adds the sample's id (from the sidecar) to a non-finite-value error.
fn name_sample(e: cox_decomp::Error, ids: Option<&[String]>) -> anyhow::Error {
    if let cox_decomp::Error::Data(cox_snmf::Error::NonFinite { sample, .. }) = &e {
        if let Some(id) = ids.and_then(|ids| ids.get(*sample)) {
            return anyhow::anyhow!("{e} (sample id {id:?})");
        }
    }
    anyhow::Error::new(e)
}

/// Writes the dictionary as `name.safetensors` + `name.json` and returns the tensor file.
pub fn write(name: &Path, l: &Learnt) -> Result<PathBuf> {
    let path = cox_store::tensor_path(name);
    cox_store::write_dictionary(&path, &l.file)?;
    Ok(path)
}

impl fmt::Display for Learnt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (r, meta) = (self.report(), &self.file.meta);
        writeln!(
            f,
            "learnt {} concepts with {} from {} samples × {} features",
            meta.k, meta.fit.method, meta.n_samples, meta.n_features
        )?;
        if let Some(obj) = r.objective {
            writeln!(f, "  objective    {obj:.6}")?;
        }
        writeln!(
            f,
            "  iterations   {}{}",
            r.iterations,
            if r.converged {
                " (converged)"
            } else {
                " (iteration limit reached)"
            }
        )?;
        writeln!(
            f,
            "  time         {:.2} s (init {:.2} s, fit {:.2} s)",
            self.wall_seconds, r.init_seconds, r.fit_seconds
        )?;
        writeln!(
            f,
            "  sparsity     {:.1}% of activations are zero",
            100.0 * meta.fit.activation_zero_fraction
        )?;
        if r.dead_concepts.is_empty() {
            write!(f, "  dead         none")
        } else {
            write!(
                f,
                "  dead         {} concept(s): {:?}",
                r.dead_concepts.len(),
                r.dead_concepts
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> LearnParams {
        LearnParams {
            method: Method::SemiNmf,
            k: 4,
            lambda: 0.5,
            seed: 3,
            max_iter: Some(40),
        }
    }

    /// Learning with progress shown gives the bytes of a plain fit of the same settings: the
    /// observer only watches, and it sees every iteration's objective.
    #[test]
    fn progress_does_not_change_the_dictionary() {
        let acts = Activations::Synthetic { m: 120, b: 16 }.load(5).unwrap();
        let p = params();
        // The fit as `learn` made it before progress was shown.
        let mut dp = DecompParams::new(p.method, p.k);
        dp.seed = p.seed;
        dp.max_iter = p.max_iter;
        dp.alpha = Some(p.lambda);
        let x = SamplesRef::new(&acts.matrix.data, acts.matrix.rows, acts.matrix.cols).unwrap();
        let plain = dp.build().unwrap().fit(x, Par::rayon(0)).unwrap();

        let shown = learn(&acts, &p).unwrap();
        let mut seen = Vec::new();
        let observed = learn_observed(&acts, &p, &mut |s| seen.push(s.objective)).unwrap();
        // The bar's own code (drawn to a hidden target when stderr is not a terminal).
        let mut bar = FitProgress::new(true);
        let drawn = learn_observed(&acts, &p, &mut |s| bar.observe(s)).unwrap();
        bar.finish();

        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for l in [&shown, &observed, &drawn] {
            assert_eq!(
                bits(&l.file.concepts.data),
                bits(&plain.dictionary.concepts)
            );
            assert_eq!(bits(&l.file.activations.data), bits(&plain.activations));
            assert_eq!(l.report().objective_trace, plain.report.objective_trace);
            assert_eq!(l.report().iterations, plain.report.iterations);
        }
        assert!(!seen.is_empty());
        assert_eq!(seen, plain.report.objective_trace);
    }
}
