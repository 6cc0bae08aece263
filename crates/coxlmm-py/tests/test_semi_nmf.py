"""coxlmm.SemiNMF against scikit-learn's DictionaryLearning with the reference's arguments."""

import pickle

import numpy as np
import pytest
from conftest import objective
from sklearn.base import clone
from sklearn.decomposition import DictionaryLearning, SparseCoder
from sklearn.linear_model import Lasso

import coxlmm


def sklearn_reference(n_components, alpha=1.0, max_iter=5000):
    """The reference implementation's call (xl-vlms)."""
    return DictionaryLearning(
        n_components=n_components,
        alpha=alpha,
        positive_code=True,
        fit_algorithm="cd",
        transform_algorithm="lasso_cd",
        max_iter=max_iter,
        random_state=0,
    )


def small_problems(golden):
    yield "golden 80x24 K=6", golden["x"], golden["k"]
    yield "token-like 120x16 K=5", coxlmm.synthetic.token_like(120, 16, seed=1).astype(np.float64), 5
    yield "token-like 160x32 K=8", coxlmm.synthetic.token_like(160, 32, seed=2).astype(np.float64), 8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_objective_equals_sklearn_on_small_problems(golden, dtype):
    for name, X, k in small_problems(golden):
        sk = sklearn_reference(k)
        sk_code = sk.fit_transform(X)
        sk_obj = objective(X, sk_code, sk.components_, 1.0)
        ours = coxlmm.SemiNMF(n_components=k)
        code = ours.fit_transform(X.astype(dtype))
        obj = objective(X, code, ours.components_, 1.0)
        # The golden fixture's tolerance (crates/cox-snmf/tests/golden_tests.rs): no worse than
        # scikit-learn + 0.5 %, and not suspiciously lower.
        assert obj <= sk_obj * 1.005, f"{name} {dtype.__name__}: ours {obj} vs scikit-learn {sk_obj}"
        assert obj >= sk_obj * 0.95, f"{name} {dtype.__name__}: ours {obj} vs scikit-learn {sk_obj}"
        # error_ is scikit-learn's per-iteration cost; its last entry is the returned objective.
        assert ours.error_.shape == (ours.n_iter_,)
        assert abs(ours.error_[-1] - obj) <= 1e-3 * obj


def test_objective_equals_the_golden_fixture(golden):
    ours = coxlmm.SemiNMF(n_components=golden["k"]).fit(golden["x"])
    code = ours.transform(golden["x"])
    obj = objective(golden["x"], code, ours.components_, 1.0)
    sk = golden["objective_returned"]
    assert sk * 0.95 <= obj <= sk * 1.005, f"ours {obj} vs scikit-learn {golden['sklearn_version']} {sk}"


def sklearn_lasso_converged(components, X, alpha):
    """scikit-learn's lasso_cd transform (the Lasso that `_sparse_encode` fits, alpha / n_features)
    solved to convergence instead of stopping at its default duality-gap tolerance of 1e-4."""
    b = components.shape[1]
    lasso = Lasso(
        alpha=alpha / b, fit_intercept=False, positive=True, tol=1e-12, max_iter=100_000,
        precompute=components @ components.T,
    )
    return lasso.fit(components.T, X.T).coef_.reshape(X.shape[0], -1)


def per_sample_objective(X, code, components, alpha):
    return 0.5 * np.sum((X - code @ components) ** 2, axis=1) + alpha * np.abs(code).sum(axis=1)


