//! The repository stands alone: no source, doc, script or fixture refers to files outside it — no
//! absolute path of a machine (home directories, temporary folders, work areas) and no notes kept
//! beside the checkout. A clone must hold everything its comments and docs cite.

use std::path::{Path, PathBuf};

/// Directories that are not part of the repository's content (build outputs, caches, VCS data).
const SKIPPED_DIRS: &[&str] = &[
    "target",
    ".git",
    ".cache",
    ".venv",
    "node_modules",
    "__pycache__",
];

/// Extensions of binary files (their bytes are not text to search).
const BINARY: &[&str] = &[
    "safetensors",
    "png",
    "jpg",
    "jpeg",
    "gz",
    "zip",
    "whl",
    "bin",
    "npy",
    "npz",
    "pt",
    "ico",
];

/// The forbidden fragments, assembled at run time so that this file does not match itself.
fn needles() -> Vec<String> {
    let abs = ["work", "home", "tmp", "root", "Users", "mnt", "private/var"];
    let mut v: Vec<String> = abs.iter().map(|d| format!("/{d}/")).collect();
    // Notes kept in a folder beside the checkout, which a clone does not have.
    v.push(format!("{}/", ["sha", "red"].concat()));
    v
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if SKIPPED_DIRS.contains(&name.as_str()) {
            // `.git` is a file in a worktree checkout (it names the main repository's path).
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if !p
            .extension()
            .is_some_and(|x| BINARY.contains(&x.to_string_lossy().to_lowercase().as_str()))
        {
            out.push(p);
        }
    }
}

/// The files git tracks under `root` (so that local run folders and caches are not scanned), or
/// every file when `root` is not a git checkout.
fn repository_files(root: &Path) -> Vec<PathBuf> {
    let tracked = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success() && !o.stdout.is_empty());
    let mut files = Vec::new();
    match tracked {
        Some(o) => {
            for name in o.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
                let p = root.join(String::from_utf8_lossy(name).as_ref());
                let binary = p
                    .extension()
                    .is_some_and(|x| BINARY.contains(&x.to_string_lossy().to_lowercase().as_str()));
                if p.is_file() && !binary {
                    files.push(p);
                }
            }
        }
        None => walk(root, &mut files),
    }
    files
}

/// `(file, line number, line)` for every line of the text files under `root` holding a needle.
fn offending(root: &Path, files: Vec<PathBuf>) -> Vec<(PathBuf, usize, String)> {
    let mut files = files;
    files.sort();
    let needles = needles();
    let mut hits = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue; // not UTF-8 text
        };
        for (i, line) in text.lines().enumerate() {
            if needles.iter().any(|n| line.contains(n.as_str())) {
                let rel = f.strip_prefix(root).unwrap_or(&f).to_path_buf();
                hits.push((rel, i + 1, line.trim().to_string()));
            }
        }
    }
    hits
}

#[test]
fn no_file_refers_to_paths_outside_the_repository() {
    let root = workspace_root();
    assert!(
        root.join("Cargo.toml").is_file() && root.join("crates").is_dir(),
        "not the workspace root: {}",
        root.display()
    );
    let hits = offending(&root, repository_files(&root));
    let list: Vec<String> = hits
        .iter()
        .map(|(f, n, l)| format!("{}:{n}: {l}", f.display()))
        .collect();
    assert!(
        hits.is_empty(),
        "{} line(s) refer to files outside the repository (cite docs/method.md or the paper, use \
         relative paths):\n{}",
        hits.len(),
        list.join("\n")
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    // A planted file in a scratch tree must be reported, with its line, and a clean one not.
    let dir = tempfile::tempdir().unwrap();
    let bad = format!("see {}work{}notes.md for the formula\n", "/", "/");
    std::fs::write(dir.path().join("a.rs"), format!("// fine\n{bad}")).unwrap();
    std::fs::write(dir.path().join("b.md"), "cite docs/method.md §5.3\n").unwrap();
    std::fs::create_dir(dir.path().join("target")).unwrap();
    std::fs::write(dir.path().join("target/c.rs"), &bad).unwrap();
    std::fs::write(
        dir.path().join("d.md"),
        format!("../{}/method.md\n", ["sha", "red"].concat()),
    )
    .unwrap();
    // A scratch folder is not a git checkout: every file but the skipped folders is scanned.
    let mut files = Vec::new();
    walk(dir.path(), &mut files);
    let hits = offending(dir.path(), files);
    let names: Vec<(String, usize)> = hits
        .iter()
        .map(|(f, n, _)| (f.display().to_string(), *n))
        .collect();
    assert_eq!(names, [("a.rs".to_string(), 2), ("d.md".to_string(), 1)]);
}
