//! The settings of a run. `run.json` keeps them, and a rerun with other settings is refused.

use std::path::PathBuf;

use cox_decomp::Method;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The defaults of [`RunSettings`] (the paper's protocol where it has one), shared with the CLI.
pub mod defaults {
    use cox_decomp::Method;

    /// Every decomposition, Semi-NMF first (the one the report shows).
    pub const METHODS: [Method; 4] = [Method::SemiNmf, Method::Pca, Method::KMeans, Method::Simple];
    /// Concepts K.
    pub const K: usize = 20;
    /// Semi-NMF's λ.
    pub const LAMBDA: f64 = 1.0;
    /// Most-activating samples per concept.
    pub const N_MAS: usize = 5;
    /// Grounded words per concept.
    pub const WORDS: usize = 10;
    /// Top-logit tokens decoded per concept before the word filter.
    pub const TOP_TOKENS: usize = 50;
    /// Greedy generation length limit.
    pub const MAX_NEW_TOKENS: usize = 50;
    /// Test images explained in the report.
    pub const EXPLAIN: usize = 12;
}

/// What a run computes; see the field docs for the meaning of each setting.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunSettings {
    /// A checkpoint directory of a supported architecture (LLaVA-1.5, Qwen2-VL, Qwen2.5-VL; see
    /// `docs/models.md`) or a hub id in the local Hugging Face cache.
    pub model: String,
    /// The dataset: `coco:DIR` or `folder:DIR` (see `docs/formats.md`).
    pub data: String,
    /// The token of interest t.
    pub token: String,
    /// The layer whose residual stream is decomposed: a block index or `norm`.
    pub layer: String,
    /// The split the dictionary is learnt on.
    pub train_split: String,
    /// The split the dictionary is evaluated on (empty: none).
    pub test_split: String,
    /// Keep only the first N samples of each split (before the ground-truth filter).
    pub limit: Option<usize>,
    /// The decompositions; the first is the one the report shows.
    #[serde(with = "method_list")]
    pub methods: Vec<Method>,
    /// Number of concepts K.
    pub k: usize,
    /// Semi-NMF's sparsity weight λ.
    pub lambda: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Most-activating samples per concept (visual grounding).
    pub n_mas: usize,
    /// Grounded words per concept.
    pub words: usize,
    /// Top-logit tokens decoded per concept before filtering.
    pub top_tokens: usize,
    /// Greedy generation length limit.
    pub max_new_tokens: usize,
    /// Extra Semi-NMF fits on seeded subsamples to measure dictionary stability (0: skip).
    pub stability_seeds: usize,
    /// A BERT-family model directory for BERTScore (`None`: all-MiniLM-L6-v2 from
    /// `cargo xtask fetch` when present).
    pub bert: Option<PathBuf>,
    /// A CLIP model directory (HF `CLIPModel` layout) for CLIPScore; without it CLIPScore is
    /// reported as unavailable.
    pub clip: Option<PathBuf>,
    /// Test images explained in the report.
    pub explain: usize,
    /// Layers captured during extraction besides `layer` (comma-separated, or `all`), so that runs
    /// at other layers can share this run's stores.
    pub capture: Option<String>,
    /// The Noise-Imgs baseline (`docs/method.md` §3.2): a finished run folder whose
    /// Semi-NMF dictionary was learnt on noise images; its words are evaluated on this run's test
    /// split like the methods' (`references.*_noise_imgs` in `metrics.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_dict: Option<PathBuf>,
    /// Accept `folder:` image paths that lead outside the dataset folder (absolute, or `..`
    /// climbing above it); by default such a line is an error. A permission on how the dataset
    /// is read, not a setting of what is computed, so `run.json` does not keep it and a run may be
    /// resumed with or without it.
    #[serde(skip)]
    pub allow_outside_paths: bool,
    /// transformers' repetition penalty for greedy generation (`None`: the checkpoint's
    /// `generation_config.json` value, 1 when absent; 1 turns it off). Absent from `run.json`
    /// when not chosen, so folders written before the option keep their settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f32>,
}

impl RunSettings {
    /// The defaults for a model, dataset, token and layer: all four methods, K = 20, λ = 1,
    /// train/test splits, seed 0.
    pub fn new(
        model: impl Into<String>,
        data: impl Into<String>,
        token: impl Into<String>,
        layer: impl Into<String>,
    ) -> Self {
        Self {
            model: model.into(),
            data: data.into(),
            token: token.into(),
            layer: layer.into(),
            train_split: "train".into(),
            test_split: "test".into(),
            limit: None,
            methods: defaults::METHODS.to_vec(),
            k: defaults::K,
            lambda: defaults::LAMBDA,
            seed: 0,
            n_mas: defaults::N_MAS,
            words: defaults::WORDS,
            top_tokens: defaults::TOP_TOKENS,
            max_new_tokens: defaults::MAX_NEW_TOKENS,
            stability_seeds: 0,
            bert: None,
            clip: None,
            explain: defaults::EXPLAIN,
            capture: None,
            noise_dict: None,
            allow_outside_paths: false,
            repetition_penalty: None,
        }
    }

