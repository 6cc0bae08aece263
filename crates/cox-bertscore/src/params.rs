//! Settings: which layer, idf weighting, baseline rescaling, batch size; the idf table; the candidate
//! string made from grounded words.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{BertScoreError, Result};

/// How grounded words become the candidate sentence: `", "`, as the reference joins them for
/// CLIPScore (docs/method.md §5.1, `", ".join(T_k)`), without CLIPScore's prefix sentence. docs/method.md §5.2
/// does not say how the paper built BERTScore's candidate (NOT FOUND), so the separator is a parameter
/// of [`candidate_from_words`].
pub const DEFAULT_WORD_SEPARATOR: &str = ", ";

/// The candidate sentence for a concept's grounded words: the words in their order (duplicates kept),
/// joined with `separator` ([`DEFAULT_WORD_SEPARATOR`] unless the caller chooses otherwise).
///
/// ```
/// use cox_bertscore::{candidate_from_words, DEFAULT_WORD_SEPARATOR};
/// assert_eq!(candidate_from_words(&["dog", "puppy", "leash"], DEFAULT_WORD_SEPARATOR), "dog, puppy, leash");
/// assert_eq!(candidate_from_words(&["dog", "puppy"], " "), "dog puppy");
/// ```
pub fn candidate_from_words<S: AsRef<str>>(words: &[S], separator: &str) -> String {
    words
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(separator)
}

/// The settings of a [`crate::BertScorer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertScoreParams {
    /// The hidden layer whose token vectors are compared: `bert_score`'s `num_layers` (0 = the embedding
    /// output, `L` = the output of encoder layer `L`). `None` = the last layer; `bert_score` has no
    /// default for all-MiniLM-L6-v2 (it is not in `model2layers`), so its calls pass `num_layers=6`.
    pub layer: Option<usize>,
    /// Weight tokens by inverse document frequency over the references of the call
    /// (`bert_score.score(..., idf=True)`); off by default, as in `bert_score`.
    pub idf: bool,
    /// Rescale P, R and F1 with a baseline, `(s − b) / (1 − b)`; `None` = raw scores.
    pub rescale: Option<Baseline>,
    /// Sentences per encoder batch (`bert_score`'s default 64).
    pub batch_size: usize,
}

impl Default for BertScoreParams {
    fn default() -> Self {
        Self {
            layer: None,
            idf: false,
            rescale: None,
            batch_size: 64,
        }
    }
}

impl BertScoreParams {
    /// Validate against a model with `num_layers` encoder layers and return the layer to use.
    ///
    /// ```
    /// use cox_bertscore::BertScoreParams;
    /// assert_eq!(BertScoreParams::default().check(6)?, 6);
    /// let p = BertScoreParams { layer: Some(7), ..Default::default() };
    /// assert!(p.check(6).is_err());
    /// # Ok::<(), cox_bertscore::BertScoreError>(())
    /// ```
    pub fn check(&self, num_layers: usize) -> Result<usize> {
        if self.batch_size == 0 {
            return Err(BertScoreError::InvalidParams(
                "batch_size must be at least 1".into(),
            ));
        }
        let layer = self.layer.unwrap_or(num_layers);
        if layer > num_layers {
            return Err(BertScoreError::InvalidParams(format!(
                "layer {layer} out of range: the model has {num_layers} layers (0 = embeddings ..= {num_layers})"
            )));
        }
        if let Some(b) = &self.rescale {
            b.check()?;
        }
        Ok(layer)
    }
}

/// Baseline values for rescaling, one per score, and where they came from (recorded in every
/// [`crate::BertScore`]). `bert_score` ships baselines for some models (`rescale_baseline/<lang>/<model>.tsv`)
/// but none for all-MiniLM-L6-v2, so for it the user supplies the values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Baseline of P.
    pub p: f64,
    /// Baseline of R.
    pub r: f64,
    /// Baseline of F1.
    pub f: f64,
    /// Where the values come from (a file, a paper, "user").
    pub source: String,
}

impl Baseline {
    /// Baseline values given directly.
    ///
    /// ```
    /// let b = cox_bertscore::Baseline::new(0.83, 0.83, 0.83, "user");
    /// assert_eq!(b.source, "user");
    /// ```
    pub fn new(p: f64, r: f64, f: f64, source: impl Into<String>) -> Baseline {
        Baseline {
            p,
            r,
            f,
            source: source.into(),
        }
    }

