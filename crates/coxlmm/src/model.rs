//! The model handle every step takes. A run loads it once ([`Model::load`]) and passes a reference
//! to extraction (each split), grounding (the LM head and tokenizer) and explanation.
//!
//! The network is a `cox_model::Lmm`, whichever architecture the checkpoint's `config.json`
//! names (LLaVA-1.5, Qwen2-VL, Qwen2.5-VL); the steps reach it only through that interface and
//! the methods below, which add this run's generation overrides (`--ignore-eos`,
//! `--repetition-penalty`) to the checkpoint's defaults.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use cox_model::{GenerateParams, Lmm, LoadOptions, ResidualCapture};

/// Models loaded by this process so far ([`Model::loads`]).
static LOADS: AtomicUsize = AtomicUsize::new(0);

/// The line [`Model::load`] writes to stderr before loading, so that a test can count the loads of
/// a whole `coxlmm` process.
pub const LOAD_LOG_PREFIX: &str = "== load model";

/// The compute dtype of the model's weights and activations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelDtype {
    #[default]
    F32,
    F16,
    Bf16,
}

impl ModelDtype {
    pub const ALL: [ModelDtype; 3] = [ModelDtype::F32, ModelDtype::F16, ModelDtype::Bf16];

    /// The name stored in activation-store settings (`f32`, `f16`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            ModelDtype::F32 => "f32",
            ModelDtype::F16 => "f16",
            ModelDtype::Bf16 => "bf16",
        }
    }

    fn candle(self) -> candle_core::DType {
        match self {
            ModelDtype::F32 => candle_core::DType::F32,
            ModelDtype::F16 => candle_core::DType::F16,
            ModelDtype::Bf16 => candle_core::DType::BF16,
        }
    }
}

impl fmt::Display for ModelDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the model runs: `cpu`, or `cuda` / `cuda:N` (a build with the `cuda` feature).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("device {s:?}: expected cpu, cuda or cuda:N");
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(bad),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// How to load a model.
#[derive(Clone, Debug, Default)]
pub struct ModelOptions {
    pub dtype: ModelDtype,
    pub device: DeviceSpec,
    /// Generate the whole length limit, ignoring end-of-sequence (for random test models).
    pub ignore_eos: bool,
    /// Image resampling to reproduce (`None`: what the checkpoint's processor type implies,
    /// i.e. transformers 5.x's choice; `Pil` reproduces transformers 4.x's CLIP preprocessing).
    pub image_backend: Option<cox_model::resample::ResizeBackend>,
    /// transformers' repetition penalty for greedy generation (`None`: the checkpoint's
    /// `generation_config.json` value, 1 when absent; `Some(1.0)` turns it off).
    pub repetition_penalty: Option<f32>,
}

/// A loaded multimodal model with its tokenizer and image processor.
pub struct Model {
    id: String,
    options: ModelOptions,
    lmm: Lmm,
}

impl Model {
    /// Loads `id` (a checkpoint directory, or a hub id in the local Hugging Face cache).
    pub fn load(id: &str, options: &ModelOptions) -> Result<Self> {
        eprintln!("{LOAD_LOG_PREFIX} {id}");
        LOADS.fetch_add(1, Ordering::Relaxed);
        let device = match options.device {
            DeviceSpec::Cpu => candle_core::Device::Cpu,
            DeviceSpec::Cuda(n) => candle_core::Device::new_cuda(n).with_context(|| {
                format!(
                    "no CUDA device {n} (is coxlmm built with the `cuda` feature and is a GPU \
                     visible?)"
                )
            })?,
        };
        let load = LoadOptions {
            dtype: options.dtype.candle(),
            device,
            image_backend: options.image_backend,
            ..LoadOptions::default()
        };
        if let Some(p) = options.repetition_penalty {
            if !(p.is_finite() && p > 0.0) {
                anyhow::bail!("the repetition penalty must be a positive number, got {p}");
            }
        }
        let lmm = Lmm::load(id, &load).with_context(|| format!("cannot load the model {id}"))?;
        let checkpoint = lmm.generation_defaults().repetition_penalty;
        match options.repetition_penalty {
            Some(p) if p != checkpoint => eprintln!(
                "repetition penalty {p} (the checkpoint's generation_config.json says {checkpoint})"
            ),
            None if checkpoint != 1.0 => eprintln!(
                "repetition penalty {checkpoint} from the checkpoint's generation_config.json, \
                 as transformers' generate applies it (1 turns it off)"
            ),
            _ => {}
        }
        Ok(Self {
            id: id.to_string(),
            options: options.clone(),
            lmm,
        })
    }

    /// How many models this process has loaded.
    pub fn loads() -> usize {
        LOADS.load(Ordering::Relaxed)
    }

    /// The id it was loaded from (as given).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn options(&self) -> &ModelOptions {
        &self.options
    }

    /// The network, tokenizer and image processor, of whichever architecture.
    pub fn lmm(&self) -> &Lmm {
        &self.lmm
    }

    /// Decoder blocks.
    pub fn num_layers(&self) -> usize {
        self.lmm.num_layers()
    }

    /// Width of the residual stream.
    pub fn hidden_size(&self) -> usize {
        self.lmm.hidden_size()
    }

    /// The repetition penalty generation applies (the override, else the checkpoint's).
    pub fn repetition_penalty(&self) -> f32 {
        self.options
            .repetition_penalty
            .unwrap_or_else(|| self.lmm.generation_defaults().repetition_penalty)
    }

    /// Greedy settings: the checkpoint's defaults with this run's overrides (no EOS with
    /// `ignore_eos`, the chosen repetition penalty).
    pub fn generate_params(
        &self,
        max_new_tokens: usize,
        capture: &ResidualCapture,
    ) -> GenerateParams {
        let mut p = self.lmm.default_params(max_new_tokens, capture);
        if self.options.ignore_eos {
            p.eos_token_ids.clear();
        }
        p.repetition_penalty = self.repetition_penalty();
        p
    }

    /// The checkpoint directory the model was read from (a hub id resolved to its snapshot).
    pub fn dir(&self) -> &std::path::Path {
        self.lmm.dir()
    }

    /// The checkpoint's `config.json` bytes (their hash identifies the model in stores).
    pub fn config_bytes(&self) -> Result<Vec<u8>> {
        let path = self.lmm.dir().join("config.json");
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    /// The LM head `W_U` as an f32 `vocab × hidden` matrix, sample-major.
    pub fn lm_head_f32(&self) -> Result<Vec<f32>> {
        Ok(self
            .lmm
            .lm_head()
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }
}
