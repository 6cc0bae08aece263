//! `cargo xtask`: the project's automation for what `cargo build`/`cargo test` cannot do
//! (benchmarks against the reference implementation, fixtures, packaged weights, reproduce).

use clap::{Parser, Subcommand};

mod bench_snmf;

#[derive(Parser)]
#[command(name = "xtask", about = "coxlmm project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Benchmark the Semi-NMF solver against scikit-learn on the same synthetic matrices.
    BenchSnmf(bench_snmf::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::BenchSnmf(a) => bench_snmf::run(a),
    }
}
