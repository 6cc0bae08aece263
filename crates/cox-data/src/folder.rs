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
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(io_err(&path))?;
        if line.trim().is_empty() {
            continue;
        }
        let sample = parse_line(dir, &path, line_no, &line)?;
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

fn parse_line(dir: &Path, path: &Path, line_no: usize, line: &str) -> Result<Sample> {
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
