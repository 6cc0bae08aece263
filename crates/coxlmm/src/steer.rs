//! Steering: act on the model with a concept of a finished run and compare its captions before and
//! after (`docs/method.md`, "Steering and causal validity").
//!
//! A steering vector comes from a concept's atom (scaled by the concept's mean positive training
//! activation, so that α counts typical activations), from the mean shift of the training vectors
//! (those where the concept is active minus those where it is not, or those whose caption has a
//! word minus the others, as the reference's follow-up steers), or from a file. It is added at the
//! run's layer (a decoder block) through `cox_model`'s edits, at prompt positions, generated ones or
//! both. [`SetActivation`] instead sets the concept's activation in the dictionary's encoding of
//! every edited state (the edit that needs the dictionary, hence here rather than in `cox-model`).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Tensor};
use cox_decomp::{ConceptDictionary, Method};
use cox_hook::parse_layers;
use cox_model::{AddDirection, Edit, EditPositions, LayerSel, ResidualCapture, ResidualEdit};
use cox_snmf::{Par, SamplesRef};
use serde::{Deserialize, Serialize};

use crate::extract::DEFAULT_PROMPT;
use crate::run_folder::concept_dictionary;
use crate::{Model, RunFolder, RunSettings, SplitData};

/// Where in the sequence an edit acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Positions {
    /// The generated tokens fed back (the first generated token is predicted from the prompt).
    Generated,
    /// The prompt (image positions included).
    Prompt,
    /// Both.
    All,
}

impl Positions {
    pub fn name(self) -> &'static str {
        match self {
            Positions::Generated => "generated",
            Positions::Prompt => "prompt",
            Positions::All => "all",
        }
    }

    /// The model's positions for a prompt of `prompt_len` positions.
    pub fn at(self, prompt_len: usize) -> EditPositions {
        match self {
            Positions::Generated => EditPositions::Generated { prompt_len },
            Positions::Prompt => EditPositions::Prompt { prompt_len },
            Positions::All => EditPositions::All,
        }
    }
}

impl FromStr for Positions {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "generated" => Ok(Positions::Generated),
            "prompt" => Ok(Positions::Prompt),
            "all" => Ok(Positions::All),
            _ => Err(format!(
                "positions {s:?}: expected generated, prompt or all"
            )),
        }
    }
}

impl fmt::Display for Positions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the steering vector comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VectorSource {
    /// The concept's atom times its mean positive training activation.
    Atom,
    /// Mean of the training vectors where the concept is active minus the mean of the others
    /// (active: activation > 0 for Semi-NMF and PCA; the concept is the sample's nearest for
    /// K-Means and Simple, whose activations are never 0).
    MeanShift,
    /// Mean of the training vectors whose generated caption contains the word minus the others.
    Word(String),
    /// A vector read from a safetensors file (`[B]` or `[1, B]`, its only or named tensor).
    File(PathBuf),
}

impl VectorSource {
    /// A short name for file names and the report: `atom`, `mean-shift`, `word-red`, `file-v`.
    pub fn slug(&self) -> String {
        match self {
            VectorSource::Atom => "atom".into(),
            VectorSource::MeanShift => "mean-shift".into(),
            VectorSource::Word(w) => format!("word-{}", cox_store::sanitized_stem(Path::new(w))),
            VectorSource::File(p) => format!("file-{}", cox_store::sanitized_stem(p)),
        }
    }
}

impl FromStr for VectorSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "atom" => Ok(VectorSource::Atom),
            "mean-shift" => Ok(VectorSource::MeanShift),
            _ => {
                if let Some(w) = s.strip_prefix("word:").filter(|w| !w.is_empty()) {
                    Ok(VectorSource::Word(w.to_string()))
                } else if let Some(p) = s.strip_prefix("file:").filter(|p| !p.is_empty()) {
                    Ok(VectorSource::File(PathBuf::from(p)))
                } else {
                    Err(format!(
                        "vector {s:?}: expected atom, mean-shift, word:WORD or file:PATH"
                    ))
                }
            }
        }
    }
}

/// The decoder block a run's layer names (steering acts on block outputs, not the final norm).
pub fn layer_block(layer: &str) -> Result<usize> {
    match parse_layers(layer)?.as_slice() {
        [LayerSel::Block(b)] => Ok(*b),
        _ => bail!(
            "the run's layer {layer:?} is not a single decoder block; steering edits a block's \
             output (a run at the final norm cannot be steered)"
        ),
    }
}

