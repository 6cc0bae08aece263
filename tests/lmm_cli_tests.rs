//! `coxlmm extract`, `run` and `explain` on tiny random Qwen2-VL and Qwen2.5-VL checkpoints:
//! the same commands as for LLaVA, the architecture chosen by `config.json`'s `model_type`.
//! The stored vectors are checked against the library's own generation, and the checkpoint's
//! `generation_config.json` repetition penalty is applied unless `--repetition-penalty` says
//! otherwise. `coxlmm steer` on the same runs equals the library's generation with the same edit.

use std::path::{Path, PathBuf};

use candle_core::DType;
use cox_hook::TokenOfInterest;
use cox_model::qwen2_vl::testing::{write_tiny_qwen, TinyQwenConfig};
use cox_model::qwen2_vl::{QwenArch, QwenLayout};
use cox_model::{AddDirection, Edit, EditPositions, LayerSel, Lmm, LoadOptions, ResidualCapture};

mod common;
use common::{coxlmm, text};

/// The instruction `extract` (by default), `run` and `explain` give with the image.
const PROMPT: &str = coxlmm::extract::DEFAULT_PROMPT;
const MAX_NEW: usize = 12;
/// Image sizes: ordinary, portrait, square, wide, and one below the 28-px patch block.
const SIZES: [(u32, u32); 6] = [(40, 30), (30, 40), (33, 33), (64, 24), (12, 10), (45, 36)];
const TRAIN: usize = 4;

struct Fixture {
    _dir: tempfile::TempDir,
    model: PathBuf,
    data: PathBuf,
    token: String,
}

/// A tiny checkpoint of `arch`, six images of different sizes (four train, two test) whose
/// captions all hold a word the model generates for most of them.
fn fixture(arch: QwenArch) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("images")).unwrap();
    let images: Vec<PathBuf> = SIZES
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| {
            let p = data.join(format!("images/{i}.png"));
            image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x * 7 + i as u32 * 20) as u8, (y * 5) as u8, 90])
            })
            .save(&p)
            .unwrap();
            p
        })
        .collect();
    // The first seed whose model generates one word for at least three of the four train images
    // (a fixed search, so the test is deterministic).
    let (token, seed) = (0..40u64)
        .find_map(|seed| {
            write_tiny_qwen(
                &model,
                &TinyQwenConfig::tiny(arch),
                QwenLayout::Hub,
                DType::F32,
                seed,
            )
            .unwrap();
            common_word(&model, &images[..TRAIN]).map(|w| (w, seed))
        })
        .expect("a seed whose tiny model generates a word");
    eprintln!("{arch:?}: seed {seed}, token {token:?}");
    let lines: String = (0..SIZES.len())
        .map(|i| {
            let split = if i < TRAIN { "train" } else { "test" };
            format!(
                "{{\"image\": \"images/{i}.png\", \"captions\": [\"a {token} here\"], \"id\": \"s{i}\", \"split\": \"{split}\"}}\n"
            )
        })
        .collect();
    std::fs::write(data.join("captions.jsonl"), lines).unwrap();
    Fixture {
        _dir: dir,
        model,
        data,
        token,
    }
}

