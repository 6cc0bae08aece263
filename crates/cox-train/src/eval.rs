//! Evaluation: greedy captions of held-out scenes parsed with the canonical grammar and scored
//! attribute by attribute.

use candle_core::Tensor;
use cox_model::{Llava, ResidualCapture};
use cox_synth::{canonical_caption, SceneFactors, Split, SynthConfig};
use serde::Serialize;

use crate::data::{scene_pixels, PROMPT};
use crate::error::Result;

/// One object of a parsed caption (words as they appear; `None` when the slot was malformed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ParsedObject {
    /// The size word.
    pub size: Option<String>,
    /// The colour word.
    pub colour: Option<String>,
    /// The shape word.
    pub shape: Option<String>,
    /// `left`, `centre` or `right`.
    pub position: Option<String>,
}

/// A caption parsed with the canonical grammar.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ParsedCaption {
    /// The objects, in caption order.
    pub objects: Vec<ParsedObject>,
    /// The texture word.
    pub texture: Option<String>,
    /// The background word.
    pub background: Option<String>,
}

/// Parses `a <size> <colour> <shape> <on the left|in the centre|on the right>` joined by `and`,
/// then `on a <texture> <background> background`. Malformed parts become `None` fields rather
/// than errors, so a partly right caption still scores its right parts.
///
/// ```
/// let p = cox_train::parse_caption(
///     "a small red circle on the left and a large blue star in the centre on a dotted sky background");
/// assert_eq!(p.objects.len(), 2);
/// assert_eq!(p.objects[1].shape.as_deref(), Some("star"));
/// assert_eq!(p.objects[1].position.as_deref(), Some("centre"));
/// assert_eq!(p.texture.as_deref(), Some("dotted"));
/// assert_eq!(p.background.as_deref(), Some("sky"));
/// ```
pub fn parse_caption(caption: &str) -> ParsedCaption {
    let words: Vec<&str> = caption.split_whitespace().collect();
    let mut out = ParsedCaption::default();
    // The background phrase is the last five words.
    let mut body = &words[..];
    if words.len() >= 5 {
        let tail = &words[words.len() - 5..];
        if tail[0] == "on" && tail[1] == "a" && tail[4] == "background" {
            out.texture = Some(tail[2].to_string());
            out.background = Some(tail[3].to_string());
            body = &words[..words.len() - 5];
        }
    }
    for part in body.split(|w| *w == "and") {
        let mut o = ParsedObject::default();
        if part.len() == 7 && matches!(part[0], "a" | "an") {
            o.size = Some(part[1].to_string());
            o.colour = Some(part[2].to_string());
            o.shape = Some(part[3].to_string());
            o.position = match (part[4], part[5], part[6]) {
                ("on", "the", w @ ("left" | "right")) | ("in", "the", w @ "centre") => {
                    Some(w.to_string())
                }
                _ => None,
            };
        } else if part.len() >= 4 {
            // Best effort for a malformed object: the article and the three attribute slots.
            o.size = Some(part[1].to_string());
            o.colour = Some(part[2].to_string());
            o.shape = Some(part[3].to_string());
        }
        if !part.is_empty() {
            out.objects.push(o);
        }
    }
    out
}

/// Accuracy figures over a set of scenes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvalReport {
    /// Scenes captioned.
    pub scenes: usize,
    /// Ground-truth objects (the denominator of the per-object figures).
    pub objects: usize,
    /// Fraction of objects whose size word is right (objects matched by order).
    pub size: f64,
    /// Fraction of objects whose colour is right.
    pub colour: f64,
    /// Fraction of objects whose shape is right.
    pub shape: f64,
    /// Fraction of objects whose position is right.
    pub position: f64,
    /// Fraction of scenes whose object count is right.
    pub object_count: f64,
    /// Fraction of scenes whose background is right.
    pub background: f64,
    /// Fraction of scenes whose texture is right.
    pub texture: f64,
    /// Fraction of captions equal to the canonical caption.
    pub exact_match: f64,
    /// Fraction of generations that ended with EOS.
    pub stopped_at_eos: f64,
    /// Seconds spent.
    pub seconds: f64,
    /// A few (truth, generated) pairs that differ.
    pub mistakes: Vec<(String, String)>,
}

impl EvalReport {
    /// The mean of the four per-object and two per-scene attribute accuracies.
    pub fn mean_attribute_accuracy(&self) -> f64 {
        (self.size + self.colour + self.shape + self.position + self.background + self.texture)
            / 6.0
    }
}

/// The objects in the canonical caption's order: by column, then row.
fn reading_order(f: &SceneFactors) -> Vec<&cox_synth::ObjectFactors> {
    let mut objs: Vec<_> = f.objects.iter().collect();
    objs.sort_by_key(|o| (o.position.column(), o.row.index()));
    objs
}

