//! `metrics.json`: the evaluation of a run, written by [`crate::evaluate`] and read by the report
//! and by `cargo xtask reproduce`. The field names are the file format (`docs/formats.md`).

use cox_decomp::Method;
use cox_metrics::{MeanStd, ProbeReport, RecoveryReport};
use serde::{Deserialize, Serialize};

/// Everything `metrics.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub token: String,
    pub train_samples: usize,
    pub test_samples: usize,
    /// One entry per method, in the run's method order.
    pub methods: Vec<MethodMetrics>,
    /// BERTScore model name, or why BERTScore is unavailable.
    pub bertscore_model: String,
    /// CLIPScore model, or why CLIPScore is unavailable.
    pub clipscore_model: String,
    /// Rows that do not depend on the method.
    #[serde(default)]
    pub references: References,
    /// Seconds per step of the invocation that finished the run.
    pub timings: Vec<(String, f64)>,
}

impl Metrics {
    /// The entry of `method`, when the run evaluated it.
    pub fn method(&self, method: Method) -> Option<&MethodMetrics> {
        self.methods.iter().find(|m| m.method == method)
    }
}

/// The rows of `metrics.json` that do not depend on the method (fields in the file's key order).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct References {
    /// GT-captions: BERTScore F1 of each test sample's first reference caption against the others.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted_keys"
    )]
    pub bertscore_gt_captions: Option<MeanStd>,
    /// Noise-Imgs: BERTScore F1 (top-1) of a dictionary learnt on noise images.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted_keys"
    )]
    pub bertscore_top1_noise_imgs: Option<MeanStd>,
    /// Noise-Imgs: CLIPScore (top-1) of a dictionary learnt on noise images.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted_keys"
    )]
    pub clipscore_top1_noise_imgs: Option<MeanStd>,
    /// The supervised ceiling of recovery: a linear probe per factor value (synthetic world).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "sorted_keys"
    )]
    pub recovery_probe: Option<ProbeReport>,
}

/// Writes a reference row with its object keys sorted, as `metrics.json` has always held them
/// (they were stored as JSON values, whose maps are ordered by key).
fn sorted_keys<T: Serialize, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(v)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// The metrics of one method's dictionary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodMetrics {
    pub method: Method,
    pub k: usize,
    /// Overlap of the grounded words (`docs/method.md` §5.3).
    pub overlap: f64,
    pub mean_l0: f64,
    pub mean_hoyer: Option<f64>,
    pub zero_fraction: f64,
    pub dead_concepts: Vec<usize>,
    /// `‖X − X̂‖_F / ‖X‖_F` on the training matrix.
    pub relative_error: Option<f64>,
    pub explained_variance: Option<f64>,
    pub recovery_auc_train: Option<f64>,
    pub recovery_auc_test: Option<f64>,
    pub recovery: Option<RecoveryReport>,
    pub bertscore_top1: Option<MeanStd>,
    pub bertscore_top1_rnd_words: Option<MeanStd>,
    pub clipscore_top1: Option<MeanStd>,
    pub clipscore_top3: Option<MeanStd>,
    pub stability: Option<MeanStd>,
    pub fit_seconds: Option<f64>,
    /// Multimodal grounding (`docs/method.md` §5.4): BERTScore F1 of each
    /// concept's words against the captions of its most-activating training samples, mean ± std
    /// over concepts.
    #[serde(default)]
    pub grounding_bertscore: Option<MeanStd>,
    /// The same with each concept's Rnd-Words.
    #[serde(default)]
    pub grounding_bertscore_rnd_words: Option<MeanStd>,
}

impl MethodMetrics {
    /// An entry with only the method and K set.
    pub fn new(method: Method, k: usize) -> Self {
        Self {
            method,
            k,
            overlap: 0.0,
            mean_l0: 0.0,
            mean_hoyer: None,
            zero_fraction: 0.0,
            dead_concepts: Vec::new(),
            relative_error: None,
            explained_variance: None,
            recovery_auc_train: None,
            recovery_auc_test: None,
            recovery: None,
            bertscore_top1: None,
            bertscore_top1_rnd_words: None,
            clipscore_top1: None,
            clipscore_top3: None,
            stability: None,
            fit_seconds: None,
            grounding_bertscore: None,
            grounding_bertscore_rnd_words: None,
        }
    }
}
