//! Dictionary stability across seeds: how well the atoms of two dictionaries of the same size pair up.
//!
//! For dictionaries `A` and `B` (`K × dim` each, atoms as rows) the similarity of atoms `a_i`, `b_j` is
//! their cosine `cos(a_i, b_j) = a_i·b_j / (‖a_i‖ ‖b_j‖)` (or its absolute value, see [`Similarity`]);
//! the atoms are paired one-to-one by the assignment `π` that maximises `Σ_i sim(a_i, b_π(i))` (the
//! Hungarian method, exact on f64), and the stability of the pair is the mean matched similarity
//! `(1/K) Σ_i sim(a_i, b_π(i))`: 1 when `B` is a permutation of `A`, near 0 for unrelated random
//! dictionaries in high dimension. Over several seeds, [`stability_across_seeds`] reports every pair's
//! value and their mean ± population std. This is the measure of the sparse-autoencoder literature
//! (maximum-weight matching of decoder atoms under cosine similarity).

use serde::{Deserialize, Serialize};

use crate::check;
use crate::error::Result;
use crate::summary::mean_std;

/// How two atoms are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Similarity {
    /// The signed cosine (the default). Semi-NMF concepts are sign-definite (activations are
    /// non-negative), so an atom and its negation are different concepts and score −1.
    #[default]
    Cosine,
    /// `|cos|`, for sign-ambiguous atoms such as PCA axes, where `u` and `−u` are the same axis.
    AbsCosine,
}

/// The optimal pairing of two dictionaries' atoms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Matching {
    /// `pairs[i] = j`: atom `i` of the first dictionary is matched with atom `j` of the second.
    pub pairs: Vec<usize>,
    /// `similarities[i]`: the similarity of atom `i` and atom `pairs[i]`.
    pub similarities: Vec<f64>,
    /// The stability of the pair: the mean of `similarities`.
    pub mean: f64,
}

/// One pair of seeds in [`StabilityReport`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairStability {
    /// Index of the first dictionary.
    pub a: usize,
    /// Index of the second dictionary.
    pub b: usize,
    /// The pair's matching.
    pub matching: Matching,
}

/// The result of [`stability_across_seeds`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StabilityReport {
    /// Every unordered pair `a < b`, in lexicographic order.
    pub pairs: Vec<PairStability>,
    /// Mean of the pairs' `matching.mean`.
    pub mean: f64,
    /// Population std of the pairs' `matching.mean`.
    pub std: f64,
}

/// The assignment `row → column` of an `n × n` row-major weight matrix that maximises the total weight
/// (what `scipy.optimize.linear_sum_assignment(w, maximize=True)` returns as `col_ind`).
///
/// The Hungarian method with potentials, `O(n³)`, on f64 without scaling or rounding; among optimal
/// assignments of equal total the one returned is deterministic but unspecified.
///
/// # Panics
/// If `weights.len() != n * n` or a weight is NaN or infinite.
///
/// ```
/// use cox_metrics::max_weight_assignment;
/// // Greedy would take 9 first (row 0 → column 0) and end with 9 + 1 = 10; the optimum is 8 + 7 = 15.
/// assert_eq!(max_weight_assignment(&[9.0, 8.0, 7.0, 1.0], 2), [1, 0]);
/// ```
#[track_caller]
pub fn max_weight_assignment(weights: &[f64], n: usize) -> Vec<usize> {
    assert_eq!(
        weights.len(),
        n * n,
        "max_weight_assignment: {} weights for a {n} × {n} matrix",
        weights.len()
    );
    assert!(
        weights.iter().all(|w| w.is_finite()),
        "max_weight_assignment: non-finite weight"
    );
    // Minimise the negated weights. Rows and columns are 1-based below; column 0 is a sentinel whose
    // "row" is the row being inserted. u, v are the dual potentials; p[j] is the row matched to column j.
    let cost = |i: usize, j: usize| -weights[(i - 1) * n + (j - 1)];
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; n + 1];
    let mut p = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        // Grow a tree of tight edges from row i until it reaches a free column; each pass marks one more
        // column as used, so the loop ends after at most n passes whatever the rounding.
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0, j) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        // Flip the augmenting path back to the root.
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![0; n];
    for j in 1..=n {
        assignment[p[j] - 1] = j - 1;
    }
    assignment
}

