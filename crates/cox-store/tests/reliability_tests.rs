//! The activation store's guarantees under damage: every shard is verified by readers and
//! writers, a resumed writer re-creates exactly the damaged shards (the result is byte-identical
//! to an undamaged store) or refuses with a message naming the file, a second writer is locked
//! out, and misuse is an error rather than a panic. The property tests corrupt a store at random
//! (truncation, bit flips, deleted files, edited row counts) and check that no outcome is a
//! silently smaller or different store.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cox_store::{
    merge_runs, read_manifest, read_run, read_run_samples, verify_store, DiskDtype, Error, RunSpec,
    RunWriter, SampleRecord, LOCK_FILE, MANIFEST_FILE,
};
use proptest::prelude::*;

const TOTAL: usize = 7;
const SHARD: usize = 2;

fn spec(dtype: DiskDtype) -> RunSpec {
    let mut settings = serde_json::Map::new();
    settings.insert("token".into(), "dog".into());
    RunSpec {
        settings,
        layers: vec!["1".into(), "norm".into()],
        dtype,
        hidden_size: 3,
        shard_size: SHARD,
        selection_total: TOTAL,
        part: None,
        ordinal_start: 0,
        total_samples: TOTAL,
    }
}

/// Sample `o` of the simulated extraction: a pure function of `o`, as a real extraction is of its
/// sample. Every shard of two keeps at least one sample.
fn sample(o: usize) -> (SampleRecord, Option<Vec<Vec<f32>>>) {
    let kept = o % 3 != 1;
    let rec = SampleRecord {
        ordinal: o,
        id: format!("s{o}"),
        image: format!("{o}.png"),
        captions: vec!["a dog".into()],
        generated: Some("a dog".into()),
        token_index: kept.then_some(1),
        token_id: kept.then_some(7),
        position: kept.then_some(10),
        row: None,
        skip: (!kept).then_some(cox_store::Skip::TokenNotGenerated),
    };
    let v = kept.then(|| {
        vec![
            vec![o as f32, 0.5, -1.0],
            vec![2.0 * o as f32, 0.25 * o as f32, 1.0],
        ]
    });
    (rec, v)
}

/// Pushes every sample the writer asks for and finishes the store.
fn complete(mut w: RunWriter) -> cox_store::Result<()> {
    for o in w.todo().into_iter().flatten() {
        let (r, v) = sample(o);
        w.push(r, v)?;
    }
    w.finish().map(|_| ())
}

fn write_store(dir: &Path, dtype: DiskDtype) {
    complete(RunWriter::open(dir, spec(dtype)).unwrap()).unwrap();
}

/// The store's files (shards and manifest), sorted by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("shard-") || n == MANIFEST_FILE
        })
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn copy_store(from: &Path, to: &Path) {
    for (name, bytes) in files(from) {
        std::fs::write(to.join(name), bytes).unwrap();
    }
}

fn shard_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("shard-")
        })
        .collect();
    v.sort();
    v
}

fn shard_of(path: &Path) -> usize {
    let name = path.file_name().unwrap().to_string_lossy();
    name["shard-".len().."shard-".len() + 5].parse().unwrap()
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join(MANIFEST_FILE);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

#[derive(Debug, Clone)]
enum Corruption {
    /// Cut a shard file to a fraction of its length.
    Truncate { file: usize, keep: f64 },
    /// Flip one bit of a shard file.
    Flip { file: usize, at: f64, bit: u8 },
    /// Delete a shard file.
    Delete { file: usize },
    /// Change a shard's row count in the manifest.
    EditRows { shard: usize, rows: usize },
    /// Flip one bit of the manifest.
    FlipManifest { at: f64, bit: u8 },
}

fn shard_corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        (0usize..8, 0.0f64..1.0).prop_map(|(file, keep)| Corruption::Truncate { file, keep }),
        (0usize..8, 0.0f64..1.0, 0u8..8).prop_map(|(file, at, bit)| Corruption::Flip {
            file,
            at,
            bit
        }),
        (0usize..8).prop_map(|file| Corruption::Delete { file }),
        (0usize..4, 0usize..4).prop_map(|(shard, rows)| Corruption::EditRows { shard, rows }),
    ]
}

fn any_corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        4 => shard_corruption(),
        1 => (0.0f64..1.0, 0u8..8).prop_map(|(at, bit)| Corruption::FlipManifest { at, bit }),
    ]
}

