//! The assembled LLaVA model, checkpoint loading and greedy generation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;

use crate::config::LlavaConfig;
use crate::error::{Error, Result};
use crate::hub::resolve_model_dir;
use crate::llama::{LlamaModel, LmOutput, Logits, ResidualCapture};
use crate::processor::ImageProcessor;
use crate::resample::ResizeBackend;
use crate::tokenizer::LlavaTokenizer;
use crate::vision::ImageEncoder;
use crate::weights::{Checkpoint, WeightLayout};

/// LLaVA: CLIP vision tower + projector + Llama decoder.
#[derive(Debug, Clone)]
pub struct LlavaModel {
    config: LlavaConfig,
    image: ImageEncoder,
    lm: LlamaModel,
}

/// Settings of a greedy generation.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    /// Upper bound on generated tokens.
    pub max_new_tokens: usize,
    /// Residual-stream points recorded at every position fed through the model.
    pub capture: ResidualCapture,
    /// Ids that stop generation (the stop token is kept in the output).
    pub eos_token_ids: Vec<u32>,
    /// transformers' `repetition_penalty` (1 = off): before each argmax, the logits of every id
    /// already in the sequence are divided by it when positive and multiplied by it when
    /// negative.
    pub repetition_penalty: f32,
}

impl GenerateParams {
    /// Greedy settings with no repetition penalty.
    pub fn new(max_new_tokens: usize, capture: ResidualCapture, eos_token_ids: Vec<u32>) -> Self {
        Self {
            max_new_tokens,
            capture,
            eos_token_ids,
            repetition_penalty: 1.0,
        }
    }
}

/// The result of [`LlavaModel::generate`].
#[derive(Debug, Clone)]
pub struct GenerationOutput {
    /// Generated ids (including a final EOS when one was produced).
    pub generated_ids: Vec<u32>,
    /// Whether generation ended on an EOS id.
    pub stopped_at_eos: bool,
    /// One `[positions, hidden]` tensor per captured point: rows are the prompt positions
    /// followed by every generated token that was fed back (all but the last generated one).
    pub residuals: Vec<Tensor>,
}

/// Wall time of the phases of greedy generations, accumulated over calls of
/// [`LlavaModel::generate_timed`] / [`Llava::generate_timed`] (for benchmarks; measuring costs two
/// clock reads per step).
///
/// Each step ends by reading the chosen token id back to the host, which waits for the device,
/// so the figures are honest on asynchronous devices too.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GenerateTimings {
    /// The first step: the prompt through the decoder and the first token's argmax.
    pub prefill: Duration,
    /// Every later step (one token through the decoder with the KV cache, argmax).
    pub decode: Duration,
    /// Assembling the captured states into `[positions, hidden]` tensors (zero without capture).
    pub capture: Duration,
    /// Generations timed.
    pub generations: usize,
    /// Decode steps timed (generated tokens after the first).
    pub decode_steps: usize,
}

impl GenerateTimings {
    /// Adds `other`'s durations and counts to `self`.
    pub fn add(&mut self, other: &GenerateTimings) {
        self.prefill += other.prefill;
        self.decode += other.decode;
        self.capture += other.capture;
        self.generations += other.generations;
        self.decode_steps += other.decode_steps;
    }
}

impl LlavaModel {
    /// Builds the model from any [`VarBuilder`] — memory-mapped weights or a `VarMap` for
    /// training — using the tensor names of `layout`. Only the vision layers that
    /// `vision_feature_layer` needs are built; the LM head is the embedding matrix when
    /// `config.tied_embeddings()`.
    pub fn new(vb: VarBuilder, config: &LlavaConfig, layout: WeightLayout) -> Result<Self> {
        let image = ImageEncoder::load(
            vb.pp(layout.vision_prefix()),
            vb.pp(layout.projector_prefix()),
            config,
        )?;
        let lm = LlamaModel::load(
            vb.pp(layout.decoder_prefix()),
            Some(vb.pp(layout.lm_head_prefix())),
            config.tied_embeddings(),
            &config.text_config,
        )?;
        Ok(Self {
            config: config.clone(),
            image,
            lm,
        })
    }

