//! Crash-safe writes and the file-name convention of tensors and their sidecars.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Writes `bytes` to `path` so that `path` is either the complete new content or untouched: the bytes
/// go to a temporary file in the same folder, which is flushed to disk (fsync) and renamed over `path`.
/// Parent folders are created.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |cause| Error::Write {
        path: path.to_path_buf(),
        cause,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// The tensor file of an output path: `x` → `x.safetensors`, `x.safetensors` unchanged.
pub fn tensor_path(path: &Path) -> PathBuf {
    if path.extension().is_some_and(|e| e == "safetensors") {
        path.to_path_buf()
    } else {
        let mut s = path.as_os_str().to_owned();
        s.push(".safetensors");
        PathBuf::from(s)
    }
}

/// The JSON sidecar of a tensor file: `x.safetensors` → `x.json`.
pub fn sidecar_path(tensor_file: &Path) -> PathBuf {
    tensor_file.with_extension("json")
}

/// A file-name stem for outputs derived from the input file `path` that stays unique when inputs
/// share a stem (`a/x.png`, `b/x.jpg`) or sanitise alike (`p<q.png`, `p>q.png`): the stem with
/// every character but ASCII letters, digits, `-` and `_` replaced by `_` (at most 60 of them),
/// then `-` and the first 8 hex digits of the SHA-256 of the canonical path (the path as given
/// when it cannot be resolved), so the same file named two ways gets the same stem.
///
/// ```
/// use std::path::Path;
/// let a = cox_store::unique_file_stem(Path::new("a/x.png"));
/// let b = cox_store::unique_file_stem(Path::new("b/x.jpg"));
/// assert!(a.starts_with("x-") && b.starts_with("x-") && a != b);
/// assert_ne!(
///     cox_store::unique_file_stem(Path::new("p<q.png")),
///     cox_store::unique_file_stem(Path::new("p>q.png"))
/// );
/// ```
pub fn unique_file_stem(path: &Path) -> String {
    let stem = sanitized_stem(path);
    let stem = if stem.is_empty() { "file".into() } else { stem };
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let hash = crate::digest::sha256_hex(canonical.to_string_lossy().as_bytes());
    format!("{stem}-{}", &hash[..8])
}

/// A path's file stem reduced to ASCII letters, digits, `-` and `_` (others become `_`), at most
/// 60 characters; empty when the path has no stem.
///
/// ```
/// assert_eq!(cox_store::sanitized_stem(std::path::Path::new("a/p<q é.png")), "p_q__");
/// ```
pub fn sanitized_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect()
}
