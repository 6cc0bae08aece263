//! GGUF → Hugging Face conversion on a tiny random Llama written here as a GGUF file, so it runs
//! without `cargo xtask fetch`: the converted directory's logits equal candle-transformers'
//! `quantized_llama` on the GGUF file (which rotates interleaved pairs on llama.cpp's permuted q/k
//! rows, where our decoder rotates halves on the un-permuted ones), and the tokenizer rebuilt from
//! the metadata gives the ids byte-level BPE with SmolLM2's pre-tokenizer must give.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;
use cox_model::gguf::{permute_qk, CausalLm, GgufLlama};
use cox_model::{Logits, ResidualCapture};

const HIDDEN: usize = 32;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FFN: usize = 64;
const LAYERS: usize = 2;
const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const MERGES: [&str; 6] = ["Ġ t", "h e", "Ġt he", "c a", "ca t", "Ġ cat"];

/// GPT-2's byte → character table (printable bytes map to themselves, the rest to U+0100...).
fn byte_chars() -> Vec<char> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap()
            }
        })
        .collect()
}

fn vocabulary() -> Vec<String> {
    let mut v: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    v.extend(byte_chars().into_iter().map(String::from));
    v.extend(MERGES.iter().map(|m| m.replace(' ', "")));
    v
}

fn id(tok: &str) -> u32 {
    vocabulary().iter().position(|t| t == tok).unwrap() as u32
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| Value::String(s.clone())).collect())
}

/// Writes the tiny model as GGUF (random HF-order q/k weights permuted as llama.cpp's converter
/// does; some tensors quantised to Q8_0/Q4_1) and returns what the converted file must hold: the
/// dequantised values under HF names in HF row order.
fn write_tiny_gguf(path: &std::path::Path) -> HashMap<String, Tensor> {
    let dev = Device::Cpu;
    let vocab = vocabulary();
    let hd = HIDDEN / HEADS;
    let mut hf: HashMap<String, Tensor> = HashMap::new();
    let mut gg: Vec<(String, QTensor)> = Vec::new();
    let mut add = |hf_name: &str, gg_name: &str, gg_t: Tensor, q: GgmlDType| {
        // What the converted file must hold: the dequantised values of what the GGUF stores.
        let qt = QTensor::quantize(&gg_t, q).unwrap();
        let back = qt.dequantize(&dev).unwrap();
        let back = if gg_name.contains("attn_q") {
            cox_model::gguf::unpermute_qk(&back, HEADS).unwrap()
        } else if gg_name.contains("attn_k") {
            cox_model::gguf::unpermute_qk(&back, KV_HEADS).unwrap()
        } else {
            back
        };
        hf.insert(hf_name.to_string(), back);
        gg.push((gg_name.to_string(), qt));
    };
    let rnd = |shape: (usize, usize), s: f32| Tensor::randn(0f32, s, shape, &dev).unwrap();
    let norm = || (Tensor::randn(0f32, 0.1, HIDDEN, &dev).unwrap() + 1.0).unwrap();
    let emb = rnd((vocab.len(), HIDDEN), 0.5);
    add(
        "model.embed_tokens.weight",
        "token_embd.weight",
        emb,
        GgmlDType::Q8_0,
    );
    let n = norm();
    add("model.norm.weight", "output_norm.weight", n, GgmlDType::F32);
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        let b = format!("blk.{l}");
        let q = rnd((HEADS * hd, HIDDEN), 0.3);
        let k = rnd((KV_HEADS * hd, HIDDEN), 0.3);
        add(
            &format!("{p}.self_attn.q_proj.weight"),
            &format!("{b}.attn_q.weight"),
            permute_qk(&q, HEADS).unwrap(),
            GgmlDType::Q4_1,
        );
        add(
            &format!("{p}.self_attn.k_proj.weight"),
            &format!("{b}.attn_k.weight"),
            permute_qk(&k, KV_HEADS).unwrap(),
            GgmlDType::F32,
        );
        for (h, g, shape, q) in [
            (
                "self_attn.v_proj",
                "attn_v",
                (KV_HEADS * hd, HIDDEN),
                GgmlDType::F32,
            ),
            (
                "self_attn.o_proj",
                "attn_output",
                (HIDDEN, HIDDEN),
                GgmlDType::F32,
            ),
            ("mlp.gate_proj", "ffn_gate", (FFN, HIDDEN), GgmlDType::Q4_1),
            ("mlp.up_proj", "ffn_up", (FFN, HIDDEN), GgmlDType::F32),
            ("mlp.down_proj", "ffn_down", (HIDDEN, FFN), GgmlDType::Q4_1),
        ] {
            let t = rnd(shape, 0.3);
            add(&format!("{p}.{h}.weight"), &format!("{b}.{g}.weight"), t, q);
        }
        for (h, g) in [
            ("input_layernorm", "attn_norm"),
            ("post_attention_layernorm", "ffn_norm"),
        ] {
            let t = norm();
            add(
                &format!("{p}.{h}.weight"),
                &format!("{b}.{g}.weight"),
                t,
                GgmlDType::F32,
            );
        }
    }
    let types: Vec<Value> = (0..vocab.len())
        .map(|i| Value::I32(if i < SPECIALS.len() { 3 } else { 1 }))
        .collect();
    let merges: Vec<String> = MERGES.iter().map(|m| m.to_string()).collect();
    let md: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.block_count", Value::U32(LAYERS as u32)),
        ("llama.context_length", Value::U32(128)),
        ("llama.embedding_length", Value::U32(HIDDEN as u32)),
        ("llama.feed_forward_length", Value::U32(FFN as u32)),
        ("llama.attention.head_count", Value::U32(HEADS as u32)),
        ("llama.attention.head_count_kv", Value::U32(KV_HEADS as u32)),
        ("llama.rope.freq_base", Value::F32(100_000.0)),
        ("llama.rope.dimension_count", Value::U32(hd as u32)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("llama.vocab_size", Value::U32(vocab.len() as u32)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        ("tokenizer.ggml.tokens", strings(&vocab)),
        ("tokenizer.ggml.token_type", Value::Array(types)),
        ("tokenizer.ggml.merges", strings(&merges)),
        ("tokenizer.ggml.bos_token_id", Value::U32(1)),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.ggml.unknown_token_id", Value::U32(0)),
        ("tokenizer.ggml.padding_token_id", Value::U32(2)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
        (
            "tokenizer.chat_template",
            Value::String("{{ '<|im_start|>' }}".into()),
        ),
    ];
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = gg.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md_refs, &t_refs).unwrap();
    hf
}

