//! The sharded activation store of `coxlmm extract`: a directory `OUT/` with `manifest.json` and
//! append-only shards `shard-00000.safetensors` + `shard-00000.jsonl`.
//!
//! A shard covers `shard_size` consecutive samples of the run's sample list (the last one fewer):
//! its safetensors file holds one `[n, B]` tensor `layer.<name>` per captured layer (f16 or f32)
//! and `index` (i64 `[n]`: the sample ordinal of each row), and its JSON-lines file one line per
//! sample, kept or skipped. A shard becomes visible only when complete: both files are written
//! atomically (temporary file, fsync, rename) and then the manifest, which lists the complete
//! shards with the byte length and SHA-256 of both files, is rewritten atomically.
//!
//! The store verifies itself. Every reader ([`read_run`], [`read_run_samples`], [`merge_runs`],
//! [`verify_store`]) and every writer ([`RunWriter::open`]) checks each listed shard against its
//! manifest entry (length, SHA-256, tensor shapes and dtypes, sample lines, row numbering, and the
//! place the store's settings give it), and the `complete` flag counts only when every shard
//! verifies. A reader refuses a store with a damaged shard ([`Error::DamagedShard`]); a writer
//! lists the damaged shards with their samples ([`RunWriter::damaged`], [`RunWriter::todo`]) and
//! asks for exactly those samples again before it appends new ones, so a resumed run re-creates
//! them. Since every shard file is a pure function of its samples, the result equals an
//! uninterrupted run byte for byte. One writer at a time holds the store's lock file.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};

use crate::digest::FileDigest;
use crate::lock::StoreLock;
use crate::matrix::{encode, parse, read_file, serialize, to_f32};
use crate::{atomic_write, DiskDtype, Error, Matrix, Result, Skip};

/// The manifest's file name inside a store directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The `format` value of a run manifest.
pub const RUN_FORMAT: &str = "coxlmm-activation-store";
/// The manifest version this crate writes. Version 1 (no shard checksums) is still read.
pub const RUN_FORMAT_VERSION: u32 = 2;

/// What a run is: everything that must match to resume it or merge it with another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Extraction settings (model id and config hash, token, layers, prompt, filters, dataset…),
    /// compared key by key on resume and merge. The store never interprets them.
    pub settings: serde_json::Map<String, serde_json::Value>,
    /// Captured layer names, in order; tensor `layer.<name>` per layer.
    pub layers: Vec<String>,
    /// Dtype of the layer tensors on disk (f16 or f32).
    pub dtype: DiskDtype,
    /// Width `B` of every vector.
    pub hidden_size: usize,
    /// Samples per shard file.
    pub shard_size: usize,
    /// Size of the whole (unsharded) selection of samples.
    pub selection_total: usize,
    /// This store's part of the selection, `I/N` (`None`: the whole selection).
    pub part: Option<(usize, usize)>,
    /// Ordinal (in the whole selection) of this store's first sample.
    pub ordinal_start: usize,
    /// How many samples this store covers.
    pub total_samples: usize,
}

impl RunSpec {
    /// How many shards a complete store of this spec has.
    pub fn n_shards(&self) -> usize {
        self.total_samples.div_ceil(self.shard_size.max(1))
    }

    /// The ordinals (in the whole selection) shard `k` covers: shard places are fixed by the spec,
    /// not by the manifest, so a damaged manifest entry cannot move a shard.
    pub fn shard_ordinals(&self, k: usize) -> Range<usize> {
        let start = (k * self.shard_size).min(self.total_samples);
        let end = ((k + 1) * self.shard_size).min(self.total_samples);
        self.ordinal_start + start..self.ordinal_start + end
    }

    /// The ordinals this store covers.
    pub fn ordinals(&self) -> Range<usize> {
        self.ordinal_start..self.ordinal_start + self.total_samples
    }

    fn check(&self, mpath: &Path) -> Result<()> {
        if self.shard_size == 0 || self.hidden_size == 0 || self.layers.is_empty() {
            return Err(bad(
                mpath,
                "shard size, hidden size and the layer list must be non-empty",
            ));
        }
        if !matches!(self.dtype, DiskDtype::F16 | DiskDtype::F32) {
            return Err(bad(mpath, "layer tensors are stored as f16 or f32"));
        }
        if self.ordinal_start + self.total_samples > self.selection_total {
            return Err(bad(
                mpath,
                format!(
                    "samples {}..{} lie outside the selection of {}",
                    self.ordinal_start,
                    self.ordinal_start + self.total_samples,
                    self.selection_total
                ),
            ));
        }
        Ok(())
    }
}

/// One complete shard, as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// The safetensors file (relative to the store directory).
    pub tensors: String,
    /// The JSON-lines file of its samples.
    pub samples: String,
    /// Ordinal of the first sample it covers.
    pub first_ordinal: usize,
    /// Samples it covers (kept or skipped).
    pub n_samples: usize,
    /// Rows (kept samples).
    pub rows: usize,
    /// Length and SHA-256 of the safetensors file (absent in version-1 manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensors_digest: Option<FileDigest>,
    /// Length and SHA-256 of the JSON-lines file (absent in version-1 manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_digest: Option<FileDigest>,
}

/// `OUT/manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// Always [`RUN_FORMAT`].
    pub format: String,
    /// Format version ([`RUN_FORMAT_VERSION`]; 1 for stores written before shard checksums).
    pub version: u32,
    /// The coxlmm version that wrote the store last.
    pub coxlmm_version: String,
    /// What the run is.
    #[serde(flatten)]
    pub spec: RunSpec,
    /// Complete shards, in order.
    pub shards: Vec<ShardEntry>,
    /// Whether every sample of the store is in a listed shard. Trusted only together with a
    /// verification of every shard ([`verify_store`]).
    pub complete: bool,
}

impl RunManifest {
    /// Samples in listed shards.
    pub fn samples_done(&self) -> usize {
        self.shards.iter().map(|s| s.n_samples).sum()
    }

