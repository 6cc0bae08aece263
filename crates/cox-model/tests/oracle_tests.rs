//! Numerical agreement with candle-transformers 0.11.1 (`clip`, `llava`, `llama`) on tiny random
//! checkpoints written by `cox_model::testing`.

use std::path::Path;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::clip::text_model::Activation as ClipAct;
use candle_transformers::models::clip::vision_model::{ClipVisionConfig, ClipVisionTransformer};
use candle_transformers::models::llama as cllama;
use candle_transformers::models::llava::config::LLaVAConfig;
use candle_transformers::models::llava::{ClipVisionTower as CandleTower, MMProjector};
use cox_model::config::RopeScaling;
use cox_model::testing::{write_tiny_llava, TinyConfig};
use cox_model::{
    FeatureLayer, GenerateParams, LayerSel, LlavaConfig, LlavaModel, Logits, ResidualCapture,
    WeightLayout,
};

const TOL: f32 = 1e-4;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    let b = b.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn oracle_vb(dir: &Path) -> VarBuilder<'static> {
    unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join("model.safetensors")],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
    }
}

fn candle_clip_config(c: &LlavaConfig) -> ClipVisionConfig {
    let v = &c.vision_config;
    ClipVisionConfig {
        embed_dim: v.hidden_size,
        activation: ClipAct::QuickGelu,
        intermediate_size: v.intermediate_size,
        num_hidden_layers: v.num_hidden_layers,
        num_attention_heads: v.num_attention_heads,
        projection_dim: v.projection_dim.unwrap_or(v.hidden_size),
        num_channels: 3,
        image_size: v.image_size,
        patch_size: v.patch_size,
    }
}

fn candle_llama_config(c: &LlavaConfig) -> cllama::Config {
    let t = &c.text_config;
    let rope_scaling = match &t.rope_scaling {
        None => None,
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        }) => Some(cllama::Llama3RopeConfig {
            factor: *factor as f32,
            low_freq_factor: *low_freq_factor as f32,
            high_freq_factor: *high_freq_factor as f32,
            original_max_position_embeddings: *original_max_position_embeddings,
            rope_type: cllama::Llama3RopeType::Llama3,
        }),
        Some(RopeScaling::Linear { .. } | RopeScaling::Dynamic { .. }) => {
            panic!("candle has no linear or dynamic rope scaling")
        }
    };
    cllama::Config {
        hidden_size: t.hidden_size,
        intermediate_size: t.intermediate_size,
        vocab_size: t.vocab_size,
        num_hidden_layers: t.num_hidden_layers,
        num_attention_heads: t.num_attention_heads,
        num_key_value_heads: t.kv_heads(),
        use_flash_attn: false,
        rms_norm_eps: t.rms_norm_eps,
        rope_theta: t.rope_theta as f32,
        bos_token_id: None,
        eos_token_id: None,
        rope_scaling,
        max_position_embeddings: t.max_position_embeddings,
        tie_word_embeddings: c.tied_embeddings(),
    }
}

fn candle_llava_config(c: &LlavaConfig) -> LLaVAConfig {
    let t = &c.text_config;
    serde_json::from_value(serde_json::json!({
        "architectures": ["LlavaForConditionalGeneration"],
        "bos_token_id": 1, "eos_token_id": 2,
        "hidden_size": t.hidden_size,
        "image_crop_resolution": c.vision_config.image_size,
        "image_grid_pinpoints": [],
        "image_split_resolution": c.vision_config.image_size,
        "intermediate_size": t.intermediate_size,
        "max_position_embeddings": t.max_position_embeddings,
        "mm_hidden_size": c.vision_config.hidden_size,
        "mm_projector_type": "mlp2x_gelu",
        "mm_use_im_start_end": false,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": null,
        "model_type": "llava",
        "num_attention_heads": t.num_attention_heads,
        "num_hidden_layers": t.num_hidden_layers,
        "num_key_value_heads": t.kv_heads(),
        "pad_token_id": 0,
        "rms_norm_eps": t.rms_norm_eps,
        "rope_theta": t.rope_theta,
        "tokenizer_model_max_length": null,
        "torch_dtype": "float32",
        "use_cache": true,
        "vocab_size": t.vocab_size,
        "hf": true
    }))
    .unwrap()
}

fn pixels(c: &LlavaConfig, seed: u64) -> Tensor {
    let s = c.vision_config.image_size;
    let n = 3 * s * s;
    let data: Vec<f32> = (0..n)
        .map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f32 / 500.0) - 1.0)
        .collect();
    Tensor::from_vec(data, (1, 3, s, s), &Device::Cpu).unwrap()
}

