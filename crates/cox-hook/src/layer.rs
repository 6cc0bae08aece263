//! `--layer` specs: which points of the residual stream to record.

use cox_model::LayerSel;

use crate::error::{HookError, Result};

/// Parses one layer: `N` (the output of decoder block `N`, 0-based, as a forward hook on
/// `layers.N` sees it — what the reference records with a hook on
/// `language_model.model.layers.N`) or `norm` (after the final RMSNorm, the reference's
/// `language_model.model.norm`). For every block but the last, block `N` is also transformers'
/// `hidden_states[N + 1]`; transformers' last `hidden_states` entry is taken after the final
/// norm, so for the last block it equals `norm`, not block `N`. The reference's module names (`…layers.31`,
/// `…model.norm`) are accepted too.
///
/// ```
/// use cox_hook::parse_layer;
/// use cox_model::LayerSel;
/// assert_eq!(parse_layer("31").unwrap(), LayerSel::Block(31));
/// assert_eq!(parse_layer("norm").unwrap(), LayerSel::FinalNorm);
/// assert_eq!(parse_layer("language_model.model.layers.31").unwrap(), LayerSel::Block(31));
/// assert!(parse_layer("-1").is_err());
/// ```
pub fn parse_layer(spec: &str) -> Result<LayerSel> {
    let s = spec.trim();
    let invalid = |msg: &str| HookError::InvalidLayer {
        spec: spec.to_string(),
        msg: msg.to_string(),
    };
    if s == "norm" || s == "final_norm" || s.ends_with("model.norm") {
        return Ok(LayerSel::FinalNorm);
    }
    let digits = match s.rsplit_once("layers.") {
        Some((_, n)) => n,
        None => s,
    };
    digits
        .parse::<usize>()
        .map(LayerSel::Block)
        .map_err(|_| invalid("expected a block index N (0-based) or `norm`"))
}

/// Parses a comma-separated list of layers (`31,norm`), in order.
///
/// # Errors
/// [`HookError::InvalidLayer`] for an empty list, a bad entry, or a layer named twice.
pub fn parse_layers(spec: &str) -> Result<Vec<LayerSel>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let sel = parse_layer(part)?;
        if out.contains(&sel) {
            return Err(HookError::InvalidLayer {
                spec: spec.to_string(),
                msg: format!("{} is listed twice", layer_name(sel)),
            });
        }
        out.push(sel);
    }
    if out.is_empty() {
        return Err(HookError::InvalidLayer {
            spec: spec.to_string(),
            msg: "no layer given".into(),
        });
    }
    Ok(out)
}

/// The spec form of a layer (`"31"`, `"norm"`), for file names and provenance.
pub fn layer_name(sel: LayerSel) -> String {
    match sel {
        LayerSel::Block(n) => n.to_string(),
        LayerSel::FinalNorm => "norm".into(),
    }
}

/// Checks every block index against the decoder's depth.
///
/// # Errors
/// [`HookError::LayerOutOfRange`] naming the first block that does not exist.
pub fn check_layers(layers: &[LayerSel], num_blocks: usize) -> Result<()> {
    for sel in layers {
        if let LayerSel::Block(layer) = *sel {
            if layer >= num_blocks {
                return Err(HookError::LayerOutOfRange { layer, num_blocks });
            }
        }
    }
    Ok(())
}
