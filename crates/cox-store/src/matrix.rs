//! Dense matrices in safetensors files, and the activation-matrix file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::Serialize;

use crate::{atomic_write, sidecar_path, Error, Result};

/// A dense row-major `rows × cols` f32 matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Row-major values.
    pub data: Vec<f32>,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
}

impl Matrix {
    /// Wraps row-major values; `None` when the length is not `rows × cols`.
    pub fn new(data: Vec<f32>, rows: usize, cols: usize) -> Option<Self> {
        (data.len() == rows * cols).then_some(Self { data, rows, cols })
    }
}

/// The dtype a matrix is stored in on disk (always f32 in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskDtype {
    /// IEEE half precision (the reference stores activations in fp16).
    F16,
    /// bfloat16 (read only).
    Bf16,
    /// Single precision.
    F32,
    /// Double precision (read only).
    F64,
}

impl std::fmt::Display for DiskDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DiskDtype::F16 => "f16",
            DiskDtype::Bf16 => "bf16",
            DiskDtype::F32 => "f32",
            DiskDtype::F64 => "f64",
        })
    }
}

impl std::str::FromStr for DiskDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f16" | "fp16" | "float16" => Ok(DiskDtype::F16),
            "f32" | "fp32" | "float32" => Ok(DiskDtype::F32),
            other => Err(format!("unsupported dtype {other:?}: use f16 or f32")),
        }
    }
}

/// An activation matrix read from disk: `M` samples × `B` features.
#[derive(Debug, Clone)]
pub struct ActivationsFile {
    /// The samples, converted to f32.
    pub matrix: Matrix,
    /// The dtype on disk.
    pub dtype: DiskDtype,
    /// The tensor's name in the file.
    pub tensor: String,
    /// The JSON sidecar (`<stem>.json`), if present.
    pub sidecar: Option<serde_json::Value>,
    /// The tensor file read.
    pub path: PathBuf,
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|cause| Error::Read {
        path: path.to_path_buf(),
        cause,
    })
}

pub(crate) fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| Error::NotSafetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Converts a tensor's bytes to f32, checking its rank.
pub(crate) fn to_f32(
    path: &Path,
    name: &str,
    t: &TensorView<'_>,
    rank: usize,
) -> Result<(Vec<f32>, DiskDtype)> {
    let bad = |problem: String| Error::BadTensor {
        path: path.to_path_buf(),
        name: name.to_string(),
        problem,
    };
    if t.shape().len() != rank {
        return Err(bad(format!(
            "has shape {:?}, expected {rank} dimensions",
            t.shape()
        )));
    }
    let d = t.data();
    let (vals, dtype) = match t.dtype() {
        Dtype::F32 => (
            d.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DiskDtype::F32,
        ),
        Dtype::F16 => (
            d.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DiskDtype::F16,
        ),
        Dtype::BF16 => (
            d.chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DiskDtype::Bf16,
        ),
        Dtype::F64 => {
            let shape = t.shape();
            let cols = if rank == 2 { shape[1].max(1) } else { 1 };
            let mut vals = Vec::with_capacity(d.len() / 8);
            for (i, c) in d.chunks_exact(8).enumerate() {
                let v = f64::from_le_bytes(c.try_into().expect("8 bytes"));
                // A finite f64 beyond f32::MAX would become infinite in memory, and be reported
                // downstream as "inf" although the file holds a finite number: name it here.
                if v.is_finite() && v.abs() > f32::MAX as f64 {
                    let at = if rank == 2 {
                        format!("row {} col {}", i / cols, i % cols)
                    } else {
                        format!("index {i}")
                    };
                    return Err(bad(format!(
                        "value {v:e} at {at} is outside the f32 range (±{:e}); rescale the                          matrix before storing it",
                        f32::MAX
                    )));
                }
                vals.push(v as f32);
            }
            (vals, DiskDtype::F64)
        }
        other => {
            return Err(bad(format!(
                "has dtype {other:?}; expected F16, BF16, F32 or F64"
            )))
        }
    };
    Ok((vals, dtype))
}