    /// Loads `config.json` and the safetensors weights of a checkpoint directory.
    ///
    /// Tensor names, shapes and dtypes are checked against the configuration; a mismatch is an
    /// error naming the tensor, the expected shape and the file. Each tensor is read straight
    /// into its buffer in `dtype` (see [`Checkpoint`]), so loading needs about the memory of the
    /// weights in `dtype`.
    pub fn load_dir(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        if !cfg_path.is_file() {
            return Err(Error::MissingFile {
                path: cfg_path,
                hint: "not a Hugging Face checkpoint directory".into(),
            });
        }
        let mut config = LlavaConfig::from_file(&cfg_path)?;
        let ckpt = Checkpoint::open(dir)?;
        let layout = ckpt.llava_layout()?;
        check_layer_counts(&ckpt, &config, &cfg_path)?;
        let head = format!("{}.weight", layout.lm_head_prefix());
        if !config.tied_embeddings() && !ckpt.contains(&head) {
            tracing::info!("{head} absent: tying the LM head to the token embeddings");
            config.tie_word_embeddings = Some(true);
        }
        let (vb, slot) = ckpt.var_builder(dtype, device);
        Self::new(vb, &config, layout).map_err(|e| match e {
            Error::Candle(c) => slot.refine(c),
            e => e,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LlavaConfig {
        &self.config
    }

    /// The image side (vision tower + projector).
    pub fn image_encoder(&self) -> &ImageEncoder {
        &self.image
    }

    /// The Llama decoder.
    pub fn language_model(&self) -> &LlamaModel {
        &self.lm
    }

    /// The unembedding matrix `W_U`, `[vocab, hidden]`: `logits = W_U · u`.
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

    /// Projected image features for `pixel_values` `[batch, 3, H, W]`:
    /// `[batch, image_seq_length, text hidden]`.
    pub fn encode_images(&self, pixel_values: &Tensor) -> Result<Tensor> {
        self.image.encode(pixel_values)
    }

    /// Input embeddings for token ids `[batch, seq]` whose image-token positions are replaced,
    /// in order, by the rows of `image_features` `[batch, n, hidden]` (row `b` fills the image
    /// positions of sequence `b`, which must number exactly `n`). Differentiable in both the
    /// embeddings and the features.
    pub fn embed_multimodal(
        &self,
        ids: &Tensor,
        image_features: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let embeds = self.lm.embed(ids)?;
        let ids_v: Vec<Vec<u32>> = ids.to_dtype(DType::U32)?.to_vec2()?;
        let img = self.config.image_token_index;
        let counts: Vec<usize> = ids_v
            .iter()
            .map(|r| r.iter().filter(|&&i| i == img).count())
            .collect();
        let Some(feats) = image_features else {
            if counts.iter().any(|&c| c > 0) {
                return Err(Error::Input(
                    "the ids contain image tokens but no image features were given".into(),
                ));
            }
            return Ok(embeds);
        };
        let (fb, n, fh) = feats.dims3()?;
        if fb != b || fh != self.config.text_config.hidden_size {
            return Err(Error::Input(format!(
                "image features have shape [{fb}, {n}, {fh}], expected [{b}, n, {}]",
                self.config.text_config.hidden_size
            )));
        }
        let feats = feats.to_dtype(embeds.dtype())?;
        let mut rows = Vec::with_capacity(b);
        for (r, row) in ids_v.iter().enumerate() {
            if counts[r] != n {
                return Err(Error::Input(format!(
                    "sequence {r} has {} image-token positions but {n} image features were given \
                     (image_seq_length = {})",
                    counts[r], self.config.image_seq_length
                )));
            }
            let mut k = 0u32;
            let idx: Vec<u32> = row
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    if t == img {
                        k += 1;
                        s as u32 + k - 1
                    } else {
                        i as u32
                    }
                })
                .collect();
            let pool = Tensor::cat(&[embeds.i(r)?, feats.i(r)?], 0)?;
            let idx = Tensor::from_vec(idx, s, embeds.device())?;
            rows.push(pool.index_select(&idx, 0)?);
        }
        Ok(Tensor::stack(&rows, 0)?)
    }

    /// Runs the decoder on a full sequence (no cache) and returns logits and captured states.
    pub fn forward(
        &self,
        ids: &Tensor,
        image_features: Option<&Tensor>,
        capture: &ResidualCapture,
        logits: Logits,
    ) -> Result<LmOutput> {
        let embeds = self.embed_multimodal(ids, image_features)?;
        self.lm.forward_embeds(&embeds, None, capture, logits)
    }

    /// Greedy decoding with a KV cache from prompt embeddings `[1, seq, hidden]` (the shared
    /// loop of [`crate::generation`]). Without prompt ids, a repetition penalty sees the
    /// generated ids only, as transformers' `generate(inputs_embeds=…)` does.
    pub fn generate(
        &self,
        prompt_embeds: &Tensor,
        params: &GenerateParams,
    ) -> Result<GenerationOutput> {
        self.generate_timed(prompt_embeds, params, &mut GenerateTimings::default())
    }

    /// [`Self::generate`], adding the time of its prefill, decode steps and capture assembly to
    /// `timings`.
    pub fn generate_timed(
        &self,
        prompt_embeds: &Tensor,
        params: &GenerateParams,
        timings: &mut GenerateTimings,
    ) -> Result<GenerationOutput> {
        crate::generation::greedy(&self.lm, prompt_embeds, None, &[], params, timings)
    }
}

fn check_layer_counts(ckpt: &Checkpoint, config: &LlavaConfig, cfg_path: &Path) -> Result<()> {
    let layout = ckpt.llava_layout()?;
    let n = config.text_config.num_hidden_layers;
    let extra = format!(
        "{}.layers.{n}.input_layernorm.weight",
        layout.decoder_prefix()
    );
    if ckpt.contains(&extra) {
        return Err(Error::config(
            Some(cfg_path.to_path_buf()),
            format!(
                "text_config.num_hidden_layers is {n} but the checkpoint has a tensor {extra:?} \
                 (config.json and the weights disagree)"
            ),
        ));
    }
    let n = config.vision_config.num_hidden_layers;
    let extra = format!(
        "{}.encoder.layers.{n}.layer_norm1.weight",
        layout.vision_prefix()
    );
    if ckpt.contains(&extra) {
        return Err(Error::config(
            Some(cfg_path.to_path_buf()),
            format!(
                "vision_config.num_hidden_layers is {n} but the checkpoint has a tensor {extra:?} \
                 (config.json and the weights disagree)"
            ),
        ));
    }
    Ok(())
}

/// Options of [`Llava::load`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Compute dtype (weights are converted on load). Default f32.
    pub dtype: DType,
    /// Device. Default CPU.
    pub device: Device,
    /// Images above this many pixels are rejected. Default 100 Mpx.
    pub max_image_pixels: u64,
    /// Hub cache to search for `ORG/NAME` ids (default: the standard HF cache location).
    pub hub_cache: Option<PathBuf>,
    /// Image resampling to reproduce; `None` follows the checkpoint's `image_processor_type`
    /// as transformers 5.x does (torchvision unless the class name ends in `Pil`). Set
    /// [`ResizeBackend::Pil`] to reproduce transformers 4.x's default CLIP preprocessing.
    pub image_backend: Option<ResizeBackend>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            device: Device::Cpu,
            max_image_pixels: 100_000_000,
            hub_cache: None,
            image_backend: None,
        }
    }
}

