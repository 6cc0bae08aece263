//! Every metric of the crate on a small planted problem: two seeds of a 3-concept dictionary in 6
//! dimensions (the second a noisy, permuted copy of the first), sparse codes, the data they make, and
//! grounded words.
//!
//! ```text
//! cargo run -p cox-metrics --example metrics
//! ```

use cox_metrics::{
    overlap, reconstruction, sparsity, stability_across_seeds, Reconstruct, Similarity,
};

fn main() -> Result<(), cox_metrics::MetricsError> {
    let (k, b) = (3, 6);
    #[rustfmt::skip]
    let seed0: [f32; 18] = [
        1.0, 0.0, 0.0, 0.5, 0.0, 0.0,
        0.0, 1.0, 0.0, 0.0, 0.5, 0.0,
        0.0, 0.0, 1.0, 0.0, 0.0, 0.5,
    ];
    // Seed 1 found the same concepts in another order, slightly perturbed.
    #[rustfmt::skip]
    let seed1: [f32; 18] = [
        0.0, 0.0, 1.0, 0.1, 0.0, 0.5,
        1.0, 0.1, 0.0, 0.5, 0.0, 0.0,
        0.0, 1.0, 0.0, 0.0, 0.4, 0.1,
    ];
    let stab = stability_across_seeds(&[&seed0, &seed1], k, b, Similarity::Cosine)?;
    println!(
        "stability: matching {:?}, mean cosine {:.3}",
        stab.pairs[0].matching.pairs, stab.mean
    );

    // Four samples, each made of one or two concepts (codes ≥ 0), plus a little noise.
    let codes = [2.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 3.0, 0.5, 0.0, 0.0];
    let mut x = vec![0.0f32; 4 * b];
    for i in 0..4 {
        for c in 0..k {
            for f in 0..b {
                x[i * b + f] += codes[i * k + c] * seed0[c * b + f];
            }
        }
        x[i * b + (i % b)] += 0.05;
    }
    let sp = sparsity(&codes, 4, k, 0.0)?;
    println!(
        "sparsity: L0 {:?} (mean {:.2}), mean Hoyer {:.3}, dead {:?}",
        sp.l0,
        sp.mean_l0,
        sp.mean_hoyer.unwrap_or(f64::NAN),
        sp.dead
    );
    let rec = reconstruction(
        &x,
        4,
        b,
        &seed0,
        k,
        Reconstruct::Linear {
            codes: &codes,
            mean: None,
        },
    )?;
    println!(
        "reconstruction: relative error {:.4}, explained variance {:.4}",
        rec.relative_error.unwrap_or(f64::NAN),
        rec.explained_variance.unwrap_or(f64::NAN)
    );

    let words = [
        vec!["dog", "puppy", "pet"],
        vec!["grass", "park", "dog"],
        vec!["frisbee", "ball", "toy"],
    ];
    let ov = overlap(&words)?;
    println!("overlap: {:.3}", ov.overlap);
    Ok(())
}
