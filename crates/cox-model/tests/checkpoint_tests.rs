//! Loading whole checkpoints: good ones (single file, shards, hub cache) and bad ones.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use cox_model::testing::{write_tiny_llava, TinyConfig};
use cox_model::{
    resolve_model_dir, Error, Llava, LlavaConfig, LlavaModel, LoadOptions, ResidualCapture,
};

fn tiny_dir() -> (tempfile::TempDir, LlavaConfig) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_tiny_llava(dir.path(), &TinyConfig::tiny(), 5).unwrap();
    (dir, cfg)
}

fn load(dir: &Path) -> cox_model::Result<LlavaModel> {
    LlavaModel::load_dir(dir, DType::F32, &Device::Cpu)
}

fn rewrite_weights(dir: &Path, f: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let p = dir.join("model.safetensors");
    let mut w = candle_core::safetensors::load(&p, &Device::Cpu).unwrap();
    f(&mut w);
    candle_core::safetensors::save(&w, &p).unwrap();
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
}

#[test]
fn missing_tensor_is_named_with_expected_shape_and_file() {
    let (dir, _) = tiny_dir();
    let name = "language_model.model.layers.1.mlp.up_proj.weight";
    rewrite_weights(dir.path(), |w| {
        w.remove(name);
    });
    let err = load(dir.path()).unwrap_err();
    match &err {
        Error::MissingTensor {
            name: n,
            expected,
            files,
        } => {
            assert_eq!(n, name);
            assert_eq!(expected, &vec![128, 64]);
            assert!(files.contains("model.safetensors"));
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(name) && msg.contains("[128, 64]"), "{msg}");
}

#[test]
fn wrong_shape_is_named_with_both_shapes_and_file() {
    let (dir, _) = tiny_dir();
    let name = "multi_modal_projector.linear_2.weight";
    rewrite_weights(dir.path(), |w| {
        w.insert(
            name.into(),
            Tensor::zeros((64, 63), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    match load(dir.path()).unwrap_err() {
        Error::TensorShape {
            name: n,
            expected,
            found,
            file,
        } => {
            assert_eq!(n, name);
            assert_eq!(expected, vec![64, 64]);
            assert_eq!(found, vec![64, 63]);
            assert!(file.ends_with("model.safetensors"));
        }
        other => panic!("expected TensorShape, got {other:?}"),
    }
}

#[test]
fn unsupported_tensor_dtype_is_an_error() {
    let (dir, _) = tiny_dir();
    let name = "language_model.model.norm.weight";
    rewrite_weights(dir.path(), |w| {
        w.insert(
            name.into(),
            Tensor::zeros(64, DType::U8, &Device::Cpu).unwrap(),
        );
    });
    assert!(
        matches!(load(dir.path()).unwrap_err(), Error::TensorDType { name: n, .. } if n == name)
    );
}

#[test]
fn config_and_weights_that_disagree_are_errors() {
    // Fewer decoder layers in config.json than in the weights.
    let (dir, _) = tiny_dir();
    edit_config(dir.path(), |v| {
        v["text_config"]["num_hidden_layers"] = 2.into()
    });
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("layers.2"), "{err}");
    // More decoder layers in config.json than in the weights.
    let (dir, _) = tiny_dir();
    edit_config(dir.path(), |v| {
        v["text_config"]["num_hidden_layers"] = 4.into()
    });
    assert!(
        matches!(load(dir.path()).unwrap_err(), Error::MissingTensor { name, .. } if name.contains("layers.3"))
    );
    // A different width.
    let (dir, _) = tiny_dir();
    edit_config(dir.path(), |v| {
        v["text_config"]["intermediate_size"] = 96.into()
    });
    assert!(matches!(
        load(dir.path()).unwrap_err(),
        Error::TensorShape { .. }
    ));
    // Fewer vision layers in config.json than in the weights.
    let (dir, _) = tiny_dir();
    edit_config(dir.path(), |v| {
        v["vision_config"]["num_hidden_layers"] = 1.into()
    });
    let err = load(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("vision_config.num_hidden_layers"),
        "{err}"
    );
    // image_seq_length inconsistent with the tower.
    let (dir, _) = tiny_dir();
    edit_config(dir.path(), |v| v["image_seq_length"] = 576.into());
    let err = load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("image_seq_length"), "{err}");
}

#[test]
fn unknown_model_type_and_bad_config_are_errors() {
    let (dir, _) = tiny_dir();
    edit_config(dir.path(), |v| v["model_type"] = "llava_next".into());
    match load(dir.path()).unwrap_err() {
        Error::UnsupportedModelType {
            model_type, path, ..
        } => {
            assert_eq!(model_type, "llava_next");
            assert!(path.ends_with("config.json"));
        }
        other => panic!("{other:?}"),
    }
    edit_config(dir.path(), |v| {
        v["model_type"] = "llava".into();
        v["text_config"]["model_type"] = "mistral".into();
    });
    assert!(load(dir.path())
        .unwrap_err()
        .to_string()
        .contains("mistral"));
    edit_config(dir.path(), |v| {
        v["text_config"]["model_type"] = "llama".into();
        v["vision_feature_layer"] = (-9).into();
    });
    assert!(load(dir.path())
        .unwrap_err()
        .to_string()
        .contains("vision_feature_layer -9"));
    edit_config(dir.path(), |v| {
        v["vision_feature_layer"] = (-2).into();
        v["text_config"]["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 2.0});
    });
    assert!(load(dir.path()).unwrap_err().to_string().contains("yarn"));
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    assert!(matches!(load(dir.path()).unwrap_err(), Error::Json { .. }));
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    assert!(matches!(
        load(dir.path()).unwrap_err(),
        Error::MissingFile { .. }
    ));
}

#[test]
fn hf_defaults_fill_missing_fields() {
    // A llava-hf/llava-1.5-7b-hf style config.json: most Llama fields absent.
    let json = r#"{
      "architectures": ["LlavaForConditionalGeneration"], "ignore_index": -100,
      "image_token_index": 32000, "model_type": "llava", "pad_token_id": 32001,
      "projector_hidden_act": "gelu",
      "text_config": {"_name_or_path": "lmsys/vicuna-7b-v1.5", "architectures": ["LlamaForCausalLM"],
        "max_position_embeddings": 4096, "model_type": "llama", "rms_norm_eps": 1e-05,
        "torch_dtype": "float16", "vocab_size": 32064},
      "tie_word_embeddings": false, "torch_dtype": "float16", "transformers_version": "4.36.0.dev0",
      "vision_config": {"hidden_size": 1024, "image_size": 336, "intermediate_size": 4096,
        "model_type": "clip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 24,
        "patch_size": 14, "projection_dim": 768, "vocab_size": 32000},
      "vision_feature_layer": -2, "vision_feature_select_strategy": "default", "vocab_size": 32064
    }"#;
    let c = LlavaConfig::from_json_str(json, None).unwrap();
    assert_eq!(c.text_config.hidden_size, 4096);
    assert_eq!(c.text_config.num_hidden_layers, 32);
    assert_eq!(c.text_config.kv_heads(), 32);
    assert_eq!(c.text_config.rope_theta, 10000.0);
    assert_eq!(c.image_seq_length, 576);
    assert!(c.multimodal_projector_bias);
    assert_eq!(c.resolve_feature_layer(-2).unwrap(), 23);
    assert_eq!(c.image_feature_count(), 576);
    assert!(!c.tied_embeddings());
    assert_eq!(c.eos_token_ids(), vec![2]);
    // Without image_seq_length the tower decides: 24² patches, +1 with "full".
    let full = json.replace("\"default\"", "\"full\"");
    assert_eq!(
        LlavaConfig::from_json_str(&full, None)
            .unwrap()
            .image_seq_length,
        577
    );
}

#[test]
fn sharded_checkpoints_load_through_the_index() {
    let (dir, cfg) = tiny_dir();
    let reference = load(dir.path()).unwrap();
    let p = dir.path().join("model.safetensors");
    let all = candle_core::safetensors::load(&p, &Device::Cpu).unwrap();
    std::fs::remove_file(&p).unwrap();
    let (mut a, mut b) = (HashMap::new(), HashMap::new());
    let mut map = serde_json::Map::new();
    for (k, v) in all {
        let shard = if k.starts_with("language_model") {
            "model-00002-of-00002.safetensors"
        } else {
            "model-00001-of-00002.safetensors"
        };
        map.insert(k.clone(), shard.into());
        if shard.contains("00001") {
            a.insert(k, v);
        } else {
            b.insert(k, v);
        }
    }
    candle_core::safetensors::save(&a, dir.path().join("model-00001-of-00002.safetensors"))
        .unwrap();
    candle_core::safetensors::save(&b, dir.path().join("model-00002-of-00002.safetensors"))
        .unwrap();
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let sharded = load(dir.path()).unwrap();
    let ids = Tensor::new(&[[1u32, 5, 7]], &Device::Cpu).unwrap();
    let l1 = reference
        .forward(&ids, None, &ResidualCapture::none(), cox_model::Logits::All)
        .unwrap();
    let l2 = sharded
        .forward(&ids, None, &ResidualCapture::none(), cox_model::Logits::All)
        .unwrap();
    let d = (l1.logits.unwrap() - l2.logits.unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
    assert_eq!(sharded.config(), &cfg);
    // A shard listed in the index but absent is a MissingFile error naming it.
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    match load(dir.path()).unwrap_err() {
        Error::MissingFile { path, .. } => {
            assert!(path.ends_with("model-00002-of-00002.safetensors"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_or_missing_weights_are_errors() {
    let (dir, _) = tiny_dir();
    let p = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Safetensors { .. }), "{err:?}");
    assert!(err.to_string().contains("truncated"), "{err}");
    std::fs::write(&p, b"").unwrap();
    assert!(matches!(
        load(dir.path()).unwrap_err(),
        Error::Safetensors { .. }
    ));
    std::fs::write(&p, [200u8, 0, 0, 0, 0, 0, 0, 0, b'{']).unwrap();
    assert!(matches!(
        load(dir.path()).unwrap_err(),
        Error::Safetensors { .. }
    ));
    std::fs::remove_file(&p).unwrap();
    assert!(matches!(
        load(dir.path()).unwrap_err(),
        Error::MissingFile { .. }
    ));
}

#[test]
fn unknown_tensor_layout_is_an_error() {
    let (dir, _) = tiny_dir();
    rewrite_weights(dir.path(), |w| {
        let old: Vec<String> = w.keys().cloned().collect();
        for k in old {
            let t = w.remove(&k).unwrap();
            w.insert(k.replace("language_model.model.", "llm."), t);
        }
    });
    assert!(matches!(
        load(dir.path()).unwrap_err(),
        Error::UnknownLayout { .. }
    ));
}

#[test]
fn absent_lm_head_falls_back_to_tied_embeddings() {
    let (dir, _) = tiny_dir();
    rewrite_weights(dir.path(), |w| {
        w.remove("language_model.lm_head.weight");
    });
    let m = load(dir.path()).unwrap();
    let d = (m.lm_head() - m.language_model().embed_tokens())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
    assert_eq!(m.lm_head().dims(), &[m.config().text_config.vocab_size, 64]);
}

#[test]
fn hub_ids_resolve_in_the_local_cache() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--llava-hf--llava-1.5-7b-hf");
    let err = resolve_model_dir("llava-hf/llava-1.5-7b-hf", Some(cache.path())).unwrap_err();
    assert!(matches!(err, Error::ModelNotFound { .. }));
    assert!(
        err.to_string()
            .contains("huggingface-cli download llava-hf/llava-1.5-7b-hf"),
        "{err}"
    );
    let snap = repo.join("snapshots").join("abc123");
    std::fs::create_dir_all(&snap).unwrap();
    // The only snapshot is used when refs/main is absent.
    assert_eq!(
        resolve_model_dir("llava-hf/llava-1.5-7b-hf", Some(cache.path())).unwrap(),
        snap
    );
    // refs/main picks among several.
    let other = repo.join("snapshots").join("def456");
    std::fs::create_dir_all(&other).unwrap();
    assert!(resolve_model_dir("llava-hf/llava-1.5-7b-hf", Some(cache.path())).is_err());
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), "def456\n").unwrap();
    assert_eq!(
        resolve_model_dir("llava-hf/llava-1.5-7b-hf", Some(cache.path())).unwrap(),
        other
    );
    // A directory path is returned as is; nonsense is a clear error.
    assert_eq!(
        resolve_model_dir(cache.path().to_str().unwrap(), None).unwrap(),
        cache.path()
    );
    assert!(resolve_model_dir("no/such/thing/here", Some(cache.path())).is_err());
    // A full checkpoint in the cache loads by id.
    write_tiny_llava(&other, &TinyConfig::tiny(), 3).unwrap();
    let opts = LoadOptions {
        hub_cache: Some(cache.path().to_path_buf()),
        ..LoadOptions::default()
    };
    let llava = Llava::load("llava-hf/llava-1.5-7b-hf", &opts).unwrap();
    assert_eq!(llava.dir, other);
}

/// The RoPE of a text config in both forms transformers writes.
fn rope_of(text_config: serde_json::Value) -> cox_model::Result<cox_model::config::Rope> {
    let mut text_config = text_config;
    text_config["vocab_size"] = 32064.into();
    let json = serde_json::json!({"model_type": "llava", "text_config": text_config,
        "vision_config": {"image_size": 336, "patch_size": 14}});
    LlavaConfig::from_json_str(&json.to_string(), None).map(|c| c.text_config.rope())
}

#[test]
fn rope_is_read_from_both_config_forms() {
    use cox_model::config::RopeScaling;
    // transformers 4.x: top-level rope_theta / rope_scaling.
    let r = rope_of(serde_json::json!({"rope_theta": 500000.0})).unwrap();
    assert_eq!((r.theta, r.scaling), (500000.0, None));
    let r =
        rope_of(serde_json::json!({"rope_scaling": {"type": "dynamic", "factor": 2.0}})).unwrap();
    assert_eq!(r.theta, 10000.0);
    assert_eq!(r.scaling, Some(RopeScaling::Dynamic { factor: 2.0 }));
    let r = rope_of(serde_json::json!({"rope_scaling": {"rope_type": "default"}})).unwrap();
    assert_eq!(r.scaling, None);
    // transformers 5.x: rope_parameters, which wins over the 4.x keys.
    let r = rope_of(
        serde_json::json!({"rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}}),
    )
    .unwrap();
    assert_eq!((r.theta, r.scaling), (500000.0, None));
    let r = rope_of(
        serde_json::json!({"rope_theta": 1.0, "rope_parameters": {"rope_theta": 1e6,
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}}),
    )
    .unwrap();
    assert_eq!(r.theta, 1e6);
    assert!(matches!(r.scaling, Some(RopeScaling::Llama3 { factor, .. }) if factor == 8.0));
    // rope_parameters without a base falls back to the top-level one.
    let r = rope_of(serde_json::json!({"rope_theta": 250000.0,
        "rope_parameters": {"rope_type": "linear", "factor": 2.0}}))
    .unwrap();
    assert_eq!(r.theta, 250000.0);
    assert_eq!(r.scaling, Some(RopeScaling::Linear { factor: 2.0 }));
}

#[test]
fn unknown_rope_types_are_refused_by_name() {
    for (form, v) in [
        (
            "rope_parameters",
            serde_json::json!({"rope_parameters": {"rope_theta": 1e4, "rope_type": "yarn", "factor": 4.0}}),
        ),
        (
            "rope_parameters",
            serde_json::json!({"rope_parameters": {"rope_theta": 1e4, "rope_type": "longrope"}}),
        ),
        (
            "rope_scaling",
            serde_json::json!({"rope_scaling": {"type": "su", "factor": 4.0}}),
        ),
    ] {
        let e = rope_of(v).unwrap_err().to_string();
        assert!(e.contains(form), "{e}");
        assert!(
            e.contains("not supported (supported: default, linear, dynamic, llama3)"),
            "{e}"
        );
    }
    // A scaling without its parameters names the missing one.
    let e = rope_of(serde_json::json!({"rope_parameters": {"rope_type": "llama3", "factor": 8.0}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("low_freq_factor"), "{e}");
    // Per-attention-type parameters (Gemma-3 style) are not a Llama decoder's.
    let e =
        rope_of(serde_json::json!({"rope_parameters": {"full_attention": {"rope_theta": 1e6}}}))
            .unwrap_err()
            .to_string();
    assert!(e.contains("per-layer-type"), "{e}");
    // Nonsense values are refused too.
    let e = rope_of(serde_json::json!({"rope_parameters": {"rope_theta": -1.0}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("rope_theta must be positive"), "{e}");
}

#[test]
fn transposed_loading_equals_the_transpose_in_every_dtype() {
    use candle_core::{DType, Device, Tensor};
    // A tall matrix (more rows than one read block holds) and a tiny one, stored in each dtype.
    let dir = tempfile::tempdir().unwrap();
    for (stored, name) in [
        (DType::F32, "f32"),
        (DType::F16, "f16"),
        (DType::BF16, "bf16"),
    ] {
        let a = Tensor::randn(0f32, 1f32, (3000, 97), &Device::Cpu)
            .unwrap()
            .to_dtype(stored)
            .unwrap();
        let b = Tensor::randn(0f32, 1f32, (2, 3), &Device::Cpu)
            .unwrap()
            .to_dtype(stored)
            .unwrap();
        let path = dir.path().join(format!("{name}.safetensors"));
        candle_core::safetensors::save(
            &std::collections::HashMap::from([("a".to_string(), a), ("b".to_string(), b)]),
            &path,
        )
        .unwrap();
        let ckpt = cox_model::weights::Checkpoint::from_files_any(vec![path]).unwrap();
        for t in ["a", "b"] {
            for dtype in [DType::F32, stored] {
                let plain = ckpt.load(t, dtype, &Device::Cpu).unwrap();
                let trans =
                    cox_model::weights::with_transposed_load(|| ckpt.load(t, dtype, &Device::Cpu))
                        .unwrap();
                assert_eq!(trans.dims(), plain.dims());
                // The data is laid out transposed: the transposed view is contiguous.
                assert!(trans.t().unwrap().is_contiguous());
                let d = (plain.to_dtype(DType::F32).unwrap() - trans.to_dtype(DType::F32).unwrap())
                    .unwrap()
                    .abs()
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .max(0)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert_eq!(d, 0.0, "{name} {t} as {dtype:?}");
            }
        }
    }
}