/// What steering needs from a finished run: its settings, one method's dictionary and training
/// activations, and the training vectors (for mean shifts).
pub struct SteerContext {
    pub settings: RunSettings,
    pub method: Method,
    pub dictionary: ConceptDictionary,
    /// Training activations `[M, K]`, sample-major.
    pub activations: Vec<f32>,
    pub train: SplitData,
    /// The decoder block of the run's layer.
    pub block: usize,
}

impl SteerContext {
    pub fn load(folder: &RunFolder, method: Option<Method>) -> Result<Self> {
        let settings = folder.read_settings()?;
        let method = method.unwrap_or_else(|| settings.primary_method());
        let block = layer_block(&settings.layer)?;
        let d = folder.read_dictionary(method)?;
        let dictionary = concept_dictionary(&d, method);
        let train = folder.load_split(&settings.train_split, &settings.layer)?;
        Ok(Self {
            method,
            dictionary,
            activations: d.activations.data,
            train,
            block,
            settings,
        })
    }

    fn check_concept(&self, concept: usize) -> Result<()> {
        if concept >= self.dictionary.k {
            bail!(
                "concept {concept} does not exist: the {} dictionary has {} concepts (0..={})",
                self.method.label(),
                self.dictionary.k,
                self.dictionary.k.saturating_sub(1)
            );
        }
        Ok(())
    }

    /// Concept `k`'s atom (`B` values).
    pub fn atom(&self, k: usize) -> &[f32] {
        let b = self.dictionary.n_features;
        &self.dictionary.concepts[k * b..(k + 1) * b]
    }

    /// The mean of concept `k`'s positive training activations (its typical size when present).
    pub fn typical_activation(&self, k: usize) -> Result<f32> {
        let kk = self.dictionary.k;
        let pos: Vec<f64> = self
            .activations
            .iter()
            .skip(k)
            .step_by(kk)
            .filter(|&&a| a > 0.0)
            .map(|&a| a as f64)
            .collect();
        if pos.is_empty() {
            bail!(
                "concept {k} of the {} dictionary is never active on the training samples: it \
                 has no typical activation to scale its atom by",
                self.method.label()
            );
        }
        Ok((pos.iter().sum::<f64>() / pos.len() as f64) as f32)
    }

    /// Whether concept `k` is active on training row `i` (see [`VectorSource::MeanShift`]).
    fn active(&self, i: usize, k: usize) -> bool {
        let kk = self.dictionary.k;
        let row = &self.activations[i * kk..(i + 1) * kk];
        match self.method {
            Method::SemiNmf | Method::Pca => row[k] > 0.0,
            Method::KMeans | Method::Simple => crate::evaluate::top_concepts(row, 1)[0] == k,
        }
    }

    /// The steering vector of `source` for concept `concept` (unscaled by α).
    pub fn vector(&self, concept: usize, source: &VectorSource) -> Result<Vec<f32>> {
        self.check_concept(concept)?;
        let t = &self.train;
        let mean_shift = |inside: &dyn Fn(usize) -> bool, what: &str| -> Result<Vec<f32>> {
            let (mut a, mut b) = (vec![0f64; t.b], vec![0f64; t.b]);
            let (mut na, mut nb) = (0usize, 0usize);
            for (i, row) in t.x.chunks_exact(t.b).enumerate() {
                let (acc, n) = if inside(i) {
                    (&mut a, &mut na)
                } else {
                    (&mut b, &mut nb)
                };
                *n += 1;
                for (s, &v) in acc.iter_mut().zip(row) {
                    *s += v as f64;
                }
            }
            if na == 0 || nb == 0 {
                bail!(
                    "no mean shift for {what}: {na} training samples have it and {nb} do not \
                     (both groups must be non-empty)"
                );
            }
            Ok(a.iter()
                .zip(&b)
                .map(|(x, y)| (x / na as f64 - y / nb as f64) as f32)
                .collect())
        };
        match source {
            VectorSource::Atom => {
                let s = self.typical_activation(concept)?;
                Ok(self.atom(concept).iter().map(|&x| x * s).collect())
            }
            VectorSource::MeanShift => {
                mean_shift(&|i| self.active(i, concept), &format!("concept {concept}"))
            }
            VectorSource::Word(w) => mean_shift(
                &|i| {
                    t.samples[i]
                        .generated
                        .as_deref()
                        .is_some_and(|c| c.split_whitespace().any(|x| x == w))
                },
                &format!("the word {w:?}"),
            ),
            VectorSource::File(p) => read_vector(p, t.b),
        }
    }
}

