//! The tiny-llava-smol trainer on a tiny random stand-in for SmolLM2 (same code path, seconds
//! instead of hours): a run cut short and resumed reaches the same weights as an uninterrupted
//! one; adapters start as the identity; the assembled llava-hf checkpoint loads with
//! `cox_model::Llava` and captions exactly as the trainer does.

use std::path::Path;

use candle_core::{Device, Tensor};
use cox_model::testing::{write_tiny_llava, TinyConfig};
use cox_train::smol::{assemble, merge_low_rank, SmolConfig, SmolTrainer, SMOL_CHAT_TEMPLATE};

/// A Hugging Face `LlamaForCausalLM` directory with a tied head, ChatML special tokens and a
/// word-level tokenizer over the synthetic world's words and the prompt's.
fn tiny_lm(dir: &Path) {
    let llava_dir = dir.join("llava");
    let mut words: Vec<String> = cox_synth::vocabulary()
        .into_iter()
        .map(str::to_string)
        .collect();
    for w in [
        "<|im_start|>",
        "<|im_end|>",
        "system",
        "user",
        "assistant",
        "Provide",
        "one",
        "-",
        "sentence",
        "caption",
        "for",
        "provided",
        "image",
        ".",
    ] {
        words.push(w.to_string());
    }
    let tiny = TinyConfig {
        tie_word_embeddings: true,
        extra_words: words,
        text_hidden: 32,
        text_intermediate: 64,
        text_layers: 2,
        text_heads: 4,
        text_kv_heads: 2,
        ..TinyConfig::tiny()
    };
    let cfg = write_tiny_llava(&llava_dir, &tiny, 3).unwrap();
    let lm = dir.join("lm");
    std::fs::create_dir_all(&lm).unwrap();
    let weights =
        candle_core::safetensors::load(llava_dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let lm_weights: std::collections::HashMap<String, Tensor> = weights
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("language_model.")
                .map(|r| (r.to_string(), v))
        })
        .collect();
    assert!(lm_weights.keys().all(|k| k.starts_with("model.")));
    candle_core::safetensors::save(&lm_weights, lm.join("model.safetensors")).unwrap();
    let mut text = serde_json::to_value(&cfg.text_config).unwrap();
    text["model_type"] = "llama".into();
    text["tie_word_embeddings"] = true.into();
    text["eos_token_id"] = serde_json::json!(null);
    std::fs::write(lm.join("config.json"), text.to_string()).unwrap();
    // A word-level tokenizer over the stand-in's vocabulary (its `<image>` renamed: the language
    // model has no image token, assemble adds one), no BOS post-processor (SmolLM2 adds none), the
    // ChatML markers as special tokens so that they split text as in SmolLM2.
    let vocab: std::collections::HashMap<String, u32> = tiny
        .vocabulary()
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let w = if w == "<image>" {
                "<unused0>".to_string()
            } else {
                w
            };
            (w, i as u32)
        })
        .collect();
    let model = tokenizers::models::wordlevel::WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("<unk>".into())
        .build()
        .unwrap();
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::whitespace::Whitespace {}));
    tok.add_special_tokens(&[
        tokenizers::AddedToken::from("<unk>", true),
        tokenizers::AddedToken::from("<|im_start|>", true),
        tokenizers::AddedToken::from("<|im_end|>", true),
    ]);
    tok.save(lm.join("tokenizer.json"), false).unwrap();
    let end = tok.token_to_id("<|im_end|>").unwrap();
    std::fs::write(
        lm.join("generation_config.json"),
        serde_json::json!({"eos_token_id": end}).to_string(),
    )
    .unwrap();
    std::fs::write(
        lm.join("special_tokens_map.json"),
        serde_json::json!({"eos_token": "<|im_end|>"}).to_string(),
    )
    .unwrap();
    std::fs::write(
        lm.join("tokenizer_config.json"),
        serde_json::json!({"add_bos_token": false, "eos_token": "<|im_end|>",
            "chat_template": "{{ '<|im_start|>' }}"})
        .to_string(),
    )
    .unwrap();
}

fn tower() -> std::path::PathBuf {
    cox_synth::default_model_dir()
}

fn small_config() -> SmolConfig {
    SmolConfig {
        steps: 4,
        batch_size: 2,
        warmup: 1,
        lora_rank: 2,
        eval_scenes: 0,
        ..SmolConfig::default()
    }
}

fn trainable(dir: &Path) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("state/trainable.safetensors"), &Device::Cpu).unwrap()
}

