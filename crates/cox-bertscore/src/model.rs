//! The encoder: a BERT-family model from a Hugging Face directory (`config.json`, `model.safetensors`,
//! `tokenizer.json` or `vocab.txt`), run through `candle_transformers::models::bert::BertModel` built
//! with only the first `layer` encoder layers — the same truncation `bert_score` applies
//! (`model.encoder.layer[:num_layers]`), so the output is `hidden_states[layer]` of the full model.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{BertScoreError, Result};

/// One sentence's tokens and their hidden states at the encoder's layer.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEmbeddings {
    /// Token ids, special tokens included (`[CLS] … [SEP]`).
    pub ids: Vec<u32>,
    /// Hidden size.
    pub dim: usize,
    /// `ids.len() × dim` values, row-major.
    pub values: Vec<f32>,
}

/// A BERT encoder and its tokenizer, truncated to one layer.
pub struct BertEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    name: String,
    dir: PathBuf,
    layer: usize,
    num_layers: usize,
    hidden: usize,
    pad_id: u32,
    cls_id: u32,
    sep_id: u32,
    device: Device,
}

impl std::fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEncoder")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("layer", &self.layer)
            .field("num_layers", &self.num_layers)
            .field("hidden", &self.hidden)
            .finish_non_exhaustive()
    }
}

