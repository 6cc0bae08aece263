//! Optimality checks: how far a `(codes, dictionary)` pair is from the first-order (KKT) conditions.

use crate::kernels::{add_gram_rows, dot_f64};
use crate::{Dictionary, Error, Real, Result, SamplesRef};

/// Largest violations of the KKT conditions of
/// `min ½‖X − C D‖² + α‖C‖₁, C ≥ 0, ‖d_k‖ ≤ 1`, relative to the scale of the problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KktReport {
    /// Codes: `max |(C G − B)_ik + α|` over `C_ik > 0` and `max(−((C G − B)_ik + α), 0)` over
    /// `C_ik = 0`, where `G = D Dᵀ`, `B = X Dᵀ`; divided by `max(α, max |B|)`.
    pub codes: f64,
    /// `max_k (‖d_k‖ − 1)⁺`.
    pub norm_excess: f64,
    /// Atoms: the gradient `g_k` of the smooth part w.r.t. `d_k` must vanish inside the ball and point
    /// along `−d_k` on its surface: `‖g_k‖` for `‖d_k‖ < 1 − 1e-6`, else the part of `g_k` orthogonal
    /// to `d_k` plus `max(g_k·d_k, 0)`; divided by `max_k ‖(XᵀC)_k‖`.
    pub atoms: f64,
}

/// Computes the [`KktReport`] of codes (`M × K`, sample-major) and a dictionary for the data `x`.
pub fn kkt_report<T: Real>(
    x: SamplesRef<'_, T>,
    dict: &Dictionary<T>,
    codes: &[T],
    alpha: f64,
) -> Result<KktReport> {
    T::dispatch_kkt(x, dict, codes, alpha)
}

pub(crate) fn kkt_report_generic<T: Real>(
    x: SamplesRef<'_, T>,
    dict: &Dictionary<T>,
    codes: &[T],
    alpha: f64,
) -> Result<KktReport> {
    let (m, b, k) = (x.n_samples(), x.n_features(), dict.k());
    if b != dict.n_features() {
        return Err(Error::FeatureMismatch {
            dict: dict.n_features(),
            data: b,
        });
    }
    if codes.len() != m * k {
        return Err(Error::ShapeMismatch {
            len: codes.len(),
            n_samples: m,
            n_features: k,
            expected: m * k,
        });
    }
    let g = dict.gram();
    let mut code_viol: f64 = 0.0;
    let mut bmax: f64 = 0.0;
    for i in 0..m {
        let xi = x.sample(i);
        let ci = &codes[i * k..(i + 1) * k];
        for c in 0..k {
            let bic = dot_f64(xi, dict.atom(c));
            bmax = bmax.max(bic.abs());
            let cg: f64 = (0..k).map(|l| ci[l].to_f64() * g[l * k + c]).sum();
            let grad = cg - bic + alpha;
            let v = if ci[c].to_f64() > 0.0 {
                grad.abs()
            } else {
                (-grad).max(0.0)
            };
            code_viol = code_viol.max(v);
        }
    }
    // Atom gradient: g_k = Σ_l A_kl d_l − (XᵀC)_k with A = CᵀC.
    let mut a = vec![0.0; k * k];
    add_gram_rows(codes, k, &mut a);
    let mut xtc = vec![0.0f64; k * b];
    for i in 0..m {
        let xi = x.sample(i);
        for c in 0..k {
            let w = codes[i * k + c].to_f64();
            if w != 0.0 {
                for (o, &v) in xtc[c * b..(c + 1) * b].iter_mut().zip(xi) {
                    *o += w * v.to_f64();
                }
            }
        }
    }
    let norms = dict.norms();
    let mut atom_viol: f64 = 0.0;
    let mut scale: f64 = 0.0;
    for c in 0..k {
        let mut grad: Vec<f64> = xtc[c * b..(c + 1) * b].iter().map(|v| -v).collect();
        scale = scale.max(grad.iter().map(|v| v * v).sum::<f64>().sqrt());
        for l in 0..k {
            for (gj, &dj) in grad.iter_mut().zip(dict.atom(l)) {
                *gj += a[c * k + l] * dj.to_f64();
            }
        }
        let v = if norms[c] < 1.0 - 1e-6 {
            grad.iter().map(|v| v * v).sum::<f64>().sqrt()
        } else {
            let d: Vec<f64> = dict.atom(c).iter().map(|v| v.to_f64() / norms[c]).collect();
            let along: f64 = grad.iter().zip(&d).map(|(a, b)| a * b).sum();
            let ortho: f64 = grad
                .iter()
                .zip(&d)
                .map(|(gj, dj)| (gj - along * dj).powi(2))
                .sum::<f64>()
                .sqrt();
            ortho + along.max(0.0)
        };
        atom_viol = atom_viol.max(v);
    }
    Ok(KktReport {
        codes: code_viol / alpha.max(bmax).max(f64::MIN_POSITIVE),
        norm_excess: norms.iter().map(|n| (n - 1.0).max(0.0)).fold(0.0, f64::max),
        atoms: atom_viol / scale.max(f64::MIN_POSITIVE),
    })
}
