//! Finding, validating and memory-mapping a checkpoint's safetensors files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::error::{Error, Result};

/// Which naming scheme a checkpoint's tensors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// The llava-hf hub layout: `vision_tower.vision_model.*`, `multi_modal_projector.*`,
    /// `language_model.model.*`, `language_model.lm_head.weight`.
    Hub,
    /// The `transformers >= 4.52` layout: `model.vision_tower.vision_model.*`,
    /// `model.multi_modal_projector.*`, `model.language_model.*`, `lm_head.weight`.
    Transformers452,
}

impl WeightLayout {
    /// Prefix of the CLIP vision transformer.
    pub fn vision_prefix(self) -> &'static str {
        match self {
            WeightLayout::Hub => "vision_tower.vision_model",
            WeightLayout::Transformers452 => "model.vision_tower.vision_model",
        }
    }

    /// Prefix of the projector.
    pub fn projector_prefix(self) -> &'static str {
        match self {
            WeightLayout::Hub => "multi_modal_projector",
            WeightLayout::Transformers452 => "model.multi_modal_projector",
        }
    }

    /// Prefix of the Llama decoder (`embed_tokens`, `layers`, `norm`).
    pub fn decoder_prefix(self) -> &'static str {
        match self {
            WeightLayout::Hub => "language_model.model",
            WeightLayout::Transformers452 => "model.language_model",
        }
    }

    /// Prefix of the LM head (`weight`).
    pub fn lm_head_prefix(self) -> &'static str {
        match self {
            WeightLayout::Hub => "language_model.lm_head",
            WeightLayout::Transformers452 => "lm_head",
        }
    }

    /// Detects the layout from tensor names.
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str>, files: &str) -> Result<Self> {
        let mut sample = Vec::new();
        for n in names {
            if n.starts_with("language_model.model.") {
                return Ok(WeightLayout::Hub);
            }
            if n.starts_with("model.language_model.") {
                return Ok(WeightLayout::Transformers452);
            }
            if sample.len() < 5 {
                sample.push(n.to_string());
            }
        }
        Err(Error::UnknownLayout {
            files: files.to_string(),
            msg: format!(
                "no tensor starts with \"language_model.model.\" (llava-hf hub layout) or \
                 \"model.language_model.\" (transformers >= 4.52 layout); first names: {sample:?}"
            ),
        })
    }
}

#[derive(Debug, Clone)]
struct TensorInfo {
    file: usize,
    shape: Vec<usize>,
    dtype: String,
}

/// The safetensors files of a checkpoint, memory-mapped, with a name → (file, shape) index.
pub struct Checkpoint {
    files: Vec<PathBuf>,
    index: HashMap<String, TensorInfo>,
    mmaped: Arc<MmapedSafetensors>,
    layout: WeightLayout,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("files", &self.files)
            .field("tensors", &self.index.len())
            .field("layout", &self.layout)
            .finish()
    }
}

fn read_header(path: &Path) -> Result<Vec<(String, Vec<usize>, String)>> {
    use std::io::Read;
    let bad = |msg: String| Error::Safetensors {
        path: path.to_path_buf(),
        msg,
    };
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| {
        bad(format!(
            "file of {file_len} bytes is too short for a header"
        ))
    })?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 || n + 8 > file_len {
        return Err(bad(format!(
            "header length {n} is invalid for a file of {file_len} bytes"
        )));
    }
    let mut buf = vec![0u8; n as usize];
    f.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&buf).map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
    let mut out = Vec::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype").and_then(|d| d.as_str());
        let shape: Option<Vec<usize>> = info.get("shape").and_then(|s| {
            s.as_array()?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect()
        });
        let end = info
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .and_then(|o| o.get(1))
            .and_then(|o| o.as_u64());
        let (Some(dtype), Some(shape), Some(end)) = (dtype, shape, end) else {
            return Err(bad(format!("malformed header entry for tensor {name:?}")));
        };
        if 8 + n + end > file_len {
            return Err(bad(format!(
                "tensor {name:?} ends at byte {} but the file has {file_len} bytes (truncated?)",
                8 + n + end
            )));
        }
        out.push((name, shape, dtype.to_string()));
    }
    Ok(out)
}