fn bad(path: &Path, msg: impl Into<String>) -> BertScoreError {
    BertScoreError::BadFile {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| bad(path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(path, format!("not JSON: {e}")))
}

impl BertEncoder {
    /// Load the model in `dir` for hidden layer `layer` (`None` = the last) on `device`.
    ///
    /// Errors name the file: a missing directory, `config.json` absent, not JSON, not a BERT config or
    /// of another `model_type`; `model.safetensors` absent (a `pytorch_model.bin` alone is refused with
    /// a hint), not safetensors, or lacking a tensor; no `tokenizer.json` nor `vocab.txt`; a layer
    /// beyond the model's.
    ///
    /// ```no_run
    /// use cox_bertscore::BertEncoder;
    /// let enc = BertEncoder::load(".cache/models/all-minilm-l6-v2".as_ref(), None, &candle_core::Device::Cpu)?;
    /// assert_eq!((enc.layer(), enc.hidden_size()), (6, 384));
    /// # Ok::<(), cox_bertscore::BertScoreError>(())
    /// ```
    pub fn load(dir: &Path, layer: Option<usize>, device: &Device) -> Result<BertEncoder> {
        if !dir.is_dir() {
            return Err(BertScoreError::MissingDir {
                path: dir.to_path_buf(),
            });
        }
        let cfg_path = dir.join("config.json");
        if !cfg_path.is_file() {
            return Err(BertScoreError::MissingFile {
                path: cfg_path,
                what: "the model's config.json",
            });
        }
        let raw = read_json(&cfg_path)?;
        if let Some(mt) = raw.get("model_type").and_then(|v| v.as_str()) {
            if mt != "bert" {
                return Err(BertScoreError::UnsupportedModel {
                    path: cfg_path,
                    model_type: mt.to_string(),
                });
            }
        }
        let mut cfg: Config = serde_json::from_value(raw)
            .map_err(|e| bad(&cfg_path, format!("not a BERT config: {e}")))?;
        let num_layers = cfg.num_hidden_layers;
        let layer = layer.unwrap_or(num_layers);
        if layer > num_layers {
            return Err(BertScoreError::InvalidParams(format!(
                "layer {layer} out of range: the model has {num_layers} layers (0 = embeddings ..= {num_layers})"
            )));
        }
        let hidden = cfg.hidden_size;
        let max_positions = cfg.max_position_embeddings;
        let pad_id = cfg.pad_token_id as u32;

        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            let bin = dir.join("pytorch_model.bin");
            if bin.is_file() {
                return Err(bad(
                    &bin,
                    "only model.safetensors is read; convert the PyTorch checkpoint (e.g. \
                     safetensors.torch.save_file(torch.load(path), 'model.safetensors'))",
                ));
            }
            return Err(BertScoreError::MissingFile {
                path: weights,
                what: "the model's weights",
            });
        }
        // Safety: the file is memory-mapped read-only; it must not be modified while the model lives,
        // as with every memory-mapped checkpoint.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, device) }
            .map_err(|e| bad(&weights, format!("not a safetensors file: {e}")))?;
        // `bert_score` drops the encoder layers above `num_layers`; building the model with that many
        // layers is the same network and never reads the others' weights.
        cfg.num_hidden_layers = layer;
        let model = BertModel::load(vb, &cfg).map_err(|e| {
            bad(
                &weights,
                format!("not the weights of this BERT config: {e}"),
            )
        })?;

        let tok_cfg_path = dir.join("tokenizer_config.json");
        let tok_cfg = if tok_cfg_path.is_file() {
            Some(read_json(&tok_cfg_path)?)
        } else {
            None
        };
        let tok_str = |key: &str, default: &str| -> String {
            tok_cfg
                .as_ref()
                .and_then(|c| c.get(key))
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| default.to_string())
        };
        let (cls, sep) = (tok_str("cls_token", "[CLS]"), tok_str("sep_token", "[SEP]"));
        let json_path = dir.join("tokenizer.json");
        let vocab_path = dir.join("vocab.txt");
        let (mut tokenizer, tok_file) = if json_path.is_file() {
            let t = Tokenizer::from_file(&json_path).map_err(|e| bad(&json_path, e.to_string()))?;
            (t, json_path)
        } else if vocab_path.is_file() {
            let lower = tok_cfg
                .as_ref()
                .and_then(|c| c.get("do_lower_case"))
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            let strip_accents = tok_cfg
                .as_ref()
                .and_then(|c| c.get("strip_accents"))
                .and_then(|v| v.as_bool());
            let chinese = tok_cfg
                .as_ref()
                .and_then(|c| c.get("tokenize_chinese_chars"))
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            let wp = WordPiece::from_file(&vocab_path.to_string_lossy())
                .unk_token(tok_str("unk_token", "[UNK]"))
                .continuing_subword_prefix("##".into())
                .build()
                .map_err(|e| bad(&vocab_path, format!("not a WordPiece vocabulary: {e}")))?;
            let mut t = Tokenizer::new(wp);
            t.with_normalizer(Some(BertNormalizer::new(
                true,
                chinese,
                strip_accents,
                lower,
            )));
            t.with_pre_tokenizer(Some(BertPreTokenizer));
            let cls_id = t
                .token_to_id(&cls)
                .ok_or_else(|| bad(&vocab_path, format!("no {cls} token")))?;
            let sep_id = t
                .token_to_id(&sep)
                .ok_or_else(|| bad(&vocab_path, format!("no {sep} token")))?;
            t.with_post_processor(Some(BertProcessing::new(
                (sep.clone(), sep_id),
                (cls.clone(), cls_id),
            )));
            (t, vocab_path)
        } else {
            return Err(BertScoreError::MissingFile {
                path: json_path,
                what: "the tokenizer (tokenizer.json or vocab.txt)",
            });
        };
        // `bert_score` truncates at the tokenizer's `model_max_length` and never pads a single
        // sentence; tokenizer.json files often carry a shorter truncation and fixed padding (MiniLM's:
        // 128), which are replaced here.
        let model_max = tok_cfg
            .as_ref()
            .and_then(|c| c.get("model_max_length"))
            .and_then(|v| v.as_f64())
            .filter(|&m| m >= 2.0 && m <= max_positions as f64)
            .map(|m| m as usize)
            .unwrap_or(max_positions);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: model_max,
                ..Default::default()
            }))
            .map_err(|e| bad(&tok_file, e.to_string()))?;
        let cls_id = tokenizer
            .token_to_id(&cls)
            .ok_or_else(|| bad(&tok_file, format!("no {cls} token")))?;
        let sep_id = tokenizer
            .token_to_id(&sep)
            .ok_or_else(|| bad(&tok_file, format!("no {sep} token")))?;

        Ok(BertEncoder {
            model,
            tokenizer,
            name: model_name(dir),
            dir: dir.to_path_buf(),
            layer,
            num_layers,
            hidden,
            pad_id,
            cls_id,
            sep_id,
            device: device.clone(),
        })
    }

    /// The model's name: the first Markdown heading of the directory's `README.md` when it is a single
    /// word (a model card's `# all-MiniLM-L6-v2`), else the directory's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Replace the name reported in scores.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hidden layer used (`bert_score`'s `num_layers`).
    pub fn layer(&self) -> usize {
        self.layer
    }

    /// The model's number of encoder layers.
    pub fn num_layers(&self) -> usize {
        self.num_layers
    }

    /// The hidden size.
    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// The ids of `[CLS]` and `[SEP]`.
    pub fn special_ids(&self) -> (u32, u32) {
        (self.cls_id, self.sep_id)
    }

    /// Token ids of a sentence as `bert_score`'s `sent_encode`: surrounding whitespace stripped, special
    /// tokens added, truncated to the model's maximum length. An empty sentence is `[CLS] [SEP]`.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let enc =
            self.tokenizer
                .encode(text.trim(), true)
                .map_err(|e| BertScoreError::Tokenize {
                    text: text.to_string(),
                    msg: e.to_string(),
                })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Hidden states at the encoder's layer for each sentence, in input order. Sentences are run in
    /// batches of `batch_size` (longest first, right-padded, padding masked out of attention).
    ///
    /// # Panics
    /// When `batch_size` is 0.
    pub fn embed<S: AsRef<str>>(
        &self,
        texts: &[S],
        batch_size: usize,
    ) -> Result<Vec<TokenEmbeddings>> {
        assert!(batch_size > 0, "embed: batch_size is 0");
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.tokenize(t.as_ref()))
            .collect::<Result<_>>()?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by(|&a, &b| ids[b].len().cmp(&ids[a].len()).then(a.cmp(&b)));
        let mut out: Vec<Option<TokenEmbeddings>> = vec![None; ids.len()];
        for batch in order.chunks(batch_size) {
            let t = batch.iter().map(|&i| ids[i].len()).max().unwrap_or(0);
            let b = batch.len();
            let mut flat = vec![self.pad_id; b * t];
            let mut mask = vec![0u32; b * t];
            for (k, &i) in batch.iter().enumerate() {
                flat[k * t..k * t + ids[i].len()].copy_from_slice(&ids[i]);
                mask[k * t..k * t + ids[i].len()].fill(1);
            }
            let input = Tensor::from_vec(flat, (b, t), &self.device)?;
            let mask = Tensor::from_vec(mask, (b, t), &self.device)?;
            let types = input.zeros_like()?;
            let hs = self.model.forward(&input, &types, Some(&mask))?;
            let hs = hs.to_dtype(DType::F32)?.to_vec3::<f32>()?;
            for (k, &i) in batch.iter().enumerate() {
                let n = ids[i].len();
                let values = hs[k][..n].iter().flatten().copied().collect();
                out[i] = Some(TokenEmbeddings {
                    ids: ids[i].clone(),
                    dim: self.hidden,
                    values,
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|e| e.expect("every sentence is in one batch"))
            .collect())
    }
}

/// The first `# ` heading of `dir/README.md` when it is one word, else the directory's name.
fn model_name(dir: &Path) -> String {
    let from_readme = std::fs::read_to_string(dir.join("README.md"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("# "))
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace));
    from_readme.unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string())
    })
}