    /// Kept rows in listed shards.
    pub fn rows(&self) -> usize {
        self.shards.iter().map(|s| s.rows).sum()
    }
}

/// One sample's line in a shard's JSON-lines file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// Ordinal in the whole selection.
    pub ordinal: usize,
    /// Dataset id.
    pub id: String,
    /// Image path.
    pub image: String,
    /// Ground-truth captions.
    pub captions: Vec<String>,
    /// The generated caption (absent when the model did not run on it).
    #[serde(default)]
    pub generated: Option<String>,
    /// Index of the first generated token of interest.
    #[serde(default)]
    pub token_index: Option<usize>,
    /// Its token id.
    #[serde(default)]
    pub token_id: Option<u32>,
    /// The recorded sequence position.
    #[serde(default)]
    pub position: Option<usize>,
    /// The row of the store's matrix (for kept samples).
    #[serde(default)]
    pub row: Option<usize>,
    /// Why the sample was skipped (for skipped samples), stored by name.
    #[serde(default)]
    pub skip: Option<Skip>,
}

/// A listed shard that does not verify, and the samples it held.
#[derive(Debug, Clone, PartialEq)]
pub struct DamagedShard {
    /// The shard's number (0-based; its files are `shard-<k>.*`).
    pub shard: usize,
    /// The file that does not verify (the manifest when its entry is the inconsistent part).
    pub path: PathBuf,
    /// The ordinals (in the whole selection) of the samples it covers, fixed by the store's
    /// settings; re-extracting exactly these re-creates the shard.
    pub ordinals: Range<usize>,
    /// The sample ids its sample lines name, when that file was still readable (a caller can
    /// compare them with its own selection); `None` when they cannot be read.
    pub sample_ids: Option<Vec<String>>,
    /// What does not match.
    pub problem: String,
}

impl DamagedShard {
    fn error(&self) -> Error {
        Error::DamagedShard {
            path: self.path.clone(),
            shard: self.shard,
            problem: self.problem.clone(),
        }
    }
}

impl std::fmt::Display for DamagedShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shard {} (samples {}..{}): {}: {}",
            self.shard,
            self.ordinals.start,
            self.ordinals.end,
            self.path.display(),
            self.problem
        )
    }
}

/// The result of checking a store against its manifest ([`verify_store`]).
#[derive(Debug, Clone)]
pub struct StoreCheck {
    /// The manifest as read.
    pub manifest: RunManifest,
    /// Listed shards that do not verify, in order.
    pub damaged: Vec<DamagedShard>,
    /// Listed shards without recorded checksums (a version-1 manifest) whose structure verified:
    /// their bytes cannot be checked, only their shapes, lines and numbering.
    pub unhashed: usize,
}

impl StoreCheck {
    /// Whether every sample of the store is in a listed shard and every listed shard verifies:
    /// the only condition under which the store's `complete` flag is honoured.
    pub fn is_complete(&self) -> bool {
        self.damaged.is_empty() && self.manifest.samples_done() == self.manifest.spec.total_samples
    }
}

