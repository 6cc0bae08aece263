//! The caption grammar: one canonical caption per scene, varied reference captions, the closed vocabulary.
//!
//! Captions are lowercase words separated by single spaces, with no punctuation, so that a whitespace
//! WordLevel tokenizer built from [`vocabulary`] covers every caption.

use rand::Rng;

use crate::factors::{
    Background, Colour, ObjectFactors, Position, SceneFactors, Shape, Size, Texture,
};

/// The words of the grammar's templates, relations and articles (everything but factor values).
const FUNCTION_WORDS: &[&str] = &[
    "a",
    "an",
    "and",
    "there",
    "is",
    "picture",
    "of",
    "image",
    "showing",
    "with",
    "on",
    "in",
    "the",
    "background",
    "front",
    "to",
    "above",
    "below",
    "next",
    "photo",
];

/// The finite vocabulary of every caption the grammar can produce, sorted and without duplicates.
///
/// ```
/// let v = cox_synth::vocabulary();
/// assert!(v.contains(&"circle") && v.contains(&"striped") && v.contains(&"above"));
/// assert!(v.windows(2).all(|w| w[0] < w[1]));
/// ```
pub fn vocabulary() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FUNCTION_WORDS.to_vec();
    v.extend(Shape::ALL.iter().map(|x| x.word()));
    v.extend(Colour::ALL.iter().map(|x| x.word()));
    v.extend(Size::ALL.iter().map(|x| x.word()));
    v.extend(Position::ALL.iter().map(|x| x.word()));
    v.extend(Background::ALL.iter().map(|x| x.word()));
    v.extend(Texture::ALL.iter().map(|x| x.word()));
    v.sort_unstable();
    v.dedup();
    v
}

/// The objects in reading order: by column, then row.
fn reading_order(f: &SceneFactors) -> Vec<&ObjectFactors> {
    let mut objs: Vec<&ObjectFactors> = f.objects.iter().collect();
    objs.sort_by_key(|o| (o.position.column(), o.row.index()));
    objs
}

/// `a`/`an` followed by the optional size, the optional colour and the noun.
fn noun_phrase(o: &ObjectFactors, with_size: bool, with_colour: bool) -> String {
    let mut words: Vec<&str> = Vec::with_capacity(4);
    if with_size {
        words.push(o.size.word());
    }
    if with_colour {
        words.push(o.colour.word());
    }
    words.push(o.shape.word());
    let article = if words[0].starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {}", words.join(" "))
}

/// `on a <texture> <background> background`.
fn background_phrase(f: &SceneFactors, with_texture: bool) -> String {
    if with_texture {
        format!(
            "on a {} {} background",
            f.texture.word(),
            f.background.word()
        )
    } else {
        format!("on a {} background", f.background.word())
    }
}

/// The deterministic full-attribute caption, objects in reading order (left to right, then top to bottom):
/// `a <size> <colour> <shape> <position phrase>` joined by `and`, then `on a <texture> <background>
/// background`. This is the tiny model's training target.
///
/// ```
/// use cox_synth::*;
/// let f = SceneFactors {
///     image_size: 64, background: Background::Grass, texture: Texture::Striped,
///     objects: vec![ObjectFactors {
///         shape: Shape::Circle, colour: Colour::Orange, size: Size::Small, position: Position::Left,
///         row: Row::Top, centre: [10.0, 10.0], radius: 6.0,
///     }],
/// };
/// assert_eq!(canonical_caption(&f), "a small orange circle on the left on a striped grass background");
/// ```
pub fn canonical_caption(f: &SceneFactors) -> String {
    let objects: Vec<String> = reading_order(f)
        .into_iter()
        .map(|o| format!("{} {}", noun_phrase(o, true, true), o.position.phrase()))
        .collect();
    format!("{} {}", objects.join(" and "), background_phrase(f, true))
}

/// A spatial relation phrase from `a` to `b` (their cells always differ).
fn relation<R: Rng>(a: &ObjectFactors, b: &ObjectFactors, rng: &mut R) -> &'static str {
    let (ca, cb) = (a.position.column(), b.position.column());
    let (ra, rb) = (a.row.index(), b.row.index());
    if ra == rb && ca.abs_diff(cb) == 1 && rng.random_bool(0.3) {
        "next to"
    } else if ca < cb {
        "to the left of"
    } else if ca > cb {
        "to the right of"
    } else if ra < rb {
        "above"
    } else {
        "below"
    }
}

