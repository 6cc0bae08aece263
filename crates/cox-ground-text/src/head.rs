//! The LM head product `W_U · u` and the top-k token selection.

use std::cmp::Ordering;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{GroundError, Result};

/// A borrowed view of the LM head (unembedding) `W_U`: `vocab × hidden` f32 values, row-major, row `i`
/// being token id `i`'s output embedding.
#[derive(Debug, Clone, Copy)]
pub struct LmHeadRef<'a> {
    weight: &'a [f32],
    vocab: usize,
    hidden: usize,
}

impl<'a> LmHeadRef<'a> {
    /// Wraps `weight` as a `vocab × hidden` row-major matrix.
    ///
    /// # Errors
    /// [`GroundError::HeadShape`] when `weight.len() != vocab * hidden` or either is zero.
    ///
    /// ```
    /// let w = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
    /// let head = cox_ground_text::LmHeadRef::new(&w, 3, 2)?;
    /// assert_eq!(head.row(2), &[1.0, 1.0]);
    /// # Ok::<(), cox_ground_text::GroundError>(())
    /// ```
    pub fn new(weight: &'a [f32], vocab: usize, hidden: usize) -> Result<Self> {
        if vocab == 0 || hidden == 0 || vocab.checked_mul(hidden) != Some(weight.len()) {
            return Err(GroundError::HeadShape {
                len: weight.len(),
                vocab,
                hidden,
            });
        }
        Ok(Self {
            weight,
            vocab,
            hidden,
        })
    }

    /// The number of rows V (token ids `0..V`).
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The hidden size B.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The whole matrix, row-major.
    pub fn weight(&self) -> &'a [f32] {
        self.weight
    }

    /// Token `id`'s row.
    ///
    /// # Panics
    /// When `id >= vocab`.
    #[track_caller]
    pub fn row(&self, id: usize) -> &'a [f32] {
        &self.weight[id * self.hidden..(id + 1) * self.hidden]
    }
}

/// A model's final RMSNorm, optionally applied to a concept vector before the LM head:
/// `u' = weight ⊙ u / sqrt(mean(u²) + eps)` (Llama's `LlamaRMSNorm`). The reference does not apply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmsNorm {
    /// The per-channel gain, length B.
    pub weight: Vec<f32>,
    /// Added to the mean square (Llama: `rms_norm_eps`, 1e-5 for LLaVA-1.5).
    pub eps: f32,
}

impl RmsNorm {
    /// Checks the weight length against the hidden size and that `eps` is finite and non-negative.
    pub fn check(&self, hidden: usize) -> Result<()> {
        if self.weight.len() != hidden {
            return Err(GroundError::NormShape {
                len: self.weight.len(),
                hidden,
            });
        }
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(GroundError::InvalidParam {
                name: "final_norm.eps",
                reason: format!("must be finite and >= 0, got {}", self.eps),
            });
        }
        Ok(())
    }

    /// Applies the norm to `u`. The mean square and the products are computed in f64 and each output
    /// is rounded to f32 once (HF computes in f32, so results may differ in the last bit).
    ///
    /// # Panics
    /// When `u.len() != self.weight.len()`.
    #[track_caller]
    pub fn apply(&self, u: &[f32]) -> Vec<f32> {
        assert_eq!(
            u.len(),
            self.weight.len(),
            "RmsNorm::apply: length mismatch"
        );
        let mean_sq = u.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / u.len() as f64;
        let scale = 1.0 / (mean_sq + f64::from(self.eps)).sqrt();
        u.iter()
            .zip(&self.weight)
            .map(|(&x, &g)| (f64::from(g) * f64::from(x) * scale) as f32)
            .collect()
    }
}

