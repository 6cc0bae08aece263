//! Finding, validating and memory-mapping a checkpoint's safetensors files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::error::{Error, Result};

/// Which naming scheme a checkpoint's tensors use. transformers itself loads all of them (its
/// key-renaming rules for LLaVA), so coxlmm does too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLayout {
    /// The llava-hf hub layout, written by `save_pretrained` before transformers 4.52:
    /// `vision_tower.vision_model.*`, `multi_modal_projector.*`, `language_model.model.*`,
    /// `language_model.lm_head.weight`.
    Hub,
    /// Written by transformers 4.52 – 4.57: `model.vision_tower.vision_model.*`,
    /// `model.multi_modal_projector.*`, `model.language_model.*`, `lm_head.weight`.
    Transformers452,
    /// Written by transformers 5.x `save_pretrained`: the hub names, except that the vision
    /// tower has no `vision_model.` level (`vision_tower.embeddings.*`,
    /// `vision_tower.encoder.*`, `vision_tower.pre_layrnorm.*`).
    Transformers5,
    /// A transformers 5.x model's own `state_dict()` names: `model.vision_tower.embeddings.*`,
    /// `model.multi_modal_projector.*`, `model.language_model.*`, `lm_head.weight`.
    Transformers5StateDict,
}

impl WeightLayout {
    /// Every layout, in detection order.
    pub const ALL: [WeightLayout; 4] = [
        WeightLayout::Hub,
        WeightLayout::Transformers452,
        WeightLayout::Transformers5,
        WeightLayout::Transformers5StateDict,
    ];

