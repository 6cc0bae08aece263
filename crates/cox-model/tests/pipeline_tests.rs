//! The end-to-end path: tokenizer, prompt format, image, generation with residual capture,
//! and training through the same modules.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use cox_model::testing::{write_tiny_llava, TinyConfig};
use cox_model::tokenizer::PromptFormat;
use cox_model::{
    Error, GenerateTimings, LayerSel, Llava, LlavaModel, LoadOptions, Logits, ResidualCapture,
    WeightLayout,
};
use image::{DynamicImage, ImageBuffer, Rgb};

/// The largest absolute element-wise difference of two tensors of one shape.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn tiny_llava(tiny: &TinyConfig) -> (tempfile::TempDir, Llava) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llava(dir.path(), tiny, 17).unwrap();
    let llava = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    (dir, llava)
}

fn write_image(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("scene.png");
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(48, 40, |x, y| {
        Rgb([(x * 5) as u8, (y * 6) as u8, 90])
    }))
    .save(&p)
    .unwrap();
    p
}

#[test]
fn tokenizer_specials_and_prompt_format() {
    let (_dir, llava) = tiny_llava(&TinyConfig::tiny());
    let t = &llava.tokenizer;
    assert_eq!(t.format, PromptFormat::Llava15Template);
    assert_eq!(t.bos_token_id, Some(1));
    assert_eq!(t.eos_token_ids, vec![2]);
    assert_eq!(t.image_token_id, llava.model.config().image_token_index);
    let text = t.render_prompt("describe this image", true);
    assert_eq!(text, "USER: <image>\ndescribe this image ASSISTANT:");
    assert_eq!(
        t.render_prompt("what is this ?", false),
        "USER: what is this ? ASSISTANT:"
    );
    let ids = t.encode(&text).unwrap();
    assert_eq!(ids[0], 1, "BOS first");
    let toks: Vec<String> = ids.iter().map(|&i| t.id_to_token(i).unwrap()).collect();
    assert_eq!(
        toks,
        [
            "<s>",
            "USER",
            ":",
            "<image>",
            "describe",
            "this",
            "image",
            "ASSISTANT",
            ":"
        ]
    );
    let expanded = t.expand_image_tokens(&ids, 16);
    assert_eq!(expanded.len(), ids.len() + 15);
    assert_eq!(
        expanded.iter().filter(|&&i| i == t.image_token_id).count(),
        16
    );
    assert_eq!(t.decode(&[10, 27, 2]).unwrap(), "a cat");
    // Unknown words map to <unk> rather than failing.
    assert_eq!(t.encode_plain("zebra").unwrap(), vec![0]);
}

#[test]
fn default_prompt_without_chat_template() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llava(dir.path(), &TinyConfig::tiny(), 1).unwrap();
    let p = dir.path().join("tokenizer_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("chat_template");
    std::fs::write(&p, v.to_string()).unwrap();
    let llava = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(llava.tokenizer.format, PromptFormat::Default);
    assert_eq!(
        llava.tokenizer.render_prompt("a", true),
        "USER: <image>\na ASSISTANT:"
    );
    // Missing tokenizer.json is a clear error.
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }), "{err:?}");
}

