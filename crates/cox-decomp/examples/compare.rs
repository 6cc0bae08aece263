//! Fits the four methods of the paper (Simple, PCA, K-Means, Semi-NMF) on synthetic token-like data
//! and prints a small comparison table.
//!
//! ```text
//! cargo run --release -p cox-decomp --example compare -- [M] [B] [K]
//! ```

use std::time::Instant;

use cox_decomp::{DecompParams, Method};
use cox_snmf::synthetic::{token_like, TokenLike};
use cox_snmf::{Par, SamplesRef};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let (m, b, k) = (
        *args.first().unwrap_or(&2000),
        *args.get(1).unwrap_or(&256),
        *args.get(2).unwrap_or(&20),
    );
    let data = token_like(&TokenLike::reference(m, b), 0);
    let x = SamplesRef::new(&data, m, b)?;
    let test = token_like(&TokenLike::reference(500, b), 1);
    let xt = SamplesRef::new(&test, 500, b)?;
    println!("token_like data: M = {m}, B = {b}, K = {k}");
    println!(
        "{:<8} {:>9} {:>6} {:>9} {:>14} {:>12} {:>10} {:>9}",
        "method",
        "fit (s)",
        "iters",
        "converged",
        "objective",
        "mean act.",
        "zeros (%)",
        "encode (s)"
    );
    for method in Method::ALL {
        let mut p = DecompParams::new(method, k);
        p.seed = 0;
        let t0 = Instant::now();
        let out = p.build()?.fit(x, Par::rayon(0))?;
        let fit_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let enc = out.dictionary.encode(xt, Par::rayon(0))?;
        let enc_s = t1.elapsed().as_secs_f64();
        let mean =
            out.activations.iter().map(|&v| v as f64).sum::<f64>() / out.activations.len() as f64;
        let zeros = out.activations.iter().filter(|&&v| v == 0.0).count() as f64
            / out.activations.len() as f64;
        let r = &out.report;
        println!(
            "{:<8} {:>9.3} {:>6} {:>9} {:>14} {:>12.4} {:>10.1} {:>9.3}",
            method.to_string(),
            fit_s,
            r.iterations,
            r.converged,
            r.objective.map_or("-".into(), |o| format!("{o:.2}")),
            mean,
            100.0 * zeros,
            enc_s
        );
        if let Some(ratio) = &r.explained_variance_ratio {
            let total: f64 = ratio.iter().sum();
            println!(
                "         PCA explains {:.1} % of the variance",
                100.0 * total
            );
        }
        assert_eq!(enc.len(), 500 * k);
    }
    Ok(())
}
