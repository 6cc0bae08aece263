//! The architecture-independent interface: `Lmm` gives exactly what each architecture's own type
//! gives, the shared greedy loop applies the repetition penalty as transformers does (prompt ids
//! included) for LLaVA too, and `Checkpoint::layout` no longer claims a LLaVA layout for other
//! architectures.

use candle_core::{DType, IndexOp, Tensor};
use cox_model::qwen2_vl::testing::{write_tiny_qwen, TinyQwenConfig};
use cox_model::qwen2_vl::{Qwen2Vl, QwenArch, QwenLayout};
use cox_model::testing::{write_tiny_llava, TinyConfig};
use cox_model::{
    Checkpoint, Error, LayerSel, Llava, Lmm, LoadOptions, Logits, ResidualCapture, WeightLayout,
};

fn capture() -> ResidualCapture {
    ResidualCapture::new([LayerSel::Block(0), LayerSel::Block(1), LayerSel::FinalNorm])
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn image(w: u32, h: u32) -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 13 % 256) as u8,
            (y * 7 % 256) as u8,
            ((x + y) % 256) as u8,
        ])
    }))
}

#[test]
fn lmm_on_llava_is_bit_identical_to_llava() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llava(dir.path(), &TinyConfig::tiny(), 5).unwrap();
    let id = dir.path().to_str().unwrap();
    let mut llava = Llava::load(id, &LoadOptions::default()).unwrap();
    llava.tokenizer.eos_token_ids.clear();
    let lmm = Lmm::load(id, &LoadOptions::default()).unwrap();
    assert_eq!(lmm.model_type(), "llava");
    assert_eq!(lmm.num_layers(), 3);
    assert_eq!(lmm.hidden_size(), 64);
    assert_eq!(max_diff(lmm.lm_head(), llava.model.lm_head()), 0.0);
    let img = image(40, 30);
    let px = llava
        .processor
        .preprocess(&img, llava.model.device())
        .unwrap();
    let input = llava.prepare("describe this image", Some(&px)).unwrap();
    let want = llava.generate(&input, 6, &capture()).unwrap();

    // Batched features through the interface, as extraction uses them.
    let pixels = [
        lmm.preprocess(&image(9, 9)).unwrap(),
        lmm.preprocess(&img).unwrap(),
    ];
    assert_eq!(pixels[1].grid_thw, None);
    let feats = lmm.encode_images(&pixels).unwrap();
    let got_input = lmm
        .prepare_with_features("describe this image", Some(&feats[1]))
        .unwrap();
    assert_eq!(got_input.ids, input.ids);
    assert!(got_input.mrope.is_none());
    let mut params = lmm.default_params(6, &capture());
    assert_eq!(params.repetition_penalty, 1.0);
    params.eos_token_ids.clear();
    // The same image alone through `prepare` is bit-identical to Llava's.
    let alone = lmm
        .prepare("describe this image", Some(&pixels[1]))
        .unwrap();
    assert_eq!(max_diff(&alone.embeds, &input.embeds), 0.0);
    let got = lmm.generate(&alone, &params).unwrap();
    assert_eq!(got.generated_ids, want.generated_ids);
    assert_eq!(got.text, want.text);
    for (a, b) in got.residuals.iter().zip(&want.residuals) {
        assert_eq!(max_diff(a, b), 0.0);
    }
    // The batched tower agrees with one image at a time up to float rounding.
    assert!(max_diff(&got_input.embeds, &input.embeds) < 1e-5);
    let f1 = lmm.forward(&alone, &capture(), Logits::All).unwrap();
    let f2 = llava.forward(&input, &capture(), Logits::All).unwrap();
    assert_eq!(
        max_diff(f1.logits.as_ref().unwrap(), f2.logits.as_ref().unwrap()),
        0.0
    );
    // The final norm the interface exposes is the one `FinalNorm` records the output of.
    let before = lmm
        .forward(
            &alone,
            &ResidualCapture::new([LayerSel::Block(2)]),
            Logits::None,
        )
        .unwrap();
    let normed = candle_core::Module::forward(lmm.final_norm(), &before.captured[0]).unwrap();
    assert!(max_diff(&normed, &f1.captured[2]) < 1e-6);
}

