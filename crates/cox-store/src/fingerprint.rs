//! Fingerprints of input files (a model's weights): length and SHA-256, cached by length and
//! modification time so that a multi-gigabyte checkpoint is hashed once.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{atomic_write, Error, Result};

/// A file's identity: where it is (canonical path), its length and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// The canonical path (symbolic links and `.`/`..` resolved).
    pub path: PathBuf,
    /// Length in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct CacheEntry {
    bytes: u64,
    modified_ns: u128,
    sha256: String,
}

/// Fingerprints `files`. With `cache` (a JSON file, created when absent), a file whose canonical
/// path, length and modification time match a cached entry is not read again; new hashes are
/// added to the cache. A cache that cannot be read or written is ignored (it only saves time).
///
/// # Errors
/// [`Error::Read`] naming a file that does not exist or cannot be read.
pub fn fingerprint_files(files: &[PathBuf], cache: Option<&Path>) -> Result<Vec<FileFingerprint>> {
    let mut entries: BTreeMap<PathBuf, CacheEntry> = cache
        .and_then(|c| std::fs::read(c).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut changed = false;
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let read_err = |cause| Error::Read {
            path: f.clone(),
            cause,
        };
        let path = std::fs::canonicalize(f).map_err(read_err)?;
        let meta = std::fs::metadata(&path).map_err(read_err)?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let cached = entries
            .get(&path)
            .filter(|e| e.bytes == meta.len() && e.modified_ns == modified_ns && modified_ns != 0);
        let sha256 = match cached {
            Some(e) => e.sha256.clone(),
            None => {
                let sha = hash_file(&path).map_err(read_err)?;
                entries.insert(
                    path.clone(),
                    CacheEntry {
                        bytes: meta.len(),
                        modified_ns,
                        sha256: sha.clone(),
                    },
                );
                changed = true;
                sha
            }
        };
        out.push(FileFingerprint {
            path,
            bytes: meta.len(),
            sha256,
        });
    }
    if let (Some(c), true) = (cache, changed) {
        if let Ok(json) = serde_json::to_vec_pretty(&entries) {
            let _ = atomic_write(c, &json);
        }
    }
    Ok(out)
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
