//! `coxlmm` as a library: the CoX-LMM pipeline (Parekh et al., NeurIPS 2024) as plain steps over
//! typed inputs, and the run folder that holds their files. The `coxlmm` binary only parses
//! arguments and calls this crate; `cargo xtask reproduce` reads the same [`Metrics`] types.
//!
//! A run is: [`extract`] (caption a dataset with a model and store, per sample, the residual vector
//! predicting the token of interest) → [`learn`] (a concept dictionary per [`Method`]) →
//! [`ground`] (each concept's words through the LM head, and the Rnd-Words baseline) →
//! [`evaluate`] (the metrics of `docs/method.md`) → [`report`] (the HTML site), with [`explain`]
//! projecting new images onto a finished run's dictionary. [`pipeline::run`] chains the steps in a
//! [`RunFolder`], skipping every step whose output exists, and loads the [`Model`] once for all of
//! them.
//!
//! This crate owns orchestration and files; the numerics live in the `cox-*` crates it composes.
//! It never parses command-line arguments and its errors never name command-line flags: the binary
//! adds those hints (see [`Error`]).
//!
//! ```no_run
//! use coxlmm::{pipeline, Model, ModelOptions, RunFolder, RunSettings};
//!
//! # fn main() -> anyhow::Result<()> {
//! let settings = RunSettings::new("path/to/llava-1.5", "folder:path/to/images", "dog", "31");
//! let folder = RunFolder::new("runs/dog");
//! let model = Model::load(&settings.model, &ModelOptions::default())?;
//! let outcome = pipeline::run(&settings, &folder, &model)?;
//! println!("report: {}", outcome.report_index.display());
//! # Ok(())
//! # }
//! ```

pub mod causal;
pub mod demo;
mod error;
pub mod evaluate;
pub mod explain;
pub mod extract;
pub mod ground;
pub mod learn;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod report;
pub mod run_folder;
pub mod scores;
pub mod settings;
pub mod steer;

pub use cox_decomp::Method;
pub use error::Error;
pub use metrics::{MethodMetrics, Metrics, References};
pub use model::{Model, ModelDtype, ModelOptions};
pub use run_folder::{Grounding, RunFolder, SplitData};
pub use settings::RunSettings;

/// The README's code blocks, compiled (and the Rust ones type-checked) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
