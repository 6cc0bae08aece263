"""Readers against what the real `coxlmm` command writes: a tiny `coxlmm demo` run folder (its
stores are written by `coxlmm extract`'s code) read back with coxlmm and with safetensors.numpy."""

import json
import shutil

import numpy as np
import pytest
from conftest import objective
from safetensors.numpy import load_file

import coxlmm


def manifest(store):
    return json.loads((store / "manifest.json").read_text())


def by_safetensors(store, layer):
    """The store's rows of `layer` and their sample ids, read shard by shard without coxlmm."""
    m = manifest(store)
    rows, ids = [], []
    for shard in m["shards"]:
        rows.append(load_file(store / shard["tensors"])[f"layer.{layer}"])
        lines = (store / shard["samples"]).read_text().splitlines()
        ids += [rec["id"] for rec in map(json.loads, lines) if rec["row"] is not None]
    return np.concatenate(rows).astype(np.float32), ids


def test_read_store_equals_safetensors_numpy(demo_run):
    run = coxlmm.RunFolder(demo_run)
    layer = str(run.settings["layer"])
    for split in ("train", "test"):
        store = demo_run / "extract" / split
        X, ids = coxlmm.read_store(store, layer)
        expected, expected_ids = by_safetensors(store, layer)
        assert X.dtype == np.float32 and X.shape == expected.shape and X.shape[0] > 0
        np.testing.assert_array_equal(X, expected)
        assert ids == expected_ids
        X2, ids2 = run.store(split, layer=layer)
        np.testing.assert_array_equal(X2, X)
        assert ids2 == ids
        samples = coxlmm.read_store_samples(store)
        assert len(samples) == manifest(store)["total_samples"]
        assert [s["id"] for s in samples if s["row"] is not None] == ids


def test_a_damaged_store_is_refused_naming_the_shard(demo_run, tmp_path):
    store = tmp_path / "train"
    shutil.copytree(demo_run / "extract" / "train", store)
    shard = store / manifest(store)["shards"][0]["tensors"]
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0x40  # one flipped bit inside a tensor value
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="shard-00000.safetensors"):
        coxlmm.read_store(store)
    with pytest.raises(OSError):
        coxlmm.read_store(tmp_path / "missing")


def test_run_folder_dictionaries_metrics_and_grounding(demo_run):
    run = coxlmm.RunFolder(demo_run)
    settings = run.settings
    assert run.methods() == ["simple", "pca", "kmeans", "snmf"]
    X, _ = run.store("train", layer=str(settings["layer"]))
    for method in run.methods():
        d = run.dictionary(method)
        raw = load_file(demo_run / "dict" / f"{method}.safetensors")
        np.testing.assert_array_equal(d.concepts, raw["concepts"])
        np.testing.assert_array_equal(d.activations, raw["activations"])
        assert d.meta["method"] == method and d.concepts.shape == (d.meta["k"], X.shape[1])
        # The dictionary as an estimator explains samples as coxlmm does.
        est = d.estimator()
        act = est.transform(X)
        tol = 1e-3 * max(1.0, float(np.abs(d.activations).max()))
        np.testing.assert_allclose(act, d.activations, rtol=0, atol=tol)
        m = run.metrics(method)
        assert m["method"] == method and m["k"] == d.meta["k"]
        g = run.grounding(method)
        assert len(g["words"]) == d.meta["k"]
    snmf = run.dictionary("Semi-NMF")
    obj = objective(X, snmf.activations, snmf.concepts, snmf.meta["lambda"])
    assert obj == pytest.approx(snmf.meta["objective"], rel=1e-4)
    metrics = coxlmm.read_metrics(demo_run)
    assert metrics["train_samples"] == X.shape[0]
    with pytest.raises(ValueError, match="unknown method 'ica'"):
        run.dictionary("ica")


def test_read_activations_and_dictionary_files(tmp_path):
    from safetensors.numpy import save_file

    x = np.arange(12, dtype=np.float16).reshape(4, 3)
    save_file({"activations": x}, str(tmp_path / "acts.safetensors"))
    np.testing.assert_array_equal(coxlmm.read_activations(tmp_path / "acts.safetensors"), x.astype(np.float32))
    with pytest.raises(ValueError, match="not_there"):
        coxlmm.read_activations(tmp_path / "acts.safetensors", tensor="not_there")
    with pytest.raises(OSError):
        coxlmm.read_dictionary(tmp_path / "none")
