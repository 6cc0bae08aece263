//! The generic `folder:` format: `DIR/captions.jsonl` plus the images it names.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{io_err, DataError, Result};
use crate::sample::{Sample, Split};

/// The name of the captions file inside a `folder:` directory.
pub const CAPTIONS_FILE: &str = "captions.jsonl";

/// Reads `dir/captions.jsonl`: one JSON object per line with `image` (a path relative to `dir`),
/// `captions` (strings), `id` (a string or an integer) and optionally `split`; every other field
/// goes to [`Sample::extra`]. Blank lines are skipped. The folders holding the images must exist
/// (the images themselves are not opened).
///
/// # Errors
/// [`DataError::MissingFile`] without `captions.jsonl`; [`DataError::Json`] with the line number for
/// a line that is not an object with those fields; [`DataError::UnknownSplit`];
/// [`DataError::DuplicateId`]; [`DataError::MissingImageRoot`] when an image's folder is absent.
pub fn read_folder(dir: &Path) -> Result<Vec<Sample>> {
    read_folder_with(dir, &LoadOptions::default())
}

/// How datasets are read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Accept `folder:` image paths that lead outside the dataset folder (absolute paths, or
    /// `..` climbing above it). Off by default: a captions file then cannot make a run read (and a
    /// report show) files the dataset does not contain.
    pub allow_outside_paths: bool,
}

/// [`read_folder`] with options.
///
/// # Errors
/// As [`read_folder`], plus [`DataError::OutsidePath`] naming the line of an image path that
/// leads outside `dir` (unless [`LoadOptions::allow_outside_paths`]) and [`DataError::NotUtf8`]
/// naming the line that is not UTF-8. A UTF-8 byte-order mark at the start of the file is
/// skipped.
pub fn read_folder_with(dir: &Path, opts: &LoadOptions) -> Result<Vec<Sample>> {
    let path = dir.join(CAPTIONS_FILE);
    if !path.is_file() {
        return Err(DataError::MissingFile {
            what: "captions file",
            path,
            hint: "a folder: dataset is DIR/captions.jsonl plus the images it names \
                   (see docs/formats.md)"
                .into(),
        });
    }
    let file = fs::File::open(&path).map_err(io_err(&path))?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut parents: BTreeMap<PathBuf, (usize, String)> = BTreeMap::new();
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io_err(&path))? == 0 {
            break;
        }
        line_no += 1;
        let mut bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if line_no == 1 {
            // Editors on some systems save UTF-8 with a byte-order mark.
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let line = std::str::from_utf8(bytes).map_err(|e| DataError::NotUtf8 {
            path: path.clone(),
            line: line_no,
            column: e.valid_up_to() + 1,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let sample = parse_line(dir, &path, line_no, line, opts)?;
        if !seen.insert(sample.id.clone()) {
            return Err(DataError::DuplicateId {
                path,
                line: line_no,
                id: sample.id,
            });
        }
        if let Some(parent) = sample.image_path.parent() {
            parents
                .entry(parent.to_path_buf())
                .or_insert((line_no, sample.id.clone()));
        }
        out.push(sample);
    }
    for (parent, (line_no, id)) in parents {
        if !parent.is_dir() {
            return Err(DataError::MissingImageRoot {
                path: parent,
                needed_by: format!("{}:{line_no} (id {id:?})", path.display()),
            });
        }
    }
    Ok(out)
}

fn parse_line(
    dir: &Path,
    path: &Path,
    line_no: usize,
    line: &str,
    opts: &LoadOptions,
) -> Result<Sample> {
    let bad = |msg: String| DataError::Json {
        path: path.to_path_buf(),
        line: Some(line_no),
        msg,
    };
    let value: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(bad("expected a JSON object".into()));
    };
    let image = match obj.remove("image") {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(_) => return Err(bad("`image` must be a non-empty string".into())),
        None => return Err(bad("missing field `image`".into())),
    };
    if !opts.allow_outside_paths && escapes(Path::new(&image)) {
        return Err(DataError::OutsidePath {
            path: path.to_path_buf(),
            line: line_no,
            image,
            dir: dir.to_path_buf(),
        });
    }
    let captions = match obj.remove("captions") {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|c| match c {
                Value::String(s) => Ok(s),
                _ => Err(bad("`captions` must be an array of strings".into())),
            })
            .collect::<Result<Vec<_>>>()?,
        Some(_) => return Err(bad("`captions` must be an array of strings".into())),
        None => return Err(bad("missing field `captions`".into())),
    };
    let id = match obj.remove("id") {
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(bad("`id` must be a string or a number".into())),
        None => return Err(bad("missing field `id`".into())),
    };
    let split = match obj.remove("split") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(s.parse::<Split>().map_err(|_| DataError::UnknownSplit {
                name: s.clone(),
                at: Some(format!("{}:{line_no}", path.display())),
            })?)
        }
        Some(_) => return Err(bad("`split` must be a string".into())),
    };
    Ok(Sample {
        id,
        image_path: dir.join(image),
        captions,
        split,
        extra: obj,
    })
}

/// Whether a relative image path leads outside its folder, judged on its text: an absolute path
/// (or one with a drive or root), or `..` components that climb above the folder. Symbolic links
/// inside the folder are the dataset's own business and are followed.
fn escapes(image: &Path) -> bool {
    use std::path::Component;
    let mut depth: usize = 0;
    for c in image.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => return true,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            Component::Normal(_) => depth += 1,
        }
    }
    false
}
