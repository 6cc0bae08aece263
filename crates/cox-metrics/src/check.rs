//! Input checks shared by the metrics: one place for the shape and finiteness errors.

use crate::error::{MetricsError, Result};

/// `Err(InputShape)` unless `values` holds `rows × cols` entries.
pub(crate) fn shape<T>(
    op: &'static str,
    input: impl Into<String>,
    values: &[T],
    rows: usize,
    cols: usize,
) -> Result<()> {
    if values.len() == rows * cols {
        Ok(())
    } else {
        Err(MetricsError::InputShape {
            op,
            input: input.into(),
            len: values.len(),
            rows,
            cols,
        })
    }
}

/// `Err(NonFiniteInput)` naming the first NaN or infinity of a row-major matrix with `cols` columns.
pub(crate) fn finite(
    op: &'static str,
    input: impl Into<String>,
    values: &[f32],
    cols: usize,
) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(pos) => Err(MetricsError::NonFiniteInput {
            op,
            input: input.into(),
            row: pos / cols.max(1),
            column: pos % cols.max(1),
        }),
    }
}

/// `Err(TooFew)` unless `got >= needed`.
pub(crate) fn at_least(
    op: &'static str,
    what: &'static str,
    needed: usize,
    got: usize,
) -> Result<()> {
    if got >= needed {
        Ok(())
    } else {
        Err(MetricsError::TooFew {
            op,
            what,
            needed,
            got,
        })
    }
}
