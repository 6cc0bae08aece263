//! SmolLM2-135M-Instruct as `cargo xtask fetch` writes it: the Hugging Face directory converted
//! from the llama.cpp GGUF file by `cox_model::gguf`.
//!
//! * The rebuilt `tokenizer.json` gives the ids of `fixtures/smollm2_tokenizer/cases.json`
//!   (transformers' tokenizer built from the GGUF vocabulary and merges, confirmed by an
//!   independent reimplementation of llama.cpp's pre-tokenizer; see `make_fixture.py`).
//! * Our decoder on the converted (dequantised, q/k un-permuted) weights gives the logits of
//!   candle-transformers' `quantized_llama` run on the GGUF file itself with the same dequantised
//!   values (`CANDLE_DEQUANTIZE_ALL`), and the same greedy continuations.
//!
//! Needs `cargo xtask fetch`; skips loudly without it unless `COXLMM_REQUIRE_MODELS=1`.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use cox_model::gguf::CausalLm;
use cox_model::{LayerSel, Logits, ResidualCapture};

const GGUF: &str = "smollm2-135m-instruct-gguf/SmolLM2-135M-Instruct.Q4_1.gguf";
const HF_DIR: &str = "smollm2-135m-instruct";
/// `<|im_end|>`.
const EOS: u32 = 2;

fn models_dir() -> PathBuf {
    match std::env::var_os("COXLMM_MODELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models"),
    }
}

/// A fetched file or directory under the models directory, or `None` (with a loud message) when
/// it is absent and `COXLMM_REQUIRE_MODELS` is not `1`; panics when it is absent and required.
fn fetched(test: &str, rel: &str) -> Option<PathBuf> {
    let p = models_dir().join(rel);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("COXLMM_REQUIRE_MODELS").as_deref() == Ok("1") {
        panic!(
            "{test}: {} is missing and COXLMM_REQUIRE_MODELS=1: run `cargo xtask fetch`",
            p.display()
        );
    }
    eprintln!(
        "\n*** SKIPPED {test}: {} is missing; run `cargo xtask fetch` (CI sets COXLMM_REQUIRE_MODELS=1 and fails instead) ***\n",
        p.display()
    );
    None
}

