//! COCO with Karpathy's split file (`dataset_coco.json`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{io_err, DataError, Result};
use crate::sample::{Sample, Split};

/// The name of Karpathy's split file inside a `coco:` directory.
pub const KARPATHY_FILE: &str = "dataset_coco.json";

/// The image folders a full COCO 2014 layout has (the `filepath` values of the split file).
pub const IMAGE_DIRS: [&str; 2] = ["train2014", "val2014"];

#[derive(Deserialize)]
struct KarpathyFile {
    images: Vec<KarpathyImage>,
}

#[derive(Deserialize)]
struct KarpathyImage {
    filepath: String,
    filename: String,
    split: String,
    cocoid: u64,
    sentences: Vec<KarpathySentence>,
    #[serde(default)]
    imgid: Option<u64>,
}

#[derive(Deserialize)]
struct KarpathySentence {
    raw: String,
}

/// One image entry of the split file, before images are located.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CocoEntry {
    pub filepath: String,
    pub sample: Sample,
}

/// Reads and parses `json` (Karpathy's split file), resolving image paths under `image_root`
/// (`image_root/filepath/filename`), without touching the images.
pub(crate) fn read_karpathy(json: &Path, image_root: &Path) -> Result<Vec<CocoEntry>> {
    if !json.is_file() {
        return Err(DataError::MissingFile {
            what: "Karpathy split file",
            path: json.to_path_buf(),
            hint: "download caption_datasets.zip (Karpathy's splits) and put dataset_coco.json \
                   in the coco: directory"
                .into(),
        });
    }
    let text = fs::read_to_string(json).map_err(io_err(json))?;
    let file: KarpathyFile = serde_json::from_str(&text).map_err(|e| DataError::Json {
        path: json.to_path_buf(),
        line: Some(e.line()),
        msg: e.to_string(),
    })?;
    file.images
        .into_iter()
        .enumerate()
        .map(|(i, img)| {
            let split: Split = img.split.parse().map_err(|_| DataError::UnknownSplit {
                name: img.split.clone(),
                at: Some(format!(
                    "{} images[{i}] (cocoid {})",
                    json.display(),
                    img.cocoid
                )),
            })?;
            let mut extra = serde_json::Map::new();
            extra.insert("cocoid".into(), img.cocoid.into());
            extra.insert("filepath".into(), img.filepath.clone().into());
            extra.insert("filename".into(), img.filename.clone().into());
            if let Some(imgid) = img.imgid {
                extra.insert("imgid".into(), imgid.into());
            }
            Ok(CocoEntry {
                sample: Sample {
                    id: img.cocoid.to_string(),
                    image_path: image_root.join(&img.filepath).join(&img.filename),
                    captions: img.sentences.into_iter().map(|s| s.raw).collect(),
                    split: Some(split),
                    extra,
                },
                filepath: img.filepath,
            })
        })
        .collect()
}

/// Checks that every image folder the entries refer to exists under `image_root`.
pub(crate) fn check_image_dirs(entries: &[CocoEntry], image_root: &Path) -> Result<()> {
    let mut first_user: BTreeMap<&str, &str> = BTreeMap::new();
    for e in entries {
        first_user
            .entry(e.filepath.as_str())
            .or_insert(e.sample.id.as_str());
    }
    for (filepath, id) in first_user {
        let dir: PathBuf = image_root.join(filepath);
        if !dir.is_dir() {
            return Err(DataError::MissingImageRoot {
                path: dir,
                needed_by: format!("cocoid {id}"),
            });
        }
    }
    Ok(())
}
