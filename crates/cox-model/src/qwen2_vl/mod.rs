//! Qwen2-VL (`Qwen2VLForConditionalGeneration`, `model_type: "qwen2_vl"`) and Qwen2.5-VL
//! (`Qwen2_5_VLForConditionalGeneration`, `"qwen2_5_vl"`) checkpoints with the residual stream
//! exposed.
//!
//! The pieces: [`config`] (both config generations), [`processor`] (transformers'
//! `Qwen2VLImageProcessor`), [`vision`] (the vision transformer and 2×2 merger of both
//! architectures), [`decoder`] (the Qwen2 decoder with M-RoPE and residual capture) and [`chat`]
//! (tokenizer, chat template, generation defaults). [`Qwen2Vl`] assembles them like
//! [`crate::Llava`]: `load`, `load_pixels`, `prepare`, `forward`, `generate`.
//!
//! `--layer N` is the output of decoder block `N` (what a forward hook on
//! `model.language_model.layers.N` records), `norm` the output of the final RMSNorm, as for
//! LLaVA.

pub mod chat;
pub mod config;
pub mod decoder;
pub mod processor;
pub mod testing;
pub mod vision;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use crate::generation::GenerationDefaults;
pub use chat::QwenTokenizer;
pub use config::{
    Qwen2VlConfig, QwenArch, QwenTextConfig, QwenVisionConfig, SUPPORTED_MODEL_TYPES,
};
pub use decoder::{QwenDecoder, QwenKvCache};
pub use processor::{QwenImageProcessor, QwenImageProcessorConfig, QwenPixels};
pub use vision::QwenVision;

use crate::error::{Error, Result};
use crate::hub::resolve_model_dir;
use crate::llama::{LmOutput, Logits, ResidualCapture};
use crate::model::{
    GenerateParams, GenerateTimings, Generation, GenerationOutput, LoadOptions, MropePositions,
    PreparedInput,
};
use crate::weights::Checkpoint;

/// Which naming scheme a Qwen2-VL checkpoint's tensors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QwenLayout {
    /// Written before transformers 4.52 (the hub checkpoints): `model.layers.*`,
    /// `model.embed_tokens`, `model.norm`, `visual.*`, `lm_head.weight`.
    Hub,
    /// transformers >= 4.52: `model.language_model.*`, `model.visual.*`, `lm_head.weight`.
    Transformers452,
}

impl QwenLayout {
    /// Prefix of the decoder (`embed_tokens`, `layers`, `norm`).
    pub fn decoder_prefix(self) -> &'static str {
        match self {
            QwenLayout::Hub => "model",
            QwenLayout::Transformers452 => "model.language_model",
        }
    }

    /// Prefix of the vision transformer.
    pub fn vision_prefix(self) -> &'static str {
        match self {
            QwenLayout::Hub => "visual",
            QwenLayout::Transformers452 => "model.visual",
        }
    }

    /// Prefix of the LM head (`weight`).
    pub fn lm_head_prefix(self) -> &'static str {
        "lm_head"
    }

    /// Detects the layout from tensor names.
    pub fn detect<'a>(names: impl IntoIterator<Item = &'a str>, files: &str) -> Result<Self> {
        let mut sample = Vec::new();
        for n in names {
            if n.starts_with("model.language_model.") {
                return Ok(QwenLayout::Transformers452);
            }
            if n.starts_with("model.layers.") || n.starts_with("model.embed_tokens.") {
                return Ok(QwenLayout::Hub);
            }
            if sample.len() < 5 {
                sample.push(n.to_string());
            }
        }
        Err(Error::UnknownLayout {
            files: files.to_string(),
            msg: format!(
                "no tensor starts with \"model.layers.\" (Qwen2-VL hub layout) or \
                 \"model.language_model.\" (transformers >= 4.52 layout); first names: {sample:?}"
            ),
        })
    }
}

/// Qwen2-VL / Qwen2.5-VL: vision transformer + merger + Qwen2 decoder.
#[derive(Debug, Clone)]
pub struct Qwen2VlModel {
    config: Qwen2VlConfig,
    vision: QwenVision,
    lm: QwenDecoder,
}