#[test]
fn caption_an_image_with_residual_capture() {
    let tiny = TinyConfig {
        weight_scale: 3.0,
        ..TinyConfig::tiny()
    };
    let (dir, llava) = tiny_llava(&tiny);
    let img = write_image(dir.path());
    let pixels = llava.load_pixels(&img).unwrap();
    assert_eq!(pixels.dims(), &[1, 3, 32, 32]);
    let input = llava.prepare("describe this image", Some(&pixels)).unwrap();
    assert_eq!(input.ids.len(), 9 + 15);
    let capture = ResidualCapture::new([LayerSel::Block(1), LayerSel::FinalNorm]);
    let gen = llava.generate(&input, 6, &capture).unwrap();
    assert!(!gen.generated_ids.is_empty() && gen.generated_ids.len() <= 6);
    let fed = input.ids.len() + gen.generated_ids.len() - 1;
    for r in &gen.residuals {
        assert_eq!(r.dims(), &[fed, 64]);
    }
    // The text is the decoding of the generated ids.
    assert_eq!(
        gen.text,
        llava.tokenizer.decode(&gen.generated_ids).unwrap().trim()
    );
    // A full forward over the prompt gives the same prompt rows.
    let full = llava.forward(&input, &capture, Logits::Last).unwrap();
    let a = full.captured[0].squeeze(0).unwrap();
    let b = gen.residuals[0].narrow(0, 0, input.ids.len()).unwrap();
    let d = max_abs_diff(&a, &b);
    assert!(d < 1e-3, "{d}");
    // The convenience path agrees.
    let cap = llava.caption(&img, "describe this image", 6).unwrap();
    assert_eq!(cap.generated_ids, gen.generated_ids);
    // Text-only prompts work; image/prompt mismatches are errors.
    let t = llava.prepare("what is this ?", None).unwrap();
    assert!(llava.generate(&t, 2, &ResidualCapture::none()).is_ok());
    assert!(llava
        .prepare_raw("USER: a ASSISTANT:", Some(&pixels))
        .is_err());
    assert!(llava
        .prepare_raw("USER: <image> <image> a", Some(&pixels))
        .is_err());
    // Capturing a block that does not exist is an error, not a panic.
    let bad = ResidualCapture::blocks([7]);
    assert!(matches!(
        llava.forward(&input, &bad, Logits::None),
        Err(Error::Input(_))
    ));
}

#[test]
fn generation_stops_at_eos() {
    let (_dir, llava) = tiny_llava(&TinyConfig::tiny());
    let input = llava.prepare("a cat", None).unwrap();
    let free = llava.generate(&input, 5, &ResidualCapture::none()).unwrap();
    // Pretend the first generated token is EOS: generation stops right there.
    let mut tok = llava.clone();
    tok.tokenizer.eos_token_ids = vec![free.generated_ids[0]];
    let stopped = tok.generate(&input, 5, &ResidualCapture::none()).unwrap();
    assert_eq!(stopped.generated_ids, vec![free.generated_ids[0]]);
    assert!(stopped.stopped_at_eos);
}

#[test]
fn timed_generation_counts_its_steps_and_generates_the_same() {
    let (_dir, mut llava) = tiny_llava(&TinyConfig::tiny());
    llava.tokenizer.eos_token_ids.clear();
    let input = llava.prepare("a cat", None).unwrap();
    let cap = ResidualCapture::new([LayerSel::Block(1)]);
    let plain = llava.generate(&input, 6, &cap).unwrap();
    let mut t = GenerateTimings::default();
    for _ in 0..2 {
        let timed = llava.generate_timed(&input, 6, &cap, &mut t).unwrap();
        assert_eq!(timed.generated_ids, plain.generated_ids);
        let d = max_abs_diff(&timed.residuals[0], &plain.residuals[0]);
        assert_eq!(d, 0.0);
    }
    // Two generations of six tokens: one prefill and five decode steps each.
    assert_eq!((t.generations, t.decode_steps), (2, 10));
    assert!(t.prefill > std::time::Duration::ZERO && t.decode > std::time::Duration::ZERO);
    let mut sum = GenerateTimings::default();
    sum.add(&t);
    sum.add(&t);
    assert_eq!((sum.generations, sum.decode_steps), (4, 20));
    assert_eq!(sum.prefill, t.prefill * 2);
}

