//! Training lowers the loss, the written checkpoint loads through `cox_model::Llava::load` and
//! generates, and the committed checkpoint captions held-out scenes.

use cox_model::{Llava, LoadOptions, ResidualCapture};
use cox_synth::{generate_split, Split, SynthConfig};
use cox_train::{
    caption_scene, evaluate, example_ids, parse_caption, TrainConfig, Trainer, PROMPT,
};

/// A short run, 8 fresh scenes a step (64 px, patch 16: 16 image tokens, for speed).
fn overfit_config(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        seed: 3,
        batch_size: 8,
        lr: 3e-3,
        warmup: 2,
        image_size: 64,
        patch_size: 16,
        save_every: 0,
        log_every: 0,
        ..TrainConfig::default()
    }
}

#[test]
fn a_few_steps_lower_the_loss_and_the_checkpoint_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut trainer = Trainer::new(dir.path(), &overfit_config(12)).unwrap();
    let batch = trainer.batch(3, 0, 8).unwrap();
    let before = trainer.loss(&batch).unwrap().to_scalar::<f32>().unwrap();
    // Step i trains on scenes 8i..8i+8, so `batch` is seen once, at step 0.
    let report = trainer.train(&overfit_config(12)).unwrap();
    let after = trainer.loss(&batch).unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(report.steps, 12);
    assert!(
        after < 0.8 * before,
        "loss {before} -> {after} after {} steps",
        report.steps
    );
    assert!(dir.path().join("loss_curve.csv").is_file());

    // The saved checkpoint is a plain llava-hf directory.
    let llava = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    let disk_loss = {
        let scenes = generate_split(&SynthConfig::default(), 3, Split::Train, 8).unwrap();
        let b = cox_train::make_batch(
            &llava.tokenizer,
            &llava.processor,
            llava.model.config().image_seq_length,
            llava.model.config().text_config.pad_token_id.unwrap(),
            &scenes,
            llava.model.device(),
        )
        .unwrap();
        let feats = llava.model.encode_images(&b.pixels).unwrap();
        let out = llava
            .model
            .forward(
                &b.ids,
                Some(&feats),
                &ResidualCapture::none(),
                cox_model::Logits::All,
            )
            .unwrap();
        let l = out.logits.unwrap();
        let (n, s, v) = l.dims3().unwrap();
        let sel = l
            .reshape((n * s, v))
            .unwrap()
            .index_select(&b.positions, 0)
            .unwrap();
        candle_nn::loss::cross_entropy(&sel, &b.targets)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    assert!(
        (disk_loss - after).abs() < 1e-3,
        "trainer loss {after}, reloaded loss {disk_loss}"
    );
    let scene = &generate_split(&SynthConfig::default(), 3, Split::Test, 1).unwrap()[0];
    let (text, _) = caption_scene(&llava, &scene.factors, 12).unwrap();
    let vocab = cox_synth::vocabulary();
    assert!(!text.is_empty());
    assert!(
        text.split_whitespace().all(|w| vocab.contains(&w)),
        "{text:?}"
    );
}

#[test]
fn training_ids_match_prepare_with_answer() {
    let dir = tempfile::tempdir().unwrap();
    let trainer = Trainer::new(dir.path(), &overfit_config(1)).unwrap();
    let llava = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    let scene = &generate_split(&SynthConfig::default(), 0, Split::Train, 1).unwrap()[0];
    let (ids, start) = example_ids(&trainer.tokenizer, 16, &scene.canonical).unwrap();
    let px = cox_train::scene_pixels(&llava.processor, scene).unwrap();
    let px = candle_core::Tensor::from_vec(px, (1, 3, 64, 64), llava.model.device()).unwrap();
    let (input, range) = llava
        .prepare_with_answer(PROMPT, &scene.canonical, Some(&px))
        .unwrap();
    assert_eq!(range.start, start);
    assert_eq!(&ids[..ids.len() - 1], &input.ids[..]);
    assert_eq!(*ids.last().unwrap(), llava.tokenizer.eos_token_ids[0]);
    // No prompt word is unknown.
    let unk = llava.tokenizer.inner().token_to_id("<unk>").unwrap();
    assert!(!ids.contains(&unk));
}

#[test]
fn parse_caption_scores_partly_right_captions() {
    let p = parse_caption("a large white cross on the right on a plain grass background");
    assert_eq!(p.objects.len(), 1);
    assert_eq!(p.objects[0].size.as_deref(), Some("large"));
    assert_eq!(p.objects[0].position.as_deref(), Some("right"));
    assert_eq!(p.background.as_deref(), Some("grass"));
    let p = parse_caption("a small red");
    assert_eq!(p.objects.len(), 1);
    assert_eq!(p.objects[0].shape, None);
    assert_eq!(p.background, None);
    assert!(parse_caption("").objects.is_empty());
}

#[test]
fn invalid_settings_fail_before_work() {
    for bad in [
        TrainConfig {
            steps: 0,
            ..TrainConfig::default()
        },
        TrainConfig {
            patch_size: 7,
            ..TrainConfig::default()
        },
        TrainConfig {
            lr: f64::NAN,
            ..TrainConfig::default()
        },
    ] {
        assert!(matches!(
            bad.validate(),
            Err(cox_train::TrainError::InvalidConfig { .. })
        ));
    }
}

/// The committed checkpoint (when present) captions 20 held-out scenes with at least 80 %
/// accuracy on every attribute.
#[test]
fn committed_checkpoint_captions_test_scenes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cox-synth/assets/tiny-llava-synth");
    if !dir.join("model.safetensors").is_file() {
        eprintln!(
            "SKIPPED: no committed checkpoint at {} (run `cargo xtask train-synth`)",
            dir.display()
        );
        return;
    }
    let llava = Llava::load(dir.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let r = evaluate(&llava, 0, 20).unwrap();
    for (name, v) in [
        ("shape", r.shape),
        ("colour", r.colour),
        ("size", r.size),
        ("position", r.position),
        ("background", r.background),
        ("texture", r.texture),
    ] {
        assert!(v >= 0.8, "{name} accuracy {v:.3} < 0.8; {:?}", r.mistakes);
    }
}

/// `first_scene` moves the training window: the first step of a run from scene 800 sees the batch
/// of scenes 800..808, not scenes 0..8 (its step-0 loss is that batch's loss under the initial
/// weights, and differs from the loss of scenes 0..8).
#[test]
fn first_scene_selects_the_training_scenes() {
    let dir = tempfile::tempdir().unwrap();
    let tc = TrainConfig {
        first_scene: 800,
        ..overfit_config(1)
    };
    let mut trainer = Trainer::new(dir.path(), &tc).unwrap();
    let loss_of = |first: u64| {
        let b = trainer.batch(3, first, 8).unwrap();
        trainer.loss(&b).unwrap().to_scalar::<f32>().unwrap()
    };
    let (at_800, at_0) = (loss_of(800), loss_of(0));
    assert!((at_800 - at_0).abs() > 1e-4, "{at_800} vs {at_0}");
    let report = trainer.train(&tc).unwrap();
    assert!(
        (report.curve[0].loss - at_800).abs() < 1e-4,
        "step 0 loss {} is not the loss of scenes 800..808 ({at_800}; scenes 0..8: {at_0})",
        report.curve[0].loss
    );
}
