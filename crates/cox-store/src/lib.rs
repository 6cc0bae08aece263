//! coxlmm's files: activation matrices and concept dictionaries, as safetensors tensors with a JSON
//! sidecar, readable from Python with `safetensors.numpy.load_file` and `json` (see `docs/formats.md`),
//! and the sharded, resumable activation store of `coxlmm extract` ([`RunWriter`], [`read_run`],
//! [`merge_runs`]).
//!
//! This crate owns the on-disk formats and the crash-safe way they are written (a temporary file in the
//! same folder, fsync, rename: a file is either complete or absent). It must never compute anything
//! beyond dtype conversion, know about models or decompositions, or parse command lines; callers pass
//! plain matrices and serde metadata.

mod atomic;
mod dictionary;
mod error;
mod matrix;
mod run_store;

pub use atomic::{atomic_write, sidecar_path, tensor_path};
pub use dictionary::{read_dictionary, write_dictionary, DictionaryFile, DictionaryMeta};
pub use error::{Error, Result};
pub use matrix::{read_activations, write_activations, ActivationsFile, DiskDtype, Matrix};
pub use run_store::{
    merge_runs, read_manifest, read_run, read_run_samples, RunActivations, RunManifest, RunSpec,
    RunWriter, SampleRecord, ShardEntry, MANIFEST_FILE, RUN_FORMAT,
};
