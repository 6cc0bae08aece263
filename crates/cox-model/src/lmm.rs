//! One interface over every supported multimodal model: [`Lmm`].
//!
//! [`Lmm::load`] reads `config.json`'s `model_type` and loads the matching architecture
//! (`llava` → [`Llava`], `qwen2_vl` / `qwen2_5_vl` → [`Qwen2Vl`]); everything above the model
//! (the hook, extraction, grounding, explanation) goes through the methods here and never names
//! an architecture. It is an enum rather than a trait because the architectures' inputs differ
//! (a Qwen2-VL image is a variable number of patches with a grid, its prompt carries three-axis
//! rotary positions): [`Pixels`], [`ImageFeatures`] and [`PreparedInput`] carry what any of them
//! needs, and the enum checks that an input goes back to the architecture that made it.
//!
//! `LayerSel::Block(n)` is the output of decoder block `n` (what a forward hook on
//! `…layers.n` records) and `LayerSel::FinalNorm` the output of the final norm, for every
//! architecture. Generation is the one greedy loop of [`crate::generation`], with the
//! checkpoint's `generation_config.json` defaults ([`Lmm::default_params`]).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use image::DynamicImage;

use crate::error::{Error, Result};
use crate::generation::GenerationDefaults;
use crate::hub::resolve_model_dir;
use crate::llama::{LmOutput, Logits, ResidualCapture};
use crate::model::{
    GenerateParams, GenerateTimings, Generation, Llava, LoadOptions, PreparedInput,
};
use crate::nn::RmsNorm;
use crate::qwen2_vl::{model_type_of, Qwen2Vl, QwenArch, QwenPixels};

/// The `model_type`s of `config.json` that [`Lmm::load`] loads.
pub use crate::qwen2_vl::SUPPORTED_MODEL_TYPES;

/// A preprocessed image, for any architecture.
#[derive(Debug, Clone)]
pub struct Pixels {
    /// LLaVA: `[1, 3, H, W]`; Qwen2-VL: `[patches, 3 · 2 · 14 · 14]` flattened patches.
    pub values: Tensor,
    /// Qwen2-VL's `image_grid_thw` `(t, h, w)` in patches; `None` for fixed-size towers.
    pub grid_thw: Option<(usize, usize, usize)>,
    /// Language-model positions the image becomes.
    pub num_tokens: usize,
}

/// An image through the vision tower and projector, for any architecture.
#[derive(Debug, Clone)]
pub struct ImageFeatures {
    /// `[num_tokens, hidden]` rows that replace the image placeholder positions.
    pub features: Tensor,
    /// The image's patch grid (Qwen2-VL), which its rotary positions need.
    pub grid_thw: Option<(usize, usize, usize)>,
}

/// A loaded multimodal model (network, tokenizer, image processor) of any supported
/// architecture.
///
/// ```
/// use cox_model::qwen2_vl::testing::{write_tiny_qwen, TinyQwenConfig};
/// use cox_model::qwen2_vl::{QwenArch, QwenLayout};
/// use cox_model::{LayerSel, Lmm, LoadOptions, ResidualCapture};
///
/// # fn main() -> cox_model::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let t = TinyQwenConfig::tiny(QwenArch::Qwen25Vl);
/// write_tiny_qwen(dir.path(), &t, QwenLayout::Hub, candle_core::DType::F32, 0)?;
/// let lmm = Lmm::load(dir.path().to_str().unwrap(), &LoadOptions::default())?;
/// assert_eq!(lmm.model_type(), "qwen2_5_vl");
/// let pixels = lmm.preprocess(&image::DynamicImage::new_rgb8(60, 45))?;
/// let input = lmm.prepare("Describe this image.", Some(&pixels))?;
/// let capture = ResidualCapture::new([LayerSel::Block(1), LayerSel::FinalNorm]);
/// // The checkpoint's generation_config.json: its EOS ids and repetition penalty (1.05 here).
/// let params = lmm.default_params(4, &capture);
/// assert_eq!(params.repetition_penalty, 1.05);
/// let out = lmm.generate(&input, &params)?;
/// let rows = input.ids.len() + out.generated_ids.len() - 1;
/// assert_eq!(out.residuals[0].dims(), &[rows, lmm.hidden_size()]);
/// assert_eq!(lmm.lm_head().dims(), &[lmm.vocab_size(), lmm.hidden_size()]);
/// # Ok(())
/// # }
/// ```
// Both variants are a few kB (tokenizer, processor settings, tensor handles) and differ by about a
// tenth; an `Lmm` is loaded once per process and passed by reference, so boxing would only add an
// indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Lmm {
    /// LLaVA-1.5 (`model_type: "llava"`).
    Llava(Llava),
    /// Qwen2-VL (`"qwen2_vl"`) or Qwen2.5-VL (`"qwen2_5_vl"`).
    Qwen2Vl(Qwen2Vl),
}