fn bad(path: &Path, problem: impl Into<String>) -> Error {
    Error::BadSidecar {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Reads `DIR/manifest.json`; `Ok(None)` when absent. The manifest is parsed, not verified
/// against the shards ([`verify_store`] does that).
pub fn read_manifest(dir: &Path) -> Result<Option<RunManifest>> {
    let path = dir.join(MANIFEST_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = read_file(&path)?;
    let m: RunManifest = serde_json::from_slice(&text).map_err(|e| {
        bad(
            &path,
            format!(
                "not a readable coxlmm activation-store manifest ({e}); it is damaged: restore it \
                 or write the store again in a new folder"
            ),
        )
    })?;
    if m.format != RUN_FORMAT {
        return Err(bad(
            &path,
            format!("format is {:?}, expected {RUN_FORMAT:?}", m.format),
        ));
    }
    if m.version == 0 || m.version > RUN_FORMAT_VERSION {
        return Err(bad(
            &path,
            format!(
                "format version {} is not one this coxlmm reads (1 to {RUN_FORMAT_VERSION}); a \
                 newer coxlmm wrote it, or the manifest is damaged",
                m.version
            ),
        ));
    }
    Ok(Some(m))
}

fn write_manifest(dir: &Path, m: &RunManifest) -> Result<()> {
    let path = dir.join(MANIFEST_FILE);
    atomic_write(&path, &manifest_bytes(&path, m)?)
}

fn manifest_bytes(path: &Path, m: &RunManifest) -> Result<Vec<u8>> {
    let mut json = serde_json::to_vec_pretty(m).map_err(|e| bad(path, e.to_string()))?;
    json.push(b'\n');
    Ok(json)
}

/// Describes how two specs differ (empty when equal).
fn spec_differences(old: &RunSpec, new: &RunSpec) -> Vec<String> {
    let mut diffs = Vec::new();
    let keys: std::collections::BTreeSet<&String> =
        old.settings.keys().chain(new.settings.keys()).collect();
    for k in keys {
        let (a, b) = (old.settings.get(k), new.settings.get(k));
        if a != b {
            diffs.push(format!(
                "{k}: {} here, {} requested",
                a.map_or("unset".into(), |v| v.to_string()),
                b.map_or("unset".into(), |v| v.to_string())
            ));
        }
    }
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            diffs.push(format!("{name}: {a} here, {b} requested"));
        }
    };
    field("layers", old.layers.join(","), new.layers.join(","));
    field("dtype", old.dtype.to_string(), new.dtype.to_string());
    field(
        "hidden size",
        old.hidden_size.to_string(),
        new.hidden_size.to_string(),
    );
    field(
        "shard size",
        old.shard_size.to_string(),
        new.shard_size.to_string(),
    );
    field(
        "selected samples",
        old.selection_total.to_string(),
        new.selection_total.to_string(),
    );
    let part = |p: Option<(usize, usize)>| p.map_or("none".into(), |(i, n)| format!("{i}/{n}"));
    field("part", part(old.part), part(new.part));
    field(
        "first sample",
        old.ordinal_start.to_string(),
        new.ordinal_start.to_string(),
    );
    field(
        "samples",
        old.total_samples.to_string(),
        new.total_samples.to_string(),
    );
    diffs
}

/// The file names of shard `k`.
pub fn shard_names(k: usize) -> (String, String) {
    (
        format!("shard-{k:05}.safetensors"),
        format!("shard-{k:05}.jsonl"),
    )
}

/// A shard read back and verified.
struct LoadedShard {
    /// The safetensors file's bytes (empty when only the samples were asked for).
    tensors: Vec<u8>,
    /// Its sample lines.
    records: Vec<SampleRecord>,
}

/// What went wrong verifying one shard: the file, the problem, and the sample ids when the
/// sample lines could be read.
type ShardFault = (PathBuf, String, Option<Vec<String>>);

/// Reads shard `k` of the store in `dir` and checks it against its manifest entry and the
/// store's settings. `rows_before` is the number of rows of the shards before it (the manifest's
/// count), which its sample lines must continue. With `tensors == false` only the sample file is
/// read and checked.
fn load_shard(
    dir: &Path,
    m: &RunManifest,
    k: usize,
    rows_before: usize,
    tensors: bool,
) -> std::result::Result<LoadedShard, ShardFault> {
    let spec = &m.spec;
    let e = &m.shards[k];
    let mpath = dir.join(MANIFEST_FILE);
    let (tname, sname) = shard_names(k);
    let (tpath, spath) = (dir.join(&tname), dir.join(&sname));
    let range = spec.shard_ordinals(k);
    // The entry itself: its names, place and size are fixed by the spec.
    if e.tensors != tname || e.samples != sname {
        return Err((
            mpath,
            format!(
                "the manifest entry of shard {k} names {:?} and {:?} instead of {tname:?} and \
                 {sname:?}",
                e.tensors, e.samples
            ),
            None,
        ));
    }
    if e.first_ordinal != range.start || e.n_samples != range.len() || range.is_empty() {
        return Err((
            mpath,
            format!(
                "the manifest says shard {k} covers samples {}..{}, where the store's settings \
                 place it at {}..{}",
                e.first_ordinal,
                e.first_ordinal + e.n_samples,
                range.start,
                range.end
            ),
            None,
        ));
    }
    if m.version >= 2 && (e.tensors_digest.is_none() || e.samples_digest.is_none()) {
        return Err((
            mpath,
            format!("the manifest records no checksum for shard {k}"),
            None,
        ));
    }
    // The sample lines.
    let lines = read_shard_file(&spath)?;
    let fault = |p: String, ids: Option<Vec<String>>| (spath.clone(), p, ids);
    if let Some(d) = &e.samples_digest {
        d.check(&lines).map_err(|p| fault(p, None))?;
    }
    let mut records = Vec::with_capacity(e.n_samples);
    if !lines.is_empty() && !lines.ends_with(b"\n") {
        return Err(fault(
            "its last line is cut off (the file is truncated)".into(),
            None,
        ));
    }
    for (i, line) in lines.split(|&c| c == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<SampleRecord>(line) {
            Ok(r) => records.push(r),
            Err(err) => {
                return Err(fault(
                    format!("line {} is not a sample record ({err})", i + 1),
                    None,
                ))
            }
        }
    }
    let ids = || Some(records.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
    if records.len() != e.n_samples {
        return Err(fault(
            format!(
                "it has {} sample lines where the manifest lists {}",
                records.len(),
                e.n_samples
            ),
            ids(),
        ));
    }
    let mut kept_ordinals = Vec::with_capacity(e.rows);
    for (r, o) in records.iter().zip(range.clone()) {
        if r.ordinal != o {
            return Err(fault(
                format!("it holds sample {} where sample {o} belongs", r.ordinal),
                ids(),
            ));
        }
        if let Some(row) = r.row {
            let want = rows_before + kept_ordinals.len();
            if row != want {
                return Err(fault(
                    format!(
                        "sample {o} is numbered row {row} where the rows before it make it row \
                         {want}"
                    ),
                    ids(),
                ));
            }
            kept_ordinals.push(o);
        }
    }
    if kept_ordinals.len() != e.rows {
        return Err(fault(
            format!(
                "it keeps {} samples where the manifest lists {} rows",
                kept_ordinals.len(),
                e.rows
            ),
            ids(),
        ));
    }
    if !tensors {
        return Ok(LoadedShard {
            tensors: Vec::new(),
            records,
        });
    }
    // The tensors.
    let bytes = read_shard_file(&tpath).map_err(|(p, msg, _)| (p, msg, ids()))?;
    let tfault = |p: String| (tpath.clone(), p, ids());
    if let Some(d) = &e.tensors_digest {
        d.check(&bytes).map_err(tfault)?;
    }
    {
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|err| tfault(format!("it is not a valid safetensors file ({err})")))?;
        let want_dtype = match spec.dtype {
            DiskDtype::F16 => Dtype::F16,
            _ => Dtype::F32,
        };
        for l in &spec.layers {
            let name = format!("layer.{l}");
            let t = st
                .tensor(&name)
                .map_err(|_| tfault(format!("it has no tensor {name:?}")))?;
            if t.shape() != [e.rows, spec.hidden_size] || t.dtype() != want_dtype {
                return Err(tfault(format!(
                    "{name} is {:?} {:?} where the store expects {want_dtype:?} [{}, {}]",
                    t.dtype(),
                    t.shape(),
                    e.rows,
                    spec.hidden_size
                )));
            }
        }
        let idx = st
            .tensor("index")
            .map_err(|_| tfault("it has no tensor \"index\"".into()))?;
        let index = index_values(&idx).ok_or_else(|| {
            tfault(format!(
                "index is {:?} {:?} where the store expects I64 [{}]",
                idx.dtype(),
                idx.shape(),
                e.rows
            ))
        })?;
        if index != kept_ordinals {
            return Err(tfault(
                "its index tensor does not list the samples its sample lines keep".into(),
            ));
        }
    }
    Ok(LoadedShard {
        tensors: bytes,
        records,
    })
}

fn read_shard_file(path: &Path) -> std::result::Result<Vec<u8>, ShardFault> {
    std::fs::read(path).map_err(|e| {
        let msg = if e.kind() == std::io::ErrorKind::NotFound {
            "the file is missing".to_string()
        } else {
            format!("it cannot be read ({e})")
        };
        (path.to_path_buf(), msg, None)
    })
}

fn index_values(idx: &safetensors::tensor::TensorView<'_>) -> Option<Vec<usize>> {
    if idx.shape().len() != 1 {
        return None;
    }
    match idx.dtype() {
        Dtype::I64 => Some(
            idx.data()
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as usize)
                .collect(),
        ),
        // Written by no coxlmm version, but accepted by earlier readers.
        Dtype::U32 => Some(
            idx.data()
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize)
                .collect(),
        ),
        _ => None,
    }
}

