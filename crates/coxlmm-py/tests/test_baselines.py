"""coxlmm.PCA, coxlmm.KMeans and coxlmm.Simple: the reference's baselines with SemiNMF's interface."""

import numpy as np
import pytest
import sklearn.cluster
import sklearn.decomposition

import coxlmm


@pytest.fixture(scope="module")
def X():
    return coxlmm.synthetic.token_like(150, 20, seed=7)


def test_pca_equals_sklearn(X):
    sk = sklearn.decomposition.PCA(n_components=5).fit(X.astype(np.float64))
    ours = coxlmm.PCA(n_components=5)
    scores = ours.fit_transform(X)
    # scikit-learn 1.5's sign rule, so the axes agree with their signs.
    np.testing.assert_allclose(ours.components_, sk.components_, atol=1e-4)
    np.testing.assert_allclose(ours.mean_, sk.mean_, atol=1e-4)
    np.testing.assert_allclose(ours.explained_variance_ratio_, sk.explained_variance_ratio_, rtol=1e-4)
    np.testing.assert_allclose(scores, sk.transform(X), atol=1e-3)
    np.testing.assert_allclose(ours.transform(X[:7]), scores[:7], atol=1e-4)
    assert scores.dtype == np.float32


def test_kmeans_activations_are_inverse_distances_to_sklearn_centres():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])
    X = (np.repeat(centres, 20, axis=0) + rng.normal(scale=0.1, size=(60, 3))).astype(np.float32)
    ours = coxlmm.KMeans(n_components=3).fit(X)
    sk = sklearn.cluster.KMeans(n_clusters=3, n_init=1, random_state=0).fit(X)
    # Well-separated blobs: the same partition (up to cluster order) and the same inertia.
    pairs = {(a, b) for a, b in zip(ours.labels_, sk.labels_)}
    assert len(pairs) == 3
    assert ours.inertia_ == pytest.approx(sk.inertia_, rel=1e-4)
    # Activations: 1 / (1 + distance to each centre).
    order = [sk.labels_[ours.labels_ == j][0] for j in range(3)]
    expected = 1.0 / (1.0 + sk.transform(X)[:, order])
    np.testing.assert_allclose(ours.transform(X), expected, atol=1e-5)
    np.testing.assert_array_equal(ours.cluster_centers_, ours.components_)


def test_simple_takes_the_largest_norm_samples(X):
    ours = coxlmm.Simple(n_components=4)
    act = ours.fit_transform(X)
    idx = np.argsort(np.linalg.norm(X.astype(np.float64), axis=1))[-4:]
    np.testing.assert_array_equal(ours.selected_samples_, idx)
    np.testing.assert_array_equal(ours.components_, X[idx])
    d = np.linalg.norm(X[:, None, :].astype(np.float64) - X[idx][None, :, :], axis=2)
    np.testing.assert_allclose(act, 1.0 / (1.0 + d), atol=1e-5)


@pytest.mark.parametrize(
    "est, message",
    [
        (coxlmm.PCA(n_components=30), "PCA with K = 30 components needs K <= min"),
        (coxlmm.KMeans(n_components=200), "K = 200 concepts requested but only 150 samples"),
        (coxlmm.Simple(n_components=0), "n_components must be an integer >= 1"),
        (coxlmm.KMeans(n_components=2, tol=-1.0), "tol"),
    ],
)
def test_bad_settings_raise_value_error_with_the_message(X, est, message):
    with pytest.raises(ValueError, match=message):
        est.fit(X)


def test_nan_is_named(X):
    bad = X.copy()
    bad[4, 2] = np.nan
    for est in (coxlmm.PCA(n_components=2), coxlmm.KMeans(n_components=2), coxlmm.Simple(n_components=2)):
        with pytest.raises(ValueError, match="sample 4, feature 2 is NaN"):
            est.fit(bad)
