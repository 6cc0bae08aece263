//! Reading COCO-Karpathy and `folder:` fixtures written into temporary folders, selection and
//! sharding, the environment helper, and the COCO layout check.

use std::fs;
use std::path::Path;

use cox_data::{
    check_coco_layout, check_coco_layout_with, shard_from_vars, DataError, DataSource, LoadOptions,
    Sample, Shard, Split, Subsample, Subset,
};
use serde_json::json;

/// Writes a small RGB PNG.
fn png(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(4, 3, image::Rgb([10, 200, 30]))
        .save(path)
        .unwrap();
}

/// A fake Karpathy split file with images in both folders and all four splits; writes the PNGs
/// under `root` when `images` is set.
fn fake_coco(dir: &Path, root: &Path, images: bool) {
    let entries = [
        (
            "val2014",
            "COCO_val2014_000000000042.jpg",
            "test",
            42,
            "A dog runs on grass.",
        ),
        (
            "train2014",
            "COCO_train2014_000000000009.jpg",
            "train",
            9,
            "Two cats on a sofa.",
        ),
        (
            "val2014",
            "COCO_val2014_000000000073.jpg",
            "restval",
            73,
            "A hotdog on a plate.",
        ),
        (
            "val2014",
            "COCO_val2014_000000000074.jpg",
            "val",
            74,
            "A dog and a frisbee.",
        ),
        (
            "train2014",
            "COCO_train2014_000000000025.jpg",
            "train",
            25,
            "A giraffe eating.",
        ),
    ];
    let images_json: Vec<_> = entries
        .iter()
        .enumerate()
        .map(|(i, (fp, fname, split, id, raw))| {
            json!({
                "filepath": fp, "filename": fname, "split": split, "cocoid": id, "imgid": i,
                "sentids": [5 * i, 5 * i + 1],
                "sentences": [
                    {"raw": raw, "tokens": ["x"], "imgid": i, "sentid": 5 * i},
                    {"raw": format!("second caption {i}"), "tokens": ["y"], "imgid": i, "sentid": 5 * i + 1}
                ]
            })
        })
        .collect();
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("dataset_coco.json"),
        serde_json::to_string_pretty(&json!({"images": images_json, "dataset": "coco"})).unwrap(),
    )
    .unwrap();
    for (fp, fname, ..) in entries {
        fs::create_dir_all(root.join(fp)).unwrap();
        if images {
            png(&root.join(fp).join(fname));
        }
    }
}

fn ids(samples: &[Sample]) -> Vec<&str> {
    samples.iter().map(|s| s.id.as_str()).collect()
}

fn folder_source(dir: &Path) -> DataSource {
    DataSource::Folder {
        dir: dir.to_path_buf(),
    }
}

fn coco_source(dir: &Path) -> DataSource {
    DataSource::Coco {
        dir: dir.to_path_buf(),
        image_root: None,
    }
}

#[test]
fn coco_reads_every_image_in_file_order() {
    let t = tempfile::tempdir().unwrap();
    fake_coco(t.path(), t.path(), true);
    let all = coco_source(t.path()).load(&[]).unwrap();
    assert_eq!(ids(&all), ["42", "9", "73", "74", "25"]);
    let s = &all[0];
    assert_eq!(
        s.image_path,
        t.path().join("val2014/COCO_val2014_000000000042.jpg")
    );
    assert_eq!(s.captions, ["A dog runs on grass.", "second caption 0"]);
    assert_eq!(s.split, Some(Split::Test));
    assert_eq!(s.extra["cocoid"], json!(42));
    assert_eq!(s.extra["filepath"], json!("val2014"));
    assert_eq!(s.extra["filename"], json!("COCO_val2014_000000000042.jpg"));
    assert_eq!(s.extra["imgid"], json!(0));
    assert!(s.image_path.is_file());
}

#[test]
fn coco_filters_splits() {
    let t = tempfile::tempdir().unwrap();
    fake_coco(t.path(), t.path(), false);
    let src = coco_source(t.path());
    assert_eq!(ids(&src.load(&[Split::Train]).unwrap()), ["9", "25"]);
    let train_restval = Split::parse_list("train,restval,train").unwrap();
    assert_eq!(ids(&src.load(&train_restval).unwrap()), ["9", "73", "25"]);
    assert_eq!(ids(&src.load(&[Split::Test]).unwrap()), ["42"]);
}

