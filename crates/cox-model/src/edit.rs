//! Interventions on the residual stream: edits applied to the output of a chosen decoder block
//! inside the decoder loop, so that every later block, the LM head and the KV cache see the edited
//! state (steering, `docs/method.md` "Steering and causal validity").
//!
//! An [`Edit`] names a block, the positions it acts on ([`EditPositions`]) and what it does (a
//! [`ResidualEdit`]). Edits ride on [`ResidualCapture`](crate::ResidualCapture)
//! (`ResidualCapture::new([...]).with_edits(vec![...])`), so every forward and generation entry
//! point takes them without a new argument. The built-in edits are [`AddDirection`] (`x + α·v`)
//! and [`ProjectOut`] (`x − (x·û)û`); crates that own a concept dictionary implement the trait for
//! edits that need its encoding (setting a concept's activation).
//!
//! Positions are absolute: a pass over rows `offset..offset + s` (with `offset` the KV cache's
//! length) edits the rows whose absolute position lies in the edit's range, so a cached decoding
//! step edits exactly what a full forward pass over the same sequence would.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};

/// What an edit does to a block's output.
///
/// `rows` is `[batch, n, hidden]`: the rows of the block's output that the edit's
/// [`EditPositions`] select, in the block's dtype; `positions` their absolute positions
/// (`positions.len() == n`). The result must have the same shape; it replaces those rows.
pub trait ResidualEdit: Send + Sync + fmt::Debug {
    /// The edited rows.
    fn apply(&self, rows: &Tensor, positions: Range<usize>) -> Result<Tensor>;
}

/// The positions an edit acts on, in absolute sequence positions (prompt rows first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditPositions {
    /// Every position, prompt and generated.
    All,
    /// The prompt's positions `0..prompt_len`.
    Prompt {
        /// Number of prompt positions (image positions expanded).
        prompt_len: usize,
    },
    /// The positions of generated tokens fed back into the model, `prompt_len..`. The first
    /// generated token is predicted from the (unedited) last prompt position, so it is never
    /// changed by such an edit; every later one can be.
    Generated {
        /// Number of prompt positions (image positions expanded).
        prompt_len: usize,
    },
}

impl EditPositions {
    /// The absolute positions selected, as a half-open range.
    pub fn range(&self) -> Range<usize> {
        match *self {
            EditPositions::All => 0..usize::MAX,
            EditPositions::Prompt { prompt_len } => 0..prompt_len,
            EditPositions::Generated { prompt_len } => prompt_len..usize::MAX,
        }
    }
}

/// One intervention: after decoder block `block`, at `positions`, apply `edit`.
#[derive(Clone, Debug)]
pub struct Edit {
    /// The block (0-based) whose output is edited.
    pub block: usize,
    /// Which positions.
    pub positions: EditPositions,
    /// What is done to them.
    pub edit: Arc<dyn ResidualEdit>,
}

impl PartialEq for Edit {
    /// Two edits are equal when they act at the same place with the same edit object.
    fn eq(&self, other: &Self) -> bool {
        self.block == other.block
            && self.positions == other.positions
            && Arc::ptr_eq(&self.edit, &other.edit)
    }
}

impl Eq for Edit {}

impl Edit {
    /// An edit of block `block`'s output at `positions`.
    pub fn new(block: usize, positions: EditPositions, edit: impl ResidualEdit + 'static) -> Self {
        Self {
            block,
            positions,
            edit: Arc::new(edit),
        }
    }

    /// Applies the edit to a block output `x` (`[batch, s, hidden]`) whose rows are the absolute
    /// positions `offset..offset + s`; rows outside the edit's positions are returned unchanged
    /// (the same values, not recomputed).
    pub fn apply_at(&self, x: &Tensor, offset: usize) -> Result<Tensor> {
        let (_b, s, _h) = x.dims3()?;
        let want = self.positions.range();
        let lo = want.start.max(offset);
        let hi = want.end.min(offset + s);
        if lo >= hi {
            return Ok(x.clone());
        }
        let (a, n) = (lo - offset, hi - lo);
        let edited = self.edit.apply(&x.narrow(1, a, n)?, lo..hi)?;
        if edited.dims() != x.narrow(1, a, n)?.dims() {
            return Err(Error::Input(format!(
                "the edit of block {} returned shape {:?} for rows of shape {:?}",
                self.block,
                edited.dims(),
                x.narrow(1, a, n)?.dims()
            )));
        }
        if n == s {
            return Ok(edited);
        }
        let mut parts = Vec::with_capacity(3);
        if a > 0 {
            parts.push(x.narrow(1, 0, a)?);
        }
        parts.push(edited);
        if a + n < s {
            parts.push(x.narrow(1, a + n, s - a - n)?);
        }
        Ok(Tensor::cat(&parts, 1)?)
    }
}

/// Applies, in order, every edit of `edits` that acts on block `block` to its output `x`, whose
/// rows are the absolute positions `offset..`.
pub(crate) fn apply_block_edits(
    edits: &[Edit],
    block: usize,
    x: Tensor,
    offset: usize,
) -> Result<Tensor> {
    let mut x = x;
    for e in edits.iter().filter(|e| e.block == block) {
        x = e.apply_at(&x, offset)?;
    }
    Ok(x)
}

/// A `[1, 1, hidden]` tensor of `v` on `like`'s device in `like`'s dtype.
fn row_like(v: &[f32], like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_slice(v, (1, 1, v.len()), like.device())?.to_dtype(like.dtype())?)
}