fn setup(tiny: &TinyConfig, seed: u64) -> (tempfile::TempDir, LlavaConfig, LlavaModel) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_tiny_llava(dir.path(), tiny, seed).unwrap();
    let model = LlavaModel::load_dir(dir.path(), DType::F32, &Device::Cpu).unwrap();
    (dir, cfg, model)
}

#[test]
fn vision_features_match_candle_clip_hidden_states() {
    let tiny = TinyConfig {
        vision_layers: 3,
        ..TinyConfig::tiny()
    };
    let (dir, cfg, model) = setup(&tiny, 1);
    let px = pixels(&cfg, 3);
    let clip = ClipVisionTransformer::new(
        oracle_vb(dir.path()).pp("vision_tower.vision_model"),
        &candle_clip_config(&cfg),
    )
    .unwrap();
    // candle returns the outputs of encoder layers 1..=L, then the pooled CLS: entry k - 1
    // is HF `hidden_states[k]` for k >= 1.
    let candle_states = clip.output_hidden_states(&px).unwrap();
    assert_eq!(candle_states.len(), cfg.vision_config.num_hidden_layers + 1);
    let ours = model.image_encoder().tower().hidden_states(&px, 2).unwrap();
    assert_eq!(ours.len(), 3);
    for k in 1..=2 {
        let d = max_abs_diff(&ours[k], &candle_states[k - 1]);
        eprintln!("vision hidden_states[{k}] max |diff| = {d:e}");
        assert!(d < TOL, "hidden_states[{k}] differs by {d}");
    }
    // vision_feature_layer = -2 with 3 layers is hidden_states[2], CLS dropped.
    assert_eq!(cfg.resolve_feature_layer(-2).unwrap(), 2);
    let feats = model.image_encoder().vision_features(&px).unwrap();
    let expected = candle_states[1].i((.., 1.., ..)).unwrap();
    let d = max_abs_diff(&feats, &expected);
    eprintln!("vision features (layer -2) max |diff| = {d:e}");
    assert!(d < TOL);
    // The tower only built the layers it needs.
    assert_eq!(model.image_encoder().tower().num_loaded_layers(), 2);
    // candle's ClipVisionTower with select_layer -2 reads the last layer instead (the quirk):
    // our features must not equal that.
    let tower = CandleTower::new(
        oracle_vb(dir.path()).pp("vision_tower.vision_model"),
        -2,
        "patch",
        &Some(candle_clip_config(&cfg)),
    )
    .unwrap();
    let quirk = tower.forward(&px).unwrap();
    let last = candle_states[2].i((.., 1.., ..)).unwrap();
    assert!(
        max_abs_diff(&quirk, &last) < 1e-6,
        "the quirk is as documented"
    );
    assert!(
        max_abs_diff(&feats, &quirk) > 1e-3,
        "we do not copy the quirk"
    );
}

#[test]
fn full_strategy_and_layer_lists_follow_hf_semantics() {
    let tiny = TinyConfig {
        vision_layers: 3,
        vision_feature_layer: FeatureLayer::Many(vec![0, -1]),
        select_strategy: cox_model::SelectStrategy::Full,
        ..TinyConfig::tiny()
    };
    let (dir, cfg, model) = setup(&tiny, 2);
    assert_eq!(cfg.image_seq_length, 17);
    let px = pixels(&cfg, 5);
    let clip = ClipVisionTransformer::new(
        oracle_vb(dir.path()).pp("vision_tower.vision_model"),
        &candle_clip_config(&cfg),
    )
    .unwrap();
    let candle_states = clip.output_hidden_states(&px).unwrap();
    let feats = model.image_encoder().vision_features(&px).unwrap();
    assert_eq!(feats.dims(), &[1, 17, 64]);
    // Layer 0 = embeddings after pre_layrnorm; layer -1 = last encoder output.
    let ours0 = model.image_encoder().tower().hidden_states(&px, 0).unwrap();
    let d0 = max_abs_diff(&feats.narrow(2, 0, 32).unwrap(), &ours0[0]);
    let d1 = max_abs_diff(&feats.narrow(2, 32, 32).unwrap(), &candle_states[2]);
    assert!(d0 < 1e-6 && d1 < TOL, "d0 {d0} d1 {d1}");
}

