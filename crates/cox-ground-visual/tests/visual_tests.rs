//! Tests of cox-ground-visual: MAS selection on hand-checked cases, thumbnails, grids, byte-stable
//! PNGs, and the writer's handling of missing and corrupt images.

use cox_ground_visual::{
    encode_png, grid, most_activating, placeholder, sanitise_id, thumbnail, write_visual_grounding,
    Mas, SampleImage, VisualError, VisualGrounding, VisualParams, DEFAULT_N_MAS,
    VISUAL_GROUNDING_FILE,
};
use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};

fn order(list: &[Mas]) -> Vec<usize> {
    list.iter().map(|m| m.sample).collect()
}

/// `check(acts, m, k, n, expected sample orders per concept)`.
fn check(acts: &[f32], m: usize, k: usize, n: usize, expected: &[&[usize]]) {
    let mas = most_activating(acts, m, k, n).unwrap();
    let got: Vec<Vec<usize>> = mas.iter().map(|l| order(l)).collect();
    let want: Vec<Vec<usize>> = expected.iter().map(|e| e.to_vec()).collect();
    assert_eq!(got, want, "acts {acts:?}, m {m}, k {k}, n {n}");
    // The activations reported are the matrix entries of those samples.
    for (c, list) in mas.iter().enumerate() {
        for e in list {
            assert_eq!(e.activation, acts[e.sample * k + c]);
        }
    }
}

#[test]
fn mas_hand_checked_cases() {
    // 4 samples × 2 concepts: columns [3, 1, 4, 1] and [0, 5, 0, 2].
    let acts = [3.0, 0.0, 1.0, 5.0, 4.0, 0.0, 1.0, 2.0];
    check(&acts, 4, 2, 2, &[&[2, 0], &[1, 3]]);
    check(&acts, 4, 2, 1, &[&[2], &[1]]);
    // Ties: column 0 has 1.0 at samples 1 and 3 (lower index first); column 1 has 0 at 0 and 2.
    check(&acts, 4, 2, 4, &[&[2, 0, 1, 3], &[1, 3, 0, 2]]);
    // n > M: every sample, still ordered.
    check(&acts, 4, 2, 10, &[&[2, 0, 1, 3], &[1, 3, 0, 2]]);
    // n = 0: empty lists, one per concept.
    check(&acts, 4, 2, 0, &[&[], &[]]);
    // K = 1.
    check(&[0.5, -1.0, 2.0, 0.5, 0.5], 5, 1, 3, &[&[2, 0, 3]]);
    // All equal: sample order.
    check(&[7.0; 6], 6, 1, 4, &[&[0, 1, 2, 3]]);
    // -0.0 and 0.0 tie (lower index first); infinities rank at the ends.
    check(
        &[0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY],
        4,
        1,
        4,
        &[&[2, 0, 1, 3]],
    );
    check(&[-0.0, 0.0], 2, 1, 2, &[&[0, 1]]);
    // M = 0.
    check(&[], 0, 3, 5, &[&[], &[], &[]]);
    assert_eq!(DEFAULT_N_MAS, 5);
}

#[test]
fn mas_agrees_with_a_full_sort_on_a_larger_matrix() {
    // A deterministic pseudo-random 300 × 4 matrix with many repeated values (ties).
    let (m, k) = (300, 4);
    let acts: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919 + 13) % 97) as f32 / 8.0)
        .collect();
    let mas = most_activating(&acts, m, k, 25).unwrap();
    for c in 0..k {
        let mut all: Vec<usize> = (0..m).collect();
        // Independent reference: a stable sort by descending activation keeps index order in ties.
        all.sort_by(|&a, &b| acts[b * k + c].partial_cmp(&acts[a * k + c]).unwrap());
        assert_eq!(order(&mas[c]), all[..25].to_vec(), "concept {c}");
    }
}

#[test]
fn mas_nan_is_an_error_naming_the_entry() {
    let acts = [1.0, 2.0, 3.0, f32::NAN];
    match most_activating(&acts, 2, 2, 1) {
        Err(VisualError::NaN { sample, concept }) => assert_eq!((sample, concept), (1, 1)),
        other => panic!("expected a NaN error, got {other:?}"),
    }
}