/// Reads a steering vector of width `b` from a safetensors file (a `[1, b]` matrix).
pub fn read_vector(path: &Path, b: usize) -> Result<Vec<f32>> {
    let m = cox_store::read_activations(path, None)
        .with_context(|| format!("cannot read the steering vector {}", path.display()))?
        .matrix;
    if m.rows != 1 || m.cols != b {
        bail!(
            "{}: the steering vector has shape [{}, {}], expected [1, {b}] (one vector as wide as \
             the residual stream)",
            path.display(),
            m.rows,
            m.cols
        );
    }
    Ok(m.data)
}

/// Sets concept `k`'s activation to `value` in the dictionary's encoding of every edited state:
/// `z + (value − c_k(z))·u_k`, with `c(z)` the dictionary's `encode` (Semi-NMF's nonnegative
/// lasso, PCA's centred scores). K-Means and Simple have no linear reconstruction to edit.
#[derive(Debug)]
pub struct SetActivation {
    dictionary: Arc<ConceptDictionary>,
    concept: usize,
    value: f32,
}

impl SetActivation {
    pub fn new(dictionary: Arc<ConceptDictionary>, concept: usize, value: f32) -> Result<Self> {
        if !matches!(dictionary.method, Method::SemiNmf | Method::Pca) {
            bail!(
                "setting a concept's activation needs a linear dictionary (Semi-NMF or PCA), not {}",
                dictionary.method.label()
            );
        }
        if concept >= dictionary.k || !value.is_finite() {
            bail!(
                "cannot set concept {concept} to {value}: the dictionary has {} concepts and the \
                 value must be finite",
                dictionary.k
            );
        }
        Ok(Self {
            dictionary,
            concept,
            value,
        })
    }
}

impl ResidualEdit for SetActivation {
    fn apply(&self, rows: &Tensor, _positions: Range<usize>) -> cox_model::Result<Tensor> {
        let (b, n, h) = rows.dims3()?;
        let d = &self.dictionary;
        if h != d.n_features {
            return Err(cox_model::Error::Input(format!(
                "the dictionary has width {}, the residual stream {h}",
                d.n_features
            )));
        }
        let x: Vec<f32> = rows.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let samples = SamplesRef::new(&x, b * n, h)
            .map_err(|e| cox_model::Error::Input(format!("encoding the edited states: {e}")))?;
        let codes = d
            .encode(samples, Par::Seq)
            .map_err(|e| cox_model::Error::Input(format!("encoding the edited states: {e}")))?;
        let atom = &d.concepts[self.concept * h..(self.concept + 1) * h];
        let mut out = x;
        for (r, row) in out.chunks_exact_mut(h).enumerate() {
            let delta = self.value - codes[r * d.k + self.concept];
            for (v, &u) in row.iter_mut().zip(atom) {
                *v += delta * u;
            }
        }
        Tensor::from_vec(out, (b, n, h), rows.device())?
            .to_dtype(rows.dtype())
            .map_err(Into::into)
    }
}

/// What is done to the residual stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Intervention {
    /// Add `alpha` times the steering vector.
    Add { alpha: f32 },
    /// Set the concept's activation to `value`.
    SetActivation { value: f32 },
}

/// One image captioned without and with the intervention.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteeredCaption {
    /// The sample id (or the image's file stem).
    pub id: String,
    pub image: String,
    pub before: String,
    pub after: String,
}

/// `RUN/steer/<name>.json`: one `coxlmm steer` invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteerRecord {
    pub format: String,
    pub method: Method,
    pub concept: usize,
    /// The decoder block whose output is edited.
    pub block: usize,
    pub positions: Positions,
    pub source: VectorSource,
    pub intervention: Intervention,
    /// Euclidean norm of the vector added at α = 1 (absent for set-activation).
    pub vector_norm: Option<f32>,
    pub captions: Vec<SteeredCaption>,
}

impl SteerRecord {
    /// The file name in `RUN/steer/`: `<method>-c<K>-<source>-<a|set><value>-<positions>`.
    pub fn file_stem(&self) -> String {
        let what = match &self.intervention {
            Intervention::Add { alpha } => format!("a{alpha}"),
            Intervention::SetActivation { value } => format!("set{value}"),
        };
        format!(
            "{}-c{}-{}-{what}-{}",
            self.method.name(),
            self.concept,
            self.source.slug(),
            self.positions
        )
    }

    /// Share of captions that changed.
    pub fn changed(&self) -> f64 {
        if self.captions.is_empty() {
            return 0.0;
        }
        self.captions.iter().filter(|c| c.before != c.after).count() as f64
            / self.captions.len() as f64
    }
}

/// The edit an intervention makes at `block`, positions `positions`, for a prompt of
/// `prompt_len` positions.
pub fn edit_for(
    block: usize,
    positions: Positions,
    prompt_len: usize,
    edit: &Arc<dyn ResidualEdit>,
) -> Edit {
    Edit {
        block,
        positions: positions.at(prompt_len),
        edit: Arc::clone(edit),
    }
}

