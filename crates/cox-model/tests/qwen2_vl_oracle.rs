//! Qwen2-VL / Qwen2.5-VL against transformers 5.25 on the tiny random checkpoints of
//! `tests/fixtures/qwen2_vl` (written by its `make_fixture.py`): processor outputs, prompt ids,
//! image features, greedy ids with and without the repetition penalty, and every decoder
//! block's output and the final norm, in both tensor layouts and in half precision.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use cox_model::qwen2_vl::{Qwen2Vl, QwenImageProcessor};
use cox_model::resample::ResizeBackend;
use cox_model::{Error, GenerateTimings, LayerSel, LoadOptions, ResidualCapture};
use serde_json::Value;

const ARCHS: [&str; 2] = ["qwen2_vl", "qwen2_5_vl"];
const IMAGES: [&str; 3] = ["wide", "thin", "odd"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_vl")
}

struct Expected {
    meta: Value,
    tensors: HashMap<String, Tensor>,
}

fn expected(arch: &str) -> Expected {
    let dir = fixture();
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("expected_{arch}.json"))).unwrap(),
    )
    .unwrap();
    let tensors = candle_core::safetensors::load(
        dir.join(format!("expected_{arch}.safetensors")),
        &Device::Cpu,
    )
    .unwrap();
    let mut tensors = tensors;
    // The pixel values are shared by both checkpoints (the generator asserts they agree).
    tensors.extend(
        candle_core::safetensors::load(dir.join("expected_pixels.safetensors"), &Device::Cpu)
            .unwrap(),
    );
    Expected { meta, tensors }
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// `max |a - b| / max |b|`.
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    let d = (&a - &b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let s = b
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    d / s.max(1e-12)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn load(dir: &Path, dtype: DType) -> Qwen2Vl {
    let opts = LoadOptions {
        dtype,
        ..LoadOptions::default()
    };
    Qwen2Vl::load(dir.to_str().unwrap(), &opts).unwrap()
}

fn capture() -> ResidualCapture {
    ResidualCapture::new([LayerSel::Block(0), LayerSel::Block(1), LayerSel::FinalNorm])
}

/// Checks one checkpoint directory against the expected outputs of `arch`; returns the largest
/// relative hidden-state difference seen.
fn check_model(arch: &str, dir: &Path, dtype: DType, tol: f32, exact_ids: bool) -> f32 {
    let exp = expected(arch);
    let m = load(dir, dtype);
    let mut worst = 0f32;
    for name in IMAGES {
        let e = &exp.meta["images"][name];
        let pixels = m
            .load_pixels(fixture().join(format!("images/{name}.png")))
            .unwrap();
        let feats = m.model.encode_image(&pixels).unwrap();
        let fd = rel_diff(&feats, &exp.tensors[&format!("{name}.image_features")]);
        assert!(fd < tol, "{arch} {name}: image features differ by {fd}");
        let input = m
            .prepare(exp.meta["prompt"].as_str().unwrap(), Some(&pixels))
            .unwrap();
        assert_eq!(
            input.ids,
            ids(&e["prompt_ids"]),
            "{arch} {name}: prompt ids"
        );
        let max_new = exp.meta["max_new_tokens"].as_u64().unwrap() as usize;
        let g = m.generate(&input, max_new, &capture()).unwrap();
        let want = ids(&e["generated_ids"]);
        if exact_ids {
            assert_eq!(g.generated_ids, want, "{arch} {name}: greedy ids");
        }
        if g.generated_ids == want {
            for (t, key) in g.residuals.iter().zip(["layer0", "layer1", "norm"]) {
                let d = rel_diff(t, &exp.tensors[&format!("{name}.{key}")]);
                assert!(d < tol, "{arch} {name} {key}: relative difference {d}");
                worst = worst.max(d);
            }
        }
        if exact_ids {
            let mut params = m.default_params(max_new, &ResidualCapture::none());
            params.repetition_penalty = 1.0;
            let g = m
                .generate_with(&input, &params, &mut GenerateTimings::default())
                .unwrap();
            assert_eq!(
                g.generated_ids,
                ids(&e["generated_ids_no_penalty"]),
                "{arch} {name}: greedy ids without repetition penalty"
            );
        }
    }
    worst
}

#[test]
fn processor_matches_transformers() {
    for arch in ARCHS {
        let exp = expected(arch);
        let proc = QwenImageProcessor::from_model_dir(&fixture().join(arch)).unwrap();
        for name in IMAGES {
            let p = proc
                .preprocess_path(fixture().join(format!("images/{name}.png")), &Device::Cpu)
                .unwrap();
            let grid = ids(&exp.meta["images"][name]["image_grid_thw"]);
            assert_eq!(
                [p.grid_thw.0, p.grid_thw.1, p.grid_thw.2],
                [grid[0] as usize, grid[1] as usize, grid[2] as usize],
                "{arch} {name}: image_grid_thw"
            );
            let d = max_abs_diff(
                &p.pixel_values,
                &exp.tensors[&format!("{name}.pixel_values")],
            );
            assert!(d <= 1e-6, "{arch} {name}: pixel_values differ by {d}");
            eprintln!("{arch} {name}: pixel_values max |diff| {d:e}");
        }
        // Transparency is composited onto white before resizing.
        let p = proc
            .preprocess_path(fixture().join("images/alpha.png"), &Device::Cpu)
            .unwrap();
        let grid = ids(&exp.meta["processor_only"]["alpha"]["image_grid_thw"]);
        assert_eq!(p.grid_thw.1, grid[1] as usize);
        assert_eq!(p.grid_thw.2, grid[2] as usize);
        let d = max_abs_diff(&p.pixel_values, &exp.tensors["alpha.pixel_values"]);
        assert!(d <= 1e-6, "{arch} alpha: pixel_values differ by {d}");
    }
}

#[test]
fn pillow_backend_matches_the_pil_processor_class() {
    // transformers 5's Qwen2VLImageProcessorPil (transformers 4.x's slow processor).
    let exp = expected("qwen2_vl");
    let proc = QwenImageProcessor::from_model_dir(&fixture().join("qwen2_vl"))
        .unwrap()
        .with_backend(ResizeBackend::Pil);
    for name in IMAGES.iter().chain(&["alpha"]) {
        let p = proc
            .preprocess_path(fixture().join(format!("images/{name}.png")), &Device::Cpu)
            .unwrap();
        let want = &exp.tensors[&format!("pil.{name}.pixel_values")];
        let d = max_abs_diff(&p.pixel_values, want);
        assert!(
            d <= 1e-6,
            "{name}: Pillow-backend pixel_values differ by {d}"
        );
        eprintln!("pil {name}: pixel_values max |diff| {d:e}");
    }
}

#[test]
fn qwen2_vl_hub_layout_sharded_matches_transformers() {
    let worst = check_model(
        "qwen2_vl",
        &fixture().join("qwen2_vl"),
        DType::F32,
        1e-4,
        true,
    );
    eprintln!("qwen2_vl: worst relative hidden-state difference {worst:e}");
}

#[test]
fn qwen2_5_vl_transformers_layout_matches_transformers() {
    let worst = check_model(
        "qwen2_5_vl",
        &fixture().join("qwen2_5_vl"),
        DType::F32,
        1e-4,
        true,
    );
    eprintln!("qwen2_5_vl: worst relative hidden-state difference {worst:e}");
}

/// Copies a fixture checkpoint into `out` with its tensors renamed to the other layout and
/// converted to `dtype`, in one file.
fn convert(arch: &str, out: &Path, dtype: DType) {
    let src = fixture().join(arch);
    let mut tensors = HashMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".safetensors") {
            tensors.extend(candle_core::safetensors::load(&p, &Device::Cpu).unwrap());
        } else if !name.ends_with(".index.json") {
            std::fs::copy(&p, out.join(&name)).unwrap();
        }
    }
    let renamed: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, v)| {
            let k = if let Some(rest) = k.strip_prefix("model.language_model.") {
                format!("model.{rest}")
            } else if let Some(rest) = k.strip_prefix("model.visual.") {
                format!("visual.{rest}")
            } else if let Some(rest) = k.strip_prefix("visual.") {
                format!("model.visual.{rest}")
            } else if let Some(rest) = k.strip_prefix("model.") {
                format!("model.language_model.{rest}")
            } else {
                k
            };
            (k, v.to_dtype(dtype).unwrap())
        })
        .collect();
    candle_core::safetensors::save(&renamed, out.join("model.safetensors")).unwrap();
}