impl From<Llava> for Lmm {
    fn from(m: Llava) -> Self {
        Lmm::Llava(m)
    }
}

impl From<Qwen2Vl> for Lmm {
    fn from(m: Qwen2Vl) -> Self {
        Lmm::Qwen2Vl(m)
    }
}

impl Lmm {
    /// Loads a checkpoint from a directory or a hub id present in the local Hugging Face
    /// cache, choosing the architecture by `config.json`'s `model_type`. An unknown type is an
    /// error naming the supported ones.
    pub fn load(model_id: &str, opts: &LoadOptions) -> Result<Self> {
        let dir = resolve_model_dir(model_id, opts.hub_cache.as_deref())?;
        let cfg_path = dir.join("config.json");
        if !cfg_path.is_file() {
            return Err(Error::MissingFile {
                path: cfg_path,
                hint: "not a Hugging Face checkpoint directory".into(),
            });
        }
        let model_type = model_type_of(&dir)?;
        let id = dir.to_str().ok_or_else(|| {
            Error::Input(format!("the model path {} is not UTF-8", dir.display()))
        })?;
        let lmm = match model_type.as_str() {
            "llava" => Lmm::Llava(Llava::load(id, opts)?),
            "qwen2_vl" | "qwen2_5_vl" => Lmm::Qwen2Vl(Qwen2Vl::load(id, opts)?),
            _ => {
                return Err(Error::UnsupportedModelType {
                    model_type,
                    path: cfg_path,
                    supported: SUPPORTED_MODEL_TYPES.join(", "),
                })
            }
        };
        let g = lmm.generation_defaults();
        if g.repetition_penalty != 1.0 {
            tracing::info!(
                "{}: generation_config.json sets repetition_penalty {}; greedy generation applies \
                 it, as transformers' generate does",
                dir.display(),
                g.repetition_penalty
            );
        }
        Ok(lmm)
    }

