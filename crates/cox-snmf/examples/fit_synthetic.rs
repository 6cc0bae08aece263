//! Fit a 20-concept dictionary to token-like synthetic data and project new samples.
//!
//! `cargo run --release -p cox-snmf --example fit_synthetic`

use cox_snmf::synthetic::{token_like, TokenLike};
use cox_snmf::{EncodeParams, Par, SamplesRef, SemiNmf};

fn main() -> Result<(), cox_snmf::Error> {
    let (m, b) = (2000, 512);
    let train = token_like(&TokenLike::reference(m, b), 0);
    let x = SamplesRef::new(&train, m, b)?;
    let fit = SemiNmf::params()
        .k(20)
        .alpha(1.0)
        .seed(0)
        .check()?
        .fit(x, Par::rayon(0))?;
    println!(
        "objective {:.1} after {} iterations (converged: {}), {:.1}% zero activations, init {:?}, iterations {:?}",
        fit.objective,
        fit.iterations,
        fit.converged,
        100.0 * fit.sparsity(),
        fit.timings.init,
        fit.timings.iterate
    );
    // Local interpretation of the first training sample: its concepts ranked by activation.
    let codes = fit.dictionary.encode(
        SamplesRef::new(&train[..b], 1, b)?,
        &EncodeParams::with_alpha(1.0),
        Par::Seq,
    )?;
    let mut ranked: Vec<(usize, f32)> = codes.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("sample 0, top concepts: {:?}", &ranked[..5]);
    Ok(())
}