#[test]
#[should_panic(expected = "expected 3 samples × 2 concepts")]
fn mas_shape_mismatch_panics() {
    let _ = most_activating(&[1.0; 5], 3, 2, 1);
}

#[test]
fn thumbnail_resizes_short_side_and_centre_crops() {
    // 40 × 20: left half red, right half blue, with a green column at x = 19..21 (the centre).
    let img = RgbImage::from_fn(40, 20, |x, _| match x {
        19..=20 => Rgb([0, 255, 0]),
        0..=18 => Rgb([255, 0, 0]),
        _ => Rgb([0, 0, 255]),
    });
    // Downscale by 2: 20 × 10, crop the centre 10 × 10 (x 5..15): red, green centre, blue.
    let t = thumbnail(&DynamicImage::ImageRgb8(img.clone()), 10);
    assert_eq!(t.dimensions(), (10, 10));
    assert_eq!(t.get_pixel(0, 5).0, [255, 0, 0]);
    assert_eq!(t.get_pixel(9, 5).0, [0, 0, 255]);
    let mid = t.get_pixel(5, 5).0;
    assert!(
        mid[1] > 100,
        "centre column should be green-ish, got {mid:?}"
    );

    // A 4 × 4 checkerboard upscaled to 8: nearest-neighbour, so every source pixel becomes an
    // exact 2 × 2 block (no blur).
    let board = RgbImage::from_fn(4, 4, |x, y| {
        if (x + y) % 2 == 0 {
            Rgb([0, 0, 0])
        } else {
            Rgb([255, 255, 255])
        }
    });
    let up = thumbnail(&DynamicImage::ImageRgb8(board.clone()), 8);
    for y in 0..8 {
        for x in 0..8 {
            assert_eq!(
                up.get_pixel(x, y),
                board.get_pixel(x / 2, y / 2),
                "({x},{y})"
            );
        }
    }
    // The same side: unchanged.
    assert_eq!(thumbnail(&DynamicImage::ImageRgb8(board.clone()), 4), board);

    // Transparent pixels are composited over white; half-transparent black is mid grey.
    let rgba = RgbaImage::from_fn(2, 2, |x, _| {
        if x == 0 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([0, 0, 0, 128])
        }
    });
    let flat = thumbnail(&DynamicImage::ImageRgba8(rgba), 2);
    assert_eq!(flat.get_pixel(0, 0).0, [255, 255, 255]);
    assert_eq!(flat.get_pixel(1, 0).0, [127, 127, 127]);
}

#[test]
fn grid_dimensions_and_placement() {
    let tile = |v: u8| RgbImage::from_pixel(6, 4, Rgb([v, v, v]));
    let tiles: Vec<RgbImage> = (0..7).map(|i| tile(10 * i as u8)).collect();
    // 7 tiles in rows of 3: 3 columns, 3 rows; 3·6 + 4·2 = 26 wide, 3·4 + 4·2 = 20 high.
    let g = grid(&tiles, 3, 2);
    assert_eq!(g.dimensions(), (26, 20));
    // Tile 4 is row 1, column 1: x = 2 + 1·8 = 10, y = 2 + 1·6 = 8.
    assert_eq!(g.get_pixel(10, 8).0, [40, 40, 40]);
    assert_eq!(g.get_pixel(15, 11).0, [40, 40, 40]);
    // Padding and the empty cells of the last row are white.
    assert_eq!(g.get_pixel(0, 0).0, [255, 255, 255]);
    assert_eq!(g.get_pixel(9, 8).0, [255, 255, 255]);
    assert_eq!(g.get_pixel(12, 16).0, [255, 255, 255]);
    // Fewer tiles than columns: only as wide as needed.
    assert_eq!(grid(&tiles[..2], 5, 1).dimensions(), (2 * 6 + 3, 4 + 2));
    // No padding.
    assert_eq!(grid(&tiles[..5], 5, 0).dimensions(), (30, 4));
}

