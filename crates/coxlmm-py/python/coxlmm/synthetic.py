"""Token-like test matrices (``cox_snmf::synthetic::token_like``): one shared direction in every
row, a few of many sparse directions per row with exponential weights, and noise; the matrices of
``cargo xtask bench-snmf``."""

from . import _native

__all__ = ["token_like"]


def token_like(n_samples, n_features, seed=0):
    """A seeded ``(n_samples, n_features)`` float32 matrix shaped like token representations."""
    return _native.token_like(int(n_samples), int(n_features), int(seed))
