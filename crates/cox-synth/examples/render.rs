//! Writes a contact sheet of generated scenes, in a grid with 2-pixel gaps, and prints their
//! canonical captions, so that a person can check that the scenes look right.
//!
//! ```text
//! cargo run -p cox-synth --example render -- [OUT.png] [SEED] [N] [IMAGE_SIZE] [ZOOM]
//! ```

use cox_synth::{generate_split, render, Split, SynthConfig};
use image::{Rgb, RgbImage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args
        .first()
        .cloned()
        .unwrap_or_else(|| "contact_sheet.png".into());
    let seed: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(0);
    let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(24);
    let size: u32 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(64);
    let zoom: u32 = args
        .get(4)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1)
        .max(1);

    let cfg = SynthConfig {
        image_size: size,
        ..Default::default()
    };
    let scenes = generate_split(&cfg, seed, Split::Train, n)?;
    let cols = 6u32.min(n as u32).max(1);
    let rows = (n as u32).div_ceil(cols);
    let gap = 2;
    let mut sheet = RgbImage::from_pixel(
        cols * (size + gap) + gap,
        rows * (size + gap) + gap,
        Rgb([255; 3]),
    );
    for (i, scene) in scenes.iter().enumerate() {
        let (cx, cy) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(
            &mut sheet,
            &render(&scene.factors),
            (gap + cx * (size + gap)) as i64,
            (gap + cy * (size + gap)) as i64,
        );
        println!(
            "{:>2} (row {cy}, col {cx}) {}: {}",
            i, scene.id, scene.canonical
        );
    }
    // Nearest-neighbour zoom keeps the pixels the model sees visible as pixels.
    let sheet = image::imageops::resize(
        &sheet,
        sheet.width() * zoom,
        sheet.height() * zoom,
        image::imageops::FilterType::Nearest,
    );
    sheet.save(&out)?;
    println!("wrote {out}");
    Ok(())
}
