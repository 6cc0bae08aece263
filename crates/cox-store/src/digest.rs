//! File digests recorded in a store manifest: byte length and SHA-256.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The length and SHA-256 of a file, as the manifest records them for each shard file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Length in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

impl FileDigest {
    /// The digest of `content`.
    pub fn of(content: &[u8]) -> Self {
        Self {
            bytes: content.len() as u64,
            sha256: sha256_hex(content),
        }
    }

    /// Compares `content` with this digest; `Err` says how it differs.
    pub fn check(&self, content: &[u8]) -> std::result::Result<(), String> {
        if content.len() as u64 != self.bytes {
            return Err(format!(
                "it is {} bytes long where the manifest recorded {} (truncated or overwritten)",
                content.len(),
                self.bytes
            ));
        }
        if sha256_hex(content) != self.sha256 {
            return Err(
                "its SHA-256 differs from the one the manifest recorded (its bytes were modified)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Lowercase hex SHA-256 of `content`.
pub fn sha256_hex(content: &[u8]) -> String {
    Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
