//! Helpers shared by the cox-snmf integration tests.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};

/// `½‖X − C D‖² + α Σ C`, computed directly (forming the residual) in f64: an independent check of
/// the solver's expanded formula.
pub fn objective_direct(
    x: &[f64],
    m: usize,
    b: usize,
    d: &[f64],
    codes: &[f64],
    k: usize,
    alpha: f64,
) -> f64 {
    let mut r = 0.0;
    for i in 0..m {
        for j in 0..b {
            let mut v = x[i * b + j];
            for c in 0..k {
                v -= codes[i * k + c] * d[c * b + j];
            }
            r += v * v;
        }
    }
    0.5 * r + alpha * codes.iter().sum::<f64>()
}

/// Planted data: `k` random unit atoms, sparse non-negative codes (each row uses 1–2 atoms, every atom
/// used alone by some rows), Gaussian noise. Returns (x, atoms).
pub fn planted(m: usize, b: usize, k: usize, noise: f64, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut atoms = vec![0.0; k * b];
    for c in 0..k {
        let a = &mut atoms[c * b..(c + 1) * b];
        for v in a.iter_mut() {
            *v = StandardNormal.sample(&mut rng);
        }
        let n = a.iter().map(|v| v * v).sum::<f64>().sqrt();
        a.iter_mut().for_each(|v| *v /= n);
    }
    let exp = Exp::new(0.25).unwrap();
    let mut x = vec![0.0; m * b];
    for i in 0..m {
        let first = i % k;
        let mut used = vec![first];
        if rng.random_bool(0.3) {
            let second = rng.random_range(0..k);
            if second != first {
                used.push(second);
            }
        }
        for &c in &used {
            let w = 2.0 + exp.sample(&mut rng);
            for j in 0..b {
                x[i * b + j] += w * atoms[c * b + j];
            }
        }
        for j in 0..b {
            let e: f64 = StandardNormal.sample(&mut rng);
            x[i * b + j] += noise * e;
        }
    }
    (x, atoms)
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|v| v * v).sum::<f64>().sqrt();
    let nb = b.iter().map(|v| v * v).sum::<f64>().sqrt();
    d / (na * nb).max(f64::MIN_POSITIVE)
}

/// The best one-to-one matching of `k` truth atoms to `k` learnt atoms by cosine (exhaustive over
/// permutations; k ≤ 7). Returns the smallest cosine of the matched pairs.
pub fn matched_min_cosine(truth: &[f64], learnt: &[f64], k: usize, b: usize) -> f64 {
    let cos: Vec<f64> = (0..k * k)
        .map(|p| {
            cosine(
                &truth[(p / k) * b..(p / k + 1) * b],
                &learnt[(p % k) * b..(p % k + 1) * b],
            )
        })
        .collect();
    let mut perm: Vec<usize> = (0..k).collect();
    let mut best = f64::NEG_INFINITY;
    permute(&mut perm, 0, &mut |p| {
        let m = (0..k)
            .map(|i| cos[i * k + p[i]])
            .fold(f64::INFINITY, f64::min);
        best = best.max(m);
    });
    best
}

fn permute(p: &mut Vec<usize>, i: usize, f: &mut dyn FnMut(&[usize])) {
    if i == p.len() {
        f(p);
        return;
    }
    for j in i..p.len() {
        p.swap(i, j);
        permute(p, i + 1, f);
        p.swap(i, j);
    }
}