/// Settings of a greedy generation (the shared [`GenerateParams`]).
pub type QwenGenerateParams = GenerateParams;

/// A prompt ready for the decoder (the shared [`PreparedInput`], with its M-RoPE positions).
pub type QwenPreparedInput = PreparedInput;

impl Qwen2VlModel {
    /// Builds the model from any [`VarBuilder`] using the tensor names of `layout`.
    pub fn new(vb: VarBuilder, config: &Qwen2VlConfig, layout: QwenLayout) -> Result<Self> {
        let vision = QwenVision::load(vb.pp(layout.vision_prefix()), &config.vision, config.arch)?;
        let lm = QwenDecoder::load(
            vb.pp(layout.decoder_prefix()),
            Some(vb.pp(layout.lm_head_prefix())),
            config.tie_word_embeddings,
            &config.text,
        )?;
        if config.vision.out_hidden_size != config.text.hidden_size {
            return Err(Error::config(
                None,
                format!(
                    "the vision merger outputs width {} but the decoder is {} wide",
                    config.vision.out_hidden_size, config.text.hidden_size
                ),
            ));
        }
        Ok(Self {
            config: config.clone(),
            vision,
            lm,
        })
    }

    /// Loads `config.json` and the safetensors weights (one file or shards) of a directory,
    /// in either layout, converting the weights to `dtype`. A tensor whose shape disagrees
    /// with the configuration is an error naming it, the expected and the found shape.
    pub fn load_dir(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        if !cfg_path.is_file() {
            return Err(Error::MissingFile {
                path: cfg_path,
                hint: "not a Hugging Face checkpoint directory".into(),
            });
        }
        let mut config = Qwen2VlConfig::from_file(&cfg_path)?;
        let ckpt = Checkpoint::open_any(dir)?;
        let files = ckpt
            .files()
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let layout = QwenLayout::detect(ckpt.names(), &files)?;
        let extra = [
            format!(
                "{}.layers.{}.input_layernorm.weight",
                layout.decoder_prefix(),
                config.text.num_hidden_layers
            ),
            format!(
                "{}.blocks.{}.norm1.weight",
                layout.vision_prefix(),
                config.vision.depth
            ),
        ];
        for name in extra {
            if ckpt.contains(&name) {
                return Err(Error::config(
                    Some(cfg_path.clone()),
                    format!(
                        "config.json declares fewer layers than the checkpoint holds: it has a \
                         tensor {name:?}"
                    ),
                ));
            }
        }
        if !config.tie_word_embeddings && !ckpt.contains("lm_head.weight") {
            tracing::info!("lm_head.weight absent: tying the LM head to the token embeddings");
            config.tie_word_embeddings = true;
        }
        let (vb, slot) = ckpt.var_builder(dtype, device);
        Self::new(vb, &config, layout).map_err(|e| match e {
            Error::Candle(c) => slot.refine(c),
            e => e,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Qwen2VlConfig {
        &self.config
    }

    /// Number of decoder blocks (`--layer` takes `0..num_layers`).
    pub fn num_layers(&self) -> usize {
        self.lm.num_layers()
    }

    /// Width of the residual stream.
    pub fn hidden_size(&self) -> usize {
        self.config.text.hidden_size
    }

    /// The vision transformer and merger.
    pub fn vision(&self) -> &QwenVision {
        &self.vision
    }

    /// The Qwen2 decoder.
    pub fn language_model(&self) -> &QwenDecoder {
        &self.lm
    }

    /// The unembedding matrix `W_U`, `[vocab, hidden]`.
    pub fn lm_head(&self) -> &Tensor {
        self.lm.lm_head()
    }

    /// The device.
    pub fn device(&self) -> &Device {
        self.lm.device()
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.lm.dtype()
    }

    /// Merged image features `[num_tokens, hidden]` of one preprocessed image.
    pub fn encode_image(&self, pixels: &QwenPixels) -> Result<Tensor> {
        self.vision.encode(&pixels.pixel_values, pixels.grid_thw)
    }

    /// transformers' `get_rope_index` for one sequence: text positions count up on all three
    /// axes; an image of `lh × lw` merged tokens starting at `p` gets `(p, p + row, p + col)`,
    /// and the text after it continues at `p + max(lh, lw)`. `grids` lists the `(t, h, w)`
    /// patch grid of each image, in order.
    pub fn rope_positions(
        &self,
        ids: &[u32],
        grids: &[(usize, usize, usize)],
    ) -> Result<(Vec<[u32; 3]>, u32)> {
        let m = self.config.vision.spatial_merge_size;
        let img = self.config.image_token_id;
        let mut out = Vec::with_capacity(ids.len());
        let mut cur = 0u32;
        let mut i = 0;
        let mut grids = grids.iter();
        while i < ids.len() {
            if ids[i] != img {
                out.push([cur; 3]);
                cur += 1;
                i += 1;
                continue;
            }
            let Some(&(t, h, w)) = grids.next() else {
                return Err(Error::Input(
                    "the ids hold more image placeholders than images were given".into(),
                ));
            };
            let (lh, lw) = (h / m, w / m);
            let n = t * lh * lw;
            if i + n > ids.len() || ids[i..i + n].iter().any(|&x| x != img) {
                return Err(Error::Input(format!(
                    "an image of grid {t}×{h}×{w} needs {n} consecutive <|image_pad|> ids"
                )));
            }
            for tt in 0..t {
                for r in 0..lh {
                    for c in 0..lw {
                        out.push([cur + tt as u32, cur + r as u32, cur + c as u32]);
                    }
                }
            }
            cur += lh.max(lw) as u32;
            i += n;
        }
        if grids.next().is_some() {
            return Err(Error::Input(
                "more images were given than the ids have placeholders".into(),
            ));
        }
        let next = out.iter().flat_map(|p| p.iter()).max().map_or(0, |m| m + 1);
        Ok((out, next))
    }

    /// Builds the prepared input of expanded `ids` with one `(features [n, hidden], grid)` per
    /// image, in order.
    pub fn prepare_ids(
        &self,
        ids: Vec<u32>,
        images: &[(&Tensor, (usize, usize, usize))],
    ) -> Result<PreparedInput> {
        let grids: Vec<_> = images.iter().map(|(_, g)| *g).collect();
        let (positions, next_position) = self.rope_positions(&ids, &grids)?;
        let embeds = self.lm.embed(&ids)?;
        let embeds = if images.is_empty() {
            embeds
        } else {
            let feats = images
                .iter()
                .map(|(f, _)| f.to_dtype(embeds.dtype()))
                .collect::<candle_core::Result<Vec<_>>>()?;
            let feats = Tensor::cat(&feats, 0)?;
            let s = ids.len();
            let n_img = ids
                .iter()
                .filter(|&&i| i == self.config.image_token_id)
                .count();
            if feats.dim(0)? != n_img || feats.dim(1)? != self.config.text.hidden_size {
                return Err(Error::Input(format!(
                    "{n_img} image positions but image features of shape {:?}",
                    feats.dims()
                )));
            }
            let mut k = 0u32;
            let idx: Vec<u32> = ids
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    if t == self.config.image_token_id {
                        k += 1;
                        s as u32 + k - 1
                    } else {
                        i as u32
                    }
                })
                .collect();
            let pool = Tensor::cat(&[&embeds, &feats], 0)?;
            pool.index_select(&Tensor::new(idx.as_slice(), self.device())?, 0)?
        };
        Ok(PreparedInput {
            ids,
            embeds: embeds.unsqueeze(0)?,
            mrope: Some(MropePositions {
                positions,
                next: next_position,
            }),
        })
    }

    /// One full forward pass over a prepared input (no cache).
    pub fn forward(
        &self,
        input: &PreparedInput,
        capture: &ResidualCapture,
        logits: Logits,
    ) -> Result<LmOutput> {
        let rope = input.mrope.as_ref().ok_or_else(|| {
            Error::Input("the prepared input lacks the multimodal rotary positions".into())
        })?;
        self.lm
            .forward_embeds(&input.embeds, &rope.positions, None, capture, logits)
    }

    /// Greedy decoding with a KV cache (the shared loop of [`crate::generation`]), with
    /// transformers' repetition penalty over the prompt ids and the generated ones.
    pub fn generate_timed(
        &self,
        input: &PreparedInput,
        params: &GenerateParams,
        timings: &mut GenerateTimings,
    ) -> Result<GenerationOutput> {
        let rope = input.mrope.as_ref().ok_or_else(|| {
            Error::Input("the prepared input lacks the multimodal rotary positions".into())
        })?;
        crate::generation::greedy(
            &self.lm,
            &input.embeds,
            Some(rope),
            &input.ids,
            params,
            timings,
        )
    }
}

/// The `model_type` of a checkpoint directory's `config.json` (for dispatching between
/// architectures).
pub fn model_type_of(dir: &Path) -> Result<String> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Json {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    Ok(v.get("model_type")
        .and_then(|m| m.as_str())
        .unwrap_or("<missing>")
        .to_string())
}

/// A loaded Qwen2-VL / Qwen2.5-VL checkpoint: model, tokenizer and image processor.
#[derive(Debug, Clone)]
pub struct Qwen2Vl {
    /// The network.
    pub model: Qwen2VlModel,
    /// Tokenizer, chat template and generation defaults.
    pub tokenizer: QwenTokenizer,
    /// Image preprocessing.
    pub processor: QwenImageProcessor,
    /// The checkpoint directory.
    pub dir: PathBuf,
}

impl Qwen2Vl {
    /// Loads a checkpoint from a directory or a hub id present in the local HF cache.
    pub fn load(model_id: &str, opts: &LoadOptions) -> Result<Self> {
        let dir = resolve_model_dir(model_id, opts.hub_cache.as_deref())?;
        let model = Qwen2VlModel::load_dir(&dir, opts.dtype, &opts.device)?;
        let tokenizer = QwenTokenizer::from_model_dir(&dir, model.config())?;
        let mut processor = QwenImageProcessor::from_model_dir(&dir)?
            .with_max_decoded_pixels(opts.max_image_pixels);
        if let Some(b) = opts.image_backend {
            processor = processor.with_backend(b);
        }
        let v = &model.config().vision;
        let p = &processor.config;
        if (p.patch_size, p.temporal_patch_size, p.merge_size)
            != (v.patch_size, v.temporal_patch_size, v.spatial_merge_size)
        {
            return Err(Error::config(
                Some(dir.join("config.json")),
                format!(
                    "the image processor cuts {}-px patches, {} frames, merged {}×{}, but the \
                     vision tower takes {}-px patches, {} frames, merged {}×{}",
                    p.patch_size,
                    p.temporal_patch_size,
                    p.merge_size,
                    p.merge_size,
                    v.patch_size,
                    v.temporal_patch_size,
                    v.spatial_merge_size,
                    v.spatial_merge_size
                ),
            ));
        }
        Ok(Self {
            model,
            tokenizer,
            processor,
            dir,
        })
    }

