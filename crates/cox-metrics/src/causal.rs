//! Causal validity of steering on a world whose factors are known (`docs/method.md`, "Steering and
//! causal validity"): after adding a concept's direction to the residual stream, does the caption
//! now give the object of interest the factor value the concept was matched to (**success**),
//! leave everything else as it was (**specificity**) and still follow the caption grammar
//! (**fluency**)? And after projecting the concept out (**ablation**), how much probability do the
//! token of interest and the factor's word lose?
//!
//! Captions arrive already parsed ([`ParsedScene`]: per-object and per-scene `key → word` maps, as
//! the world's grammar defines them), so this module is pure arithmetic over them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{MetricsError, Result};

/// One caption read with the world's grammar: each object's attributes (`size`, `colour`,
/// `shape`, `position` → word) in caption order, and the scene's (`texture`, `background`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedScene {
    /// Per object, attribute → word.
    pub objects: Vec<BTreeMap<String, String>>,
    /// Scene attribute → word.
    pub scene: BTreeMap<String, String>,
}

impl ParsedScene {
    /// The value of `key` for object `object`, or of the scene attribute `key` when objects do
    /// not have it.
    pub fn value(&self, object: usize, key: &str) -> Option<&str> {
        if let Some(v) = self.objects.get(object).and_then(|o| o.get(key)) {
            return Some(v);
        }
        self.scene.get(key).map(String::as_str)
    }
}

/// One steered caption: the unsteered caption `before` (whose object `object` is the object of
/// interest and lacks `key = value`), and the steered one (`None` when the grammar cannot parse
/// it).
#[derive(Clone, Copy, Debug)]
pub struct Trial<'a> {
    /// Index of the object of interest in `before.objects`.
    pub object: usize,
    /// The factor's key (`colour`).
    pub key: &'a str,
    /// The value steered towards (`red`).
    pub value: &'a str,
    /// The unsteered caption.
    pub before: &'a ParsedScene,
    /// The steered caption, `None` when unparsable.
    pub after: Option<&'a ParsedScene>,
}

/// Success, specificity and fluency over a set of trials, each a share in `[0, 1]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CausalScores {
    /// Trials scored.
    pub trials: usize,
    /// Share of steered captions whose object of interest (or scene, for a scene factor) has
    /// the target value.
    pub success: f64,
    /// Mean over trials of the share of the other attribute slots (the object of interest's
    /// other attributes, every attribute of the other objects, the scene's other attributes)
    /// that kept their unsteered word; an unparsable caption keeps none.
    pub specificity: f64,
    /// Share of steered captions the grammar parses.
    pub fluency: f64,
}

/// Scores `trials` (see [`CausalScores`]). An object of interest out of range is an error.
pub fn causal_scores(trials: &[Trial<'_>]) -> Result<CausalScores> {
    const OP: &str = "causal_scores";
    if trials.is_empty() {
        return Err(MetricsError::InvalidParameter {
            op: OP,
            name: "trials",
            value: 0.0,
            expected: "at least one trial",
        });
    }
    let (mut success, mut fluent, mut spec_sum, mut spec_n) = (0usize, 0usize, 0.0f64, 0usize);
    for t in trials {
        if t.object >= t.before.objects.len() {
            return Err(MetricsError::InvalidParameter {
                op: OP,
                name: "object",
                value: t.object as f64,
                expected: "an object of the unsteered caption",
            });
        }
        fluent += usize::from(t.after.is_some());
        success += usize::from(
            t.after
                .and_then(|a| a.value(t.object, t.key))
                .is_some_and(|v| v == t.value),
        );
        // The slots that should not move.
        let mut slots = 0usize;
        let mut kept = 0usize;
        for (j, o) in t.before.objects.iter().enumerate() {
            for (k, v) in o {
                if j == t.object && k == t.key {
                    continue;
                }
                slots += 1;
                let now = t
                    .after
                    .and_then(|a| a.objects.get(j))
                    .and_then(|o| o.get(k));
                kept += usize::from(now == Some(v));
            }
        }
        for (k, v) in &t.before.scene {
            if k == t.key {
                continue;
            }
            slots += 1;
            kept += usize::from(t.after.and_then(|a| a.scene.get(k)) == Some(v));
        }
        if slots > 0 {
            spec_sum += kept as f64 / slots as f64;
            spec_n += 1;
        }
    }
    let n = trials.len() as f64;
    Ok(CausalScores {
        trials: trials.len(),
        success: success as f64 / n,
        specificity: if spec_n == 0 {
            1.0
        } else {
            spec_sum / spec_n as f64
        },
        fluency: fluent as f64 / n,
    })
}

/// The mean of a probability before and after an intervention over the same samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbabilityChange {
    /// Samples averaged.
    pub samples: usize,
    /// Mean probability without the intervention.
    pub before: f64,
    /// Mean probability with it.
    pub after: f64,
    /// `after − before`.
    pub change: f64,
}

