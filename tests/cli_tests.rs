//! End-to-end tests of the `coxlmm` binary: real processes, real files.

use std::path::Path;

use cox_store::{read_dictionary, write_activations, DiskDtype, Matrix};
use coxlmm::learn::FitRecord;

mod common;
use common::{coxlmm, text};

/// Token-like data with ids in the sidecar, written in f16 like the reference stores activations.
fn write_acts(path: &Path, m: usize, b: usize, poison: Option<(usize, usize)>) {
    let mut data =
        cox_snmf::synthetic::token_like(&cox_snmf::synthetic::TokenLike::reference(m, b), 5);
    if let Some((i, j)) = poison {
        data[i * b + j] = f32::NAN;
    }
    let ids: Vec<String> = (0..m).map(|i| format!("img-{i:04}")).collect();
    write_activations(
        path,
        &Matrix::new(data, m, b).unwrap(),
        DiskDtype::F16,
        &serde_json::json!({"token": "dog", "sample_ids": ids}),
    )
    .unwrap();
}

#[test]
fn learn_on_generated_data_writes_a_readable_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dict");
    let o = coxlmm(&[
        "learn",
        "--activations",
        "synthetic:300x64",
        "--k",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("learnt 8 concepts with snmf from 300 samples × 64 features"),
        "{t}"
    );
    assert!(t.contains("objective") && t.contains("sparsity"), "{t}");
    let d = read_dictionary::<FitRecord>(&dir.path().join("dict.safetensors")).unwrap();
    assert_eq!((d.concepts.rows, d.concepts.cols), (8, 64));
    assert_eq!((d.activations.rows, d.activations.cols), (300, 8));
    assert!(d.activations.data.iter().all(|&v| v >= 0.0));
    assert_eq!(d.meta.fit.lambda, Some(1.0));
    assert!(!d.meta.fit.report.objective_trace.is_empty());
    // Objective recomputed from the file: ½‖X − CD‖² + λ‖C‖₁ equals the reported one.
    let x = cox_snmf::synthetic::token_like(&cox_snmf::synthetic::TokenLike::reference(300, 64), 0);
    let mut r = 0.0f64;
    for i in 0..300 {
        for j in 0..64 {
            let mut v = x[i * 64 + j] as f64;
            for c in 0..8 {
                v -= d.activations.data[i * 8 + c] as f64 * d.concepts.data[c * 64 + j] as f64;
            }
            r += v * v;
        }
    }
    let l1: f64 = d.activations.data.iter().map(|&v| v as f64).sum();
    let obj = 0.5 * r + l1;
    let reported = d.meta.fit.report.objective.unwrap();
    assert!(
        (obj - reported).abs() < 1e-4 * reported,
        "file {obj} vs reported {reported}"
    );
}

#[test]
fn learn_every_method_from_an_f16_file_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let acts = dir.path().join("acts.safetensors");
    write_acts(&acts, 120, 32, None);
    for method in ["snmf", "pca", "kmeans", "simple"] {
        let mut bytes = vec![];
        for run in 0..2 {
            let out = dir.path().join(format!("{method}-{run}"));
            let o = coxlmm(&[
                "learn",
                "--activations",
                acts.to_str().unwrap(),
                "--method",
                method,
                "--k",
                "5",
                "--seed",
                "3",
                "--out",
                out.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{method}: {}", text(&o));
            let d = read_dictionary::<FitRecord>(
                &dir.path().join(format!("{method}-{run}.safetensors")),
            )
            .unwrap();
            assert_eq!(d.meta.fit.method.name(), method);
            assert_eq!(d.meta.sample_ids.as_ref().unwrap()[7], "img-0007");
            assert_eq!(d.meta.source.as_deref(), Some(acts.to_str().unwrap()));
            assert_eq!(d.mean.is_some(), method == "pca");
            bytes.push(
                std::fs::read(dir.path().join(format!("{method}-{run}.safetensors"))).unwrap(),
            );
        }
        assert!(bytes[0] == bytes[1], "{method}: same seed, different bytes");
    }
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let out = out.to_str().unwrap();
    // Missing file.
    let o = coxlmm(&[
        "learn",
        "--activations",
        "/nonexistent/acts.safetensors",
        "--out",
        out,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("/nonexistent/acts.safetensors"),
        "{}",
        text(&o)
    );
    // NaN in one sample: the error names the sample, its id and the feature.
    let acts = dir.path().join("nan.safetensors");
    write_acts(&acts, 50, 16, Some((17, 3)));
    let o = coxlmm(&[
        "learn",
        "--activations",
        acts.to_str().unwrap(),
        "--k",
        "4",
        "--out",
        out,
    ]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("sample 17") && t.contains("feature 3") && t.contains("img-0017"),
        "{t}"
    );
    // K larger than the sample count.
    let acts = dir.path().join("small.safetensors");
    write_acts(&acts, 6, 16, None);
    let o = coxlmm(&[
        "learn",
        "--activations",
        acts.to_str().unwrap(),
        "--k",
        "20",
        "--out",
        out,
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("lower K to at most 6"), "{}", text(&o));
    // A foreign file.
    let foreign = dir.path().join("notes.safetensors");
    std::fs::write(&foreign, "just some text, not tensors").unwrap();
    let o = coxlmm(&[
        "learn",
        "--activations",
        foreign.to_str().unwrap(),
        "--out",
        out,
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("not a valid safetensors file"),
        "{}",
        text(&o)
    );
    // Unknown method.
    let o = coxlmm(&["learn", "--method", "ica", "--out", out]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("snmf, pca, kmeans, simple"),
        "{}",
        text(&o)
    );
    // Nothing was written by the failed runs.
    assert!(!dir.path().join("d.safetensors").exists());
}

/// A negative number is read as the value of its option (not as an unknown flag) and gets the
/// clear error of the setting it breaks.
#[test]
fn negative_numbers_are_values_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    let out = out.to_str().unwrap();
    let learn = |extra: &[&str]| {
        let mut args = vec!["learn", "--activations", "synthetic:60x8", "--out", out];
        args.extend_from_slice(extra);
        coxlmm(&args)
    };
    for lambda in [["--lambda", "-1"], ["--lambda", "-0.5"]] {
        let o = learn(&[&lambda[..], &["--k", "2"]].concat());
        assert_eq!(o.status.code(), Some(1));
        let t = text(&o);
        assert!(
            !t.contains("unexpected argument")
                && t.contains(&format!("λ = {}", lambda[1]))
                && t.contains("must be finite and >= 0"),
            "{t}"
        );
    }
    // An unsigned setting given a negative number names the value and the option.
    let o = learn(&["--k", "-3"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        !t.contains("unexpected argument") && t.contains("invalid value '-3'") && t.contains("--k"),
        "{t}"
    );
    assert!(!dir.path().join("d.safetensors").exists());

    // `run` refuses a negative λ before loading the model or extracting anything.
    let run = dir.path().join("run");
    let o = coxlmm(&[
        "run",
        "--model",
        "/nonexistent/model",
        "--data",
        "folder:/nonexistent/data",
        "--token",
        "dog",
        "--layer",
        "1",
        "--lambda",
        "-1",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(
        t.contains("invalid setting lambda") && t.contains("--lambda 0 or more"),
        "{t}"
    );
}