def test_transform_equals_sklearn_transform(golden):
    X, X_test, k = golden["x"], golden["x_test"], golden["k"]
    sk = sklearn_reference(k).fit(X)
    # Our transform on scikit-learn's dictionary ...
    ours = coxlmm.SemiNMF(n_components=k)
    ours.components_ = sk.components_
    ours.n_features_in_ = X.shape[1]
    for data in (X_test, X):
        code = ours.transform(data)
        # ... equals scikit-learn's lasso_cd solution within 1e-4,
        np.testing.assert_allclose(code, sklearn_lasso_converged(sk.components_, data, 1.0), rtol=0, atol=1e-4)
        # and scikit-learn's transform as it stops (a duality gap below 1e-4 · ‖x‖², which leaves
        # codes up to ~1e-4 of the largest code away from the optimum) within that precision,
        sk_code = sk.transform(data)
        np.testing.assert_allclose(code, sk_code, rtol=0, atol=2e-4 * sk_code.max())
        # never with a worse per-sample objective.
        ours_obj = per_sample_objective(data, code, sk.components_, 1.0)
        sk_obj = per_sample_objective(data, sk_code, sk.components_, 1.0)
        assert np.all(ours_obj <= sk_obj * (1 + 1e-12) + 1e-12)
    # scikit-learn's transform on our dictionary (SparseCoder, the same lasso_cd) agrees likewise.
    fitted = coxlmm.SemiNMF(n_components=k).fit(X)
    coder = SparseCoder(
        dictionary=fitted.components_, transform_algorithm="lasso_cd", transform_alpha=1.0, positive_code=True
    )
    code = fitted.transform(X_test)
    np.testing.assert_allclose(code, sklearn_lasso_converged(fitted.components_, X_test, 1.0), rtol=0, atol=1e-4)
    np.testing.assert_allclose(code, coder.transform(X_test), rtol=0, atol=2e-4 * code.max())


def test_float32_stays_float32_and_agrees_with_float64(golden):
    X = golden["x"]
    f64 = coxlmm.SemiNMF(n_components=golden["k"]).fit(X)
    f32 = coxlmm.SemiNMF(n_components=golden["k"]).fit(X.astype(np.float32))
    assert f64.components_.dtype == np.float64 and f32.components_.dtype == np.float32
    assert f32.transform(X.astype(np.float32)).dtype == np.float32
    assert f64.transform(X).dtype == np.float64
    # A float64 dictionary encodes float32 data in float32.
    assert f64.transform(X.astype(np.float32)).dtype == np.float32
    cos = np.sum(f64.components_ * f32.components_, axis=1) / (
        np.linalg.norm(f64.components_, axis=1) * np.linalg.norm(f32.components_, axis=1)
    )
    assert np.all(cos > 0.999), cos


def test_fit_transform_is_the_transform_of_the_fitted_dictionary(golden):
    est = coxlmm.SemiNMF(n_components=golden["k"])
    code = est.fit_transform(golden["x"])
    assert code.shape == (golden["m"], golden["k"]) and np.all(code >= 0)
    np.testing.assert_allclose(code, est.transform(golden["x"]), rtol=0, atol=1e-3 * code.max())
    assert np.all(np.linalg.norm(est.components_, axis=1) <= 1 + 1e-9)


def test_results_do_not_depend_on_n_jobs():
    X = coxlmm.synthetic.token_like(300, 48, seed=4)
    a = coxlmm.SemiNMF(n_components=6, n_jobs=1).fit(X)
    b = coxlmm.SemiNMF(n_components=6, n_jobs=2).fit(X)
    c = coxlmm.SemiNMF(n_components=6, n_jobs=-1).fit(X)
    assert np.array_equal(a.components_, b.components_) and np.array_equal(a.components_, c.components_)
    assert np.array_equal(a.transform(X), c.transform(X))


def test_seeded_inits_are_reproducible_and_differ():
    X = coxlmm.synthetic.token_like(100, 16, seed=5)
    for init in ("samples", "random"):
        a = coxlmm.SemiNMF(n_components=4, init=init, random_state=3).fit(X)
        b = coxlmm.SemiNMF(n_components=4, init=init, random_state=3).fit(X)
        c = coxlmm.SemiNMF(n_components=4, init=init, random_state=4).fit(X)
        assert np.array_equal(a.components_, b.components_)
        assert not np.array_equal(a.components_, c.components_)
    exact = coxlmm.SemiNMF(n_components=4, init="svd_exact").fit(X)
    assert exact.components_.shape == (4, 16)