/// Checks the listed shards of the manifest `m` of the store in `dir`; manifest-level problems
/// (more shards listed than the settings allow, invalid settings) are errors.
fn check_shards(dir: &Path, m: &RunManifest, tensors: bool) -> Result<(Vec<DamagedShard>, usize)> {
    let mpath = dir.join(MANIFEST_FILE);
    m.spec.check(&mpath)?;
    if m.shards.len() > m.spec.n_shards() {
        return Err(bad(
            &mpath,
            format!(
                "it lists {} shards where the store's {} samples fill at most {}; the manifest is \
                 damaged: write the store again in a new folder",
                m.shards.len(),
                m.spec.total_samples,
                m.spec.n_shards()
            ),
        ));
    }
    let mut damaged = Vec::new();
    let mut rows_before = 0;
    for k in 0..m.shards.len() {
        if let Err((path, problem, sample_ids)) = load_shard(dir, m, k, rows_before, tensors) {
            damaged.push(DamagedShard {
                shard: k,
                path,
                ordinals: m.spec.shard_ordinals(k),
                sample_ids,
                problem,
            });
        }
        rows_before += m.shards[k].rows;
    }
    let unhashed = if m.version < 2 {
        m.shards.len() - damaged.len()
    } else {
        0
    };
    Ok((damaged, unhashed))
}

/// Checks every listed shard of the store in `dir` (both files: length, SHA-256, tensor shapes
/// and dtypes, sample lines, row numbering, place) without changing anything.
///
/// # Errors
/// When there is no manifest, it cannot be read, or it is inconsistent as a whole (settings,
/// more shards than the settings allow); damaged shards are not errors but listed in the result.
pub fn verify_store(dir: &Path) -> Result<StoreCheck> {
    let manifest = require_manifest(dir)?;
    let (damaged, unhashed) = check_shards(dir, &manifest, true)?;
    Ok(StoreCheck {
        manifest,
        damaged,
        unhashed,
    })
}

/// Appends samples to a store, one complete shard at a time, re-creating the damaged shards
/// of a resumed store first. Holds the store's write lock while it lives.
pub struct RunWriter {
    dir: PathBuf,
    manifest: RunManifest,
    /// Damaged shards found when the store was opened and not yet re-created.
    damaged: Vec<DamagedShard>,
    /// Shards still to write, in order: the damaged ones, then the ones never written.
    queue: VecDeque<usize>,
    pending: Vec<(SampleRecord, Option<Vec<Vec<f32>>>)>,
    unhashed: usize,
    /// The rows before each listed shard as the manifest counted them when the store was opened
    /// (what its verified shards' row numbers were checked against).
    rows_before: Vec<usize>,
    _lock: StoreLock,
}

impl RunWriter {
    /// Creates the store `dir`, or resumes it when its manifest has the same spec. Takes the
    /// store's write lock, then verifies every listed shard: the damaged ones are reported by
    /// [`Self::damaged`] and their samples come first in [`Self::todo`], and the `complete` flag
    /// is dropped until they are re-created. A version-1 store (no checksums) has the shards
    /// that verify structurally checksummed now, and its manifest is rewritten as version 2.
    ///
    /// # Errors
    /// [`Error::Locked`] when another process writes the store; [`Error::BadSidecar`] naming every
    /// difference when `dir` holds a store of another run, when the spec is invalid, when `dir`
    /// is a non-empty folder without a store, or when the manifest is unreadable or inconsistent
    /// as a whole; IO errors.
    pub fn open(dir: &Path, spec: RunSpec) -> Result<Self> {
        let mpath = dir.join(MANIFEST_FILE);
        spec.check(&mpath)?;
        let has_manifest = mpath.exists();
        if !has_manifest && dir.is_dir() && folder_has_visible_files(dir)? {
            return Err(bad(
                &mpath,
                format!(
                    "{} is not empty and holds no activation store; write the store into an \
                     empty or new folder",
                    dir.display()
                ),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|cause| Error::Write {
            path: dir.to_path_buf(),
            cause,
        })?;
        let lock = StoreLock::acquire(dir)?;
        // Read the manifest again under the lock: another writer may have created it meanwhile.
        let on_disk = std::fs::read(&mpath).ok();
        let (manifest, damaged, unhashed) = match read_manifest(dir)? {
            Some(mut m) => {
                let diffs = spec_differences(&m.spec, &spec);
                if !diffs.is_empty() {
                    return Err(bad(
                        &mpath,
                        format!(
                            "this folder holds the store of another run ({}); resume it with \
                             the same settings or write to another folder",
                            diffs.join("; ")
                        ),
                    ));
                }
                let (damaged, unhashed) = check_shards(dir, &m, true)?;
                // Checksum the verified shards of a version-1 store, so later checks cover their
                // bytes too.
                if m.version < 2 {
                    for k in 0..m.shards.len() {
                        if damaged.iter().any(|d| d.shard == k) {
                            continue;
                        }
                        let (t, s) = shard_names(k);
                        let (tb, sb) = (read_file(&dir.join(t))?, read_file(&dir.join(s))?);
                        m.shards[k].tensors_digest = Some(FileDigest::of(&tb));
                        m.shards[k].samples_digest = Some(FileDigest::of(&sb));
                    }
                    m.version = RUN_FORMAT_VERSION;
                }
                m.coxlmm_version = env!("CARGO_PKG_VERSION").to_string();
                m.complete = damaged.is_empty() && m.samples_done() == m.spec.total_samples;
                (m, damaged, unhashed)
            }
            None => (
                RunManifest {
                    format: RUN_FORMAT.into(),
                    version: RUN_FORMAT_VERSION,
                    coxlmm_version: env!("CARGO_PKG_VERSION").to_string(),
                    spec,
                    shards: Vec::new(),
                    complete: false,
                },
                Vec::new(),
                0,
            ),
        };
        let bytes = manifest_bytes(&mpath, &manifest)?;
        if on_disk.as_deref() != Some(&bytes[..]) {
            atomic_write(&mpath, &bytes)?;
        }
        let queue = damaged
            .iter()
            .map(|d| d.shard)
            .chain(manifest.shards.len()..manifest.spec.n_shards())
            .collect();
        let rows_before = manifest
            .shards
            .iter()
            .scan(0, |acc, s| {
                let before = *acc;
                *acc += s.rows;
                Some(before)
            })
            .collect();
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            damaged,
            queue,
            pending: Vec::new(),
            unhashed,
            rows_before,
            _lock: lock,
        })
    }

