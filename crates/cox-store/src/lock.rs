//! The exclusive write lock of an activation store: `OUT/.coxlmm-lock`.
//!
//! A writer holds an advisory exclusive lock (`flock` on Unix, `LockFileEx` on Windows) on the lock
//! file for as long as it lives, and writes its process id into it so that a second writer can say
//! who holds the store. The operating system releases the lock when the holder exits, however it
//! exits (kill -9 included), so a lock file left behind by a dead process is stale by construction and
//! is simply taken over. On a file system without advisory locks the process id is the lock: it is
//! honoured while a process with that id runs (checked through `/proc` on Linux) and taken over
//! otherwise.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use fs2::FileExt;

use crate::{Error, Result};

/// The lock file's name inside a store folder (hidden, so a folder holding only it counts as empty).
pub const LOCK_FILE: &str = ".coxlmm-lock";

/// A held write lock; released when dropped.
#[derive(Debug)]
pub(crate) struct StoreLock {
    file: File,
}

impl StoreLock {
    /// Takes the lock of the store folder `dir` (which must exist), or fails with
    /// [`Error::Locked`] when another live writer holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|cause| Error::Write {
                path: path.clone(),
                cause,
            })?;
        match FileExt::try_lock_exclusive(&file) {
            Ok(()) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.raw_os_error() == fs2::lock_contended_error().raw_os_error() =>
            {
                return Err(Error::Locked {
                    pid: read_pid(&mut file),
                    path,
                });
            }
            Err(_) => {
                // No advisory locks here (some network file systems): the recorded process id is
                // the lock, honoured while that process runs.
                if let Some(pid) = read_pid(&mut file) {
                    if pid != std::process::id() && process_alive(pid) {
                        return Err(Error::Locked {
                            pid: Some(pid),
                            path,
                        });
                    }
                }
            }
        }
        write_pid(&mut file, &path)?;
        Ok(Self { file })
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Clearing the id keeps a later reader from naming a process that no longer writes here;
        // closing the file releases the advisory lock.
        let _ = self.file.set_len(0);
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_pid(file: &mut File, path: &Path) -> Result<()> {
    let err = |cause| Error::Write {
        path: path.to_path_buf(),
        cause,
    };
    file.set_len(0).map_err(err)?;
    file.seek(SeekFrom::Start(0)).map_err(err)?;
    writeln!(file, "{}", std::process::id()).map_err(err)?;
    file.flush().map_err(err)
}

/// Whether a process with this id runs. Only Linux can tell without extra dependencies; elsewhere
/// the recorded holder is assumed alive, and the error message says which process to look for.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}
