//! Agreement with transformers itself on tiny random LLaVA checkpoints that transformers wrote
//! (`fixtures/hf_llava/make_fixture.py`: `t5/` by 5.25.0, `t4/` by 4.47.1).
//!
//! Each checkpoint is loaded from the folder exactly as that version's `save_pretrained` left it
//! (tensor layout, `config.json` form, processor files), and for three images of different sizes
//! and aspect ratios the test requires: `pixel_values` within 1e-5 of the processor's, the prompt
//! ids equal to the processor's `input_ids`, identical greedy ids, and every decoder block's
//! output and the final norm within 1e-4 relative (max |ours − theirs| / max |theirs|) of the
//! states forward hooks on `layers.N` and `norm` recorded during `generate`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use cox_model::resample::ResizeBackend;
use cox_model::{LayerSel, Llava, LoadOptions, ResidualCapture, WeightLayout};

const STATE_TOL: f32 = 1e-4;
const PIXEL_TOL: f32 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_llava")
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    max_abs(&(a - b).unwrap())
}

struct Case {
    image: String,
    prompt: String,
    generated: Vec<u32>,
}

fn cases(version: &str, checkpoint: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join(version).join("reference.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["checkpoints"][checkpoint]
        .as_array()
        .unwrap_or_else(|| panic!("{version}/{checkpoint} is not in reference.json"))
        .iter()
        .map(|c| Case {
            image: c["image"].as_str().unwrap().to_string(),
            prompt: c["prompt"].as_str().unwrap().to_string(),
            generated: c["generated_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect(),
        })
        .collect()
}

/// Loads a fixture checkpoint and checks it against transformers' outputs; returns the largest
/// relative state difference seen.
fn check(version: &str, checkpoint: &str, layout: WeightLayout) -> f32 {
    let dir = fixtures().join(version).join(checkpoint);
    // transformers 4.x's CLIPImageProcessor resizes with Pillow; 5.x's with torchvision, which
    // is what a plain "CLIPImageProcessor" means by default here.
    let opts = LoadOptions {
        image_backend: (version == "t4").then_some(ResizeBackend::Pil),
        ..LoadOptions::default()
    };
    let llava = Llava::load(dir.to_str().unwrap(), &opts).unwrap();
    assert_eq!(
        cox_model::Checkpoint::open(&dir).unwrap().layout(),
        Some(layout),
        "{version}/{checkpoint}: detected layout"
    );
    let refs: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    let n_layers = llava.model.config().text_config.num_hidden_layers;
    let mut sel: Vec<LayerSel> = (0..n_layers).map(LayerSel::Block).collect();
    sel.push(LayerSel::FinalNorm);
    let capture = ResidualCapture::new(sel.clone());
    let mut worst = 0f32;
    for case in cases(version, checkpoint) {
        let stem = case.image.trim_end_matches(".png");
        let label = format!("{version}/{checkpoint}/{stem}");
        let img = llava
            .processor
            .load_image(fixtures().join(&case.image))
            .unwrap();
        let pixels = llava.processor.preprocess(&img, &Device::Cpu).unwrap();
        let want_px = refs[&format!("{stem}.pixel_values")].unsqueeze(0).unwrap();
        let d = max_abs_diff(&pixels, &want_px);
        assert!(d <= PIXEL_TOL, "{label}: pixel_values differ by {d}");
        let input = llava.prepare(&case.prompt, Some(&pixels)).unwrap();
        let want_ids: Vec<u32> = refs[&format!("{stem}.input_ids")]
            .to_dtype(DType::U32)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(input.ids, want_ids, "{label}: prompt ids");
        let gen = llava
            .generate(&input, case.generated.len(), &capture)
            .unwrap();
        assert_eq!(gen.generated_ids, case.generated, "{label}: greedy ids");
        for (s, got) in sel.iter().zip(&gen.residuals) {
            let key = match s {
                LayerSel::Block(i) => format!("{stem}.layer_{i}"),
                LayerSel::FinalNorm => format!("{stem}.layer_norm"),
            };
            let want = &refs[&key];
            let rel = max_abs_diff(&got.to_dtype(DType::F32).unwrap(), want) / max_abs(want);
            assert!(
                rel <= STATE_TOL,
                "{label}: {key} differs by {rel:e} relative"
            );
            worst = worst.max(rel);
        }
    }
    eprintln!("{version}/{checkpoint}: largest relative state difference {worst:e}");
    worst
}

#[test]
fn transformers_5_default_rope_parameters_theta_500000() {
    // config.json has rope_parameters {rope_theta: 500000, rope_type: default} and no
    // top-level rope_theta: reading only the 4.x key would silently give θ = 10000.
    check("t5", "rope_default", WeightLayout::Transformers5);
}

#[test]
fn transformers_5_linear_rope() {
    check("t5", "rope_linear", WeightLayout::Transformers5);
}

#[test]
fn transformers_5_dynamic_rope_past_max_positions() {
    // max_position_embeddings is 32 and the sequences reach 33-34 positions, so the last
    // generation steps run with the dynamic NTK base.
    check("t5", "rope_dynamic", WeightLayout::Transformers5);
}

#[test]
fn transformers_5_llama3_rope() {
    check("t5", "rope_llama3", WeightLayout::Transformers5);
}

#[test]
fn transformers_5_bf16_checkpoint_loaded_as_f32() {
    check("t5", "bf16", WeightLayout::Transformers5);
}

#[test]
fn transformers_4_47_hub_layout_and_top_level_rope_theta() {
    check("t4", "rope_default", WeightLayout::Hub);
}

#[test]
fn transformers_4_47_linear_rope_scaling() {
    check("t4", "rope_linear", WeightLayout::Hub);
}

#[test]
fn a_wrong_theta_is_visible_in_the_states() {
    // The test above would fail if θ were misread: the same checkpoint with θ = 10000 differs
    // from transformers' states by far more than the tolerance.
    let src = fixtures().join("t5/rope_default");
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let cfg = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("500000.0", "10000.0");
    std::fs::write(&cfg, text).unwrap();
    let llava = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    let refs: HashMap<String, Tensor> =
        candle_core::safetensors::load(src.join("reference.safetensors"), &Device::Cpu).unwrap();
    let case = &cases("t5", "rope_default")[0];
    let stem = case.image.trim_end_matches(".png");
    let img = llava
        .processor
        .load_image(fixtures().join(&case.image))
        .unwrap();
    let pixels = llava.processor.preprocess(&img, &Device::Cpu).unwrap();
    let input = llava.prepare(&case.prompt, Some(&pixels)).unwrap();
    let out = llava
        .forward(
            &input,
            &ResidualCapture::new([LayerSel::Block(2)]),
            cox_model::Logits::None,
        )
        .unwrap();
    let want = refs[&format!("{stem}.layer_2")]
        .narrow(0, 0, input.ids.len())
        .unwrap();
    let got = out.captured[0].squeeze(0).unwrap();
    let rel = max_abs_diff(&got, &want) / max_abs(&want);
    assert!(rel > 1e-3, "θ = 10000 should be visibly wrong, got {rel:e}");
}
