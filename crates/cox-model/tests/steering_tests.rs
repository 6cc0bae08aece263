//! Edits of the residual stream inside the decoder loop (steering and ablation): a zero edit is the
//! identity, edits act exactly at their positions, and a KV-cached generation with an edit is the
//! same computation as one full forward pass with it.

use candle_core::DType;
use candle_core::{IndexOp, Tensor};
use cox_model::qwen2_vl::testing::{write_tiny_qwen, TinyQwenConfig};
use cox_model::qwen2_vl::{QwenArch, QwenLayout};
use cox_model::testing::{write_tiny_llava, TinyConfig};
use cox_model::{
    AddDirection, Edit, EditPositions, Generation, LayerSel, Llava, LoadOptions, Logits,
    PreparedInput, ProjectOut, ResidualCapture,
};
use image::{DynamicImage, ImageBuffer, Rgb};

const STEPS: usize = 10;

fn tiny_llava() -> (tempfile::TempDir, Llava) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_llava(dir.path(), &TinyConfig::tiny(), 17).unwrap();
    let mut llava = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default()).unwrap();
    // A random model: generate the whole length so that every test compares STEPS tokens.
    llava.tokenizer.eos_token_ids.clear();
    (dir, llava)
}

fn prepared(llava: &Llava) -> PreparedInput {
    let img = DynamicImage::ImageRgb8(ImageBuffer::from_fn(48, 40, |x, y| {
        Rgb([(x * 5) as u8, (y * 6) as u8, 90])
    }));
    let px = llava
        .processor
        .preprocess(&img, llava.model.device())
        .unwrap();
    llava.prepare("describe this image", Some(&px)).unwrap()
}

fn hidden(llava: &Llava) -> usize {
    llava.model.config().text_config.hidden_size
}

/// A fixed direction with entries of order one.
fn direction(h: usize) -> Vec<f32> {
    (0..h).map(|i| ((i * 7 + 3) as f32 * 0.61).sin()).collect()
}

fn layers() -> [LayerSel; 3] {
    [LayerSel::Block(0), LayerSel::Block(1), LayerSel::FinalNorm]
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn generate(llava: &Llava, input: &PreparedInput, capture: &ResidualCapture) -> Generation {
    llava.generate(input, STEPS, capture).unwrap()
}

#[test]
fn zero_edits_change_nothing_bit_for_bit() {
    let (_d, llava) = tiny_llava();
    let input = prepared(&llava);
    let h = hidden(&llava);
    let plain = generate(&llava, &input, &ResidualCapture::new(layers()));
    let edits = vec![
        // α = 0 with a real direction, and a zero vector with a large α, at every position.
        Edit::new(
            0,
            EditPositions::All,
            AddDirection::new(&direction(h), 0.0).unwrap(),
        ),
        Edit::new(
            1,
            EditPositions::All,
            AddDirection::new(&vec![0.0; h], 5.0).unwrap(),
        ),
    ];
    let edited = generate(
        &llava,
        &input,
        &ResidualCapture::new(layers()).with_edits(edits),
    );
    assert_eq!(plain.generated_ids, edited.generated_ids);
    assert_eq!(plain.text, edited.text);
    for (a, b) in plain.residuals.iter().zip(&edited.residuals) {
        assert_eq!(values(a), values(b), "captured states differ");
    }
}

#[test]
fn an_edit_at_generated_positions_leaves_the_prompt_states_unchanged() {
    let (_d, llava) = tiny_llava();
    let input = prepared(&llava);
    let p = input.ids.len();
    let h = hidden(&llava);
    let plain = generate(&llava, &input, &ResidualCapture::new(layers()));
    let edit = Edit::new(
        0,
        EditPositions::Generated { prompt_len: p },
        AddDirection::new(&direction(h), 4.0).unwrap(),
    );
    let steered = generate(
        &llava,
        &input,
        &ResidualCapture::new(layers()).with_edits(vec![edit]),
    );
    for (a, b) in plain.residuals.iter().zip(&steered.residuals) {
        assert_eq!(
            values(&a.narrow(0, 0, p).unwrap()),
            values(&b.narrow(0, 0, p).unwrap()),
            "a prompt state changed"
        );
    }
    // The first generated token is predicted from the unedited prompt.
    assert_eq!(plain.generated_ids[0], steered.generated_ids[0]);
    // The edit is real: the first fed-back position's block-0 state moved by exactly α·v.
    let moved: Vec<f32> = values(&steered.residuals[0].i(p).unwrap())
        .iter()
        .zip(values(&plain.residuals[0].i(p).unwrap()))
        .map(|(s, u)| s - u)
        .collect();
    for (m, v) in moved.iter().zip(direction(h)) {
        assert!(
            (m - 4.0 * v).abs() < 1e-4,
            "moved {m}, expected {}",
            4.0 * v
        );
    }
}

#[test]
fn kv_cached_steering_equals_a_full_forward_with_the_same_edit() {
    let (_d, llava) = tiny_llava();
    let input = prepared(&llava);
    let p = input.ids.len();
    let h = hidden(&llava);
    for positions in [
        EditPositions::All,
        EditPositions::Prompt { prompt_len: p },
        EditPositions::Generated { prompt_len: p },
    ] {
        let edits = vec![
            Edit::new(0, positions, AddDirection::new(&direction(h), 3.0).unwrap()),
            Edit::new(1, positions, ProjectOut::new(&direction(h)).unwrap()),
        ];
        let capture = ResidualCapture::new(layers()).with_edits(edits);
        let g = generate(&llava, &input, &capture);
        // The full sequence: prompt and every generated token but the last, in one pass.
        let mut ids = input.ids.clone();
        ids.extend(&g.generated_ids[..g.generated_ids.len() - 1]);
        let fed = Tensor::new(
            &g.generated_ids[..g.generated_ids.len() - 1],
            llava.model.device(),
        )
        .unwrap()
        .unsqueeze(0)
        .unwrap();
        let lm = llava.model.language_model();
        let embeds = Tensor::cat(&[&input.embeds, &lm.embed(&fed).unwrap()], 1).unwrap();
        let full = lm
            .forward_embeds(&embeds, None, &capture, Logits::All)
            .unwrap();
        for (cached, whole) in g.residuals.iter().zip(&full.captured) {
            let whole = whole.squeeze(0).unwrap();
            assert_eq!(cached.dims(), whole.dims());
            let d = (cached - &whole)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                d < 1e-4,
                "{positions:?}: cached and full states differ by {d}"
            );
        }
        let greedy: Vec<u32> = full
            .logits
            .unwrap()
            .squeeze(0)
            .unwrap()
            .narrow(0, p - 1, STEPS)
            .unwrap()
            .argmax(1)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(greedy, g.generated_ids, "{positions:?}");
    }
}