    /// A short description naming who writes this layout (for logs and errors).
    pub fn describe(self) -> &'static str {
        match self {
            WeightLayout::Hub => "llava-hf hub layout (transformers < 4.52)",
            WeightLayout::Transformers452 => "transformers 4.52-4.57 layout",
            WeightLayout::Transformers5 => "transformers 5.x save_pretrained layout",
            WeightLayout::Transformers5StateDict => "transformers 5.x state_dict layout",
        }
    }

    /// Prefix of the CLIP vision transformer (`embeddings`, `pre_layrnorm`, `encoder`).
    pub fn vision_prefix(self) -> &'static str {
        match self {
            WeightLayout::Hub => "vision_tower.vision_model",
            WeightLayout::Transformers452 => "model.vision_tower.vision_model",
            WeightLayout::Transformers5 => "vision_tower",
            WeightLayout::Transformers5StateDict => "model.vision_tower",
        }
    }

    /// Prefix of the projector.
    pub fn projector_prefix(self) -> &'static str {
        match self {
            WeightLayout::Hub | WeightLayout::Transformers5 => "multi_modal_projector",
            WeightLayout::Transformers452 | WeightLayout::Transformers5StateDict => {
                "model.multi_modal_projector"
            }
        }
    }

    /// Prefix of the Llama decoder (`embed_tokens`, `layers`, `norm`).
    pub fn decoder_prefix(self) -> &'static str {
        match self {
            WeightLayout::Hub | WeightLayout::Transformers5 => "language_model.model",
            WeightLayout::Transformers452 | WeightLayout::Transformers5StateDict => {
                "model.language_model"
            }
        }
    }

    /// Prefix of the LM head (`weight`).
    pub fn lm_head_prefix(self) -> &'static str {
        match self {
            WeightLayout::Hub | WeightLayout::Transformers5 => "language_model.lm_head",
            WeightLayout::Transformers452 | WeightLayout::Transformers5StateDict => "lm_head",
        }
    }

    /// Detects the layout from tensor names: the one whose token embeddings and patch
    /// embedding both exist.
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str>, files: &str) -> Result<Self> {
        let names: std::collections::HashSet<&str> = names.into_iter().collect();
        let has = |l: WeightLayout| {
            names.contains(format!("{}.embed_tokens.weight", l.decoder_prefix()).as_str())
                && names.contains(
                    format!("{}.embeddings.patch_embedding.weight", l.vision_prefix()).as_str(),
                )
        };
        if let Some(l) = Self::ALL.into_iter().find(|&l| has(l)) {
            return Ok(l);
        }
        let mut sample: Vec<&str> = names.iter().copied().collect();
        sample.sort_unstable();
        sample.truncate(6);
        let expected = Self::ALL
            .iter()
            .map(|l| {
                format!(
                    "{}: \"{}.embed_tokens.weight\" and \"{}.embeddings.patch_embedding.weight\"",
                    l.describe(),
                    l.decoder_prefix(),
                    l.vision_prefix()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Err(Error::UnknownLayout {
            files: files.to_string(),
            msg: format!(
                "the tensor names match no LLaVA layout transformers loads ({expected}); first \
                 names: {sample:?}"
            ),
        })
    }
}

#[derive(Debug, Clone)]
struct TensorInfo {
    file: usize,
    shape: Vec<usize>,
    dtype: String,
    /// Absolute byte range of the data in the file.
    start: u64,
    end: u64,
}

/// The safetensors files of a checkpoint, with a name → (file, shape, dtype, byte range) index.
///
/// Tensors are read one at a time with positioned reads straight into the buffer of the tensor
/// that will hold them (converted in small chunks when the dtype changes), so loading a model
/// needs the memory of its weights in the compute dtype plus one chunk — no memory map whose
/// pages stay resident beside a converted copy.
pub struct Checkpoint {
    files: Vec<PathBuf>,
    index: HashMap<String, TensorInfo>,
    layout: Option<WeightLayout>,
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

/// Reads and checks the header of the safetensors file `path` (file number `file`).
fn read_header(path: &Path, file: usize) -> Result<Vec<(String, TensorInfo)>> {
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
        let offsets = info.get("data_offsets").and_then(|o| o.as_array());
        let offset = |i: usize| offsets.and_then(|o| o.get(i)).and_then(|o| o.as_u64());
        let (Some(dtype), Some(shape), Some(begin), Some(end)) =
            (dtype, shape, offset(0), offset(1))
        else {
            return Err(bad(format!("malformed header entry for tensor {name:?}")));
        };
        if begin > end {
            return Err(bad(format!(
                "tensor {name:?} has data_offsets [{begin}, {end}] (start after end)"
            )));
        }
        if let Some(size) = dtype_size(dtype) {
            let count = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
            if count.and_then(|c| c.checked_mul(size as u64)) != Some(end - begin) {
                return Err(bad(format!(
                    "tensor {name:?} of shape {shape:?} and dtype {dtype} needs {} bytes but its \
                     data_offsets span {} bytes",
                    count.map_or("too many".to_string(), |c| (c * size as u64).to_string()),
                    end - begin
                )));
            }
        }
        if 8 + n + end > file_len {
            return Err(bad(format!(
                "tensor {name:?} ends at byte {} but the file has {file_len} bytes (truncated?)",
                8 + n + end
            )));
        }
        out.push((
            name,
            TensorInfo {
                file,
                shape,
                dtype: dtype.to_string(),
                start: 8 + n + begin,
                end: 8 + n + end,
            },
        ));
    }
    Ok(out)
}

/// Bytes per element of a safetensors dtype this crate reads.
fn dtype_size(dtype: &str) -> Option<usize> {
    match dtype {
        "F32" => Some(4),
        "F16" | "BF16" => Some(2),
        "F64" => Some(8),
        _ => None,
    }
}

impl Checkpoint {
    /// Finds `model.safetensors` or the shards listed in `model.safetensors.index.json` in `dir`,
    /// reads their headers and memory-maps them.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::from_files(Self::find_files(dir)?)
    }

    /// Like [`Self::open`] for architectures other than LLaVA: the files are indexed without
    /// requiring one of the LLaVA tensor layouts; the caller recognises its own names with
    /// [`Self::contains`] / [`Self::names`].
    pub fn open_any(dir: &Path) -> Result<Self> {
        Self::index_files(Self::find_files(dir)?, false)
    }

    /// The safetensors files of a checkpoint directory: `model.safetensors`, or the shards that
    /// `model.safetensors.index.json` lists.
    pub fn find_files(dir: &Path) -> Result<Vec<PathBuf>> {
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
        Ok(files)
    }

    /// Indexes the given safetensors files of a LLaVA checkpoint (one of the layouts required).
    pub fn from_files(files: Vec<PathBuf>) -> Result<Self> {
        Self::index_files(files, true)
    }

    /// Indexes the given safetensors files whatever their tensor names.
    pub fn from_files_any(files: Vec<PathBuf>) -> Result<Self> {
        Self::index_files(files, false)
    }

    fn index_files(files: Vec<PathBuf>, llava: bool) -> Result<Self> {
        let mut index = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            index.extend(read_header(f, i)?);
        }
        let list = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let layout = match WeightLayout::detect(index.keys().map(String::as_str), &list) {
            Ok(l) => {
                tracing::info!("{list}: {}", l.describe());
                Some(l)
            }
            Err(e) if llava => return Err(e),
            Err(_) => None,
        };
        Ok(Self {
            files,
            index,
            layout,
        })
    }

    /// The detected LLaVA tensor layout: always `Some` for a checkpoint from [`Self::open`] /
    /// [`Self::from_files`] (they fail otherwise); `None` for one from [`Self::open_any`] whose
    /// names match no LLaVA layout (other architectures recognise their own names).
    pub fn layout(&self) -> Option<WeightLayout> {
        self.layout
    }

    /// The LLaVA tensor layout, or an error naming the files when the names match none (a
    /// checkpoint of another architecture opened with [`Self::open_any`]).
    pub fn llava_layout(&self) -> Result<WeightLayout> {
        match self.layout {
            Some(l) => Ok(l),
            None => {
                let list = self
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                WeightLayout::detect(self.index.keys().map(String::as_str), &list)
            }
        }
    }

    /// Every tensor name, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
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

    /// The stored dtype of a tensor (`"F32"`, `"BF16"`, ...).
    pub fn dtype(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|i| i.dtype.as_str())
    }

    /// Total bytes of tensor data in the files.
    pub fn data_bytes(&self) -> u64 {
        self.index.values().map(|i| i.end - i.start).sum()
    }

    /// Total number of stored elements.
    pub fn num_elements(&self) -> u64 {
        self.index
            .values()
            .map(|i| i.shape.iter().product::<usize>() as u64)
            .sum()
    }

    /// Reads one tensor as `dtype` on `device`, converting from the stored dtype.
    pub fn load(&self, name: &str, dtype: DType, device: &Device) -> Result<Tensor> {
        let info = self.index.get(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_string(),
            expected: Vec::new(),
            files: self.file_list(),
        })?;
        read_tensor(&self.files[info.file], name, info, dtype, device)
    }

    fn file_list(&self) -> String {
        self.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A [`VarBuilder`] over the checkpoint that converts to `dtype` on `device`, plus a slot
    /// that holds a precise [`Error`] (tensor, expected shape, file) when a lookup fails.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> (VarBuilder<'static>, ErrorSlot) {
        let slot = ErrorSlot::default();
        let backend = CheckedBackend {
            files: self.files.clone(),
            index: self.index.clone(),
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

/// One element type that a tensor can be built from without copying.
trait Elem: candle_core::WithDType + Copy + Default {
    fn from_f32(v: f32) -> Self;
    fn from_f64(v: f64) -> Self;
}

impl Elem for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Elem for f64 {
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

impl Elem for half::f16 {
    fn from_f32(v: f32) -> Self {
        half::f16::from_f32(v)
    }
    fn from_f64(v: f64) -> Self {
        half::f16::from_f64(v)
    }
}

impl Elem for half::bf16 {
    fn from_f32(v: f32) -> Self {
        half::bf16::from_f32(v)
    }
    fn from_f64(v: f64) -> Self {
        half::bf16::from_f64(v)
    }
}

/// Bytes converted per read when the stored dtype differs from the wanted one.
const CHUNK: usize = 1 << 20;

thread_local! {
    /// Set while [`with_transposed_load`] runs: 2-D tensors are read straight into their
    /// transposed, contiguous layout.
    static LOAD_TRANSPOSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (typically one `VarBuilder::get` of a `[out, in]` weight) so that a checkpoint
/// backend reads the matrix straight into a contiguous `[in, out]` buffer and returns a
/// transposed view of it (shape `[out, in]`). `t()?.contiguous()?` of the result then copies
/// nothing, so loading a linear layer needs no second copy of its weight. Other backends (a
/// `VarMap` while training) ignore it.
pub fn with_transposed_load<T>(f: impl FnOnce() -> T) -> T {
    let old = LOAD_TRANSPOSED.with(|c| c.replace(true));
    let out = f();
    LOAD_TRANSPOSED.with(|c| c.set(old));
    out
}

/// Converts little-endian stored values to `T`.
fn convert_into<T: Elem>(stored: &str, b: &[u8], dst: &mut [T]) {
    match stored {
        "F32" => {
            for (d, c) in dst.iter_mut().zip(b.chunks_exact(4)) {
                *d = <T as Elem>::from_f32(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
        }
        "F16" => {
            for (d, c) in dst.iter_mut().zip(b.chunks_exact(2)) {
                *d = <T as Elem>::from_f32(half::f16::from_le_bytes([c[0], c[1]]).to_f32());
            }
        }
        "BF16" => {
            for (d, c) in dst.iter_mut().zip(b.chunks_exact(2)) {
                *d = <T as Elem>::from_f32(half::bf16::from_le_bytes([c[0], c[1]]).to_f32());
            }
        }
        _ => {
            for (d, c) in dst.iter_mut().zip(b.chunks_exact(8)) {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                *d = <T as Elem>::from_f64(f64::from_le_bytes(a));
            }
        }
    }
}

/// Reads a row-major `[rows, cols]` matrix into a row-major `[cols, rows]` vector, a block of
/// rows at a time (about [`CHUNK`] bytes), so the only extra memory is one block.
fn read_elems_transposed<T: Elem>(
    f: &mut std::fs::File,
    stored: &str,
    rows: usize,
    cols: usize,
) -> std::io::Result<Vec<T>> {
    use std::io::Read;
    let size = dtype_size(stored).expect("checked dtype");
    let mut out = vec![T::default(); rows * cols];
    let block = (CHUNK / (size * cols.max(1))).clamp(1, rows.max(1));
    let mut bytes = vec![0u8; block * cols * size];
    let mut vals = vec![T::default(); block * cols];
    let mut r0 = 0;
    while r0 < rows {
        let take = block.min(rows - r0);
        let b = &mut bytes[..take * cols * size];
        f.read_exact(b)?;
        let v = &mut vals[..take * cols];
        convert_into(stored, b, v);
        for c in 0..cols {
            let dst = &mut out[c * rows + r0..c * rows + r0 + take];
            for (r, d) in dst.iter_mut().enumerate() {
                *d = v[r * cols + c];
            }
        }
        r0 += take;
    }
    Ok(out)
}

/// Reads `n` elements stored as `stored` (little-endian) from `f` at its current position into
/// a vector of `T`: straight into the vector's memory when the types agree, else in chunks.
fn read_elems<T: Elem>(f: &mut std::fs::File, stored: &str, n: usize) -> std::io::Result<Vec<T>> {
    use std::io::Read;
    let same = matches!(
        (stored, T::DTYPE),
        ("F32", DType::F32) | ("F16", DType::F16) | ("BF16", DType::BF16) | ("F64", DType::F64)
    );
    let mut out = vec![T::default(); n];
    if same && cfg!(target_endian = "little") {
        // SAFETY: `T` is one of f32, f64, f16, bf16 — plain data for which every bit pattern
        // is a valid value — and the byte slice covers exactly the vector's initialised
        // elements.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                out.as_mut_ptr().cast::<u8>(),
                n * std::mem::size_of::<T>(),
            )
        };
        f.read_exact(bytes)?;
        return Ok(out);
    }
    let size = dtype_size(stored).expect("checked dtype");
    let mut buf = vec![0u8; CHUNK - CHUNK % size];
    let mut done = 0;
    while done < n {
        let take = (n - done).min(buf.len() / size);
        let b = &mut buf[..take * size];
        f.read_exact(b)?;
        convert_into(stored, b, &mut out[done..done + take]);
        done += take;
    }
    Ok(out)
}

/// Reads one tensor from its file as `dtype` on `device`.
fn read_tensor(
    path: &Path,
    name: &str,
    info: &TensorInfo,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    use std::io::{Seek, SeekFrom};
    if dtype_size(&info.dtype).is_none() {
        return Err(Error::TensorDType {
            name: name.to_string(),
            dtype: info.dtype.clone(),
            file: path.to_path_buf(),
        });
    }
    let n: usize = info.shape.iter().product();
    let io = |e: std::io::Error| Error::io(path, e);
    let mut f = std::fs::File::open(path).map_err(io)?;
    f.seek(SeekFrom::Start(info.start)).map_err(io)?;
    let cpu = &Device::Cpu;
    if let [rows, cols] = info.shape[..] {
        if LOAD_TRANSPOSED.with(|c| c.get()) {
            let shape = (cols, rows);
            let t = match dtype {
                DType::F64 => Tensor::from_vec(
                    read_elems_transposed::<f64>(&mut f, &info.dtype, rows, cols).map_err(io)?,
                    shape,
                    cpu,
                )?,
                DType::F16 => Tensor::from_vec(
                    read_elems_transposed::<half::f16>(&mut f, &info.dtype, rows, cols)
                        .map_err(io)?,
                    shape,
                    cpu,
                )?,
                DType::BF16 => Tensor::from_vec(
                    read_elems_transposed::<half::bf16>(&mut f, &info.dtype, rows, cols)
                        .map_err(io)?,
                    shape,
                    cpu,
                )?,
                other => Tensor::from_vec(
                    read_elems_transposed::<f32>(&mut f, &info.dtype, rows, cols).map_err(io)?,
                    shape,
                    cpu,
                )?
                .to_dtype(other)?,
            };
            let t = if device.is_cpu() {
                t
            } else {
                t.to_device(device)?
            };
            return Ok(t.t()?);
        }
    }
    let shape = info.shape.clone();
    let t = match dtype {
        DType::F32 => Tensor::from_vec(
            read_elems::<f32>(&mut f, &info.dtype, n).map_err(io)?,
            shape,
            cpu,
        )?,
        DType::F64 => Tensor::from_vec(
            read_elems::<f64>(&mut f, &info.dtype, n).map_err(io)?,
            shape,
            cpu,
        )?,
        DType::F16 => Tensor::from_vec(
            read_elems::<half::f16>(&mut f, &info.dtype, n).map_err(io)?,
            shape,
            cpu,
        )?,
        DType::BF16 => Tensor::from_vec(
            read_elems::<half::bf16>(&mut f, &info.dtype, n).map_err(io)?,
            shape,
            cpu,
        )?,
        other => {
            // Integer compute dtypes are not a model's; read as f32 and let candle convert.
            Tensor::from_vec(
                read_elems::<f32>(&mut f, &info.dtype, n).map_err(io)?,
                shape,
                cpu,
            )?
            .to_dtype(other)?
        }
    };
    Ok(if device.is_cpu() {
        t
    } else {
        t.to_device(device)?
    })
}

struct CheckedBackend {
    files: Vec<PathBuf>,
    index: HashMap<String, TensorInfo>,
    slot: ErrorSlot,
}

impl CheckedBackend {
    fn read(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let info = &self.index[name];
        read_tensor(&self.files[info.file], name, info, dtype, dev).map_err(|e| {
            let msg = e.to_string();
            self.slot.set(e);
            candle_core::Error::Msg(msg)
        })
    }
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
        self.read(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.check(name, None)?;
        self.read(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}
