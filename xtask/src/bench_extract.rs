//! `cargo xtask bench-extract`: images/s of `coxlmm extract` and the share of its time in each
//! phase (image loading, vision tower, prompt, prefill, decode, hook, store), with `--batch 1`
//! against `--batch 8`, on the committed demo model and on the random "mid" checkpoint of
//! `cox_model::testing`; and the hook's overhead — greedy generation recording the captured
//! layers (plus the row selection) against generation recording nothing, on the same images in
//! the same process. Written to the `## Extraction` section of `docs/benchmarks.md`.
//!
//! The extraction figures come from the release `coxlmm` binary itself (its hidden
//! `--timings FILE`), so they time the code users run, not a copy of its loop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cox_hook::{select_generation, GtFilter, SelectOptions, TokenOfInterest};
use cox_model::qwen2_vl::testing::{write_tiny_qwen, TinyQwenConfig};
use cox_model::qwen2_vl::{QwenArch, QwenLayout};
use cox_model::testing::{write_tiny_llava, TinyConfig};
use cox_model::{GenerateParams, Lmm, LoadOptions, ResidualCapture};
use cox_synth::{generate_split, Split, SynthConfig};
use serde::Deserialize;

use crate::bench_model::write_section;

#[derive(clap::Args)]
pub struct Args {
    /// Synthetic scenes extracted with the demo model (per batch size).
    #[arg(long, default_value_t = 160)]
    images: usize,
    /// Scenes extracted with the mid checkpoint (per batch size).
    #[arg(long, default_value_t = 12)]
    mid_images: usize,
    /// Generation length of the mid checkpoint (random weights never say EOS, so every caption
    /// has this many tokens; the demo model stops at its EOS, ≤ 50 tokens).
    #[arg(long, default_value_t = 16)]
    mid_tokens: usize,
    /// Scenes extracted with tiny-llava-smol (per batch size), when `cargo xtask fetch` has
    /// assembled it; 0 skips it.
    #[arg(long, default_value_t = 24)]
    smol_images: usize,
    /// The batched run's --batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Images of the hook-overhead measurement (each generated 2 × reps times per variant).
    #[arg(long, default_value_t = 24)]
    hook_images: usize,
    /// Repetitions of the hook-overhead measurement (the mid model uses a quarter of the images).
    #[arg(long, default_value_t = 3)]
    hook_reps: usize,
    /// Do not rewrite docs/benchmarks.md.
    #[arg(long)]
    no_write: bool,
    /// Use the existing target/release/coxlmm instead of building it first.
    #[arg(long)]
    no_build: bool,
}

/// What `coxlmm extract --timings FILE` writes (see crates/coxlmm/src/extract.rs).
#[derive(Debug, Deserialize)]
struct Timings {
    total_s: f64,
    load_s: f64,
    vision_s: f64,
    prompt_s: f64,
    prefill_s: f64,
    decode_s: f64,
    hook_s: f64,
    store_s: f64,
    images: usize,
    generations: usize,
    decode_steps: usize,
    kept: usize,
    batch: usize,
}

impl Timings {
    fn phases(&self) -> [f64; 8] {
        let named = [
            self.load_s,
            self.vision_s,
            self.prompt_s,
            self.prefill_s,
            self.decode_s,
            self.hook_s,
            self.store_s,
        ];
        let other = (self.total_s - named.iter().sum::<f64>()).max(0.0);
        let mut all = [0.0; 8];
        all[..7].copy_from_slice(&named);
        all[7] = other;
        all
    }

    fn images_per_s(&self) -> f64 {
        self.images as f64 / self.total_s
    }
}

const PHASES: [&str; 8] = [
    "load + preprocess",
    "vision tower",
    "prompt",
    "prefill",
    "decode",
    "hook",
    "store",
    "other",
];

/// One model's settings for `coxlmm extract`.
struct Case {
    name: &'static str,
    model: PathBuf,
    token: String,
    layer: String,
    images: usize,
    max_new_tokens: usize,
    ignore_eos: bool,
}

struct HookRow {
    name: &'static str,
    layers: String,
    /// Pairs of runs (one per variant).
    runs: usize,
    plain_ms: f64,
    hooked_ms: f64,
    /// The median over pairs of hooked / plain.
    ratio: f64,
}

