//! Seeded, order-independent scene sampling: configuration, splits, per-scene seeds, layouts.

use std::ops::Range;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::caption::{canonical_caption, reference_captions};
use crate::error::{Result, SynthError};
use crate::factors::{
    Background, Colour, ObjectFactors, Position, Row, SceneFactors, Shape, Size, Texture,
};

/// Generation settings shared by every scene of a dataset.
///
/// # Examples
/// ```
/// let cfg = cox_synth::SynthConfig { image_size: 96, ..Default::default() };
/// cfg.validate().unwrap();
/// assert!(cox_synth::SynthConfig { max_objects: 4, ..Default::default() }.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// The image side in pixels (32 to 256; 64 by default; below 48 small stars and crosses blur).
    pub image_size: u32,
    /// The fewest objects in a scene (at least 1).
    pub min_objects: usize,
    /// The most objects in a scene (at most 3).
    pub max_objects: usize,
    /// Reference captions per scene, the canonical one first (1 to 8; 5 by default, like COCO).
    pub captions_per_scene: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            image_size: 64,
            min_objects: 1,
            max_objects: 3,
            captions_per_scene: 5,
        }
    }
}

impl SynthConfig {
    /// Checks every setting, so that invalid settings fail before any work starts.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, value: String, expected| {
            Err(SynthError::InvalidConfig {
                field,
                value,
                expected,
            })
        };
        if !(32..=256).contains(&self.image_size) {
            return bad("image_size", self.image_size.to_string(), "32..=256");
        }
        if self.min_objects < 1 || self.min_objects > self.max_objects {
            return bad(
                "min_objects",
                self.min_objects.to_string(),
                "1..=max_objects",
            );
        }
        if self.max_objects > MAX_OBJECTS {
            return bad(
                "max_objects",
                self.max_objects.to_string(),
                "min_objects..=3",
            );
        }
        if !(1..=8).contains(&self.captions_per_scene) {
            return bad(
                "captions_per_scene",
                self.captions_per_scene.to_string(),
                "1..=8",
            );
        }
        Ok(())
    }
}

/// The most objects a scene may hold (the caption grammar and the 3×3 layout are sized for it).
pub const MAX_OBJECTS: usize = 3;

/// A dataset split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// `train`
    Train,
    /// `val`
    Val,
    /// `test`
    Test,
}

impl Split {
    /// Every split, in dataset order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The split's name in ids and jsonl records.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How many scenes each split gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSizes {
    /// Training scenes.
    pub train: usize,
    /// Validation scenes.
    pub val: usize,
    /// Test scenes.
    pub test: usize,
}

impl SplitSizes {
    /// The size of `split`.
    pub fn get(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train,
            Split::Val => self.val,
            Split::Test => self.test,
        }
    }
}

/// One generated scene: its identity, ground truth and captions. The image is rendered on demand from
/// `factors` by [`render`](crate::render), a pure function, so scenes stay small.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// `"<split>-<index:06>"`, e.g. `train-000042`.
    pub id: String,
    /// The split the scene belongs to.
    pub split: Split,
    /// The scene's index inside its split.
    pub index: u64,
    /// The per-scene seed, [`scene_seed`]`(seed, split, index)`.
    pub seed: u64,
    /// The ground truth.
    pub factors: SceneFactors,
    /// The deterministic full-attribute caption (the training target); also `captions[0]`.
    pub canonical: String,
    /// The reference captions, canonical first, then varied templates.
    pub captions: Vec<String>,
}

/// The id of scene `index` of `split`.
///
/// ```
/// assert_eq!(cox_synth::scene_id(cox_synth::Split::Val, 7), "val-000007");
/// ```
pub fn scene_id(split: Split, index: u64) -> String {
    format!("{}-{index:06}", split.name())
}

