//! cox-store against files written by Python's `safetensors` (tests/fixtures/store, made by
//! make_fixtures.py), round trips, and the errors users see for bad files.

use std::path::{Path, PathBuf};

use cox_store::{
    read_activations, read_dictionary, sidecar_path, tensor_path, write_activations,
    write_dictionary, DictionaryFile, DictionaryMeta, DiskDtype, Error, Matrix,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/store")
        .join(name)
}

/// The matrix make_fixtures.py writes.
const X: [f32; 12] = [
    0.5, -1.0, 2.0, 0.0, 1.25, 3.0, -0.75, 8.0, -2.0, 0.125, 4.0, 1.5,
];

#[test]
fn reads_python_written_files_in_every_float_dtype() {
    for (file, dtype) in [
        ("py_f16.safetensors", DiskDtype::F16),
        ("py_f32.safetensors", DiskDtype::F32),
    ] {
        let a = read_activations(&fixture(file), None).unwrap();
        assert_eq!((a.matrix.rows, a.matrix.cols), (3, 4), "{file}");
        assert_eq!(a.matrix.data, X.to_vec(), "{file}");
        assert_eq!(a.dtype, dtype);
    }
    let a = read_activations(&fixture("py_f16.safetensors"), None).unwrap();
    assert_eq!(a.sidecar.unwrap()["sample_ids"][1], "b");
    // Not called "activations", but the file's only 2-D tensor.
    let a = read_activations(&fixture("py_named_f64.safetensors"), None).unwrap();
    assert_eq!((a.tensor.as_str(), a.dtype), ("hidden", DiskDtype::F64));
    assert_eq!(a.matrix.data, X.to_vec());
}

#[test]
fn round_trips_activations_and_dictionaries() {
    let dir = tempfile::tempdir().unwrap();
    let m = Matrix::new(X.to_vec(), 3, 4).unwrap();
    for dtype in [DiskDtype::F16, DiskDtype::F32] {
        let p = dir.path().join(format!("acts-{dtype}.safetensors"));
        write_activations(&p, &m, dtype, &serde_json::json!({"token": "dog"})).unwrap();
        let back = read_activations(&p, None).unwrap();
        assert_eq!(back.matrix, m);
        assert_eq!(back.dtype, dtype);
        assert_eq!(back.sidecar.unwrap()["token"], "dog");
    }
    let dict = sample_dictionary();
    let p = dir.path().join("dict.safetensors");
    write_dictionary(&p, &dict).unwrap();
    assert_eq!(read_dictionary::<serde_json::Map<_, _>>(&p).unwrap(), dict);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

fn sample_dictionary() -> DictionaryFile {
    DictionaryFile {
        concepts: Matrix::new(vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.6, 0.8, 0.0], 2, 4).unwrap(),
        activations: Matrix::new(vec![1.0, 0.0, 0.0, 2.5, 0.5, 0.5], 3, 2).unwrap(),
        mean: Some(vec![0.1, 0.2, 0.3, 0.4]),
        meta: DictionaryMeta {
            format: "coxlmm-dictionary".into(),
            version: 1,
            k: 2,
            n_features: 4,
            n_samples: 3,
            source: Some("acts.safetensors".into()),
            sample_ids: Some(vec!["a".into(), "b".into(), "c".into()]),
            // Read untyped, the fit's record is every other key of the sidecar.
            fit: serde_json::json!({
                "method": "pca",
                "seed": 7,
                "objective": 1.5,
                "objective_trace": [3.0, 1.5],
                "explained_variance": [0.7, 0.2],
            })
            .as_object()
            .unwrap()
            .clone(),
        },
    }
}

/// A caller's typed record of the fit, as the command-line tool keeps one.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Fit {
    method: String,
    seed: u64,
    objective: Option<f64>,
    objective_trace: Vec<f64>,
    explained_variance: Vec<f64>,
}

/// The sidecar holds the store's keys and the fit's record in one JSON object: a typed record
/// reads back what the untyped one wrote, and a record of the wrong type is an error naming the
/// sidecar.
#[test]
fn dictionary_fit_records_are_flattened_into_the_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d.safetensors");
    write_dictionary(&p, &sample_dictionary()).unwrap();
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sidecar_path(&p)).unwrap()).unwrap();
    assert_eq!(
        (&side["k"], &side["method"], &side["seed"]),
        (&2.into(), &"pca".into(), &7.into())
    );
    let typed = read_dictionary::<Fit>(&p).unwrap();
    assert_eq!(
        typed.meta.fit,
        Fit {
            method: "pca".into(),
            seed: 7,
            objective: Some(1.5),
            objective_trace: vec![3.0, 1.5],
            explained_variance: vec![0.7, 0.2],
        }
    );
    // Written from the typed record, the sidecar holds the same keys and values.
    let q = dir.path().join("e.safetensors");
    write_dictionary(&q, &typed).unwrap();
    let json = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(sidecar_path(p)).unwrap()).unwrap()
    };
    assert_eq!(json(&p), json(&q));
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Other {
        iterations: usize,
    }
    let e = read_dictionary::<Other>(&p).unwrap_err().to_string();
    assert!(e.contains("d.json") && e.contains("iterations"), "{e}");
}

