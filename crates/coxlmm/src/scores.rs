//! The model-based scores of the evaluation (BERTScore, CLIPScore), each optional: a score whose
//! model is absent is reported as unavailable, never faked.

use std::path::{Path, PathBuf};

use anyhow::Result;
use cox_bertscore::{BertScoreParams, BertScorer};
use cox_clipscore::{ClipParams, ClipScorer};
use cox_ground_text::ConceptWords;
use cox_metrics::MeanStd;

/// Where `cargo xtask fetch` puts the packaged real weights: `$COXLMM_MODELS`, else the source
/// checkout's `.cache/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("COXLMM_MODELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models"),
    }
}

/// The separator between grounded words in a BERTScore candidate.
pub const WORD_SEPARATOR: &str = ", ";

fn mean_std(v: &[f64]) -> Option<MeanStd> {
    (!v.is_empty()).then(|| MeanStd::of(v))
}

/// BERTScore F1 with the given model, or the reason it is unavailable.
pub struct BertRunner {
    scorer: Option<BertScorer>,
    why: String,
}

impl BertRunner {
    /// `dir`, else the fetched all-MiniLM-L6-v2.
    pub fn open(dir: Option<&Path>) -> Self {
        let (dir, name) = match dir {
            Some(d) => (d.to_path_buf(), None),
            None => (
                models_dir().join("all-minilm-l6-v2"),
                Some("all-MiniLM-L6-v2"),
            ),
        };
        if !dir.join("config.json").is_file() {
            return Self {
                scorer: None,
                why: format!(
                    "unavailable: no BERT model at {} (run `cargo xtask fetch`, or pass --bert DIR)",
                    dir.display()
                ),
            };
        }
        match BertScorer::load(&dir, &BertScoreParams::default()) {
            Ok(s) => {
                let s = match name {
                    Some(n) => s.with_model_name(n),
                    None => s,
                };
                let why = format!(
                    "{} (layer {}, raw F1, idf off)",
                    s.model_name(),
                    s.encoder().layer()
                );
                Self {
                    scorer: Some(s),
                    why,
                }
            }
            Err(e) => Self {
                scorer: None,
                why: format!("unavailable: {e}"),
            },
        }
    }

    pub fn available(&self) -> bool {
        self.scorer.is_some()
    }

    pub fn describe(&self) -> String {
        self.why.clone()
    }

    /// Mean ± std of BERTScore F1 of each sample's words (joined by [`WORD_SEPARATOR`]) against its
    /// reference captions (the maximum over references, as `bert_score`).
    pub fn top1(&self, words: &[&[String]], refs: &[Vec<String>]) -> Result<Option<MeanStd>> {
        let cands: Vec<String> = words.iter().map(|w| w.join(WORD_SEPARATOR)).collect();
        self.score(&cands, refs)
    }

    /// Mean ± std of BERTScore F1 of whole sentences (the first of each list) against references.
    pub fn top1_sentences(
        &self,
        cands: &[&[String]],
        refs: &[Vec<String>],
    ) -> Result<Option<MeanStd>> {
        let cands: Vec<String> = cands.iter().map(|c| c.join(" ")).collect();
        let keep: Vec<usize> = (0..refs.len()).filter(|&i| !refs[i].is_empty()).collect();
        let c: Vec<String> = keep.iter().map(|&i| cands[i].clone()).collect();
        let r: Vec<Vec<String>> = keep.iter().map(|&i| refs[i].clone()).collect();
        self.score(&c, &r)
    }

    fn score(&self, cands: &[String], refs: &[Vec<String>]) -> Result<Option<MeanStd>> {
        let Some(s) = &self.scorer else {
            return Ok(None);
        };
        if cands.is_empty() {
            return Ok(None);
        }
        let scores = s.score(cands, refs)?;
        let f1: Vec<f64> = scores.iter().map(|b| b.f1).collect();
        Ok(mean_std(&f1))
    }
}

/// CLIPScore with a user-given CLIP checkpoint, or the reason it is unavailable.
pub struct ClipRunner {
    scorer: Option<ClipScorer>,
    why: String,
}

impl ClipRunner {
    pub fn open(dir: Option<&Path>) -> Self {
        let Some(dir) = dir else {
            return Self {
                scorer: None,
                why: "unavailable: no CLIP checkpoint given (--clip DIR, HF CLIPModel layout)"
                    .into(),
            };
        };
        let mut params = ClipParams::default();
        let bpe = models_dir().join("clip-bpe/bpe_simple_vocab_16e6.txt.gz");
        if !dir.join("tokenizer.json").is_file() && bpe.is_file() {
            params.bpe_path = Some(bpe);
        }
        match ClipScorer::load(dir, &params) {
            Ok(s) => Self {
                scorer: Some(s),
                why: format!("CLIP from {}", dir.display()),
            },
            Err(e) => Self {
                scorer: None,
                why: format!("unavailable: {e}"),
            },
        }
    }

    pub fn available(&self) -> bool {
        self.scorer.is_some()
    }

    pub fn describe(&self) -> String {
        self.why.clone()
    }

    /// The paper's Table 1 protocol: top-1 and top-3 CLIPScore of each test image against the
    /// words of its most activated concepts.
    pub fn test_scores(
        &self,
        images: &[PathBuf],
        codes: &[f32],
        k: usize,
        words: &[ConceptWords],
    ) -> Result<(Option<MeanStd>, Option<MeanStd>)> {
        let Some(s) = &self.scorer else {
            return Ok((None, None));
        };
        let emb = s.embed_image_files(images)?;
        let w: Vec<Vec<String>> = words.iter().map(|c| c.words.clone()).collect();
        debug_assert_eq!(w.len(), k);
        let r = s.test_clipscore_embedded(&emb, codes, &w)?;
        Ok((Some(r.top1), Some(r.top3)))
    }
}
