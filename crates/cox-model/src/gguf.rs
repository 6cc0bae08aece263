//! Reading a llama.cpp GGUF Llama checkpoint and writing it out as a Hugging Face
//! `LlamaForCausalLM` directory.
//!
//! The one real pretrained language model the project's registries carry (SmolLM2-135M-Instruct)
//! is shipped only as a quantised GGUF file whose tokenizer lives in the file's metadata. This
//! module turns such a file into the layout every other part of the project already loads:
//! `model.safetensors` (dequantised f32 weights under Hugging Face names), `config.json`,
//! `tokenizer.json`, `tokenizer_config.json` (with the chat template) and
//! `generation_config.json`. The file is read with candle's GGUF reader
//! ([`candle_core::quantized::gguf_file`]).
//!
//! Two conversions undo what llama.cpp's `convert_hf_to_gguf.py` did:
//! * **q/k row order.** llama.cpp applies RoPE to interleaved pairs `(2i, 2i + 1)`, Hugging Face
//!   to the halves `(i, i + d/2)` (`rotate_half`). The converter therefore permutes the rows of
//!   every head of `q_proj` and `k_proj` so that the interleaved rotation of the permuted weights
//!   equals the half rotation of the originals; [`unpermute_qk`] inverts that permutation.
//! * **Tokenizer.** GGUF stores the BPE vocabulary, merges and token types, plus the name of the
//!   pre-tokenizer (`tokenizer.ggml.pre`). The pre-tokenizer is rebuilt from that name; only the
//!   byte-level BPE (`tokenizer.ggml.model = "gpt2"`) pre-tokenizers named in [`PreTokenizerKind`]
//!   are supported, and any other name is an error rather than a silently different tokenizer.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::config::{Activation, TextConfig, TokenIds};
use crate::error::{Error, Result};
use crate::llama::LlamaModel;

/// GGUF token type of a control (special) token, as in llama.cpp's `llama_token_type`.
const TOKEN_TYPE_CONTROL: u32 = 3;
/// GGUF token type of a user-defined added token.
const TOKEN_TYPE_USER_DEFINED: u32 = 4;

/// The pre-tokenizers this module can rebuild, by their llama.cpp name (`tokenizer.ggml.pre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizerKind {
    /// GPT-2's byte-level regex alone (`gpt2`, and the `default` of older files).
    Gpt2,
    /// Every digit split off on its own, then GPT-2's regex: llama.cpp's `smollm` (and
    /// `starcoder`, `refact`), Hugging Face's `Sequence[Digits(individual_digits=true),
    /// ByteLevel(add_prefix_space=false)]`.
    DigitsThenGpt2,
}

impl PreTokenizerKind {
    /// The kind llama.cpp uses for a `tokenizer.ggml.pre` name, if supported.
    pub fn from_gguf_name(name: &str) -> Option<Self> {
        match name {
            "gpt2" | "default" => Some(Self::Gpt2),
            "smollm" | "starcoder" | "refact" => Some(Self::DigitsThenGpt2),
            _ => None,
        }
    }

    fn build(self) -> PreTokenizerWrapper {
        // `use_regex = true` is GPT-2's split; no prefix space, as `tokenizer.ggml.add_space_prefix`
        // is false for byte-level BPE models.
        let byte_level = ByteLevel::new(false, true, true);
        match self {
            Self::Gpt2 => byte_level.into(),
            Self::DigitsThenGpt2 => {
                Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
            }
        }
    }
}

/// A GGUF file holding a Llama-architecture model, with its header parsed.
#[derive(Debug)]
pub struct GgufLlama {
    path: PathBuf,
    content: Content,
}

/// The files [`GgufLlama::write_hf_dir`] wrote.
#[derive(Debug, Clone)]
pub struct WrittenHfDir {
    /// The directory.
    pub dir: PathBuf,
    /// File names written, in order.
    pub files: Vec<String>,
    /// Number of tensors in `model.safetensors`.
    pub tensors: usize,
    /// Number of parameters (elements) in `model.safetensors`.
    pub parameters: usize,
}

