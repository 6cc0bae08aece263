//! End to end tests of `coxlmm extract` / `coxlmm merge` on a tiny random LLaVA and a small
//! `folder:` dataset: extract → learn, a killed run resumed, shards merged, refused resumes, and a
//! corrupt image recorded as a skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cox_hook::TokenOfInterest;
use cox_model::testing::{write_tiny_llava, TinyConfig};
use cox_model::{Llava, LoadOptions};

const PROMPT: &str = "\nProvide a one-sentence caption for the provided image.";
const N: usize = 7;
const CORRUPT: usize = 3;
const NO_GT: usize = 5;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    model: PathBuf,
    data: PathBuf,
    token: String,
}

/// A tiny model, a 7-image dataset (image 3 is not an image, captions of 5 lack the token) and a
/// token of interest the model generates for image 0.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let model = root.join("model");
    write_tiny_llava(&model, &TinyConfig::tiny(), 3).unwrap();
    let data = root.join("data");
    std::fs::create_dir_all(data.join("images")).unwrap();
    for i in 0..N {
        let p = data.join(format!("images/{i}.png"));
        if i == CORRUPT {
            std::fs::write(&p, b"not a png").unwrap();
        } else {
            image::RgbImage::from_fn(24, 20, |x, y| {
                image::Rgb([
                    (x * 9 + i as u32 * 30) as u8,
                    (y * 11) as u8,
                    (i * 40) as u8,
                ])
            })
            .save(&p)
            .unwrap();
        }
    }
    let token = generated_word(&model, &data.join("images/0.png"));
    let lines: String = (0..N)
        .map(|i| {
            let cap = if i == NO_GT {
                "nothing here".to_string()
            } else {
                format!("a {token} here")
            };
            format!(
                "{{\"image\": \"images/{i}.png\", \"captions\": [\"{cap}\"], \"id\": \"s{i}\", \"split\": \"train\"}}\n"
            )
        })
        .collect();
    std::fs::write(data.join("captions.jsonl"), lines).unwrap();
    Fixture {
        _dir: dir,
        root,
        model,
        data,
        token,
    }
}

/// A word (one vocabulary piece, its word-start marker removed) that `model` generates for
/// `image` with EOS ignored: a token of interest the extraction will find.
fn generated_word(model: &Path, image: &Path) -> String {
    let mut llava = Llava::load(model.to_str().unwrap(), &LoadOptions::default()).unwrap();
    llava.tokenizer.eos_token_ids.clear();
    let g = llava.caption(image, PROMPT, 12).unwrap();
    let tok = llava.tokenizer.inner();
    g.generated_ids
        .iter()
        .filter_map(|&id| tok.id_to_token(id))
        .map(|w| w.trim_start_matches(['Ġ', '▁']).to_string())
        .find(|w| {
            w.len() > 1
                && w.chars().all(|c| c.is_ascii_alphanumeric())
                && TokenOfInterest::new(tok, w).is_ok_and(|t| t.find(&g.generated_ids).is_some())
        })
        .unwrap_or_else(|| panic!("{} generates no word", model.display()))
}

impl Fixture {
    fn extract_cmd(&self, out: &Path, token: &str, layer: &str, extra: &[&str]) -> Command {
        self.extract_cmd_of(&self.model, out, token, layer, extra)
    }

    fn extract_cmd_of(
        &self,
        model: &Path,
        out: &Path,
        token: &str,
        layer: &str,
        extra: &[&str],
    ) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coxlmm"));
        c.args(["extract", "--model"])
            .arg(model)
            .arg("--data")
            .arg(format!("folder:{}", self.data.display()))
            .args([
                "--split", "train", "--token", token, "--layer", layer, "--out",
            ])
            .arg(out)
            .args([
                "--max-new-tokens",
                "12",
                "--shard-size",
                "2",
                "--ignore-eos",
            ])
            .args(extra)
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove(FAIL_ENV)
            // The weights' hashes are cached here, not in the user's cache folder.
            .env("XDG_CACHE_HOME", self.root.join("cache"));
        c
    }

    /// An extraction into `out` that stops (as if killed) right after its first shard: exit
    /// code 3, the manifest listing one shard.
    fn extract_killed_after_first_shard(&self, out: &Path) {
        let o = self
            .extract_cmd(out, &self.token, "1,norm", &[])
            .env(FAIL_ENV, "1")
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn extract(&self, out: &Path, extra: &[&str]) -> Output {
        self.extract_cmd(out, &self.token, "1,norm", extra)
            .output()
            .unwrap()
    }
}