/// The seed of one scene, a hash of `(seed, split, index)`: scene `i` never depends on scenes `0..i`.
///
/// ```
/// use cox_synth::{scene_seed, Split};
/// assert_eq!(scene_seed(1, Split::Train, 5), scene_seed(1, Split::Train, 5));
/// assert_ne!(scene_seed(1, Split::Train, 5), scene_seed(1, Split::Test, 5));
/// ```
pub fn scene_seed(seed: u64, split: Split, index: u64) -> u64 {
    let split_tag = match split {
        Split::Train => 0x7472_6169_6e00_0001_u64,
        Split::Val => 0x7661_6c00_0000_0002,
        Split::Test => 0x7465_7374_0000_0003,
    };
    let mut h = splitmix64(seed ^ 0x636f_786c_6d6d_0000);
    h = splitmix64(h ^ split_tag);
    splitmix64(h ^ index)
}

/// One SplitMix64 step: a fast bijective 64-bit mixer (Steele et al. 2014).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Samples one scene's factors from `rng`: independent uniform shape, colour and size per object, distinct
/// grid cells, jittered non-overlapping centres, uniform background and texture.
///
/// # Panics
/// If `cfg` is invalid (call [`SynthConfig::validate`] first).
///
/// ```
/// use rand::SeedableRng;
/// let cfg = cox_synth::SynthConfig::default();
/// let f = cox_synth::sample_factors(&cfg, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
/// assert!((1..=3).contains(&f.objects.len()));
/// ```
#[track_caller]
pub fn sample_factors<R: Rng>(cfg: &SynthConfig, rng: &mut R) -> SceneFactors {
    cfg.validate().expect("sample_factors: invalid SynthConfig");
    let s = cfg.image_size as f32;
    let n = rng.random_range(cfg.min_objects..=cfg.max_objects);

    // Distinct cells by a partial Fisher–Yates shuffle of the 9 grid cells.
    let mut cells: [usize; 9] = std::array::from_fn(|i| i);
    for i in 0..n {
        let j = rng.random_range(i..9);
        cells.swap(i, j);
    }

    // All categorical factors first, so that they never depend on how many layout attempts were needed.
    let mut objects: Vec<ObjectFactors> = cells[..n]
        .iter()
        .map(|&cell| {
            let shape = Shape::ALL[rng.random_range(0..Shape::ALL.len())];
            let colour = Colour::ALL[rng.random_range(0..Colour::ALL.len())];
            let size = Size::ALL[rng.random_range(0..Size::ALL.len())];
            let (col, row) = (cell % 3, cell / 3);
            let cell_side = s / 3.0;
            let radius = size.radius_fraction() * s;
            let base = [
                (col as f32 + 0.5) * cell_side,
                (row as f32 + 0.5) * cell_side,
            ];
            ObjectFactors {
                shape,
                colour,
                size,
                position: Position::ALL[col],
                row: Row::ALL[row],
                centre: base.map(|v| clamp_inside(v, radius, s)),
                radius,
            }
        })
        .collect();
    let background = Background::ALL[rng.random_range(0..Background::ALL.len())];
    let texture = Texture::ALL[rng.random_range(0..Texture::ALL.len())];

    // Layout by rejection sampling: every centre is jittered inside its own cell (so the position and row
    // words stay exact) and kept inside the image; a layout is accepted when all shapes are at least
    // `GAP_PX` apart (their circumscribed discs, so the outlines barely touch at worst). If no layout is
    // accepted, the unjittered cell centres already set above stay, which are always at least half a pixel
    // apart because two radii are below a third of the side.
    let cell_side = s / 3.0;
    const GAP_PX: f32 = 1.0;
    for _ in 0..MAX_LAYOUT_ATTEMPTS {
        let centres: Vec<[f32; 2]> = objects
            .iter()
            .map(|o| {
                let base = [
                    (o.position.column() as f32 + 0.5) * cell_side,
                    (o.row.index() as f32 + 0.5) * cell_side,
                ];
                let jitter = (cell_side / 2.0 - 0.85 * o.radius).clamp(0.0, cell_side / 2.0 - 0.5);
                base.map(|v| clamp_inside(v + rng.random_range(-1.0..=1.0) * jitter, o.radius, s))
            })
            .collect();
        let apart = (0..n).all(|i| {
            (i + 1..n).all(|j| {
                let (a, b) = (centres[i], centres[j]);
                let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
                d >= objects[i].radius + objects[j].radius + GAP_PX
            })
        });
        if apart {
            for (o, c) in objects.iter_mut().zip(centres) {
                o.centre = c;
            }
            break;
        }
    }
    SceneFactors {
        image_size: cfg.image_size,
        background,
        texture,
        objects,
    }
}