/// The multimodal rotary (M-RoPE) positions of a prompt, for decoders that use them
/// (Qwen2-VL): one `(time, row, column)` triple per id, and where generated text continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MropePositions {
    /// The `(time, row, column)` position of every prompt id.
    pub positions: Vec<[u32; 3]>,
    /// The position of the first token after the prompt (largest position + 1).
    pub next: u32,
}

/// A prompt ready for the decoder, for every architecture.
#[derive(Debug, Clone)]
pub struct PreparedInput {
    /// Token ids with each image placeholder expanded to one position per image token.
    pub ids: Vec<u32>,
    /// Input embeddings `[1, ids.len(), hidden]` (image positions hold the image features).
    pub embeds: Tensor,
    /// The M-RoPE positions (`None` for decoders with ordinary positions `0..ids.len()`).
    pub mrope: Option<MropePositions>,
}

impl PreparedInput {
    /// A prompt with ordinary positions (the Llama decoder's).
    pub fn new(ids: Vec<u32>, embeds: Tensor) -> Self {
        Self {
            ids,
            embeds,
            mrope: None,
        }
    }
}

/// The result of [`Llava::generate`].
#[derive(Debug, Clone)]
pub struct Generation {
    /// The prompt ids (image positions expanded).
    pub prompt_ids: Vec<u32>,
    /// Generated ids (including a final EOS when one was produced).
    pub generated_ids: Vec<u32>,
    /// The generated text, special tokens skipped.
    pub text: String,
    /// Whether generation ended on an EOS id.
    pub stopped_at_eos: bool,
    /// Captured residual stream, one `[positions, hidden]` tensor per requested point; rows
    /// `0..prompt_ids.len()` are the prompt, then each generated token that was fed back.
    pub residuals: Vec<Tensor>,
}

