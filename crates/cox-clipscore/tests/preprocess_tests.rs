//! OpenAI CLIP preprocessing against Pillow (`fixtures/preprocess/make_fixture.py`).
//!
//! Tolerance: the resampler is a port of Pillow's fixed-point bicubic `ImagingResample`, so the
//! 8-bit image after resize + centre crop must equal Pillow's exactly (0 grey levels). The
//! normalised values then differ only by f32 rounding of `(x / 255 − mean) / std` (numpy and
//! Rust evaluate the same f32 expression), asserted to 1e-5.

use std::path::PathBuf;

use cox_clipscore::preprocess::{center_crop, clip_preprocess, resize_bicubic_pil, resized_size};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/preprocess")
}

#[test]
fn resize_and_crop_match_pillow_exactly() {
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("cases.json")).unwrap())
            .unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let input = image::open(fixture_dir().join(case["input"].as_str().unwrap()))
            .unwrap()
            .to_rgb8();
        let expected = image::open(fixture_dir().join(case["crop"].as_str().unwrap()))
            .unwrap()
            .to_rgb8();
        let (w, h) = resized_size(input.width(), input.height(), 224);
        let ours = center_crop(&resize_bicubic_pil(&input, w, h), 224);
        let max_diff = ours
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .map(|(&a, &b)| (i16::from(a) - i16::from(b)).abs())
            .max()
            .unwrap();
        let differing = ours
            .as_raw()
            .iter()
            .zip(expected.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            (max_diff, differing),
            (0, 0),
            "{name}: {differing} channel values differ from Pillow, by up to {max_diff}"
        );

        let px = clip_preprocess(&image::DynamicImage::ImageRgb8(input), 224).unwrap();
        let plane = 224 * 224;
        for probe in case["probes"].as_array().unwrap() {
            let p: Vec<f64> = probe
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let (c, y, x) = (p[0] as usize, p[1] as usize, p[2] as usize);
            let got = px[c * plane + y * 224 + x];
            assert!(
                (f64::from(got) - p[3]).abs() < 1e-5,
                "{name} [{c},{y},{x}]: {got} vs {}",
                p[3]
            );
        }
        for (c, m) in case["channel_mean"].as_array().unwrap().iter().enumerate() {
            let ours: f64 = px[c * plane..(c + 1) * plane]
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / plane as f64;
            assert!(
                (ours - m.as_f64().unwrap()).abs() < 1e-5,
                "{name} channel {c} mean"
            );
        }
    }
}

#[test]
fn resize_rule_is_torchvision_short_side() {
    // Short side to 224, long side int(224 * long / short).
    assert_eq!(resized_size(640, 480, 224), (298, 224));
    assert_eq!(resized_size(480, 640, 224), (224, 298));
    assert_eq!(resized_size(224, 224, 224), (224, 224));
    assert_eq!(resized_size(225, 301, 224), (224, 299));
}

#[test]
fn center_crop_rounds_half_to_even_like_python() {
    // Width 5 → 2: (5 − 2) / 2 = 1.5 → round → 2 (HF's floor would give 1).
    let img = image::RgbImage::from_fn(5, 2, |x, _| image::Rgb([x as u8, 0, 0]));
    let c = center_crop(&img, 2);
    assert_eq!(c.get_pixel(0, 0).0[0], 2);
    // Width 7 → 2: 2.5 → 2.
    let img = image::RgbImage::from_fn(7, 2, |x, _| image::Rgb([x as u8, 0, 0]));
    assert_eq!(center_crop(&img, 2).get_pixel(0, 0).0[0], 2);
}

#[test]
fn constant_image_normalises_to_mean_std() {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
        300,
        200,
        image::Rgb([255, 128, 0]),
    ));
    let px = clip_preprocess(&img, 224).unwrap();
    let expect = [
        (1.0 - 0.481_454_66) / 0.268_629_54,
        (128.0 / 255.0 - 0.457_827_5) / 0.261_302_6,
        (0.0 - 0.408_210_73) / 0.275_777_1,
    ];
    for c in 0..3 {
        assert!(px[c * 224 * 224..(c + 1) * 224 * 224]
            .iter()
            .all(|&v| (v - expect[c] as f32).abs() < 1e-6));
    }
    assert!(clip_preprocess(&image::DynamicImage::new_rgb8(0, 5), 224).is_err());
}
