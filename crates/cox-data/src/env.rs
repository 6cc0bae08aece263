//! Reading the shard of this process from a job array's environment (for the CLI; the rest of the
//! crate takes plain numbers).

use crate::error::{DataError, Result};
use crate::subset::Shard;

/// [`shard_from_vars`] over the process environment.
pub fn shard_from_env(count: Option<usize>) -> Result<Option<Shard>> {
    shard_from_vars(|k| std::env::var(k).ok(), count)
}

/// The shard a job-array task should process, from environment variables read through `get`:
///
/// * Slurm: `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN` (0 when unset) out of
///   `SLURM_ARRAY_TASK_COUNT` (or `count`, which wins when given);
/// * Kubernetes indexed jobs: `JOB_COMPLETION_INDEX` out of `count` (Kubernetes does not export
///   the completion count, so the caller must pass it).
///
/// Returns `None` when neither index variable is set.
///
/// # Errors
/// [`DataError::InvalidShard`] when a variable is not a number, the count is unknown, or the index
/// is out of range.
///
/// ```
/// use cox_data::{shard_from_vars, Shard};
/// let env = |k: &str| match k {
///     "SLURM_ARRAY_TASK_ID" => Some("5".to_string()),
///     "SLURM_ARRAY_TASK_MIN" => Some("1".to_string()),
///     "SLURM_ARRAY_TASK_COUNT" => Some("8".to_string()),
///     _ => None,
/// };
/// assert_eq!(shard_from_vars(env, None).unwrap(), Some(Shard::new(4, 8).unwrap()));
/// assert_eq!(shard_from_vars(|_| None, Some(4)).unwrap(), None);
/// ```
pub fn shard_from_vars(
    get: impl Fn(&str) -> Option<String>,
    count: Option<usize>,
) -> Result<Option<Shard>> {
    let num = |name: &str| -> Result<Option<usize>> {
        match get(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| DataError::InvalidShard {
                    spec: format!("{name}={v}"),
                    msg: "not a non-negative integer".into(),
                }),
        }
    };
    let (index, count, from) = if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let index = id.checked_sub(min).ok_or_else(|| DataError::InvalidShard {
            spec: format!("SLURM_ARRAY_TASK_ID={id}"),
            msg: format!("below SLURM_ARRAY_TASK_MIN={min}"),
        })?;
        let count = match count {
            Some(c) => c,
            None => num("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| DataError::InvalidShard {
                spec: format!("SLURM_ARRAY_TASK_ID={id}"),
                msg: "SLURM_ARRAY_TASK_COUNT is unset; pass the shard count".into(),
            })?,
        };
        (index, count, "SLURM_ARRAY_TASK_ID")
    } else if let Some(index) = num("JOB_COMPLETION_INDEX")? {
        let count = count.ok_or_else(|| DataError::InvalidShard {
            spec: format!("JOB_COMPLETION_INDEX={index}"),
            msg: "Kubernetes does not export the completion count; pass the shard count".into(),
        })?;
        (index, count, "JOB_COMPLETION_INDEX")
    } else {
        return Ok(None);
    };
    Shard::new(index, count)
        .map(Some)
        .map_err(|_| DataError::InvalidShard {
            spec: format!("{from}: {index}/{count}"),
            msg: "need 0 <= index < count (a contiguous 0-based or MIN-based array)".into(),
        })
}