/// One caption from template `template` (1 to 4), with adjectives and orders drawn from `rng`.
fn templated_caption<R: Rng>(f: &SceneFactors, template: usize, rng: &mut R) -> String {
    // A shuffled copy of the objects, so the order of mention varies.
    let mut objs: Vec<&ObjectFactors> = f.objects.iter().collect();
    for i in (1..objs.len()).rev() {
        let j = rng.random_range(0..=i);
        objs.swap(i, j);
    }
    let np = |o: &ObjectFactors, rng: &mut R| {
        noun_phrase(o, rng.random_bool(0.5), rng.random_bool(0.75))
    };
    match template {
        // "there is a large blue square and a yellow triangle [on a sky background]"
        1 => {
            let list: Vec<String> = objs.iter().map(|o| np(o, rng)).collect();
            let mut s = format!("there is {}", list.join(" and "));
            if rng.random_bool(0.5) {
                s = format!("{s} {}", background_phrase(f, rng.random_bool(0.5)));
            }
            s
        }
        // "a picture of a red circle on the left and a star on a dotted sand background"
        2 => {
            let with_pos = rng.random_bool(0.5);
            let list: Vec<String> = objs
                .iter()
                .map(|o| {
                    let p = np(o, rng);
                    if with_pos {
                        format!("{p} {}", o.position.phrase())
                    } else {
                        p
                    }
                })
                .collect();
            let head = if rng.random_bool(0.5) {
                "a picture of"
            } else {
                "a photo of"
            };
            format!(
                "{head} {} {}",
                list.join(" and "),
                background_phrase(f, rng.random_bool(0.7))
            )
        }
        // "a red circle to the left of a small square [and a star on the right]"
        3 => {
            if objs.len() == 1 {
                let o = objs[0];
                format!(
                    "{} {} {}",
                    np(o, rng),
                    o.position.phrase(),
                    background_phrase(f, rng.random_bool(0.5))
                )
            } else {
                let rel = relation(objs[0], objs[1], rng);
                let mut s = format!("{} {rel} {}", np(objs[0], rng), np(objs[1], rng));
                for o in &objs[2..] {
                    s = format!("{s} and {} {}", np(o, rng), o.position.phrase());
                }
                s
            }
        }
        // "an image showing a white cross with a plain dark background" /
        // "a small star and a cross in front of a striped sky background"
        _ => {
            let list: Vec<String> = objs.iter().map(|o| np(o, rng)).collect();
            let with_texture = rng.random_bool(0.5);
            let bg = if with_texture {
                format!("{} {}", f.texture.word(), f.background.word())
            } else {
                f.background.word().to_string()
            };
            let article = if bg.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            if rng.random_bool(0.5) {
                format!(
                    "an image showing {} with {article} {bg} background",
                    list.join(" and ")
                )
            } else {
                format!(
                    "{} in front of {article} {bg} background",
                    list.join(" and ")
                )
            }
        }
    }
}

/// `n` reference captions: the canonical caption first, then templates 1, 2, 3, 4, 1, ... in turn, each
/// with optional adjectives (size kept with probability 0.5, colour 0.75), shuffled object order and
/// optional background; a caption equal to an earlier one is redrawn (up to 8 times).
///
/// ```
/// use rand::SeedableRng;
/// let scene = cox_synth::generate_scene(&Default::default(), 0, cox_synth::Split::Train, 0).unwrap();
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let caps = cox_synth::reference_captions(&scene.factors, 5, &mut rng);
/// assert_eq!(caps.len(), 5);
/// assert_eq!(caps[0], cox_synth::canonical_caption(&scene.factors));
/// ```
pub fn reference_captions<R: Rng>(f: &SceneFactors, n: usize, rng: &mut R) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    out.push(canonical_caption(f));
    for i in 1..n {
        let template = (i - 1) % 4 + 1;
        let mut caption = templated_caption(f, template, rng);
        for _ in 0..8 {
            if !out.contains(&caption) {
                break;
            }
            caption = templated_caption(f, template, rng);
        }
        out.push(caption);
    }
    out
}
