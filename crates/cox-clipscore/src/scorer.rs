//! [`ClipScorer`]: a loaded CLIP model + tokenizer + preprocessing, and the paper's scores.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use image::DynamicImage;

use crate::config::ClipConfig;
use crate::error::{ClipError, Result};
use crate::model::{l2_normalize, ClipModel};
use crate::preprocess::preprocess_batch;
use crate::score::{self, TopNReport};
use crate::tokenizer::{ClipBpe, ClipTokenizer, CONTEXT_LENGTH};

/// The file name of OpenAI's BPE merges, looked for in a CLIP directory.
pub const BPE_FILE: &str = "bpe_simple_vocab_16e6.txt.gz";

/// Settings of [`ClipScorer`].
#[derive(Debug, Clone)]
pub struct ClipParams {
    /// Text before the words: `"A photo is described by the words "` (docs/method.md §5.1).
    pub prefix: String,
    /// CLIPScore weight `w` (2.5).
    pub w: f32,
    /// Token context (77), with `truncate=True` semantics.
    pub context_length: usize,
    /// Images or texts per forward pass.
    pub batch_size: usize,
    /// OpenAI's `bpe_simple_vocab_16e6.txt.gz`. `None`: the directory's `tokenizer.json`, else
    /// its `bpe_simple_vocab_16e6.txt.gz`.
    pub bpe_path: Option<PathBuf>,
    /// Where to run (CPU by default; `Device::new_cuda(0)` with the `cuda` feature).
    pub device: Device,
}

impl Default for ClipParams {
    fn default() -> Self {
        Self {
            prefix: "A photo is described by the words ".into(),
            w: 2.5,
            context_length: CONTEXT_LENGTH,
            batch_size: 32,
            bpe_path: None,
            device: Device::Cpu,
        }
    }
}

/// A CLIP model ready to score images against concept words, in f32.
#[derive(Debug, Clone)]
pub struct ClipScorer {
    model: ClipModel,
    tokenizer: ClipTokenizer,
    params: ClipParams,
}

impl ClipScorer {
    /// Loads an HF `CLIPModel` directory and its tokenizer (see [`ClipParams::bpe_path`]).
    ///
    /// # Errors
    /// Those of [`ClipModel::load`]; [`ClipError::MissingFile`] when no tokenizer is found;
    /// [`ClipError::Input`] for `w < 0`, `batch_size == 0` or `context_length < 2`.
    pub fn load(dir: impl AsRef<Path>, params: &ClipParams) -> Result<Self> {
        let dir = dir.as_ref();
        if params.w.is_nan()
            || params.w < 0.0
            || params.batch_size == 0
            || params.context_length < 2
        {
            return Err(ClipError::Input(format!(
                "need w >= 0, batch_size > 0 and context_length >= 2 (got {}, {}, {})",
                params.w, params.batch_size, params.context_length
            )));
        }
        let model = ClipModel::load(dir, DType::F32, &params.device)?;
        let tokenizer = match &params.bpe_path {
            Some(p) => ClipTokenizer::from(ClipBpe::from_file(p)?),
            None if dir.join("tokenizer.json").is_file() => {
                ClipTokenizer::from_tokenizer_json(dir.join("tokenizer.json"))?
            }
            None if dir.join(BPE_FILE).is_file() => {
                ClipTokenizer::from(ClipBpe::from_file(dir.join(BPE_FILE))?)
            }
            None => {
                return Err(ClipError::MissingFile {
                    path: dir.join("tokenizer.json"),
                    hint: format!(
                        "no tokenizer: put tokenizer.json or {BPE_FILE} in the CLIP directory, or \
                         pass the BPE file (cargo xtask fetch places it in .cache/models/clip-bpe/)"
                    ),
                })
            }
        };
        Self::new(model, tokenizer, params.clone())
    }

    /// Assembles a scorer from parts.
    pub fn new(model: ClipModel, tokenizer: ClipTokenizer, params: ClipParams) -> Result<Self> {
        if params.context_length > model.config().text_config.max_position_embeddings {
            return Err(ClipError::Input(format!(
                "context_length {} exceeds the model's {} positions",
                params.context_length,
                model.config().text_config.max_position_embeddings
            )));
        }
        Ok(Self {
            model,
            tokenizer,
            params,
        })
    }

    /// The model.
    pub fn model(&self) -> &ClipModel {
        &self.model
    }

    /// The model configuration.
    pub fn config(&self) -> &ClipConfig {
        self.model.config()
    }

    /// The settings.
    pub fn params(&self) -> &ClipParams {
        &self.params
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// `prefix + ", ".join(words) + "."`.
    pub fn text_for_words(&self, words: &[String]) -> String {
        score::text_for_words(&self.params.prefix, words)
    }

    /// Token rows of `texts` (`clip.tokenize(texts, truncate=True)`).
    pub fn tokenize(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| self.tokenizer.tokenize(t, self.params.context_length))
            .collect()
    }

    fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
        Ok(l2_normalize(&t.to_dtype(DType::F32)?)?.to_vec2::<f32>()?)
    }

    /// L2-normalised image embeddings, in batches of `batch_size`.
    pub fn embed_images(&self, images: &[DynamicImage]) -> Result<Vec<Vec<f32>>> {
        let n_px = self.config().vision_config.image_size as u32;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.params.batch_size) {
            let px = preprocess_batch(chunk, n_px, self.model.device())?;
            out.extend(Self::rows(&self.model.image_features(&px)?)?);
        }
        Ok(out)
    }

    /// L2-normalised text embeddings, in batches of `batch_size`.
    pub fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.params.batch_size) {
            let ids = self.tokenize(chunk)?;
            out.extend(Self::rows(&self.model.text_features(&ids)?)?);
        }
        Ok(out)
    }

    /// `w · max(cos, 0)` between every image and every text: row-major `images × texts`.
    pub fn score_matrix(&self, images: &[Vec<f32>], texts: &[Vec<f32>]) -> Vec<f32> {
        images
            .iter()
            .flat_map(|i| {
                texts
                    .iter()
                    .map(move |t| score::clip_score_from_embeddings(i, t, self.params.w))
            })
            .collect()
    }

    /// CLIPScore of one image and one concept's words: `w · max(cos(E_img, E_txt), 0)` with the
    /// text [`ClipScorer::text_for_words`].
    pub fn clip_score(&self, image: &DynamicImage, words: &[String]) -> Result<f32> {
        let i = self.embed_images(std::slice::from_ref(image))?;
        let t = self.embed_texts(&[self.text_for_words(words)])?;
        Ok(score::clip_score_from_embeddings(
            &i[0],
            &t[0],
            self.params.w,
        ))
    }

    /// L2-normalised embeddings of image files, decoded one batch at a time (so 5,000 test
    /// images never sit in memory at once); a file that cannot be decoded is an error naming it.
    pub fn embed_image_files<P: AsRef<Path>>(&self, paths: &[P]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(paths.len());
        for chunk in paths.chunks(self.params.batch_size) {
            let images = chunk.iter().map(load_image).collect::<Result<Vec<_>>>()?;
            out.extend(self.embed_images(&images)?);
        }
        Ok(out)
    }

    /// Normalised embeddings of each concept's text `prefix + ", ".join(T_c) + "."`.
    pub fn embed_concepts(&self, concept_words: &[Vec<String>]) -> Result<Vec<Vec<f32>>> {
        let texts: Vec<String> = concept_words
            .iter()
            .map(|w| self.text_for_words(w))
            .collect();
        self.embed_texts(&texts)
    }

    /// Table 1's protocol: for each test image (row `i` of the row-major `images × K`
    /// `activations`), the CS of its most activated concept and the mean CS of its 3 most
    /// activated, with `concept_words[c]` = T_c; mean ± population std over images.
    pub fn test_clipscore(
        &self,
        images: &[DynamicImage],
        activations: &[f32],
        concept_words: &[Vec<String>],
    ) -> Result<TopNReport> {
        self.check_activations(images.len(), activations, concept_words.len())?;
        let i = self.embed_images(images)?;
        self.test_clipscore_embedded(&i, activations, concept_words)
    }

    /// [`ClipScorer::test_clipscore`] from image embeddings already computed (e.g. by
    /// [`ClipScorer::embed_image_files`]).
    pub fn test_clipscore_embedded(
        &self,
        image_embeddings: &[Vec<f32>],
        activations: &[f32],
        concept_words: &[Vec<String>],
    ) -> Result<TopNReport> {
        let k = concept_words.len();
        self.check_activations(image_embeddings.len(), activations, k)?;
        let t = self.embed_concepts(concept_words)?;
        score::top_n_clipscore(&self.score_matrix(image_embeddings, &t), activations, k)
    }

    fn check_activations(&self, n: usize, activations: &[f32], k: usize) -> Result<()> {
        if k == 0 || activations.len() != n * k {
            return Err(ClipError::Input(format!(
                "{} activations for {n} images × {k} concepts",
                activations.len()
            )));
        }
        Ok(())
    }

    /// §4.4's multimodal grounding score of each concept: the mean CLIPScore between its MAS
    /// images `mas_images[c]` and its words `concept_words[c]` (NaN without images).
    pub fn grounding_scores(
        &self,
        mas_images: &[Vec<DynamicImage>],
        concept_words: &[Vec<String>],
    ) -> Result<Vec<f64>> {
        if mas_images.len() != concept_words.len() {
            return Err(ClipError::Input(format!(
                "{} MAS image lists for {} concepts",
                mas_images.len(),
                concept_words.len()
            )));
        }
        let t = self.embed_concepts(concept_words)?;
        mas_images
            .iter()
            .zip(&t)
            .map(|(imgs, text)| {
                let e = self.embed_images(imgs)?;
                let sum: f64 = e
                    .iter()
                    .map(|i| f64::from(score::clip_score_from_embeddings(i, text, self.params.w)))
                    .sum();
                Ok(sum / e.len() as f64)
            })
            .collect()
    }
}

/// Decodes an image file safely (size limits, corrupt files as errors naming the path), with
/// `cox-model`'s decoder.
pub fn load_image(path: impl AsRef<Path>) -> Result<DynamicImage> {
    Ok(cox_model::ImageProcessor::new(Default::default()).load_image(path)?)
}
