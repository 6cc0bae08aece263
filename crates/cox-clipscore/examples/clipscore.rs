//! CLIPScore of one image against a concept's words.
//!
//! ```text
//! cargo run -p cox-clipscore --example clipscore -- CLIP_DIR IMAGE WORD [WORD...]
//! cargo run -p cox-clipscore --example clipscore          # demo on a tiny random checkpoint
//! ```
//!
//! `CLIP_DIR` is an HF `CLIPModel` directory (e.g. a snapshot of `openai/clip-vit-base-patch32`);
//! its `tokenizer.json` is used, or the BPE file named by `$COXLMM_CLIP_BPE`. The demo's random
//! weights make its number meaningless: it only shows the calls.

use cox_clipscore::testing::{tiny_config, write_tiny_clip};
use cox_clipscore::{load_image, ClipBpe, ClipModel, ClipParams, ClipScorer, ClipTokenizer};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let params = ClipParams {
        bpe_path: std::env::var_os("COXLMM_CLIP_BPE").map(Into::into),
        ..Default::default()
    };
    let (scorer, image, words, _tmp) = if args.len() >= 3 {
        let scorer = ClipScorer::load(&args[0], &params)?;
        (scorer, load_image(&args[1])?, args[2..].to_vec(), None)
    } else {
        let tmp = tempfile::tempdir()?;
        write_tiny_clip(tmp.path(), &tiny_config(), 0)?;
        let model = ClipModel::load(
            tmp.path(),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )?;
        let bpe = match &params.bpe_path {
            Some(p) => ClipBpe::from_file(p)?,
            None => ClipBpe::from_merges_text_lenient("#version: 0.2\nd o\ndo g</w>\n")?,
        };
        let scorer = ClipScorer::new(model, ClipTokenizer::from(bpe), params.clone())?;
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
        }));
        let words = ["dog", "grass", "ball"].map(String::from).to_vec();
        (scorer, img, words, Some(tmp))
    };
    let text = scorer.text_for_words(&words);
    let cs = scorer.clip_score(&image, &words)?;
    println!("{text:?}: CLIPScore {cs:.4} (w = {})", scorer.params().w);
    Ok(())
}