    /// The row for `layer` of a baseline file in `bert_score`'s format (comma-separated despite the
    /// `.tsv` name: a `LAYER,P,R,F` header, then row `i` for layer `i`; `bert_score` takes the row at
    /// position `num_layers`). `source` names the file in the result and in errors.
    ///
    /// ```
    /// let tsv = "LAYER,P,R,F\n0,0.1,0.2,0.3\n1,0.4,0.5,0.6\n";
    /// let b = cox_bertscore::Baseline::from_tsv(tsv, 1, "my.tsv")?;
    /// assert_eq!((b.p, b.r, b.f), (0.4, 0.5, 0.6));
    /// assert!(cox_bertscore::Baseline::from_tsv(tsv, 2, "my.tsv").is_err());
    /// # Ok::<(), cox_bertscore::BertScoreError>(())
    /// ```
    pub fn from_tsv(text: &str, layer: usize, source: &str) -> Result<Baseline> {
        let err = |msg: String| BertScoreError::Baseline {
            source_name: source.to_string(),
            msg,
        };
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines
            .next()
            .ok_or_else(|| err("empty file".into()))?
            .split(',')
            .map(str::trim)
            .collect();
        let col = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .ok_or_else(|| err(format!("no column {name} in header {header:?}")))
        };
        let (cp, cr, cf) = (col("P")?, col("R")?, col("F")?);
        let rows: Vec<&str> = lines.collect();
        let row = rows.get(layer).ok_or_else(|| {
            err(format!(
                "no row for layer {layer} ({} layer rows)",
                rows.len()
            ))
        })?;
        let cells: Vec<&str> = row.split(',').map(str::trim).collect();
        if let Some(cl) = header.iter().position(|h| *h == "LAYER") {
            if cells.get(cl).and_then(|c| c.parse::<usize>().ok()) != Some(layer) {
                return Err(err(format!("row {layer} is not layer {layer}: {row:?}")));
            }
        }
        let num = |c: usize, name: &str| -> Result<f64> {
            cells
                .get(c)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| err(format!("layer {layer}: bad {name} value in {row:?}")))
        };
        let b = Baseline::new(num(cp, "P")?, num(cr, "R")?, num(cf, "F")?, source);
        b.check()?;
        Ok(b)
    }

    fn check(&self) -> Result<()> {
        for (name, v) in [("P", self.p), ("R", self.r), ("F", self.f)] {
            if !v.is_finite() || v >= 1.0 {
                return Err(BertScoreError::Baseline {
                    source_name: self.source.clone(),
                    msg: format!("{name} baseline {v} must be finite and below 1"),
                });
            }
        }
        Ok(())
    }
}

/// Inverse document frequencies of token ids over a corpus of tokenised sentences, as `bert_score`'s
/// `get_idf_dict`: each sentence counts a token once, and with `N` sentences a token seen in `c` of
/// them weighs `ln((N + 1) / (c + 1))`; a token never seen weighs `ln(N + 1)`. Special tokens are
/// treated like any other, so `[CLS]` and `[SEP]`, present in every sentence, weigh 0.
#[derive(Debug, Clone, PartialEq)]
pub struct IdfWeights {
    docs: usize,
    counts: HashMap<u32, usize>,
}

impl IdfWeights {
    /// Count document frequencies over `docs` (token-id sequences, special tokens included).
    ///
    /// ```
    /// use cox_bertscore::IdfWeights;
    /// let idf = IdfWeights::from_token_ids(&[vec![101, 7, 7, 102], vec![101, 8, 102]]);
    /// assert_eq!(idf.weight(101), 0.0);                      // in both: ln(3/3)
    /// assert!((idf.weight(7) - (1.5f64).ln()).abs() < 1e-12); // in one, counted once: ln(3/2)
    /// assert!((idf.weight(9) - (3f64).ln()).abs() < 1e-12);   // unseen: ln(3)
    /// ```
    pub fn from_token_ids<D: AsRef<[u32]>>(docs: &[D]) -> IdfWeights {
        let mut counts = HashMap::new();
        for d in docs {
            let unique: HashSet<u32> = d.as_ref().iter().copied().collect();
            for id in unique {
                *counts.entry(id).or_insert(0usize) += 1;
            }
        }
        IdfWeights {
            docs: docs.len(),
            counts,
        }
    }

    /// The weight of a token id.
    pub fn weight(&self, id: u32) -> f64 {
        let c = self.counts.get(&id).copied().unwrap_or(0);
        ((self.docs as f64 + 1.0) / (c as f64 + 1.0)).ln()
    }

    /// The number of sentences counted.
    pub fn docs(&self) -> usize {
        self.docs
    }
}
