//! [`BertScorer`]: candidates against groups of references, as `bert_score.score(cands, refs)`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{BertScoreError, Result};
use crate::greedy::{greedy_f1, Prf};
use crate::model::{BertEncoder, TokenEmbeddings};
use crate::params::{Baseline, BertScoreParams, IdfWeights};

/// The BERTScore of one candidate, with what it was computed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertScore {
    /// The encoder's name (e.g. `all-MiniLM-L6-v2`).
    pub model: String,
    /// The hidden layer (`bert_score`'s `num_layers`).
    pub layer: usize,
    /// Whether tokens were idf-weighted.
    pub idf: bool,
    /// The baseline the scores were rescaled with, and its source; `None` = raw scores.
    pub baseline: Option<Baseline>,
    /// Precision.
    pub p: f64,
    /// Recall.
    pub r: f64,
    /// F1 (with several references, the best F1, which need not be `2PR/(P+R)` of the best P and R).
    pub f1: f64,
}

/// Token weights for one call.
enum Weights<'a> {
    /// 1 for every token, 0 for `[CLS]` and `[SEP]` (`bert_score` without idf).
    Uniform { cls: u32, sep: u32 },
    /// An idf table.
    Idf(&'a IdfWeights),
}

impl Weights<'_> {
    fn of(&self, ids: &[u32]) -> Vec<f64> {
        match self {
            Weights::Uniform { cls, sep } => ids
                .iter()
                .map(|id| if id == cls || id == sep { 0.0 } else { 1.0 })
                .collect(),
            Weights::Idf(t) => ids.iter().map(|&id| t.weight(id)).collect(),
        }
    }
}

/// BERTScore with one encoder and one set of [`BertScoreParams`].
#[derive(Debug)]
pub struct BertScorer {
    encoder: BertEncoder,
    params: BertScoreParams,
    /// Every sentence encoded so far: an evaluation scores many candidate lists against the same
    /// references, and a sentence's embedding does not depend on its batch.
    cache: Mutex<HashMap<String, Arc<TokenEmbeddings>>>,
}

impl BertScorer {
    /// Load the model in `dir` (see [`BertEncoder::load`] for the files and errors) on the CPU.
    ///
    /// ```no_run
    /// use cox_bertscore::{BertScoreParams, BertScorer};
    /// let scorer = BertScorer::load(".cache/models/all-minilm-l6-v2", &BertScoreParams::default())?;
    /// let s = scorer.score(&["dog, grass, frisbee"], &[vec!["A dog catches a frisbee on the grass."]])?;
    /// assert_eq!(s[0].model, "all-MiniLM-L6-v2");
    /// # Ok::<(), cox_bertscore::BertScoreError>(())
    /// ```
    pub fn load(dir: impl AsRef<Path>, params: &BertScoreParams) -> Result<BertScorer> {
        Self::load_on(dir, params, &Device::Cpu)
    }