fn check_width(v: &[f32], rows: &Tensor, what: &str) -> Result<()> {
    let h = rows.dim(candle_core::D::Minus1)?;
    if h != v.len() {
        return Err(Error::Input(format!(
            "{what} has {} values but the residual stream has width {h}",
            v.len()
        )));
    }
    Ok(())
}

/// Adds `α·v` to every selected row (steering).
#[derive(Debug, Clone)]
pub struct AddDirection {
    scaled: Vec<f32>,
}

impl AddDirection {
    /// Adds `alpha · vector`. A non-finite value is an error.
    pub fn new(vector: &[f32], alpha: f32) -> Result<Self> {
        if !alpha.is_finite() {
            return Err(Error::Input(format!(
                "steering strength {alpha} is not finite"
            )));
        }
        if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
            return Err(Error::Input(format!(
                "the steering vector's value {i} is {}",
                vector[i]
            )));
        }
        Ok(Self {
            scaled: vector.iter().map(|&x| alpha * x).collect(),
        })
    }

    /// The vector added, `α·v`.
    pub fn vector(&self) -> &[f32] {
        &self.scaled
    }
}

impl ResidualEdit for AddDirection {
    fn apply(&self, rows: &Tensor, _positions: Range<usize>) -> Result<Tensor> {
        check_width(&self.scaled, rows, "the steering vector")?;
        Ok(rows.broadcast_add(&row_like(&self.scaled, rows)?)?)
    }
}

/// Removes a direction from every selected row: `x − (x·û)û` with `û = v/‖v‖` (ablation).
/// The product is computed in f32 whatever the model's dtype.
#[derive(Debug, Clone)]
pub struct ProjectOut {
    unit: Vec<f32>,
}

impl ProjectOut {
    /// Projects out the direction of `vector`; a zero or non-finite vector is an error.
    pub fn new(vector: &[f32]) -> Result<Self> {
        let norm = vector
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(Error::Input(format!(
                "cannot project out a direction of norm {norm} (zero or not finite)"
            )));
        }
        Ok(Self {
            unit: vector
                .iter()
                .map(|&x| (f64::from(x) / norm) as f32)
                .collect(),
        })
    }

    /// The unit direction removed.
    pub fn unit(&self) -> &[f32] {
        &self.unit
    }
}

impl ResidualEdit for ProjectOut {
    fn apply(&self, rows: &Tensor, _positions: Range<usize>) -> Result<Tensor> {
        check_width(&self.unit, rows, "the direction to project out")?;
        let dtype = rows.dtype();
        let x = rows.to_dtype(DType::F32)?;
        let u = Tensor::from_slice(&self.unit, (1, 1, self.unit.len()), rows.device())?;
        let coef = x.broadcast_mul(&u)?.sum_keepdim(candle_core::D::Minus1)?;
        Ok(x.broadcast_sub(&coef.broadcast_mul(&u)?)?.to_dtype(dtype)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn seq(b: usize, s: usize, h: usize) -> Tensor {
        let v: Vec<f32> = (0..b * s * h).map(|i| (i as f32 * 0.37).sin()).collect();
        Tensor::from_vec(v, (b, s, h), &Device::Cpu).unwrap()
    }

    #[test]
    fn add_direction_touches_only_selected_absolute_positions() {
        let x = seq(1, 4, 3);
        let e = Edit::new(
            0,
            EditPositions::Generated { prompt_len: 5 },
            AddDirection::new(&[1.0, 2.0, 3.0], 2.0).unwrap(),
        );
        // Rows are positions 3..7: rows 2 and 3 (positions 5, 6) are edited.
        let y = e.apply_at(&x, 3).unwrap();
        let (xv, yv) = (x.to_vec3::<f32>().unwrap(), y.to_vec3::<f32>().unwrap());
        for r in 0..4 {
            for c in 0..3 {
                let add = if r >= 2 { 2.0 * (c + 1) as f32 } else { 0.0 };
                assert_eq!(yv[0][r][c], xv[0][r][c] + add, "row {r} col {c}");
            }
        }
        // Entirely before the range: unchanged.
        let z = e.apply_at(&x, 0).unwrap();
        assert_eq!(z.to_vec3::<f32>().unwrap(), xv);
    }

    #[test]
    fn project_out_leaves_no_component_and_is_idempotent() {
        let x = seq(2, 3, 5);
        let p = ProjectOut::new(&[0.5, -1.0, 2.0, 0.0, 1.0]).unwrap();
        let y = p.apply(&x, 0..3).unwrap();
        let u = Tensor::from_slice(p.unit(), (1, 1, 5), &Device::Cpu).unwrap();
        let dots = y.broadcast_mul(&u).unwrap().sum(2).unwrap();
        let m = dots
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(m < 1e-6, "component left: {m}");
        let y2 = p.apply(&y, 0..3).unwrap();
        let d = (y2 - &y).unwrap().abs().unwrap().max_all().unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
        assert!(ProjectOut::new(&[0.0; 5]).is_err());
    }

    #[test]
    fn bad_vectors_are_errors_not_panics() {
        assert!(AddDirection::new(&[1.0, f32::NAN], 1.0).is_err());
        assert!(AddDirection::new(&[1.0], f32::INFINITY).is_err());
        let e = Edit::new(
            0,
            EditPositions::All,
            AddDirection::new(&[1.0; 4], 1.0).unwrap(),
        );
        let err = e.apply_at(&seq(1, 2, 3), 0).unwrap_err().to_string();
        assert!(err.contains("width 3"), "{err}");
    }
}
