//! The model shape, the prompt, and teacher-forcing batches built from rendered scenes.

use candle_core::{Device, Tensor};
use cox_model::testing::TinyConfig;
use cox_model::{ImageProcessor, LlavaTokenizer};
use cox_synth::{render, Scene};
use image::DynamicImage;

use crate::error::{Result, TrainError};

/// The user prompt of every training and evaluation example. The full LLaVA-1.5 turn is
/// `USER: <image>\nProvide a one-sentence caption for the provided image. ASSISTANT:`.
pub const PROMPT: &str = "Provide a one-sentence caption for the provided image.";

/// Words of [`PROMPT`] that the base vocabulary of [`TinyConfig`] lacks (the whitespace
/// pre-tokenizer splits `one-sentence` into `one - sentence`).
const PROMPT_WORDS: &[&str] = &[
    "Provide", "one", "-", "sentence", "caption", "for", "provided",
];

/// The architecture of the synthetic captioner: CLIP vision tower `image_size` px / patch
/// `patch_size` / width `vision_width` (MLP 4×) / `vision_layers` layers (LLaVA-1.5's
/// `vision_feature_layer = -2` uses all but the last), a 2-layer GELU projector, and a Llama decoder
/// of width 128, 3 blocks, 4 heads; the vocabulary is the tiny base vocabulary plus cox-synth's
/// caption words and the prompt's words.
///
/// With 96 px and patch 32 the 3 × 3 patch grid coincides with the world's 3 × 3 layout cells (the
/// processor upsamples the 64 px scenes, and every object lies in one patch); patch 16 splits each
/// cell 2 × 2.
pub fn model_config(
    image_size: usize,
    patch_size: usize,
    vision_width: usize,
    vision_layers: usize,
) -> TinyConfig {
    let mut extra: Vec<String> = cox_synth::vocabulary()
        .into_iter()
        .map(str::to_string)
        .collect();
    extra.extend(PROMPT_WORDS.iter().map(|w| w.to_string()));
    TinyConfig {
        image_size,
        patch_size,
        vision_hidden: vision_width,
        vision_intermediate: 4 * vision_width,
        vision_layers,
        vision_heads: 4,
        text_hidden: 128,
        text_intermediate: 512,
        text_layers: 3,
        text_heads: 4,
        text_kv_heads: 4,
        max_position_embeddings: 256,
        extra_words: extra,
        ..TinyConfig::tiny()
    }
}

/// One teacher-forcing batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Token ids `[batch, seq]` (image positions expanded, right-padded).
    pub ids: Tensor,
    /// Pixel values `[batch, 3, H, W]`, preprocessed as the checkpoint's processor does.
    pub pixels: Tensor,
    /// Flat indices into `batch * seq` of the positions whose logits predict an answer token.
    pub positions: Tensor,
    /// The answer tokens those positions predict (the caption and EOS).
    pub targets: Tensor,
    /// The number of predicted tokens.
    pub n_targets: usize,
}

/// The token ids of one example: the expanded prompt, the caption and EOS, and where the answer
/// starts. The prompt part equals what [`cox_model::Llava::prepare_with_answer`] builds.
pub fn example_ids(
    tok: &LlavaTokenizer,
    image_seq_length: usize,
    caption: &str,
) -> Result<(Vec<u32>, usize)> {
    let head = tok.render_prompt(PROMPT, true);
    let head_ids = tok.expand_image_tokens(&tok.encode(&head)?, image_seq_length);
    let answer = tok.encode_plain(caption)?;
    let unk = tok.inner().token_to_id("<unk>");
    if answer.is_empty() || answer.iter().any(|&i| Some(i) == unk) {
        return Err(TrainError::Tokenization {
            caption: caption.to_string(),
            msg: "empty, or a word outside the vocabulary".into(),
        });
    }
    let eos = *tok.eos_token_ids.first().ok_or(TrainError::Tokenization {
        caption: caption.to_string(),
        msg: "the tokenizer has no EOS token".into(),
    })?;
    let start = head_ids.len();
    let mut ids = head_ids;
    ids.extend(answer);
    ids.push(eos);
    Ok((ids, start))
}

/// Renders a scene and preprocesses it into a `[3, H, W]` buffer.
pub fn scene_pixels(processor: &ImageProcessor, scene: &Scene) -> Result<Vec<f32>> {
    let img = DynamicImage::ImageRgb8(render(&scene.factors));
    Ok(processor.preprocess_to_vec(&img)?.0)
}

/// Builds a batch from scenes: canonical captions as targets, EOS appended, right padding with
/// `pad_id` (causal attention keeps padding from influencing the real positions).
pub fn make_batch(
    tok: &LlavaTokenizer,
    processor: &ImageProcessor,
    image_seq_length: usize,
    pad_id: u32,
    scenes: &[Scene],
    device: &Device,
) -> Result<Batch> {
    let mut rows = Vec::with_capacity(scenes.len());
    let mut pixels = Vec::new();
    let mut side = 0usize;
    for s in scenes {
        rows.push(example_ids(tok, image_seq_length, &s.canonical)?);
        let px = scene_pixels(processor, s)?;
        side = ((px.len() / 3) as f64).sqrt() as usize;
        pixels.extend(px);
    }
    let b = scenes.len();
    let seq = rows.iter().map(|(r, _)| r.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(b * seq);
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for (r, (row, start)) in rows.iter().enumerate() {
        for (k, &t) in row.iter().enumerate().skip(*start) {
            positions.push((r * seq + k - 1) as u32);
            targets.push(t);
        }
        ids.extend_from_slice(row);
        ids.extend(std::iter::repeat_n(pad_id, seq - row.len()));
    }
    let n_targets = targets.len();
    Ok(Batch {
        ids: Tensor::from_vec(ids, (b, seq), device)?,
        pixels: Tensor::from_vec(pixels, (b, 3, side, side), device)?,
        positions: Tensor::from_vec(positions, n_targets, device)?,
        targets: Tensor::from_vec(targets, n_targets, device)?,
        n_targets,
    })
}