    /// [`BertScorer::load`] on a given device.
    pub fn load_on(
        dir: impl AsRef<Path>,
        params: &BertScoreParams,
        device: &Device,
    ) -> Result<BertScorer> {
        let encoder = BertEncoder::load(dir.as_ref(), params.layer, device)?;
        params.check(encoder.num_layers())?;
        Ok(BertScorer {
            encoder,
            params: params.clone(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Report scores under another model name.
    pub fn with_model_name(mut self, name: impl Into<String>) -> BertScorer {
        self.encoder.set_name(name);
        self
    }

    /// The model's name as reported in every [`BertScore`].
    pub fn model_name(&self) -> &str {
        self.encoder.name()
    }

    /// The encoder.
    pub fn encoder(&self) -> &BertEncoder {
        &self.encoder
    }

    /// The parameters.
    pub fn params(&self) -> &BertScoreParams {
        &self.params
    }

    /// Score each candidate against its group of references (one or more), as
    /// `bert_score.score(cands, refs, num_layers=layer, idf=idf, rescale_with_baseline=...)`: every
    /// (candidate, reference) pair is scored with [`greedy_f1`], P, R and F1 are each the maximum over
    /// the group, then rescaled when a baseline is set. With `idf`, the weights are counted over all the
    /// references of this call (each group's references listed in order), as `bert_score` does.
    /// A candidate or reference with no token besides `[CLS]`/`[SEP]` scores 0 (before rescaling).
    ///
    /// ```no_run
    /// use cox_bertscore::{BertScoreParams, BertScorer};
    /// let scorer = BertScorer::load(".cache/models/all-minilm-l6-v2", &BertScoreParams::default())?;
    /// let s = scorer.score(&["a dog"], &[vec!["A dog.", "A puppy on a lawn."]])?;
    /// assert!(s[0].f1 > 0.5);
    /// # Ok::<(), cox_bertscore::BertScoreError>(())
    /// ```
    pub fn score<C: AsRef<str>, R: AsRef<str>>(
        &self,
        cands: &[C],
        refs: &[Vec<R>],
    ) -> Result<Vec<BertScore>> {
        check_groups(cands.len(), refs)?;
        if self.params.idf {
            let flat: Vec<&str> = refs.iter().flatten().map(AsRef::as_ref).collect();
            let idf = self.idf_weights(&flat)?;
            self.score_weighted(cands, refs, &Weights::Idf(&idf), true)
        } else {
            let (cls, sep) = self.encoder.special_ids();
            self.score_weighted(cands, refs, &Weights::Uniform { cls, sep }, false)
        }
    }

    /// [`BertScorer::score`] with a given idf table (`bert_score`'s `idf=<dict>`), whatever
    /// `params.idf` says.
    pub fn score_with_idf<C: AsRef<str>, R: AsRef<str>>(
        &self,
        cands: &[C],
        refs: &[Vec<R>],
        idf: &IdfWeights,
    ) -> Result<Vec<BertScore>> {
        check_groups(cands.len(), refs)?;
        self.score_weighted(cands, refs, &Weights::Idf(idf), true)
    }

    /// Forgets the sentences encoded so far (they are kept to serve later calls).
    pub fn clear_cache(&self) {
        self.cache.lock().expect("cache lock").clear();
    }

    /// The embeddings of `sentences`, encoding only those not seen before.
    fn embed_cached(&self, sentences: &[&str]) -> Result<Vec<Arc<TokenEmbeddings>>> {
        let missing: Vec<&str> = {
            let cache = self.cache.lock().expect("cache lock");
            sentences
                .iter()
                .copied()
                .filter(|s| !cache.contains_key(*s))
                .collect()
        };
        let fresh = self.encoder.embed(&missing, self.params.batch_size)?;
        let mut cache = self.cache.lock().expect("cache lock");
        for (s, e) in missing.iter().zip(fresh) {
            cache.insert((*s).to_string(), Arc::new(e));
        }
        Ok(sentences.iter().map(|s| Arc::clone(&cache[*s])).collect())
    }

    /// The idf table of a reference corpus, tokenised as the scorer tokenises (`get_idf_dict`).
    pub fn idf_weights<S: AsRef<str>>(&self, corpus: &[S]) -> Result<IdfWeights> {
        let docs: Vec<Vec<u32>> = corpus
            .iter()
            .map(|s| self.encoder.tokenize(s.as_ref()))
            .collect::<Result<_>>()?;
        Ok(IdfWeights::from_token_ids(&docs))
    }

    fn score_weighted<C: AsRef<str>, R: AsRef<str>>(
        &self,
        cands: &[C],
        refs: &[Vec<R>],
        weights: &Weights<'_>,
        idf: bool,
    ) -> Result<Vec<BertScore>> {
        // Each distinct sentence is encoded once.
        let mut unique: Vec<&str> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for s in cands
            .iter()
            .map(AsRef::as_ref)
            .chain(refs.iter().flatten().map(AsRef::as_ref))
        {
            index.entry(s).or_insert_with(|| {
                unique.push(s);
                unique.len() - 1
            });
        }
        let emb = self.embed_cached(&unique)?;
        let w: Vec<Vec<f64>> = emb.iter().map(|e| weights.of(&e.ids)).collect();
        let get = |s: &str| index[s];
        let dim = self.encoder.hidden_size();
        let pair = |c: usize, r: usize| -> Prf {
            let (ec, er): (&TokenEmbeddings, &TokenEmbeddings) = (&*emb[c], &*emb[r]);
            if ec.ids.len() <= 2 || er.ids.len() <= 2 {
                return Prf::ZERO;
            }
            greedy_f1(&ec.values, &w[c], &er.values, &w[r], dim)
        };
        let baseline = self.params.rescale.clone();
        Ok(cands
            .iter()
            .zip(refs)
            .map(|(c, group)| {
                let ci = get(c.as_ref());
                let best = group
                    .iter()
                    .map(|r| pair(ci, get(r.as_ref())))
                    .reduce(Prf::max)
                    .expect("groups are non-empty");
                let s = match &baseline {
                    Some(b) => best.rescaled(b.p, b.r, b.f),
                    None => best,
                };
                BertScore {
                    model: self.encoder.name().to_string(),
                    layer: self.encoder.layer(),
                    idf,
                    baseline: baseline.clone(),
                    p: s.p,
                    r: s.r,
                    f1: s.f1,
                }
            })
            .collect())
    }
}

fn check_groups<R>(cands: usize, refs: &[Vec<R>]) -> Result<()> {
    if cands != refs.len() {
        return Err(BertScoreError::Mismatch {
            cands,
            refs: refs.len(),
        });
    }
    if let Some(index) = refs.iter().position(Vec::is_empty) {
        return Err(BertScoreError::NoReference { index });
    }
    Ok(())
}