#[test]
fn batched_image_features_match_one_image_at_a_time() {
    let (dir, llava) = tiny_llava(&TinyConfig::tiny());
    let img = write_image(dir.path());
    let dev = llava.model.device();
    let pixels = vec![
        llava.load_pixels(&img).unwrap(),
        Tensor::rand(-1f32, 1f32, (1, 3, 32, 32), dev).unwrap(),
        Tensor::zeros((1, 3, 32, 32), DType::F32, dev).unwrap(),
    ];
    let feats = llava.encode_images(&pixels).unwrap();
    assert_eq!(feats.len(), 3);
    assert!(llava.encode_images(&[]).unwrap().is_empty());
    for (px, f) in pixels.iter().zip(&feats) {
        let alone = llava.model.encode_images(px).unwrap();
        assert_eq!(f.dims(), alone.dims());
        let d = max_abs_diff(f, &alone);
        assert!(d < 1e-5, "{d:e}");
        let a = llava.prepare("describe this image", Some(px)).unwrap();
        let b = llava
            .prepare_with_features("describe this image", Some(f))
            .unwrap();
        assert_eq!(a.ids, b.ids);
    }
    // The three images differ, so a wrong order would show.
    let d01 = (&feats[0] - &feats[1])
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert!(d01.to_scalar::<f32>().unwrap() > 1e-3);
}

#[test]
fn too_long_inputs_are_errors() {
    let tiny = TinyConfig {
        max_position_embeddings: 24,
        ..TinyConfig::tiny()
    };
    let (_dir, llava) = tiny_llava(&tiny);
    let long = vec!["cat"; 40].join(" ");
    let input = llava.prepare(&long, None).unwrap();
    assert!(matches!(
        llava.forward(&input, &ResidualCapture::none(), Logits::Last),
        Err(Error::Input(_))
    ));
    let short = llava.prepare("a", None).unwrap();
    // Generation that would run past the limit stops with an error instead of panicking.
    assert!(llava
        .generate(&short, 100, &ResidualCapture::none())
        .is_err());
}

#[test]
fn training_path_is_differentiable_and_matches_inference() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_tiny_llava(dir.path(), &TinyConfig::tiny(), 23).unwrap();
    let dev = Device::Cpu;
    let mut varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let model = LlavaModel::new(vb, &cfg, WeightLayout::Hub).unwrap();
    // Give the variables the checkpoint's values: the differentiable path must then compute
    // what the fused inference path computes.
    varmap.load(dir.path().join("model.safetensors")).unwrap();
    let reference = LlavaModel::load_dir(dir.path(), DType::F32, &dev).unwrap();
    let img = cfg.image_token_index;
    let mut ids = vec![1u32, 3, 4];
    ids.extend(std::iter::repeat_n(img, cfg.image_seq_length));
    ids.extend([20, 21, 9, 2]);
    let ids_t = Tensor::new(ids.as_slice(), &dev)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let px = Tensor::rand(-1f32, 1f32, (1, 3, 32, 32), &dev).unwrap();
    let cap = ResidualCapture::blocks([0, 2]);
    let run = |m: &LlavaModel| {
        let f = m.encode_images(&px).unwrap();
        m.forward(&ids_t, Some(&f), &cap, Logits::All).unwrap()
    };
    let (a, b) = (run(&model), run(&reference));
    let d = max_abs_diff(a.logits.as_ref().unwrap(), b.logits.as_ref().unwrap());
    eprintln!("differentiable vs fused path: max |diff| = {d:e}");
    assert!(d < 1e-4);

    // Every weight the forward pass uses receives a gradient.
    let targets = Tensor::new(&ids[1..], &dev).unwrap();
    let loss_of = |m: &LlavaModel| {
        let f = m.encode_images(&px).unwrap();
        let out = m
            .forward(&ids_t, Some(&f), &ResidualCapture::none(), Logits::All)
            .unwrap();
        let logits = out.logits.unwrap().squeeze(0).unwrap();
        let logits = logits.narrow(0, 0, ids.len() - 1).unwrap();
        candle_nn::loss::cross_entropy(&logits, &targets).unwrap()
    };
    let loss = loss_of(&model);
    let grads = loss.backward().unwrap();
    let data = varmap.data().lock().unwrap();
    let mut missing = Vec::new();
    for (name, var) in data.iter() {
        // LLaVA never reads post_layernorm or the last vision layer (feature layer -2).
        if name.contains("post_layernorm") {
            continue;
        }
        match grads.get(var.as_tensor()) {
            Some(g) => {
                let n = g
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                if n == 0.0 && !name.contains("position_embedding") {
                    missing.push(format!("{name} (zero)"));
                }
            }
            None => missing.push(name.clone()),
        }
    }
    drop(data);
    assert!(missing.is_empty(), "no gradient for {missing:?}");

    // A few AdamW steps lower the loss.
    let vars: Vec<Var> = varmap.all_vars();
    let mut opt = candle_nn::AdamW::new_lr(vars, 1e-2).unwrap();
    let first = loss.to_scalar::<f32>().unwrap();
    for _ in 0..5 {
        let l = loss_of(&model);
        opt.backward_step(&l).unwrap();
    }
    let last = loss_of(&model).to_scalar::<f32>().unwrap();
    eprintln!("training loss {first} -> {last}");
    assert!(last < first);
    let _ = &mut varmap;
}

