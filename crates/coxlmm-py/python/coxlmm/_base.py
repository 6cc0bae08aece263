"""scikit-learn's base classes when scikit-learn is installed, minimal stand-ins otherwise, and the
input checks every estimator shares."""

import inspect
import numbers

import numpy as np

try:  # pragma: no cover - which branch runs depends on the environment
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.utils.validation import check_array as _sk_check_array
    from sklearn.utils.validation import check_is_fitted

    HAVE_SKLEARN = True
    # scikit-learn 1.6 renamed force_all_finite to ensure_all_finite.
    _FINITE_KW = (
        "ensure_all_finite"
        if "ensure_all_finite" in inspect.signature(_sk_check_array).parameters
        else "force_all_finite"
    )
except ImportError:  # pragma: no cover
    HAVE_SKLEARN = False

    class NotFittedError(ValueError, AttributeError):
        """Raised when transform is called before fit (as scikit-learn's)."""

    class BaseEstimator:
        """get_params/set_params over the constructor's arguments, as scikit-learn's."""

        @classmethod
        def _get_param_names(cls):
            sig = inspect.signature(cls.__init__)
            return sorted(p for p in sig.parameters if p != "self")

        def get_params(self, deep=True):
            return {name: getattr(self, name) for name in self._get_param_names()}

        def set_params(self, **params):
            valid = self._get_param_names()
            for key, value in params.items():
                if key not in valid:
                    raise ValueError(
                        f"Invalid parameter {key!r} for estimator {self}. Valid parameters are: {valid!r}."
                    )
                setattr(self, key, value)
            return self

        def __repr__(self):
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
            return f"{type(self).__name__}({args})"

    class TransformerMixin:
        """fit_transform = fit then transform, as scikit-learn's."""

        def fit_transform(self, X, y=None, **fit_params):
            return self.fit(X, y, **fit_params).transform(X)

    def check_is_fitted(estimator, attributes=None):
        attributes = [attributes] if isinstance(attributes, str) else attributes
        if not all(hasattr(estimator, a) for a in attributes):
            raise NotFittedError(
                f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )


def check_X(estimator, X, reset, dtypes):
    """`X` as a C-contiguous 2-D array of one of `dtypes` (other dtypes become the first), without
    a copy when it already is one. Non-finite values are left to the Rust solvers, whose message
    names the sample and the feature. With `reset`, records `n_features_in_`; otherwise checks it."""
    if HAVE_SKLEARN:
        X = _sk_check_array(
            X, dtype=list(dtypes), order="C", estimator=estimator, **{_FINITE_KW: False}
        )
    else:
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2D array, got {X.ndim}D array instead: reshape your data with "
                "X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample."
            )
        if X.dtype not in dtypes:
            X = X.astype(dtypes[0])
        X = np.ascontiguousarray(X)
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"Found array with shape {X.shape}: at least 1 sample and 1 feature are required.")
    if reset:
        estimator.n_features_in_ = X.shape[1]
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return X


def check_int(name, value, minimum, allow_none=False):
    """`value` as an int >= `minimum`, or a ValueError naming the parameter."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name, value, allow_none=False):
    """`value` as a float, or a ValueError naming the parameter (ranges are checked in Rust)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    return float(value)


def seed_of(random_state):
    """The seed for `random_state`: an int >= 0 as it is, None as 0 (results are always seeded),
    and a numpy RandomState or Generator as one draw from it."""
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(np.iinfo(np.int64).max))
    return check_int("random_state", random_state, 0)


def check_n_jobs(n_jobs):
    """`n_jobs` as scikit-learn takes it: None, or a non-zero int (0 is refused in Rust)."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise ValueError(f"n_jobs must be None or an integer, got {n_jobs!r}")
    return int(n_jobs)
