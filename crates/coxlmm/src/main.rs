//! `coxlmm`: the command-line tool. It parses arguments, settles threads and logging, calls the
//! `coxlmm` library and prints what it returns; errors get the command-line hint that fits them.

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: candle allocates and frees large tensors for every
/// forward pass, and glibc hands them back to the kernel each time (page faults were a quarter of a
/// training step's time in cox-train; see xtask).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

#[derive(Parser)]
#[command(
    name = "coxlmm",
    version,
    about = "Concept-based explanations of large multimodal models (CoX-LMM)"
)]
struct Cli {
    /// More log output (-v info, -vv debug); logs go to stderr. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Threads of each model matrix product (candle's CPU backend; default: the worker threads).
    #[arg(long, global = true)]
    model_threads: Option<usize>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Learn a concept dictionary from an activation matrix (Semi-NMF or a baseline).
    Learn(cli::learn::Args),
    /// Caption a dataset with a multimodal model and store the residual vectors predicting a token.
    Extract(Box<cli::extract::Args>),
    /// Merge the part stores of a sharded `extract` run into one.
    Merge(cli::extract::MergeArgs),
    /// The whole pipeline, resumable: extract → learn → ground → evaluate → report.
    Run(Box<cli::run::Args>),
    /// The pipeline offline on the synthetic world and the committed tiny model.
    Demo(cli::demo::Args),
    /// Explain new images with a finished run's dictionary.
    Explain(cli::explain::Args),
    /// (Re)write a run's HTML report.
    Report(cli::report::Args),
    /// Caption images before and after steering the model with a concept.
    Steer(cli::steer::Args),
    /// Causal validity of a synthetic-world run's concepts (steering success, specificity,
    /// fluency, ablation), saved as RUN/causal.json.
    Causal(cli::steer::CausalArgs),
}

fn main() {
    let cli = Cli::parse();
    // Thread counts are settled before any other thread exists. candle sizes its matrix products by
    // `RAYON_NUM_THREADS` (read at each product) and, when it is unset, by the CPUs it finds itself,
    // which in a container can be the host's: on this project's 2-core machine that oversubscription
    // made the demo's extraction 5× slower (41 s against 8 s). So the variable is always set; rayon's
    // own pool is built with an explicit count.
    let env_threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0);
    let workers = cli.threads.or(env_threads).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let model_threads = cli.model_threads.unwrap_or(workers).max(1);
    std::env::set_var("RAYON_NUM_THREADS", model_threads.to_string());
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = rayon_threads(workers) {
        eprintln!("warning: could not set {workers} threads: {e}");
    }
    let result = match cli.cmd {
        Cmd::Learn(a) => cli::learn::run(a),
        Cmd::Extract(a) => cli::extract::run(*a),
        Cmd::Merge(a) => cli::extract::merge(a),
        Cmd::Run(a) => cli::run::run(*a),
        Cmd::Demo(a) => cli::demo::run(a),
        Cmd::Explain(a) => cli::explain::run(a),
        Cmd::Report(a) => cli::report::run(a),
        Cmd::Steer(a) => cli::steer::run(a),
        Cmd::Causal(a) => cli::steer::causal(a),
    };
    if let Err(e) = result {
        std::process::exit(cli::report_error(&e));
    }
}

/// cox-snmf and cox-decomp parallelise through rayon's global pool.
fn rayon_threads(n: usize) -> Result<(), rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
}