/// A word (a multi-letter vocabulary piece) generated for all but one of `images` with the
/// checkpoint's defaults, as `coxlmm extract` generates.
fn common_word(model: &Path, images: &[PathBuf]) -> Option<String> {
    let lmm = Lmm::load(model.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let tok = lmm.tokenizer();
    let gens: Vec<Vec<u32>> = images
        .iter()
        .map(|p| lmm.caption(p, PROMPT, MAX_NEW).unwrap().generated_ids)
        .collect();
    let mut words: Vec<String> = gens
        .iter()
        .flatten()
        .filter_map(|&id| tok.id_to_token(id))
        .map(|w| w.trim_start_matches('Ġ').to_string())
        .filter(|w| w.len() > 1 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    words.sort();
    words.dedup();
    words.into_iter().find(|w| {
        TokenOfInterest::new(tok, w)
            .is_ok_and(|t| gens.iter().filter(|g| t.find(g).is_some()).count() + 1 >= gens.len())
    })
}

fn extract(f: &Fixture, out: &Path, extra: &[&str]) -> std::process::Output {
    let data = format!("folder:{}", f.data.display());
    let mut args = vec![
        "extract",
        "--model",
        f.model.to_str().unwrap(),
        "--data",
        &data,
        "--split",
        "train",
        "--token",
        &f.token,
        "--layer",
        "1,norm",
        "--max-new-tokens",
        "12",
        "--dtype",
        "f32",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    coxlmm(&args)
}

fn settings(store: &Path) -> serde_json::Map<String, serde_json::Value> {
    cox_store::read_run(store, Some("norm"))
        .unwrap()
        .manifest
        .spec
        .settings
}

fn check_architecture(arch: QwenArch, model_type: &str) {
    let f = fixture(arch);
    let root = f.data.parent().unwrap().to_path_buf();

    // extract: the stored rows are the library's residual states at the recorded positions.
    let store = root.join("store");
    let o = extract(&f, &store, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("repetition penalty 1.05"),
        "the default penalty is said: {}",
        text(&o)
    );
    assert_eq!(
        settings(&store)["repetition_penalty"].as_f64(),
        Some(1.05f32 as f64)
    );
    let lmm = Lmm::load(f.model.to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(lmm.model_type(), model_type);
    let samples = cox_store::read_run_samples(&store).unwrap();
    assert_eq!(samples.len(), TRAIN);
    let capture = ResidualCapture::new([LayerSel::Block(1), LayerSel::FinalNorm]);
    let params = lmm.default_params(MAX_NEW, &capture);
    let mut kept = 0;
    for (layer, li) in [("1", 0), ("norm", 1)] {
        let run = cox_store::read_run(&store, Some(layer)).unwrap();
        assert_eq!(run.matrix.cols, lmm.hidden_size());
        for s in &samples {
            let i: usize = s.id[1..].parse().unwrap();
            let px = lmm
                .load_pixels(f.data.join(format!("images/{i}.png")))
                .unwrap();
            let input = lmm.prepare(PROMPT, Some(&px)).unwrap();
            let g = lmm.generate(&input, &params).unwrap();
            assert_eq!(s.generated.as_deref(), Some(g.text.as_str()), "{}", s.id);
            let (Some(row), Some(pos)) = (s.row, s.position) else {
                continue;
            };
            kept += 1;
            let want: Vec<f32> = g.residuals[li].get(pos).unwrap().to_vec1().unwrap();
            let got = &run.matrix.data[row * run.matrix.cols..(row + 1) * run.matrix.cols];
            assert_eq!(got, want.as_slice(), "{} layer {layer}", s.id);
        }
    }
    assert!(kept >= 2, "no row kept: the test compares nothing");

    // --repetition-penalty 1 turns the penalty off and is recorded as a different setting.
    let plain = root.join("store-plain");
    let o = extract(&f, &plain, &["--repetition-penalty", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(settings(&plain).get("repetition_penalty").is_none());
    let o = extract(&f, &plain, &["--repetition-penalty", "0"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("positive"), "{}", text(&o));

    // run + explain: the whole pipeline on the same checkpoint.
    let out = root.join("run");
    let data = format!("folder:{}", f.data.display());
    let o = coxlmm(&[
        "run",
        "--model",
        f.model.to_str().unwrap(),
        "--data",
        &data,
        "--token",
        &f.token,
        "--layer",
        "1",
        "--k",
        "2",
        "--methods",
        "snmf,pca",
        "--n-mas",
        "1",
        "--explain",
        "1",
        "--max-new-tokens",
        "12",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("metrics.json").is_file());
    let img = f.data.join("images/4.png");
    let o = coxlmm(&[
        "explain",
        "--run",
        out.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("caption:"), "{}", text(&o));

    check_steering(&f, &lmm, &out);
}

/// `coxlmm steer` on the Qwen run: α = 0 changes nothing, and a vector file added at block 1
/// gives exactly the captions of the library's own generation with the same edit (a vector ten
/// times the size of the block's states, so it changes the captions).
fn check_steering(f: &Fixture, lmm: &Lmm, out: &Path) {
    let run = out.to_str().unwrap();
    let steer = |extra: &[&str]| {
        let mut args = vec!["steer", "--run", run, "--concept", "0", "--split", "test"];
        args.extend_from_slice(extra);
        let o = coxlmm(&args);
        assert!(o.status.success(), "{}", text(&o));
    };
    let record = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("steer").join(name)).unwrap())
            .unwrap()
    };
    steer(&["--alpha", "0"]);
    let zero = record("snmf-c0-atom-a0-generated.json");
    let caps = zero["captions"].as_array().unwrap();
    // The test split's samples that generated the token (the run's stored test rows).
    assert!(!caps.is_empty() && caps.len() <= SIZES.len() - TRAIN);
    for c in caps {
        assert_eq!(c["before"], c["after"]);
    }

    // The vector: a fixed pattern scaled to ten times the mean norm of block 1's states.
    let capture = ResidualCapture::new([LayerSel::Block(1)]);
    let px = lmm.load_pixels(f.data.join("images/4.png")).unwrap();
    let input = lmm.prepare(PROMPT, Some(&px)).unwrap();
    let g = lmm
        .generate(&input, &lmm.default_params(MAX_NEW, &capture))
        .unwrap();
    let states: Vec<Vec<f32>> = g.residuals[0].to_vec2().unwrap();
    let state_norm = states
        .iter()
        .map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt())
        .sum::<f32>()
        / states.len() as f32;
    let b = lmm.hidden_size();
    let pattern: Vec<f32> = (0..b).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
    let pattern_norm = pattern.iter().map(|x| x * x).sum::<f32>().sqrt();
    let v: Vec<f32> = pattern
        .iter()
        .map(|x| x * 10.0 * state_norm / pattern_norm)
        .collect();
    let vfile = out.join("v.safetensors");
    cox_store::write_activations(
        &vfile,
        &cox_store::Matrix {
            data: v.clone(),
            rows: 1,
            cols: b,
        },
        cox_store::DiskDtype::F32,
        &serde_json::json!({}),
    )
    .unwrap();
    steer(&[
        "--alpha",
        "1",
        "--positions",
        "all",
        "--vector",
        &format!("file:{}", vfile.display()),
    ]);
    let steered = record("snmf-c0-file-v-a1-all.json");
    let mut changed = 0;
    for c in steered["captions"].as_array().unwrap() {
        let image = Path::new(c["image"].as_str().unwrap());
        let px = lmm.load_pixels(image).unwrap();
        let input = lmm.prepare(PROMPT, Some(&px)).unwrap();
        let edit = Edit::new(1, EditPositions::All, AddDirection::new(&v, 1.0).unwrap());
        let capture = ResidualCapture::none().with_edits(vec![edit]);
        let want = lmm
            .generate(&input, &lmm.default_params(MAX_NEW, &capture))
            .unwrap();
        assert_eq!(c["after"].as_str(), Some(want.text.trim()), "{c}");
        changed += usize::from(c["before"] != c["after"]);
    }
    assert!(changed > 0, "the vector changed no caption: {steered}");
}

#[test]
fn qwen2_vl_extract_run_explain() {
    check_architecture(QwenArch::Qwen2Vl, "qwen2_vl");
}

#[test]
fn qwen2_5_vl_extract_run_explain() {
    check_architecture(QwenArch::Qwen25Vl, "qwen2_5_vl");
}

#[test]
fn an_unknown_model_type_names_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_qwen(
        dir.path(),
        &TinyQwenConfig::tiny(QwenArch::Qwen2Vl),
        QwenLayout::Hub,
        DType::F32,
        0,
    )
    .unwrap();
    let cfg = dir.path().join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v["model_type"] = "qwen3_vl".into();
    std::fs::write(&cfg, v.to_string()).unwrap();
    let data = format!("folder:{}", dir.path().display());
    let o = coxlmm(&[
        "extract",
        "--model",
        dir.path().to_str().unwrap(),
        "--data",
        &data,
        "--split",
        "train",
        "--token",
        "a",
        "--layer",
        "1",
        "--out",
        dir.path().join("s").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("qwen3_vl") && t.contains("llava, qwen2_vl, qwen2_5_vl"),
        "{t}"
    );
}