    /// Decodes and preprocesses an image file.
    pub fn load_pixels(&self, path: impl AsRef<Path>) -> Result<QwenPixels> {
        self.processor.preprocess_path(path, self.model.device())
    }

    /// Runs the vision tower over each image; one `[num_tokens, hidden]` tensor per image.
    pub fn encode_images(&self, pixels: &[QwenPixels]) -> Result<Vec<Tensor>> {
        pixels.iter().map(|p| self.model.encode_image(p)).collect()
    }

    /// Renders `prompt` with the checkpoint's chat template (with an image when `pixels` is
    /// given), tokenizes it, expands the image placeholder and builds the input embeddings.
    pub fn prepare(&self, prompt: &str, pixels: Option<&QwenPixels>) -> Result<PreparedInput> {
        let feats = pixels.map(|p| self.model.encode_image(p)).transpose()?;
        let image = match (pixels, feats.as_ref()) {
            (Some(p), Some(f)) => Some((f, p.grid_thw)),
            _ => None,
        };
        self.prepare_with_features(prompt, image)
    }

    /// Like [`Self::prepare`] with the image already through the vision tower:
    /// `(features [num_tokens, hidden], image_grid_thw)`.
    pub fn prepare_with_features(
        &self,
        prompt: &str,
        image: Option<(&Tensor, (usize, usize, usize))>,
    ) -> Result<PreparedInput> {
        let text = self.tokenizer.render_prompt(prompt, image.is_some())?;
        self.prepare_raw(&text, image)
    }