#[test]
fn lmm_on_qwen_is_bit_identical_to_qwen2vl() {
    for arch in [QwenArch::Qwen2Vl, QwenArch::Qwen25Vl] {
        let dir = tempfile::tempdir().unwrap();
        let t = TinyQwenConfig::tiny(arch);
        write_tiny_qwen(dir.path(), &t, QwenLayout::Transformers452, DType::F32, 3).unwrap();
        let id = dir.path().to_str().unwrap();
        let qwen = Qwen2Vl::load(id, &LoadOptions::default()).unwrap();
        let lmm = Lmm::load(id, &LoadOptions::default()).unwrap();
        assert_eq!(lmm.num_layers(), t.num_layers);
        assert_eq!(lmm.vocab_size(), t.vocab_size);
        let img = image(61, 45);
        let px = qwen
            .processor
            .preprocess(&img, &candle_core::Device::Cpu)
            .unwrap();
        let input = qwen.prepare("Describe this image.", Some(&px)).unwrap();
        let want = qwen.generate(&input, 5, &capture()).unwrap();
        let pixels = lmm.preprocess(&img).unwrap();
        assert_eq!(pixels.grid_thw, Some(px.grid_thw));
        assert_eq!(pixels.num_tokens, px.num_tokens);
        let feats = lmm.encode_images(std::slice::from_ref(&pixels)).unwrap();
        let got_input = lmm
            .prepare_with_features("Describe this image.", Some(&feats[0]))
            .unwrap();
        assert_eq!(got_input.ids, input.ids);
        assert_eq!(got_input.mrope, input.mrope);
        let params = lmm.default_params(5, &capture());
        assert_eq!(params.repetition_penalty, 1.05);
        assert_eq!(params.eos_token_ids, vec![346, 347]);
        let got = lmm.generate(&got_input, &params).unwrap();
        assert_eq!(got.generated_ids, want.generated_ids);
        for (a, b) in got.residuals.iter().zip(&want.residuals) {
            assert_eq!(max_diff(a, b), 0.0);
        }
        // A prepared input goes back to the architecture that made it.
        let llava_dir = tempfile::tempdir().unwrap();
        write_tiny_llava(llava_dir.path(), &TinyConfig::tiny(), 0).unwrap();
        let llava = Lmm::load(llava_dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
        let err = llava
            .forward(&got_input, &capture(), Logits::Last)
            .unwrap_err();
        assert!(err.to_string().contains("rotary"), "{err}");
    }
}

/// transformers' `RepetitionPenaltyLogitsProcessor` over the prompt ids (image positions
/// expanded) and the generated ids, checked step by step against full forward passes.
#[test]
fn llava_generation_config_penalty_is_applied_over_prompt_and_generated_ids() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llava(dir.path(), &TinyConfig::tiny(), 2).unwrap();
    std::fs::write(
        dir.path().join("generation_config.json"),
        r#"{"eos_token_id": 2, "repetition_penalty": 3.0}"#,
    )
    .unwrap();
    let lmm = Lmm::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    let mut params = lmm.default_params(6, &ResidualCapture::none());
    assert_eq!(params.repetition_penalty, 3.0);
    params.eos_token_ids.clear();
    let px = lmm.preprocess(&image(30, 30)).unwrap();
    let input = lmm.prepare("describe this image", Some(&px)).unwrap();
    let penalised = lmm.generate(&input, &params).unwrap();
    params.repetition_penalty = 1.0;
    let plain = lmm.generate(&input, &params).unwrap();
    assert_ne!(
        penalised.generated_ids, plain.generated_ids,
        "a penalty of 3 changes this model's greedy caption"
    );
    // Reference: each step's logits from a full forward pass over prompt + generated so far.
    let Lmm::Llava(llava) = &lmm else {
        unreachable!()
    };
    let mut ids = input.ids.clone();
    for &next in &penalised.generated_ids {
        let text_ids = Tensor::new(ids.as_slice(), lmm.device())
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let feats = llava.model.encode_images(&px.values).unwrap();
        let out = llava
            .model
            .forward(
                &text_ids,
                Some(&feats),
                &ResidualCapture::none(),
                Logits::Last,
            )
            .unwrap();
        let mut logits: Vec<f32> = out.logits.unwrap().i((0, 0)).unwrap().to_vec1().unwrap();
        for &i in &ids {
            let l = &mut logits[i as usize];
            *l = if *l < 0.0 { *l * 3.0 } else { *l / 3.0 };
        }
        let best = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
            .unwrap() as u32;
        assert_eq!(next, best);
        ids.push(next);
    }
}

#[test]
fn layouts_are_llava_only_and_unknown_types_name_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_qwen(
        dir.path(),
        &TinyQwenConfig::tiny(QwenArch::Qwen2Vl),
        QwenLayout::Hub,
        DType::F32,
        0,
    )
    .unwrap();
    let ckpt = Checkpoint::open_any(dir.path()).unwrap();
    assert_eq!(ckpt.layout(), None);
    assert!(ckpt.llava_layout().is_err());
    assert!(Checkpoint::open(dir.path()).is_err());
    let llava = tempfile::tempdir().unwrap();
    write_tiny_llava(llava.path(), &TinyConfig::tiny(), 0).unwrap();
    assert_eq!(
        Checkpoint::open_any(llava.path()).unwrap().layout(),
        Some(WeightLayout::Hub)
    );

    let cfg = dir.path().join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"qwen2_vl\"", "\"idefics3\"");
    std::fs::write(&cfg, text).unwrap();
    match Lmm::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap_err() {
        e @ Error::UnsupportedModelType { .. } => {
            let msg = e.to_string();
            assert!(
                msg.contains("idefics3") && msg.contains("llava, qwen2_vl, qwen2_5_vl"),
                "{msg}"
            );
        }
        other => panic!("{other}"),
    }
}
