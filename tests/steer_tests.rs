//! End-to-end tests of `coxlmm steer` and `coxlmm causal` on the synthetic world with the committed
//! tiny model: real processes, real files, and a real effect of steering.

use std::path::Path;

use serde_json::Value;

mod common;
use common::{coxlmm, text};

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn steer_file(run: &Path, name: &str) -> Value {
    json(&run.join("steer").join(name))
}

#[test]
fn steering_a_demo_run_changes_captions_and_reaches_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let run = out.to_str().unwrap();
    let o = coxlmm(&[
        "demo", "--out", run, "--train", "400", "--test", "80", "--k", "6",
    ]);
    assert!(o.status.success(), "{}", text(&o));

    // α = 0 changes nothing.
    let o = coxlmm(&[
        "steer",
        "--run",
        run,
        "--concept",
        "0",
        "--alpha",
        "0",
        "--split",
        "test",
        "--limit",
        "3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r = steer_file(&out, "snmf-c0-atom-a0-generated.json");
    let caps = r["captions"].as_array().unwrap();
    assert_eq!(caps.len(), 3);
    for c in caps {
        assert_eq!(c["before"], c["after"]);
    }

    // A strong push at every position changes the captions, and the report shows them.
    let o = coxlmm(&[
        "steer",
        "--run",
        run,
        "--concept",
        "0",
        "--alpha",
        "8",
        "--positions",
        "all",
        "--split",
        "test",
        "--limit",
        "3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("before: ") && t.contains("after: "), "{t}");
    let r = steer_file(&out, "snmf-c0-atom-a8-all.json");
    assert_eq!(r["format"], "coxlmm-steer");
    assert_eq!(r["block"], 2);
    assert!(r["vector_norm"].as_f64().unwrap() > 0.0);
    let changed = r["captions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["before"] != c["after"])
        .count();
    assert!(changed > 0, "{r}");
    let o = coxlmm(&["report", "--run", run]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(out.join("report/concept-000.html")).unwrap();
    assert!(page.contains("<h2>Steering</h2>"), "no Steering section");
    assert!(page.contains("+8 × atom vector at block 2, all positions"));

    // The other vector sources: mean shifts by concept and by caption word, and a vector file
    // (the atom file of concept 0 written as a [1, B] matrix, so it steers like the atom at α = 1).
    for (vector, file) in [
        ("mean-shift", "snmf-c0-mean-shift-a2-all.json"),
        ("word:red", "snmf-c0-word-red-a2-all.json"),
    ] {
        let o = coxlmm(&[
            "steer",
            "--run",
            run,
            "--concept",
            "0",
            "--alpha",
            "2",
            "--positions",
            "all",
            "--vector",
            vector,
            "--split",
            "test",
            "--limit",
            "2",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(steer_file(&out, file)["vector_norm"].as_f64().unwrap() > 0.0);
    }
    let atom8 = steer_file(&out, "snmf-c0-atom-a8-all.json");
    let dict =
        cox_store::read_dictionary::<coxlmm::learn::FitRecord>(&out.join("dict/snmf.safetensors"))
            .unwrap();
    let acts = &dict.activations.data;
    let k = dict.concepts.rows;
    let pos: Vec<f64> = acts
        .iter()
        .step_by(k)
        .filter(|&&a| a > 0.0)
        .map(|&a| a as f64)
        .collect();
    let typical = (pos.iter().sum::<f64>() / pos.len() as f64) as f32;
    let b = dict.concepts.cols;
    let v: Vec<f32> = dict.concepts.data[..b]
        .iter()
        .map(|x| x * typical)
        .collect();
    let vfile = dir.path().join("v.safetensors");
    cox_store::write_activations(
        &vfile,
        &cox_store::Matrix {
            data: v,
            rows: 1,
            cols: b,
        },
        cox_store::DiskDtype::F32,
        &serde_json::json!({}),
    )
    .unwrap();
    let o = coxlmm(&[
        "steer",
        "--run",
        run,
        "--concept",
        "0",
        "--alpha",
        "8",
        "--positions",
        "all",
        "--vector",
        &format!("file:{}", vfile.display()),
        "--split",
        "test",
        "--limit",
        "3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let from_file = steer_file(&out, "snmf-c0-file-v-a8-all.json");
    assert_eq!(from_file["captions"], atom8["captions"]);

    // Bad requests are clear errors.
    let o = coxlmm(&[
        "steer",
        "--run",
        run,
        "--concept",
        "99",
        "--alpha",
        "1",
        "--split",
        "test",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("concept 99 does not exist"),
        "{}",
        text(&o)
    );
    let o = coxlmm(&[
        "steer",
        "--run",
        run,
        "--concept",
        "0",
        "--set",
        "1",
        "--method",
        "kmeans",
        "--split",
        "test",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("linear dictionary"), "{}", text(&o));

    // Causal validity: every method and control is scored; α = 0 changes no caption, so it
    // succeeds nowhere (the scenes lack the value), keeps every slot and parses.
    let o = coxlmm(&["causal", "--run", run, "--scenes", "3", "--alphas", "0,4"]);
    assert!(o.status.success(), "{}", text(&o));
    let c = json(&out.join("causal.json"));
    assert_eq!(c["format"], "coxlmm-causal");
    let summary = c["summary"].as_array().unwrap();
    for d in [
        "Semi-NMF",
        "PCA",
        "K-Means",
        "Simple",
        "random",
        "probe",
        "mean shift",
        "word probe",
    ] {
        let rows: Vec<&Value> = summary.iter().filter(|r| r["direction"] == d).collect();
        assert_eq!(rows.len(), 2, "{d} rows in {summary:?}");
        let zero = rows.iter().find(|r| r["alpha"] == 0.0).unwrap();
        assert_eq!(
            (
                zero["success"].as_f64(),
                zero["specificity"].as_f64(),
                zero["fluency"].as_f64()
            ),
            (Some(0.0), Some(1.0), Some(1.0)),
            "{d} at α = 0"
        );
        for r in rows {
            for k in ["success", "specificity", "fluency"] {
                let v = r[k].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&v), "{k} = {v}");
            }
        }
    }
    let ablation = c["ablation"].as_array().unwrap();
    assert_eq!(ablation.len(), 4, "{ablation:?}");
    for a in ablation {
        let before = a["token_before"].as_f64().unwrap();
        assert!(before > 0.5, "the unsteered captions name the token: {a}");
    }
}

/// On the committed model, the probe direction of a colour — the supervised discriminant
/// (`cox_metrics::probe_directions`) of the states after the last block that predict the first
/// object's colour word — added at the generated positions makes the model say that colour in
/// most captions that did not, and never changes the first word (predicted from the unedited prompt).
#[test]
fn the_probe_direction_of_a_colour_makes_the_tiny_model_say_it() {
    use cox_model::{
        AddDirection, Edit, EditPositions, LayerSel, Llava, LoadOptions, ResidualCapture,
    };
    use cox_synth::{generate_split, render, Split, SynthConfig};

    let dir = cox_synth::default_model_dir();
    let llava = Llava::load(dir.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let block = 2;
    let input_of = |scene: &cox_synth::Scene| {
        let img = image::DynamicImage::ImageRgb8(render(&scene.factors));
        let px = llava
            .processor
            .preprocess(&img, llava.model.device())
            .unwrap();
        llava
            .prepare(coxlmm::extract::DEFAULT_PROMPT, Some(&px))
            .unwrap()
    };
    // The first three words are `a <size> <colour>`: the colour is predicted from the row of the
    // size word, prompt_len + 1.
    let words = |text: &str| {
        text.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let cfg = SynthConfig::default();
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for scene in generate_split(&cfg, 0, Split::Train, 300).unwrap() {
        let input = input_of(&scene);
        let p = input.ids.len();
        let g = llava
            .generate(&input, 3, &ResidualCapture::new([LayerSel::Block(block)]))
            .unwrap();
        let w = words(&g.text);
        let row: Vec<f32> = g.residuals[0].get(p + 1).unwrap().to_vec1().unwrap();
        x.extend(row);
        labels.push(vec![format!("colour={}", w[2])]);
    }
    let b = x.len() / labels.len();
    let m = labels.len();
    let mean: Vec<f64> = (0..b)
        .map(|j| x.iter().skip(j).step_by(b).map(|&v| v as f64).sum::<f64>() / m as f64)
        .collect();
    let scale = (x
        .chunks_exact(b)
        .map(|r| {
            r.iter()
                .zip(&mean)
                .map(|(&v, &mu)| (v as f64 - mu).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / m as f64)
        .sqrt() as f32;
    let target = "red";
    let w = cox_metrics::probe_directions(&x, &labels, b, 1e-2, &["colour=red"]).unwrap();
    let norm = w[0].iter().map(|v| v * v).sum::<f32>().sqrt();
    let unit: Vec<f32> = w[0].iter().map(|v| v / norm).collect();

    let mut tried = 0;
    let mut now_red = 0;
    let mut first_word_kept = 0;
    for scene in generate_split(&cfg, 0, Split::Test, 40).unwrap() {
        let input = input_of(&scene);
        let p = input.ids.len();
        let before = words(
            &llava
                .generate(&input, 4, &ResidualCapture::none())
                .unwrap()
                .text,
        );
        if before[2] == target {
            continue;
        }
        let steer = ResidualCapture::none().with_edits(vec![Edit::new(
            block,
            EditPositions::Generated { prompt_len: p },
            // Four times the states' RMS distance to their mean (measured: 33 of 34 captions at
            // 4, 2 of 34 at 2, none at 1; the discriminant points along low-variance directions).
            AddDirection::new(&unit, 4.0 * scale).unwrap(),
        )]);
        let after = words(&llava.generate(&input, 4, &steer).unwrap().text);
        tried += 1;
        now_red += usize::from(after[2] == target);
        first_word_kept += usize::from(after[0] == before[0]);
    }
    assert!(tried >= 25, "only {tried} test scenes lack {target}");
    // The first word is predicted from the last prompt position, before any edited one.
    assert_eq!(first_word_kept, tried);
    assert!(
        now_red * 2 > tried,
        "the colour word became {target} in {now_red} of {tried} captions"
    );
}
