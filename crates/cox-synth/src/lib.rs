//! The procedural world that stands in for COCO: seeded scenes of one to three outlined shapes on a
//! textured background, with known, independent factors per object (shape, colour, size, position, row)
//! and per scene (background, texture), a caption grammar over a closed vocabulary (one canonical caption,
//! the training target, plus varied reference captions), per-sample factor labels for metrics, and a
//! writer of the `folder:` dataset format. It owns the world's definition and nothing downstream: it never
//! loads a model, never touches activations, and does IO only in [`io`]; everything else is a pure,
//! deterministic function of `(seed, split, index)`, so scenes can be generated in parallel and sharded.
//!
//! ```
//! use cox_synth::{generate_dataset, render, vocabulary, SplitSizes, SynthConfig};
//! let scenes = generate_dataset(&SynthConfig::default(), 42, SplitSizes { train: 4, val: 1, test: 1 })?;
//! let image = render(&scenes[0].factors);
//! assert_eq!(image.width(), 64);
//! let vocab = vocabulary();
//! assert!(scenes[0].canonical.split(' ').all(|w| vocab.contains(&w)));
//! # Ok::<(), cox_synth::SynthError>(())
//! ```

mod caption;
mod error;
mod factors;
pub mod io;
mod labels;
mod render;
mod scene;

pub use caption::{canonical_caption, reference_captions, vocabulary};
pub use error::{Result, SynthError};
pub use factors::{
    Background, Colour, FactorKind, ObjectFactors, Position, Row, SceneFactors, Shape, Size,
    Texture,
};
pub use labels::{factor_labels, scene_labels};
pub use render::{encode_png, render, OUTLINE_RGB};
pub use scene::{
    generate_dataset, generate_range, generate_scene, generate_split, sample_factors, scene_id,
    scene_seed, Scene, Split, SplitSizes, SynthConfig, MAX_OBJECTS,
};

/// The committed checkpoint of the tiny LLaVA trained on this world (`cargo xtask train-synth`),
/// the default model of `coxlmm demo`: `crates/cox-synth/assets/tiny-llava-synth` of the source
/// checkout this crate was built from.
///
/// ```
/// assert!(cox_synth::default_model_dir().ends_with("assets/tiny-llava-synth"));
/// ```
pub fn default_model_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tiny-llava-synth")
}
