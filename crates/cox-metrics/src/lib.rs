//! Evaluation metrics for CoX-LMM concept dictionaries, one module per metric; for now ground-truth
//! concept recovery ([`recovery`]): how well the best single concept activation detects each known factor
//! value of the synthetic world, by exact ROC-AUC. It owns the metric maths and their serde-serialisable
//! reports only: every function is pure over slices, never touches the filesystem, a model or a dataset
//! crate, and never decides which samples or labels to use (callers pass them in).
//!
//! ```
//! use cox_metrics::recovery_auc;
//! // Two samples × two concepts, row-major; concept 1 fires exactly on "colour=red".
//! let acts = [0.1, 0.9, 0.2, 0.0];
//! let labels = vec![vec!["colour=red".to_string()], vec!["colour=blue".to_string()]];
//! let report = recovery_auc(&acts, 2, &labels)?;
//! assert_eq!(report.mean_auc, 1.0);
//! # Ok::<(), cox_metrics::MetricsError>(())
//! ```

mod error;
pub mod recovery;

pub use error::{MetricsError, Result};
pub use recovery::{
    average_ranks, recovery_auc, roc_auc, ConceptMatch, FactorRecovery, RecoveryReport,
};
