//! Choosing, per caption, the generated token of interest and the residual-stream row to keep.

use candle_core::{DType, Tensor};
use cox_model::Generation;

use crate::error::{HookError, Result};
use crate::token::TokenOfInterest;

/// Which position's state is recorded for the first generated `t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PositionRule {
    /// The position before `t`: the state whose next-token prediction is `t` (the reference).
    #[default]
    Predicting,
    /// The position of `t` itself.
    AtToken,
}

/// The ground-truth filter: must `t` appear in the reference captions?
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GtFilter {
    /// `t` is a case-sensitive substring of the first caption (the reference; "dog" also matches
    /// "dogs" and "hotdog").
    #[default]
    First,
    /// `t` is a case-sensitive substring of any caption.
    Any,
    /// No filter.
    None,
}

impl GtFilter {
    /// Whether a sample with these reference captions passes. Apply it before inference to skip
    /// the model on samples that will be dropped anyway.
    ///
    /// ```
    /// use cox_hook::GtFilter;
    /// let caps = ["Two hotdogs.".to_string(), "A dog.".to_string()];
    /// assert!(GtFilter::First.accepts("dog", &caps));
    /// assert!(!GtFilter::First.accepts("Dog", &caps));
    /// assert!(GtFilter::Any.accepts("A", &caps) && !GtFilter::First.accepts("A", &caps));
    /// assert!(GtFilter::None.accepts("cat", &[]));
    /// ```
    pub fn accepts(self, token: &str, captions: &[String]) -> bool {
        match self {
            GtFilter::First => captions.first().is_some_and(|c| c.contains(token)),
            GtFilter::Any => captions.iter().any(|c| c.contains(token)),
            GtFilter::None => true,
        }
    }
}

/// Selection settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelectOptions {
    /// The ground-truth filter.
    pub gt: GtFilter,
    /// Which position to record.
    pub position: PositionRule,
}

/// Why a sample contributes no vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The ground-truth filter rejected the reference captions.
    GtFilter,
    /// No generated token stands for `t`.
    TokenNotGenerated,
    /// The rule's position has no state: [`PositionRule::Predicting`] with an empty prompt and `t`
    /// first, or [`PositionRule::AtToken`] when `t` is the last generated token (never fed back).
    PositionNotCaptured,
}

/// The kept vector(s) of one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Index `j` of the first generated token standing for `t` (0 = the first generated token).
    pub token_index: usize,
    /// Its id.
    pub token_id: u32,
    /// The recorded row of the prompt + generated sequence (`prompt_len + j - 1` for
    /// [`PositionRule::Predicting`], `prompt_len + j` for [`PositionRule::AtToken`]).
    pub position: usize,
    /// One vector per captured layer, in the capture's order, as f32.
    pub vectors: Vec<Vec<f32>>,
}

/// The outcome for one sample: exactly one of `kept` and `skip_reason` is set.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// The record, when the sample is kept.
    pub kept: Option<Record>,
    /// Why not, otherwise.
    pub skip_reason: Option<SkipReason>,
}

impl Selection {
    fn skip(reason: SkipReason) -> Self {
        Self {
            kept: None,
            skip_reason: Some(reason),
        }
    }
}

/// The row to record for generated token `token_index` after a `prompt_len`-token prompt, or
/// `None` when the rule asks for a position before the sequence.
///
/// ```
/// use cox_hook::{record_position, PositionRule};
/// // Prompt of 10 tokens, `t` is the 3rd generated token (j = 2) at sequence position 12:
/// assert_eq!(record_position(10, 2, PositionRule::Predicting), Some(11));
/// assert_eq!(record_position(10, 2, PositionRule::AtToken), Some(12));
/// assert_eq!(record_position(0, 0, PositionRule::Predicting), None);
/// ```
pub fn record_position(prompt_len: usize, token_index: usize, rule: PositionRule) -> Option<usize> {
    let at = prompt_len + token_index;
    match rule {
        PositionRule::Predicting => at.checked_sub(1),
        PositionRule::AtToken => Some(at),
    }
}

/// Selects the vector(s) of one sample: applies the ground-truth filter to `captions`, finds the
/// first **generated** token standing for `t` (the prompt is never searched), and reads its row
/// from every captured tensor. `residuals` are `[rows, hidden]` (or `[1, rows, hidden]`) tensors
/// over the prompt + generated sequence, as [`cox_model::Llava::generate`] (rows =
/// `prompt_len + generated.len() - 1`) or a full forward pass returns them.
///
/// # Errors
/// [`HookError::Shape`] when the tensors are not 2-D/3-D with batch 1, disagree in their row
/// counts, or have fewer rows than the prompt; [`HookError::Tensor`] when reading fails.
pub fn select(
    toi: &TokenOfInterest,
    captions: &[String],
    prompt_len: usize,
    generated: &[u32],
    residuals: &[Tensor],
    opts: &SelectOptions,
) -> Result<Selection> {
    if !opts.gt.accepts(&toi.token, captions) {
        return Ok(Selection::skip(SkipReason::GtFilter));
    }
    let rows = residuals.iter().map(rows_of).collect::<Result<Vec<_>>>()?;
    if let Some(&r) = rows.first() {
        if rows.iter().any(|&x| x != r) {
            return Err(HookError::Shape(format!(
                "captured tensors have different row counts {rows:?}"
            )));
        }
        if r < prompt_len {
            return Err(HookError::Shape(format!(
                "{r} captured rows cannot cover a {prompt_len}-token prompt"
            )));
        }
    }
    let Some(j) = toi.find(generated) else {
        return Ok(Selection::skip(SkipReason::TokenNotGenerated));
    };
    let Some(position) = record_position(prompt_len, j, opts.position) else {
        return Ok(Selection::skip(SkipReason::PositionNotCaptured));
    };
    if rows.first().is_some_and(|&r| position >= r) {
        return Ok(Selection::skip(SkipReason::PositionNotCaptured));
    }
    let vectors = residuals
        .iter()
        .map(|t| row(t, position))
        .collect::<Result<Vec<_>>>()?;
    Ok(Selection {
        kept: Some(Record {
            token_index: j,
            token_id: generated[j],
            position,
            vectors,
        }),
        skip_reason: None,
    })
}

/// [`select`] over a [`Generation`] (its prompt ids, generated ids and captured residuals).
pub fn select_generation(
    toi: &TokenOfInterest,
    captions: &[String],
    generation: &Generation,
    opts: &SelectOptions,
) -> Result<Selection> {
    select(
        toi,
        captions,
        generation.prompt_ids.len(),
        &generation.generated_ids,
        &generation.residuals,
        opts,
    )
}

fn rows_of(t: &Tensor) -> Result<usize> {
    match t.dims() {
        [rows, _] => Ok(*rows),
        [1, rows, _] => Ok(*rows),
        d => Err(HookError::Shape(format!(
            "expected [rows, hidden] or [1, rows, hidden], got {d:?}"
        ))),
    }
}

fn row(t: &Tensor, position: usize) -> Result<Vec<f32>> {
    let t = if t.rank() == 3 {
        t.squeeze(0)?
    } else {
        t.clone()
    };
    Ok(t.get(position)?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
}
