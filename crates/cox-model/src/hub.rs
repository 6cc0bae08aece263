//! Resolving a model id to a local directory. No network access: hub repositories must already
//! be in the local Hugging Face cache.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The Hugging Face hub cache directory: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub fn hf_hub_cache() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = env("HF_HUB_CACHE") {
        return Some(p);
    }
    if let Some(p) = env("HF_HOME") {
        return Some(p.join("hub"));
    }
    if let Some(p) = env("XDG_CACHE_HOME") {
        return Some(p.join("huggingface").join("hub"));
    }
    env("HOME").map(|h| h.join(".cache").join("huggingface").join("hub"))
}

/// Resolves `model_id` to a directory holding `config.json`.
///
/// A path to an existing directory is returned as is. Otherwise `ORG/NAME` is looked up in
/// `cache` (default [`hf_hub_cache`]) as `models--ORG--NAME/snapshots/<rev>`, where `<rev>` is
/// the commit in `refs/main`, or the only snapshot when there is no ref.
pub fn resolve_model_dir(model_id: &str, cache: Option<&Path>) -> Result<PathBuf> {
    let as_path = Path::new(model_id);
    if as_path.is_dir() {
        return Ok(as_path.to_path_buf());
    }
    let download = format!(
        "download it first, e.g. `huggingface-cli download {model_id}` (or `hf download {model_id}`), \
         or pass the path of a local checkpoint directory"
    );
    let parts: Vec<&str> = model_id.split('/').collect();
    if parts.len() != 2
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(Error::ModelNotFound {
            model_id: model_id.to_string(),
            hint: format!(
                "it is neither an existing directory nor a hub id of the form ORG/NAME; {download}"
            ),
        });
    }
    let cache = match cache.map(Path::to_path_buf).or_else(hf_hub_cache) {
        Some(c) => c,
        None => {
            return Err(Error::ModelNotFound {
                model_id: model_id.to_string(),
                hint: format!("no Hugging Face cache directory could be determined; {download}"),
            })
        }
    };
    let repo = cache.join(format!("models--{}--{}", parts[0], parts[1]));
    let snapshots = repo.join("snapshots");
    if !snapshots.is_dir() {
        return Err(Error::ModelNotFound {
            model_id: model_id.to_string(),
            hint: format!("{} does not exist; {download}", snapshots.display()),
        });
    }
    let refs_main = repo.join("refs").join("main");
    if let Ok(rev) = std::fs::read_to_string(&refs_main) {
        let dir = snapshots.join(rev.trim());
        if dir.is_dir() {
            return Ok(dir);
        }
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .map_err(|e| Error::io(&snapshots, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    match entries.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(Error::ModelNotFound {
            model_id: model_id.to_string(),
            hint: format!("{} holds no snapshot; {download}", snapshots.display()),
        }),
        _ => Err(Error::ModelNotFound {
            model_id: model_id.to_string(),
            hint: format!(
                "{} holds {} snapshots and {} does not name one; pass the snapshot directory itself",
                snapshots.display(),
                entries.len(),
                refs_main.display()
            ),
        }),
    }
}