const FAIL_ENV: &str = "COXLMM_FAIL_AFTER_SHARDS";

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "failed: {}\n{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn shard_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("shard-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no shard files in {}", dir.display());
    v
}

#[test]
fn extract_then_learn_with_a_corrupt_image_skipped() {
    let f = fixture();
    let out = f.root.join("run/train");
    let text = ok(&f.extract(&out, &["--dtype", "f32"]));
    let samples = cox_store::read_run_samples(&out).unwrap();
    assert_eq!(samples.len(), N);
    let kept = samples.iter().filter(|s| s.row.is_some()).count();
    // The summary says what was extracted, what was skipped and why, and names the unreadable
    // image.
    assert!(
        text.starts_with(&format!(
            "extracted {kept} of {N} samples (layers 1, norm) into {}",
            out.display()
        )),
        "{text}"
    );
    assert!(text.contains(&format!("scanned          {N}")), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in {text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("image_unreadable")[..3],
        ["image_unreadable", "1", "the"]
    );
    assert_eq!(line("gt_filter")[1], "1");
    assert!(text.contains("the image could not be read"), "{text}");
    let unreadable = line("unreadable ");
    assert_eq!(unreadable.len(), 2, "{text}");
    assert!(
        unreadable[1].ends_with(&format!("images/{CORRUPT}.png")),
        "{text}"
    );

    let bad = &samples[CORRUPT];
    assert_eq!(bad.skip, Some(cox_store::Skip::ImageUnreadable), "{bad:?}");
    assert_eq!(samples[NO_GT].skip, Some(cox_store::Skip::GtFilter));
    assert!(samples[0].row == Some(0) && samples[0].generated.is_some());

    let run = cox_store::read_run(&out, Some("norm")).unwrap();
    assert!(run.matrix.rows >= 1);
    assert_eq!(run.matrix.cols, 64);
    assert_eq!(run.sample_ids[0], "s0");
    assert!(run.manifest.complete);
    assert_eq!(run.manifest.shards.len(), N.div_ceil(2));

    // The Python-facing layout: per-layer [n, B] tensors and an i64 index per shard.
    let bytes = std::fs::read(out.join("shard-00000.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let rows0 = run.manifest.shards[0].rows;
    assert_eq!(st.tensor("layer.1").unwrap().shape(), &[rows0, 64]);
    assert_eq!(st.tensor("index").unwrap().shape(), &[rows0]);

    // The docs/formats.md Python reader, when COXLMM_PYTHON names a Python with safetensors.
    if let Ok(py) = std::env::var("COXLMM_PYTHON") {
        let script = r#"
import json, sys
import numpy as np
from safetensors.numpy import load_file
run = sys.argv[1]
m = json.load(open(f"{run}/manifest.json"))
assert m["complete"]
z, ids = [], []
for s in m["shards"]:
    t = load_file(f"{run}/{s['tensors']}")
    z.append(t["layer.norm"].astype(np.float32))
    lines = [json.loads(l) for l in open(f"{run}/{s['samples']}")]
    ids += [l["id"] for l in lines if l["row"] is not None]
z = np.concatenate(z)
print(z.shape[0], z.shape[1], ",".join(ids), float(z[0, 0]))
"#;
        let o = Command::new(py)
            .args(["-c", script])
            .arg(&out)
            .output()
            .unwrap();
        let text = ok(&o);
        let expect = format!(
            "{} 64 {} {}",
            run.matrix.rows,
            run.sample_ids.join(","),
            run.matrix.data[0] as f64
        );
        assert_eq!(text.trim(), expect);
    }

    // learn reads the store directory; with two layers, --layer picks one.
    let dict = f.root.join("dict");
    let learn = |layer: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coxlmm"));
        c.args(["learn", "--activations"])
            .arg(&out)
            .args(["--method", "pca", "--k", "1", "--out"])
            .arg(&dict);
        if let Some(l) = layer {
            c.args(["--layer", l]);
        }
        c.output().unwrap()
    };
    let text = ok(&learn(Some("norm")));
    assert!(text.contains("learnt 1 concepts"), "{text}");
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.root.join("dict.json")).unwrap()).unwrap();
    assert_eq!(side["sample_ids"][0], "s0");
    let err = learn(None);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("--layer"));
}

