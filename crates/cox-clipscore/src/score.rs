//! The CLIPScore maths and the paper's evaluation protocols, as pure functions over slices
//! (docs/method.md §5.1 and §5.4). No model, no IO.

use serde::{Deserialize, Serialize};

use crate::error::{ClipError, Result};

/// `w · max(cos(a, b), 0)` for two embeddings (normalised here; a zero vector scores 0).
///
/// ```
/// use cox_clipscore::clip_score_from_embeddings;
/// assert_eq!(clip_score_from_embeddings(&[1.0, 0.0], &[2.0, 0.0], 2.5), 2.5);
/// assert_eq!(clip_score_from_embeddings(&[1.0, 0.0], &[-1.0, 0.1], 2.5), 0.0);
/// ```
///
/// # Panics
/// If the lengths differ.
#[track_caller]
pub fn clip_score_from_embeddings(a: &[f32], b: &[f32], w: f32) -> f32 {
    assert_eq!(a.len(), b.len(), "embeddings of different widths");
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += f64::from(x) * f64::from(y);
        na += f64::from(x) * f64::from(x);
        nb += f64::from(y) * f64::from(y);
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    let cos = dot / (na.sqrt() * nb.sqrt());
    (f64::from(w) * cos.max(0.0)) as f32
}

/// The candidate text of a concept: `prefix + ", ".join(words) + "."` (docs/method.md §5.1).
///
/// ```
/// use cox_clipscore::text_for_words;
/// let words = ["dog".to_string(), "grass".into(), "ball".into()];
/// assert_eq!(
///     text_for_words("A photo is described by the words ", &words),
///     "A photo is described by the words dog, grass, ball."
/// );
/// ```
pub fn text_for_words(prefix: &str, words: &[String]) -> String {
    format!("{prefix}{}.", words.join(", "))
}

/// Concept indices from most to least activated: the reverse of
/// `np.argsort(v, kind="stable")`, so among equal activations the **higher** index ranks first.
///
/// The reference uses numpy's default `argsort` (quicksort / introsort, or a SIMD sort on
/// recent numpy), whose order among ties is unspecified; ties matter mostly for Semi-NMF codes,
/// where many activations are exactly 0 and top-3 may reach into them. This function fixes the
/// stable order so results are reproducible. Example of the difference (numpy 2.0.2, x86-64): for
/// a 20-vector that is 0 except `v[3] = 1, v[7] = 0.5`, `np.argsort(v)[-5:][::-1]` is
/// `[3, 7, 19, 18, 16]` and this function's first five are `[3, 7, 19, 18, 17]`. Top-1 and top-3
/// can only differ from the reference for images with fewer than 3 non-zero activations.
///
/// ```
/// use cox_clipscore::rank_concepts;
/// assert_eq!(rank_concepts(&[0.5, 0.0, 2.0, 0.0])?, vec![2, 0, 3, 1]);
/// # Ok::<(), cox_clipscore::ClipError>(())
/// ```
///
/// # Errors
/// [`ClipError::Input`] if an activation is NaN.
pub fn rank_concepts(v: &[f32]) -> Result<Vec<usize>> {
    if let Some(i) = v.iter().position(|x| x.is_nan()) {
        return Err(ClipError::Input(format!(
            "activation of concept {i} is NaN"
        )));
    }
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    idx.reverse();
    Ok(idx)
}

/// Mean ± population standard deviation: the workspace's one summary type, from `cox-metrics`.
pub use cox_metrics::MeanStd;

/// The per-test-image CLIPScore protocol of Table 1 (docs/method.md §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopNReport {
    /// CS of each image's most activated concept, summarised over images.
    pub top1: MeanStd,
    /// Mean CS of each image's 3 most activated concepts (fewer if K < 3), summarised.
    pub top3: MeanStd,
    /// Per image: `(top-1 CS, top-3 mean CS)`.
    pub per_image: Vec<(f64, f64)>,
    /// Per image: its concepts from most to least activated (the first 5, as the reference keeps).
    pub top_concepts: Vec<Vec<usize>>,
}