    /// Refuses settings no step could run with.
    pub fn check(&self) -> Result<(), Error> {
        if self.methods.is_empty() {
            return Err(Error::Setting {
                name: "methods",
                why: "give at least one of snmf, pca, kmeans, simple".into(),
            });
        }
        if self.k == 0 {
            return Err(Error::Setting {
                name: "k",
                why: "K must be at least 1".into(),
            });
        }
        // Checked here, before the extraction, rather than when Semi-NMF is built after it.
        if self.methods.contains(&Method::SemiNmf)
            && !(self.lambda.is_finite() && self.lambda >= 0.0)
        {
            return Err(Error::Setting {
                name: "lambda",
                why: format!(
                    "Semi-NMF's sparsity weight λ must be finite and >= 0, got {}",
                    self.lambda
                ),
            });
        }
        if let Some(p) = self.repetition_penalty {
            if !(p.is_finite() && p > 0.0) {
                return Err(Error::Setting {
                    name: "repetition_penalty",
                    why: format!("the repetition penalty must be a positive number, got {p}"),
                });
            }
        }
        Ok(())
    }

    /// The method the report and `explain` use: the first one.
    pub fn primary_method(&self) -> Method {
        self.methods.first().copied().unwrap_or(Method::SemiNmf)
    }

    /// The splits to extract: train, then test when there is one.
    pub fn splits(&self) -> Vec<String> {
        let mut v = vec![self.train_split.clone()];
        if !self.test_split.is_empty() {
            v.push(self.test_split.clone());
        }
        v
    }

    /// The layers extraction captures: `layer` first, then `capture`'s layers (`all`: every block
    /// in model order, then `norm`, so that runs at other layers ask for the same store).
    pub fn capture_layers(&self, num_layers: usize) -> Vec<String> {
        let mut out = vec![self.layer.clone()];
        match self.capture.as_deref() {
            None | Some("") => {}
            Some("all") => {
                out = (0..num_layers).map(|i| i.to_string()).collect();
                out.push("norm".into());
                if !out.contains(&self.layer) {
                    out.insert(0, self.layer.clone());
                }
            }
            Some(list) => out.extend(list.split(',').map(|l| l.trim().to_string())),
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|l| !l.is_empty() && seen.insert(l.clone()));
        out
    }
}

/// `methods` is stored as the comma-separated names (`"snmf,pca,kmeans,simple"`), as the command
/// line writes it.
mod method_list {
    use cox_decomp::Method;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &[Method], s: S) -> Result<S::Ok, S::Error> {
        let names: Vec<&str> = m.iter().map(|m| m.name()).collect();
        s.serialize_str(&names.join(","))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Method>, D::Error> {
        let text = String::deserialize(d)?;
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let m: Method = name.parse().map_err(serde::de::Error::custom)?;
            if !out.contains(&m) {
                out.push(m);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip_as_the_command_line_writes_them() {
        let s = RunSettings::new("m", "folder:d", "dog", "31");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["methods"], "snmf,pca,kmeans,simple");
        assert!(v.get("noise_dict").is_none());
        // Absent unless chosen, so run folders written before the option keep their settings.
        assert!(v.get("repetition_penalty").is_none());
        let back: RunSettings = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_non_positive_repetition_penalty_is_refused_before_anything_runs() {
        let mut s = RunSettings::new("m", "folder:d", "dog", "31");
        s.repetition_penalty = Some(1.05);
        assert!(s.check().is_ok());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["repetition_penalty"].as_f64(), Some(1.05f32 as f64));
        for bad in [0.0, -1.0, f32::NAN] {
            s.repetition_penalty = Some(bad);
            let e = s.check().unwrap_err().to_string();
            assert!(e.contains("repetition"), "{e}");
        }
    }

    #[test]
    fn capture_all_lists_every_layer_once_with_the_run_layer() {
        let mut s = RunSettings::new("m", "folder:d", "dog", "norm");
        s.capture = Some("all".into());
        assert_eq!(s.capture_layers(2), ["0", "1", "norm"]);
        s.layer = "1".into();
        s.capture = Some("0, 1,norm".into());
        assert_eq!(s.capture_layers(2), ["1", "0", "norm"]);
    }
}