/// Applies `c`.
fn apply(dir: &Path, c: &Corruption) {
    let shards = shard_files(dir);
    match *c {
        Corruption::Truncate { file, keep } => {
            let p = &shards[file % shards.len()];
            let bytes = std::fs::read(p).unwrap();
            let n = ((bytes.len() as f64 * keep) as usize).min(bytes.len() - 1);
            std::fs::write(p, &bytes[..n]).unwrap();
        }
        Corruption::Flip { file, at, bit } => {
            let p = &shards[file % shards.len()];
            let mut bytes = std::fs::read(p).unwrap();
            let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
            bytes[i] ^= 1 << bit;
            std::fs::write(p, &bytes).unwrap();
        }
        Corruption::Delete { file } => {
            let p = &shards[file % shards.len()];
            std::fs::remove_file(p).unwrap();
        }
        Corruption::EditRows { shard, rows } => {
            edit_manifest(dir, |v| v["shards"][shard]["rows"] = rows.into());
        }
        Corruption::FlipManifest { at, bit } => {
            let p = dir.join(MANIFEST_FILE);
            let mut bytes = std::fs::read(&p).unwrap();
            let i = ((bytes.len() as f64 * at) as usize).min(bytes.len() - 1);
            bytes[i] ^= 1 << bit;
            std::fs::write(&p, &bytes).unwrap();
        }
    }
}

/// What every outcome must satisfy after `corruptions` were applied to a copy of `pristine`:
/// reading gives the original data or an error; resuming either refuses (only when the manifest
/// itself was damaged) with a message naming it, or lists damaged shards covering every damaged
/// one, and re-writing their samples restores the store byte for byte.
fn check_outcome(pristine: &Path, corruptions: &[Corruption], dtype: DiskDtype) {
    let original = read_run(pristine, Some("norm")).unwrap();
    let d = tempfile::tempdir().unwrap();
    copy_store(pristine, d.path());
    let mut manifest_flipped = false;
    for c in corruptions {
        apply(d.path(), c);
        manifest_flipped |= matches!(c, Corruption::FlipManifest { .. });
    }
    // The shards whose files or row counts now differ (a second corruption may undo a first).
    let mut hit = BTreeSet::new();
    for (name, bytes) in files(pristine) {
        if name.starts_with("shard-")
            && std::fs::read(d.path().join(&name)).ok().as_ref() != Some(&bytes)
        {
            hit.insert(shard_of(Path::new(&name)));
        }
    }
    let rows = |dir: &Path| -> Option<Vec<serde_json::Value>> {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE)).ok()?).ok()?;
        Some(
            v["shards"]
                .as_array()?
                .iter()
                .map(|s| s["rows"].clone())
                .collect(),
        )
    };
    if let (Some(a), Some(b)) = (rows(pristine), rows(d.path())) {
        hit.extend((0..a.len()).filter(|&k| a.get(k) != b.get(k)));
    }
    match read_run(d.path(), Some("norm")) {
        Ok(r) => {
            assert_eq!(
                r.matrix, original.matrix,
                "{corruptions:?}: data changed silently"
            );
            assert_eq!(r.sample_ids, original.sample_ids, "{corruptions:?}");
            assert!(
                hit.is_empty(),
                "{corruptions:?}: damage to {hit:?} went unnoticed"
            );
        }
        Err(e) => assert!(names_no_flag(&e.to_string()), "{e}"),
    }
    let w = match RunWriter::open(d.path(), spec(dtype)) {
        Ok(w) => w,
        Err(e) => {
            assert!(manifest_flipped, "{corruptions:?}: refused: {e}");
            assert!(e.to_string().contains(MANIFEST_FILE), "unclear: {e}");
            return;
        }
    };
    let redo: BTreeSet<usize> = w.damaged().iter().map(|x| x.shard).collect();
    assert!(
        hit.is_subset(&redo),
        "{corruptions:?}: damaged {hit:?}, redo only {redo:?}"
    );
    for x in w.damaged() {
        assert_eq!(x.ordinals, spec(dtype).shard_ordinals(x.shard));
    }
    // The samples asked for are exactly those of the damaged shards, then none (all listed).
    let asked: Vec<usize> = w.todo().into_iter().flatten().collect();
    let expected: Vec<usize> = w
        .damaged()
        .iter()
        .flat_map(|x| x.ordinals.clone())
        .collect();
    assert_eq!(asked, expected, "{corruptions:?}");
    complete(w).unwrap();
    assert!(
        files(pristine) == files(d.path()),
        "{corruptions:?}: the repaired store differs from the original"
    );
    assert!(verify_store(d.path()).unwrap().is_complete());
}

