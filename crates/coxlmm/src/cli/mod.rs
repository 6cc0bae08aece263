//! The subcommands: each parses its arguments into the library's typed inputs, calls the library
//! and prints the outcome. The command-line hints of library errors are added here.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use coxlmm::Error;

/// Writes one line of results to stdout through [`out`]; use as `outln!("...", x)?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        crate::cli::out(format_args!($($arg)*))
    };
}

pub mod demo;
pub mod explain;
pub mod extract;
pub mod learn;
pub mod report;
pub mod run;
pub mod steer;

/// `--method` / `--methods`: the decompositions, a closed set (`--help` lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// Semi-NMF, the paper's method.
    #[value(name = "snmf", alias = "nndl", alias = "semi-nmf", alias = "seminmf")]
    SemiNmf,
    /// Centred PCA.
    Pca,
    /// K-Means.
    #[value(name = "kmeans", alias = "k-means")]
    KMeans,
    /// The K largest-norm training samples.
    Simple,
}

impl From<MethodArg> for coxlmm::Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::SemiNmf => coxlmm::Method::SemiNmf,
            MethodArg::Pca => coxlmm::Method::Pca,
            MethodArg::KMeans => coxlmm::Method::KMeans,
            MethodArg::Simple => coxlmm::Method::Simple,
        }
    }
}

/// Prints `e` with the hint that names the flag or command to use, and returns the exit code.
pub fn report_error(e: &anyhow::Error) -> i32 {
    eprintln!("error: {e:#}");
    let hint = if let Some(e) = e.downcast_ref::<Error>() {
        match e {
            Error::OtherSettings { .. } => Some("or choose another --out"),
            Error::OtherWeights { .. } => Some("choose another --out"),
            Error::NotARunFolder { .. } => Some("make one with `coxlmm run` or `coxlmm demo`"),
            Error::StepNotDone { .. } => {
                Some("finish the run with the `coxlmm run` command that made it")
            }
            Error::TooFewSamples { .. } => {
                Some("lower --k, or raise --limit or use a larger split")
            }
            Error::Setting { name, .. } => match *name {
                "methods" => Some("pass --methods snmf,pca,kmeans,simple or a part of it"),
                "k" => Some("pass --k 1 or more"),
                "lambda" => Some("pass --lambda 0 or more"),
                _ => None,
            },
            Error::AmbiguousLayer { .. } => Some("pick one with --layer"),
            Error::NoReadableImage => None,
            Error::StoppedForTest { .. } => return 3,
        }
    } else if let Some(cox_data::DataError::OutsidePath { .. }) = e.downcast_ref() {
        Some(
            "move the image into the dataset folder, or pass --allow-outside-paths (`coxlmm extract` \
             and `coxlmm run` take it)",
        )
    } else if let Some(e) = e.downcast_ref::<cox_store::Error>() {
        match e {
            cox_store::Error::MissingTensor { .. } => Some("pass the right file or --tensor NAME"),
            _ => None,
        }
    } else {
        None
    };
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
    1
}

/// Set once stdout's reader has gone (`coxlmm explain … | head -n 1`).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `line` and a newline to stdout. Every result line of the CLI goes through here instead of
/// `println!`, which panics when the reader of a pipe has exited. A closed pipe (`BrokenPipe`) is
/// not an error: printing stops for the rest of the process but the command keeps working, so
/// `explain` still saves every explanation; any other write error is returned.
pub fn out(line: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        r => r,
    }
}
