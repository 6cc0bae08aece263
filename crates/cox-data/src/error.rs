//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading or selecting a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read. The operating system's text is part of this message
    /// and not also the error's `source()`, so printing the whole chain shows it once.
    #[error("cannot read {}: {cause}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A line of a JSON Lines file is not UTF-8 text.
    #[error(
        "{}:{line}: not UTF-8 text (invalid byte at column {column}); save the file as UTF-8",
        path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The 1-based byte column of the first invalid byte.
        column: usize,
    },
    /// An image path of a `folder:` dataset that leads outside the dataset folder (absolute, or
    /// climbing out with `..`), refused unless the loading options allow it.
    #[error(
        "{}:{line}: image path {image:?} points outside the dataset folder {}; image paths must be \
         relative and stay inside the folder (or outside paths must be allowed explicitly when \
         loading)",
        path.display(),
        dir.display()
    )]
    OutsidePath {
        /// The captions file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The image path as written.
        image: String,
        /// The dataset folder.
        dir: PathBuf,
    },
    /// A required file does not exist.
    #[error("{what} not found: {} ({hint})", path.display())]
    MissingFile {
        /// What the file is (`"Karpathy split file"`, `"captions file"`).
        what: &'static str,
        /// The path that was looked for.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// The folder that holds a dataset's images does not exist.
    #[error(
        "image root {} does not exist (needed by {needed_by}); pass the folder holding the \
         images or run `cargo xtask prep-coco DIR` to see what is missing",
        path.display()
    )]
    MissingImageRoot {
        /// The folder that was looked for.
        path: PathBuf,
        /// Which sample or record needs it.
        needed_by: String,
    },
    /// A JSON document (or one line of a JSON Lines file) is not valid or lacks a field.
    #[error("{}{}: {msg}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Json {
        /// The file.
        path: PathBuf,
        /// The 1-based line for JSON Lines files.
        line: Option<usize>,
        /// What is wrong.
        msg: String,
    },
    /// A split name that is not `train`, `restval`, `val` or `test`.
    #[error(
        "unknown split {name:?}{}; expected train, restval, val or test",
        at.as_ref().map(|a| format!(" at {a}")).unwrap_or_default()
    )]
    UnknownSplit {
        /// The name found.
        name: String,
        /// Where it was found (`file:line`), when it came from a file.
        at: Option<String>,
    },
    /// Two records share an id.
    #[error("{}:{line}: duplicate id {id:?}", path.display())]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the second occurrence.
        line: usize,
        /// The id.
        id: String,
    },
    /// No sample is left after reading and split filtering.
    #[error("dataset {source_desc} has no samples{}", if splits.is_empty() { String::new() } else { format!(" in split(s) {}", splits.join(",")) })]
    EmptyDataset {
        /// The data source, as given.
        source_desc: String,
        /// The requested splits (empty = all).
        splits: Vec<String>,
    },
    /// A subset that selects no sample whatever the dataset.
    #[error("{what} selects no sample; a run needs at least one (ask for 1 or more, or for all)")]
    EmptySubset {
        /// The setting at fault.
        what: &'static str,
    },
    /// A `coco:DIR` / `folder:DIR` spec that cannot be parsed.
    #[error("invalid data source {spec:?}: {msg}")]
    InvalidSource {
        /// The spec as given.
        spec: String,
        /// What is wrong.
        msg: String,
    },
    /// A `--shard I/N` value (or its environment variables) that cannot be used.
    #[error("invalid shard {spec:?}: {msg}")]
    InvalidShard {
        /// The value as given.
        spec: String,
        /// What is wrong.
        msg: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, DataError>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |cause| DataError::Io {
        path: path.to_path_buf(),
        cause,
    }
}