/// Whether a message names no command-line flag (a word starting with `--`).
fn names_no_flag(msg: &str) -> bool {
    !msg.split_whitespace().any(|w| {
        w.trim_start_matches(['`', '(', '\'', '"'])
            .starts_with("--")
    })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn one_corruption_is_repaired_or_refused(c in any_corruption(), f16 in any::<bool>()) {
        let dtype = if f16 { DiskDtype::F16 } else { DiskDtype::F32 };
        let pristine = tempfile::tempdir().unwrap();
        write_store(pristine.path(), dtype);
        check_outcome(pristine.path(), &[c], dtype);
    }

    #[test]
    fn several_shard_corruptions_are_repaired(cs in proptest::collection::vec(shard_corruption(), 1..4)) {
        let pristine = tempfile::tempdir().unwrap();
        write_store(pristine.path(), DiskDtype::F16);
        // A file deleted twice is deleted once.
        let mut seen = BTreeSet::new();
        let cs: Vec<Corruption> = cs
            .into_iter()
            .filter(|c| match c {
                Corruption::Delete { file } => seen.insert(*file),
                _ => true,
            })
            .collect();
        check_outcome(pristine.path(), &cs, DiskDtype::F16);
    }
}

#[test]
fn every_bit_of_the_manifest_is_repaired_or_refused() {
    let pristine = tempfile::tempdir().unwrap();
    write_store(pristine.path(), DiskDtype::F16);
    let len = std::fs::read(pristine.path().join(MANIFEST_FILE))
        .unwrap()
        .len();
    // Every 7th byte, one bit each, keeps the test quick while covering every field.
    for i in (0..len).step_by(7) {
        let at = (i as f64 + 0.5) / len as f64;
        check_outcome(
            pristine.path(),
            &[Corruption::FlipManifest {
                at,
                bit: (i % 8) as u8,
            }],
            DiskDtype::F16,
        );
    }
}

#[test]
fn a_truncated_sample_file_is_named_as_a_damaged_shard() {
    let d = tempfile::tempdir().unwrap();
    write_store(d.path(), DiskDtype::F16);
    let p = d.path().join("shard-00003.jsonl");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    for e in [
        read_run_samples(d.path()).unwrap_err(),
        read_run(d.path(), Some("1")).unwrap_err(),
    ] {
        assert!(matches!(e, Error::DamagedShard { shard: 3, .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("shard-00003.jsonl") && msg.contains("truncated"),
            "{msg}"
        );
        assert!(msg.contains("resuming the extraction"), "{msg}");
    }
    let check = verify_store(d.path()).unwrap();
    assert!(!check.is_complete());
    assert_eq!(check.damaged.len(), 1);
    // The last shard holds sample 6 only.
    assert_eq!(check.damaged[0].ordinals, 6..7);
}

#[test]
fn a_deleted_middle_shard_is_re_created_alone() {
    let pristine = tempfile::tempdir().unwrap();
    write_store(pristine.path(), DiskDtype::F32);
    let d = tempfile::tempdir().unwrap();
    copy_store(pristine.path(), d.path());
    std::fs::remove_file(d.path().join("shard-00001.safetensors")).unwrap();
    let w = RunWriter::open(d.path(), spec(DiskDtype::F32)).unwrap();
    assert_eq!(w.todo(), vec![2..4]);
    let dmg = &w.damaged()[0];
    assert_eq!(dmg.shard, 1);
    assert!(dmg.problem.contains("missing"), "{}", dmg.problem);
    // The sample file survived, so the ids it held are known.
    assert_eq!(
        dmg.sample_ids.as_deref(),
        Some(&["s2".into(), "s3".into()][..])
    );
    assert!(!w.manifest().complete);
    // The verified shards' samples are available for the caller's consistency check.
    let ids: Vec<String> = w
        .verified_samples()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["s0", "s1", "s4", "s5", "s6"]);
    // The manifest on disk no longer claims completeness while the shard is missing.
    assert!(!read_manifest(d.path()).unwrap().unwrap().complete);
    complete(w).unwrap();
    assert!(files(pristine.path()) == files(d.path()));
}

#[test]
fn a_complete_flag_on_a_partial_store_is_not_trusted() {
    let d = tempfile::tempdir().unwrap();
    let mut w = RunWriter::open(d.path(), spec(DiskDtype::F16)).unwrap();
    for o in 0..4 {
        let (r, v) = sample(o);
        w.push(r, v).unwrap();
    }
    drop(w);
    edit_manifest(d.path(), |v| v["complete"] = true.into());
    let e = read_run(d.path(), Some("norm")).unwrap_err().to_string();
    assert!(
        e.contains("incomplete (4 of 7") && e.contains("says complete"),
        "{e}"
    );
    assert!(!verify_store(d.path()).unwrap().is_complete());
    // Resuming continues after the listed shards; pushing does not panic.
    let w = RunWriter::open(d.path(), spec(DiskDtype::F16)).unwrap();
    assert_eq!(w.todo(), vec![4..7]);
    complete(w).unwrap();
    assert_eq!(read_run(d.path(), Some("norm")).unwrap().matrix.rows, 5);
}

#[test]
fn misuse_of_a_writer_is_an_error_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    write_store(d.path(), DiskDtype::F16);
    let mut w = RunWriter::open(d.path(), spec(DiskDtype::F16)).unwrap();
    assert!(w.todo().is_empty());
    let (r, v) = sample(0);
    let e = w.push(r, v).unwrap_err();
    assert!(
        matches!(e, Error::Push { .. }) && e.to_string().contains("complete"),
        "{e}"
    );
    drop(w);

    let d = tempfile::tempdir().unwrap();
    let mut w = RunWriter::open(d.path(), spec(DiskDtype::F16)).unwrap();
    let (r, v) = sample(1);
    let e = w.push(r, v).unwrap_err().to_string();
    assert!(e.contains("expects sample 0"), "{e}");
    let (r, _) = sample(0);
    let e = w.push(r, Some(vec![vec![1.0; 3]])).unwrap_err().to_string();
    assert!(e.contains("2 vectors"), "{e}");
    let e = w.finish().unwrap_err().to_string();
    assert!(e.contains("0 of 7"), "{e}");
}

