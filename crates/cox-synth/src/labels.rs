//! Per-sample factor labels for metrics: which factor values the objects behind a noun carry.

use crate::error::{Result, SynthError};
use crate::factors::{FactorKind, ObjectFactors, SceneFactors, Shape};

impl Shape {
    /// The shape whose noun is `word`, if any.
    ///
    /// ```
    /// assert_eq!(cox_synth::Shape::from_word("star"), Some(cox_synth::Shape::Star));
    /// assert_eq!(cox_synth::Shape::from_word("dog"), None);
    /// ```
    pub fn from_word(word: &str) -> Option<Shape> {
        Shape::ALL.iter().copied().find(|s| s.word() == word)
    }
}

/// The `key=value` label of one factor kind of one object in its scene.
fn label(kind: FactorKind, o: &ObjectFactors, f: &SceneFactors) -> String {
    let value = match kind {
        FactorKind::Shape => o.shape.word(),
        FactorKind::Colour => o.colour.word(),
        FactorKind::Size => o.size.word(),
        FactorKind::Position => o.position.word(),
        FactorKind::Row => o.row.word(),
        FactorKind::Background => f.background.word(),
        FactorKind::Texture => f.texture.word(),
    };
    format!("{}={value}", kind.key())
}

/// The labels of one scene for `noun`: the `kinds` factor values of every object whose shape is `noun`
/// (e.g. `colour=red`, `size=small`, `position=left`, `background=grass`), sorted and deduplicated; empty
/// when the scene has no such object. Scenes with two objects of that shape carry both objects' values.
///
/// ```
/// use cox_synth::*;
/// let scene = generate_scene(&Default::default(), 0, Split::Train, 0).unwrap();
/// let noun = scene.factors.objects[0].shape.word();
/// let labels = scene_labels(&scene.factors, noun, FactorKind::DEFAULT).unwrap();
/// assert!(labels.contains(&format!("colour={}", scene.factors.objects[0].colour)));
/// assert!(scene_labels(&scene.factors, "dog", FactorKind::DEFAULT).is_err());
/// ```
pub fn scene_labels(f: &SceneFactors, noun: &str, kinds: &[FactorKind]) -> Result<Vec<String>> {
    let shape = Shape::from_word(noun).ok_or_else(|| SynthError::UnknownNoun(noun.to_string()))?;
    let mut out: Vec<String> = f
        .objects
        .iter()
        .filter(|o| o.shape == shape)
        .flat_map(|o| kinds.iter().map(move |&k| label(k, o, f)))
        .collect();
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// [`scene_labels`] for every scene, in order: the per-sample labels that
/// `cox_metrics::recovery_auc` takes.
///
/// ```
/// use cox_synth::*;
/// let scenes = generate_split(&Default::default(), 0, Split::Train, 8).unwrap();
/// let labels = factor_labels(scenes.iter().map(|s| &s.factors), "circle", FactorKind::DEFAULT).unwrap();
/// assert_eq!(labels.len(), 8);
/// ```
pub fn factor_labels<'a>(
    scenes: impl IntoIterator<Item = &'a SceneFactors>,
    noun: &str,
    kinds: &[FactorKind],
) -> Result<Vec<Vec<String>>> {
    scenes
        .into_iter()
        .map(|f| scene_labels(f, noun, kinds))
        .collect()
}
