//! Picks the most-activating samples of three concepts over eight generated images (one of them
//! missing on purpose), writes their thumbnails, grids and `visual_grounding.json` into a temporary
//! folder, and prints what was written.
//!
//! ```text
//! cargo run -p cox-ground-visual --example mas_grid
//! ```

use cox_ground_visual::{most_activating, write_visual_grounding, SampleImage, VisualParams};
use image::{Rgb, RgbImage};

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images)?;
    // Eight 64-px images, each a flat colour with a lighter square; sample 7's file is never written.
    let mut samples = Vec::new();
    for i in 0..8u8 {
        let path = images.join(format!("scene-{i}.png"));
        if i != 7 {
            let base = Rgb([30 * i, 200 - 20 * i, 100]);
            let mut img = RgbImage::from_pixel(64, 64, base);
            for y in 16..48 {
                for x in 16..48 {
                    img.put_pixel(x, y, Rgb([255, 255, 255 - 30 * i]));
                }
            }
            img.save(&path)?;
        }
        samples.push(SampleImage {
            id: format!("scene-{i}"),
            image: path,
        });
    }
    // Eight samples × three concepts, sample-major.
    #[rustfmt::skip]
    let acts = [
        0.0, 1.0, 0.2,
        0.5, 0.0, 0.9,
        2.0, 0.0, 0.0,
        0.1, 3.0, 0.0,
        0.0, 0.0, 0.0,
        1.5, 0.2, 0.4,
        0.0, 0.9, 0.0,
        0.7, 0.0, 1.1,
    ];
    let mas = most_activating(&acts, 8, 3, 3)?;
    let out_dir = dir.path().join("grounding");
    let out = write_visual_grounding(&mas, &samples, &out_dir, &VisualParams::default())?;
    for c in &out.grounding.concepts {
        let ids: Vec<String> = c
            .samples
            .iter()
            .map(|s| format!("{} ({:.1})", s.id, s.activation))
            .collect();
        println!(
            "concept {}: {}  grid {:?}",
            c.concept,
            ids.join(", "),
            c.grid
        );
    }
    for p in &out.problems {
        println!("problem: {}", p.reason);
    }
    Ok(())
}