/// Top-1 / top-3 CLIPScore from `scores[i * k + c]` = CS(image i, text of concept c) and the
/// images' activations `activations[i * k + c]` (both row-major `n × k`).
///
/// ```
/// use cox_clipscore::top_n_clipscore;
/// // Two images, three concepts.
/// let acts = [0.1, 0.9, 0.5,   2.0, 0.0, 1.0];
/// let cs   = [0.2, 0.6, 0.4,   0.8, 0.1, 0.5];
/// let r = top_n_clipscore(&cs, &acts, 3)?;
/// assert_eq!(r.per_image[0].0, 0.6f32 as f64);                 // concept 1
/// assert!((r.per_image[1].1 - (0.8 + 0.5 + 0.1) / 3.0).abs() < 1e-6);
/// # Ok::<(), cox_clipscore::ClipError>(())
/// ```
///
/// # Errors
/// [`ClipError::Input`] for no image, `k == 0`, mismatched lengths or NaN activations.
pub fn top_n_clipscore(scores: &[f32], activations: &[f32], k: usize) -> Result<TopNReport> {
    if k == 0 || scores.is_empty() || scores.len() != activations.len() || scores.len() % k != 0 {
        return Err(ClipError::Input(format!(
            "scores ({}) and activations ({}) must both be n × k with n > 0 images and k = {k} > 0",
            scores.len(),
            activations.len()
        )));
    }
    let n = scores.len() / k;
    let mut per_image = Vec::with_capacity(n);
    let mut top_concepts = Vec::with_capacity(n);
    for i in 0..n {
        let row = &activations[i * k..(i + 1) * k];
        let ranked = rank_concepts(row).map_err(|e| ClipError::Input(format!("image {i}: {e}")))?;
        let cs = |c: usize| f64::from(scores[i * k + c]);
        let top1 = cs(ranked[0]);
        let m = ranked.len().min(3);
        let top3 = ranked[..m].iter().map(|&c| cs(c)).sum::<f64>() / m as f64;
        per_image.push((top1, top3));
        top_concepts.push(ranked.into_iter().take(5).collect());
    }
    let t1: Vec<f64> = per_image.iter().map(|p| p.0).collect();
    let t3: Vec<f64> = per_image.iter().map(|p| p.1).collect();
    Ok(TopNReport {
        top1: MeanStd::of(&t1),
        top3: MeanStd::of(&t3),
        per_image,
        top_concepts,
    })
}

/// The per-concept multimodal grounding score (docs/method.md §5.4): for concept `c`, the mean of
/// `scores[i * k + c]` over its most-activating samples `mas[c]` (the mean over the MAS images is
/// the presumed aggregation; the paper does not say). A concept without MAS images gets NaN.
///
/// ```
/// use cox_clipscore::grounding_scores;
/// let cs = [0.2, 0.6,   0.4, 0.8,   0.0, 1.0];   // 3 images × 2 concepts
/// let g = grounding_scores(&cs, 2, &[vec![0, 1], vec![2]])?;
/// assert!((g[0] - 0.3).abs() < 1e-6 && g[1] == 1.0);
/// # Ok::<(), cox_clipscore::ClipError>(())
/// ```
///
/// # Errors
/// [`ClipError::Input`] if `mas.len() != k` or an index is out of range.
pub fn grounding_scores(scores: &[f32], k: usize, mas: &[Vec<usize>]) -> Result<Vec<f64>> {
    if k == 0 || mas.len() != k || scores.len() % k != 0 {
        return Err(ClipError::Input(format!(
            "{} MAS lists and {} scores for k = {k} concepts",
            mas.len(),
            scores.len()
        )));
    }
    let n = scores.len() / k;
    mas.iter()
        .enumerate()
        .map(|(c, imgs)| {
            if let Some(&bad) = imgs.iter().find(|&&i| i >= n) {
                return Err(ClipError::Input(format!(
                    "MAS image {bad} of concept {c} is out of range ({n} images)"
                )));
            }
            let sum: f64 = imgs.iter().map(|&i| f64::from(scores[i * k + c])).sum();
            Ok(sum / imgs.len() as f64)
        })
        .collect()
}
