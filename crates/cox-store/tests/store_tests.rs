//! cox-store against files written by Python's `safetensors` (tests/fixtures/store, made by
//! make_fixtures.py), round trips, and the errors users see for bad files.

use std::collections::BTreeMap;
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
    assert_eq!(read_dictionary(&p).unwrap(), dict);
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
            method: "pca".into(),
            k: 2,
            n_features: 4,
            n_samples: 3,
            lambda: None,
            seed: 7,
            objective: Some(1.5),
            objective_trace: vec![3.0, 1.5],
            iterations: 2,
            converged: true,
            init_seconds: 0.01,
            fit_seconds: 0.02,
            dead_concepts: vec![],
            source: Some("acts.safetensors".into()),
            sample_ids: Some(vec!["a".into(), "b".into(), "c".into()]),
            extra: BTreeMap::from([(
                "explained_variance".to_string(),
                serde_json::json!([0.7, 0.2]),
            )]),
        },
    }
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
    let e = read_dictionary(&p).unwrap_err();
    assert!(
        e.to_string().contains("activations") && e.to_string().contains("[4, 2]"),
        "{e}"
    );
    // A sidecar that is not a dictionary's.
    std::fs::write(&side, "{\"token\": \"dog\"}").unwrap();
    assert!(matches!(
        read_dictionary(&p).unwrap_err(),
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