/// Reads an activation matrix: the 2-D tensor `tensor` (default: `activations`, or the file's only 2-D
/// tensor) of a safetensors file, in f16, bf16, f32 or f64, converted to f32, and its JSON sidecar.
pub fn read_activations(path: &Path, tensor: Option<&str>) -> Result<ActivationsFile> {
    let bytes = read_file(path)?;
    let st = parse(path, &bytes)?;
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let name = match tensor {
        Some(n) => n.to_string(),
        None if names.iter().any(|n| n == "activations") => "activations".to_string(),
        None => {
            let two_d: Vec<&String> = names
                .iter()
                .filter(|n| st.tensor(n).map(|t| t.shape().len() == 2).unwrap_or(false))
                .collect();
            match two_d.as_slice() {
                [only] => only.to_string(),
                _ => {
                    return Err(Error::MissingTensor {
                        path: path.to_path_buf(),
                        name: "activations".into(),
                        available: names.join(", "),
                    })
                }
            }
        }
    };
    let t = st.tensor(&name).map_err(|_| Error::MissingTensor {
        path: path.to_path_buf(),
        name: name.clone(),
        available: names.join(", "),
    })?;
    let (data, dtype) = to_f32(path, &name, &t, 2)?;
    let (rows, cols) = (t.shape()[0], t.shape()[1]);
    let side = sidecar_path(path);
    let sidecar = if side.exists() {
        let text = std::fs::read_to_string(&side).map_err(|cause| Error::Read {
            path: side.clone(),
            cause,
        })?;
        Some(serde_json::from_str(&text).map_err(|e| Error::BadSidecar {
            path: side.clone(),
            problem: format!("not valid JSON: {e}"),
        })?)
    } else {
        None
    };
    Ok(ActivationsFile {
        matrix: Matrix { data, rows, cols },
        dtype,
        tensor: name,
        sidecar,
        path: path.to_path_buf(),
    })
}

/// Encodes f32 values in a disk dtype (f16 or f32).
pub(crate) fn encode(values: &[f32], dtype: DiskDtype) -> (Dtype, Vec<u8>) {
    match dtype {
        DiskDtype::F16 => (
            Dtype::F16,
            values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
        ),
        DiskDtype::Bf16 => (
            Dtype::BF16,
            values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                .collect(),
        ),
        DiskDtype::F32 => (
            Dtype::F32,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        DiskDtype::F64 => (
            Dtype::F64,
            values
                .iter()
                .flat_map(|v| (*v as f64).to_le_bytes())
                .collect(),
        ),
    }
}

/// Serialises named tensors (name, shape, dtype, bytes) and file-level string metadata.
pub(crate) fn serialize(
    path: &Path,
    tensors: Vec<(&str, Vec<usize>, Dtype, Vec<u8>)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, shape, dt, bytes)| {
            TensorView::new(*dt, shape.clone(), bytes)
                .map(|v| (*n, v))
                .map_err(|e| Error::BadTensor {
                    path: path.to_path_buf(),
                    name: n.to_string(),
                    problem: e.to_string(),
                })
        })
        .collect::<Result<_>>()?;
    safetensors::tensor::serialize(views, Some(metadata)).map_err(|e| Error::BadTensor {
        path: path.to_path_buf(),
        name: String::new(),
        problem: e.to_string(),
    })
}

/// Writes an activation matrix as tensor `activations` (`[M, B]`, f16 or f32) of a safetensors file,
/// with `meta` as its JSON sidecar (`<stem>.json`). Both are written atomically, sidecar last.
pub fn write_activations<M: Serialize>(
    path: &Path,
    matrix: &Matrix,
    dtype: DiskDtype,
    meta: &M,
) -> Result<()> {
    let (dt, bytes) = encode(&matrix.data, dtype);
    let md = HashMap::from([("format".to_string(), "coxlmm-activations".to_string())]);
    let buf = serialize(
        path,
        vec![("activations", vec![matrix.rows, matrix.cols], dt, bytes)],
        md,
    )?;
    atomic_write(path, &buf)?;
    let side = sidecar_path(path);
    let json = serde_json::to_vec_pretty(meta).map_err(|e| Error::BadSidecar {
        path: side.clone(),
        problem: e.to_string(),
    })?;
    atomic_write(&side, &json)
}