impl GgufLlama {
    /// Parses the header (metadata and tensor directory) of a GGUF file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let content = Content::read(&mut BufReader::new(file)).map_err(|e| Error::Gguf {
            path: path.clone(),
            msg: format!("not a readable GGUF file: {e}"),
        })?;
        let g = Self { path, content };
        let arch = g.string("general.architecture")?;
        if arch != "llama" {
            return Err(g.err(format!(
                "general.architecture is {arch:?}; only \"llama\" models can be converted"
            )));
        }
        Ok(g)
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw metadata.
    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::Gguf {
            path: self.path.clone(),
            msg: msg.into(),
        }
    }

    fn value(&self, key: &str) -> Result<&Value> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| self.err(format!("metadata key {key:?} is missing")))
    }

    fn string(&self, key: &str) -> Result<String> {
        self.value(key)?
            .to_string()
            .cloned()
            .map_err(|e| self.err(format!("metadata {key:?}: {e}")))
    }

    fn uint(&self, key: &str) -> Result<u64> {
        let v = self.value(key)?;
        let n = match v {
            Value::U8(x) => *x as u64,
            Value::U16(x) => *x as u64,
            Value::U32(x) => *x as u64,
            Value::U64(x) => *x,
            Value::I8(x) if *x >= 0 => *x as u64,
            Value::I16(x) if *x >= 0 => *x as u64,
            Value::I32(x) if *x >= 0 => *x as u64,
            Value::I64(x) if *x >= 0 => *x as u64,
            other => {
                return Err(self.err(format!(
                    "metadata {key:?} should be a non-negative integer, found {other:?}"
                )))
            }
        };
        Ok(n)
    }

    fn opt_uint(&self, key: &str) -> Result<Option<u64>> {
        if self.content.metadata.contains_key(key) {
            self.uint(key).map(Some)
        } else {
            Ok(None)
        }
    }

    fn float(&self, key: &str) -> Result<f64> {
        match self.value(key)? {
            // GGUF stores these as f32; printing the f32 and reading it back gives the decimal the
            // model's author wrote (1e-5, not 9.999999747378752e-6).
            Value::F32(x) => Ok(x.to_string().parse().unwrap_or(*x as f64)),
            Value::F64(x) => Ok(*x),
            other => Err(self.err(format!(
                "metadata {key:?} should be a float, found {other:?}"
            ))),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        let arr = self
            .value(key)?
            .to_vec()
            .map_err(|e| self.err(format!("metadata {key:?}: {e}")))?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| {
                v.to_string()
                    .cloned()
                    .map_err(|_| self.err(format!("metadata {key:?}[{i}] is not a string")))
            })
            .collect()
    }

    fn uints(&self, key: &str) -> Result<Vec<u32>> {
        let arr = self
            .value(key)?
            .to_vec()
            .map_err(|e| self.err(format!("metadata {key:?}: {e}")))?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::I32(x) if *x >= 0 => Ok(*x as u32),
                Value::U32(x) => Ok(*x),
                Value::U8(x) => Ok(*x as u32),
                Value::I8(x) if *x >= 0 => Ok(*x as u32),
                other => Err(self.err(format!(
                    "metadata {key:?}[{i}] should be a non-negative integer, found {other:?}"
                ))),
            })
            .collect()
    }

    /// The chat template (`tokenizer.chat_template`), if the file has one.
    pub fn chat_template(&self) -> Option<String> {
        self.string("tokenizer.chat_template").ok()
    }

    /// The Hugging Face Llama configuration the metadata describes.
    pub fn text_config(&self) -> Result<TextConfig> {
        let hidden = self.uint("llama.embedding_length")? as usize;
        let heads = self.uint("llama.attention.head_count")? as usize;
        let kv_heads = self
            .opt_uint("llama.attention.head_count_kv")?
            .unwrap_or(heads as u64) as usize;
        if heads == 0 || kv_heads == 0 || hidden % heads != 0 || heads % kv_heads != 0 {
            return Err(self.err(format!(
                "inconsistent attention shape: embedding_length {hidden}, head_count {heads}, \
                 head_count_kv {kv_heads}"
            )));
        }
        let head_dim = hidden / heads;
        if let Some(rot) = self.opt_uint("llama.rope.dimension_count")? {
            if rot as usize != head_dim {
                return Err(self.err(format!(
                    "llama.rope.dimension_count {rot} differs from the head width {head_dim}: \
                     partial rotary embeddings are not supported"
                )));
            }
        }
        if self
            .content
            .metadata
            .contains_key("llama.rope.scaling.type")
        {
            return Err(self.err("RoPE scaling (llama.rope.scaling.*) is not supported"));
        }
        let vocab = match self.opt_uint("llama.vocab_size")? {
            Some(v) => v as usize,
            None => self.strings("tokenizer.ggml.tokens")?.len(),
        };
        let tied = !self.content.tensor_infos.contains_key("output.weight");
        let id = |k: &str| -> Result<Option<u32>> { Ok(self.opt_uint(k)?.map(|v| v as u32)) };
        Ok(TextConfig {
            model_type: "llama".into(),
            hidden_size: hidden,
            intermediate_size: self.uint("llama.feed_forward_length")? as usize,
            num_hidden_layers: self.uint("llama.block_count")? as usize,
            num_attention_heads: heads,
            num_key_value_heads: Some(kv_heads),
            head_dim: Some(head_dim),
            hidden_act: Activation::Silu,
            rms_norm_eps: self.float("llama.attention.layer_norm_rms_epsilon")?,
            rope_theta: if self.content.metadata.contains_key("llama.rope.freq_base") {
                self.float("llama.rope.freq_base")?
            } else {
                10_000.0
            },
            rope_scaling: None,
            rope_parameters: None,
            vocab_size: vocab,
            max_position_embeddings: self.uint("llama.context_length")? as usize,
            tie_word_embeddings: tied,
            attention_bias: self.content.tensor_infos.contains_key("blk.0.attn_q.bias"),
            mlp_bias: self.content.tensor_infos.contains_key("blk.0.ffn_up.bias"),
            bos_token_id: id("tokenizer.ggml.bos_token_id")?,
            eos_token_id: id("tokenizer.ggml.eos_token_id")?.map(TokenIds::One),
            pad_token_id: id("tokenizer.ggml.padding_token_id")?,
        })
    }

    /// `config.json` of the equivalent `LlamaForCausalLM` checkpoint (f32 weights). RoPE is
    /// written both as the transformers 4.x top-level `rope_theta` and the 5.x `rope_parameters`.
    pub fn config_json(&self) -> Result<serde_json::Value> {
        let c = self.text_config()?;
        Ok(serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "num_hidden_layers": c.num_hidden_layers,
            "num_attention_heads": c.num_attention_heads,
            "num_key_value_heads": c.kv_heads(),
            "head_dim": c.head_dim(),
            "hidden_act": "silu",
            "max_position_embeddings": c.max_position_embeddings,
            "rms_norm_eps": c.rms_norm_eps,
            "rope_theta": c.rope_theta,
            "rope_scaling": null,
            "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_theta},
            "vocab_size": c.vocab_size,
            "tie_word_embeddings": c.tie_word_embeddings,
            "attention_bias": c.attention_bias,
            "attention_dropout": 0.0,
            "mlp_bias": c.mlp_bias,
            "pretraining_tp": 1,
            "use_cache": true,
            "bos_token_id": c.bos_token_id,
            "eos_token_id": c.eos_token_id.as_ref().map(|e| e.to_vec()[0]),
            "pad_token_id": c.pad_token_id,
            "dtype": "float32",
            "torch_dtype": "float32",
        }))
    }

    /// `generation_config.json`: the special ids only (greedy decoding is the default).
    pub fn generation_config_json(&self) -> Result<serde_json::Value> {
        let c = self.text_config()?;
        Ok(serde_json::json!({
            "bos_token_id": c.bos_token_id,
            "eos_token_id": c.eos_token_id.as_ref().map(|e| e.to_vec()[0]),
            "pad_token_id": c.pad_token_id,
        }))
    }

    fn token_text(&self, tokens: &[String], key: &str) -> Result<Option<String>> {
        match self.opt_uint(key)? {
            None => Ok(None),
            Some(i) => tokens
                .get(i as usize)
                .cloned()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} {i} is outside the vocabulary"))),
        }
    }

    /// The tokenizer described by the metadata: byte-level BPE over `tokenizer.ggml.tokens` and
    /// `tokenizer.ggml.merges`, the pre-tokenizer named by `tokenizer.ggml.pre`, and the control
    /// and user-defined tokens as added tokens (control ones special). No BOS/EOS is added by
    /// the post-processor when `tokenizer.ggml.add_bos_token`/`add_eos_token` are false.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let model = self.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(self.err(format!(
                "tokenizer.ggml.model is {model:?}; only byte-level BPE (\"gpt2\") tokenizers can \
                 be rebuilt"
            )));
        }
        let pre_name = self
            .string("tokenizer.ggml.pre")
            .unwrap_or_else(|_| "default".into());
        let pre = PreTokenizerKind::from_gguf_name(&pre_name).ok_or_else(|| {
            self.err(format!(
                "pre-tokenizer {pre_name:?} (tokenizer.ggml.pre) is not supported (supported: \
                 gpt2, default, smollm, starcoder, refact)"
            ))
        })?;
        for key in [
            "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.add_eos_token",
        ] {
            if let Some(Value::Bool(true)) = self.content.metadata.get(key) {
                return Err(self.err(format!("{key} = true is not supported")));
            }
        }
        let tokens = self.strings("tokenizer.ggml.tokens")?;
        let types = self.uints("tokenizer.ggml.token_type")?;
        if types.len() != tokens.len() {
            return Err(self.err(format!(
                "{} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let merges = self
            .strings("tokenizer.ggml.merges")?
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| {
                        self.err(format!(
                            "merge {i} ({m:?}) is not two space-separated pieces"
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut vocab = tokenizers::models::bpe::Vocab::default();
        for (i, t) in tokens.iter().enumerate() {
            if vocab.insert(t.clone(), i as u32).is_some() {
                return Err(self.err(format!("token {t:?} appears twice in the vocabulary")));
            }
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| self.err(format!("cannot build the BPE model: {e}")))?;
        let mut tok = Tokenizer::new(bpe);
        tok.with_pre_tokenizer(Some(pre.build()));
        // Hugging Face's byte-level BPE tokenizers use ByteLevel for the decoder and as the
        // post-processor (which only adjusts offsets: trim_offsets off, as in SmolLM's file).
        tok.with_decoder(Some(ByteLevel::default()));
        tok.with_post_processor(Some(ByteLevel::new(true, false, true)));
        let added: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &t)| t == TOKEN_TYPE_CONTROL || t == TOKEN_TYPE_USER_DEFINED)
            .map(|(s, &t)| AddedToken::from(s.clone(), t == TOKEN_TYPE_CONTROL))
            .collect();
        let (special, plain): (Vec<AddedToken>, Vec<AddedToken>) =
            added.into_iter().partition(|a| a.special);
        tok.add_special_tokens(&special);
        tok.add_tokens(&plain);
        Ok(tok)
    }

    /// `tokenizer_config.json`: special tokens, the chat template, no BOS added.
    pub fn tokenizer_config_json(&self) -> Result<serde_json::Value> {
        let tokens = self.strings("tokenizer.ggml.tokens")?;
        let types = self.uints("tokenizer.ggml.token_type")?;
        let bos = self.token_text(&tokens, "tokenizer.ggml.bos_token_id")?;
        let eos = self.token_text(&tokens, "tokenizer.ggml.eos_token_id")?;
        let pad = self.token_text(&tokens, "tokenizer.ggml.padding_token_id")?;
        let unk = self.token_text(&tokens, "tokenizer.ggml.unknown_token_id")?;
        let mut decoder = serde_json::Map::new();
        for (i, (t, &ty)) in tokens.iter().zip(&types).enumerate() {
            if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
                decoder.insert(
                    i.to_string(),
                    serde_json::json!({
                        "content": t, "lstrip": false, "normalized": ty != TOKEN_TYPE_CONTROL,
                        "rstrip": false, "single_word": false, "special": ty == TOKEN_TYPE_CONTROL,
                    }),
                );
            }
        }
        let extra: Vec<&String> = [&bos, &eos]
            .into_iter()
            .flatten()
            .filter(|t| Some(*t) != unk.as_ref())
            .collect();
        let mut v = serde_json::json!({
            "add_bos_token": false,
            "add_eos_token": false,
            "add_prefix_space": false,
            "added_tokens_decoder": decoder,
            "additional_special_tokens": extra,
            "bos_token": bos,
            "eos_token": eos,
            "pad_token": pad,
            "unk_token": unk,
            "clean_up_tokenization_spaces": false,
            "model_max_length": self.uint("llama.context_length")?,
            // Not "GPT2Tokenizer" (what SmolLM2's own file says): transformers 5 rebuilds that
            // class's pre-tokenizer as plain byte-level, dropping the digit split of
            // tokenizer.json ("  42" and "½ ¾ ²" then tokenize differently). The generic class
            // uses tokenizer.json as written, in transformers 4 and 5.
            "tokenizer_class": "PreTrainedTokenizerFast",
            "vocab_size": tokens.len(),
        });
        if let Some(t) = self.chat_template() {
            v["chat_template"] = serde_json::Value::String(t);
        }
        Ok(v)
    }

    /// Every tensor, dequantised to f32, under its Hugging Face `LlamaForCausalLM` name, with the
    /// q/k rows put back in Hugging Face's order.
    pub fn hf_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        let c = self.text_config()?;
        let file = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let mut reader = BufReader::new(file);
        let mut names: Vec<&String> = self.content.tensor_infos.keys().collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let hf = hf_name(name).ok_or_else(|| {
                self.err(format!(
                    "tensor {name:?} has no Hugging Face Llama counterpart (unsupported GGUF \
                     tensor)"
                ))
            })?;
            let q = self
                .content
                .tensor(&mut reader, name, &Device::Cpu)
                .map_err(|e| self.err(format!("reading tensor {name:?}: {e}")))?;
            let mut t = q
                .dequantize(&Device::Cpu)
                .map_err(|e| self.err(format!("dequantising tensor {name:?}: {e}")))?;
            if name.ends_with("attn_q.weight") || name.ends_with("attn_q.bias") {
                t = unpermute_qk(&t, c.num_attention_heads)?;
            } else if name.ends_with("attn_k.weight") || name.ends_with("attn_k.bias") {
                t = unpermute_qk(&t, c.kv_heads())?;
            }
            out.push((hf, t.to_dtype(DType::F32)?));
        }
        Ok(out)
    }

    /// Writes the Hugging Face directory: `model.safetensors`, `config.json`,
    /// `generation_config.json`, `tokenizer.json`, `tokenizer_config.json` (with the chat
    /// template) and `special_tokens_map.json`. Each file is written through a temporary file
    /// and renamed, so an interrupted run leaves whole files or none.
    pub fn write_hf_dir(&self, dir: &Path) -> Result<WrittenHfDir> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut files = Vec::new();
        let tensors = self.hf_tensors()?;
        let parameters = tensors.iter().map(|(_, t)| t.elem_count()).sum();
        let n_tensors = tensors.len();
        let st = dir.join("model.safetensors");
        let tmp = dir.join(".model.safetensors.tmp");
        let map: HashMap<String, Tensor> = tensors.into_iter().collect();
        candle_core::safetensors::save(&map, &tmp).map_err(|e| Error::Safetensors {
            path: tmp.clone(),
            msg: e.to_string(),
        })?;
        std::fs::rename(&tmp, &st).map_err(|e| Error::io(&st, e))?;
        files.push("model.safetensors".to_string());
        drop(map);

        let tokenizer = self
            .tokenizer()?
            .to_string(true)
            .map_err(|e| self.err(format!("serialising the tokenizer: {e}")))?;
        let tok_cfg = self.tokenizer_config_json()?;
        let special = serde_json::json!({
            "bos_token": tok_cfg["bos_token"],
            "eos_token": tok_cfg["eos_token"],
            "pad_token": tok_cfg["pad_token"],
            "unk_token": tok_cfg["unk_token"],
            "additional_special_tokens": tok_cfg["additional_special_tokens"],
        });
        let pretty = |v: &serde_json::Value| {
            let mut s = serde_json::to_string_pretty(v).expect("JSON values serialise");
            s.push('\n');
            s
        };
        let texts = [
            ("config.json", pretty(&self.config_json()?)),
            (
                "generation_config.json",
                pretty(&self.generation_config_json()?),
            ),
            ("tokenizer.json", tokenizer),
            ("tokenizer_config.json", pretty(&tok_cfg)),
            ("special_tokens_map.json", pretty(&special)),
        ];
        for (name, text) in texts {
            write_atomic(&dir.join(name), text.as_bytes())?;
            files.push(name.to_string());
        }
        Ok(WrittenHfDir {
            dir: dir.to_path_buf(),
            files,
            tensors: n_tensors,
            parameters,
        })
    }
}

