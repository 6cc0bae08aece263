//! `cargo xtask bench-model`: cox-model on random tiny and mid-size LLaVA checkpoints — vision
//! ms/image, prefill and decode tokens/s, peak RSS — written to the `## cox-model` section of
//! `docs/benchmarks.md`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use cox_model::testing::write_tiny_llava;
use cox_model::{Llava, LoadOptions, Logits, ResidualCapture};

use crate::tiny_llava::Size;

#[derive(clap::Args)]
pub struct Args {
    /// Timed repetitions of the vision and prefill measurements.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Decode steps timed after the prefill.
    #[arg(long, default_value_t = 32)]
    decode_tokens: usize,
    /// Do not rewrite docs/benchmarks.md.
    #[arg(long)]
    no_write: bool,
}

struct Row {
    size: &'static str,
    params_m: f64,
    load_s: f64,
    vision_ms: f64,
    prompt_len: usize,
    prefill_tps: f64,
    decode_tps: f64,
    rss_mib: f64,
}

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn bench(size: Size, name: &'static str, a: &Args, dir: &Path) -> Result<Row> {
    let tiny = size.config();
    let cfg = write_tiny_llava(dir, &tiny, 0)?;
    let params: usize =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)?
            .values()
            .map(|t| t.elem_count())
            .sum();
    let t = Instant::now();
    let llava = Llava::load(dir.to_str().context("utf-8 path")?, &LoadOptions::default())?;
    let load_s = t.elapsed().as_secs_f64();
    let s = cfg.vision_config.image_size;
    let px = Tensor::rand(-1f32, 1f32, (1, 3, s, s), &Device::Cpu)?;
    llava.model.encode_images(&px)?; // warm-up
    let vision_ms = median(
        (0..a.reps)
            .map(|_| {
                let t = Instant::now();
                llava
                    .model
                    .encode_images(&px)
                    .map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<cox_model::Result<Vec<_>>>()?,
    );
    let input = llava.prepare("describe this image in detail , please .", Some(&px))?;
    let lm = llava.model.language_model();
    let prompt_len = input.ids.len();
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for _ in 0..a.reps.max(1) {
        let mut cache = lm.new_cache();
        let t = Instant::now();
        let out = lm.forward_embeds(
            &input.embeds,
            Some(&mut cache),
            &ResidualCapture::none(),
            Logits::Last,
        )?;
        prefill.push(prompt_len as f64 / t.elapsed().as_secs_f64());
        let mut next = out
            .logits
            .context("logits")?
            .flatten_all()?
            .argmax(0)?
            .to_scalar::<u32>()?;
        let t = Instant::now();
        for _ in 0..a.decode_tokens {
            let e = lm.embed(&Tensor::new(&[[next]], &Device::Cpu)?)?;
            let out =
                lm.forward_embeds(&e, Some(&mut cache), &ResidualCapture::none(), Logits::Last)?;
            next = out
                .logits
                .context("logits")?
                .flatten_all()?
                .argmax(0)?
                .to_scalar::<u32>()?;
        }
        decode.push(a.decode_tokens as f64 / t.elapsed().as_secs_f64());
    }
    Ok(Row {
        size: name,
        params_m: params as f64 / 1e6,
        load_s,
        vision_ms,
        prompt_len,
        prefill_tps: median(prefill),
        decode_tps: median(decode),
        rss_mib: vm_hwm_mib(),
    })
}

pub fn run(a: Args) -> Result<()> {
    let load_avg = crate::load_avg()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string();
    let work = tempfile_dir()?;
    let mut rows = Vec::new();
    for (size, name) in [(Size::Tiny, "tiny"), (Size::Mid, "mid")] {
        let dir = work.join(name);
        let row = bench(size, name, &a, &dir)?;
        eprintln!(
            "{name}: vision {:.2} ms/image, prefill {:.0} tok/s, decode {:.1} tok/s, peak RSS {:.0} MiB",
            row.vision_ms, row.prefill_tps, row.decode_tps, row.rss_mib
        );
        rows.push(row);
    }
    let _ = std::fs::remove_dir_all(&work);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut md = String::from("## cox-model\n\n");
    md.push_str(&format!(
        "`cargo xtask bench-model` on random checkpoints written by `cox_model::testing` \
         (f32, CPU, {threads} threads, medians of {} runs; decode = {} greedy steps with the KV \
         cache after the prefill). Peak RSS is the process's VmHWM after that size ran (so the \
         mid row includes the tiny run). 1-minute load average at the start: {load_avg} \
         (other processes on the machine slow the timings down).\n\n",
        a.reps, a.decode_tokens
    ));
    md.push_str("| checkpoint | params (M) | load (s) | vision (ms/image) | prompt tokens | prefill (tok/s) | decode (tok/s) | peak RSS (MiB) |\n");
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in &rows {
        md.push_str(&format!(
            "| {} | {:.2} | {:.3} | {:.2} | {} | {:.0} | {:.1} | {:.0} |\n",
            r.size,
            r.params_m,
            r.load_s,
            r.vision_ms,
            r.prompt_len,
            r.prefill_tps,
            r.decode_tps,
            r.rss_mib
        ));
    }
    md.push_str(
        "\ntiny: vision 32 px, patch 8, width 32, 2 layers; text width 64, 3 blocks, 4/2 heads. \
         mid: vision 224 px, patch 14, width 256, 6 layers; text width 512, 6 blocks, 8/4 heads, \
         ~8k vocabulary. For scale, LLaVA-1.5-7B is ~7,000 M parameters.\n",
    );
    println!("{md}");
    if !a.no_write {
        let path = crate::workspace_root().join("docs/benchmarks.md");
        write_section(&path, "## cox-model", &md)?;
        println!("updated {}", path.display());
    }
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let d = crate::workspace_root().join("target/bench-model");
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Replaces the section starting at `heading` (up to the next `## ` heading) or appends it.
pub(crate) fn write_section(path: &Path, heading: &str, body: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_string());
    let new = match old.find(&format!("{heading}\n")) {
        Some(start) => {
            let rest = &old[start + heading.len()..];
            let end = rest
                .find("\n## ")
                .map(|i| start + heading.len() + i + 1)
                .unwrap_or(old.len());
            format!("{}{}{}", &old[..start], body, &old[end..])
        }
        None => format!(
            "{}\n{}",
            old.trim_end_matches('\n').to_string() + "\n",
            body
        ),
    };
    std::fs::write(path, new)?;
    Ok(())
}