fn load(dir: &Path) -> Result<Lmm> {
    Ok(Lmm::load(
        dir.to_str().context("utf-8 path")?,
        &LoadOptions::default(),
    )?)
}

/// The settings `coxlmm extract` generates with: the checkpoint's defaults, without EOS under
/// `--ignore-eos`.
fn params(l: &Lmm, max_new: usize, capture: &ResidualCapture, ignore_eos: bool) -> GenerateParams {
    let mut p = l.default_params(max_new, capture);
    if ignore_eos {
        p.eos_token_ids.clear();
    }
    p
}

/// A word the (random) model generates for the first image, usable as the token of interest, so
/// the benchmark's hook keeps rows.
fn generated_word(l: &Lmm, image: &Path, max_new: usize) -> Result<String> {
    let px = l.load_pixels(image)?;
    let input = l.prepare(PROMPT, Some(&px))?;
    let g = l.generate(&input, &params(l, max_new, &ResidualCapture::none(), true))?;
    let tok = l.tokenizer();
    g.generated_ids
        .iter()
        .filter_map(|&id| tok.id_to_token(id))
        .map(|w| w.trim_start_matches('Ġ').to_string())
        .find(|w| {
            w.len() > 1
                && w.chars().all(|c| c.is_ascii_alphanumeric())
                && TokenOfInterest::new(tok, w).is_ok_and(|t| t.find(&g.generated_ids).is_some())
        })
        .context("the random checkpoint generated no word for the first image")
}

/// coxlmm's default instruction (docs/method.md §2).
const PROMPT: &str = "\nProvide a one-sentence caption for the provided image.";

