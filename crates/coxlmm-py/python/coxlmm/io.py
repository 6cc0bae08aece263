"""Readers for what the ``coxlmm`` command writes (``docs/formats.md``): activation stores,
activation matrices, dictionaries and run folders. Stores and dictionaries are read by the same Rust
code as the command's (``cox-store``), so every shard is verified against the manifest's length and
SHA-256 and a damaged or incomplete store raises instead of returning fewer rows."""

import json
import os
from typing import NamedTuple, Optional

import numpy as np

from . import _native

__all__ = [
    "Dictionary",
    "RunFolder",
    "read_activations",
    "read_dictionary",
    "read_metrics",
    "read_store",
    "read_store_samples",
]

# cox_decomp::Method::ALL, the paper's table order.
METHODS = ("simple", "pca", "kmeans", "snmf")


def read_store(dir, layer=None):
    """One layer of an activation store (``coxlmm extract --out DIR``) as ``(X, ids)``: ``X`` the
    ``[M, B]`` float32 rows (converted from the stored f16/f32), ``ids`` each row's sample id.
    ``layer`` is e.g. ``"31"`` or ``"norm"`` (``None``: the store's only layer).

    Raises ``ValueError`` for an incomplete or damaged store (naming the shard and what does not
    match) and ``OSError`` for one that cannot be read."""
    return _native.read_store(os.fspath(dir), layer)


def read_store_samples(dir):
    """Every sample record of a store, in order, skipped samples included: a list of dicts
    (``ordinal``, ``id``, ``row`` or ``None``, the skip reason, …)."""
    return json.loads(_native.read_store_samples(os.fspath(dir)))


def read_activations(path, tensor=None):
    """An activation matrix file (a safetensors file with a 2-D f16/bf16/f32/f64 tensor, e.g. what
    ``coxlmm learn --activations`` reads) as a float32 array."""
    return _native.read_activations(os.fspath(path), tensor)


class Dictionary(NamedTuple):
    """A dictionary file: ``concepts`` ``[K, B]``, training ``activations`` ``[M, K]``, the PCA
    ``mean`` ``[B]`` (else None) and the sidecar ``meta`` (method, k, lambda, objective trace, …)."""

    concepts: np.ndarray
    activations: np.ndarray
    mean: Optional[np.ndarray]
    meta: dict

    def estimator(self):
        """A fitted coxlmm estimator of the dictionary's method, whose ``transform`` explains new
        samples as ``coxlmm`` does (Semi-NMF: the positive Lasso with the fit's λ)."""
        from .estimators import PCA, KMeans, SemiNMF, Simple

        method, k = self.meta["method"], int(self.meta["k"])
        if method == "snmf":
            est = SemiNMF(n_components=k, alpha=float(self.meta["lambda"]), random_state=int(self.meta["seed"]))
        elif method == "pca":
            est = PCA(n_components=k, random_state=int(self.meta["seed"]))
            est.mean_ = self.mean
        elif method == "kmeans":
            est = KMeans(n_components=k, random_state=int(self.meta["seed"]))
            est.cluster_centers_ = self.concepts
        elif method == "simple":
            est = Simple(n_components=k)
        else:
            raise ValueError(f"unknown method {method!r} in the dictionary's sidecar")
        est.components_ = self.concepts
        est.n_features_in_ = self.concepts.shape[1]
        return est


def read_dictionary(path):
    """A dictionary written by ``coxlmm learn`` or ``coxlmm run`` (``<stem>.safetensors`` and its
    ``<stem>.json`` sidecar; ``path`` may omit the extension), checked against its sidecar."""
    concepts, activations, mean, meta = _native.read_dictionary(os.fspath(path))
    return Dictionary(concepts, activations, mean, json.loads(meta))


def read_metrics(path):
    """A run's ``metrics.json`` (``path`` is the file or the run folder) as a dict; its ``methods``
    entry is a list with one dict per method (``method``, ``k``, ``overlap``, …)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class RunFolder:
    """A run folder of ``coxlmm run --out RUN`` or ``coxlmm demo`` (layout in ``docs/formats.md``):

    >>> run = RunFolder("runs/dog")                    # doctest: +SKIP
    >>> X, ids = run.store("train", layer="31")        # doctest: +SKIP
    >>> run.metrics("snmf")["overlap"]                 # doctest: +SKIP
    >>> codes = run.dictionary("snmf").estimator().transform(X_new)   # doctest: +SKIP
    """

    def __init__(self, root):
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"{self.root} is not a folder: pass the folder of `coxlmm run --out`")

    def __repr__(self):
        return f"RunFolder({self.root!r})"

    def _path(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def settings(self):
        """The run's settings (``run.json``'s ``settings``: model, data, token, layer, k, lambda, …)."""
        with open(self._path("run.json"), encoding="utf-8") as f:
            run = json.load(f)
        if run.get("format") != "coxlmm-run":
            raise ValueError(f"{self._path('run.json')} is not a coxlmm run file (format {run.get('format')!r})")
        return run["settings"]

    def store(self, split="train", layer=None):
        """``(X, ids)`` of a split's activation store (``extract/<split>``), verified."""
        return read_store(self._path("extract", split), layer)

    def methods(self):
        """The methods whose dictionary is in the folder, in the paper's table order."""
        return [m for m in METHODS if os.path.exists(self._path("dict", f"{m}.safetensors"))]

    def dictionary(self, method="snmf"):
        """The method's dictionary (``dict/<method>.safetensors`` + ``.json``)."""
        return read_dictionary(self._path("dict", f"{_method(method)}.safetensors"))

    def grounding(self, method="snmf"):
        """The method's text grounding (``ground/<method>.json``): ``words`` and ``rnd_words``, one
        ``{"concept", "words", "candidates"}`` dict per concept."""
        with open(self._path("ground", f"{_method(method)}.json"), encoding="utf-8") as f:
            return json.load(f)

    def metrics(self, method=None):
        """``metrics.json`` as a dict, or with ``method`` the dict of that method's metrics (a
        ``KeyError`` names the methods evaluated when it is not one of them)."""
        m = read_metrics(self._path("metrics.json"))
        if method is None:
            return m
        name = _method(method)
        for entry in m.get("methods", []):
            if entry.get("method") == name:
                return entry
        raise KeyError(f"method {name!r} was not evaluated in {self.root} (it has {[e.get('method') for e in m.get('methods', [])]})")


_ALIASES = {"semi-nmf": "snmf", "seminmf": "snmf", "nndl": "snmf", "k-means": "kmeans"}


def _method(name):
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}: expected one of {', '.join(METHODS)}")
    return key
