//! What a checkpoint's image tokens know about each object: for `N` train-split and `N` test-split
//! scenes of world seed 7, the image token of every object's layout cell (the projector output the
//! decoder reads, `[objects, hidden]`) with the object's labels, written as safetensors for a probe
//! in Python.
//!
//! `cargo run --release -p cox-train --example vision_probe -- [MODEL_DIR] [N] [OUT]`
//! (defaults: the committed checkpoint, 4000, `target/vision_probe.safetensors`).
//!
//! Tensors: `train_x`, `test_x` (f32 `[objects, hidden]`) and `train_y`, `test_y` (i64
//! `[objects, 4]`: shape, size, objects in the scene, colour; indices into `cox_synth`'s `ALL`
//! arrays). A probe:
//!
//! ```python
//! from safetensors.numpy import load_file
//! from sklearn.neural_network import MLPClassifier
//! d = load_file("target/vision_probe.safetensors")
//! clf = MLPClassifier((256,), max_iter=300, random_state=0).fit(d["train_x"], d["train_y"][:, 0])
//! pred = clf.predict(d["test_x"])
//! for size in (0, 1):
//!     m = d["test_y"][:, 1] == size
//!     print(size, (pred[m] == d["test_y"][m, 0]).mean())
//! ```
//!
//! Only for checkpoints whose patch grid is the 3 × 3 layout (one image token per cell).
use std::collections::HashMap;

use candle_core::{Device, Tensor};
use cox_synth::{generate_split, Colour, Shape, Size, Split, SynthConfig};

fn index_of<T: PartialEq>(all: &[T], v: &T) -> i64 {
    all.iter().position(|x| x == v).expect("a value of ALL") as i64
}

fn main() -> cox_train::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let model = a.get(1).map_or(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../cox-synth/assets/tiny-llava-synth"
        ),
        String::as_str,
    );
    let n: usize = a.get(2).map_or(4000, |s| s.parse().expect("N: a number"));
    let out = a
        .get(3)
        .map_or("target/vision_probe.safetensors", String::as_str);
    let llava = cox_model::Llava::load(model, &Default::default())?;
    let hidden = llava.model.config().text_config.hidden_size;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (split, name) in [(Split::Train, "train"), (Split::Test, "test")] {
        let scenes = generate_split(&SynthConfig::default(), 7, split, n)?;
        let mut x = Vec::new();
        let mut y: Vec<i64> = Vec::new();
        for chunk in scenes.chunks(32) {
            let mut px = Vec::new();
            for s in chunk {
                px.extend(cox_train::scene_pixels(&llava.processor, s)?);
            }
            let side = ((px.len() / chunk.len() / 3) as f64).sqrt() as usize;
            let pixels = Tensor::from_vec(px, (chunk.len(), 3, side, side), &Device::Cpu)?;
            let tokens: Vec<Vec<Vec<f32>>> = llava.model.encode_images(&pixels)?.to_vec3()?;
            for (s, t) in chunk.iter().zip(tokens) {
                assert_eq!(t.len(), 9, "one image token per layout cell is needed");
                for o in &s.factors.objects {
                    x.extend_from_slice(&t[o.row.index() * 3 + o.position.column()]);
                    y.extend([
                        index_of(Shape::ALL, &o.shape),
                        index_of(Size::ALL, &o.size),
                        s.factors.objects.len() as i64,
                        index_of(Colour::ALL, &o.colour),
                    ]);
                }
            }
        }
        let rows = y.len() / 4;
        tensors.insert(
            format!("{name}_x"),
            Tensor::from_vec(x, (rows, hidden), &Device::Cpu)?,
        );
        tensors.insert(
            format!("{name}_y"),
            Tensor::from_vec(y, (rows, 4), &Device::Cpu)?,
        );
    }
    candle_core::safetensors::save(&tensors, out)?;
    println!("wrote {out}");
    Ok(())
}
