//! `coxlmm explain`: local explanations of new images with a finished run's dictionary.

use std::path::PathBuf;

use anyhow::Result;
use coxlmm::explain::{explain, ExplainContext};
use coxlmm::{Error, Model, ModelOptions, RunFolder};

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (made by `coxlmm run` or `coxlmm demo`).
    #[arg(long)]
    run: PathBuf,
    /// Concepts shown per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// transformers' repetition penalty for the captions (default: the run's setting, else the
    /// checkpoint's generation_config.json value; 1 turns it off).
    #[arg(long)]
    repetition_penalty: Option<f32>,
    /// Images to explain.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let folder = RunFolder::new(&a.run);
    let ctx = ExplainContext::load(&folder)?;
    let model = Model::load(
        &ctx.settings.model,
        &ModelOptions {
            repetition_penalty: a.repetition_penalty.or(ctx.settings.repetition_penalty),
            ..ModelOptions::default()
        },
    )?;
    let mut failed = 0usize;
    for path in &a.images {
        let x = match explain(&model, &ctx, path, a.top) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("{e:#}; skipped");
                failed += 1;
                continue;
            }
        };
        // Saved before anything is printed, so that no output problem can lose it.
        folder.write_explanation(&x.explanation)?;
        outln!("{}", path.display())?;
        outln!("  caption: {}", x.explanation.generated)?;
        if !x.explanation.token_generated {
            outln!(
                "  {:?} was not generated: no representation to explain (the model does not see one here)",
                ctx.settings.token
            )?;
        }
        for c in &x.concepts {
            outln!(
                "  concept {:>3}  {:>8.4}  [{}]  e.g. {}",
                c.concept,
                c.activation,
                c.words.join(", "),
                c.examples.join(" ")
            )?;
        }
    }
    outln!(
        "saved in {} (shown by `coxlmm report --run {}`)",
        folder.explain().display(),
        a.run.display()
    )?;
    if failed == a.images.len() {
        return Err(Error::NoReadableImage.into());
    }
    Ok(())
}