#[test]
fn steering_changes_the_generation_and_edits_outside_the_decoder_are_refused() {
    let (_d, llava) = tiny_llava();
    let input = prepared(&llava);
    let h = hidden(&llava);
    let plain = generate(&llava, &input, &ResidualCapture::none());
    let strong = ResidualCapture::none().with_edits(vec![Edit::new(
        1,
        EditPositions::All,
        AddDirection::new(&direction(h), 50.0).unwrap(),
    )]);
    let steered = generate(&llava, &input, &strong);
    assert_ne!(plain.generated_ids, steered.generated_ids);
    let bad = ResidualCapture::none().with_edits(vec![Edit::new(
        99,
        EditPositions::All,
        AddDirection::new(&direction(h), 1.0).unwrap(),
    )]);
    let err = llava.generate(&input, 2, &bad).unwrap_err().to_string();
    assert!(err.contains("cannot edit block 99"), "{err}");
}

#[test]
fn qwen2_vl_decoder_applies_the_same_edits() {
    let dir = tempfile::tempdir().unwrap();
    let t = TinyQwenConfig::tiny(QwenArch::Qwen2Vl);
    write_tiny_qwen(dir.path(), &t, QwenLayout::Hub, DType::F32, 5).unwrap();
    let qwen =
        cox_model::qwen2_vl::Qwen2Vl::load(dir.path().to_str().unwrap(), &LoadOptions::default())
            .unwrap();
    let input = qwen.prepare("describe this image", None).unwrap();
    let h = t.hidden_size;
    let capture = ResidualCapture::new([LayerSel::Block(0), LayerSel::FinalNorm]);
    let plain = qwen.forward(&input, &capture, Logits::Last).unwrap();
    let zero = qwen
        .forward(
            &input,
            &capture.clone().with_edits(vec![Edit::new(
                0,
                EditPositions::All,
                AddDirection::new(&direction(h), 0.0).unwrap(),
            )]),
            Logits::Last,
        )
        .unwrap();
    for (a, b) in plain.captured.iter().zip(&zero.captured) {
        assert_eq!(values(a), values(b));
    }
    let steered = qwen
        .forward(
            &input,
            &capture.clone().with_edits(vec![Edit::new(
                0,
                EditPositions::All,
                AddDirection::new(&direction(h), 2.0).unwrap(),
            )]),
            Logits::Last,
        )
        .unwrap();
    let moved: Vec<f32> = values(&steered.captured[0])
        .iter()
        .zip(values(&plain.captured[0]))
        .map(|(s, u)| s - u)
        .collect();
    for (i, m) in moved.iter().enumerate() {
        let v = direction(h)[i % h];
        assert!(
            (m - 2.0 * v).abs() < 1e-4,
            "row {} col {}: moved {m}",
            i / h,
            i % h
        );
    }
}