/// A prompt in SmolLM2's chat template (what `tokenizer.chat_template` renders for one user turn
/// with `add_generation_prompt`).
fn chat(user: &str) -> String {
    format!(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face\
         <|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
}

#[test]
fn tokenizer_matches_the_transformers_fixture() {
    let Some(dir) = fetched("tokenizer_matches_the_transformers_fixture", HF_DIR) else {
        return;
    };
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/smollm2_tokenizer/cases.json")).unwrap();
    let lm_tok = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 100);
    let mut wrong = Vec::new();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        let want: Vec<u32> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = lm_tok.encode(text, false).unwrap().get_ids().to_vec();
        if got != want {
            wrong.push(format!("{text:?}: got {got:?}, want {want:?}"));
            continue;
        }
        let back = lm_tok.decode(&got, false).unwrap();
        if back != text {
            wrong.push(format!("{text:?} decodes back to {back:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn written_config_describes_smollm2() {
    let Some(dir) = fetched("written_config_describes_smollm2", HF_DIR) else {
        return;
    };
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "llama");
    assert_eq!(cfg["num_hidden_layers"], 30);
    assert_eq!(cfg["hidden_size"], 576);
    assert_eq!(cfg["intermediate_size"], 1536);
    assert_eq!(cfg["num_attention_heads"], 9);
    assert_eq!(cfg["num_key_value_heads"], 3);
    assert_eq!(cfg["vocab_size"], 49152);
    assert_eq!(cfg["tie_word_embeddings"], true);
    assert_eq!(cfg["rope_theta"], 100000.0);
    assert_eq!(cfg["rms_norm_eps"], 1e-5);
    assert_eq!(cfg["max_position_embeddings"], 8192);
    let tc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer_config.json")).unwrap())
            .unwrap();
    assert_eq!(tc["bos_token"], "<|im_start|>");
    assert_eq!(tc["eos_token"], "<|im_end|>");
    assert!(tc["chat_template"]
        .as_str()
        .unwrap()
        .contains("<|im_start|>assistant\n"));
}

/// Greedy continuation with candle-transformers' model on the GGUF file.
fn oracle_greedy(m: &mut ModelWeights, ids: &[u32], max_new: usize) -> Vec<u32> {
    m.clear_kv_cache();
    let mut out = Vec::new();
    let mut input = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let mut pos = 0;
    for _ in 0..max_new {
        let logits = m.forward(&input, pos).unwrap();
        pos += input.dim(1).unwrap();
        let next = logits
            .flatten_all()
            .unwrap()
            .argmax(0)
            .unwrap()
            .to_scalar::<u32>()
            .unwrap();
        out.push(next);
        if next == EOS {
            break;
        }
        input = Tensor::new(&[next], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
    }
    out
}

#[test]
fn logits_and_greedy_match_quantized_llama_on_the_gguf() {
    let test = "logits_and_greedy_match_quantized_llama_on_the_gguf";
    let (Some(gguf), Some(dir)) = (fetched(test, GGUF), fetched(test, HF_DIR)) else {
        return;
    };
    // candle's QMatMul reads this once per thread: the oracle then multiplies by the dequantised
    // f32 weights (the values we wrote), not by Q4_1 blocks against Q8-quantised activations.
    std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
    let mut file = std::fs::File::open(&gguf).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut oracle = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();
    let lm = CausalLm::load(&dir, DType::F32, &Device::Cpu).unwrap();

    let prompts = [
        chat("Provide a one-sentence caption for the provided image."),
        chat("What is the capital of France?"),
        "The quick brown fox jumps over the lazy".to_string(),
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return".to_string(),
        "In 1969, 3 astronauts flew to the Moon; the".to_string(),
    ];
    let mut worst = 0f32;
    for p in &prompts {
        let ids = lm.encode(p).unwrap();
        oracle.clear_kv_cache();
        let want = oracle
            .forward(
                &Tensor::new(ids.as_slice(), &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap(),
                0,
            )
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let out = lm
            .model
            .forward_ids(
                &input,
                None,
                &ResidualCapture::new([LayerSel::FinalNorm]),
                Logits::Last,
            )
            .unwrap();
        let got = out
            .logits
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        let diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let rel = diff / scale;
        eprintln!(
            "{:>3} tokens: max |Δlogit| {diff:.3e}, max |logit| {scale:.2}, relative {rel:.3e}",
            ids.len()
        );
        worst = worst.max(rel);
    }
    eprintln!("worst relative logit difference: {worst:.3e}");
    assert!(worst <= 1e-4, "relative logit difference {worst:e} > 1e-4");

    for p in &prompts[..3] {
        let ids = lm.encode(p).unwrap();
        let ours = lm.greedy(&ids, 24, &[EOS]).unwrap();
        let theirs = oracle_greedy(&mut oracle, &ids, 24);
        let text = lm.tokenizer.decode(&ours, false).unwrap();
        eprintln!("{p:?} -> {text:?}");
        assert_eq!(ours, theirs, "greedy continuations differ for {p:?}");
    }
}

#[test]
fn transformers_agrees_on_the_converted_directory() {
    let Some(dir) = fetched("transformers_agrees_on_the_converted_directory", HF_DIR) else {
        return;
    };
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/smollm2_transformers/reference.json")).unwrap();
    let lm = CausalLm::load(&dir, DType::F32, &Device::Cpu).unwrap();
    let as_u32 = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    let mut worst = 0f64;
    for c in fixture["cases"].as_array().unwrap() {
        let prompt = c["prompt"].as_str().unwrap();
        let ids = lm.encode(prompt).unwrap();
        assert_eq!(ids, as_u32(&c["ids"]), "AutoTokenizer ids of {prompt:?}");
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = lm
            .model
            .forward_ids(&input, None, &ResidualCapture::none(), Logits::Last)
            .unwrap()
            .logits
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let scale = c["max_abs_logit"].as_f64().unwrap();
        for (i, v) in as_u32(&c["top_ids"])
            .iter()
            .zip(c["top_logits"].as_array().unwrap())
        {
            let d = (logits[*i as usize] as f64 - v.as_f64().unwrap()).abs() / scale;
            worst = worst.max(d);
        }
        let ours = lm.greedy(&ids, 24, &[EOS]).unwrap();
        assert_eq!(
            ours,
            as_u32(&c["greedy"]),
            "greedy continuation of {prompt:?} differs from transformers'"
        );
    }
    eprintln!("worst relative difference to transformers' top-10 logits: {worst:.3e}");
    assert!(worst <= 1e-4, "relative logit difference {worst:e} > 1e-4");
}