#[test]
fn killed_run_resumes_to_the_uninterrupted_result_and_other_settings_are_refused() {
    let f = fixture();
    let full = f.root.join("full");
    ok(&f.extract(&full, &[]));

    // Stopped (as if killed) right after its first shard: the manifest lists one shard.
    let part = f.root.join("part");
    f.extract_killed_after_first_shard(&part);
    let m = cox_store::read_manifest(&part).unwrap().unwrap();
    assert_eq!((m.shards.len(), m.complete), (1, false));
    assert!(cox_store::read_run(&part, Some("1")).is_err());

    // Resuming with another token or layer set is refused with the difference named.
    for (token, layer, what) in [
        ("zzzz", "1,norm", "token"),
        (f.token.as_str(), "1", "layers"),
    ] {
        let o = f.extract_cmd(&part, token, layer, &[]).output().unwrap();
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("another run") && e.contains(what) || e.contains("token of interest"),
            "{e}"
        );
    }

    // A real kill at an arbitrary moment, then the same command again.
    let killed = f.root.join("killed");
    let mut child = f
        .extract_cmd(&killed, &f.token, "1,norm", &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !killed.join("shard-00000.safetensors").exists()
        && t0.elapsed() < std::time::Duration::from_secs(60)
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();

    let text = ok(&f.extract(&part, &[]));
    assert!(text.contains(&format!("scanned          {N}")), "{text}");
    ok(&f.extract(&killed, &[]));
    assert_eq!(shard_files(&full), shard_files(&part));
    assert_eq!(shard_files(&full), shard_files(&killed));
    // Running a complete store again changes nothing.
    ok(&f.extract(&part, &[]));
    assert_eq!(shard_files(&full), shard_files(&part));
}

#[test]
fn three_shard_processes_merged_equal_a_single_run() {
    let f = fixture();
    let single = f.root.join("single");
    ok(&f.extract(&single, &[]));
    let parts: Vec<PathBuf> = (0..3).map(|i| f.root.join(format!("shard-{i}"))).collect();
    let children: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut c = f.extract_cmd(p, &f.token, "1,norm", &[]);
            if i == 2 {
                // The last part takes its index from a Slurm array's environment.
                c.env("SLURM_ARRAY_TASK_ID", "2")
                    .env("SLURM_ARRAY_TASK_COUNT", "3");
            } else {
                c.args(["--shard", &format!("{i}/3")]);
            }
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        assert!(c.wait_with_output().unwrap().status.success());
    }
    let merged = f.root.join("merged");
    let merge = |out: &Path, parts: &[PathBuf]| {
        Command::new(env!("CARGO_BIN_EXE_coxlmm"))
            .arg("merge")
            .arg("--out")
            .arg(out)
            .args(parts)
            .output()
            .unwrap()
    };
    ok(&merge(
        &merged,
        &[parts[2].clone(), parts[0].clone(), parts[1].clone()],
    ));
    assert_eq!(shard_files(&single), shard_files(&merged));
    let a = cox_store::read_run(&single, Some("norm")).unwrap();
    let b = cox_store::read_run(&merged, Some("norm")).unwrap();
    assert_eq!((a.matrix, a.sample_ids), (b.matrix, b.sample_ids));

    // A missing part is refused.
    let o = merge(&f.root.join("bad"), &parts[..2]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing"));
}