#[test]
fn a_second_writer_is_locked_out() {
    let d = tempfile::tempdir().unwrap();
    let first = RunWriter::open(d.path(), spec(DiskDtype::F16)).unwrap();
    let e = RunWriter::open(d.path(), spec(DiskDtype::F16))
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::Locked { pid: Some(p), .. } if p == std::process::id()),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains(LOCK_FILE) && msg.contains("another process"),
        "{msg}"
    );
    // Merging into a store being written is refused the same way.
    assert!(matches!(
        merge_runs(d.path(), &[d.path().to_path_buf()]).unwrap_err(),
        Error::Locked { .. } | Error::BadSidecar { .. }
    ));
    drop(first);
    // Released on drop; a lock file naming a dead process is stale and taken over.
    std::fs::write(d.path().join(LOCK_FILE), "999999999\n").unwrap();
    complete(RunWriter::open(d.path(), spec(DiskDtype::F16)).unwrap()).unwrap();
}

#[test]
fn a_version_1_store_is_checked_and_upgraded() {
    let pristine = tempfile::tempdir().unwrap();
    write_store(pristine.path(), DiskDtype::F16);
    let d = tempfile::tempdir().unwrap();
    copy_store(pristine.path(), d.path());
    // What an older coxlmm wrote: version 1, no checksums.
    edit_manifest(d.path(), |v| {
        v["version"] = 1.into();
        for s in v["shards"].as_array_mut().unwrap() {
            let s = s.as_object_mut().unwrap();
            s.remove("tensors_digest");
            s.remove("samples_digest");
        }
    });
    let check = verify_store(d.path()).unwrap();
    assert!(check.is_complete());
    assert_eq!(check.unhashed, 4);
    assert_eq!(
        read_run(d.path(), Some("norm")).unwrap().matrix,
        read_run(pristine.path(), Some("norm")).unwrap().matrix
    );
    // A structural fault is still found without checksums: a truncated sample file.
    let p = d.path().join("shard-00002.jsonl");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
    let w = RunWriter::open(d.path(), spec(DiskDtype::F16)).unwrap();
    assert_eq!(w.unhashed_shards(), 3);
    assert_eq!(w.todo(), vec![4..6]);
    complete(w).unwrap();
    // Opening as a writer recorded the checksums: the store is now the version-2 original.
    assert!(files(pristine.path()) == files(d.path()));
}

#[test]
fn merge_refuses_a_damaged_part_before_writing() {
    let parts: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    for (i, (s, e)) in [(0, 4), (4, 7)].into_iter().enumerate() {
        let mut sp = spec(DiskDtype::F16);
        sp.part = Some((i, 2));
        sp.ordinal_start = s;
        sp.total_samples = e - s;
        let mut w = RunWriter::open(parts[i].path(), sp).unwrap();
        for o in w.todo().into_iter().flatten() {
            let (r, v) = sample(o);
            w.push(r, v).unwrap();
        }
        w.finish().unwrap();
    }
    let p = parts[1].path().join("shard-00000.safetensors");
    let mut bytes = std::fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&p, bytes).unwrap();
    let out = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = parts.iter().map(|p| p.path().to_path_buf()).collect();
    let e = merge_runs(&out.path().join("m"), &paths).unwrap_err();
    assert!(matches!(e, Error::DamagedShard { .. }), "{e}");
    assert!(e.to_string().contains("SHA-256"), "{e}");
    assert!(!out.path().join("m").exists(), "nothing is written");
}