#[test]
fn converted_tiny_llama_matches_quantized_llama_and_tokenizes_like_smollm() {
    // The oracle multiplies by dequantised weights (read once per thread by candle's QMatMul).
    std::env::set_var("CANDLE_DEQUANTIZE_ALL", "1");
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("tiny.gguf");
    let expected = write_tiny_gguf(&gguf);
    let g = GgufLlama::open(&gguf).unwrap();
    let cfg = g.text_config().unwrap();
    assert_eq!(cfg.num_hidden_layers, LAYERS);
    assert_eq!(cfg.kv_heads(), KV_HEADS);
    assert!(cfg.tie_word_embeddings);
    assert_eq!(cfg.rms_norm_eps, 1e-5);
    let dir = tmp.path().join("hf");
    let written = g.write_hf_dir(&dir).unwrap();
    assert_eq!(written.tensors, 2 + 9 * LAYERS);

    // The file holds the dequantised values under HF names, q/k un-permuted.
    let st = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(st.len(), expected.len());
    for (name, want) in &expected {
        let got = st.get(name).unwrap_or_else(|| panic!("{name} missing"));
        let d = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0, "{name}");
    }

    let lm = CausalLm::load(&dir, DType::F32, &Device::Cpu).unwrap();
    // Tokenizer: digits split one by one, GPT-2's regex, merges by rank, specials matched whole.
    let ids = lm.encode("the cat 12<|im_end|> the").unwrap();
    let want: Vec<u32> = ["t", "he", "Ġcat", "Ġ", "1", "2", "<|im_end|>", "Ġthe"]
        .iter()
        .map(|t| id(t))
        .collect();
    assert_eq!(ids, want);
    assert_eq!(
        lm.tokenizer.decode(&ids, false).unwrap(),
        "the cat 12<|im_end|> the"
    );

    let mut file = std::fs::File::open(&gguf).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut oracle = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();
    let prompt: Vec<u32> = (0..20).map(|i| (i * 37 % 260) as u32 + 3).collect();
    for len in [1, 7, 20] {
        let ids = Tensor::new(&prompt[..len], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        oracle.clear_kv_cache();
        let want = oracle.forward(&ids, 0).unwrap().flatten_all().unwrap();
        let got = lm
            .model
            .forward_ids(&ids, None, &ResidualCapture::none(), Logits::Last)
            .unwrap()
            .logits
            .unwrap()
            .flatten_all()
            .unwrap();
        let scale = want
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let diff = (&got - &want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            diff <= 1e-5 * scale,
            "{len} tokens: max |Δ| {diff} vs max |logit| {scale}"
        );
    }

    // Without the un-permutation the logits differ: the test can tell.
    let q0 = "model.layers.0.self_attn.q_proj.weight";
    let mut wrong = st.clone();
    wrong.insert(q0.into(), permute_qk(&st[q0], HEADS).unwrap());
    candle_core::safetensors::save(&wrong, dir.join("model.safetensors")).unwrap();
    let bad = CausalLm::load(&dir, DType::F32, &Device::Cpu).unwrap();
    let ids = Tensor::new(&prompt[..20], &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    oracle.clear_kv_cache();
    let want = oracle.forward(&ids, 0).unwrap().flatten_all().unwrap();
    let got = bad
        .model
        .forward_ids(&ids, None, &ResidualCapture::none(), Logits::Last)
        .unwrap()
        .logits
        .unwrap()
        .flatten_all()
        .unwrap();
    let diff = (&got - &want)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff > 1e-3, "a permuted q_proj went unnoticed ({diff})");
}

#[test]
fn unsupported_pre_tokenizer_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.gguf");
    let md: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("qwen2".into())),
    ];
    let refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let mut f = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut f, &refs, &[]).unwrap();
    let err = GgufLlama::open(&path).unwrap().tokenizer().unwrap_err();
    assert!(err.to_string().contains("\"qwen2\""), "{err}");
    let md2: Vec<(&str, Value)> = vec![("general.architecture", Value::String("qwen2".into()))];
    let refs: Vec<(&str, &Value)> = md2.iter().map(|(k, v)| (*k, v)).collect();
    let mut f = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut f, &refs, &[]).unwrap();
    let err = GgufLlama::open(&path).unwrap_err();
    assert!(err.to_string().contains("only \"llama\""), "{err}");
}
