//! The crate's only IO: writing (and reading back) a dataset in the generic `folder:` format.
//!
//! ```text
//! DIR/images/<id>.png      one RGB PNG per scene
//! DIR/captions.jsonl       {"image": "images/<id>.png", "captions": [...], "id": "<id>", "split": "train"}
//! DIR/factors.jsonl        {"id": "<id>", "factors": {...SceneFactors...}}
//! ```
//!
//! `captions[0]` is the canonical caption. Every file is written to a `.tmp` sibling and renamed into
//! place, so a reader never sees a half-written file; images from an earlier, larger dataset in the same
//! folder are left alone (the jsonl files list exactly the current scenes).

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SynthError};
use crate::factors::SceneFactors;
use crate::render::{encode_png, render};
use crate::scene::{Scene, Split};

/// One line of `captions.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaptionRecord {
    /// The image path relative to the dataset folder, `images/<id>.png`.
    pub image: String,
    /// The reference captions, canonical first.
    pub captions: Vec<String>,
    /// The scene id.
    pub id: String,
    /// The split.
    pub split: Split,
}

/// One line of `factors.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactorRecord {
    /// The scene id.
    pub id: String,
    /// The scene's ground truth.
    pub factors: SceneFactors,
}

/// What [`write_dataset`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteSummary {
    /// The dataset folder.
    pub dir: PathBuf,
    /// Images written (one per scene).
    pub images: usize,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` through a `.tmp` sibling and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes one record per line to `path` through a `.tmp` sibling and a rename.
fn write_jsonl<T: Serialize>(path: &Path, records: impl Iterator<Item = T>) -> Result<()> {
    let tmp = tmp_path(path);
    let file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = BufWriter::new(file);
    for r in records {
        serde_json::to_writer(&mut w, &r).map_err(|source| SynthError::Json {
            path: tmp.clone(),
            line: 0,
            source,
        })?;
        w.write_all(b"\n").map_err(io_err(&tmp))?;
    }
    let file = w.into_inner().map_err(|e| SynthError::Io {
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Renders every scene (in parallel) and writes the `folder:` dataset to `dir`, creating it if needed.
///
/// # Errors
/// [`SynthError::DuplicateId`] if two scenes share an id; [`SynthError::Io`] / [`SynthError::Image`] /
/// [`SynthError::Json`] if a file cannot be written.
///
/// ```
/// use cox_synth::{generate_dataset, io, SplitSizes};
/// let dir = tempfile::tempdir().unwrap();
/// let scenes = generate_dataset(&Default::default(), 1, SplitSizes { train: 2, val: 1, test: 1 }).unwrap();
/// let summary = io::write_dataset(dir.path(), &scenes).unwrap();
/// assert_eq!(summary.images, 4);
/// assert!(dir.path().join("images/val-000000.png").exists());
/// assert_eq!(io::read_captions(dir.path()).unwrap().len(), 4);
/// ```
pub fn write_dataset(dir: &Path, scenes: &[Scene]) -> Result<WriteSummary> {
    let mut seen = HashSet::with_capacity(scenes.len());
    if let Some(dup) = scenes.iter().find(|s| !seen.insert(s.id.as_str())) {
        return Err(SynthError::DuplicateId(dup.id.clone()));
    }
    let images = dir.join("images");
    fs::create_dir_all(&images).map_err(io_err(&images))?;
    scenes.par_iter().try_for_each(|s| {
        let path = images.join(format!("{}.png", s.id));
        let bytes = encode_png(&render(&s.factors)).map_err(|source| SynthError::Image {
            path: path.clone(),
            source,
        })?;
        write_atomic(&path, &bytes)
    })?;
    write_jsonl(
        &dir.join("captions.jsonl"),
        scenes.iter().map(|s| CaptionRecord {
            image: format!("images/{}.png", s.id),
            captions: s.captions.clone(),
            id: s.id.clone(),
            split: s.split,
        }),
    )?;
    write_jsonl(
        &dir.join("factors.jsonl"),
        scenes.iter().map(|s| FactorRecord {
            id: s.id.clone(),
            factors: s.factors.clone(),
        }),
    )?;
    Ok(WriteSummary {
        dir: dir.to_path_buf(),
        images: scenes.len(),
    })
}

/// Reads every record of a jsonl file (blank lines skipped).
fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let file = fs::File::open(path).map_err(io_err(path))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|source| SynthError::Json {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        out.push(record);
    }
    Ok(out)
}

/// Reads `DIR/captions.jsonl`.
pub fn read_captions(dir: &Path) -> Result<Vec<CaptionRecord>> {
    read_jsonl(&dir.join("captions.jsonl"))
}

/// Reads `DIR/factors.jsonl`.
pub fn read_factors(dir: &Path) -> Result<Vec<FactorRecord>> {
    read_jsonl(&dir.join("factors.jsonl"))
}
