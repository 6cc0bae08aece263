//! What a report shows: plain serde structs the CLI fills.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the report shows. Every field has a neutral default, so a caller fills only what it
/// has; empty sections are left out of the pages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReportData {
    /// The page title (e.g. `"dog · LLaVA-1.5-7B · layer 31"`).
    pub title: String,
    /// How the run was made.
    pub settings: RunSettings,
    /// Metric tables, shown in order.
    pub tables: Vec<Table>,
    /// One entry per concept, in the order they are shown (normally `index` order).
    pub concepts: Vec<ConceptReport>,
    /// Run-level plots.
    pub plots: Plots,
    /// Test images with their local explanation; one `explain-NNN.html` each.
    pub explained: Vec<ExplainedImage>,
}

/// The run's settings, shown as a key/value panel (absent values are not shown).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSettings {
    /// Model id or checkpoint path.
    pub model: Option<String>,
    /// Layer name (`31`, `norm`).
    pub layer: Option<String>,
    /// The token of interest.
    pub token: Option<String>,
    /// Decomposition method (`snmf`, `pca`, `kmeans`, `simple`).
    pub method: Option<String>,
    /// Number of concepts K.
    pub k: Option<usize>,
    /// Semi-NMF's λ.
    pub lambda: Option<f64>,
    /// The seed of every random choice.
    pub seed: Option<u64>,
    /// Training samples (M).
    pub train_samples: Option<usize>,
    /// Test samples.
    pub test_samples: Option<usize>,
    /// Samples skipped during extraction (token not generated, GT filter, unreadable image).
    pub skipped_samples: Option<usize>,
    /// Dataset spec (`coco:DIR`, `folder:DIR`).
    pub dataset: Option<String>,
    /// Named durations in seconds (`("fit", 4.1)`), in order.
    pub timings: Vec<(String, f64)>,
    /// Anything else, shown after the fields above, in order.
    pub extra: Vec<(String, String)>,
}

/// A table of numbers: one row per metric, one column per method (or per token, split, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Table {
    /// Shown above the table.
    pub caption: String,
    /// Column headers (after the row-name column), e.g. `["Semi-NMF", "PCA", "K-Means"]`.
    pub columns: Vec<String>,
    /// The rows; each has one cell per column (missing trailing cells are shown empty).
    pub rows: Vec<TableRow>,
    /// Digits after the decimal point (default 3 when `None`).
    pub decimals: Option<usize>,
}

/// One row of a [`Table`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TableRow {
    /// The metric's name (`"CLIPScore top-1"`).
    pub name: String,
    /// One cell per column.
    pub cells: Vec<Cell>,
    /// `Some(true)`: higher is better, `Some(false)`: lower is better; the best number is bold.
    pub higher_is_better: Option<bool>,
    /// A note shown after the cells (`"test, 5,000 images"`).
    pub note: Option<String>,
}

/// One cell of a [`Table`]: empty, a number with an optional ± std, or text. In JSON: `null`,
/// `{"value": 0.61, "std": 0.09}` or a string.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    /// Nothing (shown as an em dash).
    #[default]
    Empty,
    /// A number, optionally ± a standard deviation.
    Number {
        /// The value.
        value: f64,
        /// Its standard deviation, shown as `± std`.
        #[serde(default)]
        std: Option<f64>,
    },
    /// Free text.
    Text(String),
}

impl Cell {
    /// A number without a standard deviation.
    pub fn num(value: f64) -> Self {
        Cell::Number { value, std: None }
    }

    /// A number ± a standard deviation.
    pub fn mean_std(value: f64, std: f64) -> Self {
        Cell::Number {
            value,
            std: Some(std),
        }
    }
}

/// One word of a concept's text grounding with its logit `W_U · u_k`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WordLogit {
    /// The decoded word.
    pub word: String,
    /// Its logit.
    pub logit: f32,
}

/// An image shown in the report: a thumbnail and what to say about it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageRef {
    /// The sample's id.
    pub sample_id: String,
    /// The thumbnail: a path relative to the site folder (already there, e.g. the `thumbs/…` that
    /// `cox_ground_visual` writes into the same folder) or an absolute path, which is copied into
    /// `thumbs/` unchanged (pass a small image). `None` shows a placeholder.
    pub thumbnail: Option<PathBuf>,
    /// The activation shown next to it.
    pub activation: Option<f32>,
    /// The model's generated caption.
    pub caption: Option<String>,
    /// Why there is no image (shown on the placeholder).
    pub error: Option<String>,
}

/// A concept's best-matching ground-truth factor (synthetic data).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FactorMatch {
    /// The factor value (`colour=red`).
    pub factor: String,
    /// The concept's ROC-AUC for it.
    pub auc: f64,
}

/// What the report shows about one concept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConceptReport {
    /// The concept index `k` (names the page `concept-NNN.html` and the card `id="concept-NNN"`).
    pub index: usize,
    /// The grounded words T_k, in order.
    pub words: Vec<String>,
    /// The decoded candidates with their logits (the bar chart of the concept page), best first.
    pub word_logits: Vec<WordLogit>,
    /// The concept's share of the total activation mass, in [0, 1].
    pub activation_share: Option<f64>,
    /// The most-activating samples shown on the index card (normally 5).
    pub mas: Vec<ImageRef>,
    /// The images of the concept page (normally the top 20).
    pub top_images: Vec<ImageRef>,
    /// The concept's activation on every training sample (the histogram).
    pub activations: Vec<f32>,
    /// The best-matching ground-truth factor.
    pub factor: Option<FactorMatch>,
    /// `coxlmm steer` results for this concept (the "Steering" section of its page).
    pub steering: Vec<SteeringRun>,
}

/// One steering experiment on a concept: what was done and captions before → after.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SteeringRun {
    /// What was done, in words (`+4 × atom at block 2, generated positions`).
    pub setting: String,
    /// Share of the captions that changed, in [0, 1].
    pub changed: f64,
    /// The captions.
    pub examples: Vec<SteeringExample>,
}

/// One image captioned before and after steering.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SteeringExample {
    /// The sample id or image name.
    pub sample_id: String,
    /// The unsteered caption.
    pub before: String,
    /// The steered caption.
    pub after: String,
}

/// Run-level plots; empty vectors and `None` are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Plots {
    /// The objective after each iteration.
    pub objective_trace: Vec<f64>,
    /// `(K, error)` pairs for the reconstruction-error-versus-K plot.
    pub recon_error_vs_k: Vec<(usize, f64)>,
    /// The `K × K` row-major co-activation matrix (see [`coactivation`](crate::coactivation)),
    /// values in [−1, 1].
    pub coactivation: Option<Vec<f64>>,
}

/// One concept of a local explanation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExplainedConcept {
    /// The concept index.
    pub concept: usize,
    /// Its activation `v_k(x)` on the image.
    pub activation: f32,
}

/// A test image and its local explanation (its concepts ranked by activation).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExplainedImage {
    /// The image (thumbnail, sample id, generated caption).
    pub image: ImageRef,
    /// Whether the token of interest was generated in the caption.
    pub token_generated: bool,
    /// Ground-truth captions.
    pub references: Vec<String>,
    /// The top concepts, highest activation first; their words come from
    /// [`ReportData::concepts`].
    pub concepts: Vec<ExplainedConcept>,
}
