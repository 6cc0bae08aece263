//! The run folder: the one module that knows where every file of a run lives and how it is read
//! and written (`docs/formats.md`, "Run folder"):
//!
//! ```text
//! RUN/run.json                    the settings (format coxlmm-run)
//! RUN/data/                       the synthetic world (`coxlmm demo` only)
//! RUN/extract/<split>/            activation stores (cox-store's sharded format)
//! RUN/dict/<method>.safetensors   dictionaries (+ .json sidecars)
//! RUN/ground/<method>.json        grounded words and Rnd-Words
//! RUN/metrics.json                the evaluation
//! RUN/report/                     the HTML site
//! RUN/explain/<stem>-<hash>.json  `coxlmm explain` results, one per image file
//! RUN/steer/<method>-c<K>-….json  `coxlmm steer` results (captions before → after)
//! RUN/causal.json                 `coxlmm causal`: causal validity on the synthetic world
//! RUN/report/thumbs/x-<stem>-<hash>.png   their thumbnails (and those of explained test samples)
//! ```
//!
//! `<stem>-<hash>` is `cox_store::unique_file_stem` of the image: its sanitised stem and 8 hex
//! digits of the SHA-256 of its canonical path, so images that share a stem (`a/x.png`, `b/x.jpg`)
//! or sanitise alike (`p<q.png`, `p>q.png`) never share a file.
//!
//! Every write is atomic (`cox_store::atomic_write`), so a killed run leaves whole files only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cox_decomp::{ConceptDictionary, Method};
use cox_ground_text::ConceptWords;
use cox_store::SampleRecord;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::explain::Explanation;
use crate::learn::Dictionary;
use crate::{Error, Metrics, RunSettings};

const RUN_FORMAT: &str = "coxlmm-run";

/// A run folder on disk.
#[derive(Clone, Debug)]
pub struct RunFolder {
    root: PathBuf,
}

/// `ground/<method>.json`: the grounded words of each concept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Grounding {
    pub method: Method,
    pub words: Vec<ConceptWords>,
    /// The Rnd-Words baseline: as many random-direction words as each concept has.
    pub rnd_words: Vec<ConceptWords>,
}

/// A split's rows (one layer) with their sample records, in row order.
pub struct SplitData {
    /// `m × b`, sample-major.
    pub x: Vec<f32>,
    pub m: usize,
    pub b: usize,
    pub samples: Vec<SampleRecord>,
}

impl SplitData {
    /// The image path of every sample, in row order.
    pub fn image_paths(&self) -> Vec<PathBuf> {
        self.samples
            .iter()
            .map(|r| PathBuf::from(&r.image))
            .collect()
    }
}

