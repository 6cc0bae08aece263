//! Training and evaluating the project's own LLaVA-1.5-architecture captioner on the synthetic
//! world. No vision-language weights exist on our machines, so `cox-train` trains a tiny model
//! (CLIP vision tower, 2-layer GELU projector, Llama decoder — the llava-hf on-disk format, loaded
//! by `cox_model::Llava::load` with no special case) to emit `cox_synth`'s canonical caption from
//! the rendered scene: teacher forcing with cross-entropy on the answer tokens, AdamW with warmup
//! and cosine decay, fresh seeded scenes every step, each step's batch split between
//! data-parallel worker threads. An optional first stage ([`pretrain`]) stands in for CLIP's
//! pretraining: the tower learns each layout cell's attributes through temporary heads, and the
//! captioning stage can then keep it frozen, as LLaVA-1.5 does. [`evaluate`] greedily captions held-out test
//! scenes and scores every attribute by parsing the caption with the canonical grammar. It owns
//! the training recipe and the checkpoint writer; it never defines the world (cox-synth does) or
//! the network (cox-model does), and it does no command-line parsing (xtask does).
//!
//! ```no_run
//! use cox_train::{evaluate, TrainConfig, Trainer};
//! # fn main() -> cox_train::Result<()> {
//! let dir = std::path::Path::new("tiny-llava-synth");
//! let cfg = TrainConfig { steps: 2000, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(dir, &cfg)?;
//! let report = trainer.train(&cfg)?;
//! let llava = cox_model::Llava::load("tiny-llava-synth", &Default::default())?;
//! let scores = evaluate(&llava, 0, 100)?;
//! println!("final loss {}, shape accuracy {}", report.final_loss, scores.shape);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod data;
mod error;
mod eval;
pub mod optim;
pub mod pretrain;
mod schedule;
pub mod smol;
mod train;

pub use data::{example_ids, make_batch, model_config, scene_pixels, Batch, PROMPT};
pub use error::{Result, TrainError};
pub use eval::{
    caption_scene, evaluate, evaluate_world, evaluate_world_with, parse_caption, EvalReport,
    ParsedCaption, ParsedObject,
};
pub use schedule::lr_at;
pub use train::{write_curve, write_training_note, LossPoint, TrainConfig, TrainReport, Trainer};