/// Mean probabilities before and after (paired samples, equal lengths, values in `[0, 1]`).
pub fn probability_change(before: &[f64], after: &[f64]) -> Result<ProbabilityChange> {
    const OP: &str = "probability_change";
    if before.len() != after.len() || before.is_empty() {
        return Err(MetricsError::InvalidParameter {
            op: OP,
            name: "samples",
            value: after.len() as f64,
            expected: "as many probabilities after as before, at least one",
        });
    }
    if let Some(&bad) = before
        .iter()
        .chain(after)
        .find(|p| !(0.0..=1.0).contains(*p))
    {
        return Err(MetricsError::InvalidParameter {
            op: OP,
            name: "probability",
            value: bad,
            expected: "a probability in [0, 1]",
        });
    }
    let n = before.len() as f64;
    let (b, a) = (
        before.iter().sum::<f64>() / n,
        after.iter().sum::<f64>() / n,
    );
    Ok(ProbabilityChange {
        samples: before.len(),
        before: b,
        after: a,
        change: a - b,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(objects: &[[&str; 4]], texture: &str, background: &str) -> ParsedScene {
        let keys = ["size", "colour", "shape", "position"];
        ParsedScene {
            objects: objects
                .iter()
                .map(|o| {
                    keys.iter()
                        .zip(o)
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .collect(),
            scene: [("texture", texture), ("background", background)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn success_specificity_and_fluency_count_what_they_say() {
        let before = scene(
            &[
                ["small", "blue", "circle", "left"],
                ["large", "green", "star", "right"],
            ],
            "plain",
            "sky",
        );
        // Perfect: only the circle's colour moved to red.
        let perfect = scene(
            &[
                ["small", "red", "circle", "left"],
                ["large", "green", "star", "right"],
            ],
            "plain",
            "sky",
        );
        // Red everywhere: success, but the star's colour changed too (1 of 9 slots).
        let sloppy = scene(
            &[
                ["small", "red", "circle", "left"],
                ["large", "red", "star", "right"],
            ],
            "plain",
            "sky",
        );
        let trials = [
            Trial {
                object: 0,
                key: "colour",
                value: "red",
                before: &before,
                after: Some(&perfect),
            },
            Trial {
                object: 0,
                key: "colour",
                value: "red",
                before: &before,
                after: Some(&sloppy),
            },
            Trial {
                object: 0,
                key: "colour",
                value: "red",
                before: &before,
                after: None,
            },
            Trial {
                object: 0,
                key: "colour",
                value: "red",
                before: &before,
                after: Some(&before),
            },
        ];
        let s = causal_scores(&trials).unwrap();
        assert_eq!(s.trials, 4);
        assert!((s.success - 0.5).abs() < 1e-12);
        assert!((s.fluency - 0.75).abs() < 1e-12);
        let want = (1.0 + 8.0 / 9.0 + 0.0 + 1.0) / 4.0;
        assert!((s.specificity - want).abs() < 1e-12, "{}", s.specificity);
        // A scene factor is looked up on the scene.
        let grass = scene(
            &[
                ["small", "blue", "circle", "left"],
                ["large", "green", "star", "right"],
            ],
            "plain",
            "grass",
        );
        let s = causal_scores(&[Trial {
            object: 0,
            key: "background",
            value: "grass",
            before: &before,
            after: Some(&grass),
        }])
        .unwrap();
        assert_eq!((s.success, s.specificity), (1.0, 1.0));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let before = scene(&[["small", "blue", "circle", "left"]], "plain", "sky");
        assert!(causal_scores(&[]).is_err());
        assert!(causal_scores(&[Trial {
            object: 3,
            key: "colour",
            value: "red",
            before: &before,
            after: None
        }])
        .is_err());
        assert!(probability_change(&[0.5], &[]).is_err());
        assert!(probability_change(&[1.5], &[0.1]).is_err());
        let c = probability_change(&[0.5, 0.7], &[0.1, 0.3]).unwrap();
        assert!((c.change + 0.4).abs() < 1e-12);
    }
}
