//! `cargo xtask bench-model`: cox-model on random tiny and mid-size LLaVA checkpoints and a
//! mid-size Qwen2-VL one — vision ms/image, prefill and decode tokens/s, peak RSS — and the
//! memory a model needs for each stored and compute dtype (peak RSS over the weights, each case in
//! its own process), written to the `## cox-model` section of `docs/benchmarks.md`. With
//! `--python PY` (a Python with torch and transformers 5) it also captions the same images with
//! cox-model and with transformers (`xtask/py/bench_qwen2_vl.py`) on the mid Qwen2-VL checkpoint
//! with the same thread count, written to `## Qwen2-VL against transformers`; `--qwen-only` runs
//! just that comparison.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use cox_model::qwen2_vl::testing::{write_tiny_qwen, TinyQwenConfig};
use cox_model::qwen2_vl::{QwenArch, QwenLayout};
use cox_model::testing::write_tiny_llava;
use cox_model::{GenerateTimings, Llava, Lmm, LoadOptions, Logits, ResidualCapture};

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
    /// Images captioned in each memory case.
    #[arg(long, default_value_t = 16)]
    mem_images: usize,
    /// Internal: run one memory case in this process (`DIR,COMPUTE_DTYPE`) and print its JSON.
    #[arg(long, hide = true)]
    mem_case: Option<String>,
    /// A Python with torch and transformers 5: also caption the same images with transformers'
    /// Qwen2-VL on the mid Qwen2-VL checkpoint and report the images/s ratio.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Only the Qwen2-VL comparison against transformers (needs --python).
    #[arg(long)]
    qwen_only: bool,
    /// Images captioned in the comparison (after one warm-up image).
    #[arg(long, default_value_t = 8)]
    compare_images: usize,
    /// Generated tokens per image in the comparison.
    #[arg(long, default_value_t = 16)]
    compare_tokens: usize,
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

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`), NaN where there is none.
fn proc_status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .unwrap_or(f64::NAN)
}

fn vm_hwm_mib() -> f64 {
    proc_status_kib("VmHWM") / 1024.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn bench(size: Size, name: &'static str, a: &Args, dir: &Path) -> Result<Row> {
    let tiny = size.config();
    let cfg = write_tiny_llava(dir, &tiny, 0)?;
    let params = cox_model::Checkpoint::open(dir)?.num_elements() as usize;
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

/// The mid Qwen2-VL row: the same measurements through the architecture-independent interface
/// (prefill and decode from [`GenerateTimings`] of greedy generations without EOS or penalty).
fn bench_qwen(a: &Args, dir: &Path) -> Result<Row> {
    write_tiny_qwen(
        dir,
        &TinyQwenConfig::mid(QwenArch::Qwen2Vl),
        QwenLayout::Hub,
        DType::F32,
        0,
    )?;
    let params = cox_model::Checkpoint::open_any(dir)?.num_elements() as usize;
    let t = Instant::now();
    let lmm = Lmm::load(dir.to_str().context("utf-8 path")?, &LoadOptions::default())?;
    let load_s = t.elapsed().as_secs_f64();
    // 224 × 224 stays 224 × 224 under smart_resize: 16 × 16 patches, 64 image tokens.
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(224, 224, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x * y) % 239) as u8])
    }));
    let px = lmm.preprocess(&img)?;
    lmm.encode_images(std::slice::from_ref(&px))?; // warm-up
    let vision_ms = median(
        (0..a.reps)
            .map(|_| {
                let t = Instant::now();
                lmm.encode_images(std::slice::from_ref(&px))
                    .map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<cox_model::Result<Vec<_>>>()?,
    );
    let input = lmm.prepare("describe this image in detail , please .", Some(&px))?;
    let mut gp = lmm.default_params(a.decode_tokens + 1, &ResidualCapture::none());
    gp.eos_token_ids.clear();
    gp.repetition_penalty = 1.0;
    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    for _ in 0..a.reps.max(1) {
        let mut tm = GenerateTimings::default();
        lmm.generate_timed(&input, &gp, &mut tm)?;
        prefill.push(input.ids.len() as f64 / tm.prefill.as_secs_f64());
        decode.push(tm.decode_steps as f64 / tm.decode.as_secs_f64());
    }
    Ok(Row {
        size: "qwen2-vl mid",
        params_m: params as f64 / 1e6,
        load_s,
        vision_ms,
        prompt_len: input.ids.len(),
        prefill_tps: median(prefill),
        decode_tps: median(decode),
        rss_mib: vm_hwm_mib(),
    })
}

/// The comparison: images/s of cox-model and of transformers captioning the same images (one
/// warm-up image, then `compare_images` timed) with `compare_tokens` greedy tokens each, no EOS,
/// no repetition penalty, the same thread count.
fn compare_transformers(a: &Args, python: &Path, work: &Path) -> Result<String> {
    let dir = work.join("qwen2-vl-mid-compare");
    write_tiny_qwen(
        &dir,
        &TinyQwenConfig::mid(QwenArch::Qwen2Vl),
        QwenLayout::Hub,
        DType::F32,
        0,
    )?;
    // Photographs' sizes vary; these cover square, landscape and portrait at up to max_pixels.
    let sizes = [
        (224u32, 224u32),
        (320, 240),
        (240, 320),
        (400, 300),
        (180, 260),
    ];
    let images: Vec<PathBuf> = (0..=a.compare_images)
        .map(|i| -> Result<PathBuf> {
            let (w, h) = sizes[i % sizes.len()];
            let p = work.join(format!("compare-{i}.png"));
            image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([
                    ((x * 3 + i as u32 * 17) % 256) as u8,
                    ((y * 5) % 256) as u8,
                    ((x ^ y) % 256) as u8,
                ])
            })
            .save(&p)?;
            Ok(p)
        })
        .collect::<Result<_>>()?;
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    let prompt = "Describe this image.";
    let load_start = crate::load_avg();
    // cox-model, in this process.
    let lmm = Lmm::load(dir.to_str().context("utf-8 path")?, &LoadOptions::default())?;
    let mut gp = lmm.default_params(a.compare_tokens, &ResidualCapture::none());
    gp.eos_token_ids.clear();
    gp.repetition_penalty = 1.0;
    let caption = |p: &Path| -> Result<usize> {
        let px = lmm.load_pixels(p)?;
        let input = lmm.prepare(prompt, Some(&px))?;
        Ok(lmm.generate(&input, &gp)?.generated_ids.len())
    };
    caption(&images[0])?;
    let t = Instant::now();
    for p in &images[1..] {
        anyhow::ensure!(caption(p)? == a.compare_tokens, "short caption");
    }
    let rust_ips = a.compare_images as f64 / t.elapsed().as_secs_f64();
    // transformers, in its own process.
    let script = crate::workspace_root().join("xtask/py/bench_qwen2_vl.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(&dir)
        .arg(threads.to_string())
        .arg(a.compare_tokens.to_string())
        .arg(prompt)
        .args(&images)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|&b| b == b'\n')
            .rfind(|l| l.starts_with(b"{"))
            .context("no JSON from the transformers script")?,
    )?;
    let py_ips = v["images_per_s"].as_f64().context("images_per_s")?;
    let load_end = crate::load_avg();
    eprintln!(
        "qwen2-vl mid: cox-model {rust_ips:.2} images/s, transformers {py_ips:.2} images/s, \
         ratio {:.2}",
        rust_ips / py_ips
    );
    let _ = std::fs::remove_dir_all(&dir);
    let mut md = String::from("## Qwen2-VL against transformers\n\n");
    md.push_str(&format!(
        "`cargo xtask bench-model --qwen-only --python PY`: the mid random Qwen2-VL checkpoint \
         of `cox_model::qwen2_vl::testing` (vision 8 × 256 + 2×2 merger, Qwen2 decoder width 512 \
         × 8 blocks, 4096-row vocabulary; f32, CPU), {n} synthetic images of 224 × 224 to 400 × \
         300 px (after one warm-up image), each captioned from the file: decoding, \
         `smart_resize` and patches, the chat template, vision tower, prefill and {k} greedy \
         tokens (no EOS, no repetition penalty). Both sides use {threads} thread(s): candle's \
         pool in this process, `torch.set_num_threads` in `xtask/py/bench_qwen2_vl.py` \
         (transformers {tv}, torch {torch}). Load average (1, 5, 15 min) {load_start} at the \
         start and {load_end} at the end: the machine is shared, so both figures include other \
         processes' interference.\n\n\
         | | images/s |\n|---|---|\n| cox-model | {rust_ips:.2} |\n| transformers | {py_ips:.2} |\n\
         | ratio (cox-model / transformers) | {ratio:.2} |\n\n",
        n = a.compare_images,
        k = a.compare_tokens,
        tv = v["transformers"].as_str().unwrap_or("?"),
        torch = v["torch"].as_str().unwrap_or("?"),
        ratio = rust_ips / py_ips,
    ));
    Ok(md)
}

fn vm_rss_kib() -> f64 {
    proc_status_kib("VmRSS")
}

fn parse_dtype(s: &str) -> Result<DType> {
    Ok(match s {
        "f32" => DType::F32,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        other => anyhow::bail!("unknown dtype {other}"),
    })
}

/// One memory case, in this process: RSS before loading, then load the checkpoint in `compute`
/// and caption `images` random images with 32 greedy steps each; prints the JSON the parent
/// reads.
fn mem_case(spec: &str, images: usize) -> Result<()> {
    let (dir, compute) = spec.split_once(',').context("--mem-case DIR,DTYPE")?;
    let dtype = parse_dtype(compute)?;
    let opts = LoadOptions {
        dtype,
        ..LoadOptions::default()
    };
    // Warm-up on the tiny checkpoint: the code paths of loading and captioning are paged in
    // and the allocator and thread pools set up, so what follows measures the model's memory,
    // not the program's.
    {
        let warm = Path::new(dir).with_file_name("mem-warm");
        if !warm.join("config.json").is_file() {
            write_tiny_llava(&warm, &Size::Tiny.config(), 0)?;
        }
        let tiny = Llava::load(warm.to_str().context("utf-8 path")?, &opts)?;
        let s = tiny.model.config().vision_config.image_size;
        let px = Tensor::rand(-1f32, 1f32, (1, 3, s, s), &Device::Cpu)?.to_dtype(dtype)?;
        let input = tiny.prepare("describe this image", Some(&px))?;
        tiny.generate(&input, 4, &ResidualCapture::none())?;
    }
    let before_kib = vm_rss_kib();
    let t = Instant::now();
    let llava = Llava::load(dir, &opts)?;
    let load_s = t.elapsed().as_secs_f64();
    let after_load_kib = vm_rss_kib();
    let s = llava.model.config().vision_config.image_size;
    let t = Instant::now();
    for i in 0..images {
        let px = Tensor::rand(-1f32, 1f32, (1, 3, s, s), &Device::Cpu)?
            .affine(1.0, i as f64 * 1e-3)?
            .to_dtype(dtype)?;
        let input = llava.prepare("describe this image in detail , please .", Some(&px))?;
        let lm = llava.model.language_model();
        let mut cache = lm.new_cache();
        let mut out = lm.forward_embeds(
            &input.embeds,
            Some(&mut cache),
            &ResidualCapture::none(),
            Logits::Last,
        )?;
        for _ in 0..32 {
            let next = out
                .logits
                .context("logits")?
                .flatten_all()?
                .argmax(0)?
                .to_scalar::<u32>()?;
            let e = lm.embed(&Tensor::new(&[[next]], &Device::Cpu)?)?;
            out =
                lm.forward_embeds(&e, Some(&mut cache), &ResidualCapture::none(), Logits::Last)?;
        }
    }
    let images_per_s = images as f64 / t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "before_kib": before_kib, "after_load_kib": after_load_kib, "hwm_kib": vm_hwm_mib() * 1024.0,
            "load_s": load_s, "images_per_s": images_per_s,
        })
    );
    Ok(())
}

struct MemRow {
    size: &'static str,
    stored: &'static str,
    compute: &'static str,
    weights_mib: f64,
    loaded_mib: f64,
    peak_mib: f64,
    load_s: f64,
    images_per_s: f64,
}

/// Runs the memory cases, each in a fresh process of this executable.
fn memory(a: &Args, work: &Path) -> Result<Vec<MemRow>> {
    let mut rows = Vec::new();
    let exe = std::env::current_exe()?;
    // The mid checkpoint, and a larger one (text width 1024, 8 blocks, 16k words: ~0.5 GB in
    // f32) to show how the fixed part of the overhead shrinks with the model.
    let large = cox_model::testing::TinyConfig {
        text_hidden: 1024,
        text_intermediate: 2816,
        text_layers: 8,
        text_heads: 16,
        text_kv_heads: 8,
        filler_words: 16000,
        ..Size::Mid.config()
    };
    for (size, shape) in [("mid", Size::Mid.config()), ("large", large)] {
        for stored in ["f32", "f16", "bf16"] {
            let dir = work.join(format!("mem-{size}-{stored}"));
            let tiny = cox_model::testing::TinyConfig {
                dtype: parse_dtype(stored)?,
                ..shape.clone()
            };
            write_tiny_llava(&dir, &tiny, 0)?;
            let elems = cox_model::Checkpoint::open(&dir)?.num_elements() as f64;
            let computes: &[&'static str] = if stored == "f32" {
                &["f32"]
            } else {
                &["f32", stored]
            };
            for &compute in computes {
                let out = std::process::Command::new(&exe)
                    .args([
                        "bench-model",
                        "--mem-images",
                        &a.mem_images.to_string(),
                        "--mem-case",
                    ])
                    .arg(format!("{},{compute}", dir.display()))
                    .output()?;
                anyhow::ensure!(
                    out.status.success(),
                    "memory case {stored}->{compute} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let v: serde_json::Value = serde_json::from_slice(
                    out.stdout
                        .split(|&b| b == b'\n')
                        .rfind(|l| l.starts_with(b"{"))
                        .context("no JSON")?,
                )?;
                let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
                let bytes = if compute == "f32" { 4.0 } else { 2.0 };
                let weights_mib = elems * bytes / (1024.0 * 1024.0);
                let row = MemRow {
                    size,
                    stored: if stored == "f32" {
                        "f32"
                    } else if stored == "f16" {
                        "f16"
                    } else {
                        "bf16"
                    },
                    compute,
                    weights_mib,
                    loaded_mib: (f("after_load_kib") - f("before_kib")) / 1024.0,
                    peak_mib: (f("hwm_kib") - f("before_kib")) / 1024.0,
                    load_s: f("load_s"),
                    images_per_s: f("images_per_s"),
                };
                eprintln!(
                "memory {stored} -> {compute}: weights {:.1} MiB, loaded +{:.1} MiB, peak +{:.1} MiB (ratio {:.2}), {:.2} images/s",
                row.weights_mib, row.loaded_mib, row.peak_mib, row.peak_mib / row.weights_mib, row.images_per_s
            );
                rows.push(row);
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    Ok(rows)
}

pub fn run(a: Args) -> Result<()> {
    if let Some(spec) = &a.mem_case {
        return mem_case(spec, a.mem_images);
    }
    let load_avg = crate::load_avg()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string();
    let work = tempfile_dir()?;
    let comparison = match &a.python {
        Some(py) => Some(compare_transformers(&a, py, &work)?),
        None if a.qwen_only => anyhow::bail!("--qwen-only needs --python"),
        None => None,
    };
    if let (Some(md), true) = (&comparison, a.qwen_only) {
        println!("{md}");
        if !a.no_write {
            let path = crate::workspace_root().join("docs/benchmarks.md");
            write_section(&path, "## Qwen2-VL against transformers", md)?;
            println!("updated {}", path.display());
        }
        return Ok(());
    }
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
    let row = bench_qwen(&a, &work.join("qwen2-vl-mid"))?;
    eprintln!(
        "qwen2-vl mid: vision {:.2} ms/image, prefill {:.0} tok/s, decode {:.1} tok/s",
        row.vision_ms, row.prefill_tps, row.decode_tps
    );
    rows.push(row);
    let mem = memory(&a, &work)?;
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
         ~8k vocabulary. qwen2-vl mid: vision 8 blocks × 256 wide + 2×2 merger on a 224 × 224 \
         image (64 image tokens), Qwen2 decoder width 512 × 8 blocks, 8/2 heads, M-RoPE, 4096-row \
         vocabulary; its prefill and decode come from `GenerateTimings` of the shared greedy loop \
         (`Lmm::generate_timed`). For scale, LLaVA-1.5-7B is ~7,000 M parameters.\n",
    );
    md.push_str(&format!(
        "\n### Memory\n\nThe mid and large checkpoints written in each dtype and loaded in a fresh process per case (after a \
         warm-up on the tiny checkpoint, so that code pages, thread pools and the allocator are \
         already set up), then {} images captioned (vision tower, prompt, 32 greedy steps each). *Loaded* and *peak* are \
         the process's resident memory above what it used before loading (VmRSS after loading, VmHWM \
         at the end); the ratio is peak over the weights in the compute dtype, activations included. \
         The loader reads each tensor straight into its final buffer (no memory map, linear weights \
         read already transposed), so what remains above the weights is about 25-30 MiB whatever \
         the model's size or dtype, plus the activations. The loader it replaced memory-mapped the \
         files and kept a converted copy beside the mapped pages: about 2.5× the weights.\n\n",
        a.mem_images
    ));
    md.push_str("| checkpoint | stored | compute | weights (MiB) | loaded (MiB) | loaded / weights | peak (MiB) | peak / weights | load (s) | images/s |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &mem {
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} |\n",
            r.size,
            r.stored,
            r.compute,
            r.weights_mib,
            r.loaded_mib,
            r.loaded_mib / r.weights_mib,
            r.peak_mib,
            r.peak_mib / r.weights_mib,
            r.load_s,
            r.images_per_s
        ));
    }
    md.push('\n');
    println!("{md}");
    if !a.no_write {
        let path = crate::workspace_root().join("docs/benchmarks.md");
        write_section(&path, "## cox-model", &md)?;
        if let Some(c) = &comparison {
            write_section(&path, "## Qwen2-VL against transformers", c)?;
        }
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
