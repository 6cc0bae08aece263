//! Aggregation and rendering from the hand-written fixtures in xtask/tests/fixtures/reproduce.

use super::*;

fn fixture(name: &str) -> Metrics {
    let p = workspace_root()
        .join("xtask/tests/fixtures/reproduce")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn protocol(setting: &str) -> Protocol {
    Protocol {
        setting: setting.into(),
        model: "/m".into(),
        data: "folder:/w".into(),
        tokens: vec!["circle".into(), "square".into()],
        layer: "2".into(),
        k: 20,
        methods: "snmf,pca,kmeans,simple".into(),
        k_sweep: vec![5, 20],
        noise_images: 10,
        clip: None,
        quick: false,
        causal_scenes: 0,
        layer_stride: 1,
        world_scenes: Some([600, 150]),
    }
}

fn results() -> Results {
    let full = fixture("metrics_full.json");
    let empty = fixture("metrics_no_scores.json");
    let mut circle = TokenResults {
        main: full.clone(),
        ..Default::default()
    };
    circle.layers.insert("norm".into(), empty.clone());
    circle.layers.insert("2".into(), full.clone());
    circle.layers.insert("10".into(), empty.clone());
    circle.k_sweep.insert(20, full.clone());
    circle.k_objective.insert(
        20,
        [("snmf".to_string(), Some(1234.5))].into_iter().collect(),
    );
    circle.noise = Some(NoiseOutcome {
        images: 10,
        kept: Some(0),
        unavailable: Some("the model generated \"circle\" for 0 of 10 noise images".into()),
        metrics: None,
    });
    let square = TokenResults {
        main: empty,
        noise: Some(NoiseOutcome {
            images: 10,
            kept: Some(9),
            unavailable: None,
            metrics: Some(Metrics {
                references: coxlmm::References {
                    bertscore_top1_noise_imgs: Some(MeanStd {
                        mean: 0.3,
                        std: 0.05,
                        n: 7,
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    Results {
        format: "coxlmm-reproduce".into(),
        protocol: protocol("synthetic"),
        tokens: [
            ("circle".to_string(), circle),
            ("square".to_string(), square),
        ]
        .into_iter()
        .collect(),
        timings: vec![("total".into(), 61.0)],
        threads: 2,
    }
}

fn row<'a>(table: &'a str, prefix: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no row {prefix:?} in\n{table}"))
}

#[test]
fn table1_cells_from_metrics() {
    let t = table1(&results());
    // Columns: Rnd-Words | Noise-Imgs | Simple | PCA | K-Means | Semi-NMF | GT-captions.
    assert_eq!(
        row(&t, "| circle | BS top-1"),
        "| circle | BS top-1 | 0.200 ± 0.050 | n/a | 0.350 ± 0.050 | 0.400 ± 0.200 | \
         0.450 ± 0.150 | 0.500 ± 0.100 | 0.810 ± 0.060 |"
    );
    // CLIPScore: methods only; Rnd-Words, GT-captions and (here) Noise-Imgs unavailable.
    assert_eq!(
        row(&t, "| circle | CS top-1"),
        "| circle | CS top-1 | n/a | n/a | 0.500 ± 0.060 | 0.550 ± 0.080 | 0.580 ± 0.070 | \
         0.610 ± 0.090 | n/a |"
    );
    // Null scores and absent methods are n/a, never 0.
    // The Noise-Imgs cell comes from the noise evaluation's references; nothing else for square.
    assert_eq!(
        row(&t, "| square | BS top-1"),
        "| square | BS top-1 | n/a | 0.300 ± 0.050 | n/a | n/a | n/a | n/a | n/a |"
    );
    assert_eq!(
        row(&t, "| square | CS top-1"),
        "| square | CS top-1 | n/a | n/a | n/a | n/a | n/a | n/a | n/a |"
    );
}

#[test]
fn table2_and_recovery() {
    let r = results();
    let t = table2(&r);
    assert_eq!(
        row(&t, "| circle"),
        "| circle | 0.625 | 0.000 | 0.500 | 0.125 |"
    );
    assert_eq!(row(&t, "| square"), "| square | n/a | n/a | n/a | 0.200 |");
    let t = recovery_table(&r);
    assert_eq!(
        row(&t, "| circle"),
        "| circle | n/a / n/a | 0.700 / 0.690 | 0.800 / 0.750 | 0.900 / 0.880 | 0.950 |"
    );
    assert_eq!(
        row(&t, "| square"),
        "| square | n/a / n/a | n/a / n/a | n/a / n/a | n/a / n/a | n/a |"
    );
}

#[test]
fn layer_table_numeric_order_and_unavailable() {
    let t = layer_table(&results());
    let layers: Vec<&str> = t
        .lines()
        .skip(2)
        .map(|l| l.split('|').nth(2).unwrap().trim())
        .collect();
    assert_eq!(layers, ["2", "10", "norm"]);
    assert_eq!(
        row(&t, "| circle | 2 "),
        "| circle | 2 | 0.450 ± 0.020 | 0.300 ± 0.010 | 0.500 ± 0.100 | 0.610 ± 0.090 | 0.880 |"
    );
    assert_eq!(
        row(&t, "| circle | norm "),
        "| circle | norm | n/a | n/a | n/a | n/a | n/a |"
    );
}

#[test]
fn k_table_errors_and_objective() {
    let t = k_table(&results());
    assert_eq!(
        row(&t, "| circle | 20 "),
        "| circle | 20 | 0.250 | 0.125 | 0.375 | 1.2345e3 | 0.880 / 0.690 / 0.750 |"
    );
    assert!(!t.contains("| square |"), "square has no K sweep:\n{t}");
}

#[test]
fn render_states_what_is_unavailable_and_why() {
    let md = render(&results());
    assert!(md.contains("- Noise-Imgs for circle: the model generated \"circle\" for 0 of 10"));
    assert!(
        !md.contains("- Noise-Imgs for square"),
        "square's Noise-Imgs is available"
    );
    assert!(md.contains("**not comparable**"));
    // The paper's Semi-NMF BS for dog (docs/method.md §6.1) and the PCA overlap for cat (§6.2).
    assert!(md.contains("| dog | BS top-1 | 0.201 ± 0.04 | 0.306 ± 0.05 | 0.346 ± 0.08 | 0.405 ± 0.07 | 0.511 ± 0.11 |"));
    assert!(md.contains("| cat | 0.452 | 0.000 | 0.500 | 0.146 |"));
    assert!(md.contains("| total | 61 |"));
    assert!(
        md.contains("- circle: extract train 2"),
        "main-run steps from metrics.json"
    );
}

#[test]
fn coco_render_labels_paper_numbers_as_layout_comparable() {
    let mut r = results();
    r.protocol = protocol("coco");
    let md = render(&r);
    assert!(md.contains("# CoX-LMM reproduction: coco setting"));
    assert!(md.contains("comparable in layout, not in value"));
}

#[test]
fn a_renamed_metrics_field_is_an_error_not_an_empty_cell() {
    let p = workspace_root().join("xtask/tests/fixtures/reproduce/metrics_full.json");
    let text = std::fs::read_to_string(p)
        .unwrap()
        .replace("\"overlap\"", "\"overlap_score\"");
    let e = serde_json::from_str::<Metrics>(&text).unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
}

#[test]
fn results_json_roundtrip() {
    let r = results();
    let text = serde_json::to_string(&r).unwrap();
    let back: Results = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
}

#[test]
fn coco_without_model_or_data_fails_clearly() {
    let a = Args {
        out: "x".into(),
        setting: Setting::Coco,
        model: None,
        coco: None,
        clip: None,
        quick: false,
        work: None,
        causal_scenes: None,
    };
    let e = coco_protocol(&a).unwrap_err().to_string();
    assert!(e.contains("needs --model"), "{e}");
    let a = Args {
        model: Some("/nonexistent/llava".into()),
        ..a
    };
    let e = coco_protocol(&a).unwrap_err().to_string();
    assert!(e.contains("neither a checkpoint directory"), "{e}");
}

#[test]
fn noise_dataset_is_seeded_and_captions_name_the_token() {
    let base = std::env::temp_dir().join(format!("coxlmm-noise-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    write_noise_dataset(&a, "circle", 3, 7).unwrap();
    write_noise_dataset(&b, "circle", 3, 7).unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(a.join("captions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["captions"][0], "a circle");
    assert_eq!(lines[1]["split"], "train");
    let img = |d: &Path| std::fs::read(d.join("images/noise-00002.png")).unwrap();
    assert_eq!(img(&a), img(&b));
    let px = image::open(a.join("images/noise-00002.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(px.dimensions(), (96, 96));
    let distinct: std::collections::HashSet<u8> = px.as_raw().iter().copied().collect();
    assert!(distinct.len() > 200, "noise should use most byte values");
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn causal_table_rows_from_causal_reports() {
    use coxlmm::causal::{AblationRow, CausalOptions, CausalReport, CausalRow};
    let mut r = results();
    assert!(causal_table(&r).starts_with("Not measured in this run"));
    let mut coco = results();
    coco.protocol.world_scenes = None;
    assert!(causal_table(&coco).starts_with("Not measured in this setting"));
    r.tokens.get_mut("circle").unwrap().causal = Some(CausalReport {
        format: "coxlmm-causal".into(),
        token: "circle".into(),
        block: 2,
        options: CausalOptions::default(),
        scale: 37.2,
        factors: Vec::new(),
        summary: vec![CausalRow {
            direction: "probe".into(),
            alpha: 4.0,
            factors: 19,
            success: 0.25,
            specificity: 0.5,
            fluency: 0.75,
        }],
        ablation: vec![AblationRow {
            method: "Semi-NMF".into(),
            factors: 19,
            token_before: 0.999,
            token_after: 0.87,
            word_before: 0.99,
            word_after: 0.98,
        }],
    });
    let t = causal_table(&r);
    assert_eq!(
        row(&t, "| circle | probe"),
        "| circle | probe | 19 | n/a | n/a | n/a | 0.250 / 0.500 / 0.750 |"
    );
    assert_eq!(
        row(&t, "| circle | Semi-NMF"),
        "| circle | Semi-NMF | 19 | 0.999 → 0.870 | 0.990 → 0.980 |"
    );
    assert!(t.contains("| Token | Direction | factor values | α = 0.5 | α = 1 | α = 2 | α = 4 |"));
    assert!(render(&r).contains("## Causal validity"));
}

#[test]
fn the_smol_layer_sweep_visits_every_third_block_the_main_layer_and_norm() {
    let mut p = protocol("synthetic-smol");
    p.layer = "29".into();
    p.layer_stride = 3;
    let names = p.sweep_layers(30);
    assert_eq!(
        names,
        ["0", "3", "6", "9", "12", "15", "18", "21", "24", "27", "29", "norm"]
    );
    // Stride 1 (the synthetic setting): every block, the main layer once.
    let all = protocol("synthetic").sweep_layers(3);
    assert_eq!(all, ["0", "1", "2", "norm"]);
    // A protocol written before the field existed reads as stride 1.
    let mut v = serde_json::to_value(protocol("synthetic")).unwrap();
    v.as_object_mut().unwrap().remove("layer_stride");
    let back: Protocol = serde_json::from_value(v).unwrap();
    assert_eq!(back.layer_stride, 1);
}

#[test]
fn grounded_words_are_listed_per_concept_with_pipes_escaped() {
    let mut r = results();
    assert_eq!(words_section(&r), "", "no words, no section");
    r.tokens.get_mut("circle").unwrap().words = vec![
        (0..10).map(|i| format!("w{i}")).collect(),
        vec!["red".into(), "a|b".into()],
    ];
    let s = words_section(&r);
    assert_eq!(
        row(&s, "| circle | 0 |"),
        "| circle | 0 | w0, w1, w2, w3, w4, w5, w6, w7 |"
    );
    assert_eq!(row(&s, "| circle | 1 |"), "| circle | 1 | red, a\\|b |");
    assert!(render(&r).contains("## Grounded words of the Semi-NMF concepts"));
}

#[test]
fn the_smol_protocol_needs_the_assembled_model_and_uses_its_last_block() {
    let a = Args {
        out: "x".into(),
        setting: Setting::SyntheticSmol,
        model: Some("/nonexistent/tiny-llava-smol".into()),
        coco: None,
        clip: None,
        quick: false,
        work: None,
        causal_scenes: None,
    };
    let e = synthetic_smol_protocol(&a).unwrap_err().to_string();
    assert!(e.contains("cargo xtask fetch"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"").unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"text_config": {"num_hidden_layers": 30}}"#,
    )
    .unwrap();
    let a = Args {
        model: Some(dir.path().display().to_string()),
        ..a
    };
    let p = synthetic_smol_protocol(&a).unwrap();
    assert_eq!(
        (p.setting.as_str(), p.layer.as_str(), p.layer_stride),
        ("synthetic-smol", "29", 3)
    );
    assert_eq!(p.world_scenes, Some([1200, 300]));
    assert_eq!(p.causal_scenes, 0);
    assert_eq!(p.sweep_layers(30).len(), 12);
}
