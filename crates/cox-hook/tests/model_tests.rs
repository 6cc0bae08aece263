//! End to end on a tiny random LLaVA: generate a caption with residual capture, select the first
//! generated token of interest, and check the kept vectors against a full-sequence forward pass
//! without a KV cache.

use candle_core::{IndexOp, Tensor};
use cox_hook::{
    select_generation, GtFilter, PositionRule, SelectOptions, SkipReason, TokenOfInterest,
};
use cox_model::testing::{write_tiny_llava, TinyConfig, BASE_WORDS};
use cox_model::{LayerSel, Llava, LoadOptions, Logits, PreparedInput, ResidualCapture};

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn selected_vector_equals_full_forward_row() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write_tiny_llava(dir.path(), &TinyConfig::tiny(), 11)?;
    let mut llava = Llava::load(dir.path().to_str().unwrap(), &LoadOptions::default())?;
    // Random weights may emit EOS at once; without EOS ids the caption runs to max_new_tokens.
    llava.tokenizer.eos_token_ids.clear();
    let device = llava.model.device().clone();

    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 128])
    }));
    let pixels = llava.processor.preprocess(&img, &device)?;
    let input = llava.prepare("describe this image", Some(&pixels))?;
    let capture = ResidualCapture::new([LayerSel::Block(1), LayerSel::FinalNorm]);
    let generation = llava.generate(&input, 16, &capture)?;
    let prompt_len = generation.prompt_ids.len();
    assert_eq!(generation.generated_ids.len(), 16);
    assert_eq!(generation.residuals[0].dims()[0], prompt_len + 16 - 1);

    // Choose t twice: the first generated word (j = 0 reads the last prompt row), and a word
    // first generated at j >= 2 (its predicting row is a fed-back generated token, computed with
    // the KV cache).
    let tok = llava.tokenizer.inner();
    let words: Vec<(String, TokenOfInterest)> = generation
        .generated_ids
        .iter()
        .filter_map(|&id| tok.id_to_token(id))
        .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .filter_map(|w| TokenOfInterest::new(tok, &w).ok().map(|toi| (w, toi)))
        .collect();
    let first = words
        .first()
        .cloned()
        .expect("the random caption contains a word");
    let later = words
        .iter()
        .find(|(_, toi)| toi.find(&generation.generated_ids) >= Some(2))
        .cloned()
        .expect("a word first generated at j >= 2");
    let mut checked_j = Vec::new();
    for (t, toi) in [first, later] {
        let j = check_word(&llava, &pixels, &capture, &generation, &t, &toi)?;
        checked_j.push(j);
    }
    assert!(checked_j[1] >= 2, "{checked_j:?}");
    let toi = &words[0].1;

    // The ground-truth filter and an absent word skip the sample.
    let sel = select_generation(
        toi,
        &["nothing".into()],
        &generation,
        &SelectOptions::default(),
    )?;
    assert_eq!(sel.skip_reason, Some(SkipReason::GtFilter));
    let absent = BASE_WORDS
        .iter()
        .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .filter_map(|w| TokenOfInterest::new(tok, w).ok())
        .find(|o| generation.generated_ids.iter().all(|id| !o.matches(*id)))
        .expect("some word is not generated");
    let none = SelectOptions {
        gt: GtFilter::None,
        ..Default::default()
    };
    let sel = select_generation(&absent, &[], &generation, &none)?;
    assert_eq!(sel.skip_reason, Some(SkipReason::TokenNotGenerated));
    Ok(())
}

/// Selects `t` in `generation` and checks the kept rows against a full forward pass; returns `j`.
fn check_word(
    llava: &Llava,
    pixels: &Tensor,
    capture: &ResidualCapture,
    generation: &cox_model::Generation,
    t: &str,
    toi: &TokenOfInterest,
) -> anyhow::Result<usize> {
    let device = llava.model.device().clone();
    let prompt_len = generation.prompt_ids.len();
    let j = generation
        .generated_ids
        .iter()
        .position(|id| toi.ids.contains(id))
        .unwrap();

    let captions = vec![format!("a {t} here")];
    let sel = select_generation(toi, &captions, generation, &SelectOptions::default())?;
    let rec = sel.kept.expect("kept");
    assert_eq!(rec.token_index, j);
    assert_eq!(rec.token_id, generation.generated_ids[j]);
    assert_eq!(rec.position, prompt_len + j - 1);
    assert_eq!(rec.vectors.len(), 2);

    // The full prompt + generated sequence, embedded with the same image features, in one pass.
    let mut ids = generation.prompt_ids.clone();
    ids.extend(&generation.generated_ids);
    let id_t = Tensor::new(ids.as_slice(), &device)?.unsqueeze(0)?;
    let feats = llava.model.encode_images(pixels)?;
    let embeds = llava.model.embed_multimodal(&id_t, Some(&feats))?;
    let full = PreparedInput::new(ids, embeds);
    let out = llava.forward(&full, capture, Logits::All)?;
    for (k, captured) in out.captured.iter().enumerate() {
        let want: Vec<f32> = captured.i((0, rec.position))?.to_vec1()?;
        let d = max_abs_diff(&rec.vectors[k], &want);
        assert!(d < 1e-4, "layer {k}: max |diff| {d}");
    }
    // The kept state predicts t: the greedy argmax of its logits is t's id.
    let logits: Vec<f32> = out.logits.unwrap().i((0, rec.position))?.to_vec1()?;
    let argmax = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(argmax as u32, rec.token_id);

    // AtToken keeps the next row.
    let at = SelectOptions {
        position: PositionRule::AtToken,
        ..Default::default()
    };
    let rec_at = select_generation(toi, &captions, generation, &at)?
        .kept
        .unwrap();
    assert_eq!(rec_at.position, prompt_len + j);
    let want: Vec<f32> = out.captured[1].i((0, rec_at.position))?.to_vec1()?;
    assert!(max_abs_diff(&rec_at.vectors[1], &want) < 1e-4);

    Ok(j)
}
