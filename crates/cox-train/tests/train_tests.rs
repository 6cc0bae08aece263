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
        TrainConfig {
            workers: 0,
            ..TrainConfig::default()
        },
        // A 4 × 4 patch grid does not tile the 3 × 3 layout cells that pretraining labels.
        TrainConfig {
            vision_pretrain_steps: 10,
            image_size: 64,
            patch_size: 16,
            ..TrainConfig::default()
        },
        TrainConfig {
            workers: 33,
            batch_size: 32,
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

/// Data-parallel training computes the whole batch's gradient: 7 scenes split 3 ways (shards of
/// 3, 2 and 2 scenes with different caption lengths, so unequal token weights and different right
/// padding) give the loss and every parameter gradient of one pass over the 7 scenes, and a run
/// with 2 workers takes the same first step as a run with one.
#[test]
fn sharded_gradients_equal_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let tc = overfit_config(1);
    let trainer = Trainer::new(dir.path(), &tc).unwrap();
    let world = SynthConfig::default();
    let whole = trainer.shards_of(&world, 3, 40, 7, 1).unwrap();
    assert_eq!(whole.len(), 1);
    let parts = trainer.shards_of(&world, 3, 40, 7, 3).unwrap();
    let sizes: Vec<usize> = parts.iter().map(|b| b.ids.dims()[0]).collect();
    assert_eq!(sizes, vec![3, 2, 2]);
    let counts: Vec<usize> = parts.iter().map(|b| b.n_targets).collect();
    assert_eq!(counts.iter().sum::<usize>(), whole[0].n_targets);
    assert!(
        counts[0] * 2 != counts[1] * 3 || counts[1] != counts[2],
        "the shards should weigh differently: {counts:?}"
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let (l1, g1) = trainer.loss_and_grads(&whole, None).unwrap();
    let (l3, g3) = trainer.loss_and_grads(&parts, Some(&pool)).unwrap();
    assert!((l1 - l3).abs() < 1e-5 * l1.abs().max(1.0), "{l1} vs {l3}");
    let vars = trainer.varmap.all_vars();
    let mut compared = 0;
    for v in &vars {
        let (Some(a), Some(b)) = (g1.get(v.as_tensor()), g3.get(v.as_tensor())) else {
            assert!(g1.get(v.as_tensor()).is_none() && g3.get(v.as_tensor()).is_none());
            continue;
        };
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
        let diff = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        // Relative to the tensor's largest entry; parameters whose gradient is all but zero
        // (the embedding rows of words absent from the 7 captions) get an absolute 1e-8.
        assert!(
            diff <= 1e-4 * scale + 1e-8,
            "gradient differs by {diff} (scale {scale})"
        );
        compared += 1;
    }
    assert!(compared > 20, "only {compared} gradients compared");

    // One optimiser step with 2 workers starts from the same loss as with one worker and lands on
    // the same weights.
    let run = |workers: usize| {
        let d = tempfile::tempdir().unwrap();
        let tc = TrainConfig {
            workers,
            ..overfit_config(2)
        };
        let mut t = Trainer::new(d.path(), &tc).unwrap();
        let r = t.train(&tc).unwrap();
        (r.curve[0].loss, r.curve[1].loss)
    };
    let (a0, a1) = run(1);
    let (b0, b1) = run(2);
    assert!((a0 - b0).abs() < 1e-5, "step 0: {a0} vs {b0}");
    assert!((a1 - b1).abs() < 1e-4, "step 1: {a1} vs {b1}");
}

/// Cell features: a 3 × 3 grid is passed through, a 6 × 6 grid is averaged per 2 × 2 block in
/// row-major cell order, and a grid that does not tile the 3 × 3 layout is refused.
#[test]
fn cell_features_pool_tokens_per_layout_cell() {
    use candle_core::{Device, Tensor};
    use cox_train::pretrain::cell_features;
    // Token (r, c) of a 6 × 6 grid holds r * 10 + c in both features.
    let vals: Vec<f32> = (0..2)
        .flat_map(|_| (0..36).flat_map(|t| [(t / 6 * 10 + t % 6) as f32; 2]))
        .collect();
    let tokens = Tensor::from_vec(vals, (2, 36, 2), &Device::Cpu).unwrap();
    let cells: Vec<Vec<f32>> = cell_features(&tokens).unwrap().to_vec2().unwrap();
    assert_eq!(cells.len(), 18);
    // Cell (1, 2) covers rows 2..4 and columns 4..6: mean of 24, 25, 34, 35.
    assert_eq!(cells[5], vec![29.5, 29.5]);
    assert_eq!(cells[9], vec![5.5, 5.5]);
    let nine = Tensor::arange(0f32, 27., &Device::Cpu)
        .unwrap()
        .reshape((1, 9, 3))
        .unwrap();
    let same: Vec<Vec<f32>> = cell_features(&nine).unwrap().to_vec2().unwrap();
    assert_eq!(same[4], vec![12., 13., 14.]);
    let sixteen = Tensor::zeros((1, 16, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(cell_features(&sixteen).is_err());
}

/// Cell labels put every object's attributes in its own layout cell and "empty" elsewhere.
#[test]
fn cell_batch_labels_follow_the_scene_factors() {
    use cox_synth::{Colour, Shape, Size};
    let dir = tempfile::tempdir().unwrap();
    let trainer = Trainer::new(dir.path(), &overfit_config(1)).unwrap();
    let scenes = generate_split(&SynthConfig::default(), 5, Split::Train, 6).unwrap();
    let b = cox_train::pretrain::make_cell_batch(
        &trainer.processor,
        &scenes,
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let shape: Vec<u32> = b.shape.to_vec1().unwrap();
    let colour: Vec<u32> = b.colour.to_vec1().unwrap();
    let size: Vec<u32> = b.size.to_vec1().unwrap();
    assert_eq!(shape.len(), 54);
    let mut occupied = 0;
    for (i, s) in scenes.iter().enumerate() {
        for o in &s.factors.objects {
            let cell = i * 9 + o.row.index() * 3 + o.position.column();
            assert_eq!(Shape::ALL[shape[cell] as usize], o.shape);
            assert_eq!(Colour::ALL[colour[cell] as usize], o.colour);
            assert_eq!(Size::ALL[size[cell] as usize], o.size);
            occupied += 1;
        }
    }
    let empty = shape
        .iter()
        .filter(|&&c| c as usize == Shape::ALL.len())
        .count();
    assert_eq!(empty + occupied, 54);
    assert_eq!(
        colour
            .iter()
            .filter(|&&c| c as usize == Colour::ALL.len())
            .count(),
        empty
    );
}

/// Vision pretraining lowers its loss, trains the tower and projector only (the decoder's weights
/// are untouched), and is reproducible.
#[test]
fn vision_pretraining_trains_the_tower_only() {
    // 96 px / patch 32: one image token per layout cell.
    let tc = TrainConfig {
        vision_pretrain_steps: 15,
        vision_pretrain_batch: 8,
        image_size: 96,
        patch_size: 32,
        ..overfit_config(1)
    };
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let trainer = Trainer::new(dir.path(), &tc).unwrap();
        let snapshot = |prefix: &str| weights_under(&trainer, prefix);
        let (lm0, vis0) = (snapshot("language_model."), snapshot("vision_tower."));
        let curve = trainer.pretrain_vision(&tc).unwrap();
        let (lm1, vis1) = (snapshot("language_model."), snapshot("vision_tower."));
        assert_eq!(lm0, lm1, "the decoder changed during vision pretraining");
        assert_ne!(vis0, vis1, "the vision tower did not change");
        assert!(dir.path().join("vision_pretrain_curve.csv").is_file());
        curve
    };
    let a = run();
    assert_eq!(a.len(), 15);
    let head = (a[0].loss + a[1].loss) / 2.0;
    let tail = (a[13].loss + a[14].loss) / 2.0;
    assert!(tail < 0.7 * head, "pretraining loss {head} -> {tail}");
    let b = run();
    let la: Vec<f32> = a.iter().map(|p| p.loss).collect();
    let lb: Vec<f32> = b.iter().map(|p| p.loss).collect();
    // Same seed, same curve — to rounding: candle's matrix products may split their sums
    // differently from run to run when they use several threads.
    for (x, y) in la.iter().zip(&lb) {
        assert!(
            (x - y).abs() <= 1e-4 * x.abs(),
            "two seeded runs differ: {la:?} vs {lb:?}"
        );
    }
}

/// With `freeze_vision`, captioning leaves the tower's weights exactly as they were and trains the
/// projector and the decoder.
#[test]
fn a_frozen_tower_does_not_move_while_captioning() {
    let dir = tempfile::tempdir().unwrap();
    let tc = TrainConfig {
        freeze_vision: true,
        ..overfit_config(3)
    };
    let mut trainer = Trainer::new(dir.path(), &tc).unwrap();
    let before: Vec<Vec<f32>> = ["vision_tower.", "multi_modal_projector.", "language_model."]
        .iter()
        .map(|p| weights_under(&trainer, p))
        .collect();
    assert!(!before[0].is_empty());
    trainer.train(&tc).unwrap();
    let after: Vec<Vec<f32>> = ["vision_tower.", "multi_modal_projector.", "language_model."]
        .iter()
        .map(|p| weights_under(&trainer, p))
        .collect();
    assert_eq!(before[0], after[0], "the frozen tower changed");
    assert_ne!(before[1], after[1], "the projector did not learn");
    assert_ne!(before[2], after[2], "the decoder did not learn");
}

/// Every trained weight whose name starts with `prefix`, in name order, flattened.
fn weights_under(trainer: &Trainer, prefix: &str) -> Vec<f32> {
    let data = trainer.varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().filter(|k| k.starts_with(prefix)).collect();
    names.sort();
    names
        .into_iter()
        .flat_map(|k| data[k].flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect()
}
