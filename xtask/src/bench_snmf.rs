//! `cargo xtask bench-snmf`: our solver and scikit-learn (the reference's arguments) on the same
//! synthetic token-like matrices, in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cox_snmf::synthetic::{token_like, TokenLike};
use cox_snmf::{Par, SamplesRef, SemiNmf};

#[derive(clap::Args)]
pub struct Args {
    /// Problem sizes as MxB (default: the reference benchmark's 3000x1024 and 5000x4096).
    #[arg(long, value_delimiter = ',', default_values_t = ["3000x1024".to_string(), "5000x4096".to_string()])]
    sizes: Vec<String>,
    /// Number of concepts.
    #[arg(long, default_value_t = 20)]
    k: usize,
    /// Most code sweeps per sample and outer iteration (the solver's default is 100).
    #[arg(long, default_value_t = 100)]
    sweeps: usize,
    /// Threads for both solvers (0: all cores; ours through rayon, scikit-learn's BLAS/OpenMP through
    /// OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS). 1 makes the ratio robust to other
    /// load on the machine.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Do not run scikit-learn (ours only).
    #[arg(long)]
    skip_sklearn: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench-snmf/results.json")]
    out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let root = crate::workspace_root();
    let work = root.join("target/bench-snmf");
    std::fs::create_dir_all(&work)?;
    let python = if a.skip_sklearn {
        None
    } else {
        match crate::python_env(&root, &["scikit-learn==1.5.2", "numpy<2.1"]) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("scikit-learn unavailable ({e:#}); running ours only");
                None
            }
        }
    };
    let par = match a.threads {
        1 => Par::Seq,
        n => Par::rayon(n),
    };
    let mut results = Vec::new();
    println!(
        "| size | solver | wall (s) | iterations | per iter (ms) | 2 GEMMs (ms) | per iter / GEMMs | objective | zeros |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for size in &a.sizes {
        let (m, b) = parse_size(size)?;
        let x = token_like(&TokenLike::reference(m, b), 0);
        let xs = SamplesRef::new(&x, m, b)?;
        let gemm_ms = two_gemms_ms(&x, m, b, a.k, par);
        let params = SemiNmf::params()
            .k(a.k)
            .alpha(1.0)
            .code_sweeps(a.sweeps)
            .check()?;
        let t = Instant::now();
        let fit = params.fit(xs, par)?;
        let wall = t.elapsed().as_secs_f64();
        let per_iter = fit.timings.iterate.as_secs_f64() * 1e3 / (fit.iterations + 1) as f64;
        println!(
            "| {m}x{b} | coxlmm (init {:.2} s) | {wall:.2} | {} | {per_iter:.1} | {gemm_ms:.1} | {:.2} | {:.1} | {:.1}% |",
            fit.timings.init.as_secs_f64(),
            fit.iterations,
            per_iter / gemm_ms,
            fit.objective,
            100.0 * fit.sparsity()
        );
        let mut row = serde_json::json!({
            "m": m, "b": b, "k": a.k, "sweeps": a.sweeps, "threads": a.threads,
            "ours": {"wall_s": wall, "init_s": fit.timings.init.as_secs_f64(), "iterations": fit.iterations,
                     "per_iter_ms": per_iter, "objective": fit.objective, "zeros": fit.sparsity(),
                     "converged": fit.converged},
            "two_gemms_ms": gemm_ms,
        });
        if let Some(py) = &python {
            let npy = work.join(format!("x_{m}x{b}.npy"));
            write_npy_f32(&npy, &x, m, b)?;
            let mut cmd = Command::new(py);
            if a.threads > 0 {
                for var in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"] {
                    cmd.env(var, a.threads.to_string());
                }
            }
            let out = cmd
                .arg(root.join("xtask/py/bench_sklearn.py"))
                .arg(&npy)
                .args([a.k.to_string(), "1.0".into(), "5000".into()])
                .output()
                .context("running scikit-learn")?;
            if !out.status.success() {
                bail!(
                    "scikit-learn failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let sk: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let sk_wall = sk["wall_s"].as_f64().unwrap_or(f64::NAN);
            let sk_obj = sk["objective"].as_f64().unwrap_or(f64::NAN);
            let sk_iter = sk["n_iter"].as_u64().unwrap_or(0);
            println!(
                "| {m}x{b} | scikit-learn {} | {sk_wall:.2} | {sk_iter} | {:.1} | | | {sk_obj:.1} | {:.1}% |",
                sk["sklearn"].as_str().unwrap_or("?"),
                sk_wall * 1e3 / sk_iter.max(1) as f64,
                100.0 * sk["zeros"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "| {m}x{b} | **ratio** | **{:.1}× faster** to convergence | | | | | ours/sklearn − 1 = {:+.3}% | |",
                sk_wall / wall,
                100.0 * (fit.objective / sk_obj - 1.0)
            );
            // When did our objective first reach scikit-learn's final one (+0.1%)?
            let reach = fit
                .objective_trace
                .iter()
                .position(|&f| f <= sk_obj * 1.001)
                .map(|i| fit.trace_seconds[i]);
            match reach {
                Some(t) => println!(
                    "| {m}x{b} | **ratio** | **{:.1}× faster** to scikit-learn's objective + 0.1% ({t:.2} s) | | | | | | |",
                    sk_wall / t
                ),
                None => println!("| {m}x{b} | | never within 0.1% of scikit-learn's objective | | | | | | |"),
            }
            row["seconds_to_sklearn_objective"] = serde_json::json!(reach);
            row["sklearn"] = sk;
            row["speedup"] = serde_json::json!(sk_wall / wall);
            row["objective_rel_diff"] = serde_json::json!(fit.objective / sk_obj - 1.0);
        }
        results.push(row);
    }
    if let Some(dir) = a.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&a.out, serde_json::to_string_pretty(&results)?)?;
    println!("\nresults written to {}", a.out.display());
    Ok(())
}

fn parse_size(s: &str) -> Result<(usize, usize)> {
    let (m, b) = s.split_once('x').context("size must look like 3000x1024")?;
    Ok((m.trim().parse()?, b.trim().parse()?))
}

/// Median time of `X·Dᵀ` (M×B · B×K) plus `Xᵀ·C` (B×M · M×K), the two products an iteration needs.
fn two_gemms_ms(x: &[f32], m: usize, b: usize, k: usize, par: Par) -> f64 {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, Mat, MatRef};
    let xt = MatRef::from_column_major_slice(x, b, m);
    let u = Mat::<f32>::from_fn(b, k, |i, j| ((i * 7 + j * 13) % 17) as f32 / 17.0);
    let c = Mat::<f32>::from_fn(m, k, |i, j| ((i * 5 + j * 3) % 11) as f32 / 11.0);
    let mut xu = Mat::<f32>::zeros(m, k);
    let mut xc = Mat::<f32>::zeros(b, k);
    let mut times = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        matmul(
            xu.as_mut(),
            Accum::Replace,
            xt.transpose(),
            u.as_ref(),
            1.0,
            par,
        );
        matmul(xc.as_mut(), Accum::Replace, xt, c.as_ref(), 1.0, par);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Writes a C-order `<f4` .npy file.
fn write_npy_f32(path: &Path, x: &[f32], m: usize, b: usize) -> Result<()> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({m}, {b}), }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' must be a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 4 * x.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in x {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out)?;
    Ok(())
}
