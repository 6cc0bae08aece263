//! The sharded activation store of `coxlmm extract`: a directory `OUT/` with `manifest.json` and
//! append-only shards `shard-00000.safetensors` + `shard-00000.jsonl`.
//!
//! A shard covers `shard_size` consecutive samples of the run's sample list (the last one fewer):
//! its safetensors file holds one `[n, B]` tensor `layer.<name>` per captured layer (f16 or f32)
//! and `index` (i64 `[n]`: the sample ordinal of each row), and its JSON-lines file one line per
//! sample, kept or skipped. A shard becomes visible only when complete: both files are written
//! atomically (temporary file, fsync, rename) and then the manifest, which lists the complete
//! shards, is rewritten atomically. A run killed at any moment is resumed by [`RunWriter::open`]
//! with the same spec: it continues after the last shard the manifest lists, and since every
//! shard file is a pure function of its samples, the result equals an uninterrupted run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};

use crate::matrix::{encode, parse, read_file, serialize, to_f32};
use crate::{atomic_write, DiskDtype, Error, Matrix, Result};

/// The manifest's file name inside a store directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The `format` value of a run manifest.
pub const RUN_FORMAT: &str = "coxlmm-activation-store";

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
}

/// `OUT/manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    /// Always [`RUN_FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The coxlmm version that wrote the store last.
    pub coxlmm_version: String,
    /// What the run is.
    #[serde(flatten)]
    pub spec: RunSpec,
    /// Complete shards, in order.
    pub shards: Vec<ShardEntry>,
    /// Whether every sample of the store is in a listed shard.
    pub complete: bool,
}

impl RunManifest {
    /// Samples already in complete shards.
    pub fn samples_done(&self) -> usize {
        self.shards.iter().map(|s| s.n_samples).sum()
    }

    /// Kept rows in complete shards.
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
    /// Why the sample was skipped (for skipped samples).
    #[serde(default)]
    pub skip: Option<String>,
}