#[test]
fn bad_inputs_get_clear_errors() {
    let f = fixture();
    let err = |c: &mut Command| {
        let o = c.output().unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // A token that is not one word.
    let e = err(&mut f.extract_cmd(&f.root.join("a"), "two words", "1", &[]));
    assert!(e.contains("token of interest"), "{e}");
    // No sample in the split.
    let e = err(&mut f.extract_cmd(&f.root.join("b"), &f.token, "1", &["--split", "val"]));
    assert!(
        e.to_lowercase().contains("no sample") || e.contains("empty"),
        "{e}"
    );
    // A limit of 0 (an empty store would look complete), and nothing is written.
    let e = err(&mut f.extract_cmd(&f.root.join("z"), &f.token, "1", &["--limit", "0"]));
    assert!(e.contains("limit of 0"), "{e}");
    assert!(!f.root.join("z").join("manifest.json").exists());
    // A layer the model does not have.
    let e = err(&mut f.extract_cmd(&f.root.join("c"), &f.token, "99", &[]));
    assert!(e.contains("99"), "{e}");
    // An output folder holding something else.
    let e = err(&mut f.extract_cmd(&f.data, &f.token, "1", &[]));
    assert!(e.contains("not empty"), "{e}");
    // A device this build lacks (or an unparsable one).
    let e = err(&mut f.extract_cmd(&f.root.join("e"), &f.token, "1", &["--device", "gpu"]));
    assert!(e.contains("expected cpu, cuda or cuda:N"), "{e}");
    // A missing dataset folder.
    let mut c = f.extract_cmd(&f.root.join("d"), &f.token, "1", &[]);
    c.args(["--data", "folder:/nonexistent/coxlmm"]);
    let e = err(&mut c);
    assert!(e.contains("/nonexistent/coxlmm"), "{e}");
}

/// Every layer's rows of two stores agree to `tol` and the samples (ids, captions, kept
/// positions, skips) are the same.
fn assert_same_rows(a: &Path, b: &Path, tol: f32) {
    let (sa, sb) = (
        cox_store::read_run_samples(a).unwrap(),
        cox_store::read_run_samples(b).unwrap(),
    );
    assert_eq!(sa.len(), sb.len());
    for (x, y) in sa.iter().zip(&sb) {
        assert_eq!(
            (
                &x.id,
                &x.generated,
                x.token_index,
                x.position,
                x.row,
                &x.skip
            ),
            (
                &y.id,
                &y.generated,
                y.token_index,
                y.position,
                y.row,
                &y.skip
            )
        );
    }
    for layer in ["1", "norm"] {
        let (ra, rb) = (
            cox_store::read_run(a, Some(layer)).unwrap(),
            cox_store::read_run(b, Some(layer)).unwrap(),
        );
        assert_eq!(ra.sample_ids, rb.sample_ids);
        assert_eq!(
            (ra.matrix.rows, ra.matrix.cols),
            (rb.matrix.rows, rb.matrix.cols)
        );
        assert!(
            ra.matrix.rows >= 1,
            "no row kept: the test compares nothing"
        );
        let d = ra
            .matrix
            .data
            .iter()
            .zip(&rb.matrix.data)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        assert!(d <= tol, "layer {layer}: max |diff| {d:e} > {tol:e}");
    }
}

#[test]
fn batched_vision_tower_gives_the_rows_of_one_image_at_a_time() {
    let f = fixture();
    // Without the ground-truth filter every readable image is generated from; batches of 3 put
    // the corrupt image and a filtered sample inside a batch and leave a last partial batch.
    let run = |out: &Path, batch: &str, env: Option<(&str, &str)>| {
        let mut c = f.extract_cmd(out, &f.token, "1,norm", &[]);
        c.args(["--dtype", "f32", "--gt-filter", "none", "--batch", batch]);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let one = f.root.join("batch1");
    let three = f.root.join("batch3");
    ok(&run(&one, "1", None));
    ok(&run(&three, "3", None));
    assert_same_rows(&one, &three, 1e-5);
    let samples = cox_store::read_run_samples(&three).unwrap();
    assert_eq!(
        samples[CORRUPT].skip,
        Some(cox_store::Skip::ImageUnreadable)
    );
    assert!(samples
        .iter()
        .enumerate()
        .all(|(i, s)| i == CORRUPT || s.generated.is_some()));

    // The batch size is not a run setting: a store killed mid-batch with --batch 3 resumes
    // with --batch 1 (and again with the default) to the same rows.
    let mixed = f.root.join("mixed");
    let o = run(&mixed, "3", Some((FAIL_ENV, "1")));
    assert_eq!(o.status.code(), Some(3));
    let o = run(&mixed, "1", Some((FAIL_ENV, "1")));
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        cox_store::read_manifest(&mixed)
            .unwrap()
            .unwrap()
            .shards
            .len(),
        2
    );
    ok(&run(&mixed, "8", None));
    assert_same_rows(&one, &mixed, 1e-5);
    assert!(!run(&f.root.join("zero"), "0", None).status.success());
}

#[test]
fn a_damaged_store_is_repaired_by_resuming_to_the_same_bytes() {
    let f = fixture();
    let full = f.root.join("full");
    ok(&f.extract(&full, &[]));
    let shards: Vec<String> = shard_files(&full).into_iter().map(|(n, _)| n).collect();
    assert!(
        shards.len() >= 4,
        "the fixture needs two shards: {shards:?}"
    );
    let damaged = f.root.join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    for e in std::fs::read_dir(&full).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), damaged.join(e.file_name())).unwrap();
    }
    // Truncate the first shard's tensors, delete the second shard's sample list.
    let first = damaged.join("shard-00000.safetensors");
    let len = std::fs::metadata(&first).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    std::fs::remove_file(damaged.join("shard-00001.jsonl")).unwrap();
    // Readers refuse it instead of returning fewer rows.
    assert!(cox_store::read_run(&damaged, Some("1")).is_err());
    // The same command re-creates exactly the damaged shards.
    let o = f.extract(&damaged, &[]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    ok(&o);
    assert!(err.contains("damaged"), "{err}");
    assert_eq!(shard_files(&full), shard_files(&damaged));
    assert!(cox_store::read_run(&damaged, Some("1")).is_ok());
}

