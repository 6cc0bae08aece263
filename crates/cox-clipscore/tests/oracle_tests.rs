//! The network against candle-transformers' own `clip` model on a tiny random HF checkpoint.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::clip as oracle;
use cox_clipscore::testing::{tiny_config, write_tiny_clip};
use cox_clipscore::{ClipConfig, ClipModel};

/// The candle-transformers configuration for `c` (quick_gelu, LayerNorm eps 1e-5: what it
/// hard-codes).
fn oracle_config(c: &ClipConfig) -> oracle::ClipConfig {
    let (t, v) = (&c.text_config, &c.vision_config);
    oracle::ClipConfig {
        text_config: oracle::text_model::ClipTextConfig {
            vocab_size: t.vocab_size,
            embed_dim: t.hidden_size,
            activation: oracle::text_model::Activation::QuickGelu,
            intermediate_size: t.intermediate_size,
            max_position_embeddings: t.max_position_embeddings,
            pad_with: None,
            num_hidden_layers: t.num_hidden_layers,
            num_attention_heads: t.num_attention_heads,
            projection_dim: c.projection_dim,
        },
        vision_config: oracle::vision_model::ClipVisionConfig {
            embed_dim: v.hidden_size,
            activation: oracle::text_model::Activation::QuickGelu,
            intermediate_size: v.intermediate_size,
            num_hidden_layers: v.num_hidden_layers,
            num_attention_heads: v.num_attention_heads,
            projection_dim: c.projection_dim,
            num_channels: v.num_channels,
            image_size: v.image_size,
            patch_size: v.patch_size,
        },
        logit_scale_init_value: c.logit_scale_init_value as f32,
        image_size: v.image_size,
    }
}

fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn embeddings_match_candle_transformers_clip() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config();
    write_tiny_clip(dir.path(), &cfg, 7).unwrap();
    let dev = Device::Cpu;
    let ours = ClipModel::load(dir.path(), DType::F32, &dev).unwrap();
    // The oracle reads the same file through its own VarBuilder and modules.
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.path().join("model.safetensors")],
            DType::F32,
            &dev,
        )
        .unwrap()
    };
    let theirs = oracle::ClipModel::new(vb, &oracle_config(&cfg)).unwrap();

    // Images: a batch of 3 random pixel tensors.
    let px = Tensor::randn(0f32, 1f32, (3, 3, 32, 32), &dev).unwrap();
    let a = ours.image_features(&px).unwrap();
    let b = theirs.get_image_features(&px).unwrap();
    assert_eq!(a.dims(), &[3, 24]);
    let r = max_rel(&a, &b);
    eprintln!("image embeddings: max relative error {r:e}");
    assert!(r <= 1e-5, "image embeddings differ: max relative error {r}");

    // Texts: CLIP-style rows (start id, body, end id = the largest id, zero padding).
    let rows: Vec<Vec<u32>> = vec![
        [vec![49406, 320, 1125, 533, 1929, 49407], vec![0; 71]].concat(),
        [vec![49406, 9, 40000, 12, 49407], vec![0; 72]].concat(),
        [vec![49406], vec![5000; 75], vec![49407]].concat(),
    ];
    let a = ours.text_features(&rows).unwrap();
    let ids = Tensor::new(rows.clone(), &dev).unwrap();
    let b = theirs.get_text_features(&ids).unwrap();
    assert_eq!(a.dims(), &[3, 24]);
    let r = max_rel(&a, &b);
    eprintln!("text embeddings: max relative error {r:e}");
    assert!(r <= 1e-5, "text embeddings differ: max relative error {r}");

    // Zero padding after the end token cannot change the embedding (causal mask): a row cut
    // right after its end token embeds the same as the padded one.
    let short = vec![rows[0][..6].to_vec()];
    let c = ours.text_features(&short).unwrap();
    let r = max_rel(&c, &a.narrow(0, 0, 1).unwrap());
    assert!(r <= 1e-5, "padding changed the text embedding: {r}");
    assert!((ours.logit_scale() - 2.6592).abs() < 1e-6);
}

#[test]
fn gelu_and_eos_pooling_variants_load_and_differ() {
    use cox_model::config::Activation;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny_config();
    write_tiny_clip(dir.path(), &cfg, 3).unwrap();
    let quick = ClipModel::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
    cfg.text_config.hidden_act = Activation::Gelu;
    cfg.vision_config.hidden_act = Activation::Gelu;
    // Non-legacy eos id: pool at the first occurrence of 49407 rather than the largest id.
    cfg.text_config.eos_token_id = 49407;
    write_tiny_clip(dir.path(), &cfg, 3).unwrap();
    let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert!(text.contains("\"gelu\""));
    let gelu = ClipModel::load(dir.path(), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(gelu.config().text_config.hidden_act, Activation::Gelu);
    let px = Tensor::randn(0f32, 1f32, (1, 3, 32, 32), &Device::Cpu).unwrap();
    let d = max_rel(
        &gelu.image_features(&px).unwrap(),
        &quick.image_features(&px).unwrap(),
    );
    assert!(
        d > 1e-4,
        "gelu and quick_gelu gave the same image embedding"
    );
    // With eos_token_id = 49407 a row whose largest id is not the end token pools at the end token.
    let row = vec![vec![49406, 1, 49407, 0]];
    let ok = gelu.text_features(&row).unwrap();
    assert_eq!(ok.dims(), &[1, 24]);
    let e = gelu
        .text_features(&[vec![49406, 1, 2, 0]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no end-of-text id 49407"), "{e}");
}
