"""scikit-learn-style estimators over coxlmm's Rust solvers: `SemiNMF` and the paper's baselines."""

import numpy as np

from . import _native
from ._base import (
    BaseEstimator,
    TransformerMixin,
    check_float,
    check_int,
    check_is_fitted,
    check_n_jobs,
    check_X,
    seed_of,
)

__all__ = ["SemiNMF", "PCA", "KMeans", "Simple"]

# scikit-learn's transform_max_iter: the most coordinate-descent sweeps per sample in transform.
TRANSFORM_MAX_ITER = 1000


class _Tags:
    """The dtypes each estimator's transform preserves, declared for every scikit-learn version."""

    _preserves = ("float64",)

    def _more_tags(self):  # scikit-learn < 1.6
        return {"preserves_dtype": [np.dtype(d).type for d in self._preserves]}

    if hasattr(BaseEstimator, "__sklearn_tags__"):  # scikit-learn >= 1.6

        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.transformer_tags.preserves_dtype = list(self._preserves)
            return tags


class SemiNMF(_Tags, TransformerMixin, BaseEstimator):
    """Semi-NMF with sparse non-negative codes, the CoX-LMM concept dictionary:

    ``min ½‖X − C D‖²_F + α‖C‖₁  s.t.  C ≥ 0,  ‖d_k‖₂ ≤ 1``

    for ``X`` of shape ``(n_samples, n_features)``, concepts ``D = components_`` of shape
    ``(n_components, n_features)`` and codes ``C`` of shape ``(n_samples, n_components)``. A drop-in
    for the reference's ``DictionaryLearning(n_components, alpha, max_iter, positive_code=True,
    fit_algorithm="cd", transform_algorithm="lasso_cd")``: the same objective, scikit-learn's SVD
    initialisation and atom step, an exact coordinate-descent code step, many times faster
    (``docs/benchmarks.md``).

    Parameters
    ----------
    n_components : int, default=20
        Number of concepts K (at most ``n_samples``).
    alpha : float, default=1.0
        Sparsity weight on the codes (the paper's λ); also used by ``transform``.
    max_iter : int, default=5000
        Most outer iterations.
    tol : float, default=1e-8
        The fit stops when the objective decreases by less than ``tol`` times itself.
    init : {"svd", "svd_exact", "samples", "random"}, default="svd"
        scikit-learn's SVD start (randomized to 1e-4 of the exact one; ``"svd_exact"`` computes a
        full SVD), K seeded data rows, or K seeded random directions.
    random_state : int, RandomState, Generator or None, default=0
        Seed of every random choice (None means 0: results are always reproducible).
    n_jobs : int or None, default=None
        Worker threads: None or -1 for every core, ``-k`` for all but ``k - 1``. Results are
        bit-identical for any value.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The concepts, in the input's dtype (float32 or float64).
    n_iter_ : int
        Completed outer iterations.
    error_ : ndarray of shape (n_iter_,)
        The objective after each iteration (scikit-learn's ``error_``).
    converged_ : bool
        Whether the ``tol`` test stopped the fit before ``max_iter``.
    n_features_in_ : int
        Number of features seen in ``fit``.

    Notes
    -----
    ``fit_transform`` returns the codes fitted to the final ``components_``; scikit-learn's
    returns those of the last code step, which precedes the last dictionary update.
    """

    _preserves = ("float64", "float32")

    def __init__(
        self,
        n_components=20,
        alpha=1.0,
        max_iter=5000,
        tol=1e-8,
        init="svd",
        random_state=0,
        n_jobs=None,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit(self, X):
        X = check_X(self, X, reset=True, dtypes=(np.float64, np.float32))
        if not isinstance(self.init, str):
            raise ValueError(f"init must be a string, got {self.init!r}")
        components, code, n_iter, errors, converged, _ = _native.fit_semi_nmf(
            X,
            check_int("n_components", self.n_components, 1),
            check_float("alpha", self.alpha),
            check_int("max_iter", self.max_iter, 1),
            check_float("tol", self.tol),
            self.init,
            seed_of(self.random_state),
            check_n_jobs(self.n_jobs),
        )
        self.components_ = components
        self.n_iter_ = n_iter
        self.error_ = errors
        self.converged_ = converged
        return code

    def fit(self, X, y=None):
        """Learns the concepts from ``X`` (``y`` is ignored). Returns the estimator."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Learns the concepts and returns the codes of ``X``, shape ``(n_samples, n_components)``."""
        return self._fit(X)

    def transform(self, X):
        """The positive Lasso codes ``argmin_{c ≥ 0} ½‖x − cD‖² + α‖c‖₁`` of each sample of ``X``
        (scikit-learn's ``transform`` with ``lasso_cd``), in the input's dtype."""
        check_is_fitted(self, "components_")
        X = check_X(self, X, reset=False, dtypes=(np.float64, np.float32))
        components = np.ascontiguousarray(self.components_, dtype=X.dtype)
        return _native.encode_semi_nmf(
            components,
            X,
            check_float("alpha", self.alpha),
            TRANSFORM_MAX_ITER,
            check_n_jobs(self.n_jobs),
        )


class _Baseline(_Tags, TransformerMixin, BaseEstimator):
    """The shared fit/transform of the baselines (``cox-decomp``, computed in float32)."""

    _method = None
    _preserves = ("float32",)

    def _fit_options(self):
        return {"max_iter": None, "tol": None, "n_init": None}

    def _fit(self, X):
        X = check_X(self, X, reset=True, dtypes=(np.float32,))
        out = _native.fit_baseline(
            self._method,
            X,
            check_int("n_components", self.n_components, 1),
            seed_of(getattr(self, "random_state", 0)),
            n_jobs=check_n_jobs(self.n_jobs),
            **self._fit_options(),
        )
        self.components_ = out["components"]
        self.n_iter_ = out["n_iter"]
        self._store(out)
        return out["activations"]

    def _store(self, out):
        pass

    def fit(self, X, y=None):
        """Learns the concepts from ``X`` (``y`` is ignored). Returns the estimator."""
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Learns the concepts and returns the activations of ``X`` (float32)."""
        return self._fit(X)

    def transform(self, X):
        """The activations of ``X`` on the concepts (float32); see the class for their definition."""
        check_is_fitted(self, "components_")
        X = check_X(self, X, reset=False, dtypes=(np.float32,))
        mean = getattr(self, "mean_", None)
        return _native.encode_dictionary(
            self._method,
            np.ascontiguousarray(self.components_, dtype=np.float32),
            X,
            mean=None if mean is None else [float(v) for v in mean],
            alpha=None,
            n_jobs=check_n_jobs(self.n_jobs),
        )


class PCA(_Baseline):
    """The reference's ``pca`` baseline: centred PCA with scikit-learn 1.5's solver choice and sign
    rule. Concepts are the principal axes (``components_``), activations the signed scores
    ``(x − mean_) · components_ᵀ``.

    Attributes: ``components_``, ``mean_``, ``explained_variance_``, ``explained_variance_ratio_``,
    ``n_features_in_``.
    """

    _method = "pca"

    def __init__(self, n_components=20, random_state=0, n_jobs=None):
        self.n_components = n_components
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _store(self, out):
        self.mean_ = out["mean"]
        self.explained_variance_ = out["explained_variance"]
        self.explained_variance_ratio_ = out["explained_variance_ratio"]


class KMeans(_Baseline):
    """The reference's ``kmeans`` baseline: scikit-learn 1.5's k-means++ and Lloyd iterations
    (seeded with ChaCha8, not numpy's generator). Concepts are the centroids, activations
    ``1 / (1 + ‖x − c_k‖₂)`` for training and new samples alike.

    Attributes: ``components_`` (= ``cluster_centers_``), ``labels_``, ``inertia_``, ``n_iter_``,
    ``n_features_in_``.
    """

    _method = "kmeans"

    def __init__(self, n_components=20, max_iter=5000, tol=1e-4, n_init=1, random_state=0, n_jobs=None):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit_options(self):
        return {
            "max_iter": check_int("max_iter", self.max_iter, 1),
            "tol": check_float("tol", self.tol),
            "n_init": check_int("n_init", self.n_init, 1),
        }

    def _store(self, out):
        self.cluster_centers_ = self.components_
        self.labels_ = out["labels"]
        self.inertia_ = out["objective"]


class Simple(_Baseline):
    """The reference's ``simple`` baseline: the ``n_components`` training samples of largest norm
    (``argsort(norms)[-K:]`` order) are the concepts; activations ``1 / (1 + ‖x − c_k‖₂)``.

    Attributes: ``components_``, ``selected_samples_``, ``n_features_in_``.
    """

    _method = "simple"

    def __init__(self, n_components=20, n_jobs=None):
        self.n_components = n_components
        self.n_jobs = n_jobs

    def _store(self, out):
        self.selected_samples_ = out["selected_samples"]
