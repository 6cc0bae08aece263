//! Visual grounding of CoX-LMM concepts (docs/method.md §4.2): each concept `k` is shown by its
//! most-activating samples (MAS), the `N_MAS` training samples with the largest activation `v_k`.
//! The crate owns the selection maths ([`most_activating`], pure over the `M × K` activation slice),
//! the image side of the grounding (deterministic [`thumbnail`]s, [`grid`]s and byte-stable PNG
//! encoding with [`encode_png`]) and the writer ([`write_visual_grounding`]) that turns MAS lists
//! and the samples' image paths into `thumbs/<id>.png`, `concept-NNN-grid.png` and
//! `visual_grounding.json`. It is the visual-grounding edge, so it reads images and writes files,
//! but only there: the selection never does IO. A missing or corrupt image is recorded and drawn as
//! a placeholder, never an abort. The crate knows nothing about models, datasets, HTML or the CLI.
//!
//! ```
//! use cox_ground_visual::most_activating;
//! // Three samples × two concepts, sample-major.
//! let acts = [0.1, 2.0, //
//!             0.9, 0.0, //
//!             0.5, 1.0];
//! let mas = most_activating(&acts, 3, 2, 2)?;
//! assert_eq!(mas[0].iter().map(|m| m.sample).collect::<Vec<_>>(), [1, 2]);
//! assert_eq!(mas[1].iter().map(|m| m.sample).collect::<Vec<_>>(), [0, 2]);
//! # Ok::<(), cox_ground_visual::VisualError>(())
//! ```

mod error;
mod imaging;
mod mas;
mod writer;

pub use error::{Result, VisualError};
pub use imaging::{encode_png, grid, placeholder, thumbnail, write_png};
pub use mas::{most_activating, Mas, DEFAULT_N_MAS};
pub use writer::{
    sanitise_id, write_visual_grounding, ConceptImages, ImageProblem, MasImage, SampleImage,
    VisualGrounding, VisualOutput, VisualParams, VISUAL_GROUNDING_FILE,
};
