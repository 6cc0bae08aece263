//! Checking that a `coco:` directory is complete (for `cargo xtask prep-coco`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::coco::{read_karpathy, IMAGE_DIRS, KARPATHY_FILE};

/// What [`check_coco_layout`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CocoLayoutReport {
    /// The split file looked for (`DIR/dataset_coco.json`).
    pub split_file: PathBuf,
    /// The folder `train2014/` and `val2014/` were looked for in.
    pub image_root: PathBuf,
    /// Images per split in the split file (empty when it is missing or invalid).
    pub images_per_split: BTreeMap<String, usize>,
    /// Referenced image files checked (0 when images were not checked).
    pub images_checked: usize,
    /// Up to 10 referenced image files that do not exist, and how many there are in all.
    pub missing_images: (Vec<PathBuf>, usize),
    /// Everything missing or wrong, one human-readable line each; empty when the layout is complete.
    pub problems: Vec<String>,
}

impl CocoLayoutReport {
    /// Whether nothing is missing.
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `dir` as a `coco:` directory with its images under `dir` itself: the split file, the
/// image folders, and every referenced image file.
pub fn check_coco_layout(dir: &Path) -> CocoLayoutReport {
    check_coco_layout_with(dir, None, true)
}

/// Checks `dir/dataset_coco.json` (present and valid), `image_root/train2014` and
/// `image_root/val2014` (`image_root` defaults to `dir`), and with `check_images` that every image
/// the split file names exists. Never fails: everything wrong goes to
/// [`CocoLayoutReport::problems`].
pub fn check_coco_layout_with(
    dir: &Path,
    image_root: Option<&Path>,
    check_images: bool,
) -> CocoLayoutReport {
    let root = image_root.unwrap_or(dir).to_path_buf();
    let mut report = CocoLayoutReport {
        split_file: dir.join(KARPATHY_FILE),
        image_root: root.clone(),
        ..Default::default()
    };
    if !dir.is_dir() {
        report
            .problems
            .push(format!("{} does not exist", dir.display()));
    }
    for name in IMAGE_DIRS {
        let d = root.join(name);
        if !d.is_dir() {
            report.problems.push(format!(
                "{} is missing (unzip COCO's {name}.zip there)",
                d.display()
            ));
        }
    }
    match read_karpathy(&report.split_file, &root) {
        Err(e) => report.problems.push(e.to_string()),
        Ok(entries) => {
            for e in &entries {
                let split = e.sample.split.map(|s| s.to_string()).unwrap_or_default();
                *report.images_per_split.entry(split).or_default() += 1;
            }
            if check_images {
                for e in &entries {
                    report.images_checked += 1;
                    if !e.sample.image_path.is_file() {
                        report.missing_images.1 += 1;
                        if report.missing_images.0.len() < 10 {
                            report.missing_images.0.push(e.sample.image_path.clone());
                        }
                    }
                }
                let (first, n) = &report.missing_images;
                if *n > 0 {
                    report.problems.push(format!(
                        "{n} of {} images named in {} are missing (first: {})",
                        report.images_checked,
                        KARPATHY_FILE,
                        first[0].display()
                    ));
                }
            }
        }
    }
    report
}
