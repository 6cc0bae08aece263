//! K-Means (k-means++ seeding, Lloyd iterations) as scikit-learn 1.5 runs it.

use std::time::Instant;

use cox_snmf::{Par, SamplesRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dictionary::inverse_distances;
use crate::error::check_data;
use crate::kernels::{assign, center, sq_distances};
use crate::{ConceptDictionary, Decomposed, Decomposition, Error, FitReport, Method, Result};

/// The reference's `kmeans` baseline, scikit-learn 1.5's `KMeans(n_clusters=K, max_iter=5000)`
/// (`docs/method.md` §3): concepts are the centroids, activations `1 / (1 + ‖x − c_k‖₂)` for training
/// and test samples alike.
///
/// The algorithm follows scikit-learn step by step:
/// * the data are centred on their column means first (scikit-learn does this for precision; the
///   centroids are shifted back at the end);
/// * seeding is scikit-learn's greedy k-means++: a uniformly drawn first centre, then for each next
///   centre `2 + ⌊ln K⌋` candidates drawn with probability proportional to the squared distance to
///   the closest chosen centre, keeping the candidate that lowers the potential most;
/// * Lloyd iterations in f32: assign each sample to the centre minimising `‖c‖² − 2⟨x, c⟩` (the first
///   on ties), then move each centre to its cluster's mean;
/// * stop when the labels repeat (strict convergence) or when `Σ_k ‖c_k^{new} − c_k^{old}‖² ≤ tol ·
///   mean_j Var(X_{:,j})`; if stopped by the tolerance or `max_iter`, the labels are recomputed for
///   the final centres;
/// * **empty clusters**: as scikit-learn, each empty cluster takes one of the samples farthest from
///   their current centre (which leaves its old cluster). scikit-learn takes them in `argpartition`
///   order, which is unspecified; here the farthest sample goes to the lowest-numbered empty cluster,
///   ties by sample index. If every sample sits on its centre, nothing is relocated and an empty
///   cluster's centre becomes the data mean (scikit-learn's zero in centred coordinates);
/// * with `n_init > 1` the run of lowest inertia is kept (the first on ties).
///
/// Random numbers come from ChaCha8 seeded by `seed`, not numpy's Mersenne Twister, so the seeding
/// is the same algorithm but not the same draws as scikit-learn. Pass `init_centres` to start from
/// given centres (scikit-learn's `init=array`, which also forces a single run).
///
/// ```
/// use cox_decomp::{Decomposition, KMeans};
/// use cox_snmf::{Par, SamplesRef};
/// let data = [0.0f32, 0.0, 0.1, 0.0, 10.0, 10.0, 10.1, 10.0];
/// let out = KMeans::new(2).fit(SamplesRef::new(&data, 4, 2).unwrap(), Par::Seq).unwrap();
/// let labels = out.report.labels.unwrap();
/// assert_eq!(labels[0], labels[1]);
/// assert_ne!(labels[0], labels[2]);
/// assert!((out.report.objective.unwrap() - 0.01).abs() < 1e-5); // 4 × 0.05²
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// Number of clusters K.
    pub k: usize,
    /// Maximum Lloyd iterations per run (the reference passes 5000).
    pub max_iter: usize,
    /// Relative tolerance on the squared centre shift (scikit-learn's default 1e-4).
    pub tol: f64,
    /// Seed of the k-means++ draws.
    pub seed: u64,
    /// Number of runs with different seedings; the lowest inertia is kept (scikit-learn's
    /// `n_init="auto"` is 1 with k-means++).
    pub n_init: usize,
    /// Initial centres (`K × B`, concept-major) instead of k-means++; forces a single run.
    pub init_centres: Option<Vec<f32>>,
}

impl KMeans {
    /// The reference's settings for K clusters: `max_iter = 5000`, `tol = 1e-4`, one run, seed 0.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            max_iter: 5000,
            tol: 1e-4,
            seed: 0,
            n_init: 1,
            init_centres: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |name, value: String, reason: &str| {
            Err(Error::InvalidParam {
                name,
                value,
                reason: reason.into(),
            })
        };
        if self.k == 0 {
            return Err(cox_snmf::Error::ZeroConcepts.into());
        }
        if self.max_iter == 0 {
            return bad("max_iter", "0".into(), "must be at least 1");
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return bad("tol", self.tol.to_string(), "must be finite and >= 0");
        }
        if self.n_init == 0 {
            return bad("n_init", "0".into(), "must be at least 1");
        }
        Ok(())
    }
}

/// One Lloyd run's outcome (centred coordinates).
struct Run {
    centres: Vec<f32>,
    labels: Vec<u32>,
    inertia: f64,
    trace: Vec<f64>,
    iterations: usize,
    converged: bool,
    relocated: usize,
}