#[test]
fn other_layouts_match_transformers() {
    for arch in ARCHS {
        let dir = tempfile::tempdir().unwrap();
        convert(arch, dir.path(), DType::F32);
        let worst = check_model(arch, dir.path(), DType::F32, 1e-4, true);
        eprintln!("{arch} in the other layout: worst relative difference {worst:e}");
    }
}

#[test]
fn half_precision_weights_load_and_track_f32() {
    for (arch, dtype) in [("qwen2_vl", DType::BF16), ("qwen2_5_vl", DType::F16)] {
        let dir = tempfile::tempdir().unwrap();
        convert(arch, dir.path(), dtype);
        // Weights rounded to half precision, computed in f32: close to the f32 reference.
        let worst = check_model(arch, dir.path(), DType::F32, 5e-2, false);
        eprintln!("{arch} {dtype:?} weights in f32: worst relative difference {worst:e}");
        // Computed in half precision: runs and generates.
        let m = load(dir.path(), dtype);
        let pixels = m.load_pixels(fixture().join("images/odd.png")).unwrap();
        let input = m.prepare("Describe this image.", Some(&pixels)).unwrap();
        let g = m.generate(&input, 3, &capture()).unwrap();
        assert!(!g.generated_ids.is_empty());
        assert_eq!(g.residuals[2].dtype(), dtype);
    }
}

