//! `coxlmm explain`: local explanations of new images with a finished run's dictionary — caption
//! the image, take the representation predicting the token of interest, project it onto the
//! concepts (`encode`) and show the top concepts with their words and example images.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cox_ground_visual::most_activating;
use cox_hook::{
    parse_layers, select_generation, GtFilter, PositionRule, SelectOptions, TokenOfInterest,
};
use cox_model::{Llava, ResidualCapture};
use cox_snmf::{Par, SamplesRef};
use cox_store::{read_dictionary, tensor_path};

use crate::pipeline::{
    concept_dictionary, load_split, methods, read_grounding, read_settings, top_concepts, RunDir,
};
use crate::report::Explanation;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (made by `coxlmm run` or `coxlmm demo`).
    #[arg(long)]
    run: PathBuf,
    /// Concepts shown per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Images to explain.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let dir = RunDir::new(&a.run);
    let s = read_settings(&dir)?;
    let method = methods(&s)?[0];
    let d = read_dictionary(&tensor_path(&dir.dict(method)))?;
    let dict = concept_dictionary(&d, method);
    let g = read_grounding(&dir, method)?;
    let train = load_split(&dir, &s.train_split, &s.layer)?;
    let mas = most_activating(&d.activations.data, train.m, dict.k, s.n_mas)?;
    let llava = Llava::load(&s.model, &Default::default())
        .with_context(|| format!("cannot load the model {}", s.model))?;
    let layers = parse_layers(&s.layer)?;
    let capture = ResidualCapture::new(layers.iter().copied());
    let toi = TokenOfInterest::new(llava.tokenizer.inner(), &s.token)
        .with_context(|| format!("token of interest {:?}", s.token))?;
    let opts = SelectOptions {
        gt: GtFilter::None,
        position: PositionRule::Predicting,
    };
    std::fs::create_dir_all(dir.explain())?;
    let mut failed = 0usize;
    for path in &a.images {
        let px = match llava.load_pixels(path) {
            Ok(px) => px,
            Err(e) => {
                eprintln!("{}: cannot read the image ({e}); skipped", path.display());
                failed += 1;
                continue;
            }
        };
        let input = llava.prepare(crate::extract::DEFAULT_PROMPT, Some(&px))?;
        let generation = llava.generate(&input, s.max_new_tokens, &capture)?;
        let sel = select_generation(&toi, &[], &generation, &opts)?;
        println!("{}", path.display());
        println!("  caption: {}", generation.text.trim());
        let mut e = Explanation {
            image: path.display().to_string(),
            id: stem(path),
            generated: generation.text.trim().to_string(),
            token_generated: sel.kept.is_some(),
            concepts: Vec::new(),
            thumbnail: None,
        };
        match sel.kept {
            None => println!(
                "  {:?} was not generated: no representation to explain (the model does not see one here)",
                s.token
            ),
            Some(kept) => {
                let v = &kept.vectors[0];
                let codes = dict.encode(SamplesRef::new(v, 1, v.len())?, Par::Seq)?;
                let top = top_concepts(&codes, a.top.min(dict.k));
                for &c in &top {
                    let words = g.words[c].words.join(", ");
                    let examples: Vec<&str> = mas[c]
                        .iter()
                        .map(|m| train.samples[m.sample].id.as_str())
                        .collect();
                    println!(
                        "  concept {c:>3}  {:>8.4}  [{words}]  e.g. {}",
                        codes[c],
                        examples.join(" ")
                    );
                }
                e.concepts = top.iter().map(|&c| (c, codes[c])).collect();
            }
        }
        let out = dir.explain().join(format!("{}.json", e.id));
        cox_store::atomic_write(&out, serde_json::to_string_pretty(&e)?.as_bytes())?;
    }
    println!(
        "saved in {} (shown by `coxlmm report --run {}`)",
        dir.explain().display(),
        a.run.display()
    );
    if failed == a.images.len() {
        anyhow::bail!("no image could be read");
    }
    Ok(())
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map_or("image".into(), |s| s.to_string_lossy().into_owned())
}