impl Checkpoint {
    /// Finds `model.safetensors` or the shards listed in `model.safetensors.index.json` in `dir`,
    /// reads their headers and memory-maps them.
    pub fn open(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index_path = dir.join("model.safetensors.index.json");
        let files = if index_path.is_file() {
            let text =
                std::fs::read_to_string(&index_path).map_err(|e| Error::io(&index_path, e))?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Json {
                path: index_path.clone(),
                msg: e.to_string(),
            })?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::Json {
                    path: index_path.clone(),
                    msg: "no \"weight_map\" object".into(),
                })?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect();
            shards.sort();
            shards.dedup();
            let files: Vec<PathBuf> = shards.iter().map(|s| dir.join(s)).collect();
            for f in &files {
                if !f.is_file() {
                    return Err(Error::MissingFile {
                        path: f.clone(),
                        hint: format!("listed in {}", index_path.display()),
                    });
                }
            }
            files
        } else if single.is_file() {
            vec![single]
        } else {
            return Err(Error::MissingFile {
                path: single,
                hint: "expected model.safetensors or model.safetensors.index.json with shards \
                       (PyTorch .bin checkpoints are not supported)"
                    .into(),
            });
        };
        Self::from_files(files)
    }

    /// Indexes and memory-maps the given safetensors files.
    pub fn from_files(files: Vec<PathBuf>) -> Result<Self> {
        let mut index = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            for (name, shape, dtype) in read_header(f)? {
                index.insert(
                    name,
                    TensorInfo {
                        file: i,
                        shape,
                        dtype,
                    },
                );
            }
        }
        let list = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let layout = WeightLayout::detect(index.keys().map(String::as_str), &list)?;
        // SAFETY: the files are only read; as with every memory map, modifying them while the
        // model is alive is undefined behaviour, which the docs of `LlavaModel::load` state.
        let mmaped =
            unsafe { MmapedSafetensors::multi(&files) }.map_err(|e| Error::Safetensors {
                path: files.first().cloned().unwrap_or_default(),
                msg: e.to_string(),
            })?;
        Ok(Self {
            files,
            index,
            mmaped: Arc::new(mmaped),
            layout,
        })
    }

    /// The detected tensor layout.
    pub fn layout(&self) -> WeightLayout {
        self.layout
    }

    /// The safetensors files.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether a tensor exists.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The stored shape of a tensor.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.index.get(name).map(|i| i.shape.as_slice())
    }

    /// A [`VarBuilder`] over the checkpoint that converts to `dtype` on `device`, plus a slot
    /// that holds a precise [`Error`] (tensor, expected shape, file) when a lookup fails.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> (VarBuilder<'static>, ErrorSlot) {
        let slot = ErrorSlot::default();
        let backend = CheckedBackend {
            files: self.files.clone(),
            index: self.index.clone(),
            inner: self.mmaped.clone(),
            slot: slot.clone(),
        };
        (
            VarBuilder::from_backend(Box::new(backend), dtype, device.clone()),
            slot,
        )
    }
}

/// Holds the first precise error produced by a checked [`VarBuilder`].
#[derive(Debug, Clone, Default)]
pub struct ErrorSlot(Arc<Mutex<Option<Error>>>);

impl ErrorSlot {
    fn set(&self, e: Error) {
        if let Ok(mut g) = self.0.lock() {
            if g.is_none() {
                *g = Some(e);
            }
        }
    }

    /// Replaces a generic candle error by the precise one recorded, if any.
    pub fn refine(&self, e: impl Into<Error>) -> Error {
        match self.0.lock().ok().and_then(|mut g| g.take()) {
            Some(precise) => precise,
            None => e.into(),
        }
    }
}

struct CheckedBackend {
    files: Vec<PathBuf>,
    index: HashMap<String, TensorInfo>,
    inner: Arc<MmapedSafetensors>,
    slot: ErrorSlot,
}

impl CheckedBackend {
    fn check(&self, name: &str, expected: Option<&Shape>) -> candle_core::Result<()> {
        let fail = |e: Error| {
            let msg = e.to_string();
            self.slot.set(e);
            Err(candle_core::Error::Msg(msg))
        };
        let Some(info) = self.index.get(name) else {
            return fail(Error::MissingTensor {
                name: name.to_string(),
                expected: expected.map(|s| s.dims().to_vec()).unwrap_or_default(),
                files: self
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if !matches!(info.dtype.as_str(), "F32" | "F16" | "BF16" | "F64") {
            return fail(Error::TensorDType {
                name: name.to_string(),
                dtype: info.dtype.clone(),
                file: self.files[info.file].clone(),
            });
        }
        if let Some(s) = expected {
            if s.dims() != info.shape.as_slice() {
                return fail(Error::TensorShape {
                    name: name.to_string(),
                    expected: s.dims().to_vec(),
                    found: info.shape.clone(),
                    file: self.files[info.file].clone(),
                });
            }
        }
        Ok(())
    }
}

impl SimpleBackend for CheckedBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.check(name, Some(&s))?;
        self.inner.load(name, dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.check(name, None)?;
        self.inner.load(name, dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}