impl RunFolder {
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self {
            root: root.as_ref().to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `run.json`.
    pub fn settings_path(&self) -> PathBuf {
        self.root.join("run.json")
    }

    /// The synthetic world `coxlmm demo` generates (a `folder:` dataset).
    pub fn world(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The activation store of a split.
    pub fn store(&self, split: &str) -> PathBuf {
        self.root.join("extract").join(split)
    }

    /// The dictionary's name (`cox_store::tensor_path` adds `.safetensors`; the sidecar is `.json`).
    pub fn dict(&self, method: Method) -> PathBuf {
        self.root.join("dict").join(method.name())
    }

    /// The dictionary's tensor file.
    pub fn dict_file(&self, method: Method) -> PathBuf {
        cox_store::tensor_path(&self.dict(method))
    }

    pub fn grounding(&self, method: Method) -> PathBuf {
        self.root
            .join("ground")
            .join(format!("{}.json", method.name()))
    }

    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.json")
    }

    /// The HTML site.
    pub fn report(&self) -> PathBuf {
        self.root.join("report")
    }

    /// `coxlmm explain` results.
    pub fn explain(&self) -> PathBuf {
        self.root.join("explain")
    }

    /// `coxlmm steer` results.
    pub fn steer(&self) -> PathBuf {
        self.root.join("steer")
    }

    /// `coxlmm causal`'s results.
    pub fn causal(&self) -> PathBuf {
        self.root.join("causal.json")
    }

    /// Saves one `steer` result as `steer/<SteerRecord::file_stem>.json`.
    pub fn write_steer(&self, r: &crate::steer::SteerRecord) -> Result<PathBuf> {
        let path = self.steer().join(format!("{}.json", r.file_stem()));
        write_json(&path, r)?;
        Ok(path)
    }

    /// Every `steer/*.json`, sorted by file name.
    pub fn read_steers(&self) -> Result<Vec<crate::steer::SteerRecord>> {
        read_json_dir(&self.steer(), "steer")
    }

    pub fn read_causal(&self) -> Result<crate::causal::CausalReport> {
        read_json(&self.causal(), "causal")
    }

    pub fn write_causal(&self, c: &crate::causal::CausalReport) -> Result<()> {
        write_json(&self.causal(), c)
    }

    /// Creates the folder with `run.json`, or checks that the one there holds these settings.
    pub fn open(&self, s: &RunSettings) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        let path = self.settings_path();
        let now = json!({"format": RUN_FORMAT, "version": 1, "settings": s});
        if !path.is_file() {
            cox_store::atomic_write(&path, serde_json::to_string_pretty(&now)?.as_bytes())?;
            return Ok(());
        }
        let old = self.read_run_file()?;
        let (a, b) = (&old["settings"], &now["settings"]);
        let differ: Vec<String> = b
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| a.get(k.as_str()) != Some(*v))
            // The same checkpoint directory named another way (`./model`, an absolute path, a
            // link to it) is the same model.
            .filter(|(k, v)| !(k.as_str() == "model" && same_dir(a.get("model"), v)))
            .map(|(k, v)| {
                format!(
                    "{k}: {} in the run, {} now",
                    a.get(k.as_str()).unwrap_or(&Value::Null),
                    v
                )
            })
            .collect();
        if !differ.is_empty() {
            return Err(Error::OtherSettings {
                folder: self.root.clone(),
                differences: differ.join("; "),
            }
            .into());
        }
        Ok(())
    }

    fn read_run_file(&self) -> Result<Value> {
        let path = self.settings_path();
        let not_run = |why: String| Error::NotARunFolder {
            folder: self.root.clone(),
            why,
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| not_run(format!("cannot read run.json: {e}")))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| not_run(format!("run.json is not JSON: {e}")))?;
        if v.get("format").and_then(Value::as_str) != Some(RUN_FORMAT) {
            return Err(not_run("run.json is not a coxlmm run file".into()).into());
        }
        Ok(v)
    }

    /// The settings in `run.json`.
    pub fn read_settings(&self) -> Result<RunSettings> {
        let v = self.read_run_file()?;
        serde_json::from_value(v["settings"].clone())
            .with_context(|| format!("{}: unreadable settings", self.settings_path().display()))
    }

    /// A split's rows at `layer` with their sample records.
    pub fn load_split(&self, split: &str, layer: &str) -> Result<SplitData> {
        let store = self.store(split);
        let run = cox_store::read_run(&store, Some(layer))?;
        let mut by_ordinal: HashMap<usize, SampleRecord> = cox_store::read_run_samples(&store)?
            .into_iter()
            .map(|r| (r.ordinal, r))
            .collect();
        let samples = run
            .ordinals
            .iter()
            .map(|o| {
                by_ordinal
                    .remove(o)
                    .with_context(|| format!("{}: no record for sample {o}", store.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SplitData {
            m: run.matrix.rows,
            b: run.matrix.cols,
            x: run.matrix.data,
            samples,
        })
    }

    /// The samples of a split's store that were skipped (`None` when the store is unreadable).
    pub fn skipped(&self, split: &str) -> Option<usize> {
        let samples = cox_store::read_run_samples(&self.store(split)).ok()?;
        Some(samples.iter().filter(|s| s.skip.is_some()).count())
    }

    /// Whether the method's dictionary is written and readable.
    pub fn has_dictionary(&self, method: Method) -> bool {
        let path = self.dict_file(method);
        path.is_file() && cox_store::read_dictionary::<crate::learn::FitRecord>(&path).is_ok()
    }

    pub fn read_dictionary(&self, method: Method) -> Result<Dictionary> {
        let path = self.dict_file(method);
        if !path.is_file() {
            return Err(Error::StepNotDone {
                path,
                step: "learn",
            }
            .into());
        }
        Ok(cox_store::read_dictionary(&path)?)
    }

    pub fn write_dictionary(&self, method: Method, file: &Dictionary) -> Result<PathBuf> {
        let path = self.dict_file(method);
        cox_store::write_dictionary(&path, file)?;
        Ok(path)
    }

    pub fn read_grounding(&self, method: Method) -> Result<Grounding> {
        read_json(&self.grounding(method), "ground")
    }

    pub fn write_grounding(&self, g: &Grounding) -> Result<()> {
        write_json(&self.grounding(g.method), g)
    }

    pub fn read_metrics(&self) -> Result<Metrics> {
        read_json(&self.metrics(), "evaluate")
    }

    pub fn write_metrics(&self, m: &Metrics) -> Result<()> {
        write_json(&self.metrics(), m)
    }

    /// The file of the explanation whose id is `id` ([`explanation_id`]): `explain/<id>.json`, with
    /// the id sanitised again so that an id from elsewhere cannot name a path outside `explain/`.
    pub fn explanation_file(&self, id: &str) -> PathBuf {
        self.explain()
            .join(format!("{}.json", cox_ground_visual::sanitise_id(id)))
    }

    /// The thumbnail of an explained image inside the report folder, relative to it:
    /// `thumbs/x-<unique stem>.png`. It is keyed by the image file itself (not by the stored id),
    /// so explanations written before ids were unique still get one thumbnail per image.
    pub fn explanation_thumbnail(image: &Path) -> PathBuf {
        PathBuf::from("thumbs").join(format!("x-{}.png", cox_store::unique_file_stem(image)))
    }

    /// Saves one `explain` result as [`explanation_file`](Self::explanation_file)`(&e.id)`.
    pub fn write_explanation(&self, e: &Explanation) -> Result<PathBuf> {
        let path = self.explanation_file(&e.id);
        write_json(&path, e)?;
        Ok(path)
    }

    /// Every `explain/*.json`, sorted by file name.
    pub fn read_explanations(&self) -> Result<Vec<Explanation>> {
        read_json_dir(&self.explain(), "explain")
    }
}

/// Every `*.json` of `dir` (none when it does not exist), parsed, sorted by file name.
fn read_json_dir<T: serde::de::DeserializeOwned>(dir: &Path, what: &'static str) -> Result<Vec<T>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.iter().map(|p| read_json(p, what)).collect()
}

/// The id of an explained image, which names its `explain/<id>.json`: `cox_store::unique_file_stem`,
/// so two images never share an explanation file. Files written before (named by the bare stem)
/// are still read by [`RunFolder::read_explanations`].
pub fn explanation_id(image: &Path) -> String {
    cox_store::unique_file_stem(image)
}

/// The dictionary file as the decomposition crate's type (for `encode`).
pub fn concept_dictionary(d: &Dictionary, m: Method) -> ConceptDictionary {
    ConceptDictionary {
        method: m,
        k: d.concepts.rows,
        n_features: d.concepts.cols,
        concepts: d.concepts.data.clone(),
        mean: d.mean.clone(),
        alpha: d.meta.fit.lambda,
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, step: &'static str) -> Result<T> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::StepNotDone {
                path: path.to_path_buf(),
                step,
            }
            .into())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    serde_json::from_str(&text).with_context(|| format!("{} is unreadable", path.display()))
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    cox_store::atomic_write(path, serde_json::to_string_pretty(v)?.as_bytes())?;
    Ok(())
}
/// Whether two settings values name the same existing directory.
fn same_dir(a: Option<&Value>, b: &Value) -> bool {
    let canonical = |v: &Value| {
        let path = Path::new(v.as_str()?);
        path.is_dir()
            .then(|| std::fs::canonicalize(path).ok())
            .flatten()
    };
    match (a.and_then(canonical), canonical(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run resumes when its model folder is named another way (`x/../model`, a link to it), and
    /// is refused for another folder.
    #[test]
    fn the_same_model_folder_named_another_way_is_the_same_setting() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        std::fs::create_dir_all(dir.path().join("x")).unwrap();
        std::fs::create_dir_all(&model).unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        let folder = RunFolder::new(dir.path().join("run"));
        let settings =
            |m: PathBuf| RunSettings::new(m.display().to_string(), "folder:d", "dog", "1");
        folder.open(&settings(model.clone())).unwrap();
        folder
            .open(&settings(dir.path().join("x/../model")))
            .unwrap();
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&model, &link).unwrap();
            folder.open(&settings(link)).unwrap();
        }
        let e = folder
            .open(&settings(dir.path().join("other")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("other settings") && e.contains("model"), "{e}");
        // A hub id is compared as given.
        let e = folder
            .open(&settings(PathBuf::from("org/name")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("model"), "{e}");
    }
}