#[test]
fn projector_matches_candle_mmprojector() {
    let (dir, cfg, model) = setup(&TinyConfig::tiny(), 4);
    let px = pixels(&cfg, 1);
    let feats = model.image_encoder().vision_features(&px).unwrap();
    let proj = MMProjector::load(&oracle_vb(dir.path()), &candle_llava_config(&cfg)).unwrap();
    let expected = proj.forward(&feats).unwrap();
    let ours = model.encode_images(&px).unwrap();
    let d = max_abs_diff(&ours, &expected);
    eprintln!("projector max |diff| = {d:e}");
    assert!(d < TOL);
}

fn candle_llama(dir: &Path, cfg: &LlavaConfig) -> cllama::Llama {
    cllama::Llama::load(
        oracle_vb(dir).pp("language_model"),
        &candle_llama_config(cfg),
    )
    .unwrap()
}

fn check_decoder_logits(tiny: TinyConfig, seed: u64) {
    let (dir, cfg, model) = setup(&tiny, seed);
    let ids: Vec<u32> = vec![1, 5, 9, 14, 7, 22, 3, 30, 11];
    let ids_t = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let ours = model
        .forward(&ids_t, None, &ResidualCapture::none(), Logits::All)
        .unwrap()
        .logits
        .unwrap();
    let llama = candle_llama(dir.path(), &cfg);
    let ccfg = candle_llama_config(&cfg);
    // Full-sequence last-position logits.
    let mut cache = cllama::Cache::new(false, DType::F32, &ccfg, &Device::Cpu).unwrap();
    let last = llama.forward(&ids_t, 0, &mut cache).unwrap();
    let d = max_abs_diff(&ours.i((0, ids.len() - 1)).unwrap(), &last.i(0).unwrap());
    eprintln!("decoder last-position logits max |diff| = {d:e}");
    assert!(d < TOL, "last logits differ by {d}");
    // Every position, via candle's KV cache one token at a time.
    let mut cache = cllama::Cache::new(true, DType::F32, &ccfg, &Device::Cpu).unwrap();
    let mut worst = 0f32;
    for (p, &id) in ids.iter().enumerate() {
        let x = Tensor::new(&[[id]], &Device::Cpu).unwrap();
        let l = llama.forward(&x, p, &mut cache).unwrap();
        worst = worst.max(max_abs_diff(&ours.i((0, p)).unwrap(), &l.i(0).unwrap()));
    }
    eprintln!("decoder per-position logits max |diff| = {worst:e}");
    assert!(worst < TOL, "per-position logits differ by {worst}");
}

#[test]
fn decoder_logits_match_candle_llama() {
    check_decoder_logits(TinyConfig::tiny(), 7);
}

#[test]
fn decoder_logits_match_candle_llama_tied_and_llama3_rope() {
    check_decoder_logits(
        TinyConfig {
            tie_word_embeddings: true,
            rope_theta: 500_000.0,
            rope_scaling: Some(RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 16,
            }),
            ..TinyConfig::tiny()
        },
        8,
    );
}