/// A loaded checkpoint: model, tokenizer and image processor.
#[derive(Debug, Clone)]
pub struct Llava {
    /// The network.
    pub model: LlavaModel,
    /// Tokenizer, special tokens and prompt format.
    pub tokenizer: LlavaTokenizer,
    /// Image preprocessing.
    pub processor: ImageProcessor,
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// `generation_config.json`'s `repetition_penalty` (1 when absent), applied by
    /// [`Self::generate`] as transformers' `generate` does.
    pub repetition_penalty: f32,
}

impl Llava {
    /// Loads a checkpoint from a directory or a hub id present in the local HF cache.
    pub fn load(model_id: &str, opts: &LoadOptions) -> Result<Self> {
        let dir = resolve_model_dir(model_id, opts.hub_cache.as_deref())?;
        let model = LlavaModel::load_dir(&dir, opts.dtype, &opts.device)?;
        let tokenizer = LlavaTokenizer::from_model_dir(&dir, model.config())?;
        let mut processor =
            ImageProcessor::from_model_dir(&dir)?.with_max_pixels(opts.max_image_pixels);
        if let Some(b) = opts.image_backend {
            processor = processor.with_backend(b);
        }
        let v = &model.config().vision_config;
        let (ch, cw) = processor
            .config
            .output_size(v.image_size as u32, v.image_size as u32);
        if processor.config.do_center_crop
            && (ch as usize, cw as usize) != (v.image_size, v.image_size)
        {
            return Err(Error::config(
                Some(dir.join("preprocessor_config.json")),
                format!(
                    "crop_size {ch}×{cw} does not match vision_config.image_size {}",
                    v.image_size
                ),
            ));
        }
        let repetition_penalty =
            crate::generation::read_generation_config(&dir)?.map_or(1.0, |g| g.repetition_penalty);
        Ok(Self {
            model,
            tokenizer,
            processor,
            dir,
            repetition_penalty,
        })
    }

    /// Decodes and preprocesses an image file into pixel values `[1, 3, H, W]`.
    pub fn load_pixels(&self, path: impl AsRef<Path>) -> Result<Tensor> {
        let t = self.processor.preprocess_path(path, self.model.device())?;
        let v = &self.model.config().vision_config;
        let (_, _, h, w) = t.dims4()?;
        if (h, w) != (v.image_size, v.image_size) {
            return Err(Error::Input(format!(
                "preprocessing yields {h}×{w} pixels but the vision tower takes {0}×{0}; \
                 preprocessor_config.json disagrees with config.json",
                v.image_size
            )));
        }
        Ok(t)
    }

    /// Renders `prompt` with the chat format (with an `<image>` slot when `pixel_values` is
    /// given), tokenizes it and builds the input embeddings.
    pub fn prepare(&self, prompt: &str, pixel_values: Option<&Tensor>) -> Result<PreparedInput> {
        let text = self.tokenizer.render_prompt(prompt, pixel_values.is_some());
        self.prepare_raw(&text, pixel_values)
    }

    /// Like [`Self::prepare`] but `text` is used verbatim (it must contain one `<image>` per
    /// image when `pixel_values` is given).
    pub fn prepare_raw(&self, text: &str, pixel_values: Option<&Tensor>) -> Result<PreparedInput> {
        let ids = self.prompt_ids(text, pixel_values.is_some())?;
        let feats = match pixel_values {
            Some(p) => Some(self.model.encode_images(p)?),
            None => None,
        };
        self.embed_prompt(ids, feats.as_ref())
    }

