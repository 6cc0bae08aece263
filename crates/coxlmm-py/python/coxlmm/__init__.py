"""coxlmm for Python: CoX-LMM's fast Semi-NMF as a scikit-learn estimator, the paper's baselines
with the same interface, and readers for the files the ``coxlmm`` command writes.

>>> import coxlmm
>>> X = coxlmm.synthetic.token_like(200, 32)
>>> codes = coxlmm.SemiNMF(n_components=5).fit_transform(X)
>>> codes.shape
(200, 5)
"""

from . import synthetic
from ._native import __version__
from .estimators import PCA, KMeans, SemiNMF, Simple
from .io import (
    Dictionary,
    RunFolder,
    read_activations,
    read_dictionary,
    read_metrics,
    read_store,
    read_store_samples,
)

__all__ = [
    "Dictionary",
    "KMeans",
    "PCA",
    "RunFolder",
    "SemiNMF",
    "Simple",
    "__version__",
    "read_activations",
    "read_dictionary",
    "read_metrics",
    "read_store",
    "read_store_samples",
    "synthetic",
]
