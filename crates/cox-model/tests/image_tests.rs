//! Image decoding, colour conversion and CLIP preprocessing.

use std::path::{Path, PathBuf};

use candle_core::Device;
use cox_model::processor::{ImageProcessor, ImageProcessorConfig, CLIP_MEAN, CLIP_STD};
use cox_model::Error;
use image::{DynamicImage, ImageBuffer, Luma, LumaA, Rgb, Rgba};

fn processor() -> ImageProcessor {
    ImageProcessor::new(ImageProcessorConfig::default())
}

fn write_png(dir: &Path, name: &str, img: &DynamicImage) -> PathBuf {
    let p = dir.join(name);
    img.save_with_format(&p, image::ImageFormat::Png).unwrap();
    p
}

fn expect_image_error(r: cox_model::Result<DynamicImage>, path: &Path, needle: &str) {
    match r {
        Err(Error::Image { path: p, msg }) => {
            assert_eq!(p, path);
            assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
            let shown = Error::Image { path: p, msg }.to_string();
            assert!(shown.contains(&path.display().to_string()));
        }
        other => panic!("expected an image error, got {other:?}"),
    }
}

/// The `[3, H, W]` values an independent computation expects: `(v / 255 - mean) / std`.
fn expected(pixels: &[[u8; 3]], h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; 3 * h * w];
    for (i, px) in pixels.iter().enumerate() {
        for c in 0..3 {
            out[c * h * w + i] = (px[c] as f32 / 255.0 - CLIP_MEAN[c]) / CLIP_STD[c];
        }
    }
    out
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() < 1e-5, "element {i}: {x} vs {y}");
    }
}

#[test]
fn rescale_and_normalise_a_2x2_image() {
    let px = [[0u8, 128, 255], [10, 20, 30], [255, 255, 255], [1, 2, 3]];
    let img = ImageBuffer::from_fn(2, 2, |x, y| Rgb(px[(y * 2 + x) as usize]));
    let p = ImageProcessor::new(ImageProcessorConfig {
        do_resize: false,
        do_center_crop: false,
        ..ImageProcessorConfig::default()
    });
    let (v, h, w) = p.preprocess_to_vec(&DynamicImage::ImageRgb8(img)).unwrap();
    assert_eq!((h, w), (2, 2));
    close(&v, &expected(&px, 2, 2));
}

#[test]
fn centre_crop_takes_the_middle_of_a_4x4_image() {
    let img = ImageBuffer::from_fn(4, 4, |x, y| Rgb([(x * 10) as u8, (y * 10) as u8, 7]));
    let p = ImageProcessor::new(ImageProcessorConfig {
        do_resize: false,
        crop_size: (2, 2),
        ..ImageProcessorConfig::default()
    });
    let t = p
        .preprocess(&DynamicImage::ImageRgb8(img), &Device::Cpu)
        .unwrap();
    assert_eq!(t.dims(), &[1, 3, 2, 2]);
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    let px = [[10, 10, 7], [20, 10, 7], [10, 20, 7], [20, 20, 7]];
    close(&v, &expected(&px, 2, 2));
}

#[test]
fn centre_crop_pads_with_zeros_when_smaller() {
    let img = ImageBuffer::from_pixel(1, 1, Rgb([255u8, 255, 255]));
    let p = ImageProcessor::new(ImageProcessorConfig {
        do_resize: false,
        crop_size: (3, 3),
        do_normalize: false,
        ..ImageProcessorConfig::default()
    });
    let (v, h, w) = p.preprocess_to_vec(&DynamicImage::ImageRgb8(img)).unwrap();
    assert_eq!((h, w), (3, 3));
    // Only the centre is the image; the rest is zero padding.
    assert!((v[4] - 1.0).abs() < 1e-6 && v[0] == 0.0 && v[8] == 0.0);
}

#[test]
fn resize_follows_hf_shortest_edge_rule() {
    let c = ImageProcessorConfig {
        shortest_edge: 336,
        do_center_crop: false,
        ..ImageProcessorConfig::default()
    };
    // (height, width) in, (height, width) out, long side = int(336 * long / short).
    for ((h, w), out) in [
        ((480, 640), (336, 448)),
        ((640, 480), (448, 336)),
        ((333, 500), (336, 504)),
        ((336, 336), (336, 336)),
        ((10, 1000), (336, 33600)),
    ] {
        assert_eq!(c.output_size(h, w), out, "{h}x{w}");
    }
}