    /// Runs the vision tower and projector once over a batch of preprocessed images (each
    /// `[1, 3, H, W]`, as [`Self::load_pixels`] returns them) and returns one `[1,
    /// image_seq_length, hidden]` feature tensor per image, in order, for
    /// [`Self::prepare_with_features`]. A batch shares the tower's matrix products; the
    /// features equal those of one image at a time up to float rounding.
    ///
    /// ```
    /// # use cox_model::testing::{write_tiny_llava, TinyConfig};
    /// # use cox_model::{Llava, LoadOptions, ResidualCapture};
    /// # fn main() -> cox_model::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # write_tiny_llava(dir.path(), &TinyConfig::tiny(), 0)?;
    /// let llava = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default())?;
    /// let dev = llava.model.device();
    /// let images = [image::DynamicImage::new_rgb8(40, 30), image::DynamicImage::new_rgb8(9, 9)];
    /// let pixels = images
    ///     .iter()
    ///     .map(|im| llava.processor.preprocess(im, dev))
    ///     .collect::<cox_model::Result<Vec<_>>>()?;
    /// let feats = llava.encode_images(&pixels)?;
    /// let input = llava.prepare_with_features("describe this image", Some(&feats[1]))?;
    /// let alone = llava.prepare("describe this image", Some(&pixels[1]))?;
    /// let diff = (input.embeds - alone.embeds)?.abs()?.max_all()?.to_scalar::<f32>()?;
    /// assert!(diff < 1e-5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn encode_images(&self, pixels: &[Tensor]) -> Result<Vec<Tensor>> {
        if pixels.is_empty() {
            return Ok(Vec::new());
        }
        let batch = Tensor::cat(pixels, 0)?;
        let feats = self.model.encode_images(&batch)?;
        let mut out = Vec::with_capacity(pixels.len());
        let mut row = 0;
        for p in pixels {
            let n = p.dim(0)?;
            out.push(feats.narrow(0, row, n)?);
            row += n;
        }
        Ok(out)
    }

    /// Like [`Self::prepare`] with the image already through the vision tower: `image_features`
    /// `[1, image_seq_length, hidden]`, e.g. one entry of [`Self::encode_images`].
    pub fn prepare_with_features(
        &self,
        prompt: &str,
        image_features: Option<&Tensor>,
    ) -> Result<PreparedInput> {
        let text = self
            .tokenizer
            .render_prompt(prompt, image_features.is_some());
        let ids = self.prompt_ids(&text, image_features.is_some())?;
        self.embed_prompt(ids, image_features)
    }

    /// Tokenizes `text`, checks its `<image>` count and expands the image positions.
    fn prompt_ids(&self, text: &str, has_image: bool) -> Result<Vec<u32>> {
        let ids = self.tokenizer.encode(text)?;
        let n_img = ids
            .iter()
            .filter(|&&i| i == self.tokenizer.image_token_id)
            .count();
        let expected = usize::from(has_image);
        if n_img != expected {
            return Err(Error::Input(format!(
                "the prompt has {n_img} <image> tokens but {expected} image(s) were given"
            )));
        }
        Ok(self
            .tokenizer
            .expand_image_tokens(&ids, self.model.config().image_seq_length))
    }

    /// The input embeddings of expanded `ids` with the image features in the image positions.
    fn embed_prompt(&self, ids: Vec<u32>, feats: Option<&Tensor>) -> Result<PreparedInput> {
        let id_t = Tensor::new(ids.as_slice(), self.model.device())?.unsqueeze(0)?;
        let embeds = self.model.embed_multimodal(&id_t, feats)?;
        Ok(PreparedInput::new(ids, embeds))
    }

    /// Prepares `prompt` (chat format, optional image) followed by an assistant `answer`
    /// (`USER: <image>\n{prompt} ASSISTANT: {answer}`, or ChatML's
    /// `…<|im_start|>assistant\n{answer}`) and returns the positions of the answer's
    /// tokens in [`PreparedInput::ids`] (image positions already expanded), e.g. to read the
    /// residual stream at a caption's tokens in one forward pass.
    pub fn prepare_with_answer(
        &self,
        prompt: &str,
        answer: &str,
        pixel_values: Option<&Tensor>,
    ) -> Result<(PreparedInput, std::ops::Range<usize>)> {
        let head = self.tokenizer.render_prompt(prompt, pixel_values.is_some());
        let head_ids = self.tokenizer.encode(&head)?;
        let text = format!("{head}{}{answer}", self.tokenizer.format.answer_separator());
        let input = self.prepare_raw(&text, pixel_values)?;
        let expansion = if pixel_values.is_some() {
            self.model.config().image_seq_length - 1
        } else {
            0
        };
        let start = head_ids.len() + expansion;
        let expected_head = self
            .tokenizer
            .expand_image_tokens(&head_ids, self.model.config().image_seq_length);
        if input.ids.len() < start || input.ids[..start] != expected_head[..] {
            return Err(Error::Tokenizer {
                path: None,
                msg: format!(
                    "the answer {answer:?} does not tokenize as a continuation of the prompt \
                     (the tokenizer merges across the boundary)"
                ),
            });
        }
        let end = input.ids.len();
        Ok((input, start..end))
    }

    /// One full forward pass over a prepared input.
    pub fn forward(
        &self,
        input: &PreparedInput,
        capture: &ResidualCapture,
        logits: Logits,
    ) -> Result<LmOutput> {
        if input.mrope.is_some() {
            return Err(Error::Input(
                "the prepared input carries multimodal rotary positions, which LLaVA does not use"
                    .into(),
            ));
        }
        self.model
            .language_model()
            .forward_embeds(&input.embeds, None, capture, logits)
    }

    /// Greedy generation with a KV cache and the checkpoint's defaults ([`Self::default_params`]);
    /// stops at EOS or after `max_new_tokens`.
    pub fn generate(
        &self,
        input: &PreparedInput,
        max_new_tokens: usize,
        capture: &ResidualCapture,
    ) -> Result<Generation> {
        self.generate_timed(
            input,
            max_new_tokens,
            capture,
            &mut GenerateTimings::default(),
        )
    }

    /// [`Self::generate`], adding the time of its prefill, decode steps and capture assembly to
    /// `timings` (detokenizing the text is not counted).
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

    /// The generation settings the checkpoint implies: the tokenizer's EOS ids (config,
    /// tokenizer and `generation_config.json` merged) and [`Self::repetition_penalty`].
    pub fn default_params(
        &self,
        max_new_tokens: usize,
        capture: &ResidualCapture,
    ) -> GenerateParams {
        GenerateParams {
            max_new_tokens,
            capture: capture.clone(),
            eos_token_ids: self.tokenizer.eos_token_ids.clone(),
            repetition_penalty: self.repetition_penalty,
        }
    }

    /// Greedy generation with explicit settings, adding its phase times to `timings`. The
    /// repetition penalty sees the prompt ids (image positions expanded) and the generated ids.
    pub fn generate_with(
        &self,
        input: &PreparedInput,
        params: &GenerateParams,
        timings: &mut GenerateTimings,
    ) -> Result<Generation> {
        if input.mrope.is_some() {
            return Err(Error::Input(
                "the prepared input carries multimodal rotary positions, which LLaVA does not use"
                    .into(),
            ));
        }
        let out = crate::generation::greedy(
            self.model.language_model(),
            &input.embeds,
            None,
            &input.ids,
            params,
            timings,
        )?;
        let text = self.tokenizer.decode(&out.generated_ids)?;
        Ok(Generation {
            prompt_ids: input.ids.clone(),
            generated_ids: out.generated_ids,
            text: text.trim().to_string(),
            stopped_at_eos: out.stopped_at_eos,
            residuals: out.residuals,
        })
    }

    /// Captions an image file with a prompt (convenience for examples).
    pub fn caption(
        &self,
        image: impl AsRef<Path>,
        prompt: &str,
        max_new_tokens: usize,
    ) -> Result<Generation> {
        let pixels = self.load_pixels(image)?;
        let input = self.prepare(prompt, Some(&pixels))?;
        self.generate(&input, max_new_tokens, &ResidualCapture::none())
    }
}
