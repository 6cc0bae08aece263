//! Against the `bert_score` package (0.3.12, transformers 4.47.1) with the real all-MiniLM-L6-v2:
//! token ids, hidden states at layers 3 and 6, and P/R/F for single pairs, reference groups, idf and
//! baseline rescaling. The fixture and its generator are in `tests/fixtures/bertscore/` at the
//! workspace root. Needs `cargo xtask fetch`; skips loudly without it unless COXLMM_REQUIRE_MODELS=1.

mod common;

use candle_core::Device;
use cox_bertscore::{Baseline, BertEncoder, BertScoreParams, BertScorer};
use serde_json::Value;

const TOL: f64 = 1e-4;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/bertscore/golden.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn token_ids_match_the_reference_tokenizer() {
    let Some(dir) = common::minilm_dir("token_ids_match_the_reference_tokenizer") else {
        return;
    };
    let enc = BertEncoder::load(&dir, None, &Device::Cpu).unwrap();
    let fx = fixture();
    let tokens = fx["tokens"].as_object().unwrap();
    assert!(tokens.len() > 30);
    for (s, ids) in tokens {
        let want: Vec<u32> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(enc.tokenize(s).unwrap(), want, "{s:?}");
    }
}

#[test]
fn hidden_states_match_transformers_at_layers_3_and_6() {
    let Some(dir) = common::minilm_dir("hidden_states_match_transformers_at_layers_3_and_6") else {
        return;
    };
    let fx = fixture();
    for h in fx["hidden"].as_array().unwrap() {
        let layer = h["layer"].as_u64().unwrap() as usize;
        let s = h["sentence"].as_str().unwrap();
        let enc = BertEncoder::load(&dir, Some(layer), &Device::Cpu).unwrap();
        let e = &enc.embed(&[s], 1).unwrap()[0];
        let first8 = h["first8"].as_array().unwrap();
        let norms = nums(&h["norms"]);
        assert_eq!(first8.len(), e.ids.len(), "{s:?}");
        for (t, row) in first8.iter().enumerate() {
            let v = &e.values[t * e.dim..(t + 1) * e.dim];
            for (k, want) in nums(row).iter().enumerate() {
                assert!(
                    (v[k] as f64 - want).abs() < TOL,
                    "{s:?} layer {layer} token {t} dim {k}: {} vs {want}",
                    v[k]
                );
            }
            let n = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
            assert!(
                (n - norms[t]).abs() < TOL * norms[t],
                "{s:?} layer {layer} token {t} norm {n} vs {}",
                norms[t]
            );
        }
    }
}

#[test]
fn scores_match_bert_score() {
    let Some(dir) = common::minilm_dir("scores_match_bert_score") else {
        return;
    };
    let fx = fixture();
    let mut worst = 0f64;
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let layer = case["layer"].as_u64().unwrap() as usize;
        let rescale = case["baseline"]
            .get("tsv")
            .map(|t| Baseline::from_tsv(t.as_str().unwrap(), layer, "fixture baseline").unwrap());
        let params = BertScoreParams {
            layer: Some(layer),
            idf: case["idf"].as_bool().unwrap(),
            rescale,
            batch_size: 64,
        };
        let scorer = BertScorer::load(&dir, &params).unwrap();
        let cands = strs(&case["cands"]);
        let refs: Vec<Vec<String>> = case["refs"].as_array().unwrap().iter().map(strs).collect();
        let got = scorer.score(&cands, &refs).unwrap();
        let (p, r, f) = (nums(&case["p"]), nums(&case["r"]), nums(&case["f"]));
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g.model, "all-MiniLM-L6-v2");
            assert_eq!(g.layer, layer);
            for (what, x, want) in [("P", g.p, p[i]), ("R", g.r, r[i]), ("F", g.f1, f[i])] {
                worst = worst.max((x - want).abs());
                assert!(
                    (x - want).abs() < TOL,
                    "{name}[{i}] {what}: {x} vs bert_score {want} ({:?})",
                    cands[i]
                );
            }
        }
    }
    eprintln!("largest |ours - bert_score| over all cases: {worst:.2e}");
}
