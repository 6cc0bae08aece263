//! The HF `CLIPModel` network: text tower, vision tower, projections.
//!
//! The vision tower is `cox_model`'s [`ClipVisionTower`] (HF `CLIPVisionTransformer` names and
//! `hidden_states` semantics); this module adds `post_layernorm` on the class token and
//! `visual_projection`. The text tower is HF's `CLIPTextTransformer`: token + position
//! embeddings, pre-norm encoder layers (`cox_model::ClipEncoderLayer`, as in the vision tower) with a
//! causal mask, `final_layer_norm`, the state at the
//! end-of-text position, `text_projection`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Module, Tensor, D};
use candle_nn::VarBuilder;
use cox_model::nn::{LayerNorm, Linear};
use cox_model::{ClipEncoderLayer, ClipVisionTower};

use crate::config::{ClipConfig, TextConfig};
use crate::error::{ClipError, Result};

/// HF `CLIPTextTransformer` plus `text_projection`.
#[derive(Debug, Clone)]
struct TextTower {
    token_embedding: Tensor,
    position_embedding: Tensor,
    layers: Vec<ClipEncoderLayer>,
    final_layer_norm: LayerNorm,
    projection: Linear,
    config: TextConfig,
}

impl TextTower {
    fn load(vb: VarBuilder, c: &TextConfig, projection_dim: usize) -> candle_core::Result<Self> {
        let t = vb.pp("text_model");
        let e = t.pp("embeddings");
        let layers = (0..c.num_hidden_layers)
            .map(|l| {
                ClipEncoderLayer::load(
                    t.pp(format!("encoder.layers.{l}")),
                    c.hidden_size,
                    c.intermediate_size,
                    c.num_attention_heads,
                    c.layer_norm_eps,
                    c.hidden_act,
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            token_embedding: e.get((c.vocab_size, c.hidden_size), "token_embedding.weight")?,
            position_embedding: e.get(
                (c.max_position_embeddings, c.hidden_size),
                "position_embedding.weight",
            )?,
            layers,
            final_layer_norm: LayerNorm::load(
                t.pp("final_layer_norm"),
                c.hidden_size,
                c.layer_norm_eps,
            )?,
            projection: Linear::load(
                vb.pp("text_projection"),
                c.hidden_size,
                projection_dim,
                false,
            )?,
            config: c.clone(),
        })
    }

    /// The pooling position of each row: the highest id (legacy `eos_token_id == 2`) or the
    /// first occurrence of `eos_token_id`, as `transformers` does.
    fn pool_positions(&self, ids: &[Vec<u32>]) -> Result<Vec<usize>> {
        ids.iter()
            .enumerate()
            .map(|(r, row)| {
                if self.config.eos_token_id == 2 {
                    // torch.argmax returns the first maximal index.
                    let max = *row.iter().max().expect("non-empty row");
                    Ok(row.iter().position(|&x| x == max).expect("max present"))
                } else {
                    row.iter()
                        .position(|&x| x == self.config.eos_token_id)
                        .ok_or_else(|| {
                            ClipError::Input(format!(
                                "text {r} has no end-of-text id {}",
                                self.config.eos_token_id
                            ))
                        })
                }
            })
            .collect()
    }

    fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<Tensor> {
        let b = ids.len();
        let s = ids[0].len();
        let c = &self.config;
        if s > c.max_position_embeddings {
            return Err(ClipError::Input(format!(
                "token sequences of length {s} exceed the context of {}",
                c.max_position_embeddings
            )));
        }
        if let Some(bad) = ids.iter().flatten().find(|&&x| x as usize >= c.vocab_size) {
            return Err(ClipError::Input(format!(
                "token id {bad} is outside the vocabulary of {} (wrong tokenizer for this model?)",
                c.vocab_size
            )));
        }
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let ids_t = Tensor::from_vec(flat, b * s, device)?;
        let x = self
            .token_embedding
            .index_select(&ids_t, 0)?
            .reshape((b, s, c.hidden_size))?
            .broadcast_add(&self.position_embedding.narrow(0, 0, s)?)?;
        let mask: Vec<f32> = (0..s)
            .flat_map(|i| (0..s).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (1, 1, s, s), device)?.to_dtype(x.dtype())?;
        let mut x = x;
        for layer in &self.layers {
            x = layer.forward(&x, Some(&mask))?;
        }
        let x = self.final_layer_norm.forward(&x)?;
        let rows = self
            .pool_positions(ids)?
            .into_iter()
            .enumerate()
            .map(|(r, p)| x.i((r, p)))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(self.projection.forward(&Tensor::stack(&rows, 0)?)?)
    }
}

/// An HF `CLIPModel`: both towers and their projections into the shared space.
#[derive(Debug, Clone)]
pub struct ClipModel {
    vision: ClipVisionTower,
    post_layernorm: LayerNorm,
    visual_projection: Linear,
    text: TextTower,
    logit_scale: f32,
    config: ClipConfig,
    device: Device,
}

/// Reads a safetensors header (names, shapes, dtypes) without loading the data.
fn read_header(path: &Path) -> Result<Vec<(String, Vec<usize>, String)>> {
    use std::io::Read;
    let bad = |msg: String| ClipError::Safetensors {
        path: path.to_path_buf(),
        msg,
    };
    let mut f = std::fs::File::open(path).map_err(|e| ClipError::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| bad(format!("cannot read the header length: {e}")))?;
    let n = u64::from_le_bytes(len);
    let file_len = f.metadata().map_err(|e| ClipError::io(path, e))?.len();
    if n > 100_000_000 || n + 8 > file_len {
        return Err(bad(format!(
            "header length {n} is impossible for a {file_len}-byte file"
        )));
    }
    let mut buf = vec![0u8; n as usize];
    f.read_exact(&mut buf)
        .map_err(|e| bad(format!("truncated header: {e}")))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&buf).map_err(|e| bad(format!("bad header JSON: {e}")))?;
    let mut out = Vec::with_capacity(header.len());
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let shape = info
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|x| x.as_u64().map(|x| x as usize)).collect())
            .ok_or_else(|| bad(format!("tensor {name:?} has no valid shape")))?;
        let dtype = info
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad(format!("tensor {name:?} has no dtype")))?
            .to_string();
        out.push((name, shape, dtype));
    }
    Ok(out)
}