#[test]
fn init_varmap_matches_the_written_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = TinyConfig::tiny();
    let cfg = write_tiny_llava(dir.path(), &tiny, 99).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = LlavaModel::new(vb, &cfg, WeightLayout::Hub).unwrap();
    cox_model::testing::init_varmap(&varmap, &cfg, WeightLayout::Hub, tiny.weight_scale, 99)
        .unwrap();
    let disk = LlavaModel::load_dir(dir.path(), DType::F32, &Device::Cpu).unwrap();
    let ids = Tensor::new(&[[1u32, 5, 9, 13]], &Device::Cpu).unwrap();
    let a = model
        .forward(&ids, None, &ResidualCapture::none(), Logits::All)
        .unwrap();
    let b = disk
        .forward(&ids, None, &ResidualCapture::none(), Logits::All)
        .unwrap();
    let d = (a.logits.unwrap() - b.logits.unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert!(d.to_scalar::<f32>().unwrap() < 1e-4);
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let (_dir, llava) = tiny_llava(&TinyConfig::tiny());
    let input = llava.prepare("a cat", None).unwrap();
    assert!(matches!(
        llava.generate(&input, 0, &ResidualCapture::none()),
        Err(Error::Input(_))
    ));
    let lm = llava.model.language_model();
    let mut wrong = cox_model::KvCache::new(1);
    assert!(lm
        .forward_embeds(
            &input.embeds,
            Some(&mut wrong),
            &ResidualCapture::none(),
            Logits::Last
        )
        .is_err());
    let scalar = Tensor::new(1f32, &Device::Cpu).unwrap();
    assert!(lm.logits(&scalar).is_err());
    let ids = Tensor::new(&[[1u32, 9999]], &Device::Cpu).unwrap();
    assert!(matches!(lm.embed(&ids), Err(Error::Input(_))));
    let wrong_px = Tensor::zeros((1, 3, 31, 32), DType::F32, &Device::Cpu).unwrap();
    assert!(llava.model.encode_images(&wrong_px).is_err());
    // An extreme aspect ratio would resize to too many pixels.
    let thin = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(1, 5000, Rgb([1u8, 2, 3])));
    let p = llava.processor.clone().with_max_pixels(100_000);
    assert!(matches!(
        p.preprocess(&thin, &Device::Cpu),
        Err(Error::Input(_))
    ));
}

#[test]
fn prepare_with_answer_locates_the_answer_tokens() {
    let (dir, llava) = tiny_llava(&TinyConfig::tiny());
    let pixels = llava.load_pixels(write_image(dir.path())).unwrap();
    let (input, range) = llava
        .prepare_with_answer(
            "describe this image",
            "a red cat on the table",
            Some(&pixels),
        )
        .unwrap();
    let words: Vec<String> = input.ids[range.clone()]
        .iter()
        .map(|&i| llava.tokenizer.id_to_token(i).unwrap())
        .collect();
    assert_eq!(words, ["a", "red", "cat", "on", "the", "table"]);
    assert_eq!(range.end, input.ids.len());
    assert_eq!(range.start, 9 + 15);
    let out = llava
        .forward(&input, &ResidualCapture::blocks([1]), Logits::None)
        .unwrap();
    assert_eq!(out.captured[0].dims(), &[1, input.ids.len(), 64]);
    // Text only.
    let (t, r) = llava
        .prepare_with_answer("what is this ?", "a dog", None)
        .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(t.ids.len(), r.end);
}
