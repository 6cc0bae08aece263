//! Caption an image with a LLaVA-1.5-format checkpoint and show the residual stream shape.
//!
//! ```text
//! cargo xtask tiny-llava --out target/tiny-llava
//! cargo run -p cox-model --example caption -- target/tiny-llava photo.jpg "describe this image"
//! cargo run -p cox-model --release --example caption -- llava-hf/llava-1.5-7b-hf photo.jpg "What is shown?"
//! ```
//!
//! The first argument is a checkpoint directory or a hub id already in the local Hugging Face
//! cache. Without an image path, a generated gradient image is used.

use cox_model::{LayerSel, Llava, LoadOptions, ResidualCapture};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(model_id) = args.first() else {
        anyhow::bail!("usage: caption MODEL_DIR_OR_HUB_ID [IMAGE] [PROMPT] [MAX_NEW_TOKENS]");
    };
    let llava = Llava::load(model_id, &LoadOptions::default())?;
    let prompt = args
        .get(2)
        .map(String::as_str)
        .unwrap_or("describe this image");
    let max_new: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let pixels = match args.get(1) {
        Some(path) => llava.load_pixels(path)?,
        None => {
            let img =
                image::DynamicImage::ImageRgb8(image::ImageBuffer::from_fn(64, 64, |x, y| {
                    image::Rgb([(x * 4) as u8, (y * 4) as u8, 128])
                }));
            llava.processor.preprocess(&img, llava.model.device())?
        }
    };
    let input = llava.prepare(prompt, Some(&pixels))?;
    let last_block = llava.model.config().text_config.num_hidden_layers - 1;
    let capture = ResidualCapture::new([LayerSel::Block(last_block / 2), LayerSel::FinalNorm]);
    let gen = llava.generate(&input, max_new, &capture)?;
    println!("prompt tokens: {}", gen.prompt_ids.len());
    println!("generated ids: {:?}", gen.generated_ids);
    println!("caption: {}", gen.text);
    for (sel, states) in capture.layers.iter().zip(&gen.residuals) {
        println!("residual {sel:?}: {:?}", states.dims());
    }
    println!("LM head W_U: {:?}", llava.model.lm_head().dims());
    Ok(())
}
