//! coxlmm's files: activation matrices and concept dictionaries, as safetensors tensors with a JSON
//! sidecar, readable from Python with `safetensors.numpy.load_file` and `json` (see `docs/formats.md`),
//! and the sharded, resumable activation store of `coxlmm extract` ([`RunWriter`], [`read_run`],
//! [`merge_runs`]).
//!
//! This crate owns the on-disk formats and the crash-safe way they are written (a temporary file in the
//! same folder, fsync, rename: a file is either complete or absent), and the store's guarantees:
//! every shard is checksummed in the manifest and verified by every reader and writer, damaged
//! shards are reported with their samples so that a resumed run re-creates exactly them, and one
//! writer at a time holds a store's lock file. It must never compute anything
//! beyond dtype conversion, know about models or decompositions, or parse command lines; callers pass
//! plain matrices and serde metadata.

mod atomic;
mod dictionary;
mod digest;
mod error;
mod fingerprint;
mod lock;
mod matrix;
mod run_store;
mod skip;

pub use atomic::{atomic_write, sanitized_stem, sidecar_path, tensor_path, unique_file_stem};
pub use dictionary::{read_dictionary, write_dictionary, DictionaryFile, DictionaryMeta};
pub use digest::{sha256_hex, FileDigest};
pub use error::{Error, Result};
pub use fingerprint::{fingerprint_files, FileFingerprint};
pub use lock::LOCK_FILE;
pub use matrix::{read_activations, write_activations, ActivationsFile, DiskDtype, Matrix};
pub use run_store::{
    merge_runs, read_manifest, read_run, read_run_samples, shard_names, verify_store, DamagedShard,
    RunActivations, RunManifest, RunSpec, RunWriter, SampleRecord, ShardEntry, StoreCheck,
    MANIFEST_FILE, RUN_FORMAT, RUN_FORMAT_VERSION,
};
pub use skip::Skip;