#[test]
fn coco_image_root_can_live_elsewhere() {
    let t = tempfile::tempdir().unwrap();
    let (dir, root) = (t.path().join("ann"), t.path().join("imgs"));
    fake_coco(&dir, &root, false);
    let src: DataSource = format!("coco:{},images={}", dir.display(), root.display())
        .parse()
        .unwrap();
    let all = src.load(&[]).unwrap();
    assert!(all[1].image_path.starts_with(&root));
    // Without the image root the images' folders are missing under `dir`.
    let err = coco_source(&dir).load(&[]).unwrap_err();
    assert!(matches!(err, DataError::MissingImageRoot { .. }), "{err}");
}

#[test]
fn coco_missing_image_folder_names_the_folder() {
    let t = tempfile::tempdir().unwrap();
    fake_coco(t.path(), t.path(), false);
    fs::remove_dir_all(t.path().join("train2014")).unwrap();
    // The test split lives in val2014 only, so it still loads.
    coco_source(t.path()).load(&[Split::Test]).unwrap();
    let err = coco_source(t.path()).load(&[Split::Train]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::MissingImageRoot { .. }));
    assert!(
        msg.contains("train2014") && msg.contains("cocoid 9"),
        "{msg}"
    );
}

#[test]
fn coco_missing_or_invalid_json() {
    let t = tempfile::tempdir().unwrap();
    let err = coco_source(t.path()).load(&[]).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("dataset_coco.json"));

    fs::write(
        t.path().join("dataset_coco.json"),
        "{\"images\": [\n  {\"filepath\": \"val2014\",\n   \"filename\": 3}\n]}",
    )
    .unwrap();
    let err = coco_source(t.path()).load(&[]).unwrap_err();
    match &err {
        DataError::Json { line, .. } => assert_eq!(*line, Some(3)),
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("dataset_coco.json:3"), "{err}");
}

#[test]
fn coco_unknown_split_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    fs::write(
        t.path().join("dataset_coco.json"),
        r#"{"images": [{"filepath": "val2014", "filename": "a.jpg", "split": "dev", "cocoid": 5, "sentences": [{"raw": "x"}]}]}"#,
    )
    .unwrap();
    let err = coco_source(t.path()).load(&[]).unwrap_err();
    assert!(matches!(err, DataError::UnknownSplit { .. }));
    let msg = err.to_string();
    assert!(msg.contains("\"dev\"") && msg.contains("cocoid 5"), "{msg}");
    assert!(matches!(
        "dev".parse::<Split>(),
        Err(DataError::UnknownSplit { .. })
    ));
}

#[test]
fn empty_selection_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    fake_coco(t.path(), t.path(), false);
    let json = fs::read_to_string(t.path().join("dataset_coco.json")).unwrap();
    let only_train = json.replace("\"restval\"", "\"train\"");
    fs::write(t.path().join("dataset_coco.json"), only_train).unwrap();
    let err = coco_source(t.path()).load(&[Split::Restval]).unwrap_err();
    assert!(matches!(err, DataError::EmptyDataset { .. }));
    assert!(err.to_string().contains("restval"), "{err}");

    let f = tempfile::tempdir().unwrap();
    fs::write(f.path().join("captions.jsonl"), "\n\n").unwrap();
    let err = folder_source(f.path()).load(&[]).unwrap_err();
    assert!(matches!(err, DataError::EmptyDataset { .. }), "{err}");
}

