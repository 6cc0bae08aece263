//! End-to-end tests of the pipeline commands (`coxlmm demo`, `run`, `explain`, `report`) on the
//! synthetic world with the committed tiny model: real processes, real files.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;
use common::{coxlmm, text};

fn model_dir() -> PathBuf {
    cox_synth::default_model_dir()
}

/// A small demo: 400 train and 80 test scenes, K = 6.
fn small_demo(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--train",
        "400",
        "--test",
        "80",
        "--k",
        "6",
    ];
    args.extend_from_slice(extra);
    coxlmm(&args)
}

/// How many times the process loaded a model (`coxlmm::model::LOAD_LOG_PREFIX` lines on stderr).
fn loads(o: &Output) -> usize {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.starts_with(coxlmm::model::LOAD_LOG_PREFIX))
        .count()
}

fn metrics(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
}

#[test]
fn demo_runs_end_to_end_resumes_and_explains() {
    assert!(
        model_dir().join("model.safetensors").is_file(),
        "the committed checkpoint is missing at {}",
        model_dir().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = small_demo(&out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("report: "), "{t}");
    // The model is loaded once and shared by extraction (train and test), grounding and the rest.
    assert_eq!(loads(&o), 1, "{t}");
    // Without --layer the demo runs at the model's last block (block 2 of 3 here).
    let settings = coxlmm::RunFolder::new(&out).read_settings().unwrap();
    assert_eq!(settings.layer, "2");

    // The world, the stores, one dictionary per method, the grounding, the metrics, the report.
    assert!(out.join("data/captions.jsonl").is_file());
    assert!(out.join("data/factors.jsonl").is_file());
    for m in ["snmf", "pca", "kmeans", "simple"] {
        let d = cox_store::read_dictionary::<coxlmm::learn::FitRecord>(
            &out.join(format!("dict/{m}.safetensors")),
        )
        .unwrap();
        assert_eq!(d.concepts.rows, 6, "{m}");
        assert_eq!(d.meta.fit.method.name(), m);
        assert!(out.join(format!("ground/{m}.json")).is_file());
    }
    let m = metrics(&out);
    let methods = m["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 4);
    let train = m["train_samples"].as_u64().unwrap();
    assert!(train >= 6, "{m}");
    for mm in methods {
        let overlap = mm["overlap"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&overlap), "{mm}");
        // The synthetic world's ground truth is known, so recovery AUC is always computed.
        let auc = mm["recovery_auc_train"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{mm}");
    }
    let snmf = &methods[0];
    assert_eq!(snmf["method"], "snmf");
    // Semi-NMF codes are sparse and non-negative; the baselines' are dense.
    assert!(snmf["mean_l0"].as_f64().unwrap() < 6.0, "{snmf}");
    // Concepts of the token's representations detect its factors far better than chance (0.5).
    let auc = snmf["recovery_auc_train"].as_f64().unwrap();
    eprintln!(
        "recovery AUC (train): {}",
        methods
            .iter()
            .map(|x| format!("{} {:.3}", x["method"], x["recovery_auc_train"]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(auc > 0.6, "Semi-NMF recovery AUC {auc}");

    // The report: one card per concept, thumbnails on disk.
    let index = std::fs::read_to_string(out.join("report/index.html")).unwrap();
    for k in 0..6 {
        assert!(
            index.contains(&format!("id=\"concept-{k:03}\"")),
            "card {k}"
        );
        assert!(out.join(format!("report/concept-{k:03}.html")).is_file());
    }
    assert!(out.join("report/visual_grounding.json").is_file());
    let thumbs = std::fs::read_dir(out.join("report/thumbs"))
        .unwrap()
        .count();
    assert!(thumbs >= 6, "{thumbs} thumbnails");

    // Rerunning the same command resumes: nothing is learnt again, the dictionary is unchanged.
    let before = std::fs::read(out.join("dict/snmf.safetensors")).unwrap();
    let o = small_demo(&out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("done already"), "{}", text(&o));
    assert_eq!(
        before,
        std::fs::read(out.join("dict/snmf.safetensors")).unwrap()
    );

    assert_eq!(loads(&o), 1, "{}", text(&o));

    // `coxlmm run` with the demo's settings resumes the same folder, with one model load.
    let data = format!("folder:{}", out.join("data").display());
    let model = model_dir().display().to_string();
    let o = coxlmm(&[
        "run",
        "--model",
        &model,
        "--data",
        &data,
        "--token",
        "circle",
        "--layer",
        "2",
        "--k",
        "6",
        "--stability-seeds",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(loads(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("done already"), "{}", text(&o));

    // Other settings in the same folder are refused, naming the difference.
    let o = small_demo(&out, &["--lambda", "0.5"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("other settings") && text(&o).contains("lambda"),
        "{}",
        text(&o)
    );

    // Local explanations of new images; unreadable ones are named and skipped.
    let img = out.join("data/images/test-000002.png");
    let o = coxlmm(&[
        "explain",
        "--run",
        out.to_str().unwrap(),
        img.to_str().unwrap(),
        "/nonexistent/x.png",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("caption:") && t.contains("/nonexistent/x.png"),
        "{t}"
    );
    let id = cox_store::unique_file_stem(&img);
    assert!(id.starts_with("test-000002-"), "{id}");
    let e: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(format!("explain/{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(e["id"], id.as_str());
    assert!(e["generated"].as_str().is_some_and(|g| !g.is_empty()));
    if e["token_generated"].as_bool().unwrap() {
        assert!(!e["concepts"].as_array().unwrap().is_empty());
    }
    // The report picks the explanation up.
    let o = coxlmm(&["report", "--run", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let pages = std::fs::read_dir(out.join("report"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("explain-")
        })
        .count();
    assert!(pages >= 1);

    explanations_never_collide_and_survive_a_closed_stdout(&out);
}

/// Images that share a stem (`a/x.png`, `b/x.jpg`) or whose names sanitise alike (`p<q.png`,
/// `p>q.png`) get distinct explanation files and thumbnails, all shown by the report; explaining
/// them with stdout closed at once (`coxlmm explain … | head -c 0`) neither panics nor loses one.
fn explanations_never_collide_and_survive_a_closed_stdout(out: &Path) {
    let dir = out.parent().unwrap().join("collide");
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let src = |i: usize| out.join(format!("data/images/test-{i:06}.png"));
    let images = [
        dir.join("a/x.png"),
        dir.join("b/x.jpg"),
        dir.join("p<q.png"),
        dir.join("p>q.png"),
    ];
    // Different scenes, so that a thumbnail shared by two images would show.
    std::fs::copy(src(3), &images[0]).unwrap();
    image::open(src(4))
        .unwrap()
        .to_rgb8()
        .save(&images[1])
        .unwrap();
    std::fs::copy(src(5), &images[2]).unwrap();
    std::fs::copy(src(6), &images[3]).unwrap();

    let mut args = vec!["explain".into(), "--run".into(), out.as_os_str().to_owned()];
    args.extend(images.iter().map(|p| p.as_os_str().to_owned()));
    with_stdout_closed(&args);

    let ids: Vec<String> = images
        .iter()
        .map(|p| cox_store::unique_file_stem(p))
        .collect();
    let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 4, "{ids:?}");
    for (img, id) in images.iter().zip(&ids) {
        let e: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("explain/{id}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(e["image"], img.display().to_string().as_str());
        assert_eq!(e["id"], id.as_str());
    }

    let o = coxlmm(&["report", "--run", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report/report.json")).unwrap())
            .unwrap();
    let mut thumbs = std::collections::BTreeSet::new();
    for id in &ids {
        let shown: Vec<&Value> = report["explained"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["image"]["sample_id"] == id.as_str())
            .collect();
        assert_eq!(shown.len(), 1, "{id} in {}", report["explained"]);
        let thumb = shown[0]["image"]["thumbnail"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no thumbnail: {}", shown[0]));
        assert!(out.join("report").join(thumb).is_file(), "{thumb}");
        thumbs.insert(thumb.to_string());
    }
    assert_eq!(thumbs.len(), 4, "{thumbs:?}");
    // Different scenes give different thumbnails: no image was drawn from another's file.
    let bytes: std::collections::BTreeSet<Vec<u8>> = thumbs
        .iter()
        .map(|t| std::fs::read(out.join("report").join(t)).unwrap())
        .collect();
    assert_eq!(bytes.len(), 4);

    // `coxlmm extract … | true`: the summary line meets a closed pipe; the store is still complete.
    let store = out.parent().unwrap().join("closed-stdout-store");
    let data = format!("folder:{}", out.join("data").display());
    let args: Vec<std::ffi::OsString> = [
        "extract",
        "--model",
        model_dir().to_str().unwrap(),
        "--data",
        &data,
        "--split",
        "test",
        "--token",
        "circle",
        "--layer",
        "2",
        "--limit",
        "4",
        "--out",
        store.to_str().unwrap(),
    ]
    .iter()
    .map(Into::into)
    .collect();
    with_stdout_closed(&args);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(store.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["complete"], true, "{manifest}");
}

/// Runs `coxlmm args` with a stdout pipe whose reader is gone before the first line is written,
/// and checks that it neither panics nor fails.
fn with_stdout_closed(args: &[std::ffi::OsString]) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_coxlmm"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(o.status.success(), "{args:?}: {:?}: {stderr}", o.status);
}

#[test]
fn bad_pipeline_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // Not a noun of the world.
    let o = coxlmm(&["demo", "--out", out.to_str().unwrap(), "--token", "dog"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("circle, square"), "{}", text(&o));
    // tiny-llava-smol before `cargo xtask fetch` assembled it: what to run.
    let empty = dir.path().join("no-models");
    std::fs::create_dir_all(&empty).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_coxlmm"))
        .args(["demo", "--out", out.to_str().unwrap(), "--model", "smol"])
        .env("COXLMM_MODELS", &empty)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no tiny-llava-smol") && text(&o).contains("cargo xtask fetch"),
        "{}",
        text(&o)
    );
    // A folder that is not a run.
    let o = coxlmm(&["report", "--run", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not a coxlmm run folder"), "{}", text(&o));
    // An unknown method.
    let o = coxlmm(&[
        "run",
        "--model",
        "m",
        "--data",
        "folder:x",
        "--token",
        "circle",
        "--layer",
        "1",
        "--methods",
        "snmf,ica",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("ica"), "{}", text(&o));
}