/// Greedy caption of one image (the run's prompt and length limit) with `edit` applied at
/// `block` / `positions` (none: the unsteered caption).
pub fn caption_with(
    model: &Model,
    settings: &RunSettings,
    image: &Path,
    steer: Option<(usize, Positions, &Arc<dyn ResidualEdit>)>,
) -> Result<String> {
    let lmm = model.lmm();
    let px = lmm
        .load_pixels(image)
        .with_context(|| format!("cannot read the image {}", image.display()))?;
    let input = lmm.prepare(DEFAULT_PROMPT, Some(&px))?;
    let capture = match steer {
        None => ResidualCapture::none(),
        Some((block, pos, e)) => {
            ResidualCapture::none().with_edits(vec![edit_for(block, pos, input.ids.len(), e)])
        }
    };
    Ok(lmm
        .generate(
            &input,
            &model.generate_params(settings.max_new_tokens, &capture),
        )?
        .text
        .trim()
        .to_string())
}

/// Captions every `(id, image)` before and after the intervention.
pub fn steer_images(
    model: &Model,
    ctx: &SteerContext,
    concept: usize,
    source: &VectorSource,
    intervention: &Intervention,
    positions: Positions,
    images: &[(String, PathBuf)],
) -> Result<SteerRecord> {
    ctx.check_concept(concept)?;
    let (edit, norm): (Arc<dyn ResidualEdit>, Option<f32>) = match intervention {
        Intervention::Add { alpha } => {
            let v = ctx.vector(concept, source)?;
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            (Arc::new(AddDirection::new(&v, *alpha)?), Some(norm))
        }
        Intervention::SetActivation { value } => (
            Arc::new(SetActivation::new(
                Arc::new(ctx.dictionary.clone()),
                concept,
                *value,
            )?),
            None,
        ),
    };
    let mut captions = Vec::with_capacity(images.len());
    for (id, path) in images {
        let before = caption_with(model, &ctx.settings, path, None)?;
        let after = caption_with(
            model,
            &ctx.settings,
            path,
            Some((ctx.block, positions, &edit)),
        )?;
        captions.push(SteeredCaption {
            id: id.clone(),
            image: path.display().to_string(),
            before,
            after,
        });
    }
    Ok(SteerRecord {
        format: "coxlmm-steer".into(),
        method: ctx.method,
        concept,
        block: ctx.block,
        positions,
        source: source.clone(),
        intervention: intervention.clone(),
        vector_norm: norm,
        captions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Two orthonormal atoms in 3-D and no sparsity: the encoding is exact, so setting an
    /// activation is visible in the re-encoded state and leaves the other concept alone.
    #[test]
    fn set_activation_replaces_the_concepts_share_of_the_state() {
        let d = ConceptDictionary {
            method: Method::SemiNmf,
            k: 2,
            n_features: 3,
            concepts: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            mean: None,
            alpha: Some(0.0),
        };
        let d = Arc::new(d);
        let edit = SetActivation::new(Arc::clone(&d), 0, 5.0).unwrap();
        let x = Tensor::from_vec(
            vec![2.0f32, 3.0, 0.5, 0.0, 1.0, -1.0],
            (1, 2, 3),
            &Device::Cpu,
        )
        .unwrap();
        let y: Vec<Vec<f32>> = edit
            .apply(&x, 0..2)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        assert_eq!(y, vec![vec![5.0, 3.0, 0.5], vec![5.0, 1.0, -1.0]]);
        let kmeans = ConceptDictionary {
            method: Method::KMeans,
            alpha: None,
            ..(*d).clone()
        };
        assert!(SetActivation::new(Arc::new(kmeans), 0, 1.0).is_err());
        assert!(SetActivation::new(d, 2, 1.0).is_err());
    }

    #[test]
    fn options_parse_as_the_command_line_spells_them() {
        assert_eq!("all".parse::<Positions>(), Ok(Positions::All));
        assert!("some".parse::<Positions>().is_err());
        assert_eq!(
            "word:red".parse::<VectorSource>(),
            Ok(VectorSource::Word("red".into()))
        );
        assert_eq!(
            "file:v.safetensors".parse::<VectorSource>().unwrap().slug(),
            "file-v"
        );
        assert!("word:".parse::<VectorSource>().is_err());
        assert_eq!(
            Positions::Generated.at(7),
            EditPositions::Generated { prompt_len: 7 }
        );
        assert!(layer_block("norm").is_err());
        assert_eq!(layer_block("2").unwrap(), 2);
    }
}
