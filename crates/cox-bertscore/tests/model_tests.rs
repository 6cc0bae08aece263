//! The encoder and scorer on a tiny random BERT written by the test (no downloaded weights), and the
//! errors for bad model directories.

mod common;

use std::path::Path;

use candle_core::{Device, Tensor};
use cox_bertscore::{Baseline, BertEncoder, BertScoreError, BertScoreParams, BertScorer, Prf};

use common::{id, write_tiny_bert};

fn params() -> BertScoreParams {
    BertScoreParams::default()
}

#[test]
fn a_vocab_txt_alone_gives_a_lowercasing_wordpiece_tokenizer_with_cls_and_sep() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    let enc = BertEncoder::load(tmp.path(), None, &Device::Cpu).unwrap();
    assert_eq!(
        enc.tokenize("  Hello WORLD, dogs.  ").unwrap(),
        vec![
            id("[CLS]"),
            id("hello"),
            id("world"),
            id(","),
            id("dog"),
            id("##s"),
            id("."),
            id("[SEP]")
        ]
    );
    assert_eq!(enc.tokenize("   ").unwrap(), vec![id("[CLS]"), id("[SEP]")]);
    assert_eq!(enc.special_ids(), (id("[CLS]"), id("[SEP]")));
    assert_eq!(
        (enc.layer(), enc.num_layers(), enc.hidden_size()),
        (2, 2, 8)
    );
}

/// LayerNorm over the last dimension, by hand.
fn layer_norm(x: &[f32], w: &[f32], b: &[f32], eps: f64) -> Vec<f32> {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    x.iter()
        .zip(w.iter().zip(b))
        .map(|(&v, (&wi, &bi))| {
            (((v as f64 - mean) / (var + eps).sqrt()) * wi as f64 + bi as f64) as f32
        })
        .collect()
}

fn row(t: &Tensor, i: usize) -> Vec<f32> {
    t.get(i).unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn layer_zero_is_the_embedding_layer_norm_of_word_position_and_type_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    let t = write_tiny_bert(tmp.path());
    let enc = BertEncoder::load(tmp.path(), Some(0), &Device::Cpu).unwrap();
    let e = &enc.embed(&["dog runs"], 4).unwrap()[0];
    let ids = [id("[CLS]"), id("dog"), id("runs"), id("[SEP]")];
    assert_eq!(e.ids, ids);
    let get = |k: &str| {
        t.iter()
            .find(|(name, _)| name.as_str() == k)
            .unwrap_or_else(|| panic!("no tensor {k} among {:?}", t.keys().collect::<Vec<_>>()))
            .1
            .clone()
    };
    let ln_w = row(&get("embeddings.LayerNorm.weight").unsqueeze(0).unwrap(), 0);
    let ln_b = row(&get("embeddings.LayerNorm.bias").unsqueeze(0).unwrap(), 0);
    for (pos, &tok) in ids.iter().enumerate() {
        let w = row(&get("embeddings.word_embeddings.weight"), tok as usize);
        let p = row(&get("embeddings.position_embeddings.weight"), pos);
        let ty = row(&get("embeddings.token_type_embeddings.weight"), 0);
        let x: Vec<f32> = (0..8).map(|k| w[k] + p[k] + ty[k]).collect();
        let want = layer_norm(&x, &ln_w, &ln_b, 1e-12);
        let got = &e.values[pos * 8..(pos + 1) * 8];
        for k in 0..8 {
            assert!(
                (got[k] - want[k]).abs() < 1e-5,
                "token {pos} dim {k}: {} vs {}",
                got[k],
                want[k]
            );
        }
    }
}

#[test]
fn padding_and_batch_size_do_not_change_a_sentences_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    let enc = BertEncoder::load(tmp.path(), None, &Device::Cpu).unwrap();
    let texts = [
        "a dog",
        "the red bus runs on the grass",
        "a cat sleeps on the sofa",
        "hello",
    ];
    let one = enc.embed(&texts, 1).unwrap();
    let all = enc.embed(&texts, 3).unwrap();
    for (a, b) in one.iter().zip(&all) {
        assert_eq!(a.ids, b.ids);
        let d = a
            .values
            .iter()
            .zip(&b.values)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "max difference {d}");
    }
}

