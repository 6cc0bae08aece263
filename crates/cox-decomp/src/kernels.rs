//! Blocked dense kernels: products of samples with concepts, distances and assignments.
//!
//! Every kernel splits the samples into blocks of a fixed number of rows at fixed offsets and runs a
//! sequential GEMM per block, so each output row is computed by the same operations whatever the
//! number of threads: results are bit-identical under `Par::Seq` and `Par::rayon(n)`.

use cox_snmf::SamplesRef;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Rows per block: a block of f64 samples stays near 1 MiB.
fn block_rows(n_features: usize) -> usize {
    ((1 << 20) / (8 * n_features.max(1))).clamp(16, 1024)
}

/// Runs `work(first_row, block_of_out)` over row blocks of an `m × width` sample-major output,
/// sequentially or with rayon.
fn for_blocks<O: Send>(
    out: &mut [O],
    width: usize,
    rows: usize,
    par: Par,
    work: impl Fn(usize, &mut [O]) + Sync,
) {
    let step = rows * width.max(1);
    match par {
        Par::Seq => out
            .chunks_mut(step)
            .enumerate()
            .for_each(|(i, o)| work(i * rows, o)),
        _ => out
            .par_chunks_mut(step)
            .enumerate()
            .for_each(|(i, o)| work(i * rows, o)),
    }
}

/// For every sample `x_i`, in f64: `y_i = x_i − shift`, the
/// products `p_ij = ⟨y_i, c_j⟩` with the `k` rows of `concepts` (`k × b`, f64), and
/// `finish(‖y_i‖², p_i, out_i)` writes the `k` outputs of row `i`.
///
/// The f64 upcast follows scikit-learn, which computes the distances of f32 data in f64 blocks.
pub(crate) fn project<O: Copy + Default + Send>(
    x: SamplesRef<'_, f32>,
    shift: Option<&[f64]>,
    concepts: &[f64],
    k: usize,
    par: Par,
    finish: impl Fn(f64, &[f64], &mut [O]) + Sync,
) -> Vec<O> {
    let (m, b) = (x.n_samples(), x.n_features());
    let x = x.as_slice();
    debug_assert_eq!(concepts.len(), k * b);
    let mut out = vec![O::default(); m * k];
    if m == 0 || k == 0 {
        return out;
    }
    let rows = block_rows(b);
    let ct = MatRef::from_row_major_slice(concepts, k, b).transpose();
    for_blocks(&mut out, k, rows, par, |r0, ob| {
        let mb = ob.len() / k;
        let mut y = vec![0.0f64; mb * b];
        let mut norms = vec![0.0f64; mb];
        for (i, (yr, n)) in y.chunks_exact_mut(b).zip(norms.iter_mut()).enumerate() {
            let xr = &x[(r0 + i) * b..(r0 + i + 1) * b];
            match shift {
                Some(s) => yr
                    .iter_mut()
                    .zip(xr.iter().zip(s))
                    .for_each(|(o, (&v, &mu))| *o = v as f64 - mu),
                None => yr.iter_mut().zip(xr).for_each(|(o, &v)| *o = v as f64),
            }
            *n = yr.iter().map(|v| v * v).sum();
        }
        let mut p = vec![0.0f64; mb * k];
        matmul(
            MatMut::from_row_major_slice_mut(&mut p, mb, k),
            Accum::Replace,
            MatRef::from_row_major_slice(&y, mb, b),
            ct,
            1.0,
            Par::Seq,
        );
        for ((orow, prow), &n) in ob.chunks_exact_mut(k).zip(p.chunks_exact(k)).zip(&norms) {
            finish(n, prow, orow);
        }
    });
    out
}

/// Squared norms of the rows of a `k × b` row-major matrix, in f64.
pub(crate) fn row_sq_norms(a: &[f64], b: usize) -> Vec<f64> {
    a.chunks_exact(b)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// Squared Euclidean distances `‖x_i − c_j‖² = ‖x_i‖² − 2⟨x_i, c_j⟩ + ‖c_j‖²`, clamped at zero,
/// `m × k` sample-major, computed in f64.
pub(crate) fn sq_distances(
    x: SamplesRef<'_, f32>,
    centres: &[f64],
    k: usize,
    par: Par,
) -> Vec<f64> {
    let cn = row_sq_norms(centres, x.n_features());
    project(x, None, centres, k, par, |xn, p, o: &mut [f64]| {
        for ((o, &pj), &cj) in o.iter_mut().zip(p).zip(&cn) {
            *o = (xn - 2.0 * pj + cj).max(0.0);
        }
    })
}

/// The E-step of Lloyd's algorithm as scikit-learn runs it (`_update_chunk_dense`), in f32: for each
/// sample, the centre minimising `‖c_j‖² − 2⟨x_i, c_j⟩` (the first on ties) and that minimum.
/// `x` is `m × b`, `centres` `k × b`, both sample-major f32.
pub(crate) fn assign(
    x: &[f32],
    m: usize,
    b: usize,
    centres: &[f32],
    k: usize,
    par: Par,
) -> (Vec<u32>, Vec<f32>) {
    let cn: Vec<f32> = centres
        .chunks_exact(b)
        .map(|c| c.iter().map(|v| v * v).sum())
        .collect();
    let ct = MatRef::from_row_major_slice(centres, k, b).transpose();
    let rows = (block_rows(b) * 2).max(16);
    let mut best = vec![(0u32, 0.0f32); m];
    for_blocks(&mut best, 1, rows, par, |r0, ob| {
        let mb = ob.len();
        let mut p = vec![0.0f32; mb * k];
        matmul(
            MatMut::from_row_major_slice_mut(&mut p, mb, k),
            Accum::Replace,
            MatRef::from_row_major_slice(&x[r0 * b..(r0 + mb) * b], mb, b),
            ct,
            1.0,
            Par::Seq,
        );
        for (o, prow) in ob.iter_mut().zip(p.chunks_exact(k)) {
            let mut label = 0usize;
            let mut min = cn[0] - 2.0 * prow[0];
            for j in 1..k {
                let d = cn[j] - 2.0 * prow[j];
                if d < min {
                    min = d;
                    label = j;
                }
            }
            *o = (label as u32, min);
        }
    });
    best.into_iter().unzip()
}

/// Centres the samples: the column means (f64, summed in sample order, so deterministic), the
/// centred samples (sample-major f32) and their total sum of squares (f64).
pub(crate) fn center(x: SamplesRef<'_, f32>) -> (Vec<f64>, Vec<f32>, f64) {
    let (m, b) = (x.n_samples(), x.n_features());
    let mut mean = vec![0.0f64; b];
    for i in 0..m {
        mean.iter_mut()
            .zip(x.sample(i))
            .for_each(|(s, &v)| *s += v as f64);
    }
    mean.iter_mut().for_each(|s| *s /= m as f64);
    let mut ss = 0.0f64;
    let xc: Vec<f32> = x
        .as_slice()
        .chunks_exact(b)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, &mu)| v as f64 - mu))
        .map(|v| {
            ss += v * v;
            v as f32
        })
        .collect();
    (mean, xc, ss)
}