/// The Hugging Face `LlamaForCausalLM` name of a llama.cpp tensor name.
pub fn hf_name(gguf: &str) -> Option<String> {
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, param) = rest.rsplit_once('.')?;
    if param != "weight" && param != "bias" {
        return None;
    }
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{param}"))
}

/// Inverts llama.cpp's q/k row permutation (`permute` in `convert_hf_to_gguf.py`).
///
/// The converter views each head's `d` output rows as `[2, d/2]` (the two halves Hugging Face's
/// `rotate_half` pairs) and transposes them to `[d/2, 2]` (the interleaved pairs llama.cpp
/// rotates). Here the `[heads, d/2, 2, ..]` view is transposed back to `[heads, 2, d/2, ..]`.
/// Works on weights `[heads * d, in]` and biases `[heads * d]`.
pub fn unpermute_qk(w: &Tensor, heads: usize) -> Result<Tensor> {
    swap_head_halves(w, heads, true, "un-permute")
}

/// The inverse of [`unpermute_qk`]: what llama.cpp's converter does (used by tests).
pub fn permute_qk(w: &Tensor, heads: usize) -> Result<Tensor> {
    swap_head_halves(w, heads, false, "permute")
}

/// Views each head's rows as `[d/2, 2]` (`from_interleaved`) or `[2, d/2]` and transposes the
/// two axes.
fn swap_head_halves(
    w: &Tensor,
    heads: usize,
    from_interleaved: bool,
    what: &str,
) -> Result<Tensor> {
    let dims = w.dims().to_vec();
    let rows = dims[0];
    if heads == 0 || rows % (2 * heads) != 0 {
        return Err(Error::Input(format!(
            "cannot {what} a q/k tensor of {rows} rows into {heads} heads of even width"
        )));
    }
    let half = rows / heads / 2;
    let mut view = if from_interleaved {
        vec![heads, half, 2]
    } else {
        vec![heads, 2, half]
    };
    view.extend_from_slice(&dims[1..]);
    Ok(w.reshape(view)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)?)
}