/// A `folder:` dataset whose captions.jsonl names an image outside the folder (`../`) is refused
/// with the file and line named and nothing written, and extracted with `--allow-outside-paths`.
#[test]
fn image_paths_outside_the_dataset_folder_need_an_explicit_flag() {
    let f = fixture();
    let data = escaping_dataset(&f);
    let dataset = format!("folder:{}", data.display());

    let refused = f.root.join("refused");
    let o = f
        .extract_cmd(&refused, &f.token, "1", &["--data", &dataset])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("captions.jsonl:2:")
            && e.contains("../data/images/1.png")
            && e.contains("outside the dataset folder")
            && e.contains("--allow-outside-paths"),
        "{e}"
    );
    assert!(!refused.join("manifest.json").exists());

    let allowed = f.root.join("allowed");
    ok(&f
        .extract_cmd(
            &allowed,
            &f.token,
            "1",
            &["--data", &dataset, "--allow-outside-paths"],
        )
        .output()
        .unwrap());
    let samples = cox_store::read_run_samples(&allowed).unwrap();
    let ids: Vec<&str> = samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["in", "out"]);
    // The outside image was read and captioned (whether the tiny model then generates the token
    // does not matter here).
    assert!(
        samples[1].image.ends_with("../data/images/1.png") && samples[1].generated.is_some(),
        "{samples:?}"
    );
}

/// The store names the model by its canonical folder and records the length and SHA-256 of its
/// weights: the same checkpoint given as `./model` resumes a store started with its absolute
/// path, and a checkpoint changed in place (same `config.json`, other weights) is refused, both
/// for resuming a partial store and for extending a complete one, with what to do.
#[test]
fn the_same_weights_under_another_path_resume_and_changed_weights_are_refused() {
    let f = fixture();
    let full = f.root.join("full");
    ok(&f.extract(&full, &[]));
    let m = cox_store::read_manifest(&full).unwrap().unwrap();
    let canonical = std::fs::canonicalize(&f.model).unwrap();
    assert_eq!(m.spec.settings["model"], canonical.display().to_string());
    let weights = f.model.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    assert_eq!(
        m.spec.settings["model_weights"],
        serde_json::json!([{
            "file": "model.safetensors",
            "bytes": bytes.len(),
            "sha256": cox_store::sha256_hex(&bytes),
        }])
    );
    // The hash was cached (by path, length and modification time) for the next extraction.
    let cache = std::fs::read_to_string(f.root.join("cache/coxlmm/weights-sha256.json")).unwrap();
    assert!(cache.contains(&cox_store::sha256_hex(&bytes)), "{cache}");

    // Two partial stores (stopped after their first shard), started with the absolute path.
    let partial = |name: &str| {
        let dir = f.root.join(name);
        f.extract_killed_after_first_shard(&dir);
        dir
    };
    let (relative, kept_partial) = (partial("relative"), partial("kept-partial"));
    // The same folder as `./model` from its parent.
    let o = f
        .extract_cmd(&relative, &f.token, "1,norm", &["--model", "./model"])
        .current_dir(&f.root)
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(shard_files(&full), shard_files(&relative));

    // A store written before weights were recorded cannot be checked against them: refused too.
    let old = f.root.join("old");
    std::fs::create_dir_all(&old).unwrap();
    for (name, bytes) in shard_files(&full) {
        std::fs::write(old.join(name), bytes).unwrap();
    }
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(full.join("manifest.json")).unwrap()).unwrap();
    manifest["settings"]
        .as_object_mut()
        .unwrap()
        .remove("model_weights");
    std::fs::write(
        old.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let o = f.extract(&old, &[]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("does not record its model's weights")
            && e.contains("extract into a new folder"),
        "{e}"
    );

    // The checkpoint rewritten in place with other weights under the same config.json.
    let config = std::fs::read(f.model.join("config.json")).unwrap();
    write_tiny_llava(&f.model, &TinyConfig::tiny(), 4).unwrap();
    assert_eq!(std::fs::read(f.model.join("config.json")).unwrap(), config);
    assert_ne!(std::fs::read(&weights).unwrap(), bytes);
    for store in [&kept_partial, &full] {
        let before = shard_files(store);
        let o = f.extract(store, &[]);
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("other weights")
                && e.contains("model.safetensors")
                && e.contains(&cox_store::sha256_hex(&bytes))
                && e.contains("extract into a new folder")
                && e.contains("hint: choose another --out"),
            "{e}"
        );
        assert_eq!(
            shard_files(store),
            before,
            "a refused store is left as it was"
        );
    }
}

