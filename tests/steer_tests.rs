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

    // Causal validity: a probe direction of a colour makes the model name that colour.
    let o = coxlmm(&["causal", "--run", run, "--scenes", "4", "--alphas", "2"]);
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
    ] {
        assert!(
            summary.iter().any(|r| r["direction"] == d),
            "no {d} row in {summary:?}"
        );
    }
    for r in summary {
        for k in ["success", "specificity", "fluency"] {
            let v = r[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} = {v}");
        }
    }
    // Per colour value: the probe's success (share of captions whose circle now has the colour).
    let colour_success: Vec<f64> = c["factors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["factor"].as_str().unwrap().starts_with("colour="))
        .flat_map(|f| f["steered"].as_array().unwrap().clone())
        .filter(|d| d["direction"] == "probe")
        .map(|d| d["scores"]["success"].as_f64().unwrap())
        .collect();
    assert!(!colour_success.is_empty());
    let mean = colour_success.iter().sum::<f64>() / colour_success.len() as f64;
    assert!(
        mean > 0.5,
        "probe colour steering succeeded in {mean:.2} of captions"
    );
}