/// Running counts behind an [`EvalReport`].
#[derive(Debug, Default)]
pub(crate) struct Tally {
    scenes: usize,
    objects: usize,
    size: usize,
    colour: usize,
    shape: usize,
    position: usize,
    count: usize,
    background: usize,
    texture: usize,
    exact: usize,
    eos: usize,
    mistakes: Vec<(String, String)>,
}

impl Tally {
    pub(crate) fn add(&mut self, truth: &SceneFactors, generated: &str, eos: bool) {
        let canon = canonical_caption(truth);
        let p = parse_caption(generated);
        let truth_objs = reading_order(truth);
        self.scenes += 1;
        self.eos += usize::from(eos);
        self.exact += usize::from(generated == canon);
        if generated != canon && self.mistakes.len() < 10 {
            self.mistakes.push((canon.clone(), generated.to_string()));
        }
        self.count += usize::from(p.objects.len() == truth_objs.len());
        let eq = |a: &Option<String>, b: &str| a.as_deref() == Some(b);
        self.background += usize::from(eq(&p.background, truth.background.word()));
        self.texture += usize::from(eq(&p.texture, truth.texture.word()));
        for (i, t) in truth_objs.iter().enumerate() {
            self.objects += 1;
            let Some(g) = p.objects.get(i) else { continue };
            self.size += usize::from(eq(&g.size, t.size.word()));
            self.colour += usize::from(eq(&g.colour, t.colour.word()));
            self.shape += usize::from(eq(&g.shape, t.shape.word()));
            self.position += usize::from(eq(&g.position, t.position.word()));
        }
    }

    pub(crate) fn report(self, seconds: f64) -> EvalReport {
        let f = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        EvalReport {
            scenes: self.scenes,
            objects: self.objects,
            size: f(self.size, self.objects),
            colour: f(self.colour, self.objects),
            shape: f(self.shape, self.objects),
            position: f(self.position, self.objects),
            object_count: f(self.count, self.scenes),
            background: f(self.background, self.scenes),
            texture: f(self.texture, self.scenes),
            exact_match: f(self.exact, self.scenes),
            stopped_at_eos: f(self.eos, self.scenes),
            seconds,
            mistakes: self.mistakes,
        }
    }
}

/// Greedy caption of one scene's factors (at most `max_new_tokens` tokens) and whether it ended
/// with EOS.
pub fn caption_scene(
    llava: &Llava,
    factors: &SceneFactors,
    max_new_tokens: usize,
) -> Result<(String, bool)> {
    let scene = cox_synth::Scene {
        id: String::new(),
        split: Split::Test,
        index: 0,
        seed: 0,
        factors: factors.clone(),
        canonical: String::new(),
        captions: Vec::new(),
    };
    let px = scene_pixels(&llava.processor, &scene)?;
    let side = ((px.len() / 3) as f64).sqrt() as usize;
    let pixels = Tensor::from_vec(px, (1, 3, side, side), llava.model.device())?;
    let input = llava.prepare(PROMPT, Some(&pixels))?;
    let g = llava.generate(&input, max_new_tokens, &ResidualCapture::none())?;
    Ok((g.text, g.stopped_at_eos))
}

/// Captions test-split scenes `0..n` of world seed `seed` greedily and scores them.
pub fn evaluate(llava: &Llava, seed: u64, n: usize) -> Result<EvalReport> {
    evaluate_world(llava, &SynthConfig::default(), seed, n)
}

/// [`evaluate`] on the scenes of world configuration `world` (e.g. another image side).
pub fn evaluate_world(
    llava: &Llava,
    world: &SynthConfig,
    seed: u64,
    n: usize,
) -> Result<EvalReport> {
    evaluate_world_with(llava, world, seed, n, &mut |_| {})
}

/// [`evaluate_world`], calling `on_scene(done)` after each captioned scene (for a progress bar).
pub fn evaluate_world_with(
    llava: &Llava,
    world: &SynthConfig,
    seed: u64,
    n: usize,
    on_scene: &mut dyn FnMut(usize),
) -> Result<EvalReport> {
    let start = std::time::Instant::now();
    let scenes = cox_synth::generate_split(world, seed, Split::Test, n)?;
    let mut tally = Tally::default();
    for (i, s) in scenes.iter().enumerate() {
        let (text, eos) = caption_scene(llava, &s.factors, 48)?;
        tally.add(&s.factors, &text, eos);
        if (i + 1) % 100 == 0 {
            tracing::info!(done = i + 1, n, "evaluated");
        }
        on_scene(i + 1);
    }
    Ok(tally.report(start.elapsed().as_secs_f64()))
}