#[test]
fn bad_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Missing file.
    let e = read_activations(&dir.path().join("nope.safetensors"), None).unwrap_err();
    assert!(
        matches!(e, Error::Read { .. }) && e.to_string().contains("nope.safetensors"),
        "{e}"
    );
    // Truncated file.
    let bytes = std::fs::read(fixture("py_f32.safetensors")).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
    let e = read_activations(&cut, None).unwrap_err();
    assert!(
        matches!(e, Error::NotSafetensors { .. }) && e.to_string().contains("truncated"),
        "{e}"
    );
    // A foreign file (a PNG signature).
    let png = dir.path().join("image.safetensors");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    assert!(matches!(
        read_activations(&png, None).unwrap_err(),
        Error::NotSafetensors { .. }
    ));
    // Zero-byte file.
    let empty = dir.path().join("empty.safetensors");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        read_activations(&empty, None).unwrap_err(),
        Error::NotSafetensors { .. }
    ));
    // Wrong tensor name, listing what exists.
    let e = read_activations(&fixture("py_f32.safetensors"), Some("hidden")).unwrap_err();
    assert!(e.to_string().contains("activations"), "{e}");
    // Integer dtype.
    let e = read_activations(&fixture("py_int.safetensors"), None).unwrap_err();
    assert!(
        matches!(e, Error::BadTensor { .. }) && e.to_string().contains("I32"),
        "{e}"
    );
    // 1-D tensor asked for by name.
    let e = read_activations(&fixture("py_named_f64.safetensors"), Some("norm")).unwrap_err();
    assert!(e.to_string().contains("2 dimensions"), "{e}");
    // Dictionary whose sidecar disagrees with its tensors.
    let p = dir.path().join("dict.safetensors");
    write_dictionary(&p, &sample_dictionary()).unwrap();
    let side = sidecar_path(&p);
    let text = std::fs::read_to_string(&side)
        .unwrap()
        .replace("\"n_samples\": 3", "\"n_samples\": 4");
    std::fs::write(&side, text).unwrap();
    let e = read_dictionary::<serde_json::Map<_, _>>(&p).unwrap_err();
    assert!(
        e.to_string().contains("activations") && e.to_string().contains("[4, 2]"),
        "{e}"
    );
    // A sidecar that is not a dictionary's.
    std::fs::write(&side, "{\"token\": \"dog\"}").unwrap();
    assert!(matches!(
        read_dictionary::<serde_json::Map<_, _>>(&p).unwrap_err(),
        Error::BadSidecar { .. }
    ));
    // Writing a dictionary whose metadata disagrees with the matrices is refused.
    let mut d = sample_dictionary();
    d.meta.k = 3;
    assert!(write_dictionary(&dir.path().join("x.safetensors"), &d).is_err());
}

#[test]
fn path_conventions() {
    assert_eq!(
        tensor_path(Path::new("out/dict")),
        PathBuf::from("out/dict.safetensors")
    );
    assert_eq!(
        tensor_path(Path::new("out/dict.safetensors")),
        PathBuf::from("out/dict.safetensors")
    );
    assert_eq!(
        sidecar_path(Path::new("out/dict.safetensors")),
        PathBuf::from("out/dict.json")
    );
}

fn sample_lines(file: &str) -> (String, Vec<cox_store::SampleRecord>) {
    let text = std::fs::read_to_string(fixture(file)).unwrap();
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (text, records)
}

/// Skip reasons are a closed set stored by name: the golden sample lines (every reason) read
/// back to the typed reasons and are written again byte for byte.
#[test]
fn skip_reasons_are_stored_by_name() {
    use cox_store::Skip;
    let (text, records) = sample_lines("samples_v2.jsonl");
    let reasons: Vec<Option<Skip>> = records.iter().map(|r| r.skip).collect();
    assert_eq!(
        reasons,
        [
            None,
            Some(Skip::ImageUnreadable),
            Some(Skip::GtFilter),
            Some(Skip::TokenNotGenerated),
            Some(Skip::PositionNotCaptured),
        ]
    );
    let written: String = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    assert_eq!(written, text);
    for s in Skip::ALL {
        assert_eq!(Skip::from_stored(s.name()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), s.name());
    }
}

/// Stores written before reasons were stored by name alone (`"image_unreadable: <error>"`)
/// are still read; an unknown reason is an error naming it.
#[test]
fn old_skip_strings_are_read_and_unknown_ones_refused() {
    use cox_store::Skip;
    let (_, records) = sample_lines("samples_old.jsonl");
    assert_eq!(records[1].skip, Some(Skip::ImageUnreadable));
    assert_eq!(records[2].skip, Some(Skip::GtFilter));
    // Written again, an old record takes the current form.
    assert_eq!(
        serde_json::to_value(&records[1]).unwrap()["skip"],
        "image_unreadable"
    );
    for bad in ["\"gt_filter: x\"", "\"other\"", "3"] {
        let e = serde_json::from_str::<Skip>(bad).unwrap_err().to_string();
        assert!(
            e.contains("skip reason") || e.contains("expected a string"),
            "{bad}: {e}"
        );
    }
}
