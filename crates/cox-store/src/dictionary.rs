//! The concept-dictionary file: concepts, training activations and the fit's metadata.

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::matrix::{encode, parse, read_file, serialize, to_f32};
use crate::{atomic_write, sidecar_path, DiskDtype, Error, Matrix, Result};

/// The `format` tag of dictionary files.
pub const DICTIONARY_FORMAT: &str = "coxlmm-dictionary";

/// The JSON sidecar of a dictionary: its shape and where its training data came from (what this
/// crate needs to read the tensors and check them), and the fit's own record `F`, flattened into
/// the same JSON object.
///
/// The store does not interpret the fit: `F` is the caller's typed record (the command-line tool
/// stores the decomposition's report, so the method, its settings, objective and timings are
/// defined once, by the decomposition), and the default, a JSON map, reads any sidecar untyped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DictionaryMeta<F = serde_json::Map<String, serde_json::Value>> {
    /// Always `"coxlmm-dictionary"`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Number of concepts K.
    pub k: usize,
    /// Feature dimension B.
    pub n_features: usize,
    /// Number of training samples M.
    pub n_samples: usize,
    /// Where the training activations came from.
    pub source: Option<String>,
    /// Training sample ids, in row order of `activations` (when the source had them).
    pub sample_ids: Option<Vec<String>>,
    /// How the dictionary was fitted: every other key of the sidecar.
    #[serde(flatten)]
    pub fit: F,
}

/// A dictionary file's content.
#[derive(Debug, Clone, PartialEq)]
pub struct DictionaryFile<F = serde_json::Map<String, serde_json::Value>> {
    /// Concepts, `K × B`.
    pub concepts: Matrix,
    /// Training activations, `M × K`.
    pub activations: Matrix,
    /// Centring vector (`B`, PCA only).
    pub mean: Option<Vec<f32>>,
    /// Metadata.
    pub meta: DictionaryMeta<F>,
}

/// Writes `<stem>.safetensors` (tensors `concepts` `[K, B]`, `activations` `[M, K]`, optional `mean`
/// `[B]`, all f32; `__metadata__` `format`) and `<stem>.json` (the [`DictionaryMeta`]).
/// The tensor file is written first and the sidecar last, each atomically.
pub fn write_dictionary<F: Serialize>(tensor_file: &Path, dict: &DictionaryFile<F>) -> Result<()> {
    let m = &dict.meta;
    let bad = |problem: String| Error::BadSidecar {
        path: tensor_file.to_path_buf(),
        problem,
    };
    if dict.concepts.rows != m.k || dict.concepts.cols != m.n_features {
        return Err(bad(format!(
            "concepts are {}×{} but the metadata says K = {}, B = {}",
            dict.concepts.rows, dict.concepts.cols, m.k, m.n_features
        )));
    }
    if dict.activations.rows != m.n_samples || dict.activations.cols != m.k {
        return Err(bad(format!(
            "activations are {}×{} but the metadata says M = {}, K = {}",
            dict.activations.rows, dict.activations.cols, m.n_samples, m.k
        )));
    }
    let mut tensors = vec![];
    let (dt, b) = encode(&dict.concepts.data, DiskDtype::F32);
    tensors.push(("concepts", vec![m.k, m.n_features], dt, b));
    let (dt, b) = encode(&dict.activations.data, DiskDtype::F32);
    tensors.push(("activations", vec![m.n_samples, m.k], dt, b));
    if let Some(mean) = &dict.mean {
        let (dt, b) = encode(mean, DiskDtype::F32);
        tensors.push(("mean", vec![mean.len()], dt, b));
    }
    // One entry only: safetensors serialises this map in hash order, and the files must be
    // byte-identical for identical inputs. The method is in the sidecar.
    let md = HashMap::from([("format".to_string(), DICTIONARY_FORMAT.to_string())]);
    let buf = serialize(tensor_file, tensors, md)?;
    atomic_write(tensor_file, &buf)?;
    let side = sidecar_path(tensor_file);
    let json = serde_json::to_vec_pretty(m).map_err(|e| bad(e.to_string()))?;
    atomic_write(&side, &json)
}

/// Reads a dictionary written by [`write_dictionary`], checking the tensors against the sidecar;
/// the fit's record is read as `F` (a sidecar whose record is not an `F` is an error naming it).
pub fn read_dictionary<F: DeserializeOwned>(tensor_file: &Path) -> Result<DictionaryFile<F>> {
    let side = sidecar_path(tensor_file);
    let text = std::fs::read_to_string(&side).map_err(|cause| Error::Read {
        path: side.clone(),
        cause,
    })?;
    let meta: DictionaryMeta<F> = serde_json::from_str(&text).map_err(|e| Error::BadSidecar {
        path: side.clone(),
        problem: format!("not a coxlmm dictionary sidecar: {e}"),
    })?;
    if meta.format != DICTIONARY_FORMAT {
        return Err(Error::BadSidecar {
            path: side,
            problem: format!(
                "format is {:?}, expected {DICTIONARY_FORMAT:?}",
                meta.format
            ),
        });
    }
    let bytes = read_file(tensor_file)?;
    let st = parse(tensor_file, &bytes)?;
    let get = |name: &str, rank: usize, shape: &[usize]| -> Result<Vec<f32>> {
        let t = st.tensor(name).map_err(|_| Error::MissingTensor {
            path: tensor_file.to_path_buf(),
            name: name.to_string(),
            available: st.names().join(", "),
        })?;
        if t.shape() != shape {
            return Err(Error::BadTensor {
                path: tensor_file.to_path_buf(),
                name: name.to_string(),
                problem: format!(
                    "has shape {:?}, but the sidecar implies {shape:?}",
                    t.shape()
                ),
            });
        }
        Ok(to_f32(tensor_file, name, &t, rank)?.0)
    };
    let concepts = get("concepts", 2, &[meta.k, meta.n_features])?;
    let activations = get("activations", 2, &[meta.n_samples, meta.k])?;
    let mean = if st.names().contains(&"mean") {
        Some(get("mean", 1, &[meta.n_features])?)
    } else {
        None
    };
    Ok(DictionaryFile {
        concepts: Matrix {
            data: concepts,
            rows: meta.k,
            cols: meta.n_features,
        },
        activations: Matrix {
            data: activations,
            rows: meta.n_samples,
            cols: meta.k,
        },
        mean,
        meta,
    })
}
