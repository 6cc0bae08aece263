//! coxlmm's files: activation matrices and concept dictionaries, as safetensors tensors with a JSON
//! sidecar, readable from Python with `safetensors.numpy.load_file` and `json` (see `docs/formats.md`).
//!
//! This crate owns the on-disk formats and the crash-safe way they are written (a temporary file in the
//! same folder, fsync, rename: a file is either complete or absent). It must never compute anything
//! beyond dtype conversion, know about models or decompositions, or parse command lines; callers pass
//! plain matrices and serde metadata.

mod atomic;
mod dictionary;
mod error;
mod matrix;

pub use atomic::{atomic_write, sidecar_path, tensor_path};
pub use dictionary::{read_dictionary, write_dictionary, DictionaryFile, DictionaryMeta};
pub use error::{Error, Result};
pub use matrix::{read_activations, write_activations, ActivationsFile, DiskDtype, Matrix};
