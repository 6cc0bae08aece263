//! Image–caption datasets for CoX-LMM: reading them, and choosing deterministically which samples a
//! run (or one shard of a job array) processes.
//!
//! `cox-data` owns the dataset formats — COCO 2014 with Karpathy's split file
//! (`dataset_coco.json` + `train2014/`, `val2014/`) and the generic `folder:` format
//! (`DIR/captions.jsonl` + images, which `cox-synth` writes) — and turns them into [`Sample`]s in
//! file order; the [`DataSource`] spec parser (`coco:DIR`, `coco:DIR,images=ROOT`, `folder:DIR`);
//! [`Subset`] (seeded subsampling, `--limit`, `--shard I/N`); reading a job array's shard from the
//! environment ([`shard_from_env`], for the CLI only); and the COCO layout check behind
//! `cargo xtask prep-coco`. Only this crate's readers touch dataset files, and they never open
//! images (the model's processor decodes them).
//!
//! It must never: depend on `cox-synth` or any crate downstream of the dataset (models, hooks,
//! stores), decode images, download anything, or know about command lines.
//!
//! ```
//! use cox_data::{DataSource, Shard, Split, Subset};
//! # fn main() -> cox_data::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::create_dir(dir.path().join("images")).unwrap();
//! let lines: String = (0..5)
//!     .map(|i| format!(r#"{{"image": "images/{i}.png", "captions": ["a dog"], "id": "s{i}", "split": "train"}}"#) + "\n")
//!     .collect();
//! std::fs::write(dir.path().join("captions.jsonl"), lines).unwrap();
//!
//! let source: DataSource = format!("folder:{}", dir.path().display()).parse()?;
//! let samples = source.load(&[Split::Train])?;
//! let subset = Subset { shard: Some("1/2".parse()?), ..Default::default() };
//! let mine = subset.apply(samples);
//! assert_eq!(mine.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["s2", "s3", "s4"]);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod coco;
pub mod env;
pub mod error;
pub mod folder;
pub mod layout;
pub mod sample;
pub mod source;
pub mod subset;

pub use env::{shard_from_env, shard_from_vars};
pub use error::{DataError, Result};
pub use folder::{read_folder, read_folder_with, LoadOptions};
pub use layout::{check_coco_layout, check_coco_layout_with, CocoLayoutReport};
pub use sample::{Sample, Split};
pub use source::DataSource;
pub use subset::{Shard, Subsample, Subset};