    /// Like [`Self::prepare_with_features`] with `text` used verbatim (it must hold one
    /// `<|image_pad|>` when an image is given).
    pub fn prepare_raw(
        &self,
        text: &str,
        image: Option<(&Tensor, (usize, usize, usize))>,
    ) -> Result<PreparedInput> {
        let ids = self.tokenizer.encode(text)?;
        let img = self.model.config().image_token_id;
        let n_img = ids.iter().filter(|&&i| i == img).count();
        if n_img != usize::from(image.is_some()) {
            return Err(Error::Input(format!(
                "the prompt has {n_img} <|image_pad|> tokens but {} image(s) were given",
                usize::from(image.is_some())
            )));
        }
        let mut expanded = Vec::with_capacity(ids.len());
        for &i in &ids {
            match image {
                Some((f, _)) if i == img => {
                    expanded.extend(std::iter::repeat_n(img, f.dim(0)?));
                }
                _ => expanded.push(i),
            }
        }
        let images: Vec<_> = image.into_iter().collect();
        self.model.prepare_ids(expanded, &images)
    }

    /// One full forward pass over a prepared input.
    pub fn forward(
        &self,
        input: &PreparedInput,
        capture: &ResidualCapture,
        logits: Logits,
    ) -> Result<LmOutput> {
        self.model.forward(input, capture, logits)
    }