/// The atoms of a `k × dim` dictionary, L2-normalised in f64 (an all-zero atom stays zero).
fn unit_rows(d: &[f32], k: usize, dim: usize) -> Vec<f64> {
    let mut out: Vec<f64> = d.iter().map(|&x| x as f64).collect();
    for r in 0..k {
        let row = &mut out[r * dim..(r + 1) * dim];
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    out
}

/// Checks one `k × dim` dictionary.
fn check_dictionary(op: &'static str, name: &str, d: &[f32], k: usize, dim: usize) -> Result<()> {
    check::shape(op, name, d, k, dim)?;
    check::finite(op, name, d, dim)
}

/// The matching of two checked dictionaries.
fn match_checked(a: &[f32], b: &[f32], k: usize, dim: usize, sim: Similarity) -> Matching {
    let (ua, ub) = (unit_rows(a, k, dim), unit_rows(b, k, dim));
    let mut w = vec![0.0; k * k];
    for i in 0..k {
        let ai = &ua[i * dim..(i + 1) * dim];
        for j in 0..k {
            let bj = &ub[j * dim..(j + 1) * dim];
            let c: f64 = ai.iter().zip(bj).map(|(x, y)| x * y).sum();
            w[i * k + j] = match sim {
                Similarity::Cosine => c,
                Similarity::AbsCosine => c.abs(),
            };
        }
    }
    let pairs = max_weight_assignment(&w, k);
    let similarities: Vec<f64> = pairs
        .iter()
        .enumerate()
        .map(|(i, &j)| w[i * k + j])
        .collect();
    let mean = similarities.iter().sum::<f64>() / k as f64;
    Matching {
        pairs,
        similarities,
        mean,
    }
}

/// The optimal one-to-one matching of the atoms of two `k × dim` row-major dictionaries and its mean
/// similarity. An all-zero atom has similarity 0 with everything (its cosine is undefined).
///
/// # Errors
/// [`MetricsError::NoConcepts`](crate::MetricsError::NoConcepts) if `k == 0`,
/// [`TooFew`](crate::MetricsError::TooFew) if `dim == 0`,
/// [`InputShape`](crate::MetricsError::InputShape) if a slice is not `k × dim`,
/// [`NonFiniteInput`](crate::MetricsError::NonFiniteInput) naming the dictionary (`dictionary 0` or
/// `dictionary 1`), atom and feature of a NaN or infinity.
///
/// ```
/// use cox_metrics::{match_dictionaries, Similarity};
/// let a = [1.0, 0.0, 0.0, 1.0];  // atoms e0, e1
/// let b = [-1.0, 0.0, 1.0, 1.0]; // atoms −e0, e0 + e1
/// let r = 0.5f64.sqrt();
/// // Signed: −e0 is the opposite concept, so e0 pairs with e0 + e1 (cos √½) and e1 with −e0 (cos 0).
/// let m = match_dictionaries(&a, &b, 2, 2, Similarity::Cosine)?;
/// assert_eq!((m.pairs, m.similarities[1]), (vec![1, 0], 0.0));
/// assert!((m.similarities[0] - r).abs() < 1e-15 && (m.mean - r / 2.0).abs() < 1e-15);
/// // Unsigned: −e0 is the same axis as e0 (|cos| 1), and e1 takes e0 + e1.
/// let m = match_dictionaries(&a, &b, 2, 2, Similarity::AbsCosine)?;
/// assert_eq!((m.pairs, m.similarities[0]), (vec![0, 1], 1.0));
/// assert!((m.mean - (1.0 + r) / 2.0).abs() < 1e-15);
/// # Ok::<(), cox_metrics::MetricsError>(())
/// ```
pub fn match_dictionaries(
    a: &[f32],
    b: &[f32],
    k: usize,
    dim: usize,
    sim: Similarity,
) -> Result<Matching> {
    const OP: &str = "match_dictionaries";
    check_k_dim(OP, k, dim)?;
    check_dictionary(OP, "dictionary 0", a, k, dim)?;
    check_dictionary(OP, "dictionary 1", b, k, dim)?;
    Ok(match_checked(a, b, k, dim, sim))
}

fn check_k_dim(op: &'static str, k: usize, dim: usize) -> Result<()> {
    if k == 0 {
        return Err(crate::MetricsError::NoConcepts { op });
    }
    check::at_least(op, "features", 1, dim)
}

/// Stability over several seeds: [`match_dictionaries`] for every pair `a < b` of `dictionaries` (each
/// `k × dim`, e.g. one fit per seed), and the mean ± population std of the pairs' mean similarities.
///
/// # Errors
/// As [`match_dictionaries`] (the error names `dictionary N`, the index in `dictionaries`), and
/// [`TooFew`](crate::MetricsError::TooFew) with fewer than two dictionaries.
///
/// ```
/// use cox_metrics::{stability_across_seeds, Similarity};
/// let seed0 = [1.0, 0.0, 0.0, 1.0];
/// let seed1 = [0.0, 1.0, 1.0, 0.0]; // the same atoms, swapped
/// let seed2 = [1.0, 0.0, 1.0, 1.0]; // atom 1 turned by 45°
/// let r = stability_across_seeds(&[&seed0[..], &seed1, &seed2], 2, 2, Similarity::Cosine)?;
/// assert_eq!(r.pairs.len(), 3);
/// assert_eq!(r.pairs[0].matching.mean, 1.0);
/// let half = (1.0 + 0.5f64.sqrt()) / 2.0;
/// assert!((r.pairs[1].matching.mean - half).abs() < 1e-15);
/// assert!((r.mean - (1.0 + 2.0 * half) / 3.0).abs() < 1e-15);
/// # Ok::<(), cox_metrics::MetricsError>(())
/// ```
pub fn stability_across_seeds(
    dictionaries: &[&[f32]],
    k: usize,
    dim: usize,
    sim: Similarity,
) -> Result<StabilityReport> {
    const OP: &str = "stability_across_seeds";
    check::at_least(OP, "dictionaries", 2, dictionaries.len())?;
    check_k_dim(OP, k, dim)?;
    for (s, d) in dictionaries.iter().enumerate() {
        check_dictionary(OP, &format!("dictionary {s}"), d, k, dim)?;
    }
    let mut pairs = Vec::new();
    for a in 0..dictionaries.len() {
        for b in a + 1..dictionaries.len() {
            let matching = match_checked(dictionaries[a], dictionaries[b], k, dim, sim);
            pairs.push(PairStability { a, b, matching });
        }
    }
    let means: Vec<f64> = pairs.iter().map(|p| p.matching.mean).collect();
    let (mean, std) = mean_std(&means);
    Ok(StabilityReport { pairs, mean, std })
}