#[test]
fn constant_image_survives_resize_and_crop_exactly() {
    let img = ImageBuffer::from_pixel(60, 40, Rgb([200u8, 100, 50]));
    let p = ImageProcessor::new(ImageProcessorConfig {
        shortest_edge: 16,
        crop_size: (16, 16),
        ..ImageProcessorConfig::default()
    });
    let (v, h, w) = p.preprocess_to_vec(&DynamicImage::ImageRgb8(img)).unwrap();
    assert_eq!((h, w), (16, 16));
    close(&v, &expected(&vec![[200, 100, 50]; 256], 16, 16));
}

#[test]
fn preprocessor_config_json_is_honoured() {
    let json = r#"{"crop_size": {"height": 8, "width": 8}, "do_center_crop": true,
        "do_normalize": true, "do_rescale": true, "do_resize": true,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25],
        "resample": 2, "rescale_factor": 0.5, "size": {"shortest_edge": 8}}"#;
    let c = ImageProcessorConfig::from_json_str(json, None).unwrap();
    assert_eq!(c.crop_size, (8, 8));
    assert_eq!(c.shortest_edge, 8);
    assert_eq!(c.resample, 2);
    let p = ImageProcessor::new(c);
    let img = ImageBuffer::from_pixel(8, 8, Rgb([2u8, 4, 6]));
    let (v, _, _) = p.preprocess_to_vec(&DynamicImage::ImageRgb8(img)).unwrap();
    // (2 * 0.5 - 0.5) / 0.25 = 2, (4 * 0.5 - 0.5) / 0.25 = 6, (6 * 0.5 - 0.5) / 0.25 = 10.
    assert_eq!((v[0], v[64], v[128]), (2.0, 6.0, 10.0));
    // Defaults when keys are absent; bad values are errors, not panics.
    assert_eq!(
        ImageProcessorConfig::from_json_str("{}", None).unwrap(),
        ImageProcessorConfig::default()
    );
    assert!(ImageProcessorConfig::from_json_str(r#"{"image_std": [0, 1, 1]}"#, None).is_err());
    assert!(ImageProcessorConfig::from_json_str(r#"{"image_mean": [1]}"#, None).is_err());
    assert!(ImageProcessorConfig::from_json_str("not json", None).is_err());
}

#[test]
fn colour_types_convert_to_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let p = processor();
    let cases: Vec<(&str, DynamicImage, [u8; 3])> = vec![
        (
            "grey.png",
            DynamicImage::ImageLuma8(ImageBuffer::from_pixel(3, 2, Luma([100u8]))),
            [100, 100, 100],
        ),
        (
            "grey_alpha.png",
            // Transparent pixels are composited onto white as transformers 5.x does (values
            // from Pillow's alpha_composite).
            DynamicImage::ImageLumaA8(ImageBuffer::from_pixel(3, 2, LumaA([100u8, 7]))),
            [251, 251, 251],
        ),
        (
            "rgba.png",
            DynamicImage::ImageRgba8(ImageBuffer::from_pixel(3, 2, Rgba([10u8, 20, 30, 0]))),
            [255, 255, 255],
        ),
        (
            "rgba_half.png",
            DynamicImage::ImageRgba8(ImageBuffer::from_pixel(3, 2, Rgba([10u8, 200, 30, 128]))),
            [132, 227, 142],
        ),
        (
            "rgba_almost_clear.png",
            DynamicImage::ImageRgba8(ImageBuffer::from_pixel(3, 2, Rgba([0u8, 255, 77, 1]))),
            [254, 255, 254],
        ),
        (
            "rgba_almost_opaque.png",
            DynamicImage::ImageRgba8(ImageBuffer::from_pixel(3, 2, Rgba([250u8, 3, 99, 254]))),
            [250, 4, 100],
        ),
        (
            "rgb16.png",
            DynamicImage::ImageRgb16(ImageBuffer::from_pixel(3, 2, Rgb([65535u16, 0, 257 * 100]))),
            [255, 0, 100],
        ),
        (
            "grey16.png",
            DynamicImage::ImageLuma16(ImageBuffer::from_pixel(3, 2, Luma([257u16 * 42]))),
            [42, 42, 42],
        ),
    ];
    for (name, img, want) in cases {
        let path = write_png(dir.path(), name, &img);
        let decoded = p.load_image(&path).unwrap();
        let rgb = ImageProcessor::to_rgb8(&decoded);
        assert_eq!((rgb.width(), rgb.height()), (3, 2), "{name}");
        assert_eq!(rgb.get_pixel(1, 1).0, want, "{name}");
        // And the whole pipeline accepts it.
        let t = p.preprocess(&decoded, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[1, 3, 224, 224], "{name}");
    }
}

#[test]
fn cmyk_jpeg_converts_to_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cmyk.jpg");
    // Left half: no ink; right half: full cyan.
    let (w, h) = (16u16, 8u16);
    let mut data = Vec::new();
    for _y in 0..h {
        for x in 0..w {
            if x < w / 2 {
                data.extend([0u8, 0, 0, 0]);
            } else {
                data.extend([255u8, 0, 0, 0]);
            }
        }
    }
    let enc = jpeg_encoder::Encoder::new_file(&path, 100).unwrap();
    enc.encode(&data, w, h, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    let decoded = processor().load_image(&path).unwrap();
    let rgb = ImageProcessor::to_rgb8(&decoded);
    assert_eq!((rgb.width(), rgb.height()), (16, 8));
    let left = rgb.get_pixel(2, 4).0;
    let right = rgb.get_pixel(13, 4).0;
    eprintln!("CMYK decoded: no ink -> {left:?}, cyan -> {right:?}");
    // Cyan ink removes red and leaves green and blue.
    assert!(
        left.iter().all(|&c| c > 200),
        "no ink should be white: {left:?}"
    );
    assert!(
        right[0] < 60 && right[1] > 200 && right[2] > 200,
        "cyan: {right:?}"
    );
}

#[test]
fn bad_files_are_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = processor();
    // Zero bytes.
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    expect_image_error(p.load_image(&empty), &empty, "empty");
    // Not an image at all.
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, b"hello, this is not a picture").unwrap();
    expect_image_error(p.load_image(&text), &text, "unsupported");
    // A real PNG cut in half.
    let good = write_png(
        dir.path(),
        "good.png",
        &DynamicImage::ImageRgb8(ImageBuffer::from_fn(64, 64, |x, y| {
            Rgb([x as u8, y as u8, (x * y) as u8])
        })),
    );
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("truncated.png");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    expect_image_error(p.load_image(&cut), &cut, "");
    // PNG magic followed by garbage.
    let corrupt = dir.path().join("corrupt.png");
    let mut junk = bytes[..8].to_vec();
    junk.extend((0..500u32).map(|i| (i * 7919 % 251) as u8));
    std::fs::write(&corrupt, &junk).unwrap();
    expect_image_error(p.load_image(&corrupt), &corrupt, "");
    // A truncated JPEG.
    let jpg = dir.path().join("good.jpg");
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(64, 64, |x, y| {
        Rgb([x as u8, y as u8, 3])
    }))
    .save_with_format(&jpg, image::ImageFormat::Jpeg)
    .unwrap();
    let jb = std::fs::read(&jpg).unwrap();
    let jcut = dir.path().join("truncated.jpg");
    std::fs::write(&jcut, &jb[..jb.len() / 3]).unwrap();
    // zune-jpeg would fill a truncated scan with grey; the file is refused as truncated instead,
    // as Pillow refuses it.
    expect_image_error(p.load_image(&jcut), &jcut, "truncated");
    expect_image_error(p.load_image(&cut), &cut, "truncated");
    // A missing file is an I/O error naming it.
    let missing = dir.path().join("missing.png");
    match p.load_image(&missing) {
        Err(Error::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn huge_images_are_rejected_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    // A 1×1 PNG whose header is rewritten to claim 60000×60000 pixels (3.6 Gpx).
    let small = write_png(
        dir.path(),
        "small.png",
        &DynamicImage::ImageRgb8(ImageBuffer::from_pixel(1, 1, Rgb([1u8, 2, 3]))),
    );
    let mut bytes = std::fs::read(&small).unwrap();
    // IHDR chunk: length(4) "IHDR"(4) width(4) height(4) ... at offset 8.
    bytes[16..20].copy_from_slice(&60000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&60000u32.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, &bytes).unwrap();
    expect_image_error(processor().load_image(&huge), &huge, "above the limit");
    // A configurable limit applies to real images too.
    let img = write_png(
        dir.path(),
        "ten.png",
        &DynamicImage::ImageRgb8(ImageBuffer::from_pixel(10, 10, Rgb([0u8, 0, 0]))),
    );
    expect_image_error(
        processor().with_max_pixels(99).load_image(&img),
        &img,
        "above the limit",
    );
    assert!(processor().with_max_pixels(100).load_image(&img).is_ok());
}

#[test]
fn io_errors_print_the_os_text_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.png");
    let e = anyhow::Error::from(processor().load_image(&missing).unwrap_err());
    let text = format!("{e:#}");
    let os = std::io::Error::from(std::io::ErrorKind::NotFound).to_string();
    let first = text.find("No such file").or_else(|| text.find(&os));
    assert!(first.is_some(), "{text}");
    assert_eq!(
        text.matches("No such file")
            .count()
            .max(text.matches(&os).count()),
        1,
        "{text}"
    );
}