/// Whole-layout rejection-sampling attempts before falling back to the unjittered cell centres.
const MAX_LAYOUT_ATTEMPTS: usize = 200;

/// Keeps a centre far enough from the border that the object stays inside (its outline may lose half a
/// pixel at the border).
fn clamp_inside(v: f32, radius: f32, side: f32) -> f32 {
    let lo = (radius + 0.5).min(side / 2.0);
    v.clamp(lo, side - lo)
}

/// Generates scene `index` of `split`: factors from stream 0 and captions from stream 1 of a ChaCha8 RNG
/// seeded with [`scene_seed`].
///
/// ```
/// use cox_synth::{generate_scene, SynthConfig, Split};
/// let a = generate_scene(&SynthConfig::default(), 7, Split::Train, 3).unwrap();
/// assert_eq!(a.id, "train-000003");
/// assert_eq!(a.captions[0], a.canonical);
/// ```
pub fn generate_scene(cfg: &SynthConfig, seed: u64, split: Split, index: u64) -> Result<Scene> {
    cfg.validate()?;
    let scene_seed = scene_seed(seed, split, index);
    let mut rng = ChaCha8Rng::seed_from_u64(scene_seed);
    let factors = sample_factors(cfg, &mut rng);
    let mut caption_rng = ChaCha8Rng::seed_from_u64(scene_seed);
    caption_rng.set_stream(1);
    let canonical = canonical_caption(&factors);
    let captions = reference_captions(&factors, cfg.captions_per_scene, &mut caption_rng);
    Ok(Scene {
        id: scene_id(split, index),
        split,
        index,
        seed: scene_seed,
        factors,
        canonical,
        captions,
    })
}

/// Generates the scenes with indices in `range` of `split`, in parallel (rayon); a shard of a split.
///
/// ```
/// use cox_synth::{generate_range, generate_scene, SynthConfig, Split};
/// let cfg = SynthConfig::default();
/// let shard = generate_range(&cfg, 1, Split::Test, 10..12).unwrap();
/// assert_eq!(shard[1], generate_scene(&cfg, 1, Split::Test, 11).unwrap());
/// ```
pub fn generate_range(
    cfg: &SynthConfig,
    seed: u64,
    split: Split,
    range: Range<u64>,
) -> Result<Vec<Scene>> {
    cfg.validate()?;
    range
        .into_par_iter()
        .map(|i| generate_scene(cfg, seed, split, i))
        .collect()
}

/// Generates all `n` scenes of `split`.
///
/// ```
/// let scenes = cox_synth::generate_split(&Default::default(), 1, cox_synth::Split::Val, 4).unwrap();
/// assert_eq!(scenes.len(), 4);
/// ```
pub fn generate_split(cfg: &SynthConfig, seed: u64, split: Split, n: usize) -> Result<Vec<Scene>> {
    generate_range(cfg, seed, split, 0..n as u64)
}

/// Generates train, then val, then test scenes with the given sizes.
///
/// ```
/// use cox_synth::{generate_dataset, SplitSizes};
/// let all = generate_dataset(&Default::default(), 1, SplitSizes { train: 3, val: 1, test: 2 }).unwrap();
/// assert_eq!(all.len(), 6);
/// assert_eq!(all[5].id, "test-000001");
/// ```
pub fn generate_dataset(cfg: &SynthConfig, seed: u64, sizes: SplitSizes) -> Result<Vec<Scene>> {
    let mut out = Vec::with_capacity(sizes.train + sizes.val + sizes.test);
    for split in Split::ALL {
        out.extend(generate_split(cfg, seed, split, sizes.get(split))?);
    }
    Ok(out)
}
