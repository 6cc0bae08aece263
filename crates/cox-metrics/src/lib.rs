//! Evaluation metrics for CoX-LMM concept dictionaries, one module per metric: ground-truth concept
//! recovery ([`recovery`]: how well the best single concept activation detects each known factor value
//! of the synthetic world, by exact ROC-AUC, and the concept→factor matching table) and its supervised
//! ceiling ([`probe`]: a held-out linear probe of the representation itself), the overlap of the
//! grounded words ([`mod@overlap`], the paper's Table 2), dictionary stability across seeds ([`stability`],
//! Hungarian matching of atoms by cosine), activation sparsity ([`mod@sparsity`]), reconstruction error and
//! explained variance under each method's convention ([`mod@reconstruction`]), and the mean ± std summaries
//! of the result tables and K sweeps ([`summary`]), and the causal validity of steering on the
//! synthetic world ([`causal`]: success, specificity and fluency of steered captions, probability
//! change under ablation). It owns the metric maths and their
//! serde-serialisable reports only: every function is pure over slices, never touches the filesystem,
//! a model or a dataset crate, and never decides which samples, labels, words or seeds to use (callers
//! pass them in).
//!
//! Data-dependent problems (a NaN, a wrong length, too few samples) are [`MetricsError`]s that name the
//! input, sample and feature or concept; the small building blocks ([`roc_auc`], [`hoyer`],
//! [`max_weight_assignment`], [`mean_std`]) panic on broken preconditions instead, as documented.
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

pub mod causal;
mod check;
mod error;
pub mod overlap;
pub mod probe;
pub mod reconstruction;
pub mod recovery;
pub mod sparsity;
pub mod stability;
pub mod summary;

pub use causal::{
    causal_scores, probability_change, CausalScores, ParsedScene, ProbabilityChange, Trial,
};
pub use error::{MetricsError, Result};
pub use overlap::{overlap, OverlapReport};
pub use probe::{probe_auc, probe_directions, ProbeFactor, ProbeReport};
pub use reconstruction::{reconstruction, Reconstruct, ReconstructionReport};
pub use recovery::{
    average_ranks, recovery_auc, roc_auc, ConceptMatch, FactorRecovery, RecoveryReport,
};
pub use sparsity::{hoyer, sparsity, SparsityReport};
pub use stability::{
    match_dictionaries, max_weight_assignment, stability_across_seeds, Matching, PairStability,
    Similarity, StabilityReport,
};
pub use summary::{k_sweep_rows, mean_std, KRow, MeanStd};
