//! Shared test helpers: a tiny random BERT directory, and the fetched real model.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config};

/// The tiny model's vocabulary (WordPiece, `vocab.txt` order = ids).
pub const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "dog", "cat", "runs", "on", "the", "grass",
    "sofa", "sleeps", "red", "bus", "##s", ",", ".", "hello", "world",
];

pub fn tiny_config() -> serde_json::Value {
    serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": VOCAB.len(),
        "hidden_size": 8,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 16,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 32,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0
    })
}

/// Write a random BERT (hidden 8, 2 layers) with only `vocab.txt` as its tokenizer into `dir`, and
/// return its tensors.
pub fn write_tiny_bert(dir: &Path) -> HashMap<String, Tensor> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), tiny_config().to_string()).unwrap();
    std::fs::write(dir.join("vocab.txt"), VOCAB.join("\n") + "\n").unwrap();
    let cfg: Config = serde_json::from_value(tiny_config()).unwrap();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    BertModel::load(vb, &cfg).unwrap();
    // LayerNorm parameters start at 1 and 0; perturb them so tests do not rely on that.
    for (name, var) in vm.data().lock().unwrap().iter() {
        if name.contains("LayerNorm") {
            let t = var.as_tensor();
            let noise = Tensor::randn(0f32, 0.1, t.shape(), &Device::Cpu).unwrap();
            var.set(&(t + noise).unwrap()).unwrap();
        }
    }
    vm.save(dir.join("model.safetensors")).unwrap();
    let tensors = vm
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    tensors
}

/// The vocabulary id of a token of [`VOCAB`].
pub fn id(tok: &str) -> u32 {
    VOCAB.iter().position(|t| *t == tok).unwrap() as u32
}

/// The fetched all-MiniLM-L6-v2 directory, or `None` (with a loud message) when it is absent and
/// `COXLMM_REQUIRE_MODELS` is not `1`; panics when it is absent and required.
pub fn minilm_dir(test: &str) -> Option<PathBuf> {
    let models = match std::env::var_os("COXLMM_MODELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models"),
    };
    let dir = models.join("all-minilm-l6-v2");
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    if std::env::var("COXLMM_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!(
            "{test}: {} is missing and COXLMM_REQUIRE_MODELS=1: run `cargo xtask fetch`",
            dir.display()
        );
    }
    eprintln!(
        "\n*** SKIPPED {test}: {} is missing; run `cargo xtask fetch` (CI sets COXLMM_REQUIRE_MODELS=1 and fails instead) ***\n",
        dir.display()
    );
    None
}
