//! Where a checkpoint's shape errors are: greedy captions of held-out test scenes, shape accuracy
//! broken down by object size and by the number of objects in the scene, and the commonest
//! confusions.
//!
//! `cargo run --release -p cox-train --example shape_errors -- [MODEL_DIR] [N]`
//! (default: the committed checkpoint, 400 scenes).
use std::collections::BTreeMap;

use cox_synth::{canonical_caption, generate_split, Split, SynthConfig};
use cox_train::{caption_scene, parse_caption};

fn main() -> cox_train::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let model = a.get(1).map_or(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cox-synth/assets/tiny-llava-synth"
        ),
        String::as_str,
    );
    let n: usize = a.get(2).map_or(400, |s| s.parse().expect("N: a number"));
    let llava = cox_model::Llava::load(model, &Default::default())?;
    let scenes = generate_split(&SynthConfig::default(), 0, Split::Test, n)?;
    // (right, total) by "size/objects-in-scene".
    let mut cells: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut confusions: BTreeMap<(String, String), usize> = BTreeMap::new();
    // Wrong shapes that name another object of the same scene (a binding error rather than a
    // misread shape).
    let (mut wrong, mut borrowed) = (0usize, 0usize);
    for s in &scenes {
        let truth = parse_caption(&canonical_caption(&s.factors));
        let (text, _) = caption_scene(&llava, &s.factors, 64)?;
        let got = parse_caption(&text);
        let count = truth.objects.len();
        for (i, t) in truth.objects.iter().enumerate() {
            let g = got.objects.get(i).and_then(|o| o.shape.clone());
            let size = t.size.clone().unwrap_or_default();
            let ok = g == t.shape;
            for key in [
                format!("{size} / {count} object(s)"),
                format!("{size} / all"),
                "all".to_string(),
            ] {
                let c = cells.entry(key).or_default();
                c.0 += usize::from(ok);
                c.1 += 1;
            }
            if !ok {
                wrong += 1;
                let others = truth
                    .objects
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != i && o.shape.is_some() && o.shape == g);
                borrowed += usize::from(others);
                let from = format!("{size} {}", t.shape.clone().unwrap_or_default());
                *confusions
                    .entry((from, g.unwrap_or_else(|| "-".into())))
                    .or_default() += 1;
            }
        }
    }
    println!("shape accuracy ({n} test scenes of world seed 0)");
    for (k, (r, t)) in &cells {
        println!(
            "  {k:24} {:6.1} %  ({r}/{t})",
            100.0 * *r as f64 / *t as f64
        );
    }
    println!(
        "wrong shapes naming another object of the scene: {borrowed} of {wrong} (binding errors)"
    );
    let mut conf: Vec<_> = confusions.into_iter().collect();
    conf.sort_by_key(|c| std::cmp::Reverse(c.1));
    println!("commonest confusions (truth -> caption):");
    for ((from, to), c) in conf.iter().take(12) {
        println!("  {from:16} -> {to:10} {c}");
    }
    Ok(())
}