    /// The manifest as written so far.
    pub fn manifest(&self) -> &RunManifest {
        &self.manifest
    }

    /// The store folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The damaged shards found on opening that are not re-created yet, with the samples they
    /// held: their samples are the first ones [`Self::todo`] asks for.
    pub fn damaged(&self) -> &[DamagedShard] {
        &self.damaged
    }

    /// How many shards of a version-1 store were accepted on their structure alone when the
    /// store was opened (their checksums are recorded from now on).
    pub fn unhashed_shards(&self) -> usize {
        self.unhashed
    }

    /// The ordinals still to push, in the order [`Self::push`] expects them: the samples of the
    /// damaged shards, then those never written. Empty when the store is complete.
    pub fn todo(&self) -> Vec<Range<usize>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        for (i, &k) in self.queue.iter().enumerate() {
            let mut r = self.manifest.spec.shard_ordinals(k);
            if i == 0 {
                r.start += self.pending.len();
            }
            match out.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ if r.is_empty() => {}
                _ => out.push(r),
            }
        }
        out
    }

    /// The ordinal (in the whole selection) of the next sample to push; the end of the store's
    /// ordinals when nothing is left to push.
    pub fn next_ordinal(&self) -> usize {
        match self.queue.front() {
            Some(&k) => self.manifest.spec.shard_ordinals(k).start + self.pending.len(),
            None => self.manifest.spec.ordinals().end,
        }
    }

    /// Adds one sample: `vectors` (one per layer, each `hidden_size` long) when it is kept,
    /// `None` when skipped. Writes a shard when the samples of one are pending.
    ///
    /// # Errors
    /// [`Error::Push`] when the store is complete, `record.ordinal` is not
    /// [`Self::next_ordinal`], or the vectors do not match the spec; [`Error::BadSidecar`] when a
    /// re-created shard keeps a different number of samples than the damaged one it replaces
    /// while later shards number their rows after it (the extraction is not reproducible); IO
    /// errors.
    pub fn push(&mut self, record: SampleRecord, vectors: Option<Vec<Vec<f32>>>) -> Result<()> {
        let spec = &self.manifest.spec;
        let err = |problem: String| Error::Push {
            path: self.dir.clone(),
            ordinal: record.ordinal,
            problem,
        };
        let Some(&k) = self.queue.front() else {
            return Err(err(
                "the store is complete; nothing more can be added to it".into(),
            ));
        };
        if record.ordinal != self.next_ordinal() {
            return Err(err(format!(
                "the store expects sample {} next",
                self.next_ordinal()
            )));
        }
        if let Some(v) = &vectors {
            if v.len() != spec.layers.len() || v.iter().any(|x| x.len() != spec.hidden_size) {
                return Err(err(format!(
                    "expected {} vectors (one per layer) of {} values",
                    spec.layers.len(),
                    spec.hidden_size
                )));
            }
        }
        self.pending.push((record, vectors));
        if self.pending.len() == spec.shard_ordinals(k).len() {
            self.flush(k)?;
        }
        Ok(())
    }

    /// Writes shard `k` from the pending samples, which are all of its samples.
    fn flush(&mut self, k: usize) -> Result<()> {
        let spec = &self.manifest.spec;
        let (tname, sname) = shard_names(k);
        let tpath = self.dir.join(&tname);
        let spath = self.dir.join(&sname);
        let first_row: usize = self.manifest.shards[..k.min(self.manifest.shards.len())]
            .iter()
            .map(|s| s.rows)
            .sum();
        let b = spec.hidden_size;
        let mut per_layer: Vec<Vec<f32>> = vec![Vec::new(); spec.layers.len()];
        let mut index: Vec<u8> = Vec::new();
        let mut lines: Vec<u8> = Vec::new();
        let mut rows = 0;
        for (rec, vecs) in &mut self.pending {
            rec.row = None;
            if let Some(vecs) = vecs {
                for (l, v) in vecs.iter().enumerate() {
                    per_layer[l].extend_from_slice(v);
                }
                index.extend_from_slice(&(rec.ordinal as i64).to_le_bytes());
                rec.row = Some(first_row + rows);
                rows += 1;
            }
            serde_json::to_writer(&mut lines, rec).map_err(|e| bad(&spath, e.to_string()))?;
            lines.push(b'\n');
        }
        if k < self.manifest.shards.len() {
            // The next verified shard that keeps samples numbered its rows after the rows of
            // every shard before it, as recorded when the store was opened. Once the damaged
            // shards before it are re-created, the recount must agree.
            let listed = self.manifest.shards.len();
            let next = (k + 1..listed)
                .find(|&j| self.queue.contains(&j) || self.manifest.shards[j].rows > 0);
            if let Some(j) = next.filter(|j| !self.queue.contains(j)) {
                let now = first_row
                    + rows
                    + self.manifest.shards[k + 1..j]
                        .iter()
                        .map(|s| s.rows)
                        .sum::<usize>();
                if now != self.rows_before[j] {
                    return Err(bad(
                        &self.dir.join(MANIFEST_FILE),
                        format!(
                            "shard {k} was re-created with {rows} kept samples, so shard {j} \
                             would start at row {now} where it numbers its rows from {}: the \
                             extraction is not reproducible (did the model, the dataset or the \
                             settings change?); write the store again in a new folder",
                            self.rows_before[j]
                        ),
                    ));
                }
            }
        }
        let names: Vec<String> = spec.layers.iter().map(|l| format!("layer.{l}")).collect();
        let mut tensors: Vec<(&str, Vec<usize>, Dtype, Vec<u8>)> = names
            .iter()
            .zip(&per_layer)
            .map(|(n, vals)| {
                let (dt, bytes) = encode(vals, spec.dtype);
                (n.as_str(), vec![rows, b], dt, bytes)
            })
            .collect();
        tensors.push(("index", vec![rows], Dtype::I64, index));
        let md = HashMap::from([("format".to_string(), "coxlmm-activation-shard".to_string())]);
        let buf = serialize(&tpath, tensors, md)?;
        atomic_write(&tpath, &buf)?;
        atomic_write(&spath, &lines)?;
        let entry = ShardEntry {
            tensors: tname,
            samples: sname,
            first_ordinal: self.pending[0].0.ordinal,
            n_samples: self.pending.len(),
            rows,
            tensors_digest: Some(FileDigest::of(&buf)),
            samples_digest: Some(FileDigest::of(&lines)),
        };
        if k < self.manifest.shards.len() {
            self.manifest.shards[k] = entry;
            self.damaged.retain(|d| d.shard != k);
        } else {
            self.manifest.shards.push(entry);
        }
        self.pending.clear();
        self.queue.pop_front();
        self.manifest.complete = self.queue.is_empty();
        write_manifest(&self.dir, &self.manifest)
    }

    /// Checks that every sample was pushed and returns the manifest of the complete store
    /// (rewriting it when its bytes on disk differ).
    ///
    /// # Errors
    /// [`Error::BadSidecar`] when samples are still to push (fewer than the spec's total, or
    /// damaged shards not re-created); IO errors.
    pub fn finish(self) -> Result<RunManifest> {
        let mpath = self.dir.join(MANIFEST_FILE);
        if !self.queue.is_empty() {
            return Err(bad(
                &mpath,
                format!(
                    "only {} of {} samples were written{}",
                    self.manifest.samples_done()
                        - self.damaged.iter().map(|d| d.ordinals.len()).sum::<usize>(),
                    self.manifest.spec.total_samples,
                    if self.damaged.is_empty() {
                        String::new()
                    } else {
                        format!("; {} damaged shards are not re-created", self.damaged.len())
                    }
                ),
            ));
        }
        let bytes = manifest_bytes(&mpath, &self.manifest)?;
        if std::fs::read(&mpath).ok().as_deref() != Some(&bytes[..]) {
            atomic_write(&mpath, &bytes)?;
        }
        Ok(self.manifest)
    }

    /// The sample lines of the verified shards, in order (the damaged shards' are left out).
    ///
    /// # Errors
    /// IO errors, or a shard damaged since the store was opened.
    pub fn verified_samples(&self) -> Result<Vec<SampleRecord>> {
        let mut out = Vec::new();
        let mut rows_before = 0;
        for k in 0..self.manifest.shards.len() {
            if !self.queue.contains(&k) {
                let s = load_shard(&self.dir, &self.manifest, k, rows_before, false).map_err(
                    |(path, problem, _)| Error::DamagedShard {
                        path,
                        shard: k,
                        problem,
                    },
                )?;
                out.extend(s.records);
            }
            rows_before += self.manifest.shards[k].rows;
        }
        Ok(out)
    }
}