    /// Greedy generation with the checkpoint's `generation_config.json` (EOS ids and
    /// repetition penalty); stops at EOS or after `max_new_tokens`.
    pub fn generate(
        &self,
        input: &PreparedInput,
        max_new_tokens: usize,
        capture: &ResidualCapture,
    ) -> Result<Generation> {
        let params = self.default_params(max_new_tokens, capture);
        self.generate_with(input, &params, &mut GenerateTimings::default())
    }

    /// [`Self::generate`], adding the time of its prefill, decode steps and capture assembly to
    /// `timings` (the same signature as [`crate::Llava::generate_timed`]).
    pub fn generate_timed(
        &self,
        input: &PreparedInput,
        max_new_tokens: usize,
        capture: &ResidualCapture,
        timings: &mut GenerateTimings,
    ) -> Result<Generation> {
        let params = self.default_params(max_new_tokens, capture);
        self.generate_with(input, &params, timings)
    }

    /// The generation parameters the checkpoint implies.
    pub fn default_params(
        &self,
        max_new_tokens: usize,
        capture: &ResidualCapture,
    ) -> GenerateParams {
        GenerateParams {
            max_new_tokens,
            capture: capture.clone(),
            eos_token_ids: self.tokenizer.generation.eos_token_ids.clone(),
            repetition_penalty: self.tokenizer.generation.repetition_penalty,
        }
    }

    /// Greedy generation with explicit parameters, adding its phase times to `timings`.
    pub fn generate_with(
        &self,
        input: &PreparedInput,
        params: &GenerateParams,
        timings: &mut GenerateTimings,
    ) -> Result<Generation> {
        let out = self.model.generate_timed(input, params, timings)?;
        let text = self.tokenizer.decode(&out.generated_ids)?;
        Ok(Generation {
            prompt_ids: input.ids.clone(),
            generated_ids: out.generated_ids,
            text: text.trim().to_string(),
            stopped_at_eos: out.stopped_at_eos,
            residuals: out.residuals,
        })
    }
}
