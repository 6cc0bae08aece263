"""Shared fixtures of the Python tests (run by `.ci/run` against the installed wheel)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]


def objective(X, code, components, alpha):
    """½‖X − C D‖²_F + α‖C‖₁ in float64 (scikit-learn's cost)."""
    X, code, components = (np.asarray(a, dtype=np.float64) for a in (X, code, components))
    return 0.5 * np.sum((X - code @ components) ** 2) + alpha * np.abs(code).sum()


@pytest.fixture(scope="session")
def golden():
    """The Semi-NMF golden fixture (scikit-learn 1.5.2's DictionaryLearning on a small matrix)."""
    g = json.loads((ROOT / "tests/fixtures/snmf/golden.json").read_text())
    m, b = g["m"], g["b"]
    g["x"] = np.asarray(g["x"], dtype=np.float64).reshape(m, b)
    g["x_test"] = np.asarray(g["x_test"], dtype=np.float64).reshape(-1, b)
    g["components"] = np.asarray(g["components"], dtype=np.float64).reshape(g["k"], b)
    return g


def coxlmm_binary():
    """The `coxlmm` command: $COXLMM_BIN, else a built one under target/."""
    env = os.environ.get("COXLMM_BIN")
    if env:
        return Path(env)
    for profile in ("release", "debug"):
        p = ROOT / "target" / profile / "coxlmm"
        if p.exists():
            return p
    found = shutil.which("coxlmm")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """A tiny run folder made by the real `coxlmm demo` (the committed tiny model on a small
    synthetic world): stores written by `coxlmm extract`'s code, dictionaries, metrics."""
    exe = coxlmm_binary()
    if exe is None or not exe.exists():
        if os.environ.get("COXLMM_REQUIRE_CLI"):
            pytest.fail("no coxlmm binary: build it (cargo build -p coxlmm) or set COXLMM_BIN")
        pytest.skip("no coxlmm binary: build it (cargo build -p coxlmm) or set COXLMM_BIN")
    out = tmp_path_factory.mktemp("demo") / "run"
    cmd = [str(exe), "demo", "--out", str(out), "--train", "90", "--test", "30", "--k", "4"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}"
    return out
