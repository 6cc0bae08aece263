//! Synthetic data that imitates token-of-interest representations, for benchmarks and tests
//! (`docs/method.md` §7). Pure computation, seeded.

use rand::seq::index::sample as sample_indices;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Normal, Poisson, StandardNormal};

/// Settings of [`token_like`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLike {
    /// Number of samples M.
    pub n_samples: usize,
    /// Number of features B.
    pub n_features: usize,
    /// Number of non-shared atoms (49 in the reference benchmark).
    pub n_atoms: usize,
    /// Mean of the Poisson number of extra atoms per row, on top of one (3).
    pub extra_atoms_mean: f64,
    /// Mean of the exponential coefficient of each extra atom (3).
    pub coef_mean: f64,
    /// Mean and std of the shared atom's coefficient (8, 1).
    pub shared_coef: (f64, f64),
    /// Standard deviation of the Gaussian noise (0.05).
    pub noise: f64,
}

impl TokenLike {
    /// The reference benchmark's settings at the given size.
    pub fn reference(n_samples: usize, n_features: usize) -> Self {
        Self {
            n_samples,
            n_features,
            n_atoms: 49,
            extra_atoms_mean: 3.0,
            coef_mean: 3.0,
            shared_coef: (8.0, 1.0),
            noise: 0.05,
        }
    }
}

/// Generates `n_samples × n_features` sample-major data: one shared unit atom in every row with a
/// `N(8, 1)` coefficient, `1 + Poisson(3)` distinct other unit atoms per row with `Exp(mean 3)`
/// coefficients, plus Gaussian noise. Deterministic from `seed`.
///
/// ```
/// use cox_snmf::synthetic::{token_like, TokenLike};
/// let x = token_like(&TokenLike::reference(10, 8), 0);
/// assert_eq!(x.len(), 80);
/// assert_eq!(x, token_like(&TokenLike::reference(10, 8), 0));
/// ```
pub fn token_like(s: &TokenLike, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let b = s.n_features;
    let mut atoms = vec![0.0f64; (s.n_atoms + 1) * b];
    for a in atoms.chunks_exact_mut(b) {
        for v in a.iter_mut() {
            *v = StandardNormal.sample(&mut rng);
        }
        let n = a.iter().map(|v| v * v).sum::<f64>().sqrt();
        a.iter_mut().for_each(|v| *v /= n);
    }
    let shared = Normal::new(s.shared_coef.0, s.shared_coef.1).expect("finite std");
    let poisson = Poisson::new(s.extra_atoms_mean.max(1e-9)).expect("positive mean");
    let exp = Exp::new(1.0 / s.coef_mean).expect("positive mean");
    let noise = Normal::new(0.0, s.noise).expect("finite std");
    let mut x = vec![0.0f32; s.n_samples * b];
    let mut row = vec![0.0f64; b];
    for out in x.chunks_exact_mut(b) {
        let w0 = shared.sample(&mut rng);
        for (r, a) in row.iter_mut().zip(&atoms[..b]) {
            *r = w0 * a;
        }
        let n_extra = (1 + poisson.sample(&mut rng) as usize).min(s.n_atoms);
        for j in sample_indices(&mut rng, s.n_atoms, n_extra) {
            let w = exp.sample(&mut rng);
            let a = &atoms[(1 + j) * b..(2 + j) * b];
            row.iter_mut().zip(a).for_each(|(r, v)| *r += w * v);
        }
        for (o, r) in out.iter_mut().zip(&row) {
            *o = (*r + noise.sample(&mut rng)) as f32;
        }
    }
    x
}