fn folder_has_visible_files(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir)
        .map_err(|cause| Error::Read {
            path: dir.to_path_buf(),
            cause,
        })?
        .filter_map(|e| e.ok())
        .any(|e| !e.file_name().to_string_lossy().starts_with('.')))
}

/// Reads every sample line of a store's listed shards, in order, checking each sample file
/// against the manifest (the tensor files are not read).
///
/// # Errors
/// [`Error::DamagedShard`] for a sample file that does not verify; manifest errors.
pub fn read_run_samples(dir: &Path) -> Result<Vec<SampleRecord>> {
    let m = require_manifest(dir)?;
    m.spec.check(&dir.join(MANIFEST_FILE))?;
    if m.shards.len() > m.spec.n_shards() {
        check_shards(dir, &m, false)?;
    }
    let mut out = Vec::new();
    let mut rows_before = 0;
    for k in 0..m.shards.len() {
        let s = load_shard(dir, &m, k, rows_before, false).map_err(|(path, problem, _)| {
            Error::DamagedShard {
                path,
                shard: k,
                problem,
            }
        })?;
        out.extend(s.records);
        rows_before += m.shards[k].rows;
    }
    Ok(out)
}

fn require_manifest(dir: &Path) -> Result<RunManifest> {
    read_manifest(dir)?.ok_or_else(|| Error::Read {
        path: dir.join(MANIFEST_FILE),
        cause: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not an activation store (it has no manifest.json)",
        ),
    })
}

/// One layer of a store: the concatenated `[M, B]` matrix and, per row, the sample.
#[derive(Debug, Clone)]
pub struct RunActivations {
    /// The rows of every shard, in order, as f32.
    pub matrix: Matrix,
    /// The layer read.
    pub layer: String,
    /// Dtype on disk.
    pub dtype: DiskDtype,
    /// Each row's sample ordinal.
    pub ordinals: Vec<usize>,
    /// Each row's sample id.
    pub sample_ids: Vec<String>,
    /// The manifest.
    pub manifest: RunManifest,
}