impl ClipModel {
    /// Loads `config.json` and `model.safetensors` of an HF `CLIPModel` directory, checking
    /// every tensor's presence, shape and dtype first, in `dtype` on `device`.
    ///
    /// # Errors
    /// [`ClipError::MissingFile`] for a missing directory or file, [`ClipError::Config`] for a
    /// bad `config.json`, [`ClipError::ForeignCheckpoint`] when the file holds no CLIP tensors,
    /// [`ClipError::MissingTensor`] / [`ClipError::BadTensor`] naming the file and tensor.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        if !dir.is_dir() {
            return Err(ClipError::MissingFile {
                path: dir.to_path_buf(),
                hint: "expected a directory holding an HF CLIPModel (config.json + \
                       model.safetensors), e.g. a snapshot of openai/clip-vit-base-patch32"
                    .into(),
            });
        }
        let config = ClipConfig::from_file(dir.join("config.json"))?;
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(ClipError::MissingFile {
                path: weights,
                hint: "the CLIP weights in safetensors format (pytorch_model.bin is not read; \
                       convert it or download model.safetensors)"
                    .into(),
            });
        }
        Self::load_files(&config, &weights, dtype, device)
    }

    /// Loads the weights of `config` from one safetensors file.
    pub fn load_files(
        config: &ClipConfig,
        weights: &Path,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let header = read_header(weights)?;
        let path = || -> PathBuf { weights.to_path_buf() };
        if !header
            .iter()
            .any(|(n, _, _)| n.starts_with("text_model.") || n.starts_with("vision_model."))
        {
            let sample: Vec<&str> = header.iter().take(3).map(|(n, _, _)| n.as_str()).collect();
            return Err(ClipError::ForeignCheckpoint {
                path: path(),
                msg: format!(
                    "no tensor starts with text_model. or vision_model. ({} tensors, e.g. {:?})",
                    header.len(),
                    sample
                ),
            });
        }
        let found: std::collections::HashMap<&str, (&Vec<usize>, &str)> = header
            .iter()
            .map(|(n, s, d)| (n.as_str(), (s, d.as_str())))
            .collect();
        for (name, shape) in config.expected_tensors() {
            match found.get(name.as_str()) {
                None => {
                    return Err(ClipError::MissingTensor {
                        name,
                        expected: shape,
                        path: path(),
                    })
                }
                Some((s, d)) => {
                    if **s != shape {
                        return Err(ClipError::BadTensor {
                            name,
                            path: path(),
                            msg: format!("shape {s:?}, but config.json implies {shape:?}"),
                        });
                    }
                    if !matches!(*d, "F32" | "F16" | "BF16" | "F64") {
                        return Err(ClipError::BadTensor {
                            name,
                            path: path(),
                            msg: format!("dtype {d} is not a float type"),
                        });
                    }
                }
            }
        }
        // SAFETY: the file is memory-mapped read-only; like every safetensors loader we rely on
        // it not being modified while the model is alive.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], dtype, device)? };
        let v = &config.vision_config;
        let vision = ClipVisionTower::load(vb.pp("vision_model"), v, v.num_hidden_layers)?;
        let post_layernorm = LayerNorm::load(
            vb.pp("vision_model.post_layernorm"),
            v.hidden_size,
            v.layer_norm_eps,
        )?;
        let visual_projection = Linear::load(
            vb.pp("visual_projection"),
            v.hidden_size,
            config.projection_dim,
            false,
        )?;
        let text = TextTower::load(vb.clone(), &config.text_config, config.projection_dim)?;
        let logit_scale = if vb.contains_tensor("logit_scale") {
            vb.get((), "logit_scale")?
                .to_dtype(DType::F32)?
                .to_scalar::<f32>()?
        } else {
            config.logit_scale_init_value as f32
        };
        Ok(Self {
            vision,
            post_layernorm,
            visual_projection,
            text,
            logit_scale,
            config: config.clone(),
            device: device.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `logit_scale` as stored (CLIPScore does not use it; `exp(logit_scale)` is CLIP's
    /// temperature).
    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    /// Image embeddings (`get_image_features`, not normalised) for `pixel_values`
    /// `[batch, 3, image_size, image_size]`: `[batch, projection_dim]`.
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let layers = self.config.vision_config.num_hidden_layers;
        let states = self.vision.hidden_states(pixel_values, layers)?;
        let last = states.last().expect("at least the embeddings");
        let cls = last.i((.., 0, ..))?;
        let pooled = self.post_layernorm.forward(&cls)?;
        Ok(self.visual_projection.forward(&pooled)?)
    }

    /// Text embeddings (`get_text_features`, not normalised) for token rows of equal length
    /// (at most the context): `[batch, projection_dim]`.
    ///
    /// # Errors
    /// [`ClipError::Input`] for an empty batch, ragged or over-long rows, or ids outside the
    /// vocabulary.
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let Some(first) = ids.first() else {
            return Err(ClipError::Input("no texts to embed".into()));
        };
        if first.is_empty() || ids.iter().any(|r| r.len() != first.len()) {
            return Err(ClipError::Input(
                "token rows must be non-empty and of equal length".into(),
            ));
        }
        self.text.forward(ids, &self.device)
    }
}

/// Divides each row by its L2 norm (rows of zeros stay zero).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(f32::MIN_POSITIVE as f64, f64::INFINITY)?;
    Ok(x.broadcast_div(&norm)?)
}