/// The logits `W_U · u_k` of `k` concept vectors (`concepts` is `k × B`, row-major), optionally after
/// `final_norm`; returns `k × V` logits, row-major.
///
/// Every dot product is accumulated in f64 in a fixed order and rounded to f32 once, so the result
/// is deterministic (independent of the thread count) and at least as accurate as the reference's
/// f32 matmul; near-ties may therefore rank differently from a particular f32 BLAS. Rows of the head
/// are processed in parallel (rayon), all concepts per row, so `W_U` is streamed once.
///
/// # Errors
/// [`GroundError::ConceptShape`] when `concepts.len() != k * B`; errors of [`RmsNorm::check`].
///
/// ```
/// use cox_ground_text::{concept_logits, LmHeadRef};
/// let w = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3 tokens, B = 2
/// let head = LmHeadRef::new(&w, 3, 2)?;
/// let logits = concept_logits(head, &[2.0, -1.0], 1, None)?;
/// assert_eq!(logits, [2.0, -1.0, 1.0]);
/// # Ok::<(), cox_ground_text::GroundError>(())
/// ```
pub fn concept_logits(
    head: LmHeadRef<'_>,
    concepts: &[f32],
    k: usize,
    final_norm: Option<&RmsNorm>,
) -> Result<Vec<f32>> {
    let (v, b) = (head.vocab, head.hidden);
    if k.checked_mul(b) != Some(concepts.len()) {
        return Err(GroundError::ConceptShape {
            vocab: v,
            hidden: b,
            k,
            len: concepts.len(),
        });
    }
    let normed;
    let concepts = match final_norm {
        Some(norm) => {
            norm.check(b)?;
            normed = concepts
                .chunks_exact(b)
                .flat_map(|u| norm.apply(u))
                .collect::<Vec<f32>>();
            &normed[..]
        }
        None => concepts,
    };
    if k == 0 {
        return Ok(Vec::new());
    }
    // Token-major scratch (V × k): each parallel task owns a contiguous block of head rows and reads
    // each row once for all concepts, so `W_U` is streamed from memory once.
    const ROWS_PER_TASK: usize = 64;
    let mut by_token = vec![0f32; v * k];
    by_token
        .par_chunks_mut(ROWS_PER_TASK * k)
        .enumerate()
        .for_each(|(chunk, out)| {
            for (r, out_row) in out.chunks_exact_mut(k).enumerate() {
                let row = head.row(chunk * ROWS_PER_TASK + r);
                for (o, u) in out_row.iter_mut().zip(concepts.chunks_exact(b)) {
                    *o = dot_f64(row, u) as f32;
                }
            }
        });
    let mut logits = vec![0f32; k * v];
    for (t, row) in by_token.chunks_exact(k).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            logits[c * v + t] = x;
        }
    }
    Ok(logits)
}

/// `Σ a_i b_i` accumulated in f64 with eight independent partial sums (vectorisable, fixed order).
fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += f64::from(x[i]) * f64::from(y[i]);
        }
    }
    let mut tail = 0f64;
    for (&x, &y) in ra.iter().zip(rb) {
        tail += f64::from(x) * f64::from(y);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// The `n` highest-logit token ids, best first (`n` is clamped to `logits.len()`).
///
/// Order: by logit descending; equal logits (including `0.0` and `-0.0`) by lower token id first;
/// NaN counts as larger than every number, as in `torch.topk`. The reference leaves the order of
/// ties to `torch.topk`, which does not specify it.
///
/// ```
/// let ids = cox_ground_text::top_k_tokens(&[0.5, 2.0, 0.5, -1.0], 3);
/// assert_eq!(ids, [1, 0, 2]);
/// ```
pub fn top_k_tokens(logits: &[f32], n: usize) -> Vec<u32> {
    let n = n.min(logits.len());
    if n == 0 {
        return Vec::new();
    }
    let order =
        |&a: &u32, &b: &u32| cmp_logit_desc(logits[a as usize], logits[b as usize]).then(a.cmp(&b));
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    if n < ids.len() {
        ids.select_nth_unstable_by(n - 1, order);
        ids.truncate(n);
    }
    ids.sort_unstable_by(order);
    ids
}

/// Descending order of logits with NaN first (largest).
fn cmp_logit_desc(a: f32, b: f32) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => b.partial_cmp(&a).expect("neither is NaN"),
    }
}