/// Reads one layer (`None`: the only one) of a complete store as one `[M, B]` matrix, verifying
/// every shard on the way.
///
/// # Errors
/// [`Error::BadSidecar`] when the store is incomplete (whatever its `complete` flag says) or the
/// layer is ambiguous or unknown; [`Error::DamagedShard`] for a shard that does not verify.
pub fn read_run(dir: &Path, layer: Option<&str>) -> Result<RunActivations> {
    let m = require_manifest(dir)?;
    let mpath = dir.join(MANIFEST_FILE);
    m.spec.check(&mpath)?;
    if !m.complete || m.samples_done() != m.spec.total_samples {
        return Err(bad(
            &mpath,
            format!(
                "the store is incomplete ({} of {} samples{}); resume the extraction that wrote \
                 it to finish it",
                m.samples_done(),
                m.spec.total_samples,
                if m.complete {
                    ", although its manifest says complete"
                } else {
                    ""
                }
            ),
        ));
    }
    if m.shards.len() > m.spec.n_shards() {
        check_shards(dir, &m, false)?;
    }
    let layer = match layer {
        Some(l) => l.strip_prefix("layer.").unwrap_or(l).to_string(),
        None if m.spec.layers.len() == 1 => m.spec.layers[0].clone(),
        None => {
            return Err(bad(
                &mpath,
                format!(
                    "the store has layers {}; name the one to read",
                    m.spec.layers.join(", ")
                ),
            ))
        }
    };
    if !m.spec.layers.contains(&layer) {
        return Err(bad(
            &mpath,
            format!(
                "no layer {layer:?} (the store has {})",
                m.spec.layers.join(", ")
            ),
        ));
    }
    let b = m.spec.hidden_size;
    let name = format!("layer.{layer}");
    let mut data = Vec::with_capacity(m.rows() * b);
    let mut ordinals = Vec::with_capacity(m.rows());
    let mut sample_ids = Vec::with_capacity(m.rows());
    let mut rows_before = 0;
    for k in 0..m.shards.len() {
        let s = load_shard(dir, &m, k, rows_before, true).map_err(|(path, problem, _)| {
            Error::DamagedShard {
                path,
                shard: k,
                problem,
            }
        })?;
        let path = dir.join(&m.shards[k].tensors);
        let st = parse(&path, &s.tensors)?;
        let t = st.tensor(&name).map_err(|_| Error::MissingTensor {
            path: path.clone(),
            name: name.clone(),
            available: st.names().join(", "),
        })?;
        let (vals, _) = to_f32(&path, &name, &t, 2)?;
        data.extend(vals);
        for r in s.records.into_iter().filter(|r| r.row.is_some()) {
            ordinals.push(r.ordinal);
            sample_ids.push(r.id);
        }
        rows_before += m.shards[k].rows;
    }
    let rows = ordinals.len();
    Ok(RunActivations {
        matrix: Matrix::new(data, rows, b).ok_or_else(|| bad(&mpath, "row count mismatch"))?,
        layer,
        dtype: m.spec.dtype,
        ordinals,
        sample_ids,
        manifest: m,
    })
}

/// Merges the complete stores of the parts `0/N … N-1/N` of one run into `out`, whose shard files
/// then equal those of a single unsharded run with the same settings. Every part is verified
/// first; nothing is written when one does not verify.
///
/// # Errors
/// [`Error::DamagedShard`] naming a part's damaged shard; [`Error::BadSidecar`] when a store is
/// incomplete or not a part, settings differ, or the parts overlap or leave a gap;
/// [`Error::Locked`] when another process writes `out`; IO errors.
pub fn merge_runs(out: &Path, parts: &[PathBuf]) -> Result<RunManifest> {
    let mut ms = Vec::with_capacity(parts.len());
    for p in parts {
        let check = verify_store(p)?;
        if let Some(d) = check.damaged.first() {
            return Err(d.error());
        }
        ms.push((p.clone(), check.manifest));
    }
    let Some((first_path, first)) = ms.first().cloned() else {
        return Err(bad(out, "nothing to merge: name the part stores"));
    };
    for (p, m) in &ms {
        let mp = p.join(MANIFEST_FILE);
        if !m.complete || m.samples_done() != m.spec.total_samples {
            return Err(bad(
                &mp,
                format!(
                    "incomplete ({} of {} samples): finish this part first",
                    m.samples_done(),
                    m.spec.total_samples
                ),
            ));
        }
        let norm = |s: &RunSpec| RunSpec {
            part: None,
            ordinal_start: 0,
            total_samples: 0,
            ..s.clone()
        };
        let mut diffs = spec_differences(&norm(&first.spec), &norm(&m.spec));
        if let (Some((_, n1)), Some((_, n2))) = (first.spec.part, m.spec.part) {
            if n1 != n2 {
                diffs.push(format!("part count {n1} vs {n2}"));
            }
        }
        if !diffs.is_empty() {
            return Err(bad(
                &mp,
                format!(
                    "not a part of the same run as {} ({})",
                    first_path.display(),
                    diffs.join("; ")
                ),
            ));
        }
    }
    ms.sort_by_key(|(_, m)| m.spec.ordinal_start);
    let mut next = 0;
    for (p, m) in &ms {
        let s = m.spec.ordinal_start;
        if s != next {
            return Err(bad(
                &p.join(MANIFEST_FILE),
                if s < next {
                    format!("covers samples {s}.. that another part also covers")
                } else {
                    format!("samples {next}..{s} are in no part given")
                },
            ));
        }
        next = s + m.spec.total_samples;
    }
    if next != first.spec.selection_total {
        return Err(bad(
            out,
            format!(
                "the parts cover samples 0..{next} of {}; a part is missing",
                first.spec.selection_total
            ),
        ));
    }
    let spec = RunSpec {
        part: None,
        ordinal_start: 0,
        total_samples: first.spec.selection_total,
        ..first.spec.clone()
    };
    let mut w = RunWriter::open(out, spec)?;
    if w.todo().is_empty() {
        return w.finish();
    }
    for (p, m) in &ms {
        let mut rows_before = 0;
        for k in 0..m.shards.len() {
            let s = load_shard(p, m, k, rows_before, true).map_err(|(path, problem, _)| {
                Error::DamagedShard {
                    path,
                    shard: k,
                    problem,
                }
            })?;
            rows_before += m.shards[k].rows;
            let vectors = shard_vectors(&p.join(&m.shards[k].tensors), m, k, &s.tensors)?;
            let mut kept = 0;
            for mut rec in s.records {
                let vecs = rec.row.map(|_| {
                    kept += 1;
                    vectors.iter().map(|l| l[kept - 1].clone()).collect()
                });
                if rec.ordinal != w.next_ordinal() {
                    continue;
                }
                rec.row = None;
                w.push(rec, vecs)?;
            }
        }
    }
    w.finish()
}