#[test]
fn a_sentence_scores_one_against_itself_and_empty_sentences_score_zero() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    let s = BertScorer::load(tmp.path(), &params()).unwrap();
    let out = s
        .score(
            &["a dog runs on the grass", "", "a cat"],
            &[vec!["a dog runs on the grass"], vec!["a cat"], vec![" "]],
        )
        .unwrap();
    assert!(
        (out[0].p - 1.0).abs() < 1e-6
            && (out[0].r - 1.0).abs() < 1e-6
            && (out[0].f1 - 1.0).abs() < 1e-6
    );
    for o in &out[1..] {
        assert_eq!((o.p, o.r, o.f1), (0.0, 0.0, 0.0));
    }
    // The directory has no README, so the model is named after it.
    let name = tmp
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(out
        .iter()
        .all(|o| o.model == name && o.layer == 2 && !o.idf && o.baseline.is_none()));
}

#[test]
fn a_group_of_references_gives_the_element_wise_best_of_the_single_scores() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    let s = BertScorer::load(tmp.path(), &params()).unwrap();
    let refs = [
        "a dog runs",
        "the red bus runs on the grass",
        "a cat sleeps",
    ];
    let single: Vec<Prf> = refs
        .iter()
        .map(|r| {
            let o = &s.score(&["dog, grass, bus"], &[vec![*r]]).unwrap()[0];
            Prf {
                p: o.p,
                r: o.r,
                f1: o.f1,
            }
        })
        .collect();
    let group = &s.score(&["dog, grass, bus"], &[refs.to_vec()]).unwrap()[0];
    let best = single.iter().copied().reduce(Prf::max).unwrap();
    // The group's sentences are encoded in other batches (other padding): equal to float rounding.
    for (g, b) in [(group.p, best.p), (group.r, best.r), (group.f1, best.f1)] {
        assert!((g - b).abs() < 1e-6, "{g} vs {b}");
    }
}

#[test]
fn idf_on_is_idf_from_the_calls_references() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    let on = BertScorer::load(
        tmp.path(),
        &BertScoreParams {
            idf: true,
            ..params()
        },
    )
    .unwrap();
    let cands = ["dog grass", "red bus"];
    let refs = vec![
        vec!["a dog runs on the grass", "a dog"],
        vec!["the red bus"],
    ];
    let got = on.score(&cands, &refs).unwrap();
    let table = on
        .idf_weights(&["a dog runs on the grass", "a dog", "the red bus"])
        .unwrap();
    let want = on.score_with_idf(&cands, &refs, &table).unwrap();
    assert_eq!(got, want);
    assert!(got.iter().all(|o| o.idf));
    // Weighting changes the recall: in "a dog runs on the grass", "a", "dog" and "the" (in two of three
    // references) weigh ln(4/3), "runs", "on" and "grass" ln 2.
    let (c, r) = (["dog grass"], [vec!["a dog runs on the grass"]]);
    let weighted = &on.score_with_idf(&c, &r, &table).unwrap()[0];
    let off = &BertScorer::load(tmp.path(), &params())
        .unwrap()
        .score(&c, &r)
        .unwrap()[0];
    assert!(
        (weighted.r - off.r).abs() > 1e-9,
        "{} vs {}",
        weighted.r,
        off.r
    );
}

#[test]
fn a_baseline_rescales_each_score_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    let raw = BertScorer::load(tmp.path(), &params()).unwrap();
    let b = Baseline::new(0.2, 0.3, 0.4, "test");
    let resc = BertScorer::load(
        tmp.path(),
        &BertScoreParams {
            rescale: Some(b.clone()),
            ..params()
        },
    )
    .unwrap();
    let (c, r) = (["dog, cat"], [vec!["a cat sleeps on the sofa"]]);
    let x = &raw.score(&c, &r).unwrap()[0];
    let y = &resc.score(&c, &r).unwrap()[0];
    assert!((y.p - (x.p - 0.2) / 0.8).abs() < 1e-12);
    assert!((y.r - (x.r - 0.3) / 0.7).abs() < 1e-12);
    assert!((y.f1 - (x.f1 - 0.4) / 0.6).abs() < 1e-12);
    assert_eq!(y.baseline.as_ref(), Some(&b));
}

#[test]
fn the_layer_is_chosen_truncating_the_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    let l1 = BertEncoder::load(tmp.path(), Some(1), &Device::Cpu).unwrap();
    let l2 = BertEncoder::load(tmp.path(), Some(2), &Device::Cpu).unwrap();
    let (a, b) = (
        &l1.embed(&["a dog"], 1).unwrap()[0],
        &l2.embed(&["a dog"], 1).unwrap()[0],
    );
    assert_eq!(l1.layer(), 1);
    assert_ne!(a.values, b.values);
}

