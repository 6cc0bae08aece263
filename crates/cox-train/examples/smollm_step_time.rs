//! Step time of the frozen SmolLM2-135M-Instruct decoder as the language model of a LLaVA-style
//! captioner (issue 17, part 2): forward and backward with gradients only to the 9 image-token
//! embeddings (a `Var`; the LM's weights are constants), logits only at the caption positions,
//! for batches of 8, 16 and 32, with the prompt in two forms.
//!
//! `cargo run --release -p cox-train --example smollm_step_time -- [LM_DIR] [REPEATS]`
//! (default: `.cache/models/smollm2-135m-instruct` as `cargo xtask fetch` writes it; 3 repeats,
//! the median is printed). Prints the token counts of 2,000 canonical captions first, so the
//! sequence lengths are the real ones. Timings depend on the machine's load: print `uptime` too.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use cox_model::gguf::CausalLm;
use cox_model::{LayerSel, Logits, ResidualCapture};
use cox_synth::{generate_range, Split, SynthConfig};
use cox_train::smol::cpu_seconds;

const SYSTEM: &str = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";
const USER: &str = "<|im_start|>user\n";
const AFTER_IMAGE: &str =
    "\nProvide a one-sentence caption for the provided image.<|im_end|>\n<|im_start|>assistant\n";
const IMAGE_TOKENS: usize = 9;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let dir = a.get(1).cloned().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../.cache/models/smollm2-135m-instruct"
        )
        .to_string()
    });
    let repeats: usize = a.get(2).map_or(3, |s| s.parse().expect("REPEATS"));
    let t = Instant::now();
    let lm = CausalLm::load(std::path::Path::new(&dir), DType::F32, &Device::Cpu)?;
    eprintln!("loaded {dir} in {:.1}s", t.elapsed().as_secs_f64());

    // Caption lengths (caption + <|im_end|>) over real scenes.
    let scenes = generate_range(&SynthConfig::default(), 0, Split::Train, 0..2000)?;
    let mut lens: Vec<usize> = scenes
        .iter()
        .map(|s| {
            lm.encode(&format!("{}<|im_end|>", s.canonical))
                .map(|v| v.len())
        })
        .collect::<Result<_, _>>()?;
    lens.sort_unstable();
    let pct = |p: f64| lens[((lens.len() - 1) as f64 * p) as usize];
    println!(
        "caption tokens (+EOS) over 2000 scenes: min {} median {} p90 {} max {}",
        lens[0],
        pct(0.5),
        pct(0.9),
        lens[lens.len() - 1]
    );
    let longest = lens[lens.len() - 1];
    let short_prefix = lm.encode(USER)?.len();
    let full_prefix = lm.encode(&format!("{SYSTEM}{USER}"))?.len();
    let suffix = lm.encode(AFTER_IMAGE)?.len();
    println!(
        "prompt tokens: user prefix {short_prefix}, system+user prefix {full_prefix}, after image {suffix}"
    );
    // A batch is right-padded to its longest caption: 32 scenes nearly always contain a 3-object
    // caption, so the p90 length is what a step pays.
    let cap = pct(0.9);
    for (label, prefix) in [
        ("no system prompt", short_prefix),
        ("chat template", full_prefix),
    ] {
        let seq = prefix + IMAGE_TOKENS + suffix + cap;
        println!("\n{label}: sequence {seq} = {prefix} + {IMAGE_TOKENS} image + {suffix} + {cap} caption (longest caption {longest})");
        for batch in [8usize, 16, 32] {
            let mut fw = Vec::new();
            let mut bw = Vec::new();
            let mut inf = Vec::new();
            let mut cpu = Vec::new();
            for r in 0..repeats {
                let ids: Vec<u32> = (0..batch * (seq - IMAGE_TOKENS))
                    .map(|i| ((i * 7919 + r * 104_729) % 49_000) as u32 + 17)
                    .collect();
                let ids = Tensor::from_vec(ids, (batch, seq - IMAGE_TOKENS), &Device::Cpu)?;
                let text = lm.model.embed(&ids)?;
                let img = Var::from_tensor(
                    &(Tensor::randn(0f32, 0.02, (batch, IMAGE_TOKENS, 576), &Device::Cpu)?),
                )?;
                let pre = text.narrow(1, 0, prefix)?;
                let post = text.narrow(1, prefix, seq - IMAGE_TOKENS - prefix)?;
                let targets: Vec<u32> = (0..batch * cap).map(|i| (i % 1000) as u32 + 100).collect();
                let targets = Tensor::from_vec(targets, batch * cap, &Device::Cpu)?;

                let c0 = cpu_seconds();
                let t0 = Instant::now();
                let embeds = Tensor::cat(&[&pre, img.as_tensor(), &post], 1)?;
                let out = lm.model.forward_embeds(
                    &embeds,
                    None,
                    &ResidualCapture::new([LayerSel::FinalNorm]),
                    Logits::None,
                )?;
                let states = out.captured[0].narrow(1, seq - cap - 1, cap)?;
                let logits = lm.model.logits(&states)?.reshape((batch * cap, 49_152))?;
                let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
                let _ = loss.to_scalar::<f32>()?;
                let t1 = Instant::now();
                let grads = loss.backward()?;
                let g = grads.get(&img).expect("a gradient for the image tokens");
                let _ = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
                let t2 = Instant::now();
                cpu.push(cpu_seconds() - c0);
                drop(grads);
                // Inference only (no Var in the graph): what evaluation pays per forward.
                let t3 = Instant::now();
                let embeds = Tensor::cat(&[&pre, &img.as_tensor().detach(), &post], 1)?;
                let out = lm.model.forward_embeds(
                    &embeds,
                    None,
                    &ResidualCapture::new([LayerSel::FinalNorm]),
                    Logits::None,
                )?;
                let _ = out.captured[0].sum_all()?.to_scalar::<f32>()?;
                inf.push(t3.elapsed().as_secs_f64());
                fw.push((t1 - t0).as_secs_f64());
                bw.push((t2 - t1).as_secs_f64());
            }
            let med = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let (f, b, i, c) = (med(&mut fw), med(&mut bw), med(&mut inf), med(&mut cpu));
            println!(
                "batch {batch:2}: forward {f:6.2}s backward {b:6.2}s step {:6.2}s wall, {c:6.2}s CPU ({:5.1} ms/sequence wall; no-grad forward {i:5.2}s)",
                f + b,
                1000.0 * (f + b) / batch as f64
            );
        }
    }
    Ok(())
}
