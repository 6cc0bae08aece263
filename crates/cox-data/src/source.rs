//! `coco:DIR` / `folder:DIR` data-source specs and loading them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::coco::{check_image_dirs, read_karpathy, KARPATHY_FILE};
use crate::error::{DataError, Result};
use crate::folder::{read_folder_with, LoadOptions};
use crate::sample::{Sample, Split};

/// Where samples come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// COCO 2014 with Karpathy's splits: `dir/dataset_coco.json`, images under
    /// `image_root/train2014` and `image_root/val2014` (`image_root` defaults to `dir`).
    Coco {
        /// The folder holding `dataset_coco.json`.
        dir: PathBuf,
        /// The folder holding `train2014/` and `val2014/`, when not `dir`.
        image_root: Option<PathBuf>,
    },
    /// A `folder:` dataset: `dir/captions.jsonl` and the images it names.
    Folder {
        /// The dataset folder.
        dir: PathBuf,
    },
}

impl DataSource {
    /// The folder holding COCO's `train2014/` and `val2014/` (`None` for `folder:`).
    pub fn image_root(&self) -> Option<&Path> {
        match self {
            DataSource::Coco { dir, image_root } => Some(image_root.as_deref().unwrap_or(dir)),
            DataSource::Folder { .. } => None,
        }
    }

    /// Reads every sample of the given splits (all splits when `splits` is empty), in file order.
    ///
    /// # Errors
    /// Missing or invalid files ([`DataError::MissingFile`], [`DataError::Json`] with the line),
    /// [`DataError::UnknownSplit`], [`DataError::MissingImageRoot`] when a folder the selected
    /// images live in is absent, and [`DataError::EmptyDataset`] when nothing is left.
    pub fn load(&self, splits: &[Split]) -> Result<Vec<Sample>> {
        self.load_with(splits, &LoadOptions::default())
    }

    /// [`Self::load`] with options ([`LoadOptions::allow_outside_paths`] for `folder:`).
    ///
    /// # Errors
    /// As [`Self::load`], plus [`DataError::OutsidePath`] and [`DataError::NotUtf8`] for `folder:`.
    pub fn load_with(&self, splits: &[Split], opts: &LoadOptions) -> Result<Vec<Sample>> {
        let keep = |s: &Sample| splits.is_empty() || s.split.is_some_and(|sp| splits.contains(&sp));
        let samples = match self {
            DataSource::Coco { dir, .. } => {
                let root = self.image_root().expect("coco has an image root");
                let entries: Vec<_> = read_karpathy(&dir.join(KARPATHY_FILE), root)?
                    .into_iter()
                    .filter(|e| keep(&e.sample))
                    .collect();
                if !entries.is_empty() && !root.is_dir() {
                    return Err(DataError::MissingImageRoot {
                        path: root.to_path_buf(),
                        needed_by: format!("every image of {self}"),
                    });
                }
                check_image_dirs(&entries, root)?;
                entries.into_iter().map(|e| e.sample).collect::<Vec<_>>()
            }
            DataSource::Folder { dir } => read_folder_with(dir, opts)?
                .into_iter()
                .filter(keep)
                .collect(),
        };
        if samples.is_empty() {
            return Err(DataError::EmptyDataset {
                source_desc: self.to_string(),
                splits: splits.iter().map(|s| s.to_string()).collect(),
            });
        }
        Ok(samples)
    }
}

impl FromStr for DataSource {
    type Err = DataError;

    /// Parses `coco:DIR`, `coco:DIR,images=ROOT` or `folder:DIR`.
    ///
    /// ```
    /// use cox_data::DataSource;
    /// let s: DataSource = "coco:/data/coco,images=/scratch/coco".parse().unwrap();
    /// assert_eq!(s.image_root().unwrap(), std::path::Path::new("/scratch/coco"));
    /// assert!("folder:out/synth".parse::<DataSource>().is_ok());
    /// assert!("imagenet:/x".parse::<DataSource>().is_err());
    /// ```
    fn from_str(spec: &str) -> Result<Self> {
        let invalid = |msg: &str| DataError::InvalidSource {
            spec: spec.to_string(),
            msg: msg.to_string(),
        };
        let (kind, rest) = spec
            .split_once(':')
            .ok_or_else(|| invalid("expected coco:DIR or folder:DIR"))?;
        match kind {
            "coco" => {
                let (dir, image_root) = match rest.rsplit_once(",images=") {
                    Some((dir, root)) if !root.is_empty() => (dir, Some(PathBuf::from(root))),
                    Some(_) => return Err(invalid("`images=` needs a folder")),
                    None => (rest, None),
                };
                if dir.is_empty() {
                    return Err(invalid("coco: needs a directory"));
                }
                Ok(DataSource::Coco {
                    dir: dir.into(),
                    image_root,
                })
            }
            "folder" if !rest.is_empty() => Ok(DataSource::Folder { dir: rest.into() }),
            "folder" => Err(invalid("folder: needs a directory")),
            _ => Err(invalid(&format!(
                "unknown kind {kind:?}; expected coco:DIR or folder:DIR"
            ))),
        }
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Coco {
                dir,
                image_root: None,
            } => write!(f, "coco:{}", dir.display()),
            DataSource::Coco {
                dir,
                image_root: Some(root),
            } => write!(f, "coco:{},images={}", dir.display(), root.display()),
            DataSource::Folder { dir } => write!(f, "folder:{}", dir.display()),
        }
    }
}