fn bad(path: &Path, problem: impl Into<String>) -> Error {
    Error::BadSidecar {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Reads `DIR/manifest.json`; `Ok(None)` when absent.
pub fn read_manifest(dir: &Path) -> Result<Option<RunManifest>> {
    let path = dir.join(MANIFEST_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = read_file(&path)?;
    let m: RunManifest = serde_json::from_slice(&text).map_err(|e| {
        bad(
            &path,
            format!("not a coxlmm activation-store manifest: {e}"),
        )
    })?;
    if m.format != RUN_FORMAT {
        return Err(bad(
            &path,
            format!("format is {:?}, expected {RUN_FORMAT:?}", m.format),
        ));
    }
    Ok(Some(m))
}

fn write_manifest(dir: &Path, m: &RunManifest) -> Result<()> {
    let path = dir.join(MANIFEST_FILE);
    let mut json = serde_json::to_vec_pretty(m).map_err(|e| bad(&path, e.to_string()))?;
    json.push(b'\n');
    atomic_write(&path, &json)
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

fn shard_names(k: usize) -> (String, String) {
    (
        format!("shard-{k:05}.safetensors"),
        format!("shard-{k:05}.jsonl"),
    )
}

/// Appends samples to a store, one complete shard at a time.
pub struct RunWriter {
    dir: PathBuf,
    manifest: RunManifest,
    pending: Vec<(SampleRecord, Option<Vec<Vec<f32>>>)>,
}

impl RunWriter {
    /// Creates the store `dir`, or resumes it when its manifest has the same spec.
    ///
    /// # Errors
    /// [`Error::BadSidecar`] naming every difference when `dir` holds a store of another run, or
    /// when the spec is invalid; IO errors.
    pub fn open(dir: &Path, spec: RunSpec) -> Result<Self> {
        let mpath = dir.join(MANIFEST_FILE);
        if spec.shard_size == 0 || spec.hidden_size == 0 || spec.layers.is_empty() {
            return Err(bad(
                &mpath,
                "shard size, hidden size and the layer list must be non-empty",
            ));
        }
        if !matches!(spec.dtype, DiskDtype::F16 | DiskDtype::F32) {
            return Err(bad(&mpath, "layer tensors are stored as f16 or f32"));
        }
        let manifest = match read_manifest(dir)? {
            Some(mut m) => {
                let diffs = spec_differences(&m.spec, &spec);
                if !diffs.is_empty() {
                    return Err(bad(
                        &mpath,
                        format!(
                            "this folder holds the store of another run ({}); resume it with the \
                             same settings or write the new store into another folder",
                            diffs.join("; ")
                        ),
                    ));
                }
                m.coxlmm_version = env!("CARGO_PKG_VERSION").to_string();
                m
            }
            None => {
                if dir.is_dir()
                    && std::fs::read_dir(dir)
                        .map_err(|source| Error::Read {
                            path: dir.to_path_buf(),
                            source,
                        })?
                        .filter_map(|e| e.ok())
                        .any(|e| !e.file_name().to_string_lossy().starts_with('.'))
                {
                    return Err(bad(
                        &mpath,
                        format!(
                            "{} is not empty and holds no activation store; choose an empty or new folder",
                            dir.display()
                        ),
                    ));
                }
                let m = RunManifest {
                    format: RUN_FORMAT.into(),
                    version: 1,
                    coxlmm_version: env!("CARGO_PKG_VERSION").to_string(),
                    spec,
                    shards: Vec::new(),
                    complete: false,
                };
                std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                    path: dir.to_path_buf(),
                    source,
                })?;
                write_manifest(dir, &m)?;
                m
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
            pending: Vec::new(),
        })
    }

    /// The manifest as written so far.
    pub fn manifest(&self) -> &RunManifest {
        &self.manifest
    }

    /// The ordinal (in the whole selection) of the next sample to push: samples before it are
    /// in complete shards or pending.
    pub fn next_ordinal(&self) -> usize {
        self.manifest.spec.ordinal_start + self.manifest.samples_done() + self.pending.len()
    }

    /// Adds one sample: `vectors` (one per layer, each `hidden_size` long) when it is kept,
    /// `None` when skipped. Writes a shard when `shard_size` samples are pending.
    ///
    /// # Panics
    /// When `record.ordinal` is not [`Self::next_ordinal`], the vectors do not match the spec, or
    /// the store is already complete (caller bugs).
    pub fn push(&mut self, record: SampleRecord, vectors: Option<Vec<Vec<f32>>>) -> Result<()> {
        let spec = &self.manifest.spec;
        assert!(!self.manifest.complete, "push to a complete store");
        assert_eq!(record.ordinal, self.next_ordinal(), "samples out of order");
        assert!(
            record.ordinal < spec.ordinal_start + spec.total_samples,
            "more samples than the spec's total"
        );
        if let Some(v) = &vectors {
            assert_eq!(v.len(), spec.layers.len(), "one vector per layer");
            assert!(
                v.iter().all(|x| x.len() == spec.hidden_size),
                "vectors of hidden_size"
            );
        }
        self.pending.push((record, vectors));
        if self.pending.len() == spec.shard_size {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let spec = &self.manifest.spec;
        let k = self.manifest.shards.len();
        let (tname, sname) = shard_names(k);
        let tpath = self.dir.join(&tname);
        let spath = self.dir.join(&sname);
        let first_row = self.manifest.rows();
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
        let first_ordinal = self.pending[0].0.ordinal;
        self.manifest.shards.push(ShardEntry {
            tensors: tname,
            samples: sname,
            first_ordinal,
            n_samples: self.pending.len(),
            rows,
        });
        self.pending.clear();
        if self.manifest.samples_done() == self.manifest.spec.total_samples {
            self.manifest.complete = true;
        }
        write_manifest(&self.dir, &self.manifest)
    }

    /// Writes the last (partial) shard and marks the store complete.
    ///
    /// # Errors
    /// [`Error::BadSidecar`] when fewer samples than the spec's total were pushed; IO errors.
    pub fn finish(mut self) -> Result<RunManifest> {
        self.flush()?;
        if self.manifest.samples_done() != self.manifest.spec.total_samples {
            return Err(bad(
                &self.dir.join(MANIFEST_FILE),
                format!(
                    "only {} of {} samples were written",
                    self.manifest.samples_done(),
                    self.manifest.spec.total_samples
                ),
            ));
        }
        if !self.manifest.complete {
            self.manifest.complete = true;
            write_manifest(&self.dir, &self.manifest)?;
        }
        Ok(self.manifest)
    }
}

/// Reads every sample line of a store's complete shards, in order.
pub fn read_run_samples(dir: &Path) -> Result<Vec<SampleRecord>> {
    let m = require_manifest(dir)?;
    let mut out = Vec::new();
    for s in &m.shards {
        let path = dir.join(&s.samples);
        let text = read_file(&path)?;
        for (i, line) in text.split(|&c| c == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            out.push(
                serde_json::from_slice(line)
                    .map_err(|e| bad(&path, format!("line {}: {e}", i + 1)))?,
            );
        }
    }
    Ok(out)
}

fn require_manifest(dir: &Path) -> Result<RunManifest> {
    read_manifest(dir)?.ok_or_else(|| Error::Read {
        path: dir.join(MANIFEST_FILE),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not an activation store (no manifest.json); extract one into this folder first",
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

/// Reads one layer (`None`: the only one) of a complete store as one `[M, B]` matrix.
///
/// # Errors
/// [`Error::BadSidecar`] when the store is incomplete, the layer is ambiguous or unknown, or the
/// shard files disagree with the manifest; [`Error::NotSafetensors`] for a damaged shard.
pub fn read_run(dir: &Path, layer: Option<&str>) -> Result<RunActivations> {
    let m = require_manifest(dir)?;
    let mpath = dir.join(MANIFEST_FILE);
    if !m.complete {
        return Err(bad(
            &mpath,
            format!(
                "the store is incomplete ({} of {} samples); rerun the same extraction to \
                 finish it",
                m.samples_done(),
                m.spec.total_samples
            ),
        ));
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
    let mut dtype = m.spec.dtype;
    for s in &m.shards {
        let path = dir.join(&s.tensors);
        let bytes = read_file(&path)?;
        let st = parse(&path, &bytes)?;
        let t = st.tensor(&name).map_err(|_| Error::MissingTensor {
            path: path.clone(),
            name: name.clone(),
            available: st.names().join(", "),
        })?;
        if t.shape() != [s.rows, b] {
            return Err(bad(
                &path,
                format!(
                    "{name} has shape {:?}, expected [{}, {b}]",
                    t.shape(),
                    s.rows
                ),
            ));
        }
        let (vals, dt) = to_f32(&path, &name, &t, 2)?;
        dtype = dt;
        data.extend(vals);
        let idx = st.tensor("index").map_err(|_| Error::MissingTensor {
            path: path.clone(),
            name: "index".into(),
            available: name.clone(),
        })?;
        match idx.dtype() {
            Dtype::I64 => ordinals.extend(
                idx.data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as usize),
            ),
            Dtype::U32 => ordinals.extend(
                idx.data()
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize),
            ),
            other => {
                return Err(bad(
                    &path,
                    format!("index has dtype {other:?}, expected I64"),
                ))
            }
        }
    }
    let samples = read_run_samples(dir)?;
    let by_ordinal: HashMap<usize, &SampleRecord> =
        samples.iter().map(|s| (s.ordinal, s)).collect();
    let sample_ids = ordinals
        .iter()
        .map(|o| {
            by_ordinal
                .get(o)
                .map(|s| s.id.clone())
                .ok_or_else(|| bad(&mpath, format!("row of sample {o} has no sample line")))
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = ordinals.len();
    Ok(RunActivations {
        matrix: Matrix::new(data, rows, b).ok_or_else(|| bad(&mpath, "row count mismatch"))?,
        layer,
        dtype,
        ordinals,
        sample_ids,
        manifest: m,
    })
}

/// Reads every row vector of every layer of one shard: `[layer][row]`.
fn read_shard_vectors(dir: &Path, m: &RunManifest, s: &ShardEntry) -> Result<Vec<Vec<Vec<f32>>>> {
    let path = dir.join(&s.tensors);
    let bytes = read_file(&path)?;
    let st = parse(&path, &bytes)?;
    let b = m.spec.hidden_size;
    m.spec
        .layers
        .iter()
        .map(|l| {
            let name = format!("layer.{l}");
            let t = st.tensor(&name).map_err(|_| Error::MissingTensor {
                path: path.clone(),
                name: name.clone(),
                available: String::new(),
            })?;
            let (vals, _) = to_f32(&path, &name, &t, 2)?;
            if vals.len() != s.rows * b {
                return Err(bad(&path, format!("{name} does not have {} rows", s.rows)));
            }
            Ok(vals.chunks_exact(b).map(<[f32]>::to_vec).collect())
        })
        .collect()
}

/// Merges the complete stores of the parts `0/N … N-1/N` of one run into `out`, whose shard files
/// then equal those of a single unsharded run with the same settings.
///
/// # Errors
/// [`Error::BadSidecar`] when a store is incomplete or not a part, settings differ, or the parts
/// overlap or leave a gap; IO errors.
pub fn merge_runs(out: &Path, parts: &[PathBuf]) -> Result<RunManifest> {
    let mut ms = parts
        .iter()
        .map(|p| Ok((p.clone(), require_manifest(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let Some((first_path, first)) = ms.first().cloned() else {
        return Err(bad(out, "nothing to merge: name the part stores"));
    };
    for (p, m) in &ms {
        let mp = p.join(MANIFEST_FILE);
        if !m.complete {
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
    if w.manifest().complete {
        return Ok(w.manifest().clone());
    }
    for (p, m) in &ms {
        let samples = read_run_samples(p)?;
        let mut it = samples.into_iter();
        for s in &m.shards {
            let vectors = read_shard_vectors(p, m, s)?;
            for _ in 0..s.n_samples {
                let rec = it
                    .next()
                    .ok_or_else(|| bad(&p.join(&s.samples), "fewer sample lines than listed"))?;
                let vecs = match rec.row {
                    Some(r) => {
                        let local = r - rows_before(m, s);
                        Some(vectors.iter().map(|l| l[local].clone()).collect())
                    }
                    None => None,
                };
                if rec.ordinal < w.next_ordinal() {
                    continue;
                }
                w.push(rec, vecs)?;
            }
        }
    }
    w.finish()
}

fn rows_before(m: &RunManifest, s: &ShardEntry) -> usize {
    m.shards
        .iter()
        .take_while(|x| x.first_ordinal < s.first_ordinal)
        .map(|x| x.rows)
        .sum()
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
            skip: (!kept).then(|| "token_not_generated".into()),
        };
        let v = kept.then(|| vec![vec![o as f32, 0.5, -1.0], vec![2.0 * o as f32, 0.0, 1.0]]);
        (rec, v)
    }

    fn write(dir: &Path, s: RunSpec, stop_after: Option<usize>) -> Result<()> {
        let mut w = RunWriter::open(dir, s.clone())?;
        for o in w.next_ordinal()..s.ordinal_start + s.total_samples {
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