#[test]
fn png_bytes_are_identical_for_identical_pixels() {
    let img = RgbImage::from_fn(37, 23, |x, y| {
        Rgb([(x * 7) as u8, (y * 11) as u8, (x ^ y) as u8])
    });
    let a = encode_png(&img).unwrap();
    let b = encode_png(&img.clone()).unwrap();
    assert_eq!(a, b);
    // The bytes decode back to the same pixels.
    let back = image::load_from_memory(&a).unwrap().to_rgb8();
    assert_eq!(back, img);
    // A different pixel gives different bytes.
    let mut other = img.clone();
    other.put_pixel(0, 0, Rgb([1, 2, 3]));
    assert_ne!(encode_png(&other).unwrap(), a);
}

/// Writes `n` 64-px PNG scenes, each a distinct flat colour; returns their samples.
fn scenes(dir: &std::path::Path, n: usize) -> Vec<SampleImage> {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    (0..n)
        .map(|i| {
            let path = dir.join("images").join(format!("s{i}.png"));
            RgbImage::from_pixel(64, 64, Rgb([20 * i as u8, 100, 200 - 10 * i as u8]))
                .save(&path)
                .unwrap();
            SampleImage {
                id: format!("train-{i:06}"),
                image: path,
            }
        })
        .collect()
}