/// A second dataset beside the fixture's: line 1 inside it, line 2 climbing out (`../`) into the
/// fixture's images.
fn escaping_dataset(f: &Fixture) -> PathBuf {
    let data = f.root.join("escaping");
    std::fs::create_dir_all(data.join("images")).unwrap();
    std::fs::copy(f.data.join("images/0.png"), data.join("images/0.png")).unwrap();
    let line = |image: &str, id: &str| {
        format!(
            "{{\"image\": \"{image}\", \"captions\": [\"a {} here\"], \"id\": \"{id}\", \"split\": \"train\"}}\n",
            f.token
        )
    };
    std::fs::write(
        data.join("captions.jsonl"),
        line("images/0.png", "in") + &line("../data/images/1.png", "out"),
    )
    .unwrap();
    data
}

/// `coxlmm run` takes `--allow-outside-paths` as `extract` does: without it the escaping line is
/// refused (the hint names the flag) before anything is extracted; with it the training store
/// holds the outside sample.
#[test]
fn run_reads_outside_paths_only_when_allowed() {
    let f = fixture();
    let dataset = format!("folder:{}", escaping_dataset(&f).display());
    let run = |out: &Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_coxlmm"))
            .arg("run")
            .arg("--model")
            .arg(&f.model)
            .args(["--data", &dataset, "--token", &f.token, "--layer", "1"])
            .args(["--test-split", "", "--methods", "pca", "--k", "1"])
            .args(["--max-new-tokens", "12", "--explain", "0", "--out"])
            .arg(out)
            .args(extra)
            .env("XDG_CACHE_HOME", f.root.join("cache"))
            .output()
            .unwrap()
    };
    let refused = f.root.join("run-refused");
    let o = run(&refused, &[]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("outside the dataset folder") && e.contains("--allow-outside-paths"),
        "{e}"
    );
    assert!(!refused.join("extract/train/manifest.json").exists());

    // Allowed, extraction reads both lines (whether the random model then generates the token
    // often enough for K = 1 does not matter here).
    let allowed = f.root.join("run-allowed");
    let o = run(&allowed, &["--allow-outside-paths"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!e.contains("outside the dataset folder"), "{e}");
    let samples = cox_store::read_run_samples(&allowed.join("extract/train")).unwrap();
    let ids: Vec<&str> = samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["in", "out"]);
    // The permission is not a run setting: the same run resumes without it being recorded.
    let settings = std::fs::read_to_string(allowed.join("run.json")).unwrap();
    assert!(!settings.contains("allow_outside_paths"), "{settings}");
}

/// The same extraction with one thread and with two (workers and matrix products) writes the
/// same bytes, on the mid checkpoint whose products are large enough for candle to split them
/// across threads (width 512, 256 image tokens).
#[test]
fn extraction_is_bit_identical_across_thread_counts() {
    let f = fixture();
    let mid = f.root.join("mid");
    write_tiny_llava(&mid, &TinyConfig::mid(), 0).unwrap();
    let token = generated_word(&mid, &f.data.join("images/0.png"));
    let run = |threads: &str| {
        let out = f.root.join(format!("store-t{threads}"));
        let extra = [
            "--gt-filter",
            "none",
            "--threads",
            threads,
            "--model-threads",
            threads,
            "--limit",
            "3",
        ];
        ok(&f
            .extract_cmd_of(&mid, &out, &token, "0,3,norm", &extra)
            .output()
            .unwrap());
        out
    };
    let one = run("1");
    let two = run("2");
    let rows = cox_store::read_run(&one, Some("norm")).unwrap().matrix.rows;
    assert!(rows > 0, "no row kept: the comparison would be empty");
    assert_eq!(shard_files(&one), shard_files(&two));
}