#[test]
fn a_readme_heading_names_the_model_and_the_name_can_be_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    std::fs::write(
        tmp.path().join("README.md"),
        "---\nlicense: x\n---\n\n# tiny-bert\n\nText.\n",
    )
    .unwrap();
    let s = BertScorer::load(tmp.path(), &params()).unwrap();
    assert_eq!(s.model_name(), "tiny-bert");
    let s = s.with_model_name("renamed");
    assert_eq!(s.score(&["a"], &[vec!["a"]]).unwrap()[0].model, "renamed");
}

#[test]
fn candidates_and_reference_groups_must_pair_up() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    let s = BertScorer::load(tmp.path(), &params()).unwrap();
    let e = s.score(&["a", "b"], &[vec!["a"]]).unwrap_err();
    assert!(
        matches!(e, BertScoreError::Mismatch { cands: 2, refs: 1 }),
        "{e}"
    );
    let e = s.score(&["a", "b"], &[vec!["a"], vec![]]).unwrap_err();
    assert!(matches!(e, BertScoreError::NoReference { index: 1 }), "{e}");
}

/// Load `dir` and return the error's message, checking it names `path`.
#[track_caller]
fn load_error(dir: &Path, params: &BertScoreParams, path: &Path, needle: &str) -> BertScoreError {
    let e = BertScorer::load(dir, params).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{msg:?} does not name {}",
        path.display()
    );
    assert!(msg.contains(needle), "{msg:?} does not say {needle:?}");
    e
}

#[test]
fn bad_model_directories_are_clear_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let p = params();

    let e = load_error(&dir, &p, &dir, "no such model directory");
    assert!(matches!(e, BertScoreError::MissingDir { .. }));

    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.json");
    let e = load_error(&dir, &p, &cfg, "missing");
    assert!(matches!(e, BertScoreError::MissingFile { .. }));

    std::fs::write(&cfg, "not json").unwrap();
    load_error(&dir, &p, &cfg, "not JSON");

    std::fs::write(&cfg, r#"{"model_type": "llava", "vocab_size": 5}"#).unwrap();
    let e = load_error(&dir, &p, &cfg, "\"llava\" is not supported");
    assert!(matches!(e, BertScoreError::UnsupportedModel { .. }));

    std::fs::write(&cfg, r#"{"hello": "world"}"#).unwrap();
    load_error(&dir, &p, &cfg, "not a BERT config");

    // A valid config, then the weights.
    write_tiny_bert(&dir);
    let weights = dir.join("model.safetensors");
    std::fs::remove_file(&weights).unwrap();
    load_error(&dir, &p, &weights, "missing (the model's weights)");

    std::fs::write(dir.join("pytorch_model.bin"), b"torch").unwrap();
    load_error(
        &dir,
        &p,
        &dir.join("pytorch_model.bin"),
        "only model.safetensors is read",
    );
    std::fs::remove_file(dir.join("pytorch_model.bin")).unwrap();

    std::fs::write(&weights, b"this is not safetensors").unwrap();
    load_error(&dir, &p, &weights, "not a safetensors file");

    // A real safetensors file with foreign tensors.
    let foreign = std::collections::HashMap::from([(
        "vision.weight".to_string(),
        Tensor::zeros((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
    )]);
    candle_core::safetensors::save(&foreign, &weights).unwrap();
    load_error(&dir, &p, &weights, "not the weights of this BERT config");

    // Weights fine, no tokenizer.
    write_tiny_bert(&dir);
    std::fs::remove_file(dir.join("vocab.txt")).unwrap();
    load_error(
        &dir,
        &p,
        &dir.join("tokenizer.json"),
        "tokenizer.json or vocab.txt",
    );

    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
    load_error(&dir, &p, &dir.join("tokenizer.json"), "");
}

#[test]
fn out_of_range_parameters_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_bert(tmp.path());
    let e = BertScorer::load(
        tmp.path(),
        &BertScoreParams {
            layer: Some(3),
            ..params()
        },
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("layer 3 out of range: the model has 2 layers"),
        "{e}"
    );
    let e = BertScorer::load(
        tmp.path(),
        &BertScoreParams {
            batch_size: 0,
            ..params()
        },
    )
    .unwrap_err();
    assert!(matches!(e, BertScoreError::InvalidParams(_)), "{e}");
}