def test_params_clone_and_pickle(golden):
    est = coxlmm.SemiNMF(n_components=3, alpha=0.5, max_iter=50)
    assert est.get_params() == {
        "n_components": 3, "alpha": 0.5, "max_iter": 50, "tol": 1e-8, "init": "svd", "random_state": 0, "n_jobs": None,
    }
    assert est.set_params(alpha=2.0) is est and est.alpha == 2.0
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "components_")
    est.fit(golden["x"])
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.transform(golden["x"]), est.transform(golden["x"]))


def test_max_iter_bounds_the_iterations(golden):
    est = coxlmm.SemiNMF(n_components=golden["k"], max_iter=3).fit(golden["x"])
    assert est.n_iter_ <= 3 and not est.converged_


@pytest.mark.parametrize(
    "X, params, message",
    [
        (np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 1.0]]), {"n_components": 1}, "sample 1, feature 0 is NaN"),
        (np.array([[1.0, 2.0], [1.0, np.inf], [3.0, 1.0]]), {"n_components": 1}, "sample 1, feature 1 is inf"),
        (np.ones((5, 3)), {"n_components": 10}, "K = 10 concepts requested but only 5 samples"),
        (np.ones(6), {"n_components": 1}, "Expected 2D array"),
        (np.ones((2, 2, 2)), {"n_components": 1}, "dim"),
        (np.ones((4, 3)), {"n_components": 0}, "n_components must be an integer >= 1"),
        (np.ones((4, 3)), {"n_components": 2, "alpha": -1.0}, "invalid parameter alpha = -1"),
        (np.ones((4, 3)), {"n_components": 2, "init": "nndsvd"}, 'invalid parameter init = "nndsvd"'),
        (np.ones((4, 3)), {"n_components": 2, "n_jobs": 0}, "invalid parameter n_jobs = 0"),
        (np.zeros((4, 3)), {"n_components": 2}, "rank 0"),
    ],
)
def test_bad_input_raises_value_error_with_the_message(X, params, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        coxlmm.SemiNMF(**params).fit(X)


def test_transform_errors_name_the_problem(golden):
    est = coxlmm.SemiNMF(n_components=golden["k"]).fit(golden["x"])
    with pytest.raises(ValueError, match="X has 5 features, but SemiNMF is expecting 24 features"):
        est.transform(np.ones((3, 5)))
    bad = golden["x_test"].copy()
    bad[2, 7] = np.nan
    with pytest.raises(ValueError, match="sample 2, feature 7 is NaN"):
        est.transform(bad)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        coxlmm.SemiNMF().transform(golden["x"])


def test_non_contiguous_input_is_read_correctly(golden):
    X = golden["x"]
    F = np.asfortranarray(X)
    strided = np.repeat(X, 2, axis=1)[:, ::2]
    a = coxlmm.SemiNMF(n_components=golden["k"]).fit(X)
    for data in (F, strided):
        np.testing.assert_array_equal(coxlmm.SemiNMF(n_components=golden["k"]).fit(data).components_, a.components_)
        np.testing.assert_array_equal(a.transform(data), a.transform(X))


def test_works_without_scikit_learn():
    """scikit-learn is optional: the estimators fall back to minimal base classes."""
    import subprocess
    import sys

    code = """
import sys
sys.modules["sklearn"] = None  # any import of scikit-learn now fails
import numpy as np
import coxlmm
from coxlmm import _base
assert not _base.HAVE_SKLEARN
X = coxlmm.synthetic.token_like(50, 8, seed=1).astype(np.float64)
est = coxlmm.SemiNMF(n_components=3).set_params(alpha=0.5)
assert est.get_params()["alpha"] == 0.5 and "SemiNMF(" in repr(est)
try:
    est.transform(X)
    raise SystemExit("transform before fit did not raise")
except ValueError as e:
    assert "not fitted" in str(e)
code = est.fit_transform(X)
assert code.shape == (50, 3) and code.dtype == np.float64
assert np.allclose(est.transform(X), code, atol=1e-3 * code.max())
for bad in (np.ones(4), np.ones((0, 3))):
    try:
        est.fit(bad)
        raise SystemExit("bad input did not raise")
    except ValueError:
        pass
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