    /// `config.json`'s `model_type`: `llava`, `qwen2_vl` or `qwen2_5_vl`.
    pub fn model_type(&self) -> &'static str {
        match self {
            Lmm::Llava(_) => "llava",
            Lmm::Qwen2Vl(m) => match m.model.config().arch {
                QwenArch::Qwen2Vl => "qwen2_vl",
                QwenArch::Qwen25Vl => "qwen2_5_vl",
            },
        }
    }

    /// A human name of the architecture (`LLaVA-1.5`, `Qwen2-VL`, `Qwen2.5-VL`).
    pub fn architecture(&self) -> &'static str {
        match self.model_type() {
            "llava" => "LLaVA-1.5",
            "qwen2_vl" => "Qwen2-VL",
            _ => "Qwen2.5-VL",
        }
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        match self {
            Lmm::Llava(m) => &m.dir,
            Lmm::Qwen2Vl(m) => &m.dir,
        }
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        match self {
            Lmm::Llava(m) => m.model.device(),
            Lmm::Qwen2Vl(m) => m.model.device(),
        }
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Lmm::Llava(m) => m.model.dtype(),
            Lmm::Qwen2Vl(m) => m.model.dtype(),
        }
    }

    /// Number of decoder blocks (`LayerSel::Block` takes `0..num_layers`).
    pub fn num_layers(&self) -> usize {
        match self {
            Lmm::Llava(m) => m.model.language_model().num_layers(),
            Lmm::Qwen2Vl(m) => m.model.num_layers(),
        }
    }

    /// Width of the residual stream.
    pub fn hidden_size(&self) -> usize {
        match self {
            Lmm::Llava(m) => m.model.config().text_config.hidden_size,
            Lmm::Qwen2Vl(m) => m.model.hidden_size(),
        }
    }

    /// Size of the vocabulary (rows of the LM head).
    pub fn vocab_size(&self) -> usize {
        match self {
            Lmm::Llava(m) => m.model.config().text_config.vocab_size,
            Lmm::Qwen2Vl(m) => m.model.config().text.vocab_size,
        }
    }

    /// The unembedding matrix `W_U`, `[vocab, hidden]` (the embeddings when tied): `logits =
    /// W_U · u` for a state `u` after the final norm.
    pub fn lm_head(&self) -> &Tensor {
        match self {
            Lmm::Llava(m) => m.model.lm_head(),
            Lmm::Qwen2Vl(m) => m.model.lm_head(),
        }
    }

    /// The final RMSNorm of the decoder (what `LayerSel::FinalNorm` records the output of).
    pub fn final_norm(&self) -> &RmsNorm {
        match self {
            Lmm::Llava(m) => m.model.language_model().final_norm(),
            Lmm::Qwen2Vl(m) => m.model.language_model().final_norm(),
        }
    }

    /// The `tokenizers` tokenizer (for the hook's token of interest and grounding's words).
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        match self {
            Lmm::Llava(m) => m.tokenizer.inner(),
            Lmm::Qwen2Vl(m) => m.tokenizer.inner(),
        }
    }

    /// Decodes ids to text, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        match self {
            Lmm::Llava(m) => m.tokenizer.decode(ids),
            Lmm::Qwen2Vl(m) => m.tokenizer.decode(ids),
        }
    }

    /// What greedy generation takes from the checkpoint (`generation_config.json`, else
    /// `config.json` and the tokenizer's special tokens): EOS ids and repetition penalty.
    pub fn generation_defaults(&self) -> GenerationDefaults {
        match self {
            Lmm::Llava(m) => GenerationDefaults {
                eos_token_ids: m.tokenizer.eos_token_ids.clone(),
                repetition_penalty: m.repetition_penalty,
            },
            Lmm::Qwen2Vl(m) => m.tokenizer.generation.clone(),
        }
    }

    /// Greedy settings with the checkpoint's defaults; change the fields to override them
    /// (e.g. `repetition_penalty = 1.0` turns the penalty off).
    pub fn default_params(
        &self,
        max_new_tokens: usize,
        capture: &ResidualCapture,
    ) -> GenerateParams {
        let g = self.generation_defaults();
        GenerateParams {
            max_new_tokens,
            capture: capture.clone(),
            eos_token_ids: g.eos_token_ids,
            repetition_penalty: g.repetition_penalty,
        }
    }

    /// Preprocesses a decoded image (LLaVA: CLIP resize and crop; Qwen2-VL: `smart_resize`
    /// within `min_pixels`/`max_pixels` and patches).
    pub fn preprocess(&self, img: &DynamicImage) -> Result<Pixels> {
        match self {
            Lmm::Llava(m) => {
                let values = m.processor.preprocess(img, m.model.device())?;
                Ok(Pixels {
                    values,
                    grid_thw: None,
                    num_tokens: m.model.config().image_seq_length,
                })
            }
            Lmm::Qwen2Vl(m) => Ok(qwen_pixels(m.processor.preprocess(img, m.model.device())?)),
        }
    }

    /// Decodes (with the loader's pixel limit) and preprocesses an image file.
    pub fn load_pixels(&self, path: impl AsRef<Path>) -> Result<Pixels> {
        match self {
            Lmm::Llava(m) => {
                let values = m.load_pixels(path)?;
                Ok(Pixels {
                    values,
                    grid_thw: None,
                    num_tokens: m.model.config().image_seq_length,
                })
            }
            Lmm::Qwen2Vl(m) => Ok(qwen_pixels(m.load_pixels(path)?)),
        }
    }

    /// Runs the vision tower and projector over images, one [`ImageFeatures`] per image in
    /// order. LLaVA encodes the batch in one pass (equal to one at a time up to float
    /// rounding); Qwen2-VL one image at a time (each has its own size).
    pub fn encode_images(&self, pixels: &[Pixels]) -> Result<Vec<ImageFeatures>> {
        match self {
            Lmm::Llava(m) => {
                let values: Vec<Tensor> = pixels.iter().map(|p| p.values.clone()).collect();
                m.encode_images(&values)?
                    .into_iter()
                    .map(|f| {
                        // One image is `[1, n, hidden]`; the interface's rows are `[n, hidden]`.
                        Ok(ImageFeatures {
                            features: f.squeeze(0)?,
                            grid_thw: None,
                        })
                    })
                    .collect()
            }
            Lmm::Qwen2Vl(m) => pixels
                .iter()
                .map(|p| {
                    let grid = p.grid_thw.ok_or_else(|| {
                        Error::Input("Qwen2-VL pixels need their image_grid_thw".into())
                    })?;
                    Ok(ImageFeatures {
                        features: m.model.encode_image(&QwenPixels {
                            pixel_values: p.values.clone(),
                            grid_thw: grid,
                            num_tokens: p.num_tokens,
                        })?,
                        grid_thw: Some(grid),
                    })
                })
                .collect(),
        }
    }

    /// The prompt text the model is given for one user turn (the checkpoint's chat template;
    /// LLaVA without a template: the hand-written LLaVA-1.5 format).
    pub fn render_prompt(&self, prompt: &str, with_image: bool) -> Result<String> {
        match self {
            Lmm::Llava(m) => Ok(m.tokenizer.render_prompt(prompt, with_image)),
            Lmm::Qwen2Vl(m) => m.tokenizer.render_prompt(prompt, with_image),
        }
    }

    /// Renders `prompt` with the chat template (with an image when `pixels` is given), tokenizes
    /// it, expands the image placeholder and builds the input embeddings (and, for Qwen2-VL,
    /// the M-RoPE positions).
    pub fn prepare(&self, prompt: &str, pixels: Option<&Pixels>) -> Result<PreparedInput> {
        let feats = match pixels {
            Some(p) => self.encode_images(std::slice::from_ref(p))?.pop(),
            None => None,
        };
        self.prepare_with_features(prompt, feats.as_ref())
    }

    /// Like [`Self::prepare`] with the image already through the vision tower (one entry of
    /// [`Self::encode_images`]).
    pub fn prepare_with_features(
        &self,
        prompt: &str,
        image: Option<&ImageFeatures>,
    ) -> Result<PreparedInput> {
        match self {
            Lmm::Llava(m) => {
                let f = image.map(|f| f.features.unsqueeze(0)).transpose()?;
                m.prepare_with_features(prompt, f.as_ref())
            }
            Lmm::Qwen2Vl(m) => {
                let img = match image {
                    Some(f) => Some((
                        &f.features,
                        f.grid_thw.ok_or_else(|| {
                            Error::Input("Qwen2-VL image features need their grid".into())
                        })?,
                    )),
                    None => None,
                };
                m.prepare_with_features(prompt, img)
            }
        }
    }

    /// One full forward pass over a prepared input (no cache), with the requested residual
    /// points captured.
    pub fn forward(
        &self,
        input: &PreparedInput,
        capture: &ResidualCapture,
        logits: Logits,
    ) -> Result<LmOutput> {
        match self {
            Lmm::Llava(m) => m.forward(input, capture, logits),
            Lmm::Qwen2Vl(m) => m.forward(input, capture, logits),
        }
    }

    /// Greedy generation with a KV cache and residual capture (`params.capture`); stops at an
    /// EOS id or after `params.max_new_tokens`.
    pub fn generate(&self, input: &PreparedInput, params: &GenerateParams) -> Result<Generation> {
        self.generate_timed(input, params, &mut GenerateTimings::default())
    }

    /// [`Self::generate`], adding the time of its prefill, decode steps and capture assembly to
    /// `timings` (detokenizing is not counted).
    pub fn generate_timed(
        &self,
        input: &PreparedInput,
        params: &GenerateParams,
        timings: &mut GenerateTimings,
    ) -> Result<Generation> {
        match self {
            Lmm::Llava(m) => m.generate_with(input, params, timings),
            Lmm::Qwen2Vl(m) => m.generate_with(input, params, timings),
        }
    }

    /// Captions an image file with the checkpoint's defaults (convenience for examples).
    pub fn caption(
        &self,
        image: impl AsRef<Path>,
        prompt: &str,
        max_new_tokens: usize,
    ) -> Result<Generation> {
        let pixels = self.load_pixels(image)?;
        let input = self.prepare(prompt, Some(&pixels))?;
        self.generate(
            &input,
            &self.default_params(max_new_tokens, &ResidualCapture::none()),
        )
    }
}

fn qwen_pixels(p: QwenPixels) -> Pixels {
    Pixels {
        values: p.pixel_values,
        grid_thw: Some(p.grid_thw),
        num_tokens: p.num_tokens,
    }
}