/// A `folder:` dataset as cox-synth writes it, plus extra fields and a numeric id.
fn fake_folder(dir: &Path) {
    for name in ["a", "b", "c"] {
        png(&dir.join(format!("images/{name}.png")));
    }
    let lines = [
        json!({"image": "images/a.png", "captions": ["a dog", "a puppy"], "id": "train-000000", "split": "train", "source": "synth", "labels": {"shape": "dog"}}),
        json!({"image": "images/b.png", "captions": ["a cat"], "id": 17, "split": "test"}),
        json!({"image": "images/c.png", "captions": [], "id": "no-split"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n\n")).collect();
    fs::write(dir.join("captions.jsonl"), text).unwrap();
}

#[test]
fn folder_reads_records_and_keeps_extra_fields() {
    let t = tempfile::tempdir().unwrap();
    fake_folder(t.path());
    let all = folder_source(t.path()).load(&[]).unwrap();
    assert_eq!(ids(&all), ["train-000000", "17", "no-split"]);
    assert_eq!(all[0].image_path, t.path().join("images/a.png"));
    assert_eq!(all[0].captions, ["a dog", "a puppy"]);
    assert_eq!(all[0].split, Some(Split::Train));
    assert_eq!(all[0].extra["source"], json!("synth"));
    assert_eq!(all[0].extra["labels"], json!({"shape": "dog"}));
    assert!(!all[0].extra.contains_key("image"));
    assert_eq!(all[2].split, None);
    // A split filter drops records without a split.
    let test = folder_source(t.path()).load(&[Split::Test]).unwrap();
    assert_eq!(ids(&test), ["17"]);
}

fn folder_error(lines: &str) -> DataError {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("images")).unwrap();
    fs::write(t.path().join("captions.jsonl"), lines).unwrap();
    folder_source(t.path()).load(&[]).unwrap_err()
}

#[test]
fn folder_errors_name_the_line() {
    let good = r#"{"image": "images/a.png", "captions": ["x"], "id": "a"}"#;
    let cases = [
        (format!("{good}\n{{not json\n"), 2, "key must be a string"),
        (format!("{good}\n\n[1, 2]\n"), 3, "expected a JSON object"),
        (
            format!("{good}\n{}\n", r#"{"captions": ["x"], "id": "b"}"#),
            2,
            "missing field `image`",
        ),
        (
            format!(
                "{}\n",
                r#"{"image": "images/b.png", "captions": "x", "id": "b"}"#
            ),
            1,
            "`captions` must be an array of strings",
        ),
        (
            format!("{}\n", r#"{"image": "images/b.png", "captions": ["x"]}"#),
            1,
            "missing field `id`",
        ),
    ];
    for (text, want_line, want_msg) in cases {
        let err = folder_error(&text);
        match &err {
            DataError::Json { line, msg, .. } => {
                assert_eq!(*line, Some(want_line), "{err}");
                assert!(msg.contains(want_msg), "{err}");
            }
            e => panic!("{e}"),
        }
        assert!(
            err.to_string()
                .contains(&format!("captions.jsonl:{want_line}")),
            "{err}"
        );
    }
}

#[test]
fn folder_rejects_duplicates_unknown_splits_and_missing_files() {
    let good = r#"{"image": "images/a.png", "captions": ["x"], "id": "a"}"#;
    let err = folder_error(&format!("{good}\n{good}\n"));
    assert!(
        matches!(&err, DataError::DuplicateId { line: 2, id, .. } if id == "a"),
        "{err}"
    );

    let err =
        folder_error(r#"{"image": "images/a.png", "captions": ["x"], "id": "a", "split": "dev"}"#);
    assert!(matches!(err, DataError::UnknownSplit { .. }));
    assert!(err.to_string().contains("captions.jsonl:1"), "{err}");

    let err = folder_error(r#"{"image": "pics/a.png", "captions": ["x"], "id": "a"}"#);
    assert!(matches!(err, DataError::MissingImageRoot { .. }));
    assert!(err.to_string().contains("pics"), "{err}");

    let t = tempfile::tempdir().unwrap();
    let err = folder_source(t.path()).load(&[]).unwrap_err();
    assert!(matches!(err, DataError::MissingFile { .. }));
    assert!(err.to_string().contains("captions.jsonl"), "{err}");
}

#[test]
fn source_specs_parse_and_print() {
    for spec in ["coco:/data/coco", "coco:/d,images=/i", "folder:rel/dir"] {
        let s: DataSource = spec.parse().unwrap();
        assert_eq!(s.to_string(), spec);
    }
    let s: DataSource = "coco:/data/coco".parse().unwrap();
    assert_eq!(s.image_root().unwrap(), Path::new("/data/coco"));
    for bad in [
        "coco:",
        "folder:",
        "/data/coco",
        "imagenet:/x",
        "coco:/d,images=",
    ] {
        let err = bad.parse::<DataSource>().unwrap_err();
        assert!(
            matches!(err, DataError::InvalidSource { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn shards_partition_the_selection_in_order() {
    for len in [0, 1, 5, 7, 100, 101] {
        for n in [1, 2, 3, 8, 13] {
            let mut joined = Vec::new();
            for i in 0..n {
                let r = Shard::new(i, n).unwrap().range(len);
                assert!(
                    r.len() == len / n || r.len() == len / n + 1,
                    "{len} {i}/{n}"
                );
                joined.extend(r);
            }
            assert_eq!(joined, (0..len).collect::<Vec<_>>());
        }
    }
    assert_eq!("2/4".parse::<Shard>().unwrap(), Shard::new(2, 4).unwrap());
    assert_eq!(Shard::new(2, 4).unwrap().to_string(), "2/4");
    for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
        assert!(
            matches!(bad.parse::<Shard>(), Err(DataError::InvalidShard { .. })),
            "{bad}"
        );
    }
}

#[test]
fn subset_applies_subsample_then_limit_then_shard() {
    let items: Vec<usize> = (0..50).collect();
    assert_eq!(
        Subset {
            limit: Some(3),
            ..Default::default()
        }
        .apply(items.clone()),
        [0, 1, 2]
    );
    let draw = |seed| {
        Subset {
            subsample: Some(Subsample { n: 10, seed }),
            ..Default::default()
        }
        .apply(items.clone())
    };
    let a = draw(7);
    assert_eq!(a.len(), 10);
    assert!(a.windows(2).all(|w| w[0] < w[1]), "file order kept");
    assert_eq!(a, draw(7));
    assert_ne!(a, draw(8));
    // Shards of a subsampled, limited selection tile that selection.
    let whole = Subset {
        subsample: Some(Subsample { n: 10, seed: 7 }),
        limit: Some(9),
        shard: None,
    };
    let mut joined = Vec::new();
    for i in 0..4 {
        let part = Subset {
            shard: Some(Shard::new(i, 4).unwrap()),
            ..whole
        };
        joined.extend(part.apply(items.clone()));
    }
    assert_eq!(joined, whole.apply(items.clone()));
    assert_eq!(joined, a[..9]);
    // A subsample larger than the dataset keeps everything.
    let all = Subset {
        subsample: Some(Subsample { n: 80, seed: 1 }),
        ..Default::default()
    };
    assert_eq!(all.apply(items.clone()), items);
}

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn shard_from_job_array_environment() {
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ];
    assert_eq!(
        shard_from_vars(env(&slurm), None).unwrap(),
        Some(Shard::new(3, 4).unwrap())
    );
    // An explicit count wins; a MIN offset is removed.
    let slurm_min = [
        ("SLURM_ARRAY_TASK_ID", "11"),
        ("SLURM_ARRAY_TASK_MIN", "10"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ];
    assert_eq!(
        shard_from_vars(env(&slurm_min), Some(2)).unwrap(),
        Some(Shard::new(1, 2).unwrap())
    );
    let k8s = [("JOB_COMPLETION_INDEX", "0")];
    assert_eq!(
        shard_from_vars(env(&k8s), Some(5)).unwrap(),
        Some(Shard::new(0, 5).unwrap())
    );
    assert_eq!(shard_from_vars(env(&[]), Some(5)).unwrap(), None);
    for (vars, count) in [
        (&k8s[..], None),
        (&[("SLURM_ARRAY_TASK_ID", "2")][..], None),
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ][..],
            None,
        ),
        (&[("JOB_COMPLETION_INDEX", "x")][..], Some(2)),
        (
            &[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "2")][..],
            Some(2),
        ),
    ] {
        let err = shard_from_vars(env(vars), count).unwrap_err();
        assert!(
            matches!(err, DataError::InvalidShard { .. }),
            "{vars:?}: {err}"
        );
    }
}

#[test]
fn coco_layout_check_reports_what_is_missing() {
    let t = tempfile::tempdir().unwrap();
    let report = check_coco_layout(t.path());
    assert!(!report.is_complete());
    let all = report.problems.join("\n");
    assert!(
        all.contains("train2014") && all.contains("val2014"),
        "{all}"
    );
    assert!(all.contains("dataset_coco.json"), "{all}");

    fake_coco(t.path(), t.path(), true);
    let report = check_coco_layout(t.path());
    assert!(report.is_complete(), "{:?}", report.problems);
    assert_eq!(report.images_checked, 5);
    assert_eq!(report.images_per_split["train"], 2);
    assert_eq!(report.images_per_split["restval"], 1);

    fs::remove_file(t.path().join("val2014/COCO_val2014_000000000074.jpg")).unwrap();
    let report = check_coco_layout(t.path());
    assert_eq!(report.missing_images.1, 1);
    assert!(
        report.problems[0].contains("1 of 5 images"),
        "{:?}",
        report.problems
    );
    // Without the per-image check only folders and the split file are looked at.
    assert!(check_coco_layout_with(t.path(), None, false).is_complete());
}

#[test]
fn folder_image_paths_stay_inside_the_folder_unless_allowed() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    fs::create_dir_all(data.join("images/sub")).unwrap();
    png(&t.path().join("outside.png"));
    let good = r#"{"image": "./images/sub/../a.png", "captions": ["x"], "id": "a"}"#;
    let outside = t.path().join("outside.png");
    let cases = [
        r#"{"image": "../outside.png", "captions": ["x"], "id": "b"}"#.to_string(),
        r#"{"image": "images/../../outside.png", "captions": ["x"], "id": "b"}"#.to_string(),
        json!({"image": outside.display().to_string(), "captions": ["x"], "id": "b"}).to_string(),
    ];
    for bad in cases {
        fs::write(data.join("captions.jsonl"), format!("{good}\n{bad}\n")).unwrap();
        let src = folder_source(&data);
        let err = src.load(&[]).unwrap_err();
        assert!(
            matches!(err, DataError::OutsidePath { line: 2, .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("captions.jsonl:2") && msg.contains("outside the dataset folder"),
            "{msg}"
        );
        assert!(!msg.contains("--"), "{msg}");
        // Allowed explicitly, the path is taken as written (relative to the folder).
        let opts = LoadOptions {
            allow_outside_paths: true,
        };
        let all = src.load_with(&[], &opts).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[1].image_path.ends_with("outside.png"));
    }
    // `..` that stays inside is fine.
    fs::write(data.join("captions.jsonl"), format!("{good}\n")).unwrap();
    assert_eq!(folder_source(&data).load(&[]).unwrap().len(), 1);
}

#[test]
fn folder_text_encoding_errors_name_the_line_once() {
    let good = r#"{"image": "images/a.png", "captions": ["x"], "id": "a"}"#;
    // Latin-1 "café" on line 2.
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("images")).unwrap();
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(
        b"{\"image\": \"images/b.png\", \"captions\": [\"caf\xe9\"], \"id\": \"b\"}\n",
    );
    fs::write(t.path().join("captions.jsonl"), &bytes).unwrap();
    let err = folder_source(t.path()).load(&[]).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::NotUtf8 {
                line: 2,
                column: 44,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("captions.jsonl:2") && msg.contains("not UTF-8"),
        "{msg}"
    );
    assert!(std::error::Error::source(&err).is_none());
    // A UTF-8 byte-order mark and Windows line ends are accepted.
    let text = format!("\u{feff}{good}\r\n");
    fs::write(t.path().join("captions.jsonl"), text).unwrap();
    assert_eq!(ids(&folder_source(t.path()).load(&[]).unwrap()), ["a"]);
    // An unreadable captions file: the OS text once, in the message only.
    let d = t.path().join("dir-not-file");
    fs::create_dir_all(d.join("captions.jsonl")).unwrap();
    let err = folder_source(&d).load(&[]).unwrap_err();
    assert!(std::error::Error::source(&err).is_none(), "{err}");
}