#[test]
fn store_errors_name_no_command_line_flags() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("x.txt"), "x").unwrap();
    let msgs = [
        RunWriter::open(d.path(), spec(DiskDtype::F16))
            .err()
            .unwrap()
            .to_string(),
        read_run(d.path(), None).unwrap_err().to_string(),
    ];
    let s = tempfile::tempdir().unwrap();
    write_store(s.path(), DiskDtype::F16);
    let mut other = spec(DiskDtype::F16);
    other.settings.insert("token".into(), "cat".into());
    let more = [
        RunWriter::open(s.path(), other).err().unwrap().to_string(),
        read_run(s.path(), None).unwrap_err().to_string(),
        read_run(s.path(), Some("9")).unwrap_err().to_string(),
    ];
    for m in msgs.iter().chain(&more) {
        assert!(names_no_flag(m), "{m}");
    }
    assert!(more[1].contains("name the one to read"), "{}", more[1]);
}

#[test]
fn a_re_created_shard_that_differs_is_refused_without_writing() {
    let d = tempfile::tempdir().unwrap();
    write_store(d.path(), DiskDtype::F16);
    std::fs::remove_file(d.path().join("shard-00001.jsonl")).unwrap();
    let mut w = RunWriter::open(d.path(), spec(DiskDtype::F16)).unwrap();
    assert_eq!(w.todo(), vec![2..4]);
    // Sample 2 was kept; now it is skipped, so shard 2 would start one row earlier.
    let (mut r, _) = sample(2);
    r.skip = Some(cox_store::Skip::TokenNotGenerated);
    w.push(r, None).unwrap();
    let (r, v) = sample(3);
    let e = w.push(r, v).unwrap_err().to_string();
    assert!(
        e.contains("not reproducible") && e.contains("shard 2"),
        "{e}"
    );
    drop(w);
    assert!(
        !d.path().join("shard-00001.jsonl").exists(),
        "nothing written"
    );
}

#[test]
fn f64_values_beyond_f32_are_named_as_such() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("big.safetensors");
    let vals: Vec<f64> = vec![1.0, 2.0, 3.0, 1e300, 5.0, 6.0];
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![2, 3], &bytes).unwrap();
    let buf = safetensors::tensor::serialize(vec![("activations", view)], None).unwrap();
    std::fs::write(&p, buf).unwrap();
    let e = cox_store::read_activations(&p, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("value 1e300 at row 1 col 0 is outside the f32 range"),
        "{e}"
    );
    assert!(!e.contains("inf"), "{e}");
}

#[test]
fn io_errors_carry_the_os_text_once() {
    let d = tempfile::tempdir().unwrap();
    let e = cox_store::read_activations(&d.path().join("nope.safetensors"), None).unwrap_err();
    // The OS text is in the message and not repeated as a source, so a caller printing the
    // whole chain shows it once.
    assert!(e.to_string().contains("nope.safetensors"), "{e}");
    assert!(std::error::Error::source(&e).is_none());
}

#[test]
fn fingerprints_follow_content_and_ignore_the_path_spelling() {
    let d = tempfile::tempdir().unwrap();
    let w = d.path().join("model.safetensors");
    std::fs::write(&w, b"weights v1").unwrap();
    let cache = d.path().join("cache.json");
    let a = cox_store::fingerprint_files(std::slice::from_ref(&w), Some(&cache)).unwrap();
    assert_eq!(a[0].bytes, 10);
    assert_eq!(a[0].sha256, cox_store::sha256_hex(b"weights v1"));
    // The same file named another way has the same fingerprint (the path is canonical).
    let other = d
        .path()
        .join(".")
        .join("x")
        .join("..")
        .join("model.safetensors");
    std::fs::create_dir(d.path().join("x")).unwrap();
    assert_eq!(
        cox_store::fingerprint_files(&[other], Some(&cache)).unwrap(),
        a
    );
    // Changed in place (same length): a different fingerprint, cache or not.
    std::fs::write(&w, b"weights v2").unwrap();
    let f = std::fs::File::options().write(true).open(&w).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let b = cox_store::fingerprint_files(std::slice::from_ref(&w), Some(&cache)).unwrap();
    assert_ne!(a[0].sha256, b[0].sha256);
    // A missing file is an error naming it.
    let e = cox_store::fingerprint_files(&[d.path().join("gone")], None).unwrap_err();
    assert!(e.to_string().contains("gone"), "{e}");
}
