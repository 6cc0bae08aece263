//! The library's own failures. Everything else (a store, a model, a decomposition failing) passes
//! through `anyhow` with the failing crate's typed error inside, so a caller can still downcast to
//! `cox_store::Error`, `cox_model::Error`, … The messages never name command-line flags; the
//! binary adds its hints by matching on these variants.

use std::path::PathBuf;

/// A problem with the inputs or the run folder that the caller can fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The folder holds a run made with other settings.
    #[error("{folder} was made with other settings ({differences}); rerun with the same settings to resume it")]
    OtherSettings {
        folder: PathBuf,
        /// `key: old in the run, new now`, joined by "; ".
        differences: String,
    },
    /// An activation store was extracted with other model weights than the model given now, or
    /// does not record its model's weights.
    #[error("{store} cannot be extended with the model {model}: {why}; extract into a new folder")]
    OtherWeights {
        store: PathBuf,
        model: String,
        /// What differs, and how the store could still be resumed.
        why: String,
    },
    /// `run.json` is missing or belongs to something else.
    #[error("{folder}: not a coxlmm run folder ({why})")]
    NotARunFolder { folder: PathBuf, why: String },
    /// A step's input file is missing: the step before it has not run.
    #[error("{path} is missing: the run has not reached the {step} step yet")]
    StepNotDone { path: PathBuf, step: &'static str },
    /// Fewer kept training samples than concepts.
    #[error(
        "only {rows} training samples generated {token:?} but K = {k}: lower K, or extract more \
         samples (a larger limit or split)"
    )]
    TooFewSamples {
        rows: usize,
        token: String,
        k: usize,
    },
    /// A setting is out of range.
    #[error("invalid setting {name}: {why}")]
    Setting { name: &'static str, why: String },
    /// A store holds several layers and none was named.
    #[error("{store} holds the layers {layers}; name the one to read")]
    AmbiguousLayer { store: PathBuf, layers: String },
    /// Every image given to `explain` was unreadable.
    #[error("no image could be read")]
    NoReadableImage,
    /// The extraction stopped on purpose after writing some shards (a test hook that simulates a
    /// killed process).
    #[error("stopped after {shards} shard(s) as asked by {variable}")]
    StoppedForTest {
        shards: usize,
        variable: &'static str,
    },
}
