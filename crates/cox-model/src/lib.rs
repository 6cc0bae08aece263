//! Loading and running multimodal checkpoints (LLaVA-1.5, Qwen2-VL, Qwen2.5-VL) with the residual
//! stream exposed.
//!
//! `cox-model` owns everything between a checkpoint on disk and tensors: parsing `config.json`
//! (`model_type: "llava"`), memory-mapping and validating the safetensors weights in both the
//! llava-hf hub layout and the `transformers >= 4.52` layout, the CLIP vision tower and
//! projector, a Llama decoder whose loop it owns so that the output of any block (and of the
//! final norm) can be captured and edited ([`edit`]: steering and ablation inside the decoder loop),
//! the LM-head matrix used to decode concept vectors, CLIP image
//! preprocessing, the tokenizer with the LLaVA-1.5 prompt format, greedy generation with a KV
//! cache, resolving hub ids in the local Hugging Face cache, converting a llama.cpp GGUF Llama
//! (weights and tokenizer metadata) into a Hugging Face `LlamaForCausalLM` directory ([`gguf`]),
//! and writing random checkpoints in the same format for tests. Every module is built from a
//! [`candle_nn::VarBuilder`], so the same code loads real weights or trains from a `VarMap` (all
//! forward ops are differentiable when the weights are variables; see [`nn`]).
//!
//! The [`qwen2_vl`] module adds Qwen2-VL and Qwen2.5-VL checkpoints built from the same parts
//! ([`qwen2_vl::Qwen2Vl`]: the vision transformer and merger, the Qwen2 decoder with multimodal
//! rotary positions, transformers' image processor and the checkpoint's Jinja chat template).
//! [`Lmm`] is the one interface over the architectures: [`Lmm::load`] picks the implementation
//! by `config.json`'s `model_type`, and preprocessing, prompts, forward passes, greedy generation
//! (one loop for every decoder, [`generation`]) and the LM head go through it.
//!
//! It must never: know about datasets, decide which token's state to record (that is the hook
//! crate's job — this crate returns whole `[positions, hidden]` states), talk to the network,
//! or parse command lines.
//!
//! Entry points: [`Lmm::load`] (any supported architecture), [`Llava::load`] (model + tokenizer +
//! processor from a directory or hub id),
//! [`Llava::prepare`] and [`Llava::generate`] / [`Llava::forward`] with a
//! [`ResidualCapture`], [`LlavaModel::lm_head`], and [`testing::write_tiny_llava`].
//!
//! ```
//! use cox_model::testing::{write_tiny_llava, TinyConfig};
//! use cox_model::{LayerSel, Llava, LoadOptions, ResidualCapture};
//!
//! # fn main() -> cox_model::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! write_tiny_llava(dir.path(), &TinyConfig::tiny(), 0)?;
//! // A directory, or a hub id such as "llava-hf/llava-1.5-7b-hf" already in the HF cache.
//! let llava = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default())?;
//! let img = image::DynamicImage::new_rgb8(40, 30);
//! let pixels = llava.processor.preprocess(&img, llava.model.device())?;
//! let input = llava.prepare("describe this image", Some(&pixels))?;
//! let capture = ResidualCapture::new([LayerSel::Block(1), LayerSel::FinalNorm]);
//! let out = llava.generate(&input, 8, &capture)?;
//! // One [positions, hidden] tensor per captured point: prompt + fed-back generated tokens.
//! let rows = input.ids.len() + out.generated_ids.len() - 1;
//! assert_eq!(out.residuals[0].dims(), &[rows, 64]);
//! // W_U for decoding concept vectors: logits = W_U · u.
//! assert_eq!(llava.model.lm_head().dims(), &[llava.model.config().text_config.vocab_size, 64]);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod edit;
pub mod error;
pub mod generation;
pub mod gguf;
pub mod hub;
pub mod llama;
pub mod lmm;
pub mod model;
pub mod nn;
pub mod processor;
pub mod qwen2_vl;
pub mod resample;
pub mod testing;
pub mod tokenizer;
pub mod vision;
pub mod weights;

pub use config::{FeatureLayer, LlavaConfig, SelectStrategy, TextConfig, VisionConfig};
pub use edit::{AddDirection, Edit, EditPositions, ProjectOut, ResidualEdit};
pub use error::{Error, Result};
pub use generation::{read_generation_config, GenerationDefaults};
pub use gguf::{CausalLm, GgufLlama};
pub use hub::resolve_model_dir;
pub use llama::{KvCache, LayerSel, LlamaModel, LmOutput, Logits, ResidualCapture};
pub use lmm::{ImageFeatures, Lmm, Pixels, SUPPORTED_MODEL_TYPES};
pub use model::{
    GenerateParams, GenerateTimings, Generation, GenerationOutput, Llava, LlavaModel, LoadOptions,
    MropePositions, PreparedInput,
};
pub use processor::{ImageProcessor, ImageProcessorConfig};
pub use tokenizer::LlavaTokenizer;
pub use vision::{ClipEncoderLayer, ClipVisionTower, ImageEncoder, Projector};
pub use weights::{Checkpoint, WeightLayout};
