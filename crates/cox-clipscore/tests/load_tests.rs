//! Clear errors for bad CLIP directories: each names the file and, where relevant, the tensor.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use cox_clipscore::testing::{config_json, random_tensors, tiny_config, write_tiny_clip};
use cox_clipscore::{ClipError, ClipModel, ClipParams, ClipScorer};

fn load_err(dir: &std::path::Path) -> String {
    ClipModel::load(dir, DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string()
}

#[test]
fn missing_directory_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(&dir.path().join("absent"));
    assert!(e.contains("absent") && e.contains("config.json"), "{e}");
    let e = load_err(dir.path());
    assert!(e.contains("config.json"), "{e}");
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string(&config_json(&tiny_config()).unwrap()).unwrap(),
    )
    .unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn foreign_checkpoint_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_clip(dir.path(), &tiny_config(), 0).unwrap();
    let t: HashMap<String, Tensor> = [(
        "model.layers.0.self_attn.q_proj.weight".to_string(),
        Tensor::zeros((4, 4), DType::F32, &Device::Cpu).unwrap(),
    )]
    .into();
    candle_core::safetensors::save(&t, dir.path().join("model.safetensors")).unwrap();
    let err = ClipModel::load(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(err, ClipError::ForeignCheckpoint { .. }), "{err}");
    let e = err.to_string();
    assert!(
        e.contains("model.safetensors") && e.contains("not a Hugging Face CLIPModel"),
        "{e}"
    );
    // Not safetensors at all.
    std::fs::write(dir.path().join("model.safetensors"), b"garbage").unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn missing_and_misshapen_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config();
    write_tiny_clip(dir.path(), &cfg, 0).unwrap();
    let mut t = random_tensors(&cfg, 0).unwrap();
    t.remove("vision_model.embeddings.class_embedding");
    candle_core::safetensors::save(&t, dir.path().join("model.safetensors")).unwrap();
    let err = ClipModel::load(dir.path(), DType::F32, &Device::Cpu).unwrap_err();
    let e = err.to_string();
    assert!(matches!(err, ClipError::MissingTensor { .. }), "{e}");
    assert!(
        e.contains("vision_model.embeddings.class_embedding")
            && e.contains("[48]")
            && e.contains("model.safetensors"),
        "{e}"
    );

    let mut t = random_tensors(&cfg, 0).unwrap();
    t.insert(
        "text_model.encoder.layers.1.mlp.fc1.weight".into(),
        Tensor::zeros((64, 31), DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&t, dir.path().join("model.safetensors")).unwrap();
    let e = load_err(dir.path());
    assert!(
        e.contains("text_model.encoder.layers.1.mlp.fc1.weight")
            && e.contains("[64, 31]")
            && e.contains("[64, 32]"),
        "{e}"
    );

    // A config with more layers than the file holds names the first absent layer tensor.
    let mut big = cfg.clone();
    big.text_config.num_hidden_layers = 3;
    write_tiny_clip(dir.path(), &cfg, 0).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string(&config_json(&big).unwrap()).unwrap(),
    )
    .unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("text_model.encoder.layers.2."), "{e}");
}

#[test]
fn bad_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_clip(dir.path(), &tiny_config(), 0).unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, r#"{"model_type": "llava"}"#).unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("config.json") && e.contains("llava"), "{e}");
    std::fs::write(
        &cfg,
        r#"{"model_type": "clip", "text_config": {"hidden_act": "mish"}}"#,
    )
    .unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("text_config") && e.contains("mish"), "{e}");
    std::fs::write(
        &cfg,
        r#"{"model_type": "clip", "vision_config": {"image_size": 30, "patch_size": 8}}"#,
    )
    .unwrap();
    let e = load_err(dir.path());
    assert!(e.contains("patch_size"), "{e}");
}

#[test]
fn scorer_needs_a_tokenizer_and_sane_params() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_clip(dir.path(), &tiny_config(), 0).unwrap();
    let err = ClipScorer::load(dir.path(), &ClipParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("bpe_simple_vocab_16e6.txt.gz"),
        "{err}"
    );
    let p = ClipParams {
        w: -1.0,
        ..Default::default()
    };
    assert!(ClipScorer::load(dir.path(), &p).is_err());
    let p = ClipParams {
        bpe_path: Some(dir.path().join("missing.gz")),
        ..Default::default()
    };
    let err = ClipScorer::load(dir.path(), &p).unwrap_err().to_string();
    assert!(err.contains("missing.gz"), "{err}");
}

#[test]
fn docs_python_reader_reads_the_written_checkpoint() {
    // docs/formats.md's snippet, when COXLMM_PYTHON names a Python with safetensors + numpy.
    let Ok(py) = std::env::var("COXLMM_PYTHON") else {
        eprintln!("SKIPPED: set COXLMM_PYTHON to run the docs/formats.md CLIP reader");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_tiny_clip(dir.path(), &tiny_config(), 0).unwrap();
    let script = r#"
import json, sys
from safetensors.numpy import load_file
d = sys.argv[1]
cfg = json.load(open(d + "/config.json"))
w = load_file(d + "/model.safetensors")
assert w["visual_projection.weight"].shape == (cfg["projection_dim"], cfg["vision_config"]["hidden_size"])
assert w["text_projection.weight"].shape == (cfg["projection_dim"], cfg["text_config"]["hidden_size"])
print(len(w))
"#;
    let out = std::process::Command::new(py)
        .args(["-c", script, dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 7 embeddings/projections + 3 norms × 2 + 16 per layer × 4 layers + logit_scale.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "78");
}