/// scikit-learn's greedy k-means++ on the centred data `xc` (`m × b`).
fn kmeans_plusplus(xs: SamplesRef<'_, f32>, k: usize, rng: &mut ChaCha8Rng, par: Par) -> Vec<f32> {
    let (m, b, xc) = (xs.n_samples(), xs.n_features(), xs.as_slice());
    let row = |i: usize| &xc[i * b..(i + 1) * b];
    let to64 = |ids: &[usize]| -> Vec<f64> {
        ids.iter()
            .flat_map(|&i| row(i).iter().map(|&v| v as f64))
            .collect()
    };
    let n_trials = 2 + (k as f64).ln() as usize;
    let first = rng.random_range(0..m);
    let mut centres: Vec<f32> = row(first).to_vec();
    let mut closest: Vec<f64> = sq_distances(xs, &to64(&[first]), 1, par);
    let mut pot: f64 = closest.iter().sum();
    let mut cumsum = vec![0.0f64; m];
    for _ in 1..k {
        let mut acc = 0.0;
        for (c, &d) in cumsum.iter_mut().zip(&closest) {
            acc += d;
            *c = acc;
        }
        // numpy's searchsorted(side="left"): the first index whose cumulative sum is >= the draw.
        let cand: Vec<usize> = (0..n_trials)
            .map(|_| {
                let r = rng.random::<f64>() * pot;
                cumsum.partition_point(|&c| c < r).min(m - 1)
            })
            .collect();
        let d = sq_distances(xs, &to64(&cand), n_trials, par);
        let mut best = (0usize, f64::INFINITY);
        for t in 0..n_trials {
            let p: f64 = (0..m).map(|i| d[i * n_trials + t].min(closest[i])).sum();
            if p < best.1 {
                best = (t, p);
            }
        }
        let t = best.0;
        for (i, c) in closest.iter_mut().enumerate() {
            *c = c.min(d[i * n_trials + t]);
        }
        pot = best.1;
        centres.extend_from_slice(row(cand[t]));
    }
    centres
}

/// Exact `Σ_i ‖x_i − c_{label(i)}‖²` in f64.
fn inertia(xc: &[f32], b: usize, centres: &[f32], labels: &[u32]) -> f64 {
    xc.chunks_exact(b)
        .zip(labels)
        .map(|(x, &l)| {
            let c = &centres[l as usize * b..(l as usize + 1) * b];
            x.iter()
                .zip(c)
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum::<f64>()
        })
        .sum()
}

/// scikit-learn's `_kmeans_single_lloyd` on the centred data.
fn lloyd(
    xs: SamplesRef<'_, f32>,
    k: usize,
    init: Vec<f32>,
    max_iter: usize,
    tol: f64,
    par: Par,
) -> Run {
    let (m, b, xc) = (xs.n_samples(), xs.n_features(), xs.as_slice());
    let xn: Vec<f64> = xc
        .chunks_exact(b)
        .map(|r| r.iter().map(|&v| (v as f64).powi(2)).sum())
        .collect();
    let mut centres = init;
    let mut labels_old: Vec<u32> = vec![u32::MAX; m];
    let mut trace = Vec::new();
    let mut relocated = 0usize;
    let mut strict = false;
    let mut converged = false;
    let mut iterations = 0;
    let mut labels = Vec::new();
    let mut sums = vec![0.0f64; k * b];
    let mut weight = vec![0usize; k];
    for it in 0..max_iter {
        iterations = it + 1;
        let (lab, min) = assign(xc, m, b, &centres, k, par);
        labels = lab;
        trace.push(
            xn.iter()
                .zip(&min)
                .map(|(&n, &d)| (n + d as f64).max(0.0))
                .sum(),
        );
        // M-step: cluster sums in f64, in sample order.
        sums.iter_mut().for_each(|s| *s = 0.0);
        weight.iter_mut().for_each(|w| *w = 0);
        for (x, &l) in xc.chunks_exact(b).zip(&labels) {
            let l = l as usize;
            weight[l] += 1;
            sums[l * b..(l + 1) * b]
                .iter_mut()
                .zip(x)
                .for_each(|(s, &v)| *s += v as f64);
        }
        let empty: Vec<usize> = (0..k).filter(|&j| weight[j] == 0).collect();
        if !empty.is_empty() {
            // scikit-learn's _relocate_empty_clusters_dense, far samples in a fixed order.
            let dist: Vec<f64> = xc
                .chunks_exact(b)
                .zip(&labels)
                .map(|(x, &l)| {
                    let c = &centres[l as usize * b..(l as usize + 1) * b];
                    x.iter()
                        .zip(c)
                        .map(|(&a, &c)| (a as f64 - c as f64).powi(2))
                        .sum()
                })
                .collect();
            if dist.iter().any(|&d| d > 0.0) {
                let mut order: Vec<usize> = (0..m).collect();
                order.sort_by(|&a, &c| dist[c].total_cmp(&dist[a]));
                for (&new, &far) in empty.iter().zip(&order) {
                    let old = labels[far] as usize;
                    let x = &xc[far * b..(far + 1) * b];
                    for (f, &v) in x.iter().enumerate() {
                        sums[old * b + f] -= v as f64;
                        sums[new * b + f] = v as f64;
                    }
                    weight[new] = 1;
                    weight[old] -= 1;
                    relocated += 1;
                }
            }
        }
        let mut shift = 0.0f64;
        let mut new_centres = vec![0.0f32; k * b];
        for j in 0..k {
            let w = weight[j];
            for f in 0..b {
                let c = if w > 0 {
                    (sums[j * b + f] / w as f64) as f32
                } else {
                    0.0
                };
                new_centres[j * b + f] = c;
                shift += (c as f64 - centres[j * b + f] as f64).powi(2);
            }
        }
        centres = new_centres;
        if labels == labels_old {
            strict = true;
            converged = true;
            break;
        }
        if shift <= tol {
            converged = true;
            break;
        }
        std::mem::swap(&mut labels_old, &mut labels);
    }
    if !strict {
        labels = assign(xc, m, b, &centres, k, par).0;
    }
    let inertia = inertia(xc, b, &centres, &labels);
    Run {
        centres,
        labels,
        inertia,
        trace,
        iterations,
        converged,
        relocated,
    }
}

