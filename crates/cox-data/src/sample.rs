//! One image with its reference captions, and the dataset splits.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// A dataset split. Karpathy's COCO split file has all four; `folder:` datasets use `train`, `val`
/// and `test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images.
    Train,
    /// Karpathy's "rest of val2014" (30,504 images, often merged into train).
    Restval,
    /// Validation images.
    Val,
    /// Test images.
    Test,
}

impl Split {
    /// Every split, in this order.
    pub const ALL: [Split; 4] = [Split::Train, Split::Restval, Split::Val, Split::Test];

    /// The lowercase name (`"train"`, `"restval"`, `"val"`, `"test"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Restval => "restval",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Parses a comma-separated list (`"train,restval"`); duplicates are dropped, order kept.
    ///
    /// ```
    /// use cox_data::Split;
    /// assert_eq!(Split::parse_list("train,restval").unwrap(), vec![Split::Train, Split::Restval]);
    /// assert!(Split::parse_list("dev").is_err());
    /// ```
    pub fn parse_list(s: &str) -> Result<Vec<Split>> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let split: Split = part.parse()?;
            if !out.contains(&split) {
                out.push(split);
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        Split::ALL
            .into_iter()
            .find(|sp| sp.as_str() == s)
            .ok_or_else(|| DataError::UnknownSplit {
                name: s.to_string(),
                at: None,
            })
    }
}

/// One image of a dataset with its reference captions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// A unique id within the dataset (COCO: the `cocoid`; `folder:`: the record's `id`).
    pub id: String,
    /// The image file (absolute when the dataset directory was given absolute).
    pub image_path: PathBuf,
    /// The reference captions in file order; `captions[0]` is the one the ground-truth filter reads.
    pub captions: Vec<String>,
    /// The split, when the source records one.
    pub split: Option<Split>,
    /// Every other field of the source record (COCO: `cocoid`, `filepath`, `filename`; `folder:`:
    /// whatever else the line holds), kept for provenance.
    pub extra: serde_json::Map<String, serde_json::Value>,
}
