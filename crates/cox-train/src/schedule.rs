//! The learning-rate schedule: linear warmup, then cosine decay to a floor.

/// Linear warmup from 0 to `peak` over `warmup` steps, then cosine decay from `peak` to
/// `peak * floor` at step `total`; constant at the floor afterwards.
///
/// ```
/// use cox_train::lr_at;
/// assert_eq!(lr_at(0, 10, 100, 1.0, 0.1), 0.1);
/// assert_eq!(lr_at(9, 10, 100, 1.0, 0.1), 1.0);
/// assert!((lr_at(100, 10, 100, 1.0, 0.1) - 0.1).abs() < 1e-12);
/// assert!((lr_at(55, 10, 100, 1.0, 0.1) - 0.55).abs() < 1e-12);
/// ```
pub fn lr_at(step: usize, warmup: usize, total: usize, peak: f64, floor: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let t = ((step - warmup) as f64 / span).min(1.0);
    let cos = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
    peak * (floor + (1.0 - floor) * cos)
}