impl Decomposition for KMeans {
    fn method(&self) -> Method {
        Method::KMeans
    }

    fn k(&self) -> usize {
        self.k
    }

    fn fit(&self, x: SamplesRef<'_, f32>, par: Par) -> Result<Decomposed> {
        self.validate()?;
        check_data(x, self.k)?;
        let (m, b, k) = (x.n_samples(), x.n_features(), self.k);
        if let Some(c) = &self.init_centres {
            if c.len() != k * b {
                return Err(Error::InvalidParam {
                    name: "init_centres",
                    value: format!("{} values", c.len()),
                    reason: format!("must hold K × B = {k} × {b} values"),
                });
            }
            SamplesRef::new(c, k, b)?.check_finite()?;
        }
        let start = Instant::now();
        // scikit-learn's tolerance is tol · mean(var(X, axis=0)).
        let (mean, xc, ss) = center(x);
        let tol = self.tol * ss / (m as f64 * b as f64);
        let xs = SamplesRef::new(&xc, m, b)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut best: Option<Run> = None;
        let mut init_seconds = 0.0;
        let runs = if self.init_centres.is_some() {
            1
        } else {
            self.n_init
        };
        for _ in 0..runs {
            let t0 = Instant::now();
            let init = match &self.init_centres {
                Some(c) => c
                    .chunks_exact(b)
                    .flat_map(|r| r.iter().zip(&mean).map(|(&v, &mu)| (v as f64 - mu) as f32))
                    .collect(),
                None => kmeans_plusplus(xs, k, &mut rng, par),
            };
            init_seconds += t0.elapsed().as_secs_f64();
            let run = lloyd(xs, k, init, self.max_iter, tol, par);
            if best.as_ref().is_none_or(|r| run.inertia < r.inertia) {
                best = Some(run);
            }
        }
        let run = best.expect("n_init >= 1 is checked");
        let concepts: Vec<f32> = run
            .centres
            .chunks_exact(b)
            .flat_map(|c| c.iter().zip(&mean).map(|(&v, &mu)| (v as f64 + mu) as f32))
            .collect();
        let c64: Vec<f64> = concepts.iter().map(|&v| v as f64).collect();
        let activations = inverse_distances(x, &c64, k, par);
        let mut counts = vec![0usize; k];
        run.labels.iter().for_each(|&l| counts[l as usize] += 1);
        let dead_concepts = (0..k).filter(|&j| counts[j] == 0).collect();
        let fit_seconds = start.elapsed().as_secs_f64() - init_seconds;
        Ok(Decomposed {
            dictionary: ConceptDictionary {
                method: Method::KMeans,
                k,
                n_features: b,
                concepts,
                mean: None,
                alpha: None,
            },
            activations,
            report: FitReport {
                objective: Some(run.inertia),
                objective_trace: run.trace,
                iterations: run.iterations,
                converged: run.converged,
                init_seconds,
                fit_seconds,
                dead_concepts,
                resampled: run.relocated,
                labels: Some(run.labels),
                ..FitReport::default()
            },
        })
    }
}
