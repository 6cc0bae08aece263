//! Errors, each naming the file and what to do.
//!
//! An operating-system error is shown once: it is part of the message of [`Error::Read`] and
//! [`Error::Write`] and not also returned as their `source()`, so a caller that prints the whole
//! chain (`{:#}` with anyhow) does not repeat it. Messages never name command-line flags: they say
//! what is wrong and what the caller must provide, and the command-line tool adds its own hints.

use std::path::PathBuf;

/// What can go wrong reading or writing coxlmm files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not exist or cannot be read.
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// The file cannot be written.
    #[error("cannot write {}: {cause}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// The file is not a (complete) safetensors file.
    #[error("{} is not a valid safetensors file ({reason}): it is truncated or of another format; re-create it", path.display())]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// What the safetensors parser reported.
        reason: String,
    },
    /// The expected tensor is missing.
    #[error("{} has no tensor named {name:?} (it has: {available}); pass the right file or name one of its tensors", path.display())]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor looked for.
        name: String,
        /// The tensors the file has, comma-separated.
        available: String,
    },
    /// A tensor has the wrong rank, shape or dtype, or values that do not fit in f32.
    #[error("{}: tensor {name:?} {problem}", path.display())]
    BadTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The JSON sidecar or manifest is unreadable or inconsistent with the tensors, or a store
    /// cannot be used as asked.
    #[error("{}: {problem}", path.display())]
    BadSidecar {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A shard of an activation store does not match what its manifest recorded (missing,
    /// truncated, modified, or inconsistent with its neighbours).
    #[error("{} is damaged: {problem}; resuming the extraction that wrote this store re-creates it", path.display())]
    DamagedShard {
        /// The shard file (or the manifest when its entry is the inconsistent part).
        path: PathBuf,
        /// Which shard (0-based) it is.
        shard: usize,
        /// What does not match.
        problem: String,
    },
    /// Another process holds the store's write lock.
    #[error(
        "{} is locked: another process{} is writing this store; wait for it to finish or stop it, \
         then try again",
        path.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process id written in the lock file, when readable.
        pid: Option<u32>,
    },
    /// A sample pushed to a store writer that does not expect it (the store is complete, the
    /// sample is out of order, or its vectors do not match the store's layers and width).
    #[error("{}: cannot add sample {ordinal}: {problem}", path.display())]
    Push {
        /// The store folder.
        path: PathBuf,
        /// The sample's ordinal.
        ordinal: usize,
        /// What is wrong.
        problem: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