#[test]
fn multimodal_greedy_generation_matches_candle() {
    let tiny = TinyConfig {
        weight_scale: 3.0,
        ..TinyConfig::tiny()
    };
    let (dir, cfg, model) = setup(&tiny, 11);
    let img = cfg.image_token_index;
    let mut ids: Vec<u32> = vec![1, 3, 4];
    ids.extend(std::iter::repeat_n(img, cfg.image_seq_length));
    ids.extend([20, 21, 9, 4, 5]);
    let px = pixels(&cfg, 9);
    let feats = model.encode_images(&px).unwrap();
    let ids_t = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let embeds = model.embed_multimodal(&ids_t, Some(&feats)).unwrap();
    // Image positions hold the projected features; others the token embeddings.
    let d = max_abs_diff(
        &embeds.i((0, 3..3 + cfg.image_seq_length)).unwrap(),
        &feats.i(0).unwrap(),
    );
    assert!(d == 0.0);
    let n_new = 10;
    let capture =
        ResidualCapture::new([LayerSel::Block(0), LayerSel::Block(2), LayerSel::FinalNorm]);
    let out = model
        .generate(
            &embeds,
            &GenerateParams {
                max_new_tokens: n_new,
                capture: capture.clone(),
                eos_token_ids: vec![],
                repetition_penalty: 1.0,
            },
        )
        .unwrap();
    assert_eq!(out.generated_ids.len(), n_new);

    // candle: prefill through forward_input_embed, then token by token with its KV cache.
    let llama = candle_llama(dir.path(), &cfg);
    let ccfg = candle_llama_config(&cfg);
    let mut cache = cllama::Cache::new(true, DType::F32, &ccfg, &Device::Cpu).unwrap();
    let mut logits = llama.forward_input_embed(&embeds, 0, &mut cache).unwrap();
    let mut candle_ids = Vec::new();
    for (step, pos) in (0..n_new).zip(ids.len()..) {
        let next = logits
            .i(0)
            .unwrap()
            .argmax(0)
            .unwrap()
            .to_scalar::<u32>()
            .unwrap();
        candle_ids.push(next);
        if step + 1 == n_new {
            break;
        }
        logits = llama
            .forward(
                &Tensor::new(&[[next]], &Device::Cpu).unwrap(),
                pos,
                &mut cache,
            )
            .unwrap();
    }
    eprintln!(
        "greedy ids ours {:?} candle {:?}",
        out.generated_ids, candle_ids
    );
    assert_eq!(out.generated_ids, candle_ids);
    let distinct: std::collections::HashSet<_> = candle_ids.iter().collect();
    assert!(
        distinct.len() > 1,
        "a degenerate model would make this test weak"
    );

    // Residuals captured with the KV cache equal a full forward without cache.
    let mut all_ids = ids.clone();
    all_ids.extend(&out.generated_ids[..n_new - 1]);
    let all_t = Tensor::new(all_ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let full = model
        .forward(&all_t, Some(&feats), &capture, Logits::All)
        .unwrap();
    assert_eq!(out.residuals.len(), 3);
    for (k, (cached, whole)) in out.residuals.iter().zip(&full.captured).enumerate() {
        assert_eq!(cached.dims(), &[all_ids.len(), cfg.text_config.hidden_size]);
        let whole = whole.i(0).unwrap();
        let d = max_abs_diff(cached, &whole);
        let scale = whole
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        eprintln!("residual {k}: cached vs full max |diff| = {d:e} (max |value| {scale:.1})");
        assert!(
            d / scale.max(1.0) < 1e-5,
            "relative difference {}",
            d / scale.max(1.0)
        );
    }
    // The final-norm capture is what the LM head reads.
    let head_logits = model.language_model().logits(&full.captured[2]).unwrap();
    assert!(max_abs_diff(&head_logits, full.logits.as_ref().unwrap()) < 1e-5);
}

#[test]
fn block_outputs_match_candle_llama_by_truncation() {
    // HF hidden_states[N + 1] == output of block N: a candle Llama truncated to N + 1 blocks,
    // with the final norm and head applied, must equal our Block(N) capture through our norm
    // and head.
    let (dir, cfg, model) = setup(&TinyConfig::tiny(), 21);
    let ids: Vec<u32> = vec![1, 8, 6, 12, 40];
    let ids_t = Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    for n in 0..cfg.text_config.num_hidden_layers {
        let out = model
            .forward(&ids_t, None, &ResidualCapture::blocks([n]), Logits::None)
            .unwrap();
        assert!(out.logits.is_none());
        let mut tcfg = cfg.clone();
        tcfg.text_config.num_hidden_layers = n + 1;
        let truncated = candle_llama(dir.path(), &tcfg);
        let mut cache =
            cllama::Cache::new(false, DType::F32, &candle_llama_config(&tcfg), &Device::Cpu)
                .unwrap();
        let expected = truncated.forward(&ids_t, 0, &mut cache).unwrap();
        // Apply our final norm + head to our captured block output.
        let mut tcfg2 = cfg.clone();
        tcfg2.text_config.num_hidden_layers = n + 1;
        let (vb, _) = cox_model::Checkpoint::open(dir.path())
            .unwrap()
            .var_builder(DType::F32, &Device::Cpu);
        let ours_trunc = LlavaModel::new(vb, &tcfg2, WeightLayout::Hub).unwrap();
        let logits = ours_trunc
            .forward(&ids_t, None, &ResidualCapture::blocks([n]), Logits::Last)
            .unwrap();
        let d = max_abs_diff(
            &logits.logits.unwrap().i((0, 0)).unwrap(),
            &expected.i(0).unwrap(),
        );
        let same = max_abs_diff(&logits.captured[0], &out.captured[0]);
        eprintln!("block {n}: logits max |diff| = {d:e}; capture consistency {same:e}");
        assert!(d < TOL && same < 1e-6);
    }
}

#[test]
fn transformers_452_layout_gives_identical_outputs() {
    let (_d1, cfg, hub) = setup(&TinyConfig::tiny(), 31);
    let (_d2, _, new) = setup(
        &TinyConfig {
            layout: WeightLayout::Transformers452,
            ..TinyConfig::tiny()
        },
        31,
    );
    let px = pixels(&cfg, 2);
    assert_eq!(
        max_abs_diff(
            &hub.encode_images(&px).unwrap(),
            &new.encode_images(&px).unwrap()
        ),
        0.0
    );
    let ids_t = Tensor::new(&[[1u32, 4, 9, 2]], &Device::Cpu).unwrap();
    let a = hub
        .forward(&ids_t, None, &ResidualCapture::none(), Logits::All)
        .unwrap();
    let b = new
        .forward(&ids_t, None, &ResidualCapture::none(), Logits::All)
        .unwrap();
    assert_eq!(
        max_abs_diff(a.logits.as_ref().unwrap(), b.logits.as_ref().unwrap()),
        0.0
    );
    assert_eq!(max_abs_diff(hub.lm_head(), new.lm_head()), 0.0);
}

#[test]
fn half_precision_checkpoints_load() {
    for dtype in [DType::F16, DType::BF16] {
        let tiny = TinyConfig {
            dtype,
            ..TinyConfig::tiny()
        };
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_tiny_llava(dir.path(), &tiny, 41).unwrap();
        // Compute in f32 from half weights: equals candle reading the same file in f32.
        let model = LlavaModel::load_dir(dir.path(), DType::F32, &Device::Cpu).unwrap();
        let ids_t = Tensor::new(&[[1u32, 4, 9, 2, 17]], &Device::Cpu).unwrap();
        let ours = model
            .forward(&ids_t, None, &ResidualCapture::none(), Logits::Last)
            .unwrap();
        let llama = candle_llama(dir.path(), &cfg);
        let mut cache =
            cllama::Cache::new(false, DType::F32, &candle_llama_config(&cfg), &Device::Cpu)
                .unwrap();
        let expected = llama.forward(&ids_t, 0, &mut cache).unwrap();
        let d = max_abs_diff(
            &ours.logits.unwrap().i((0, 0)).unwrap(),
            &expected.i(0).unwrap(),
        );
        assert!(d < TOL, "{dtype:?}: {d}");
        // Compute in the stored dtype: close to f32.
        let half = LlavaModel::load_dir(dir.path(), dtype, &Device::Cpu).unwrap();
        assert_eq!(half.dtype(), dtype);
        let h = half
            .forward(&ids_t, None, &ResidualCapture::none(), Logits::Last)
            .unwrap();
        let dh = max_abs_diff(
            &h.logits.unwrap().i((0, 0)).unwrap(),
            &expected.i(0).unwrap(),
        );
        eprintln!("{dtype:?} compute vs f32: max |diff| = {dh:e}");
        assert!(dh < 0.5, "{dtype:?} compute drifts by {dh}");
        let px = pixels(&cfg, 1);
        assert_eq!(half.encode_images(&px).unwrap().dtype(), dtype);
    }
}

#[test]
fn linear_rope_scaling_divides_the_frequencies() {
    // candle has no linear scaling to compare with; check the definition instead:
    // HF's linear scaling divides positions by `factor`, i.e. every inverse frequency.
    let base = TinyConfig::tiny().llava_config().text_config;
    let scaled = cox_model::TextConfig {
        rope_scaling: Some(RopeScaling::Linear { factor: 4.0 }),
        ..base.clone()
    };
    let a = cox_model::llama::rope_inv_freq(&base);
    let b = cox_model::llama::rope_inv_freq(&scaled);
    assert_eq!(a.len(), base.head_dim() / 2);
    for (x, y) in a.iter().zip(&b) {
        assert!((x / 4.0 - y).abs() < 1e-15);
    }
    // The first frequency is 1 and the rest follow theta^(-2i/d).
    assert_eq!(a[0], 1.0);
    let d = base.head_dim() as f64;
    assert!((a[1] - base.rope_theta.powf(-2.0 / d)).abs() < 1e-12);
    // Both spellings of the scaling type parse; unknown ones are refused.
    for key in ["type", "rope_type"] {
        let j = format!(r#"{{"{key}": "linear", "factor": 2.0}}"#);
        let r: RopeScaling = serde_json::from_str(&j).unwrap();
        assert_eq!(r, RopeScaling::Linear { factor: 2.0 });
    }
    let e = serde_json::from_str::<RopeScaling>(r#"{"rope_type": "yarn", "factor": 2.0}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"yarn\"") && e.contains("dynamic"), "{e}");
}
