//! `coxlmm report`: rewrite a run's HTML report.

use std::path::PathBuf;

use anyhow::Result;
use coxlmm::RunFolder;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (made by `coxlmm run` or `coxlmm demo`).
    #[arg(long)]
    run: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let index = coxlmm::pipeline::rewrite_report(&RunFolder::new(&a.run))?;
    outln!("report: {}", index.display())?;
    Ok(())
}