/// A causal language model loaded from a Hugging Face `LlamaForCausalLM` directory (such as the
/// one [`GgufLlama::write_hf_dir`] writes): the decoder and its tokenizer.
#[derive(Debug, Clone)]
pub struct CausalLm {
    /// The decoder with its LM head.
    pub model: LlamaModel,
    /// The tokenizer from `tokenizer.json`.
    pub tokenizer: Tokenizer,
    /// The directory it was loaded from.
    pub dir: PathBuf,
}

impl CausalLm {
    /// Loads `config.json` (`model_type: "llama"`), `model.safetensors` and `tokenizer.json`.
    pub fn load(dir: &Path, dtype: DType, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        if !cfg_path.is_file() {
            return Err(Error::MissingFile {
                path: cfg_path,
                hint: "not a Hugging Face model directory".into(),
            });
        }
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let mut value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::Json {
                path: cfg_path.clone(),
                msg: e.to_string(),
            })?;
        let model_type = value["model_type"].as_str().unwrap_or("<missing>");
        if model_type != "llama" {
            return Err(Error::UnsupportedModelType {
                model_type: model_type.to_string(),
                path: cfg_path,
                supported: "llama".into(),
            });
        }
        // transformers 5 nests RoPE settings in `rope_parameters`; lift its theta when the
        // legacy key is absent.
        if value.get("rope_theta").is_none() {
            if let Some(t) = value["rope_parameters"]["rope_theta"].as_f64() {
                value["rope_theta"] = t.into();
            }
        }
        let config: TextConfig = serde_json::from_value(value).map_err(|e| Error::Json {
            path: cfg_path.clone(),
            msg: e.to_string(),
        })?;
        let st = dir.join("model.safetensors");
        if !st.is_file() {
            return Err(Error::MissingFile {
                path: st,
                hint: "a single-file safetensors checkpoint is expected".into(),
            });
        }
        // SAFETY: the file is memory-mapped read-only; the project never writes a checkpoint in
        // place (writers rename a finished temporary file over it).
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&st], dtype, device) }.map_err(|e| {
                Error::Safetensors {
                    path: st.clone(),
                    msg: e.to_string(),
                }
            })?;
        let model = LlamaModel::load(
            vb.pp("model"),
            Some(vb.pp("lm_head")),
            config.tie_word_embeddings,
            &config,
        )
        .map_err(|e| Error::Safetensors {
            path: st.clone(),
            msg: e.to_string(),
        })?;
        let tok_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| Error::Tokenizer {
            path: Some(tok_path.clone()),
            msg: e.to_string(),
        })?;
        Ok(Self {
            model,
            tokenizer,
            dir: dir.to_path_buf(),
        })
    }

    /// Token ids of `text` (no special tokens added; special-token strings in the text, such as
    /// `<|im_start|>`, map to their ids).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer {
                path: Some(self.dir.join("tokenizer.json")),
                msg: e.to_string(),
            })
    }

    /// Greedy continuation of `ids` by up to `max_new` tokens, stopping after an id in `stop`.
    pub fn greedy(&self, ids: &[u32], max_new: usize, stop: &[u32]) -> Result<Vec<u32>> {
        if ids.is_empty() {
            return Err(Error::Input(
                "greedy decoding needs a non-empty prompt".into(),
            ));
        }
        let dev = self.model.device();
        let mut cache = self.model.new_cache();
        let none = crate::llama::ResidualCapture::none();
        let mut input = Tensor::new(ids, dev)?.unsqueeze(0)?;
        let mut out = Vec::new();
        for _ in 0..max_new {
            let o = self.model.forward_ids(
                &input,
                Some(&mut cache),
                &none,
                crate::llama::Logits::Last,
            )?;
            let logits = o
                .logits
                .ok_or_else(|| Error::Input("internal: no logits".into()))?;
            let next = logits.flatten_all()?.argmax(0)?.to_scalar::<u32>()?;
            out.push(next);
            if stop.contains(&next) {
                break;
            }
            input = Tensor::new(&[next], dev)?.unsqueeze(0)?;
        }
        Ok(out)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_names_cover_a_llama_block() {
        assert_eq!(
            hf_name("blk.12.attn_q.weight").as_deref(),
            Some("model.layers.12.self_attn.q_proj.weight")
        );
        assert_eq!(
            hf_name("blk.0.ffn_down.weight").as_deref(),
            Some("model.layers.0.mlp.down_proj.weight")
        );
        assert_eq!(
            hf_name("blk.3.ffn_norm.weight").as_deref(),
            Some("model.layers.3.post_attention_layernorm.weight")
        );
        assert_eq!(
            hf_name("token_embd.weight").as_deref(),
            Some("model.embed_tokens.weight")
        );
        assert_eq!(hf_name("rope_freqs.weight"), None);
        assert_eq!(hf_name("blk.x.attn_q.weight"), None);
    }

    #[test]
    fn unpermute_inverts_the_converters_permutation() {
        // Rows of 2 heads of width 4: HF order [h0: a0 a1 b0 b1, h1: ...] where (a_i, b_i) are the
        // rotate_half pairs; llama.cpp's order interleaves them: [a0 b0 a1 b1].
        let hf: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let hf = Tensor::from_vec(hf, (8, 1), &Device::Cpu).unwrap();
        let gg = permute_qk(&hf, 2).unwrap();
        let rows: Vec<f32> = gg.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(rows, vec![0., 2., 1., 3., 4., 6., 5., 7.]);
        let back = unpermute_qk(&gg, 2).unwrap();
        let rows: Vec<f32> = back.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(rows, (0..8).map(|i| i as f32).collect::<Vec<_>>());
        assert!(unpermute_qk(&hf, 3).is_err());
    }

    #[test]
    fn pre_tokenizer_names() {
        assert_eq!(
            PreTokenizerKind::from_gguf_name("smollm"),
            Some(PreTokenizerKind::DigitsThenGpt2)
        );
        assert_eq!(
            PreTokenizerKind::from_gguf_name("gpt2"),
            Some(PreTokenizerKind::Gpt2)
        );
        assert_eq!(PreTokenizerKind::from_gguf_name("llama-bpe"), None);
    }
}