#[test]
fn unknown_model_type_names_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    convert("qwen2_vl", dir.path(), DType::F32);
    let cfg = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"qwen2_vl\"", "\"qwen3_vl\"");
    std::fs::write(&cfg, text).unwrap();
    let err = Qwen2Vl::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("qwen3_vl") && msg.contains("qwen2_5_vl") && msg.contains("llava"),
        "{msg}"
    );
}

#[test]
fn config_tensor_disagreement_names_the_tensor_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    convert("qwen2_5_vl", dir.path(), DType::F32);
    let cfg = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"intermediate_size\": 128", "\"intermediate_size\": 96");
    std::fs::write(&cfg, text).unwrap();
    let err = Qwen2Vl::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    match &err {
        Error::TensorShape {
            name,
            expected,
            found,
            ..
        } => {
            assert!(name.contains("mlp.gate_proj.weight"), "{err}");
            assert_eq!(expected, &vec![96, 64]);
            assert_eq!(found, &vec![128, 64]);
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn extreme_image_sizes_are_resized_not_rejected() {
    let m = load(&fixture().join("qwen2_vl"), DType::F32);
    for (w, h) in [(1, 1), (3, 27), (27, 3), (1000, 700)] {
        let img = image::DynamicImage::new_rgb8(w, h);
        let p = m.processor.preprocess(&img, &Device::Cpu).unwrap();
        let (_, gh, gw) = p.grid_thw;
        let px = (gh * 14 * gw * 14) as u64;
        assert!((3136..=15680).contains(&px), "{w}×{h} -> {gh}×{gw} patches");
        let input = m.prepare("hi", Some(&p)).unwrap();
        assert_eq!(
            input.ids.len(),
            input.mrope.as_ref().unwrap().positions.len()
        );
    }
    // An aspect ratio above 200 is an error, as in transformers.
    let img = image::DynamicImage::new_rgb8(300, 1);
    assert!(m.processor.preprocess(&img, &Device::Cpu).is_err());
}

#[test]
fn text_only_prompts_and_placeholder_mismatches() {
    let m = load(&fixture().join("qwen2_vl"), DType::F32);
    let input = m.prepare("Hello there.", None).unwrap();
    // Text-only: ordinary positions on all three axes.
    for (i, p) in input.mrope.as_ref().unwrap().positions.iter().enumerate() {
        assert_eq!(*p, [i as u32; 3]);
    }
    assert_eq!(input.mrope.as_ref().unwrap().next as usize, input.ids.len());
    let g = m.generate(&input, 3, &capture()).unwrap();
    assert_eq!(
        g.residuals[0].dim(0).unwrap(),
        input.ids.len() + g.generated_ids.len() - 1
    );
    // A prompt without the placeholder but with an image (and vice versa) is an error.
    let pixels = m.load_pixels(fixture().join("images/odd.png")).unwrap();
    let feats = m.model.encode_image(&pixels).unwrap();
    assert!(m
        .prepare_raw("no placeholder", Some((&feats, pixels.grid_thw)))
        .is_err());
    assert!(m
        .prepare_raw("<|vision_start|><|image_pad|><|vision_end|>", None)
        .is_err());
    // Capturing a block that does not exist is an error, not a panic.
    let bad = ResidualCapture::new([LayerSel::Block(2)]);
    assert!(m.generate(&input, 2, &bad).is_err());
}

#[test]
fn attention_computed_head_by_head_is_unchanged() {
    for arch in ARCHS {
        let m = load(&fixture().join(arch), DType::F32);
        let pixels = m.load_pixels(fixture().join("images/wide.png")).unwrap();
        let whole = m.model.encode_image(&pixels).unwrap();
        // A budget below one head's scores forces one head at a time, then a few query rows
        // at a time.
        for budget in [60 * 60 * 4, 7 * 60 * 4, 1] {
            let split = m
                .model
                .vision()
                .clone()
                .with_score_budget(budget)
                .encode(&pixels.pixel_values, pixels.grid_thw)
                .unwrap();
            assert!(
                max_abs_diff(&whole, &split) < 1e-5,
                "{arch} budget {budget}"
            );
        }
    }
}
