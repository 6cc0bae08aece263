//! `pixel_values` against transformers' `CLIPImageProcessor` on photo crops of odd sizes and
//! aspect ratios (`fixtures/pixels/make_fixture.py`): transformers 5.25's torchvision backend
//! (`t5`) and transformers 4.47's Pillow backend with Pillow 11.0 (`t4`), for bicubic and
//! bilinear resizing and for a centre crop larger than some images (zero padding).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use cox_model::resample::ResizeBackend;
use cox_model::{ImageProcessor, ImageProcessorConfig};

const TOL: f32 = 1e-5;
const IMAGES: [&str; 6] = [
    "chelsea_141x97",
    "astronaut_83x211",
    "coffee_257x131",
    "rocket_67x45",
    "motorcycle_301x77",
    "logo_rgba_59x73",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pixels")
}

fn config(setting: &str) -> ImageProcessorConfig {
    let json = match setting {
        "bicubic64" => {
            r#"{"size": {"shortest_edge": 64}, "crop_size": {"height": 64, "width": 64}, "resample": 3}"#
        }
        "bilinear48" => {
            r#"{"size": {"shortest_edge": 48}, "crop_size": {"height": 48, "width": 48}, "resample": 2}"#
        }
        "crop72" => r#"{"do_resize": false, "crop_size": {"height": 72, "width": 72}}"#,
        other => panic!("unknown setting {other}"),
    };
    ImageProcessorConfig::from_json_str(json, None).unwrap()
}

fn check(version: &str, backend: ResizeBackend) {
    let refs: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir().join(format!("{version}.safetensors")), &Device::Cpu)
            .unwrap();
    let mut worst = 0f32;
    for setting in ["bicubic64", "bilinear48", "crop72"] {
        let p = ImageProcessor::new(config(setting)).with_backend(backend);
        for name in IMAGES {
            let img = p.load_image(dir().join(format!("{name}.png"))).unwrap();
            let got = p
                .preprocess(&img, &Device::Cpu)
                .unwrap()
                .squeeze(0)
                .unwrap();
            let want = &refs[&format!("{setting}.{name}")];
            assert_eq!(got.dims(), want.dims(), "{version} {setting} {name}");
            let d = (&got - want)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(d <= TOL, "{version} {setting} {name}: max abs diff {d}");
            worst = worst.max(d);
        }
    }
    eprintln!("{version}: largest pixel_values difference {worst:e}");
}

#[test]
fn torchvision_backend_matches_transformers_5() {
    check("t5", ResizeBackend::Torchvision);
}

#[test]
fn pillow_backend_matches_transformers_4_47() {
    check("t4", ResizeBackend::Pil);
}

#[test]
fn the_backends_differ_so_the_choice_matters() {
    // The two libraries round differently: on these photos they disagree somewhere.
    let p = ImageProcessor::new(config("bicubic64"));
    let img = p.load_image(dir().join("coffee_257x131.png")).unwrap();
    let a = p
        .clone()
        .with_backend(ResizeBackend::Pil)
        .preprocess_to_vec(&img)
        .unwrap()
        .0;
    let b = p
        .with_backend(ResizeBackend::Torchvision)
        .preprocess_to_vec(&img)
        .unwrap()
        .0;
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-3));
}
