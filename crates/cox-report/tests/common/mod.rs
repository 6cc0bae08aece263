//! A report with `k` concepts and real PNG thumbnails, shared by the report tests and the browser
//! test (`tests/report_browser_tests.rs` at the workspace root includes this file by path).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use cox_report::{
    coactivation, Cell, ConceptReport, ExplainedConcept, ExplainedImage, FactorMatch, ImageRef,
    Plots, ReportData, RunSettings, Table, TableRow, WordLogit,
};
use image::{Rgb, RgbImage};

const COLOURS: [[u8; 3]; 7] = [
    [220, 38, 38],
    [22, 163, 74],
    [37, 99, 235],
    [234, 179, 8],
    [147, 51, 234],
    [249, 115, 22],
    [245, 245, 245],
];
const WORDS: [&str; 12] = [
    "red", "green", "blue", "yellow", "purple", "orange", "white", "circle", "square", "star",
    "left", "right",
];

/// A 96-px scene: a background and a centred square whose colour depends on `i`.
pub fn scene(i: usize) -> RgbImage {
    let bg = [
        [30, 41, 59],
        [132, 204, 22],
        [125, 211, 252],
        [253, 230, 138],
    ][i % 4];
    let fg = COLOURS[i % COLOURS.len()];
    let r = 18 + (i % 3) as u32 * 8;
    RgbImage::from_fn(96, 96, |x, y| {
        if x.abs_diff(48) < r && y.abs_diff(48) < r {
            Rgb(fg)
        } else {
            Rgb(bg)
        }
    })
}

/// The images of samples `0..n` under `dir` (absolute paths), written as PNGs.
pub fn write_scenes(dir: &Path, n: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let p = dir.join(format!("sample-{i:03}.png"));
            scene(i).save(&p).unwrap();
            p
        })
        .collect()
}

/// The number of `<img>` elements the index shows for [`report`]: 5 per concept card, plus one per
/// explained image.
pub fn index_images(k: usize, explained: usize) -> usize {
    5 * k + explained
}

/// A report of `k` concepts over `m = 40` training samples whose thumbnails are the absolute
/// paths `images` (at least 40), with `explained` explained images, tables, plots and a
/// co-activation matrix.
pub fn report(k: usize, images: &[PathBuf], explained: usize) -> ReportData {
    let m = 40;
    assert!(images.len() >= m);
    // Activations: concept c fires on samples s with s % k == c (strongly) and weakly on s+1.
    let mut acts = vec![0.0f32; m * k];
    for s in 0..m {
        let c = s % k;
        acts[s * k + c] = 1.0 + (s as f32) / 10.0;
        acts[s * k + (c + 1) % k] += 0.25;
    }
    let total: f64 = acts.iter().map(|&a| a as f64).sum();
    let concepts = (0..k)
        .map(|c| {
            let column: Vec<f32> = (0..m).map(|s| acts[s * k + c]).collect();
            let mut order: Vec<usize> = (0..m).collect();
            order.sort_by(|&a, &b| column[b].total_cmp(&column[a]).then(a.cmp(&b)));
            let img = |s: usize| ImageRef {
                sample_id: format!("train-{s:06}"),
                thumbnail: Some(images[s].clone()),
                activation: Some(column[s]),
                caption: Some(format!("a {} square on a background", WORDS[s % 7])),
                error: None,
            };
            ConceptReport {
                index: c,
                words: (0..6)
                    .map(|j| WORDS[(c + j) % WORDS.len()].to_string())
                    .collect(),
                word_logits: (0..12)
                    .map(|j| WordLogit {
                        word: WORDS[(c + j) % WORDS.len()].to_string(),
                        logit: 14.0 - j as f32 * 0.9,
                    })
                    .collect(),
                activation_share: Some(column.iter().map(|&a| a as f64).sum::<f64>() / total),
                mas: order.iter().take(5).map(|&s| img(s)).collect(),
                top_images: order.iter().take(20).map(|&s| img(s)).collect(),
                activations: column,
                factor: (c % 2 == 0).then(|| FactorMatch {
                    factor: format!("colour={}", WORDS[c % 7]),
                    auc: 0.9 + c as f64 / 1000.0,
                }),
                steering: Vec::new(),
            }
        })
        .collect();
    ReportData {
        title: "Concepts of “square” <synthetic> & co".into(),
        settings: RunSettings {
            model: Some("tiny-llava-synth".into()),
            layer: Some("2".into()),
            token: Some("square".into()),
            method: Some("snmf".into()),
            k: Some(k),
            lambda: Some(1.0),
            seed: Some(0),
            train_samples: Some(m),
            test_samples: Some(explained),
            skipped_samples: Some(3),
            dataset: Some("folder:/data/synth".into()),
            timings: vec![("extract".into(), 12.5), ("fit".into(), 0.42)],
            extra: vec![("coxlmm".into(), "0.1.0".into())],
        },
        tables: vec![Table {
            caption: "Test metrics".into(),
            columns: vec![
                "Semi-NMF".into(),
                "PCA".into(),
                "K-Means".into(),
                "Rnd-Words".into(),
            ],
            rows: vec![
                TableRow {
                    name: "CLIPScore top-1".into(),
                    cells: vec![
                        Cell::mean_std(0.61, 0.09),
                        Cell::mean_std(0.58, 0.08),
                        Cell::mean_std(0.55, 0.1),
                        Cell::mean_std(0.52, 0.05),
                    ],
                    higher_is_better: Some(true),
                    note: Some("test split".into()),
                },
                TableRow {
                    name: "Overlap".into(),
                    cells: vec![
                        Cell::num(0.086),
                        Cell::num(0.004),
                        Cell::num(0.501),
                        Cell::Empty,
                    ],
                    higher_is_better: Some(false),
                    note: None,
                },
                TableRow {
                    name: "Recovery AUC".into(),
                    cells: vec![Cell::num(0.93), Cell::Text("n/a".into())],
                    higher_is_better: None,
                    note: None,
                },
            ],
            decimals: None,
        }],
        concepts,
        plots: Plots {
            objective_trace: (0..60)
                .map(|i| 900.0 + 4000.0 / (1.0 + i as f64).powi(2))
                .collect(),
            recon_error_vs_k: vec![(5, 0.71), (10, 0.62), (20, 0.55), (40, 0.50)],
            coactivation: Some(coactivation(&acts, m, k)),
        },
        explained: (0..explained)
            .map(|e| {
                let s = (e * 7) % m;
                ExplainedImage {
                    image: ImageRef {
                        sample_id: format!("test-{e:06}"),
                        thumbnail: Some(images[s].clone()),
                        activation: None,
                        caption: Some(format!("a {} square on the left", WORDS[s % 7])),
                        error: None,
                    },
                    token_generated: e % 3 != 2,
                    references: vec!["a square".into(), "one square shape".into()],
                    concepts: (0..3)
                        .map(|j| ExplainedConcept {
                            concept: (s + j) % k,
                            activation: 1.5 - j as f32 * 0.4,
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}
