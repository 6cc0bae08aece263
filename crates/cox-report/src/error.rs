//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `cox-report`.
///
/// A missing thumbnail is not an error: the site shows a placeholder and
/// [`SiteSummary::problems`](crate::SiteSummary::problems) lists it.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file of the site could not be written (the store's error names the file).
    #[error(transparent)]
    Write(#[from] cox_store::Error),
    /// The output folder could not be created or listed.
    #[error("cannot prepare the report folder {}: {source}; check the path and its permissions", path.display())]
    Dir {
        /// The folder.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// Two concepts have the same index, so their pages would overwrite each other.
    #[error("concept {0} appears twice in the report data; each concept index must be unique")]
    DuplicateConcept(usize),
}

/// `Result` with [`ReportError`].
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