#[test]
fn writer_writes_thumbs_grids_and_json_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let samples = scenes(dir.path(), 6);
    // 6 samples × 2 concepts.
    let acts = [
        0.0, 1.0, //
        5.0, 0.0, //
        4.0, 2.0, //
        0.0, 3.0, //
        3.0, 0.0, //
        1.0, 0.5,
    ];
    let mas = most_activating(&acts, 6, 2, 3).unwrap();
    let params = VisualParams::default();
    let run = |name: &str| {
        let out_dir = dir.path().join(name);
        let out = write_visual_grounding(&mas, &samples, &out_dir, &params).unwrap();
        (out_dir, out)
    };
    let (a, out) = run("a");
    let (b, _) = run("b");
    assert!(out.problems.is_empty());
    let c0 = &out.grounding.concepts[0];
    assert_eq!(c0.concept, 0);
    assert_eq!(order_of(&c0.samples), [1, 2, 4]);
    assert_eq!(c0.samples[0].id, "train-000001");
    assert_eq!(c0.samples[0].activation, 5.0);
    assert_eq!(
        c0.samples[0].thumbnail.as_deref(),
        Some("thumbs/train-000001.png")
    );
    assert_eq!(c0.grid.as_deref(), Some("concept-000-grid.png"));
    assert_eq!(order_of(&out.grounding.concepts[1].samples), [3, 2, 0]);

    // Thumbnails: 96 × 96, nearest-upscaled flat colour, exactly the source colour.
    let t = image::open(a.join("thumbs/train-000002.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(t.dimensions(), (96, 96));
    assert_eq!(t.get_pixel(50, 50).0, [40, 100, 180]);
    // Grid: 3 tiles of 96 in one row with 4 px padding.
    let g = image::open(a.join("concept-001-grid.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(g.dimensions(), (3 * 96 + 4 * 4, 96 + 2 * 4));
    assert_eq!(g.get_pixel(4, 4).0, [60, 100, 170]); // sample 3 first

    // Five distinct samples → five thumbnails; identical bytes in both runs for every file.
    let mut files: Vec<String> = std::fs::read_dir(a.join("thumbs"))
        .unwrap()
        .map(|e| format!("thumbs/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");
    files.extend(
        [
            "concept-000-grid.png",
            "concept-001-grid.png",
            VISUAL_GROUNDING_FILE,
        ]
        .map(String::from),
    );
    for f in &files {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between runs"
        );
    }
    // The JSON round-trips to the returned records.
    let json: VisualGrounding =
        serde_json::from_slice(&std::fs::read(a.join(VISUAL_GROUNDING_FILE)).unwrap()).unwrap();
    assert_eq!(json, out.grounding);
}

fn order_of(s: &[cox_ground_visual::MasImage]) -> Vec<usize> {
    s.iter().map(|m| m.sample).collect()
}

#[test]
fn missing_and_corrupt_images_are_recorded_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut samples = scenes(dir.path(), 4);
    // Sample 1: a file that is not an image; sample 2: a truncated PNG; sample 3: no file.
    let garbage = dir.path().join("images/garbage.png");
    std::fs::write(&garbage, b"this is not a PNG at all").unwrap();
    samples[1].image = garbage.clone();
    let truncated = dir.path().join("images/truncated.png");
    let bytes = std::fs::read(&samples[2].image).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    samples[2].image = truncated.clone();
    let missing = dir.path().join("images/missing.png");
    samples[3].image = missing.clone();

    // One concept, every sample: 3 > 2 > 1 > 0 by activation.
    let acts = [0.1, 0.2, 0.3, 0.4];
    let mas = most_activating(&acts, 4, 1, 4).unwrap();
    let out_dir = dir.path().join("out");
    let out = write_visual_grounding(&mas, &samples, &out_dir, &VisualParams::default()).unwrap();

    let problem_samples: Vec<usize> = out.problems.iter().map(|p| p.sample).collect();
    assert_eq!(problem_samples, [1, 2, 3]);
    for (p, path) in out.problems.iter().zip([&garbage, &truncated, &missing]) {
        assert_eq!(&p.path, path);
        assert!(
            p.reason.contains(&path.display().to_string()),
            "{}",
            p.reason
        );
    }
    assert!(
        out.problems[1].reason.contains("truncated"),
        "{}",
        out.problems[1].reason
    );
    assert!(
        out.problems[2].reason.contains("cannot read"),
        "{}",
        out.problems[2].reason
    );
    let recs = &out.grounding.concepts[0].samples;
    assert_eq!(order_of(recs), [3, 2, 1, 0]);
    for r in &recs[..3] {
        assert!(r.thumbnail.is_none());
        assert!(
            r.error.as_deref().is_some_and(|e| e.contains(&r.image)),
            "{r:?}"
        );
    }
    assert_eq!(
        recs[3].thumbnail.as_deref(),
        Some("thumbs/train-000000.png")
    );
    assert!(recs[3].error.is_none());
    assert!(!out_dir.join("thumbs/train-000003.png").exists());

    // The grid still has four tiles: three placeholders, then the good image.
    let g = image::open(out_dir.join("concept-000-grid.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(g.dimensions(), (4 * 96 + 5 * 4, 96 + 8));
    let ph = placeholder(96);
    assert_eq!(g.get_pixel(4 + 20, 4 + 50), ph.get_pixel(20, 50));
    assert_eq!(g.get_pixel(4 + 3 * 100 + 20, 4 + 50).0, [0, 100, 200]);
    // The JSON records the error too.
    let json = std::fs::read_to_string(out_dir.join(VISUAL_GROUNDING_FILE)).unwrap();
    assert!(json.contains("cannot read image"), "{json}");
}

#[test]
fn file_names_are_sanitised_and_unique() {
    assert_eq!(sanitise_id(""), "_");
    assert_eq!(sanitise_id(".."), "_.");
    assert_eq!(
        sanitise_id("COCO_val2014_000000042.jpg"),
        "COCO_val2014_000000042.jpg"
    );
    assert_eq!(sanitise_id(&"x".repeat(200)).len(), 80);

    let dir = tempfile::tempdir().unwrap();
    let mut samples = scenes(dir.path(), 3);
    // "a/b", "a_b" and "A_B" all sanitise to a_b (the last case-insensitively).
    samples[0].id = "a/b".into();
    samples[1].id = "a_b".into();
    samples[2].id = "A_B".into();
    let mas = most_activating(&[1.0, 2.0, 3.0], 3, 1, 3).unwrap();
    let out = write_visual_grounding(&mas, &samples, dir.path(), &VisualParams::default()).unwrap();
    let mut thumbs: Vec<(usize, String)> = out.grounding.concepts[0]
        .samples
        .iter()
        .map(|s| (s.sample, s.thumbnail.clone().unwrap()))
        .collect();
    thumbs.sort();
    assert_eq!(
        thumbs,
        [
            (0, "thumbs/a_b.png".to_string()),
            (1, "thumbs/a_b-1.png".to_string()),
            (2, "thumbs/A_B-2.png".to_string())
        ]
    );
    for (_, t) in &thumbs {
        assert!(dir.path().join(t).exists(), "{t}");
    }
}
