//! `cargo xtask tiny-lmm --arch llava|qwen2-vl|qwen2.5-vl` (alias `tiny-llava`): write a random
//! checkpoint of a supported architecture, in its hub format, for tests, examples and benchmarks.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cox_model::qwen2_vl::testing::{write_tiny_qwen, TinyQwenConfig};
use cox_model::qwen2_vl::{QwenArch, QwenLayout};
use cox_model::testing::{write_tiny_llava, TinyConfig};

/// The checkpoint sizes `--size` accepts.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Size {
    /// Vision 32 px / width 32 / 2 layers; text width 64 / 3 blocks.
    Tiny,
    /// Vision 224 px / width 256 / 6 layers; text width 512 / 6 blocks; ~8k vocabulary.
    Mid,
}

impl Size {
    /// The checkpoint shape.
    pub fn config(self) -> TinyConfig {
        match self {
            Size::Tiny => TinyConfig::tiny(),
            Size::Mid => TinyConfig::mid(),
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Output directory (created if needed).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Checkpoint size.
    #[arg(long, value_enum, default_value_t = Size::Tiny)]
    size: Size,
    /// Architecture.
    #[arg(long, value_enum, default_value_t = Arch::Llava)]
    arch: Arch,
}

/// The architectures `--arch` accepts.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Arch {
    /// LLaVA-1.5 (`model_type: llava`), llava-hf hub layout.
    Llava,
    /// Qwen2-VL (`qwen2_vl`), hub layout.
    #[value(name = "qwen2-vl", alias = "qwen2_vl")]
    Qwen2Vl,
    /// Qwen2.5-VL (`qwen2_5_vl`), hub layout.
    #[value(name = "qwen2.5-vl", alias = "qwen2_5_vl")]
    Qwen25Vl,
}

pub fn run(a: Args) -> Result<()> {
    let qwen = match a.arch {
        Arch::Llava => None,
        Arch::Qwen2Vl => Some(QwenArch::Qwen2Vl),
        Arch::Qwen25Vl => Some(QwenArch::Qwen25Vl),
    };
    if let Some(arch) = qwen {
        let t = match a.size {
            Size::Tiny => TinyQwenConfig::tiny(arch),
            Size::Mid => TinyQwenConfig::mid(arch),
        };
        write_tiny_qwen(&a.out, &t, QwenLayout::Hub, candle_core::DType::F32, a.seed)
            .with_context(|| {
                format!(
                    "writing a {:?} {:?} checkpoint to {}",
                    a.size,
                    a.arch,
                    a.out.display()
                )
            })?;
        println!(
            "wrote a {:?} random {:?} checkpoint to {}",
            a.size,
            a.arch,
            a.out.display()
        );
        return Ok(());
    }
    let cfg = write_tiny_llava(&a.out, &a.size.config(), a.seed)
        .with_context(|| format!("writing a {:?} checkpoint to {}", a.size, a.out.display()))?;
    println!(
        "wrote a {:?} random LLaVA checkpoint to {} (vision {}px/{} layers, text {}x{} blocks, vocab {}, {} image tokens)",
        a.size,
        a.out.display(),
        cfg.vision_config.image_size,
        cfg.vision_config.num_hidden_layers,
        cfg.text_config.hidden_size,
        cfg.text_config.num_hidden_layers,
        cfg.text_config.vocab_size,
        cfg.image_seq_length
    );
    Ok(())
}
