//! Local explanations of new images with a finished run's dictionary: caption the image, take the
//! representation predicting the token of interest, project it onto the concepts (`encode`) and
//! list the top concepts with their words and example images (`docs/method.md` §3.3).

use std::path::Path;

use anyhow::{Context, Result};
use cox_decomp::ConceptDictionary;
use cox_ground_visual::most_activating;
use cox_hook::{
    parse_layers, select_generation, GtFilter, PositionRule, SelectOptions, TokenOfInterest,
};
use cox_model::ResidualCapture;
use cox_snmf::{Par, SamplesRef};
use serde::{Deserialize, Serialize};

use crate::evaluate::top_concepts;
use crate::extract::DEFAULT_PROMPT;
use crate::run_folder::{concept_dictionary, explanation_id};
use crate::{Grounding, Model, RunFolder, RunSettings};

/// One explained image, kept in `RUN/explain/<id>.json` (`RunFolder::explanation_file`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Explanation {
    pub image: String,
    /// [`explanation_id`] of the image (the bare file stem in files written before it was unique).
    pub id: String,
    pub generated: String,
    pub token_generated: bool,
    /// `(concept, activation)`, highest first.
    pub concepts: Vec<(usize, f32)>,
    pub thumbnail: Option<String>,
}

/// A concept of an explanation with what grounds it.
#[derive(Clone, Debug)]
pub struct ExplainedConcept {
    pub concept: usize,
    pub activation: f32,
    pub words: Vec<String>,
    /// Ids of the concept's most-activating training samples.
    pub examples: Vec<String>,
}

/// An explanation with the grounding of its concepts.
#[derive(Clone, Debug)]
pub struct Explained {
    pub explanation: Explanation,
    pub concepts: Vec<ExplainedConcept>,
}

/// What explaining needs from a finished run: its settings, the primary method's dictionary and
/// words, and the most-activating training samples of each concept.
pub struct ExplainContext {
    pub settings: RunSettings,
    pub dictionary: ConceptDictionary,
    pub grounding: Grounding,
    /// Per concept, the ids of its most-activating training samples.
    pub examples: Vec<Vec<String>>,
}

impl ExplainContext {
    /// Reads a finished run.
    pub fn load(folder: &RunFolder) -> Result<Self> {
        let settings = folder.read_settings()?;
        let method = settings.primary_method();
        let d = folder.read_dictionary(method)?;
        let dictionary = concept_dictionary(&d, method);
        let grounding = folder.read_grounding(method)?;
        let train = folder.load_split(&settings.train_split, &settings.layer)?;
        let mas = most_activating(&d.activations.data, train.m, dictionary.k, settings.n_mas)?;
        let examples = mas
            .iter()
            .map(|c| {
                c.iter()
                    .map(|a| train.samples[a.sample].id.clone())
                    .collect()
            })
            .collect();
        Ok(Self {
            settings,
            dictionary,
            grounding,
            examples,
        })
    }
}

/// Explains one image with its `top` concepts.
pub fn explain(model: &Model, ctx: &ExplainContext, image: &Path, top: usize) -> Result<Explained> {
    let s = &ctx.settings;
    let lmm = model.lmm();
    let px = lmm
        .load_pixels(image)
        .with_context(|| format!("cannot read the image {}", image.display()))?;
    let layers = parse_layers(&s.layer)?;
    let capture = ResidualCapture::new(layers.iter().copied());
    let toi = TokenOfInterest::new(lmm.tokenizer(), &s.token)
        .with_context(|| format!("token of interest {:?}", s.token))?;
    let opts = SelectOptions {
        gt: GtFilter::None,
        position: PositionRule::Predicting,
    };
    let input = lmm.prepare(DEFAULT_PROMPT, Some(&px))?;
    let generation = lmm.generate(&input, &model.generate_params(s.max_new_tokens, &capture))?;
    let sel = select_generation(&toi, &[], &generation, &opts)?;
    let mut e = Explanation {
        image: image.display().to_string(),
        id: explanation_id(image),
        generated: generation.text.trim().to_string(),
        token_generated: sel.kept.is_some(),
        concepts: Vec::new(),
        thumbnail: None,
    };
    let mut concepts = Vec::new();
    if let Some(kept) = sel.kept {
        let v = &kept.vectors[0];
        let codes = ctx
            .dictionary
            .encode(SamplesRef::new(v, 1, v.len())?, Par::Seq)?;
        for c in top_concepts(&codes, top.min(ctx.dictionary.k)) {
            concepts.push(ExplainedConcept {
                concept: c,
                activation: codes[c],
                words: ctx.grounding.words[c].words.clone(),
                examples: ctx.examples[c].clone(),
            });
        }
        e.concepts = concepts.iter().map(|c| (c.concept, c.activation)).collect();
    }
    Ok(Explained {
        explanation: e,
        concepts,
    })
}