/// Every row vector of every layer of one verified shard: `[layer][row]`.
fn shard_vectors(
    path: &Path,
    m: &RunManifest,
    k: usize,
    bytes: &[u8],
) -> Result<Vec<Vec<Vec<f32>>>> {
    let st = parse(path, bytes)?;
    let b = m.spec.hidden_size;
    m.spec
        .layers
        .iter()
        .map(|l| {
            let name = format!("layer.{l}");
            let t = st.tensor(&name).map_err(|_| Error::MissingTensor {
                path: path.to_path_buf(),
                name: name.clone(),
                available: st.names().join(", "),
            })?;
            let (vals, _) = to_f32(path, &name, &t, 2)?;
            if vals.len() != m.shards[k].rows * b {
                return Err(bad(
                    path,
                    format!("{name} does not have {} rows", m.shards[k].rows),
                ));
            }
            Ok(vals.chunks_exact(b).map(<[f32]>::to_vec).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(total: usize, part: Option<(usize, usize)>, start: usize, n: usize) -> RunSpec {
        let mut settings = serde_json::Map::new();
        settings.insert("token".into(), "dog".into());
        RunSpec {
            settings,
            layers: vec!["1".into(), "norm".into()],
            dtype: DiskDtype::F16,
            hidden_size: 3,
            shard_size: 2,
            selection_total: total,
            part,
            ordinal_start: start,
            total_samples: n,
        }
    }

    fn sample(o: usize) -> (SampleRecord, Option<Vec<Vec<f32>>>) {
        let kept = o % 3 != 1;
        let rec = SampleRecord {
            ordinal: o,
            id: format!("s{o}"),
            image: format!("{o}.png"),
            captions: vec!["a dog".into()],
            generated: Some("a dog".into()),
            token_index: kept.then_some(1),
            token_id: kept.then_some(7),
            position: kept.then_some(10),
            row: None,
            skip: (!kept).then_some(Skip::TokenNotGenerated),
        };
        let v = kept.then(|| vec![vec![o as f32, 0.5, -1.0], vec![2.0 * o as f32, 0.0, 1.0]]);
        (rec, v)
    }

    fn write(dir: &Path, s: RunSpec, stop_after: Option<usize>) -> Result<()> {
        let mut w = RunWriter::open(dir, s)?;
        for o in w.todo().into_iter().flatten() {
            if Some(o) == stop_after {
                return Ok(()); // simulated crash: pending samples are lost
            }
            let (r, v) = sample(o);
            w.push(r, v)?;
        }
        w.finish().map(|_| ())
    }

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().starts_with("shard-"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_read_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), spec(7, None, 0, 7), None).unwrap();
        let r = read_run(d.path(), Some("norm")).unwrap();
        assert_eq!(r.ordinals, vec![0, 2, 3, 5, 6]);
        assert_eq!(r.sample_ids, vec!["s0", "s2", "s3", "s5", "s6"]);
        assert_eq!((r.matrix.rows, r.matrix.cols), (5, 3));
        assert_eq!(&r.matrix.data[3..6], &[4.0, 0.0, 1.0]);
        assert_eq!(r.manifest.shards.len(), 4);
        assert!(read_run(d.path(), None).is_err(), "two layers: ambiguous");
        let samples = read_run_samples(d.path()).unwrap();
        assert_eq!(samples.len(), 7);
        assert_eq!(samples[2].row, Some(1));
    }

    #[test]
    fn resume_after_crash_equals_uninterrupted() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), spec(7, None, 0, 7), None).unwrap();
        write(b.path(), spec(7, None, 0, 7), Some(5)).unwrap();
        let m = read_manifest(b.path()).unwrap().unwrap();
        assert_eq!((m.samples_done(), m.complete), (4, false));
        assert!(read_run(b.path(), Some("1")).is_err(), "incomplete");
        write(b.path(), spec(7, None, 0, 7), None).unwrap();
        assert_eq!(files(a.path()), files(b.path()));
    }

    #[test]
    fn resume_with_other_settings_is_refused() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), spec(7, None, 0, 7), Some(3)).unwrap();
        let mut other = spec(7, None, 0, 7);
        other.settings.insert("token".into(), "cat".into());
        let e = RunWriter::open(d.path(), other).err().unwrap().to_string();
        assert!(e.contains("another run") && e.contains("token"), "{e}");
    }

    #[test]
    fn merged_parts_equal_single_run() {
        let single = tempfile::tempdir().unwrap();
        write(single.path(), spec(7, None, 0, 7), None).unwrap();
        let parts: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        for (i, (s, e)) in [(0, 2), (2, 4), (4, 7)].into_iter().enumerate() {
            write(parts[i].path(), spec(7, Some((i, 3)), s, e - s), None).unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = parts.iter().rev().map(|p| p.path().to_path_buf()).collect();
        merge_runs(out.path(), &paths).unwrap();
        assert_eq!(files(single.path()), files(out.path()));
        let e = merge_runs(&out.path().join("x"), &paths[..2])
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("missing") || e.to_string().contains("no part"),
            "{e}"
        );
    }
}