fn extract(cli: &Path, case: &Case, data: &Path, batch: usize, work: &Path) -> Result<Timings> {
    let out = work.join(format!("{}-batch{batch}", case.name));
    let _ = std::fs::remove_dir_all(&out);
    let timings = work.join(format!("{}-batch{batch}.json", case.name));
    let mut c = Command::new(cli);
    c.arg("extract")
        .arg("--model")
        .arg(&case.model)
        .arg("--data")
        .arg(format!("folder:{}", data.display()))
        .args([
            "--split",
            "train",
            "--token",
            &case.token,
            "--layer",
            &case.layer,
        ])
        .args(["--gt-filter", "none", "--limit", &case.images.to_string()])
        .args(["--max-new-tokens", &case.max_new_tokens.to_string()])
        .args(["--batch", &batch.to_string()])
        .arg("--out")
        .arg(&out)
        .arg("--timings")
        .arg(&timings);
    if case.ignore_eos {
        c.arg("--ignore-eos");
    }
    let t = Instant::now();
    let o = c.output().context("running coxlmm extract")?;
    if !o.status.success() {
        bail!(
            "coxlmm extract failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let tm: Timings = serde_json::from_slice(&std::fs::read(&timings)?)?;
    eprintln!(
        "{} --batch {batch}: {} images in {:.1} s ({:.1} s with loading), {:.1} images/s, kept {}",
        case.name,
        tm.images,
        tm.total_s,
        t.elapsed().as_secs_f64(),
        tm.images_per_s(),
        tm.kept
    );
    Ok(tm)
}

/// Generation with nothing recorded against generation recording `case.layer` plus the hook's
/// row selection, alternating A B B A per image so drift in the machine's load hits both alike.
fn hook_overhead(case: &Case, images: &[PathBuf], reps: usize) -> Result<HookRow> {
    let l = load(&case.model)?;
    let layers = cox_hook::parse_layers(&case.layer)?;
    let capture = params(
        &l,
        case.max_new_tokens,
        &ResidualCapture::new(layers.iter().copied()),
        case.ignore_eos,
    );
    let none = params(
        &l,
        case.max_new_tokens,
        &ResidualCapture::none(),
        case.ignore_eos,
    );
    let toi = TokenOfInterest::new(l.tokenizer(), &case.token)?;
    let opts = SelectOptions {
        gt: GtFilter::None,
        ..SelectOptions::default()
    };
    let inputs = images
        .iter()
        .map(|p| {
            let px = l.load_pixels(p)?;
            l.prepare(PROMPT, Some(&px))
        })
        .collect::<cox_model::Result<Vec<_>>>()?;
    // Warm-up (allocator, caches).
    l.generate(&inputs[0], &capture)?;
    // Each run of one variant is paired with the adjacent run of the other (A B | B A), and the
    // overhead is the median of the pairs' ratios: the machine is shared, and a burst of
    // interference then spoils one pair instead of a variant's sum.
    let (mut plain, mut hooked) = (Duration::ZERO, Duration::ZERO);
    let mut ratios = Vec::new();
    for input in &inputs {
        let mut tokens = (0usize, 0usize);
        for _ in 0..reps {
            let mut pair = [Duration::ZERO; 2];
            for hook in [false, true, true, false] {
                let t = Instant::now();
                if hook {
                    let g = l.generate(input, &capture)?;
                    select_generation(&toi, &[], &g, &opts)?;
                    pair[1] = t.elapsed();
                    tokens.1 = g.generated_ids.len();
                } else {
                    let g = l.generate(input, &none)?;
                    pair[0] = t.elapsed();
                    tokens.0 = g.generated_ids.len();
                }
                if pair[0] > Duration::ZERO && pair[1] > Duration::ZERO {
                    plain += pair[0];
                    hooked += pair[1];
                    ratios.push(pair[1].as_secs_f64() / pair[0].as_secs_f64());
                    pair = [Duration::ZERO; 2];
                }
            }
        }
        if tokens.0 != tokens.1 {
            bail!("the two variants generated different captions ({tokens:?} tokens)");
        }
    }
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len() as f64;
    let row = HookRow {
        name: case.name,
        layers: case.layer.clone(),
        runs: ratios.len(),
        plain_ms: plain.as_secs_f64() * 1e3 / n,
        hooked_ms: hooked.as_secs_f64() * 1e3 / n,
        ratio: ratios[ratios.len() / 2],
    };
    eprintln!(
        "{} hook: plain {:.2} ms/image, capture {} + selection {:.2} ms/image, median ratio \
         {:.4} over {} pairs",
        row.name, row.plain_ms, row.layers, row.hooked_ms, row.ratio, row.runs
    );
    Ok(row)
}

pub fn run(a: Args) -> Result<()> {
    let root = crate::workspace_root();
    if cfg!(debug_assertions) {
        // `cargo xtask` is a dev build: candle's and cox-model's debug assertions and overflow
        // checks make generation 2–3× slower there, which would distort the in-process hook
        // measurement. Run this same command from a release build of xtask instead.
        eprintln!("== re-running bench-extract from a release build of xtask");
        let ok = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args(["run", "--release", "--quiet", "-p", "xtask", "--"])
            .args(std::env::args_os().skip(1))
            .status()?
            .success();
        if !ok {
            bail!("the release bench-extract failed");
        }
        return Ok(());
    }
    if !a.no_build {
        crate::build_coxlmm_release(&root)?;
    }
    let cli = root.join("target/release/coxlmm");
    let date = String::from_utf8_lossy(&Command::new("date").arg("-u").output()?.stdout)
        .trim()
        .to_string();
    let load_start = crate::load_avg();
    let t_all = Instant::now();

    let work = root.join("target/bench-extract");
    std::fs::create_dir_all(&work)?;
    let n = a
        .images
        .max(a.mid_images)
        .max(a.hook_images)
        .max(a.smol_images);
    let data = work.join(format!("world-{n}"));
    if !data.join("captions.jsonl").is_file() {
        let scenes = generate_split(&SynthConfig::default(), 0, Split::Train, n)?;
        cox_synth::io::write_dataset(&data, &scenes)?;
    }
    let image = |i: usize| data.join(format!("images/train-{i:06}.png"));
    let images: Vec<PathBuf> = (0..n).map(image).collect();
    if !images[0].is_file() {
        bail!(
            "{} missing: cox-synth's image naming changed",
            images[0].display()
        );
    }

    let mid_dir = work.join("mid-model");
    write_tiny_llava(&mid_dir, &TinyConfig::mid(), 0)?;
    let mid_token = generated_word(&load(&mid_dir)?, &images[0], a.mid_tokens)?;
    let qwen_dir = work.join("qwen2-vl-mid-model");
    write_tiny_qwen(
        &qwen_dir,
        &TinyQwenConfig::mid(QwenArch::Qwen2Vl),
        QwenLayout::Hub,
        candle_core::DType::F32,
        0,
    )?;
    // The mid Qwen checkpoint's vocabulary is wider than its tokenizer, so it may generate no
    // word; the hook then keeps no row, which does not change the time of anything measured.
    let qwen_token = generated_word(&load(&qwen_dir)?, &images[0], a.mid_tokens)
        .unwrap_or_else(|_| "image".into());
    let smol_dir = coxlmm::scores::models_dir().join("tiny-llava-smol");
    let smol = a.smol_images > 0 && smol_dir.join("model.safetensors").is_file();
    if a.smol_images > 0 && !smol {
        eprintln!(
            "== tiny-llava-smol skipped: not assembled at {} (run `cargo xtask fetch`)",
            smol_dir.display()
        );
    }
    let mut cases = vec![
        Case {
            name: "tiny-llava-synth",
            model: cox_synth::default_model_dir(),
            token: "circle".into(),
            layer: "2".into(),
            images: a.images,
            max_new_tokens: 50,
            ignore_eos: false,
        },
        Case {
            name: "mid (random)",
            model: mid_dir.clone(),
            token: mid_token,
            layer: "4".into(),
            images: a.mid_images,
            max_new_tokens: a.mid_tokens,
            ignore_eos: true,
        },
        Case {
            name: "qwen2-vl mid (random)",
            model: qwen_dir.clone(),
            token: qwen_token,
            layer: "4".into(),
            images: a.mid_images,
            max_new_tokens: a.mid_tokens,
            ignore_eos: true,
        },
    ];
    if smol {
        cases.push(Case {
            name: "tiny-llava-smol",
            model: smol_dir,
            token: "circle".into(),
            layer: "29".into(),
            images: a.smol_images,
            max_new_tokens: 50,
            ignore_eos: false,
        });
    }

    let mut runs: Vec<(&Case, Timings)> = Vec::new();
    let mut hooks = Vec::new();
    for case in &cases {
        for batch in [1, a.batch] {
            let tm = extract(&cli, case, &data, batch, &work)?;
            runs.push((case, tm));
        }
        let n_hook = if case.name.contains("mid") || case.name.contains("smol") {
            (a.hook_images / 4).max(1)
        } else {
            a.hook_images
        };
        hooks.push(hook_overhead(case, &images[..n_hook], a.hook_reps)?);
    }
    let load_end = crate::load_avg();
    let wall = t_all.elapsed().as_secs_f64();

    let md = render(&a, &runs, &hooks, &date, &load_start, &load_end, wall);
    println!("{md}");
    if !a.no_write {
        let path = root.join("docs/benchmarks.md");
        write_section(&path, "## Extraction", &md)?;
        println!("updated {}", path.display());
    }
    Ok(())
}

fn render(
    a: &Args,
    runs: &[(&Case, Timings)],
    hooks: &[HookRow],
    date: &str,
    load_start: &str,
    load_end: &str,
    wall: f64,
) -> String {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| {
        std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_else(|_| "?".into())
    });
    let mut md = String::from("## Extraction\n\n");
    md.push_str(&format!(
        "`cargo xtask bench-extract`, {date}, CPU, f32, {threads} candle thread(s) \
         (`RAYON_NUM_THREADS`); load average (1, 5, 15 min) {load_start} at the start and \
         {load_end} at the end; {wall:.0} s in all. The release `coxlmm extract` runs on \
         synthetic scenes (world seed 0, train split, `--gt-filter none` so every scene is \
         captioned) and times its own phases (hidden `--timings FILE`); the share of each phase \
         is of the sample loop's wall time (model loading excluded). Images/s = captioned \
         images / loop time.\n\n"
    ));
    md.push_str(
        "- **tiny-llava-synth**: the committed demo model (`crates/cox-synth/assets/`, 1.6 M \
         parameters, 96 px / 9 image tokens, decoder width 128 × 3 blocks), token `circle`, \
         layer 2, captions end at its EOS (≤ 50 tokens).\n",
    );
    if let Some((c, _)) = runs.iter().find(|(c, _)| c.name.starts_with("mid")) {
        md.push_str(&format!(
            "- **mid (random)**: `cox_model::testing`'s mid checkpoint (31 M parameters; CLIP \
             224 px / patch 14 / width 256 / 6 layers → 256 image tokens; Llama width 512 × 6 \
             blocks, ~8k vocabulary), a LLaVA-like shape where the language model dominates; \
             random weights never emit EOS, so every caption is {} tokens (`--ignore-eos`); \
             token `{}` (a word it generates), layer {}.\n\n",
            c.max_new_tokens, c.token, c.layer
        ));
    }
    if let Some((c, _)) = runs.iter().find(|(c, _)| c.name.starts_with("qwen2-vl")) {
        md.push_str(&format!(
            "- **qwen2-vl mid (random)**: `cox_model::qwen2_vl::testing`'s mid Qwen2-VL \
             checkpoint (vision 8 × 256 with the 2×2 merger; Qwen2 decoder width 512 × 8 blocks, \
             M-RoPE; 4096-row vocabulary), each scene resized by `smart_resize` to multiples of \
             28 px (one image token per 28 × 28 block); the checkpoint's repetition penalty \
             1.05 applies; \
             every caption is {} tokens (`--ignore-eos`); token `{}`, layer {}.\n\n",
            c.max_new_tokens, c.token, c.layer
        ));
    }
    if let Some((c, _)) = runs.iter().find(|(c, _)| c.name == "tiny-llava-smol") {
        md.push_str(&format!(
            "- **tiny-llava-smol**: the demo's vision tower and a trained projector on the real \
             SmolLM2-135M-Instruct (width 576 × 30 blocks, 49,152-token vocabulary, tied LM \
             head; assembled by `cargo xtask fetch`), prompted with its chat template; token `{}`, \
             layer {}, captions end at its EOS (≤ {} tokens).\n\n",
            c.token, c.layer, c.max_new_tokens
        ));
    }
    md.push_str("| model | --batch | images | kept | images/s |");
    for p in PHASES {
        md.push_str(&format!(" {p} |"));
    }
    md.push_str("\n|---|---|---|---|---|");
    md.push_str(&"---|".repeat(PHASES.len()));
    md.push('\n');
    for (c, t) in runs {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} |",
            c.name,
            t.batch,
            t.images,
            t.kept,
            t.images_per_s()
        ));
        for p in t.phases() {
            md.push_str(&format!(" {:.1} % |", 100.0 * p / t.total_s));
        }
        md.push('\n');
    }
    md.push('\n');
    for c in runs
        .iter()
        .map(|(c, _)| c.name)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let of = |b: usize| {
            runs.iter()
                .find(|(x, t)| x.name == c && t.batch == b)
                .map(|(_, t)| t)
        };
        if let (Some(one), Some(many)) = (of(1), of(a.batch)) {
            md.push_str(&format!(
                "- {c}: `--batch {}` / `--batch 1` = **{:.2}×** images/s ({:.1} → {:.1}); the \
                 vision tower took {:.2} → {:.2} ms/image, loading {:.2} → {:.2} ms/image; \
                 {:.1} decode steps per caption; the hook's own time (capture assembly and row \
                 selection) is {:.2} % of the generation time (prefill + decode).\n",
                a.batch,
                many.images_per_s() / one.images_per_s(),
                one.images_per_s(),
                many.images_per_s(),
                1e3 * one.vision_s / one.images as f64,
                1e3 * many.vision_s / many.images as f64,
                1e3 * one.load_s / one.images as f64,
                1e3 * many.load_s / many.images as f64,
                many.decode_steps as f64 / many.generations.max(1) as f64,
                100.0 * (one.hook_s + many.hook_s)
                    / (one.prefill_s + one.decode_s + many.prefill_s + many.decode_s),
            ));
        }
    }
    md.push_str(
        "\nBatching shares only the vision tower's matrix products across images. On a CPU that saves \
         the per-call overhead of the tiny tower's small products, not the mid tower's, whose \
         257-row products already keep a core busy (there a batch's larger activations can even cost \
         time, as they leave the cache); the gain it is meant for is on a GPU, where one image \
         leaves most of the device idle (no accelerator was available to measure it). Prefill and \
         decode, which run one image at a time, dominate both models.\n",
    );
    md.push_str(&format!(
        "\nHook overhead: greedy generation of the same prepared prompts (image features \
         included) with `ResidualCapture::none()` and with the layer recorded plus \
         `cox_hook::select_generation` reading the kept row, alternating none / hooked / hooked / \
         none per image, {} times, in one process (a release build of xtask). The ratio is \
         the median over adjacent (plain, hooked) pairs of hooked / plain, so that bursts of load \
         on the shared machine spoil single pairs rather than one variant's total; the times \
         are means.\n\n",
        a.hook_reps
    ));
    md.push_str(
        "| model | layer | pairs | plain (ms/image) | with hook (ms/image) | median ratio |\n",
    );
    md.push_str("|---|---|---|---|---|---|\n");
    for h in hooks {
        md.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.3} |\n",
            h.name, h.layers, h.runs, h.plain_ms, h.hooked_ms, h.ratio
        ));
    }
    md.push_str(
        "\nThe two measures of the hook agree within the noise: the capture changes nothing in \
         the forward pass (the recorded block output is the tensor the next block reads), so its \
         whole cost is the assembly of the recorded states and the selection of the kept row, \
         which the first table times inside the real loop; the paired ratio adds the noise of \
         timing whole generations on a shared, loaded machine (a few percent either way, more \
         for the mid checkpoint's few, long pairs).\n",
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(batch: usize, total_s: f64) -> Timings {
        Timings {
            total_s,
            load_s: 1.0,
            vision_s: 2.0,
            prompt_s: 0.5,
            prefill_s: 2.5,
            decode_s: 3.0,
            hook_s: 0.25,
            store_s: 0.25,
            images: 20,
            generations: 20,
            decode_steps: 100,
            kept: 7,
            batch,
        }
    }

    #[test]
    fn phases_add_up_to_the_loop_time_and_the_table_reads_them() {
        // 1 + 2 + 0.5 + 2.5 + 3 + 0.25 + 0.25 = 9.5 s timed of 10 s: 0.5 s "other".
        let t = timings(1, 10.0);
        let p = t.phases();
        assert_eq!(p[7], 0.5);
        assert_eq!(p.iter().sum::<f64>(), 10.0);
        assert_eq!(t.images_per_s(), 2.0);
        // Clock jitter never makes "other" negative.
        assert_eq!(timings(1, 9.0).phases()[7], 0.0);

        let case = Case {
            name: "m",
            model: PathBuf::from("m"),
            token: "dog".into(),
            layer: "2".into(),
            images: 20,
            max_new_tokens: 8,
            ignore_eos: false,
        };
        let runs = vec![(&case, timings(1, 10.0)), (&case, timings(8, 5.0))];
        let hooks = vec![HookRow {
            name: "m",
            layers: "2".into(),
            runs: 4,
            plain_ms: 10.0,
            hooked_ms: 10.1,
            ratio: 1.01,
        }];
        let args = Args {
            images: 20,
            mid_images: 1,
            smol_images: 0,
            mid_tokens: 8,
            batch: 8,
            hook_images: 4,
            hook_reps: 1,
            no_write: true,
            no_build: true,
        };
        let md = render(&args, &runs, &hooks, "today", "1", "2", 3.0);
        assert!(md.starts_with("## Extraction\n"));
        // Shares of the 10 s loop: load 10 %, vision 20 %, ..., other 5 %.
        assert!(
            md.contains("| m | 1 | 20 | 7 | 2.0 | 10.0 % | 20.0 % | 5.0 % | 25.0 % | 30.0 % | 2.5 % | 2.5 % | 5.0 % |"),
            "{md}"
        );
        // Batch 8 ran the same images in half the time; hook 0.5 s of 11 s of generation.
        assert!(md.contains("**2.00×** images/s (2.0 → 4.0)"), "{md}");
        assert!(md.contains("is 4.55 % of the generation time"), "{md}");
        assert!(md.contains("| m | 2 | 4 | 10.00 | 10.10 | 1.010 |"), "{md}");
    }
}