#[test]
fn a_resumed_run_reaches_the_weights_of_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_lm(tmp.path());
    let lm = tmp.path().join("lm");
    let cfg = small_config();
    let mut none = |_: &cox_train::smol::SmolPoint, _: Option<&cox_train::smol::EvalSummary>| {};

    let whole = tmp.path().join("whole");
    let mut t = SmolTrainer::new(&whole, &tower(), &lm, &cfg).unwrap();
    assert!(t.train(1e9, None, &mut none).unwrap());
    let losses: Vec<f32> = t.curve().iter().map(|p| p.loss).collect();
    assert_eq!(losses.len(), 4);
    assert!(losses.iter().all(|l| l.is_finite()));

    let cut = tmp.path().join("cut");
    let mut t = SmolTrainer::new(&cut, &tower(), &lm, &cfg).unwrap();
    assert!(!t.train_until(1e9, None, Some(2), &mut none).unwrap());
    drop(t);
    // A fresh start on a saved run is refused by the CLI; the library resumes it.
    let mut t = SmolTrainer::resume(&cut, &tower(), &lm, &cfg).unwrap();
    assert_eq!(t.step(), 2);
    assert!(t.train(1e9, None, &mut none).unwrap());
    let resumed: Vec<f32> = t.curve().iter().map(|p| p.loss).collect();
    assert_eq!(losses, resumed, "the resumed run's losses differ");

    let (a, b) = (trainable(&whole), trainable(&cut));
    assert_eq!(a.len(), b.len());
    for (name, x) in &a {
        let y = &b[name];
        let d = (x - y)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(d, 0.0, "{name} differs by {d} after resuming");
    }
    // The adapters learnt something (B starts at zero).
    let moved = a
        .iter()
        .filter(|(k, _)| k.contains("lora_B"))
        .any(|(_, t)| {
            t.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        });
    assert!(moved, "no adapter moved from zero");

    // Other settings cannot resume this run.
    let other = SmolConfig {
        batch_size: 3,
        ..cfg.clone()
    };
    let err = SmolTrainer::resume(&cut, &tower(), &lm, &other)
        .err()
        .expect("different settings refused");
    assert!(err.to_string().contains("settings"), "{err}");
}

#[test]
fn the_assembled_checkpoint_loads_as_llava_and_captions_like_the_trainer() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_lm(tmp.path());
    let lm = tmp.path().join("lm");
    let cfg = small_config();
    let run = tmp.path().join("run");
    let mut t = SmolTrainer::new(&run, &tower(), &lm, &cfg).unwrap();
    let mut none = |_: &cox_train::smol::SmolPoint, _: Option<&cox_train::smol::EvalSummary>| {};
    assert!(t.train(1e9, None, &mut none).unwrap());
    let parts = tmp.path().join("parts");
    t.write_parts(&tower(), &parts).unwrap();
    let out = tmp.path().join("assembled");
    assemble(&parts, &lm, &out).unwrap();

    let llava = cox_model::Llava::load(&out.display().to_string(), &Default::default()).unwrap();
    let tc = llava.model.config();
    assert_eq!(tc.image_token_index as usize, tc.text_config.vocab_size - 1);
    assert!(matches!(
        llava.tokenizer.format,
        cox_model::tokenizer::PromptFormat::ChatMl { system: Some(_) }
    ));
    let tc_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tokenizer_config.json")).unwrap())
            .unwrap();
    assert_eq!(tc_json["chat_template"], SMOL_CHAT_TEMPLATE);

    let scenes = cox_synth::generate_split(
        &cox_synth::SynthConfig::default(),
        0,
        cox_synth::Split::Test,
        3,
    )
    .unwrap();
    for s in &scenes {
        let (ours, _) = t.caption(&[&s.factors], 12).unwrap().remove(0);
        let (theirs, _) = cox_train::caption_scene(&llava, &s.factors, 12).unwrap();
        assert!(!ours.is_empty(), "scene {}: empty caption", s.id);
        assert_eq!(ours, theirs, "scene {}", s.id);
        // Teacher forcing (coxlmm causal's ablation) puts the caption right after the ChatML
        // assistant header, tokenized as the trainer's targets were (no leading space).
        let (input, answer) = llava
            .prepare_with_answer(
                "Provide a one-sentence caption for the provided image.",
                &s.canonical,
                None,
            )
            .unwrap();
        let want = llava
            .tokenizer
            .inner()
            .encode(s.canonical.as_str(), false)
            .unwrap();
        assert_eq!(&input.ids[answer], want.get_ids(), "scene {}", s.id);
    }
}

#[test]
fn merging_a_low_rank_update_adds_scale_b_a() {
    let dev = Device::Cpu;
    let w = Tensor::new(&[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &dev).unwrap();
    let a = Tensor::new(&[[1f32, 0.0, -1.0]], &dev).unwrap();
    let b = Tensor::new(&[[2f32], [0.5]], &dev).unwrap();
    let m = merge_low_rank(&w, &a, &b, 2.0).unwrap();
    let want = (&w + (b.matmul(&a).unwrap() * 2.0).unwrap()).unwrap();
    assert_eq!(m.to_vec2::<f32>().unwrap(), want.to_vec2::<f32>().unwrap());
    assert!(merge_low_rank(&w, &b, &a, 1.0).is_err());
}
